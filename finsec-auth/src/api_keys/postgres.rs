//! PostgreSQL storage for API keys (feature `postgres`).
//!
//! ```no_run
//! # async fn example() -> Result<(), finsec_auth::Error> {
//! use finsec_auth::api_keys::ApiKeys;
//! use finsec_auth::api_keys::postgres::PgApiKeyStore;
//! use sqlx::postgres::PgPool;
//!
//! let pool = PgPool::connect("postgres://finsec@db.internal/finsec").await.map_err(finsec_auth::api_keys::ApiKeyError::from)?;
//! finsec_auth::postgres::migrate(&pool).await?;
//! let keys = ApiKeys::new(PgApiKeyStore::new(pool));
//! # Ok(())
//! # }
//! ```
//!
//! The store is [`SqlApiKeyStore`](super::SqlApiKeyStore) on a `PgPool`: one SQL text
//! for both backends.

/// An [`ApiKeyStore`](super::ApiKeyStore) in a PostgreSQL database, on a pool the caller built.
pub type PgApiKeyStore = super::SqlApiKeyStore<sqlx::Postgres>;
