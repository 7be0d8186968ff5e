//! PostgreSQL storage for subject keys (feature `postgres`).
//!
//! ```no_run
//! # async fn example() -> finsec_crypto::Result<()> {
//! use finsec_crypto::subject::postgres::PostgresSubjectKeyStore;
//! use sqlx::postgres::PgPool;
//!
//! let pool = PgPool::connect("postgres://app@db.internal/app").await?;
//! finsec_crypto::postgres::migrate(&pool).await?;
//! let store = PostgresSubjectKeyStore::new(pool);
//! # Ok(())
//! # }
//! ```
//!
//! The store is [`SqlSubjectKeyStore`](super::SqlSubjectKeyStore) on a `PgPool`: one SQL
//! text for both backends.

/// A [`SubjectKeyStore`](super::SubjectKeyStore) in a PostgreSQL database, on a pool the
/// caller built. The table lives in the pool's current schema (the first of `search_path`).
pub type PostgresSubjectKeyStore = super::SqlSubjectKeyStore<sqlx::Postgres>;
