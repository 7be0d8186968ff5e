//! Test support for the finsec crates: every backend test gets its own fresh, isolated
//! piece of a real database, so tests run in parallel and never see each other's rows.
//!
//! | helper       | what the test gets                                                     |
//! |--------------|------------------------------------------------------------------------|
//! | [`postgres`] | a new schema `finsec_test_<random hex>` and a pool whose connections use it |
//! | [`sqlite`]   | a new SQLite file in a fresh temporary directory (WAL, `synchronous=FULL`) |
//! | [`redis()`]  | a connection and a random key prefix `finsec-test:<random hex>:`       |
//!
//! Tests that need a server of their own (TLS with their own certificates, or a backend
//! they stop and restart) start one with [`PgCluster`] or [`RedisServer`] (module
//! [`cluster`]).
//!
//! The servers come from the environment, with local defaults:
//!
//! | variable                     | default                                      |
//! |------------------------------|----------------------------------------------|
//! | `FINSEC_TEST_POSTGRES_URL`   | `postgres://postgres@127.0.0.1:5432/postgres` |
//! | `FINSEC_TEST_REDIS_URL`      | `redis://127.0.0.1:6379`                     |
//!
//! A test whose backend is unreachable **fails** with a message naming the URL (password
//! removed) and the command that starts the server; it never skips silently. Panicking is
//! the right behaviour here: this crate only ever runs inside `#[test]` functions.
//!
//! # Cleaning up
//!
//! Call [`PgTestDb::cleanup`] and [`RedisTestPrefix::cleanup`] at the end of a test. A test
//! that fails before reaching them leaves its schema or keys behind; that is harmless (every
//! test uses fresh random names), and they are easy to find:
//!
//! ```sql
//! -- PostgreSQL: list leftovers, then DROP SCHEMA <name> CASCADE for each
//! SELECT nspname FROM pg_namespace WHERE nspname LIKE 'finsec\_test\_%';
//! ```
//!
//! ```text
//! # Redis
//! redis-cli --scan --pattern 'finsec-test:*' | xargs -r redis-cli del
//! ```
//!
//! The SQLite file lives in a temporary directory that is deleted when the
//! [`SqliteTestDb`] is dropped, pass or fail.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() {
//! let db = finsec_testkit::postgres().await;
//! sqlx::query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
//!     .execute(db.pool())
//!     .await
//!     .unwrap();
//! // ... the test ...
//! db.cleanup().await;
//! # }
//! ```
//!
//! # Threat model
//!
//! Test-only (`publish = false`), never a dependency of production code. It creates and
//! drops schemas and deletes keys under its own random `finsec_test_`/`finsec-test:`
//! names, so point it only at servers meant for tests. Passwords in the URLs are removed
//! from every message it prints.
#![forbid(unsafe_code)]
#![expect(
    clippy::panic,
    reason = "test support: an unreachable backend or a failed setup must fail the test loudly"
)]

pub mod mifid;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, PgConnection};
use tempfile::TempDir;

/// Environment variable holding the PostgreSQL URL for tests.
pub const POSTGRES_URL_VAR: &str = "FINSEC_TEST_POSTGRES_URL";
/// PostgreSQL URL used when [`POSTGRES_URL_VAR`] is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Environment variable holding the Redis URL for tests.
pub const REDIS_URL_VAR: &str = "FINSEC_TEST_REDIS_URL";
/// Redis URL used when [`REDIS_URL_VAR`] is not set.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Every schema made by [`postgres`] starts with this.
pub const SCHEMA_PREFIX: &str = "finsec_test_";
/// Every key prefix made by [`redis()`] starts with this.
pub const REDIS_PREFIX: &str = "finsec-test:";

/// How to start the local PostgreSQL cluster, quoted in failure messages.
pub const POSTGRES_START_HINT: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";
/// How to start a local Redis for tests, quoted in failure messages.
pub const REDIS_START_HINT: &str = "redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 \
     --save \"\" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log";

/// Connections per test pool. Small, because many tests run at once against one server.
const POOL_SIZE: u32 = 5;
/// How long a test waits for a connection before failing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Eight random bytes as 16 lowercase hex digits.
fn random_hex() -> String {
    let bytes: [u8; 8] = finsec_crypto::random_array()
        .unwrap_or_else(|e| panic!("no random bytes for a test's unique name: {e}"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub use finsec_crypto::secret::redact_url;

pub mod cluster;
pub use cluster::{PgCluster, RedisServer, ServerTls};

// ---------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------

/// The PostgreSQL URL for tests: `FINSEC_TEST_POSTGRES_URL`, or
/// [`DEFAULT_POSTGRES_URL`] (local server, user `postgres`, trust authentication).
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_owned())
}

/// A fresh PostgreSQL schema for one test, and a pool whose connections all use it.
///
/// Every connection of [`pool`](Self::pool) (and of [`new_pool`](Self::new_pool)) has
/// `search_path` set to the schema, so unqualified table names, including sqlx's
/// `_sqlx_migrations`, live inside it. Call [`cleanup`](Self::cleanup) at the end.
pub struct PgTestDb {
    pool: PgPool,
    schema: String,
    options: PgConnectOptions,
    redacted_url: String,
}

impl fmt::Debug for PgTestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTestDb")
            .field("url", &self.redacted_url)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Creates a new schema `finsec_test_<random hex>` on the test PostgreSQL server
/// ([`postgres_url`]) and returns a pool bound to it.
///
/// # Panics
/// If the URL does not parse, the server is unreachable, or the schema cannot be created.
/// The message names the URL (without its password) and how to start the server.
pub async fn postgres() -> PgTestDb {
    let url = postgres_url();
    let redacted_url = redact_url(&url);
    let base = match PgConnectOptions::from_str(&url) {
        Ok(options) => options,
        Err(e) => panic!("{POSTGRES_URL_VAR}={redacted_url} is not a valid PostgreSQL URL: {e}"),
    };
    let fail = |what: &str, e: &dyn fmt::Display| -> ! {
        panic!(
            "PostgreSQL test server at {redacted_url} {what}: {e}\n\
             Start it with: {POSTGRES_START_HINT}\n\
             (or point {POSTGRES_URL_VAR} at a server where the user may create schemas)"
        )
    };

    let schema = format!("{SCHEMA_PREFIX}{}", random_hex());
    let mut admin =
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&base)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => fail("is unreachable", &e),
            Err(_) => fail("did not answer", &"connection timed out"),
        };
    // Identifiers cannot be bound as parameters; the name is our own prefix plus hex digits.
    let create = format!("CREATE SCHEMA \"{schema}\"");
    if let Err(e) = sqlx::query(&create).execute(&mut admin).await {
        fail("refused to create a test schema", &e);
    }
    if let Err(e) = admin.close().await {
        fail("failed while closing the setup connection", &e);
    }

    let options = base.options([("search_path", schema.as_str())]);
    let pool = match connect_pg(options.clone()).await {
        Ok(pool) => pool,
        Err(e) => fail("is unreachable", &e),
    };
    PgTestDb {
        pool,
        schema,
        options,
        redacted_url,
    }
}

async fn connect_pg(options: PgConnectOptions) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
}

impl PgTestDb {
    /// The pool; every connection uses [`schema`](Self::schema).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The schema name (`finsec_test_<16 hex digits>`).
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Connection options bound to the schema, for building pools with other settings.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options.clone()
    }

    /// A second, independent pool on the same schema: stands for another application
    /// instance sharing the database.
    ///
    /// # Panics
    /// If the server has become unreachable.
    pub async fn new_pool(&self) -> PgPool {
        match connect_pg(self.options.clone()).await {
            Ok(pool) => pool,
            Err(e) => panic!(
                "PostgreSQL test server at {} is unreachable: {e}\nStart it with: {POSTGRES_START_HINT}",
                self.redacted_url
            ),
        }
    }

    /// Drops the schema and everything in it, then closes the pool.
    ///
    /// Pools made with [`new_pool`](Self::new_pool) should be closed first (otherwise
    /// the `DROP` waits for their open transactions, if any).
    ///
    /// # Panics
    /// If the schema cannot be dropped.
    pub async fn cleanup(self) {
        let drop = format!("DROP SCHEMA IF EXISTS \"{}\" CASCADE", self.schema);
        if let Err(e) = sqlx::query(&drop).execute(&self.pool).await {
            panic!(
                "could not drop test schema {} on {}: {e}",
                self.schema, self.redacted_url
            );
        }
        self.pool.close().await;
    }
}

// ---------------------------------------------------------------------------------------
// SQLite
// ---------------------------------------------------------------------------------------

/// A SQLite database file in a fresh temporary directory, and a pool on it.
///
/// The pool uses the settings finsec recommends for production: WAL journal,
/// `synchronous=FULL` (a committed write survives power loss), foreign keys on. The
/// directory (and file) is deleted when this value is dropped.
pub struct SqliteTestDb {
    pool: SqlitePool,
    path: PathBuf,
    options: SqliteConnectOptions,
    // Declared last: dropped after the pool so the files are closed before removal.
    _dir: TempDir,
}

impl fmt::Debug for SqliteTestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteTestDb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Creates a new SQLite database file `test.db` in a fresh temporary directory.
///
/// # Panics
/// If the temporary directory or the database cannot be created.
pub async fn sqlite() -> SqliteTestDb {
    let dir = match tempfile::Builder::new().prefix("finsec-test-").tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("could not create a temporary directory for a SQLite test database: {e}"),
    };
    let path = dir.path().join("test.db");
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(CONNECT_TIMEOUT);
    let pool = match connect_sqlite(options.clone()).await {
        Ok(pool) => pool,
        Err(e) => panic!(
            "could not open SQLite test database {}: {e}",
            path.display()
        ),
    };
    SqliteTestDb {
        pool,
        path,
        options,
        _dir: dir,
    }
}

async fn connect_sqlite(options: SqliteConnectOptions) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new()
        .max_connections(POOL_SIZE)
        .acquire_timeout(CONNECT_TIMEOUT)
        .connect_with(options)
        .await
}

impl SqliteTestDb {
    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection options the pool uses.
    pub fn connect_options(&self) -> SqliteConnectOptions {
        self.options.clone()
    }

    /// A second, independent pool on the same file: stands for another process sharing
    /// the database.
    ///
    /// # Panics
    /// If the file cannot be opened.
    pub async fn new_pool(&self) -> SqlitePool {
        match connect_sqlite(self.options.clone()).await {
            Ok(pool) => pool,
            Err(e) => panic!(
                "could not open SQLite test database {}: {e}",
                self.path.display()
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Redis
// ---------------------------------------------------------------------------------------

/// The Redis URL for tests: `FINSEC_TEST_REDIS_URL`, or [`DEFAULT_REDIS_URL`].
pub fn redis_url() -> String {
    std::env::var(REDIS_URL_VAR).unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// A Redis connection and a key prefix no other test uses.
///
/// Tests put every key they create under [`prefix`](Self::prefix) and call
/// [`cleanup`](Self::cleanup) at the end.
#[derive(Clone)]
pub struct RedisTestPrefix {
    /// A multiplexed connection that reconnects on failure; cheap to clone.
    pub conn: ConnectionManager,
    /// `finsec-test:<16 hex digits>:`.
    pub prefix: String,
    redacted_url: String,
}

impl fmt::Debug for RedisTestPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTestPrefix")
            .field("url", &self.redacted_url)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Connects to the test Redis ([`redis_url`]), checks it answers `PING`, and picks a
/// fresh key prefix.
///
/// # Panics
/// If the URL does not parse or the server does not answer; the message names the URL
/// (without its password) and how to start the server.
pub async fn redis() -> RedisTestPrefix {
    let url = redis_url();
    let redacted_url = redact_url(&url);
    let fail = |what: &str, e: &dyn fmt::Display| -> ! {
        panic!(
            "Redis test server at {redacted_url} {what}: {e}\n\
             Start it with: {REDIS_START_HINT}\n\
             (or point {REDIS_URL_VAR} at another server)"
        )
    };
    let client = match redis::Client::open(url.as_str()) {
        Ok(client) => client,
        Err(e) => panic!("{REDIS_URL_VAR}={redacted_url} is not a valid Redis URL: {e}"),
    };
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT));
    let mut conn = match tokio::time::timeout(
        CONNECT_TIMEOUT * 2,
        client.get_connection_manager_with_config(config),
    )
    .await
    {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => fail("is unreachable", &e),
        Err(_) => fail("did not answer", &"connection timed out"),
    };
    match redis::cmd("PING").query_async::<String>(&mut conn).await {
        Ok(pong) if pong == "PONG" => {}
        Ok(other) => fail("answered PING oddly", &other),
        Err(e) => fail("did not answer PING", &e),
    }
    RedisTestPrefix {
        conn,
        prefix: format!("{REDIS_PREFIX}{}:", random_hex()),
        redacted_url,
    }
}

impl RedisTestPrefix {
    /// The prefix followed by `suffix`: a key that belongs to this test.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// Every key under the prefix whose rest matches the `SCAN` pattern `pattern` (`*` for
    /// all of them), sorted.
    ///
    /// # Panics
    /// If Redis fails.
    pub async fn keys(&self, pattern: &str) -> Vec<String> {
        let mut conn = self.conn.clone();
        // The prefix is our own constant plus hex digits and ':', none of which is special
        // in a SCAN pattern.
        let pattern = format!("{}{pattern}", self.prefix);
        let mut cursor: u64 = 0;
        let mut found = Vec::new();
        loop {
            let (next, keys): (u64, Vec<String>) = match redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
            {
                Ok(page) => page,
                Err(e) => panic!("SCAN on {} failed: {e}", self.redacted_url),
            };
            found.extend(keys);
            if next == 0 {
                found.sort();
                found.dedup();
                return found;
            }
            cursor = next;
        }
    }

    /// Deletes every key under the prefix (`SCAN` + `DEL`) and returns how many there were.
    ///
    /// # Panics
    /// If Redis fails.
    pub async fn cleanup(self) -> u64 {
        let keys = self.keys("*").await;
        if keys.is_empty() {
            return 0;
        }
        let mut conn = self.conn.clone();
        let mut deleted = 0u64;
        for chunk in keys.chunks(1000) {
            match redis::cmd("DEL")
                .arg(chunk)
                .query_async::<u64>(&mut conn)
                .await
            {
                Ok(n) => deleted += n,
                Err(e) => panic!("DEL on {} failed: {e}", self.redacted_url),
            }
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_names_are_fresh_hex() {
        let a = random_hex();
        let b = random_hex();
        assert_eq!(a.len(), 16);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
