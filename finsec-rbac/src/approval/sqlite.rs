//! SQLite storage for approval requests (feature `sqlite`).
//!
//! ```no_run
//! # async fn example() -> finsec_rbac::Result<()> {
//! use std::str::FromStr;
//!
//! use finsec_rbac::approval::sqlite::SqliteApprovalStore;
//! use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
//!
//! let options = SqliteConnectOptions::from_str("sqlite://data/finsec.db")
//!     .map_err(|e| finsec_rbac::Error::Store(Box::new(e)))?
//!     .create_if_missing(true)
//!     .foreign_keys(true)
//!     .journal_mode(SqliteJournalMode::Wal)
//!     .synchronous(SqliteSynchronous::Full); // a recorded approval survives power loss
//! let pool = SqlitePool::connect_with(options).await?;
//! finsec_rbac::sqlite::migrate(&pool).await?;
//! let store = SqliteApprovalStore::new(pool);
//! # Ok(())
//! # }
//! ```
//!
//! The store is [`SqlApprovalStore`](super::SqlApprovalStore) on a `SqlitePool`: one SQL
//! text for both backends.

/// An [`ApprovalStore`](super::ApprovalStore) in a SQLite database, on a pool the caller
/// built.
pub type SqliteApprovalStore = super::SqlApprovalStore<sqlx::Sqlite>;
