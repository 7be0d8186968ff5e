//! Command line and environment configuration.
//!
//! Every setting is a flag with an environment variable behind it (the flag wins). URLs
//! that may carry a password are held as [`SecretString`], so the derived `Debug` of
//! [`Config`] prints `[REDACTED]` for them, and `--help` never shows their environment
//! values.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::error::{Result, ServerError};

/// Environment variable holding the passphrase that seals the keyring.
pub const MASTER_PASSPHRASE_VAR: &str = "FINSEC_MASTER_PASSPHRASE";

/// The name of the SQLite database file inside the data directory.
pub const SQLITE_FILE: &str = "finsec.db";
/// The name of the sealed keyring file inside the data directory (unless overridden).
pub const KEYRING_FILE: &str = "keyring.sealed";
/// The name of the generated master key file inside the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The finsec reference server.
///
/// With no subcommand it serves HTTP. With no database configured it keeps its state in
/// SQLite under the data directory.
#[derive(Debug, Parser)]
#[command(name = "finsec-reference-server", version, about, long_about = None)]
pub struct Cli {
    /// Settings shared by the server and the subcommands.
    #[command(flatten)]
    pub config: Config,

    /// What to do; serving HTTP when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// Parses the process arguments and environment, then reads the master passphrase
    /// from [`MASTER_PASSPHRASE_VAR`].
    ///
    /// Exits the process with a usage message (as clap does) if the arguments are invalid.
    ///
    /// # Errors
    /// [`ServerError::Config`] if [`MASTER_PASSPHRASE_VAR`] is set but empty or not valid
    /// UTF-8: the operator meant to seal the keyring with a passphrase, so falling back to
    /// a generated master key file would be wrong.
    pub fn parse_from_env() -> Result<Self> {
        let mut cli = Self::parse();
        cli.config.master_passphrase = master_passphrase_from_env()?;
        Ok(cli)
    }
}

/// Reads [`MASTER_PASSPHRASE_VAR`]: `None` if it is not set.
///
/// # Errors
/// [`ServerError::Config`] if it is set but empty or not valid UTF-8 (the message never
/// contains the value).
pub fn master_passphrase_from_env() -> Result<Option<SecretString>> {
    match std::env::var_os(MASTER_PASSPHRASE_VAR) {
        None => Ok(None),
        Some(value) if value.is_empty() => Err(ServerError::Config(format!(
            "{MASTER_PASSPHRASE_VAR} is set but empty; unset it to use a master key file, \
             or set it to the passphrase that seals the keyring"
        ))),
        Some(value) => match value.into_string() {
            Ok(value) => Ok(Some(SecretString::from(value))),
            Err(value) => {
                // Overwrite what we can of the copy we took before dropping it.
                drop(Zeroizing::new(value.into_encoded_bytes()));
                Err(ServerError::Config(format!(
                    "{MASTER_PASSPHRASE_VAR} is not valid UTF-8"
                )))
            }
        },
    }
}

/// Server and storage settings.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address and port to listen on (port 0 picks a free port).
    #[arg(
        long,
        env = "FINSEC_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, the keyring and the generated master key;
    /// created (mode 0700) if missing.
    #[arg(
        long,
        env = "FINSEC_DATA_DIR",
        default_value = "./finsec-data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// PostgreSQL URL; when set, state is kept in PostgreSQL instead of SQLite.
    #[arg(
        long,
        env = "FINSEC_POSTGRES_URL",
        hide_env_values = true,
        value_parser = parse_secret,
        global = true
    )]
    pub postgres_url: Option<SecretString>,

    /// Most connections this instance opens to PostgreSQL. Every authenticated request
    /// runs at least one query; with fewer connections than concurrent requests, requests
    /// queue for a connection. Mind the server's `max_connections` across all instances.
    #[arg(
        long,
        env = "FINSEC_POSTGRES_MAX_CONNECTIONS",
        default_value_t = crate::storage::DEFAULT_PG_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..=1000),
        global = true
    )]
    pub postgres_max_connections: u32,

    /// Redis URL; when set, Redis is connected to and checked at start.
    #[arg(
        long,
        env = "FINSEC_REDIS_URL",
        hide_env_values = true,
        value_parser = parse_secret,
        global = true
    )]
    pub redis_url: Option<SecretString>,

    /// PEM file of the CA certificates that sign the PostgreSQL server's certificate, for
    /// `sslmode=verify-full` or `verify-ca` in `--postgres-url` (added to the built-in
    /// public roots; with `sslmode=require` it upgrades the mode to `verify-ca`).
    #[arg(long, env = "FINSEC_POSTGRES_CA_FILE", global = true)]
    pub postgres_ca_file: Option<PathBuf>,

    /// PEM file of a client certificate chain to present to PostgreSQL (with
    /// `--postgres-client-key`).
    #[arg(
        long,
        env = "FINSEC_POSTGRES_CLIENT_CERT",
        requires = "postgres_client_key",
        global = true
    )]
    pub postgres_client_cert: Option<PathBuf>,

    /// PEM file of the private key of `--postgres-client-cert`.
    #[arg(
        long,
        env = "FINSEC_POSTGRES_CLIENT_KEY",
        requires = "postgres_client_cert",
        global = true
    )]
    pub postgres_client_key: Option<PathBuf>,

    /// PEM file of the CA certificates that sign the Redis server's certificate, for a
    /// `rediss://` `--redis-url` (replaces the system's trusted roots).
    #[arg(long, env = "FINSEC_REDIS_CA_FILE", global = true)]
    pub redis_ca_file: Option<PathBuf>,

    /// PEM file of a client certificate chain to present to Redis (with
    /// `--redis-client-key`).
    #[arg(
        long,
        env = "FINSEC_REDIS_CLIENT_CERT",
        requires = "redis_client_key",
        global = true
    )]
    pub redis_client_cert: Option<PathBuf>,

    /// PEM file of the private key of `--redis-client-cert`.
    #[arg(
        long,
        env = "FINSEC_REDIS_CLIENT_KEY",
        requires = "redis_client_cert",
        global = true
    )]
    pub redis_client_key: Option<PathBuf>,

    /// The sealed keyring file [default: DATA_DIR/keyring.sealed]. Point several
    /// instances at one file to share a keyring.
    #[arg(long, env = "FINSEC_KEYRING_FILE", global = true)]
    pub keyring_file: Option<PathBuf>,

    /// Log output format (the filter is read from `RUST_LOG`, default `info`).
    #[arg(
        long,
        env = "FINSEC_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        global = true
    )]
    pub log_format: LogFormat,

    /// Authentication: token lifetimes, issuer, audience, password pepper, Redis prefix.
    #[command(flatten)]
    pub auth: crate::auth::AuthConfig,

    /// Access control and order entry.
    #[command(flatten)]
    pub rbac: crate::rbac::RbacConfig,

    /// Rate limits: policy file, trusted proxies, behaviour when Redis fails.
    #[command(flatten)]
    pub rate_limits: crate::ratelimit::RateLimitConfig,

    /// The audit trail: log name, monitor rules, witness file, checkpoint intervals.
    #[command(flatten)]
    pub audit: crate::audit::AuditConfig,

    /// Serving limits: connections, timeouts, body sizes, password hashing.
    #[command(flatten)]
    pub limits: LimitsConfig,

    /// MiFID II: the firm configuration, the business clock, best execution.
    #[command(flatten)]
    pub compliance: crate::compliance::ComplianceConfig,

    /// GDPR: retention policies and the retention archive.
    #[command(flatten)]
    pub gdpr: crate::gdpr::GdprConfig,

    /// The passphrase sealing the keyring, read from `FINSEC_MASTER_PASSPHRASE` only (a
    /// command line flag would show it in the process list). When absent, a generated
    /// master key file in the data directory seals the keyring.
    #[arg(skip)]
    pub master_passphrase: Option<SecretString>,
}

impl Config {
    /// A configuration with every default and the given data directory: SQLite storage,
    /// no Redis, listening on `127.0.0.1:0`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            postgres_url: None,
            postgres_max_connections: crate::storage::DEFAULT_PG_MAX_CONNECTIONS,
            redis_url: None,
            postgres_ca_file: None,
            postgres_client_cert: None,
            postgres_client_key: None,
            redis_ca_file: None,
            redis_client_cert: None,
            redis_client_key: None,
            keyring_file: None,
            log_format: LogFormat::Text,
            auth: crate::auth::AuthConfig::default(),
            rbac: crate::rbac::RbacConfig::default(),
            rate_limits: crate::ratelimit::RateLimitConfig::default(),
            audit: crate::audit::AuditConfig::default(),
            limits: LimitsConfig::default(),
            compliance: crate::compliance::ComplianceConfig::default(),
            gdpr: crate::gdpr::GdprConfig::default(),
            master_passphrase: None,
        }
    }

    /// The sealed keyring file: `--keyring-file`, or `keyring.sealed` in the data directory.
    pub fn keyring_path(&self) -> PathBuf {
        self.keyring_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join(KEYRING_FILE))
    }

    /// The generated master key file in the data directory.
    pub fn master_key_path(&self) -> PathBuf {
        self.data_dir.join(MASTER_KEY_FILE)
    }

    /// The SQLite database file in the data directory.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join(SQLITE_FILE)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The TLS files for PostgreSQL (`--postgres-ca-file`, `--postgres-client-cert`,
    /// `--postgres-client-key`).
    pub fn postgres_tls(&self) -> TlsFiles {
        TlsFiles {
            backend: "postgres",
            ca_file: self.postgres_ca_file.clone(),
            client_cert: self.postgres_client_cert.clone(),
            client_key: self.postgres_client_key.clone(),
        }
    }

    /// The TLS files for Redis (`--redis-ca-file`, `--redis-client-cert`,
    /// `--redis-client-key`).
    pub fn redis_tls(&self) -> TlsFiles {
        TlsFiles {
            backend: "redis",
            ca_file: self.redis_ca_file.clone(),
            client_cert: self.redis_client_cert.clone(),
            client_key: self.redis_client_key.clone(),
        }
    }
}

/// The PEM files configured for TLS to one backend (PostgreSQL or Redis), not yet read.
///
/// [`read_ca`](Self::read_ca) and [`read_client_identity`](Self::read_client_identity)
/// read and check them at start, so a missing or unparsable file stops the server with an
/// error naming the flag and the file instead of failing later on each connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    backend: &'static str,
    /// CA certificates that sign the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// The client certificate chain.
    pub client_cert: Option<PathBuf>,
    /// The client certificate's private key.
    pub client_key: Option<PathBuf>,
}

impl TlsFiles {
    /// Whether any file is configured.
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.client_cert.is_none() && self.client_key.is_none()
    }

    /// `--<backend>-<what>`, the flag that names a file.
    fn flag(&self, what: &str) -> String {
        format!("--{}-{what}", self.backend)
    }

    /// Reads the CA file, if one is configured, and checks it holds at least one
    /// certificate and only valid ones.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the flag and the file if it cannot be read or holds
    /// no valid certificate.
    pub fn read_ca(&self) -> Result<Option<PemCertificates>> {
        self.ca_file
            .as_deref()
            .map(|path| PemCertificates::read(&self.flag("ca-file"), path))
            .transpose()
    }

    /// Reads the client certificate chain and key, if configured, and checks that the
    /// key parses and belongs to the first certificate.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the flag and the file if either cannot be read or
    /// parsed, if only one of them is set, or if the key does not match the certificate.
    /// The message never contains key material.
    pub fn read_client_identity(&self) -> Result<Option<ClientIdentity>> {
        let (cert_path, key_path) = match (&self.client_cert, &self.client_key) {
            (None, None) => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            (Some(_), None) | (None, Some(_)) => {
                return Err(ServerError::Config(format!(
                    "{} and {} must be given together",
                    self.flag("client-cert"),
                    self.flag("client-key")
                )));
            }
        };
        let cert_flag = self.flag("client-cert");
        let key_flag = self.flag("client-key");
        let chain = PemCertificates::read(&cert_flag, cert_path)?;
        let key_pem = Zeroizing::new(read_file(&key_flag, key_path)?);
        let invalid_key = || {
            ServerError::Config(format!(
                "{key_flag} {}: not a PEM private key (PKCS#8, PKCS#1 or SEC1)",
                key_path.display()
            ))
        };
        let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| invalid_key())?;
        let provider = crypto_provider();
        let signing_key = provider
            .key_provider
            .load_private_key(key)
            .map_err(|_| invalid_key())?;
        CertifiedKey::new(chain.certificates(), signing_key)
            .keys_match()
            .map_err(|e| {
                ServerError::Config(format!(
                    "{key_flag} {} does not belong to {cert_flag} {}: {e}",
                    key_path.display(),
                    cert_path.display()
                ))
            })?;
        Ok(Some(ClientIdentity {
            cert_path: cert_path.clone(),
            key_path: key_path.clone(),
            cert_pem: chain.pem,
            key_pem,
        }))
    }
}

/// The rustls crypto provider the backends' TLS uses: aws-lc-rs, the crate finsec-auth
/// already builds for JWT signatures.
pub fn crypto_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| ServerError::Config(format!("{flag} {}: cannot read it: {e}", path.display())))
}

/// The certificates of a PEM file, checked to be X.509, with the file's bytes.
#[derive(Clone)]
pub struct PemCertificates {
    path: PathBuf,
    pem: Vec<u8>,
    certificates: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for PemCertificates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemCertificates")
            .field("path", &self.path)
            .field("certificates", &self.certificates.len())
            .finish_non_exhaustive()
    }
}

impl PemCertificates {
    /// Reads `path` (named by `flag` in errors): every `CERTIFICATE` block must be a valid
    /// X.509 certificate, and there must be at least one.
    fn read(flag: &str, path: &Path) -> Result<Self> {
        let pem = read_file(flag, path)?;
        let invalid =
            |why: String| ServerError::Config(format!("{flag} {}: {why}", path.display()));
        let certificates = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(format!("not a PEM file of certificates: {e}")))?;
        if certificates.is_empty() {
            return Err(invalid(
                "holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
            ));
        }
        for (n, certificate) in certificates.iter().enumerate() {
            let mut store = rustls::RootCertStore::empty();
            store.add(certificate.clone()).map_err(|e| {
                invalid(format!(
                    "certificate {} of {} is not a valid X.509 certificate: {e}",
                    n + 1,
                    certificates.len()
                ))
            })?;
        }
        Ok(Self {
            path: path.to_owned(),
            pem,
            certificates,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's contents.
    pub fn pem(&self) -> &[u8] {
        &self.pem
    }

    /// The certificates, in file order.
    pub fn certificates(&self) -> Vec<CertificateDer<'static>> {
        self.certificates.clone()
    }
}

/// A client certificate chain and its private key, read and checked at start. `Debug`
/// shows the file names only; the key bytes are zeroized on drop.
pub struct ClientIdentity {
    cert_path: PathBuf,
    key_path: PathBuf,
    cert_pem: Vec<u8>,
    key_pem: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ClientIdentity {
    /// The certificate chain file.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// The private key file.
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// The certificate chain, PEM.
    pub fn cert_pem(&self) -> &[u8] {
        &self.cert_pem
    }

    /// The private key, PEM.
    pub fn key_pem(&self) -> &[u8] {
        &self.key_pem
    }
}

/// The default of `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
/// The default of `--listen-backlog`: as many clients may wait to be accepted as are
/// served at once.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 1024;
/// The default of `--header-read-timeout-secs`.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// The default of `--request-timeout-secs`.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// The default of `--body-read-timeout-secs`.
pub const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 10;
/// The default of `--body-limit-bytes` (64 KiB).
pub const DEFAULT_BODY_LIMIT_BYTES: u64 = 64 * 1024;
/// The default of `--auth-body-limit-bytes` (8 KiB).
pub const DEFAULT_AUTH_BODY_LIMIT_BYTES: u64 = 8 * 1024;
/// The default of `--hash-queue`.
pub const DEFAULT_HASH_QUEUE: u32 = 16;
/// The default of `--hash-queue-timeout-ms`.
pub const DEFAULT_HASH_QUEUE_TIMEOUT_MS: u64 = 2_000;
/// Password hashes run at once per core when `--hash-concurrency` is not set.
pub const HASHES_PER_CORE: usize = 2;

/// What one client may cost the server: open connections, time to send a request, body
/// sizes, and the password hashes running at once. The defaults suit a server reached
/// directly by clients; each one can only be raised or lowered within a safe range.
#[derive(Debug, Clone, Args)]
pub struct LimitsConfig {
    /// Connections served at once; further clients wait in the listen backlog until one
    /// closes.
    #[arg(
        long,
        env = "FINSEC_MAX_CONNECTIONS",
        default_value_t = DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::value_parser!(u32).range(1..=1_000_000),
        global = true
    )]
    pub max_connections: u32,

    /// Connections the kernel holds for the server before it accepts them (the `listen`
    /// backlog; Linux caps it at `net.core.somaxconn`). Past it, a new client's connection
    /// attempt is dropped and retried by its TCP stack a second or more later.
    #[arg(
        long,
        env = "FINSEC_LISTEN_BACKLOG",
        default_value_t = DEFAULT_LISTEN_BACKLOG,
        value_parser = clap::value_parser!(u32).range(1..=65_535),
        global = true
    )]
    pub listen_backlog: u32,

    /// Seconds a client has to send a request's headers; also how long an idle
    /// keep-alive connection stays open. A connection that takes longer is closed.
    #[arg(
        long,
        env = "FINSEC_HEADER_READ_TIMEOUT_SECS",
        default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..=3_600),
        global = true
    )]
    pub header_read_timeout_secs: u64,

    /// Seconds a request may take from its headers to its answer (504 past it).
    #[arg(
        long,
        env = "FINSEC_REQUEST_TIMEOUT_SECS",
        default_value_t = DEFAULT_REQUEST_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..=3_600),
        global = true
    )]
    pub request_timeout_secs: u64,

    /// Seconds a client has to send a whole request body, counted from its headers
    /// (408 past it).
    #[arg(
        long,
        env = "FINSEC_BODY_READ_TIMEOUT_SECS",
        default_value_t = DEFAULT_BODY_READ_TIMEOUT_SECS,
        value_parser = clap::value_parser!(u64).range(1..=3_600),
        global = true
    )]
    pub body_read_timeout_secs: u64,

    /// Largest request body in bytes outside `/auth/` (413 past it).
    #[arg(
        long,
        env = "FINSEC_BODY_LIMIT_BYTES",
        default_value_t = DEFAULT_BODY_LIMIT_BYTES,
        value_parser = clap::value_parser!(u64).range(1_024..=64 * 1024 * 1024),
        global = true
    )]
    pub body_limit_bytes: u64,

    /// Largest request body in bytes on `/auth/` routes (413 past it).
    #[arg(
        long,
        env = "FINSEC_AUTH_BODY_LIMIT_BYTES",
        default_value_t = DEFAULT_AUTH_BODY_LIMIT_BYTES,
        value_parser = clap::value_parser!(u64).range(1_024..=1024 * 1024),
        global = true
    )]
    pub auth_body_limit_bytes: u64,

    /// Password hashes (argon2id, 19 MiB each) computed at once [default: two per CPU
    /// core].
    #[arg(
        long,
        env = "FINSEC_HASH_CONCURRENCY",
        value_parser = clap::value_parser!(u32).range(1..=1_024),
        global = true
    )]
    pub hash_concurrency: Option<u32>,

    /// Password hashes that may wait for a free slot; past them a login or registration
    /// is answered 503 with `Retry-After` at once.
    #[arg(
        long,
        env = "FINSEC_HASH_QUEUE",
        default_value_t = DEFAULT_HASH_QUEUE,
        value_parser = clap::value_parser!(u32).range(0..=10_000),
        global = true
    )]
    pub hash_queue: u32,

    /// Milliseconds a password hash may wait for a free slot before the request is
    /// answered 503 with `Retry-After`.
    #[arg(
        long,
        env = "FINSEC_HASH_QUEUE_TIMEOUT_MS",
        default_value_t = DEFAULT_HASH_QUEUE_TIMEOUT_MS,
        value_parser = clap::value_parser!(u64).range(1..=60_000),
        global = true
    )]
    pub hash_queue_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
            header_read_timeout_secs: DEFAULT_HEADER_READ_TIMEOUT_SECS,
            request_timeout_secs: DEFAULT_REQUEST_TIMEOUT_SECS,
            body_read_timeout_secs: DEFAULT_BODY_READ_TIMEOUT_SECS,
            body_limit_bytes: DEFAULT_BODY_LIMIT_BYTES,
            auth_body_limit_bytes: DEFAULT_AUTH_BODY_LIMIT_BYTES,
            hash_concurrency: None,
            hash_queue: DEFAULT_HASH_QUEUE,
            hash_queue_timeout_ms: DEFAULT_HASH_QUEUE_TIMEOUT_MS,
        }
    }
}

impl LimitsConfig {
    /// Connections served at once.
    pub fn max_connections(&self) -> usize {
        usize::try_from(self.max_connections).unwrap_or(usize::MAX)
    }

    /// The `listen` backlog.
    pub fn listen_backlog(&self) -> u32 {
        self.listen_backlog
    }

    /// Time allowed to send a request's headers (and to stay idle between requests).
    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_secs)
    }

    /// Time allowed from a request's headers to its answer.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    /// Time allowed to send a whole request body.
    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_secs)
    }

    /// Password hashes computed at once: `--hash-concurrency`, or [`HASHES_PER_CORE`] per
    /// core the process may use.
    pub fn hash_concurrency(&self) -> NonZeroUsize {
        let configured = self
            .hash_concurrency
            .and_then(|n| usize::try_from(n).ok())
            .and_then(NonZeroUsize::new);
        configured.unwrap_or_else(|| {
            let cores = std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN);
            NonZeroUsize::new(cores.get().saturating_mul(HASHES_PER_CORE)).unwrap_or(cores)
        })
    }

    /// Time a password hash may wait for a free slot.
    pub fn hash_queue_timeout(&self) -> Duration {
        Duration::from_millis(self.hash_queue_timeout_ms)
    }
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A subcommand of the server binary.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default).
    Serve,
    /// Inspect and rotate the keyring.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Grant, revoke and list users' roles.
    #[command(subcommand)]
    Roles(crate::rbac::roles::RolesCommand),
    /// Grant, revoke and list users' trading-account entitlements.
    #[command(subcommand)]
    Accounts(crate::orders::accounts::AccountsCommand),
    /// Show and clear users' failed-login lockout.
    #[command(subcommand)]
    Users(crate::auth::admin::UsersCommand),
    /// Write MiFIR transaction reports to a file.
    #[command(subcommand)]
    Reports(crate::compliance::command::ReportsCommand),
    /// Retention: what would go, and archive-then-delete runs.
    #[command(subcommand)]
    Retention(crate::gdpr::retention::RetentionCommand),
}

/// Keyring operations for operators. They work on the same files as a running server and
/// never print key material.
#[derive(Debug, Clone, Subcommand)]
pub enum KeysCommand {
    /// Print every key version: name, version, primary, retired, messages encrypted,
    /// rotation due.
    Status,
    /// Add a new primary version of a key. Older versions keep decrypting.
    Rotate {
        /// The key to rotate.
        #[arg(long, default_value = "pii")]
        name: finsec_crypto::KeyName,
    },
    /// Re-wrap every stored subject key under the current primary version of `pii`.
    Rewrap {
        /// Afterwards, retire the older versions (only when nothing failed).
        #[arg(long)]
        retire: bool,
        /// Subject keys per batch.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        batch: u32,
    },
}

fn parse_secret(s: &str) -> Result<SecretString, String> {
    if s.is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(SecretString::from(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["finsec-reference-server"]).unwrap();
        assert!(cli.command.is_none());
        let c = cli.config;
        assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("./finsec-data"));
        assert!(c.postgres_url.is_none() && c.redis_url.is_none());
        assert_eq!(c.log_format, LogFormat::Text);
        assert_eq!(
            c.keyring_path(),
            PathBuf::from("./finsec-data/keyring.sealed")
        );
        assert_eq!(
            c.master_key_path(),
            PathBuf::from("./finsec-data/master.key")
        );
    }

    #[test]
    fn flags_after_subcommand_and_key_names() {
        let cli = Cli::try_parse_from([
            "x",
            "keys",
            "rotate",
            "--name",
            "users.email",
            "--data-dir",
            "/d",
            "--keyring-file",
            "/k/ring",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Keys(KeysCommand::Rotate { ref name })) if name.as_str() == "users.email"
        ));
        assert_eq!(cli.config.keyring_path(), PathBuf::from("/k/ring"));
        assert!(Cli::try_parse_from(["x", "keys", "rotate", "--name", "Bad Name"]).is_err());
        assert!(Cli::try_parse_from(["x", "--log-format", "xml"]).is_err());
        assert!(Cli::try_parse_from(["x", "keys", "rewrap", "--batch", "0"]).is_err());
    }

    #[test]
    fn tls_flags() {
        let cli = Cli::try_parse_from([
            "x",
            "--postgres-ca-file",
            "/tls/db-ca.pem",
            "--redis-ca-file",
            "/tls/cache-ca.pem",
            "--redis-client-cert",
            "/tls/client.crt",
            "--redis-client-key",
            "/tls/client.key",
        ])
        .unwrap();
        let postgres = cli.config.postgres_tls();
        assert_eq!(postgres.ca_file, Some(PathBuf::from("/tls/db-ca.pem")));
        assert!(postgres.client_cert.is_none() && postgres.client_key.is_none());
        assert!(!postgres.is_empty());
        let redis = cli.config.redis_tls();
        assert_eq!(redis.ca_file, Some(PathBuf::from("/tls/cache-ca.pem")));
        assert_eq!(redis.client_cert, Some(PathBuf::from("/tls/client.crt")));
        assert_eq!(redis.client_key, Some(PathBuf::from("/tls/client.key")));
        assert!(Config::with_data_dir("/d").postgres_tls().is_empty());

        // A certificate without its key (or the reverse) is a usage error.
        for flag in [
            "--postgres-client-cert",
            "--postgres-client-key",
            "--redis-client-cert",
            "--redis-client-key",
        ] {
            assert!(
                Cli::try_parse_from(["x", flag, "/tls/x"]).is_err(),
                "{flag}"
            );
        }
    }

    #[test]
    fn limits_have_safe_defaults_and_bounds() {
        let limits = Cli::try_parse_from(["x"]).unwrap().config.limits;
        assert_eq!(limits.max_connections(), 1024);
        assert_eq!(limits.listen_backlog(), 1024);
        assert_eq!(limits.header_read_timeout(), Duration::from_secs(10));
        assert_eq!(limits.request_timeout(), Duration::from_secs(30));
        assert_eq!(limits.body_read_timeout(), Duration::from_secs(10));
        assert_eq!(limits.body_limit_bytes, 65_536);
        assert_eq!(limits.auth_body_limit_bytes, 8_192);
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(limits.hash_concurrency().get(), 2 * cores);
        assert_eq!(limits.hash_queue, 16);
        assert_eq!(limits.hash_queue_timeout(), Duration::from_secs(2));

        let limits = Cli::try_parse_from([
            "x",
            "--max-connections",
            "10",
            "--listen-backlog",
            "64",
            "--header-read-timeout-secs",
            "2",
            "--hash-concurrency",
            "3",
            "--hash-queue",
            "0",
            "--body-limit-bytes",
            "2048",
        ])
        .unwrap()
        .config
        .limits;
        assert_eq!(limits.max_connections(), 10);
        assert_eq!(limits.listen_backlog(), 64);
        assert_eq!(limits.header_read_timeout(), Duration::from_secs(2));
        assert_eq!(limits.hash_concurrency().get(), 3);
        assert_eq!(limits.hash_queue, 0);
        assert_eq!(limits.body_limit_bytes, 2048);
        for bad in [
            ["--max-connections", "0"],
            ["--listen-backlog", "0"],
            ["--listen-backlog", "65536"],
            ["--header-read-timeout-secs", "0"],
            ["--request-timeout-secs", "0"],
            ["--body-read-timeout-secs", "0"],
            ["--body-limit-bytes", "10"],
            ["--auth-body-limit-bytes", "99999999"],
            ["--hash-concurrency", "0"],
            ["--hash-queue-timeout-ms", "0"],
        ] {
            assert!(
                Cli::try_parse_from(["x", bad[0], bad[1]]).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_tls_files_name_the_flag_and_file() {
        let mut config = Config::with_data_dir("/d");
        config.redis_ca_file = Some(PathBuf::from("/nonexistent/ca.pem"));
        let e = config.redis_tls().read_ca().unwrap_err().to_string();
        assert!(
            e.contains("--redis-ca-file /nonexistent/ca.pem: cannot read it"),
            "{e}"
        );
        config.postgres_client_cert = Some(PathBuf::from("/nonexistent/client.crt"));
        let e = config
            .postgres_tls()
            .read_client_identity()
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be given together"), "{e}");
        config.postgres_client_key = Some(PathBuf::from("/nonexistent/client.key"));
        let e = config
            .postgres_tls()
            .read_client_identity()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--postgres-client-cert /nonexistent/client.crt"),
            "{e}"
        );
    }

    #[test]
    fn debug_hides_passwords() {
        let mut cli = Cli::try_parse_from([
            "x",
            "--postgres-url",
            "postgres://app:pg-s3cret@db/finsec",
            "--redis-url",
            "redis://:redis-s3cret@cache:6379",
        ])
        .unwrap();
        cli.config.master_passphrase = Some(SecretString::from("passphrase-s3cret".to_owned()));
        let debug = format!("{cli:?} {cli:#?}");
        assert!(debug.contains("REDACTED"), "{debug}");
        for secret in ["pg-s3cret", "redis-s3cret", "passphrase-s3cret"] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }
}
