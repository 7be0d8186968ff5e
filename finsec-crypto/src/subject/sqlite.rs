//! SQLite storage for subject keys (feature `sqlite`).
//!
//! ```no_run
//! # async fn example() -> finsec_crypto::Result<()> {
//! use std::str::FromStr;
//!
//! use finsec_crypto::subject::sqlite::SqliteSubjectKeyStore;
//! use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
//!
//! let options = SqliteConnectOptions::from_str("sqlite://data/finsec.db")?
//!     .create_if_missing(true)
//!     .journal_mode(SqliteJournalMode::Wal)
//!     .synchronous(SqliteSynchronous::Full); // a committed key survives power loss
//! let pool = SqlitePool::connect_with(options).await?;
//! finsec_crypto::sqlite::migrate(&pool).await?;
//! let store = SqliteSubjectKeyStore::new(pool);
//! # Ok(())
//! # }
//! ```
//!
//! The store is [`SqlSubjectKeyStore`](super::SqlSubjectKeyStore) on a `SqlitePool`: one
//! SQL text for both backends.

/// A [`SubjectKeyStore`](super::SubjectKeyStore) in a SQLite database, on a pool the caller
/// built. Open the pool with WAL and `synchronous=FULL` for durable writes.
pub type SqliteSubjectKeyStore = super::SqlSubjectKeyStore<sqlx::Sqlite>;
