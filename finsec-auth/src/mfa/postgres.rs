//! PostgreSQL [`TotpReplayStore`](super::TotpReplayStore) and
//! [`BackupCodeStore`](super::BackupCodeStore) (feature `postgres`).
//!
//! The stores are [`SqlTotpReplayStore`](super::SqlTotpReplayStore) and
//! [`SqlBackupCodeStore`](super::SqlBackupCodeStore) on a `PgPool`: one SQL text for both
//! backends. Run [`crate::postgres::migrate`] once at start-up.

/// A [`TotpReplayStore`](super::TotpReplayStore) in PostgreSQL.
pub type PgTotpReplayStore = super::SqlTotpReplayStore<sqlx::Postgres>;

/// A [`BackupCodeStore`](super::BackupCodeStore) in PostgreSQL.
pub type PgBackupCodeStore = super::SqlBackupCodeStore<sqlx::Postgres>;
