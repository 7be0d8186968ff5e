//! SQLite storage for API keys (feature `sqlite`).
//!
//! ```no_run
//! # async fn example() -> Result<(), finsec_auth::Error> {
//! use finsec_auth::api_keys::ApiKeys;
//! use finsec_auth::api_keys::sqlite::SqliteApiKeyStore;
//! use sqlx::sqlite::SqlitePool;
//!
//! let pool = SqlitePool::connect("sqlite://data/finsec.db").await.map_err(finsec_auth::api_keys::ApiKeyError::from)?;
//! finsec_auth::sqlite::migrate(&pool).await?;
//! let keys = ApiKeys::new(SqliteApiKeyStore::new(pool));
//! # Ok(())
//! # }
//! ```
//!
//! The store is [`SqlApiKeyStore`](super::SqlApiKeyStore) on a `SqlitePool`: one SQL text
//! for both backends.

/// An [`ApiKeyStore`](super::ApiKeyStore) in a SQLite database, on a pool the caller built.
pub type SqliteApiKeyStore = super::SqlApiKeyStore<sqlx::Sqlite>;
