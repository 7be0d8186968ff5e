//! PostgreSQL storage for revocations and refresh tokens (feature `postgres`).
//!
//! The stores are [`SqlRevocationStore`](super::SqlRevocationStore) and
//! [`SqlRefreshTokenStore`](super::SqlRefreshTokenStore) on a `PgPool`: one SQL text for
//! both backends. Run [`crate::postgres::migrate`] once at start-up.

/// A [`RevocationStore`](super::RevocationStore) in PostgreSQL.
pub type PostgresRevocationStore = super::SqlRevocationStore<sqlx::Postgres>;

/// A [`RefreshTokenStore`](super::RefreshTokenStore) in PostgreSQL.
pub type PostgresRefreshTokenStore = super::SqlRefreshTokenStore<sqlx::Postgres>;
