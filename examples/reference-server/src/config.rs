//! Command line and environment configuration.
//!
//! Every setting is a flag with an environment variable behind it (the flag wins). URLs
//! that may carry a password are held as [`SecretString`], so the derived `Debug` of
//! [`Config`] prints `[REDACTED]` for them, and `--help` never shows their environment
//! values.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
            keyring_file: None,
            log_format: LogFormat::Text,
            auth: crate::auth::AuthConfig::default(),
            rbac: crate::rbac::RbacConfig::default(),
            rate_limits: crate::ratelimit::RateLimitConfig::default(),
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
