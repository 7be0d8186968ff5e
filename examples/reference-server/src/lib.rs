//! The finsec reference server: an axum service wiring the finsec crates together.
//!
//! Library plus a thin binary, so tests (and other binaries) can start it. [`run`] does
//! what the binary does for the default (serve) command; [`Server`] splits it into
//! binding and serving, so a caller can learn the bound address (listen on port 0) and
//! choose the shutdown signal; [`build_app`] gives the bare router.
//!
//! What the server does at start, in order:
//!
//! 1. creates the data directory (mode `0700`) if it is missing;
//! 2. loads the sealed keyring, or creates it with the keys `pii` and `server-secrets`
//!    (see [`keys`]);
//! 3. opens the database (SQLite `finsec.db` in the data directory, or PostgreSQL, with
//!    TLS as `sslmode` says; TLS files are checked first);
//! 4. loads the RBAC policy file, created from finsec-rbac's preset on first start (see
//!    [`rbac`]); a file that does not load stops start-up with the loader's error;
//! 5. connects to Redis if configured (with TLS for `rediss://`) and checks it answers
//!    `PING`;
//! 6. runs the migrations;
//! 7. binds the listening socket and logs `listening on http://ADDR`.
//!
//! Every request then goes through one pipeline of layers (see [`http::layers`]): security
//! headers, request id, a tracing span, the client address, the global and `/auth/` rate
//! limits, authentication (for every route), the per-principal rate limit, then the
//! handler. Every error answer, from a handler, an extractor, a fallback or a layer, is an
//! RFC 9457 problem ([`problem::Problem`], `application/problem+json`).
//!
//! # TLS to PostgreSQL and Redis
//!
//! Both clients use rustls with the aws-lc-rs provider. For a managed database, require a
//! verified connection:
//!
//! ```text
//! finsec-reference-server \
//!     --postgres-url 'postgres://app@db.example.com/finsec?sslmode=verify-full' \
//!     --postgres-ca-file /etc/finsec/db-ca.pem \
//!     --redis-url 'rediss://:PASSWORD@cache.example.com:6380' \
//!     --redis-ca-file /etc/finsec/cache-ca.pem
//! ```
//!
//! | setting | environment | what it does |
//! |---------|-------------|--------------|
//! | `sslmode=` in `--postgres-url` | `FINSEC_POSTGRES_URL` | `verify-full` checks the chain and host name, `verify-ca` the chain (with sqlx 0.8.6 the host name too), `require` encrypts without checking; absent, sqlx's `prefer` tries TLS without checking and may fall back to plain TCP |
//! | `--postgres-ca-file PEM` | `FINSEC_POSTGRES_CA_FILE` | CA certificates trusted for PostgreSQL, added to the public web roots; turns `require` into `verify-ca`; refused with `disable`, `allow`, `prefer` |
//! | `--postgres-client-cert PEM`, `--postgres-client-key PEM` | `FINSEC_POSTGRES_CLIENT_CERT`, `FINSEC_POSTGRES_CLIENT_KEY` | a client certificate for PostgreSQL (`clientcert=verify-full` in `pg_hba.conf`) |
//! | `rediss://` in `--redis-url` | `FINSEC_REDIS_URL` | TLS to Redis, checking the chain and host name (there is no unchecked mode: `#insecure` is refused) |
//! | `--redis-ca-file PEM` | `FINSEC_REDIS_CA_FILE` | CA certificates trusted for Redis, instead of the system's roots; needs `rediss://` |
//! | `--redis-client-cert PEM`, `--redis-client-key PEM` | `FINSEC_REDIS_CLIENT_CERT`, `FINSEC_REDIS_CLIENT_KEY` | a client certificate for Redis (`tls-auth-clients yes`); needs `rediss://` |
//!
//! Every file is read and checked at start: a missing or unparsable file, a key that does
//! not belong to its certificate, or TLS files the URL would not use stop start-up with an
//! error naming the flag and the file. sqlx reads the PostgreSQL files again for each new
//! connection (renewed files are picked up); the Redis files are read once.
//!
//! On SIGTERM or Ctrl-C it stops accepting connections, lets requests in flight finish
//! (for up to [`DRAIN_TIMEOUT`]), saves the keyring usage counters and exits.
//!
//! # Threat model
//!
//! What this skeleton defends against:
//!
//! - **Key material at rest.** The keyring file is sealed (AES-256-GCM under an argon2id
//!   passphrase key or a random master key); the data directory is `0700` and a generated
//!   `master.key` is `0600`, and the server refuses to start if that file is readable or
//!   writable by others. Subject keys in the database are stored only wrapped by the `pii`
//!   KEK; the server's own secrets (JWT seeds, TOTP secrets, the backup-code key) by a KEK
//!   of their own, `server-secrets`, so either is rotated or retired without the other.
//! - **Leaking credentials.** Database and Redis URLs are secret types: `Debug` and the logs
//!   show them with the password removed; error messages at start do the same.
//! - **Browser-side attacks on API responses.** Every response (404s and errors included)
//!   carries a deny-all CSP, `X-Frame-Options: DENY`, `nosniff`, HSTS, `no-referrer` and
//!   `Cache-Control: no-store`.
//! - **Stolen or forged credentials** (see [`auth`]): EdDSA access tokens with `jti`
//!   revocation, rotating refresh tokens with reuse detection, TOTP with replay protection
//!   shared across instances, API keys stored as hashes; passwords argon2id with a pepper
//!   outside the database; one indistinguishable 401 problem for every refused credential.
//!   Credentials are checked in one layer for every route; the refusal reason is kept in
//!   the request (for logs and audit), never the credential, and never sent to the client.
//! - **Unauthorized or unchecked orders** (see [`orders`], [`rbac`]): every order route is
//!   checked against the RBAC policy with the user's roles read per request (API keys can
//!   only narrow it); orders are validated field by field and notes sanitised; orders
//!   above `--approval-notional` need a second person's approval (maker-checker).
//! - **Password guessing and request floods** (see [`ratelimit`]): every request is limited
//!   per client address, the authentication endpoints per address, login and
//!   second-factor attempts per address and per account (unknown accounts alike), API
//!   calls per principal; forwarding headers count only from `--trusted-proxy` peers. The
//!   client address is resolved once, in the client-address layer, so the rate limits and
//!   the RBAC address conditions agree on it.
//! - **Leaking internals through errors.** Every error is a problem body with a fixed
//!   `type` and `title`; internal failures are logged under the request id and answered
//!   with a generic detail, never their cause.
//! - **Log injection through request ids.** An incoming `X-Request-Id` is kept only if it
//!   is at most 64 characters of `[A-Za-z0-9._-]`; anything else is replaced by a UUIDv7.
//! - **Losing usage counters.** Key usage counts are merged into the keyring file under its
//!   lock at shutdown, so an operator's `keys rotate` while the server runs is not undone.
//!
//! What it does not defend against (yet):
//!
//! - **Distributed password guessing.** The per-account login limit also slows the
//!   account's owner down while someone guesses (a lockout an attacker can cause), and
//!   with memory limits (no Redis) each instance counts on its own. `/health` and
//!   `/openapi.json` are public by design, and `/health` shows
//!   key names, their primary versions and whether rotation is due (no key material).
//!   Admin operations are the `keys` and `roles` subcommands, run by whoever can read the
//!   data directory.
//! - **Transport security.** The server speaks plain HTTP; terminate TLS in front of it
//!   (HSTS only takes effect over HTTPS). Its own connections to PostgreSQL and Redis are
//!   verified TLS only when configured so (`sslmode=verify-full`, `rediss://`; see
//!   above): the defaults follow the URL, and a URL without `sslmode` does not insist.
//! - **Slow clients.** There is no header-read timeout; put the server behind a proxy
//!   that has one. Rate limits count requests, not connections or bytes.
//! - **A master key file next to the keyring.** Anyone who can read both files can open
//!   the keyring; set `FINSEC_MASTER_PASSPHRASE` from a secrets manager in production.
#![forbid(unsafe_code)]

pub mod auth;
pub mod config;
pub mod error;
pub mod http;
pub mod keys;
pub mod openapi;
pub mod openapi_links;
pub mod orders;
pub mod problem;
pub mod ratelimit;
pub mod rbac;
pub mod redis_backend;
pub mod shutdown;
pub mod state;
pub mod storage;
pub mod telemetry;

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

pub use config::{Cli, Command, Config, KeysCommand, LogFormat};
pub use error::{Result, ServerError};
pub use http::build_app;
pub use state::AppState;

use keys::KeyringFile;
use redis_backend::Redis;
use storage::Storage;

/// How long requests in flight may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long closing the database pool may take at shutdown (a request abandoned after
/// [`DRAIN_TIMEOUT`] may still hold a connection, and closing waits for it).
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs what the command line asks for: serving HTTP (until SIGTERM or Ctrl-C), or a
/// `keys` subcommand writing its output to `out`.
///
/// # Errors
/// Whatever stopped the server or the subcommand.
pub async fn run_cli(cli: Cli, out: &mut dyn Write) -> Result<()> {
    match cli.command {
        None | Some(Command::Serve) => run(cli.config).await,
        Some(Command::Keys(command)) => keys::run_command(&cli.config, &command, out).await,
        Some(Command::Roles(command)) => rbac::roles::run_command(&cli.config, &command, out).await,
    }
}

/// Starts the server and serves until SIGTERM or Ctrl-C.
///
/// # Errors
/// Whatever prevented it from starting, or a failure while serving.
pub async fn run(config: Config) -> Result<()> {
    // Installed before anything else: a SIGTERM during start-up then stops the server
    // gracefully as soon as it serves, instead of killing it half-way.
    let shutdown = shutdown::signal();
    Server::bind(&config).await?.serve(shutdown).await
}

/// A started server: state loaded, backends connected, socket bound, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    addr: SocketAddr,
    app: Router,
    state: AppState,
    keyring_file: KeyringFile,
}

impl Server {
    /// Prepares everything (see the [crate docs](crate)) and binds the listening socket.
    ///
    /// # Errors
    /// The first step that failed, with what and where.
    pub async fn bind(config: &Config) -> Result<Self> {
        keys::ensure_data_dir(config.data_dir())?;
        let keyring_file = KeyringFile::for_server(config)?;
        let keyring = Arc::new(keyring_file.load_or_create()?);
        let storage = Storage::open(config).await?;
        let (state, app, listener, addr) = match Self::connect(config, &storage, keyring).await {
            Ok(parts) => parts,
            Err(e) => {
                storage.close().await;
                return Err(e);
            }
        };
        tracing::info!(
            storage = %state.storage().backend(),
            redis = state.redis().map_or("absent", |r| r.redacted_url()),
            keyring = %keyring_file.path().display(),
            "started"
        );
        Ok(Self {
            listener,
            addr,
            app,
            state,
            keyring_file,
        })
    }

    /// The steps of [`bind`](Self::bind) after the database is open; on error the caller
    /// closes the database.
    async fn connect(
        config: &Config,
        storage: &Storage,
        keyring: Arc<finsec_crypto::Keyring>,
    ) -> Result<(AppState, Router, TcpListener, SocketAddr)> {
        // First, so that a policy that does not load stops start-up before anything else.
        let policy = rbac::load_or_create_policy(config.data_dir(), &config.rbac)?;
        let redis = match &config.redis_url {
            Some(url) => Some(Redis::connect(url, &config.redis_tls()).await?),
            None => None,
        };
        auth::migrate(storage).await?;
        let auth =
            Arc::new(auth::Auth::new(config, storage, redis.as_ref(), Arc::clone(&keyring)).await?);
        let orders = orders::Orders::open(storage, policy, &config.rbac).await?;
        let rate_limits = ratelimit::RateLimits::open(config, redis.as_ref()).await?;
        let state =
            AppState::new(storage.clone(), redis, keyring, auth, orders, rate_limits).await?;
        let app = build_app(state.clone())?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ServerError::Bind {
            addr: config.listen,
            source,
        })?;
        Ok((state, app, listener, addr))
    }

    /// The address the server listens on (with the real port when the configured port was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The application state.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains requests in flight (at most
    /// [`DRAIN_TIMEOUT`]), saves the keyring usage counters and closes the database.
    ///
    /// # Errors
    /// [`ServerError::Serve`] if accepting connections fails; [`ServerError::Keyring`] if
    /// the counters cannot be saved.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Self {
            listener,
            addr,
            app,
            state,
            keyring_file,
        } = self;
        tracing::info!("listening on http://{addr}");

        let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
        let signal = async move {
            shutdown.await;
            let _ = stopping_tx.send(true);
        };
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(signal);
        let drain_deadline = async move {
            if stopping_rx.wait_for(|stopping| *stopping).await.is_ok() {
                tokio::time::sleep(DRAIN_TIMEOUT).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let result = tokio::select! {
            result = served => result.map_err(ServerError::Serve),
            () = drain_deadline => {
                tracing::warn!(
                    "requests still in flight {}s after the shutdown signal; closing them",
                    DRAIN_TIMEOUT.as_secs()
                );
                Ok(())
            }
        };

        // API key usage is recorded in batches; write the last one before closing.
        if let Err(e) = state
            .auth()
            .api_keys()
            .flush_usage_at(time::OffsetDateTime::now_utc())
            .await
        {
            tracing::warn!(error = %e, "could not save api key usage");
        }
        let saved = keyring_file.save_counters(state.keyring());
        match &saved {
            Ok(()) => tracing::info!("saved keyring usage counters"),
            Err(e) => tracing::error!(error = %e, "could not save keyring usage counters"),
        }
        if tokio::time::timeout(CLOSE_TIMEOUT, state.storage().close())
            .await
            .is_err()
        {
            tracing::warn!(
                "database connections still in use {}s after shutdown; not waiting for them",
                CLOSE_TIMEOUT.as_secs()
            );
        }
        tracing::info!("stopped");
        result.and(saved)
    }
}
