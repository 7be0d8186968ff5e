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
//! 3. opens the database: SQLite `finsec.db` in the data directory, after taking the
//!    directory's lock ([`storage::DataDirLock`]: a second server on the same directory
//!    is refused), or PostgreSQL, with TLS as `sslmode` says (TLS files are checked first);
//! 4. loads the RBAC policy file, created from finsec-rbac's preset on first start (see
//!    [`rbac`]); a file that does not load stops start-up with the loader's error;
//!    the MiFID II firm configuration (`--firm-config`, see [`compliance`]) is read with
//!    it, and a file that does not load stops start-up the same way;
//! 5. connects to Redis if configured (with TLS for `rediss://`) and checks it answers
//!    `PING`;
//! 6. runs the migrations: the finsec crates', then each capability's, as registered in
//!    [`capabilities`] (the one place a capability is added, with its routes);
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
//! # Serving limits
//!
//! What one client may cost the server is bounded, each limit a flag with an environment
//! variable (see `--help` and [`config::LimitsConfig`]):
//!
//! | Limit | Flag | Default | Past it |
//! |---|---|---|---|
//! | connections served at once | `--max-connections` | 1024 | new clients wait in the listen backlog |
//! | connections waiting to be accepted | `--listen-backlog` | 1024 (Linux caps it at `net.core.somaxconn`) | a new client's connection attempt is dropped; its TCP stack retries after a second or more |
//! | time to send a request's headers, and to stay idle between requests | `--header-read-timeout-secs` | 10 s | the connection is closed |
//! | time from the headers to the answer | `--request-timeout-secs` | 30 s | `504` problem |
//! | time to send the whole body, from the headers | `--body-read-timeout-secs` | 10 s | `408` problem |
//! | body size on `/auth/...` | `--auth-body-limit-bytes` | 8 KiB | `413` problem |
//! | body size elsewhere | `--body-limit-bytes` | 64 KiB | `413` problem |
//! | password hashes (argon2id, 19 MiB each) at once | `--hash-concurrency` | 2 per core | they wait in the queue |
//! | password hashes waiting | `--hash-queue`, `--hash-queue-timeout-ms` | 16, 2 s | `503` problem with `Retry-After` |
//!
//! A body whose `Content-Length` is above the limit is refused before any of it is read; a
//! chunked body is cut off as soon as it passes the limit (see [`http::layers::limits`]).
//! Answers that leave a body unread carry `Connection: close`, and a closing connection
//! reads and discards what the client still sends for up to a second, so the client reads
//! its answer instead of a reset. Every login and registration takes a place in the
//! password hashing queue before any other work, so a refused one costs no database
//! lookup (see [`auth::hashing`]). The server speaks HTTP/1.1 (no h2c).
//!
//! On glibc, set `MALLOC_MMAP_THRESHOLD_=131072` in the server's environment: with glibc's
//! default (a threshold that rises after the first large free), every freed 19 MiB argon2
//! buffer stays in the heap, and under a login flood the process keeps hundreds of MiB it
//! no longer uses (measured: 700 MiB after 4 s of 200 clients, against 75 MiB with the
//! setting). The hashing queue bounds the memory in use either way.
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
//!   only narrow it) and needs an entitlement to the order's trading account; orders are
//!   validated field by field, notes sanitised and limits kept within a band around the
//!   reference price; orders valued (at least at the reference price) above
//!   `--approval-notional`, or taking the trader's or account's day above it, need a
//!   second person's approval (maker-checker).
//! - **Password guessing and request floods** (see [`ratelimit`]): every request is limited
//!   per client address, the authentication endpoints per address, login and
//!   second-factor attempts per address and per account (unknown accounts alike), API
//!   calls per principal; forwarding headers count only from `--trusted-proxy` peers. The
//!   client address is resolved once, in the client-address layer, so the rate limits and
//!   the RBAC address conditions agree on it.
//! - **Leaking internals through errors.** Every error is a problem body with a fixed
//!   `type` and `title`; internal failures are logged under the request id and answered
//!   with a generic detail, never their cause.
//! - **Slow and oversized requests, and login floods** (see [Serving limits](#serving-limits)):
//!   headers must arrive within `--header-read-timeout-secs` (slowloris), bodies within
//!   `--body-read-timeout-secs` and the route's size limit, answers within
//!   `--request-timeout-secs`; connections are capped; password hashing runs on a fixed
//!   number of threads with a short queue, so a flood of logins costs bounded memory and
//!   CPU and is answered `503` with `Retry-After`.
//! - **Log injection through request ids.** An incoming `X-Request-Id` is kept only if it
//!   is at most 64 characters of `[A-Za-z0-9._-]`; anything else is replaced by a UUIDv7.
//! - **Losing usage counters.** Key usage counts are merged into the keyring file under its
//!   lock at shutdown, so an operator's `keys rotate` while the server runs is not undone.
//! - **Personal data that outlives an erasure** (see [`gdpr`]): names, session addresses
//!   and user agents, and the personal details of a user's own audit events are sealed
//!   under the user's subject key, so shredding it reaches every copy; what MiFID II keeps
//!   is pseudonymised; erasing, renaming or restricting one's own account needs the
//!   password, not just a session.
//!
//! What it does not defend against (yet):
//!
//! - **Distributed password guessing.** The per-account login limit also slows the
//!   account's owner down while someone guesses (a lockout an attacker can cause), and
//!   with memory limits (no Redis) each instance counts on its own. `/health` and
//!   `/openapi.json` are public by design, and `/health` shows
//!   key names, their primary versions and whether rotation is due (no key material).
//!   Admin operations are the `keys`, `roles` and `accounts` subcommands, run by whoever
//!   can read the data directory, and the admin API (`/admin/users/{id}/accounts` and
//!   `/admin/users/{id}/roles`, with a recent login; a role grant needs a second admin).
//! - **Transport security.** The server speaks plain HTTP; terminate TLS in front of it
//!   (HSTS only takes effect over HTTPS). Its own connections to PostgreSQL and Redis are
//!   verified TLS only when configured so (`sslmode=verify-full`, `rediss://`; see
//!   above): the defaults follow the URL, and a URL without `sslmode` does not insist.
//! - **Many slow clients at once.** The serving limits bound what each connection holds
//!   and for how long, but `--max-connections` clients that keep sending slowly within
//!   the timeouts can fill the server; rate limits count requests, not connections or
//!   bytes. A proxy or load balancer with per-address connection limits in front of the
//!   server closes that gap.
//! - **Others writing the shared Redis.** Whoever can write the server's Redis keys can
//!   lift rate limits, replay TOTP codes and undo revocations, and, by putting back a
//!   user's old version stamp, keep an instance answering that user's previous row for up
//!   to [`auth::user_cache::SHARED_MAX_AGE`]. Give the servers a Redis (or an ACL user and
//!   key prefix) of their own, over `rediss://`.
//! - **A master key file next to the keyring.** Anyone who can read both files can open
//!   the keyring; set `FINSEC_MASTER_PASSPHRASE` from a secrets manager in production.
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod capabilities;
pub mod compliance;
pub mod config;
pub mod controls;
pub mod error;
pub mod gdpr;
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
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tower::Service as _;

pub use config::{Cli, Command, Config, KeysCommand, LogFormat};
pub use error::{Result, ServerError};
pub use http::build_app;
pub use state::AppState;

use keys::KeyringFile;
use redis_backend::Redis;
use storage::Storage;

/// How long requests in flight may take to finish after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a closing connection keeps discarding what its client still sends.
const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

/// How much a closing connection discards at most before it closes anyway.
const LINGER_BYTES: usize = 256 * 1024;

/// How long the accept loop pauses after a failure such as running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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
        Some(Command::Accounts(command)) => {
            orders::accounts::run_command(&cli.config, &command, out).await
        }
        Some(Command::Users(command)) => auth::admin::run_command(&cli.config, &command, out).await,
        Some(Command::Reports(command)) => {
            compliance::command::run_command(&cli.config, &command, out).await
        }
        Some(Command::Retention(command)) => {
            gdpr::retention::run_command(&cli.config, &command, out).await
        }
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
    limits: config::LimitsConfig,
    /// The embedded database's lock, held until [`serve`](Self::serve) returns.
    owner: Option<storage::DataDirLock>,
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
        // Before the database opens: a second server on this data directory stops here.
        let owner = match config.postgres_url {
            None => Some(storage::DataDirLock::acquire(config.data_dir())?),
            Some(_) => None,
        };
        let storage = Storage::open(config).await?;
        let connected = Self::connect(config, &storage, keyring, owner.as_ref()).await;
        let (state, app, listener, addr) = match connected {
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
            limits: config.limits.clone(),
            owner,
        })
    }

    /// The steps of [`bind`](Self::bind) after the database is open; on error the caller
    /// closes the database.
    async fn connect(
        config: &Config,
        storage: &Storage,
        keyring: Arc<finsec_crypto::Keyring>,
        owner: Option<&storage::DataDirLock>,
    ) -> Result<(AppState, Router, TcpListener, SocketAddr)> {
        // First, so that a policy that does not load stops start-up before anything else.
        let policy = rbac::load_or_create_policy(config.data_dir(), &config.rbac)?;
        let redis = match &config.redis_url {
            Some(url) => Some(Redis::connect(url, &config.redis_tls()).await?),
            None => None,
        };
        capabilities::migrate(storage).await?;
        let auth = auth::Auth::new(config, storage, redis.as_ref(), Arc::clone(&keyring), owner);
        let auth = Arc::new(auth.await?);
        // The incident controls, shared by order entry, the request pipeline and the
        // monitor's responses; loaded before the first request.
        let controls = Arc::new(controls::Watcher::new(Arc::clone(
            &storage.stores().crates.controls,
        )));
        controls.refresh().await.map_err(|e| ServerError::Storage {
            backend: storage.backend().as_str(),
            target: "finsec_rbac_controls".to_owned(),
            source: Box::new(e),
        })?;
        let orders = orders::Orders::open(storage, policy, &config.rbac)
            .await?
            .with_controls(Arc::clone(&controls));
        let rate_limits = ratelimit::RateLimits::open(config, redis.as_ref()).await?;
        let request_limits = http::layers::limits::RequestLimits::from_config(&config.limits);
        let responder = Arc::new(controls::Responder::new(
            Arc::clone(&controls),
            Arc::clone(&auth),
        ));
        let audit = audit::Audit::open(config, storage, &keyring, responder).await?;
        let compliance = Arc::new(compliance::Compliance::open(
            &config.compliance,
            compliance::Parts {
                storage: storage.clone(),
                prices: Arc::clone(orders.prices()),
                audit: audit.clone(),
                subject_keys: state::subject_keys(storage, &keyring)?,
                users: Arc::clone(auth.users()),
            },
        )?);
        let orders = orders.with_fills(Arc::clone(&compliance));
        let gdpr = Arc::new(
            gdpr::Gdpr::open(
                config,
                gdpr::Parts {
                    storage: storage.clone(),
                    auth: Arc::clone(&auth),
                    compliance: Arc::clone(&compliance),
                    audit: audit.clone(),
                    keyring: Arc::clone(&keyring),
                },
            )
            .await?,
        );
        let state = AppState::new(
            storage.clone(),
            redis,
            keyring,
            auth,
            orders,
            rate_limits,
            request_limits,
            audit,
            compliance,
            gdpr,
        )
        .await?;
        let app = build_app(state.clone())?;
        let listener = listen(config.listen, config.limits.listen_backlog()).map_err(|source| {
            ServerError::Bind {
                addr: config.listen,
                source,
            }
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
    /// Connections are served over HTTP/1.1 within the [serving limits](crate#serving-limits):
    /// at most `--max-connections` at once (further clients wait in the listen backlog),
    /// each closed if a request's headers take longer than `--header-read-timeout-secs` or
    /// it stays idle that long between requests.
    ///
    /// # Errors
    /// [`ServerError::Keyring`] if the counters cannot be saved. A failure to accept a
    /// connection (for example when the process is out of file descriptors) is logged and
    /// retried, never fatal.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Self {
            listener,
            addr,
            app,
            state,
            keyring_file,
            limits,
            owner,
        } = self;
        tracing::info!("listening on http://{addr}");
        let maintenance = tokio::spawn(maintain(state.clone()));
        let compliance = Arc::clone(state.compliance());
        tokio::spawn(async move {
            if let Err(e) = compliance.reconcile(None).await {
                tracing::error!(error = %e, "reconciling unreported fills");
            }
        });
        let watching = tokio::spawn(controls::watch(Arc::clone(state.orders().controls())));

        let max_connections = limits.max_connections().min(Semaphore::MAX_PERMITS);
        let connections = Arc::new(Semaphore::new(max_connections));
        let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
        let mut http1 = hyper::server::conn::http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout())
            .keep_alive(true);
        accept_until(listener, app, &http1, &connections, &stopping_rx, shutdown).await;
        // Stop accepting (the listener is closed), then ask every connection to finish
        // its request in flight and close; idle keep-alive connections close at once.
        let _ = stopping_tx.send(true);
        let drained = tokio::time::timeout(
            DRAIN_TIMEOUT,
            connections.acquire_many(u32::try_from(max_connections).unwrap_or(u32::MAX)),
        )
        .await;
        if drained.is_err() {
            tracing::warn!(
                "requests still in flight {}s after the shutdown signal; closing them",
                DRAIN_TIMEOUT.as_secs()
            );
        }

        maintenance.abort();
        watching.abort();
        // API key usage is recorded in batches; write the last one before closing.
        if let Err(e) = state
            .auth()
            .api_keys()
            .flush_usage_at(time::OffsetDateTime::now_utc())
            .await
        {
            tracing::warn!(error = %e, "could not save api key usage");
        }
        // Everything accepted into the audit log, and a last signed checkpoint.
        state.audit().shutdown().await;
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
        // The database is closed: another server may now take it.
        drop(owner);
        tracing::info!("stopped");
        saved
    }
}

/// A listening socket on `addr` whose kernel queue holds `backlog` connections not yet
/// accepted. (`TcpListener::bind` would leave it at 128: a burst of new clients larger than
/// that, while the server is busy, has its connection attempts dropped, and each client's
/// TCP stack retries only a second or more later.)
pub fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    // As `TcpListener::bind` does: a restarted server may take its port at once.
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// Accepts connections until `shutdown` completes, each served on its own task holding one
/// of the `connections` permits; waits for a permit before accepting, so a full server
/// leaves new clients in the listen backlog instead of spawning tasks for them.
async fn accept_until(
    listener: TcpListener,
    app: Router,
    http1: &hyper::server::conn::http1::Builder,
    connections: &Arc<Semaphore>,
    stopping: &tokio::sync::watch::Receiver<bool>,
    shutdown: impl Future<Output = ()>,
) {
    let mut make_service = app.into_make_service_with_connect_info::<SocketAddr>();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return,
            permit = Arc::clone(connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                // Never closed; stop serving rather than spin if it were.
                Err(_) => return,
            },
        };
        let (stream, remote) = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, %remote, "cannot set TCP_NODELAY");
        }
        let Ok(service) = make_service.call(remote).await;
        let connection =
            http1.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // A closed channel (the server is gone) counts as stopping too.
            let stop = async move {
                let _ = stopping.wait_for(|stopping| *stopping).await;
            };
            serve_connection(connection, stop, remote).await;
        });
    }
}

/// How often the server's housekeeping runs: dropping failed-login counts idle longer than
/// the lockout policy keeps them.
pub const MAINTENANCE_EVERY: Duration = Duration::from_secs(3600);

/// Housekeeping while the server runs, every [`MAINTENANCE_EVERY`] from start: drops
/// failed-login counts idle longer than the lockout policy keeps them. A failure is logged
/// and retried next time.
async fn maintain(state: AppState) {
    let mut every = tokio::time::interval(MAINTENANCE_EVERY);
    loop {
        every.tick().await;
        match state
            .auth()
            .lockout()
            .purge(time::OffsetDateTime::now_utc())
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "idle failed-login counts dropped"),
            Err(e) => tracing::warn!(error = %e, "could not drop idle failed-login counts"),
        }
    }
}

/// Drives one connection until it is done, asking it to finish its request in flight and
/// close once `stop` completes; then closes it with [`linger`].
async fn serve_connection<S>(
    mut connection: hyper::server::conn::http1::Connection<TokioIo<TcpStream>, S>,
    stop: impl Future<Output = ()>,
    remote: SocketAddr,
) where
    S: hyper::service::HttpService<hyper::body::Incoming> + Unpin,
    S::Future: Unpin,
    S::ResBody: 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut stop = std::pin::pin!(stop);
    let mut stopping = false;
    let served = std::future::poll_fn(|cx| {
        if !stopping && stop.as_mut().poll(cx).is_ready() {
            stopping = true;
            std::pin::Pin::new(&mut connection).graceful_shutdown();
        }
        connection.poll_without_shutdown(cx)
    })
    .await;
    match served {
        Ok(()) => linger(connection.into_parts().io.into_inner()).await,
        // Header-read timeouts, resets and malformed requests: the client's doing, not
        // ours; the socket is closed at once.
        Err(e) => tracing::debug!(error = %e, %remote, "connection closed with an error"),
    }
}

/// Closes a connection the way a careful server does ("lingering close"): sends FIN, then
/// reads and discards what the client still sends (a request body the server answered
/// without reading, such as a 413) for a bounded time and size. Closing a socket with
/// unread data makes the kernel send a reset, which can destroy the response before the
/// client has read it.
async fn linger(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut buf = [0_u8; 8192];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER_TIMEOUT, async {
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Logs a failed `accept` and, when the process is out of resources (file descriptors,
/// memory), pauses briefly so the loop does not spin while connections close.
async fn accept_failed(error: &std::io::Error) {
    use std::io::ErrorKind;
    match error.kind() {
        // The client gave up between SYN and accept: nothing to do.
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted => {
            tracing::debug!(error = %error, "accept failed");
        }
        _ => {
            tracing::warn!(error = %error, "accept failed; retrying shortly");
            tokio::time::sleep(ACCEPT_BACKOFF).await;
        }
    }
}
