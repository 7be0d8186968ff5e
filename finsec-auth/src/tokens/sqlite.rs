//! SQLite storage for revocations and refresh tokens (feature `sqlite`).
//!
//! The stores are [`SqlRevocationStore`](super::SqlRevocationStore) and
//! [`SqlRefreshTokenStore`](super::SqlRefreshTokenStore) on a `SqlitePool`: one SQL text
//! for both backends. Run [`crate::sqlite::migrate`] once at start-up.

/// A [`RevocationStore`](super::RevocationStore) in SQLite.
pub type SqliteRevocationStore = super::SqlRevocationStore<sqlx::Sqlite>;

/// A [`RefreshTokenStore`](super::RefreshTokenStore) in SQLite.
pub type SqliteRefreshTokenStore = super::SqlRefreshTokenStore<sqlx::Sqlite>;
