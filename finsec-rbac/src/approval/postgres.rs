//! PostgreSQL storage for approval requests (feature `postgres`).
//!
//! ```no_run
//! # async fn example() -> finsec_rbac::Result<()> {
//! use finsec_rbac::approval::postgres::PgApprovalStore;
//! use sqlx::postgres::PgPool;
//!
//! let pool = PgPool::connect("postgres://app@db.internal/finsec").await?;
//! finsec_rbac::postgres::migrate(&pool).await?;
//! let store = PgApprovalStore::new(pool);
//! # Ok(())
//! # }
//! ```
//!
//! The store is [`SqlApprovalStore`](super::SqlApprovalStore) on a `PgPool`: one SQL text
//! for both backends.

/// An [`ApprovalStore`](super::ApprovalStore) in a PostgreSQL database, on a pool the
/// caller built.
pub type PgApprovalStore = super::SqlApprovalStore<sqlx::Postgres>;
