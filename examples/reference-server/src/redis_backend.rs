//! The optional Redis connection. It is checked at start (the server refuses to start if
//! Redis does not answer) and reported by `/health`. Instances share through it, under
//! `--redis-prefix`: the rate limits, access-token revocations and refresh tokens, used TOTP
//! codes, and the version stamps that tell each instance when a user row it keeps in memory
//! has changed ([`crate::auth::user_cache`]).
//!
//! A `rediss://` URL uses TLS (rustls on aws-lc-rs) and verifies the server's
//! certificate and host name; `--redis-ca-file` names the CA to trust instead of the
//! system's roots.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ClientTlsConfig, ConnectionAddr, TlsCertificates};
use secrecy::{ExposeSecret, SecretString};

use crate::config::TlsFiles;
use crate::error::{Result, ServerError};
use finsec_crypto::secret::redact_url;

/// How long to wait for Redis to connect or answer.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// A Redis connection that reconnects on failure; cheap to clone.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    redacted_url: String,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.redacted_url)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// Connects to `url` and checks that the server answers `PING`.
    ///
    /// A `rediss://` URL connects with TLS (rustls), checking the server's certificate
    /// chain and host name against the system's trusted roots, or against `tls.ca_file`
    /// alone if set; `tls.client_cert`/`tls.client_key` are presented if the server asks.
    ///
    /// # Errors
    /// [`ServerError::Config`] if a TLS file does not load (naming it) or TLS files are
    /// given with a `redis://` URL; [`ServerError::Redis`] naming the URL without its
    /// password if Redis cannot be reached, the TLS handshake fails, or `PING` fails.
    pub async fn connect(url: &SecretString, tls: &TlsFiles) -> Result<Self> {
        let redacted_url = redact_url(url.expose_secret());
        let fail = |reason: String| ServerError::Redis {
            url: redacted_url.clone(),
            reason,
        };
        let client = redis::Client::open(url.expose_secret())
            .map_err(|e| fail(format!("invalid redis url: {e}")))?;
        let client = if matches!(
            client.get_connection_info().addr(),
            ConnectionAddr::TcpTls { .. }
        ) {
            // redis-rs builds its rustls configuration with the process default provider;
            // make that aws-lc-rs. An `Err` means a default is installed already.
            let _ = crate::config::crypto_provider().install_default();
            if tls.is_empty() {
                client
            } else {
                let root_cert = tls.read_ca()?.map(|ca| ca.pem().to_vec());
                let client_tls = tls.read_client_identity()?.map(|identity| ClientTlsConfig {
                    client_cert: identity.cert_pem().to_vec(),
                    client_key: identity.key_pem().to_vec(),
                });
                redis::Client::build_with_tls(
                    url.expose_secret(),
                    TlsCertificates {
                        client_tls,
                        root_cert,
                    },
                )
                .map_err(|e| fail(format!("invalid TLS settings: {e}")))?
            }
        } else if tls.is_empty() {
            client
        } else {
            return Err(ServerError::Config(
                "--redis-ca-file and --redis-client-cert/--redis-client-key need TLS: use a \
                 rediss:// --redis-url"
                    .to_owned(),
            ));
        };
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT));
        let conn = tokio::time::timeout(
            REDIS_TIMEOUT * 2,
            client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| fail("connection timed out".to_owned()))?
        .map_err(|e| fail(format!("cannot connect: {e}")))?;
        let redis = Self {
            conn,
            redacted_url: redacted_url.clone(),
        };
        redis
            .ping()
            .await
            .map_err(|reason| fail(format!("PING failed: {reason}")))?;
        Ok(redis)
    }

    /// Sends `PING` and expects `PONG` within [`REDIS_TIMEOUT`].
    ///
    /// # Errors
    /// What went wrong, as text.
    pub async fn ping(&self) -> Result<(), String> {
        let mut conn = self.conn.clone();
        let answer = tokio::time::timeout(
            REDIS_TIMEOUT,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
        if answer == "PONG" {
            Ok(())
        } else {
            Err(format!("unexpected answer {answer:?}"))
        }
    }

    /// The URL without its password.
    pub fn redacted_url(&self) -> &str {
        &self.redacted_url
    }

    /// A clone of the connection, for components that use Redis.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}
