//! SQLite [`TotpReplayStore`](super::TotpReplayStore) and
//! [`BackupCodeStore`](super::BackupCodeStore) (feature `sqlite`).
//!
//! The stores are [`SqlTotpReplayStore`](super::SqlTotpReplayStore) and
//! [`SqlBackupCodeStore`](super::SqlBackupCodeStore) on a `SqlitePool`: one SQL text for
//! both backends. Run [`crate::sqlite::migrate`] once at start-up.

/// A [`TotpReplayStore`](super::TotpReplayStore) in SQLite.
pub type SqliteTotpReplayStore = super::SqlTotpReplayStore<sqlx::Sqlite>;

/// A [`BackupCodeStore`](super::BackupCodeStore) in SQLite.
pub type SqliteBackupCodeStore = super::SqlBackupCodeStore<sqlx::Sqlite>;
