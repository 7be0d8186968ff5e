//! The database: embedded SQLite by default, PostgreSQL when a URL is configured.
//!
//! PostgreSQL connections use TLS (rustls) as `sslmode` in the URL says: `verify-full`
//! checks the certificate chain and the host name, `verify-ca` the chain (and, with sqlx
//! 0.8.6 and current rustls, the host name too: stricter than libpq), `require` encrypts
//! without checking; without `sslmode`, sqlx's default `prefer` tries TLS without
//! checking and falls back to plain TCP. Trusted roots are the public web roots plus
//! `--postgres-ca-file` (or `sslrootcert` in the URL).
//!
//! This module is the one place that knows which backend is configured: it builds every
//! store (the finsec crates' and the server's own, [`Stores`]) on the pool, so services and
//! handlers only ever see store traits.

pub mod sql;
#[cfg(test)]
pub(crate) mod suite;

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use finsec_sql::migrations::{prepare, run_postgres};
use secrecy::ExposeSecret;
use serde::Serialize;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use utoipa::ToSchema;

use std::sync::Arc;

use finsec_auth::api_keys::ApiKeyStore;
use finsec_auth::lockout::FailureStore;
use finsec_auth::mfa::{BackupCodeStore, TotpReplayStore};
use finsec_auth::tokens::{RefreshTokenStore, RevocationStore};
use finsec_crypto::SubjectKeyStore;
use finsec_crypto::secret::redact_url;
use finsec_rbac::ApprovalStore;

use crate::auth::secrets::SecretStore;
use crate::auth::sessions::SessionStore;
use crate::auth::users::UserStore;
use crate::config::{Config, TlsFiles};
use crate::error::{Result, ServerError};
use crate::orders::accounts::EntitlementStore;
use crate::orders::store::OrderStore;
use crate::rbac::roles::RoleStore;

/// How long to wait for a database connection before failing.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The default of `--postgres-max-connections`: enough for 32 concurrent requests
/// without queueing for a connection (measured with `scripts/load.sh`), a third of
/// PostgreSQL's default `max_connections` per instance.
pub const DEFAULT_PG_MAX_CONNECTIONS: u32 = 32;

/// Which database holds the server's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// The embedded SQLite file in the data directory.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl StorageBackend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

impl fmt::Display for StorageBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Applies `--postgres-ca-file` and the client certificate to `options`, after checking
/// the files at start (sqlx reads them again for each new connection, so files renewed on
/// disk are picked up without a restart).
///
/// TLS files only make sense if TLS is required: with `sslmode` `disable`, `allow` or
/// `prefer` (sqlx's default), a connection may silently go without TLS, or without
/// checking the certificate, so this is refused rather than ignored. With
/// `sslmode=require`, a CA file upgrades the mode to `verify-ca`, as libpq does.
///
/// # Errors
/// [`ServerError::Config`] naming the file that does not load, or the `sslmode` that
/// would not use the files.
fn with_tls_files(options: PgConnectOptions, files: &TlsFiles) -> Result<PgConnectOptions> {
    if files.is_empty() {
        return Ok(options);
    }
    let mode = options.get_ssl_mode();
    if matches!(
        mode,
        PgSslMode::Disable | PgSslMode::Allow | PgSslMode::Prefer
    ) {
        return Err(ServerError::Config(format!(
            "--postgres-ca-file and --postgres-client-cert/--postgres-client-key need TLS: \
             add sslmode=verify-full (or verify-ca, require) to --postgres-url (it is {})",
            ssl_mode_name(mode)
        )));
    }
    let mut options = options;
    if let Some(ca) = files.read_ca()? {
        options = options.ssl_root_cert(ca.path());
        if matches!(mode, PgSslMode::Require) {
            options = options.ssl_mode(PgSslMode::VerifyCa);
        }
    }
    if let Some(identity) = files.read_client_identity()? {
        options = options
            .ssl_client_cert(identity.cert_path())
            .ssl_client_key(identity.key_path());
    }
    Ok(options)
}

/// The `sslmode` value that selects `mode`.
fn ssl_mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// A connection pool on the configured database.
#[derive(Clone)]
pub enum Storage {
    /// SQLite (WAL journal, `synchronous=FULL`: a committed write survives power loss).
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Storage").field(&self.backend()).finish()
    }
}

impl Storage {
    /// Opens the database the configuration names: PostgreSQL if `--postgres-url` is set,
    /// otherwise `finsec.db` in the data directory (created if missing). Fails if the
    /// database does not answer within [`CONNECT_TIMEOUT`].
    ///
    /// # Errors
    /// [`ServerError::Storage`] naming the file or the URL without its password.
    pub async fn open(config: &Config) -> Result<Self> {
        match &config.postgres_url {
            Some(url) => {
                let url = url.expose_secret();
                let storage_err = |source: sqlx::Error| ServerError::Storage {
                    backend: "postgres",
                    target: redact_url(url),
                    source: Box::new(source),
                };
                let options = PgConnectOptions::from_str(url).map_err(storage_err)?;
                let options = with_tls_files(options, &config.postgres_tls())?;
                // No ping before each use (sqlx's default): it is a round trip of its own
                // in front of every statement, and a connection the server has closed
                // fails its next statement anyway, once, and is then replaced.
                let pool = PgPoolOptions::new()
                    .max_connections(config.postgres_max_connections)
                    .test_before_acquire(false)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(storage_err)?;
                Ok(Self::Postgres(pool))
            }
            None => {
                let path = config.sqlite_path();
                let options = SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(CONNECT_TIMEOUT);
                let pool = SqlitePoolOptions::new()
                    .max_connections(5)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_with(options)
                    .await
                    .map_err(|source| ServerError::Storage {
                        backend: "sqlite",
                        target: path.display().to_string(),
                        source: Box::new(source),
                    })?;
                Ok(Self::Sqlite(pool))
            }
        }
    }

    /// Which database this is.
    pub fn backend(&self) -> StorageBackend {
        match self {
            Self::Sqlite(_) => StorageBackend::Sqlite,
            Self::Postgres(_) => StorageBackend::Postgres,
        }
    }

    /// Runs `SELECT 1`.
    ///
    /// # Errors
    /// The database error.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        let one: i32 = match self {
            Self::Sqlite(pool) => sqlx::query_scalar("SELECT 1").fetch_one(pool).await?,
            Self::Postgres(pool) => sqlx::query_scalar("SELECT 1").fetch_one(pool).await?,
        };
        if one == 1 {
            Ok(())
        } else {
            Err(sqlx::Error::Protocol(format!("SELECT 1 returned {one}")))
        }
    }

    /// Runs the server's own migrations: `sqlite` or `postgres`, whichever this database is,
    /// sharing `_sqlx_migrations` with the crates' migrations (see `MIGRATIONS.md`). On
    /// PostgreSQL a failed migration never leaves sqlx's migration lock held
    /// ([`finsec_sql::migrations::run_postgres`]).
    ///
    /// # Errors
    /// The migration error.
    pub async fn run_migrations(
        &self,
        sqlite: Migrator,
        postgres: Migrator,
    ) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Self::Sqlite(pool) => prepare(sqlite).run(pool).await,
            Self::Postgres(pool) => run_postgres(pool, &prepare(postgres)).await,
        }
    }

    /// Runs the finsec crates' migrations (finsec-crypto, finsec-auth, finsec-rbac), each
    /// crate's one `migrate` for this backend. The server's own tables are migrated by
    /// [`crate::capabilities::migrate`], which calls this first.
    ///
    /// # Errors
    /// [`ServerError::Storage`] naming the crate whose migrations failed.
    pub async fn migrate_crates(&self) -> Result<()> {
        let backend = self.backend().as_str();
        let failed = |krate: &str| {
            let target = format!("{krate} migrations");
            move |source: Box<dyn std::error::Error + Send + Sync>| ServerError::Storage {
                backend,
                target,
                source,
            }
        };
        match self {
            Self::Sqlite(pool) => {
                finsec_crypto::sqlite::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-crypto")(Box::new(e)))?;
                finsec_auth::sqlite::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-auth")(Box::new(e)))?;
                finsec_rbac::sqlite::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-rbac")(Box::new(e)))?;
                finsec_audit::sqlite::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-audit")(Box::new(e)))?;
                finsec_compliance::sqlite::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-compliance")(Box::new(e)))?;
            }
            Self::Postgres(pool) => {
                finsec_crypto::postgres::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-crypto")(Box::new(e)))?;
                finsec_auth::postgres::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-auth")(Box::new(e)))?;
                finsec_rbac::postgres::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-rbac")(Box::new(e)))?;
                finsec_audit::postgres::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-audit")(Box::new(e)))?;
                finsec_compliance::postgres::migrate(pool)
                    .await
                    .map_err(|e| failed("finsec-compliance")(Box::new(e)))?;
            }
        }
        Ok(())
    }

    /// Every store on this database (migrated: see [`crate::capabilities::migrate`]).
    pub fn stores(&self) -> Stores {
        match self {
            Self::Sqlite(pool) => Stores::on(
                sql::SqliteStore::new(pool.clone()),
                CrateStores {
                    subject_keys: Arc::new(
                        finsec_crypto::subject::sqlite::SqliteSubjectKeyStore::new(pool.clone()),
                    ),
                    api_keys: Arc::new(finsec_auth::api_keys::sqlite::SqliteApiKeyStore::new(
                        pool.clone(),
                    )),
                    login_failures: Arc::new(
                        finsec_auth::lockout::SqlFailureStore::<sqlx::Sqlite>::new(pool.clone()),
                    ),
                    backup_codes: Arc::new(finsec_auth::mfa::sqlite::SqliteBackupCodeStore::new(
                        pool.clone(),
                    )),
                    revocations: Arc::new(finsec_auth::tokens::sqlite::SqliteRevocationStore::new(
                        pool.clone(),
                    )),
                    refresh_tokens: Arc::new(
                        finsec_auth::tokens::sqlite::SqliteRefreshTokenStore::new(pool.clone()),
                    ),
                    totp_replay: Arc::new(finsec_auth::mfa::sqlite::SqliteTotpReplayStore::new(
                        pool.clone(),
                    )),
                    approvals: Arc::new(finsec_rbac::approval::sqlite::SqliteApprovalStore::new(
                        pool.clone(),
                    )),
                    controls: Arc::new(
                        finsec_rbac::controls::SqlControlStore::<sqlx::Sqlite>::new(pool.clone()),
                    ),
                },
            ),
            Self::Postgres(pool) => Stores::on(
                sql::PgStore::new(pool.clone()),
                CrateStores {
                    subject_keys: Arc::new(
                        finsec_crypto::subject::postgres::PostgresSubjectKeyStore::new(
                            pool.clone(),
                        ),
                    ),
                    api_keys: Arc::new(finsec_auth::api_keys::postgres::PgApiKeyStore::new(
                        pool.clone(),
                    )),
                    login_failures: Arc::new(
                        finsec_auth::lockout::SqlFailureStore::<sqlx::Postgres>::new(pool.clone()),
                    ),
                    backup_codes: Arc::new(finsec_auth::mfa::postgres::PgBackupCodeStore::new(
                        pool.clone(),
                    )),
                    revocations: Arc::new(
                        finsec_auth::tokens::postgres::PostgresRevocationStore::new(pool.clone()),
                    ),
                    refresh_tokens: Arc::new(
                        finsec_auth::tokens::postgres::PostgresRefreshTokenStore::new(pool.clone()),
                    ),
                    totp_replay: Arc::new(finsec_auth::mfa::postgres::PgTotpReplayStore::new(
                        pool.clone(),
                    )),
                    approvals: Arc::new(finsec_rbac::approval::postgres::PgApprovalStore::new(
                        pool.clone(),
                    )),
                    controls: Arc::new(
                        finsec_rbac::controls::SqlControlStore::<sqlx::Postgres>::new(pool.clone()),
                    ),
                },
            ),
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// The lock a serving process holds on its embedded SQLite database (an exclusive lock on
/// `finsec.db.lock` beside it, released when this is dropped or the process ends).
///
/// Holding it makes the process the only server writing that database, which lets it
/// answer user rows and token revocations from memory (see
/// [`crate::auth::user_cache`] and finsec-auth's `CachedRevocationStore`): a second server
/// started on the same data directory is refused instead of silently sharing the file.
/// The operator subcommands (`roles`, `keys`) do not take it; they write no row the server
/// keeps in memory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: std::fs::File,
    path: std::path::PathBuf,
}

impl DataDirLock {
    /// The lock file's name, beside the database file.
    pub const FILE: &'static str = "finsec.db.lock";

    /// Takes the lock of the database in `data_dir`, without waiting.
    ///
    /// # Errors
    /// [`ServerError::Config`] if another process holds it (another server runs on this
    /// data directory); [`ServerError::Io`] if the file cannot be created or locked.
    pub fn acquire(data_dir: &std::path::Path) -> Result<Self> {
        let path = data_dir.join(Self::FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| ServerError::io("cannot open", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(std::fs::TryLockError::WouldBlock) => Err(ServerError::Config(format!(
                "another server is running on the data directory {} (it holds {}); \
                 stop it, or give this one its own --data-dir",
                data_dir.display(),
                path.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(ServerError::io("cannot lock", &path, e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// The finsec crates' stores on the server's database.
#[derive(Clone)]
pub struct CrateStores {
    /// finsec-crypto's per-data-subject keys.
    pub subject_keys: Arc<dyn SubjectKeyStore>,
    /// finsec-auth's API keys.
    pub api_keys: Arc<dyn ApiKeyStore>,
    /// finsec-auth's failed-login counts.
    pub login_failures: Arc<dyn FailureStore>,
    /// finsec-auth's MFA backup codes.
    pub backup_codes: Arc<dyn BackupCodeStore>,
    /// finsec-auth's revoked token ids (replaced by Redis's when `--redis-url` is set).
    pub revocations: Arc<dyn RevocationStore>,
    /// finsec-auth's refresh-token families (replaced by Redis's likewise).
    pub refresh_tokens: Arc<dyn RefreshTokenStore>,
    /// finsec-auth's used TOTP codes (replaced by Redis's likewise).
    pub totp_replay: Arc<dyn TotpReplayStore>,
    /// finsec-rbac's maker-checker approvals.
    pub approvals: Arc<dyn ApprovalStore>,
    /// finsec-rbac's incident controls (suspensions, blocks, halts).
    pub controls: Arc<dyn finsec_rbac::controls::ControlStore>,
}

impl fmt::Debug for CrateStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrateStores").finish_non_exhaustive()
    }
}

/// Every store the server uses, on one database: the finsec crates' and each capability's
/// own (see [`crate::capabilities`]). Built by [`Storage::stores`]; cheap to clone.
#[derive(Clone)]
pub struct Stores {
    /// The finsec crates' stores.
    pub crates: CrateStores,
    /// The users, their TOTP secrets and API key names.
    pub users: Arc<dyn UserStore>,
    /// Access-token sessions and MFA challenges.
    pub sessions: Arc<dyn SessionStore>,
    /// JWT signing keys and other server secrets.
    pub secrets: Arc<dyn SecretStore>,
    /// Users' roles and the default role of new users.
    pub roles: Arc<dyn RoleStore>,
    /// Orders.
    pub orders: Arc<dyn OrderStore>,
    /// Users' trading-account entitlements.
    pub entitlements: Arc<dyn EntitlementStore>,
}

impl fmt::Debug for Stores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

impl Stores {
    /// The stores of `server` (the server's tables) and `crates`.
    fn on<DB: sql::ServerDb>(server: sql::SqlStore<DB>, crates: CrateStores) -> Self
    where
        sql::SqlStore<DB>:
            UserStore + SessionStore + SecretStore + RoleStore + OrderStore + EntitlementStore,
    {
        Self {
            crates,
            users: Arc::new(server.clone()),
            sessions: Arc::new(server.clone()),
            secrets: Arc::new(server.clone()),
            roles: Arc::new(server.clone()),
            orders: Arc::new(server.clone()),
            entitlements: Arc::new(server),
        }
    }
}

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn one_server_per_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        assert_eq!(first.path(), dir.path().join(DataDirLock::FILE));
        let err = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("another server is running"), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
