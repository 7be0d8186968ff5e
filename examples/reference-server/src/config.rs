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

    /// Redis URL; when set, Redis is connected to and checked at start.
    #[arg(
        long,
        env = "FINSEC_REDIS_URL",
        hide_env_values = true,
        value_parser = parse_secret,
        global = true
    )]
    pub redis_url: Option<SecretString>,

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

    /// Serving limits: connections, timeouts, body sizes, password hashing.
    #[command(flatten)]
    pub limits: LimitsConfig,

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
            redis_url: None,
            keyring_file: None,
            log_format: LogFormat::Text,
            auth: crate::auth::AuthConfig::default(),
            rbac: crate::rbac::RbacConfig::default(),
            rate_limits: crate::ratelimit::RateLimitConfig::default(),
            limits: LimitsConfig::default(),
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
}

/// The default of `--max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 1024;
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
    fn limits_have_safe_defaults_and_bounds() {
        let limits = Cli::try_parse_from(["x"]).unwrap().config.limits;
        assert_eq!(limits.max_connections(), 1024);
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
        assert_eq!(limits.header_read_timeout(), Duration::from_secs(2));
        assert_eq!(limits.hash_concurrency().get(), 3);
        assert_eq!(limits.hash_queue, 0);
        assert_eq!(limits.body_limit_bytes, 2048);
        for bad in [
            ["--max-connections", "0"],
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
