//! SQLite storage for subject keys (feature `sqlite`).
//!
//! ```no_run
//! # async fn example() -> finsec_crypto::Result<()> {
//! use std::str::FromStr;
//!
//! use finsec_crypto::subject::sqlite::{SqliteSubjectKeyStore, migrate};
//! use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
//!
//! let options = SqliteConnectOptions::from_str("sqlite://data/finsec.db")?
//!     .create_if_missing(true)
//!     .journal_mode(SqliteJournalMode::Wal)
//!     .synchronous(SqliteSynchronous::Full); // a committed key survives power loss
//! let pool = SqlitePool::connect_with(options).await?;
//! migrate(&pool).await?;
//! let store = SqliteSubjectKeyStore::new(pool);
//! # Ok(())
//! # }
//! ```
//!
//! The table, timestamps and migration numbering are described in the
//! [module docs](super#sql-storage). Every method is one or a few single-statement
//! transactions; `insert_if_absent` is `INSERT ... ON CONFLICT DO NOTHING` followed by a
//! read, so concurrent callers (several pools on one file included) all get the one key
//! that was stored first. Rows are never deleted, which is what makes the two-step forms
//! atomic: once a row exists it only moves forward (active, then destroyed).

use async_trait::async_trait;
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use time::OffsetDateTime;

use super::sql::{RawRow, to_micros};
use super::{StoredSubjectKey, SubjectId, SubjectKeyState, SubjectKeyStore, check_limit};
use crate::error::Result;
use crate::provider::{KekRef, WrappedDek};

/// The finsec-crypto SQLite migrator (versions 10001–10999), with `ignore_missing` set so
/// other finsec crates' migrations in the same `_sqlx_migrations` table are not an error.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.set_ignore_missing(true);
    migrator
}

/// Creates or updates the finsec-crypto tables (`finsec_subject_keys`).
///
/// Safe to call at every start-up and from several processes at once.
///
/// # Errors
/// [`Error::Store`](crate::Error::Store) if a migration fails or an applied finsec-crypto
/// migration was changed.
pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    migrator().run(pool).await?;
    Ok(())
}

/// A [`SubjectKeyStore`] in a SQLite database, on a pool the caller built.
///
/// Open the pool with WAL and `synchronous=FULL` for durable writes (see the module docs).
#[derive(Debug, Clone)]
pub struct SqliteSubjectKeyStore {
    pool: SqlitePool,
}

impl SqliteSubjectKeyStore {
    /// A store on `pool`. Run [`migrate`] once before use.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn raw(row: &SqliteRow) -> Result<RawRow> {
    Ok(RawRow {
        subject_id: row.try_get("subject_id")?,
        kek_name: row.try_get("kek_name")?,
        kek_version: row.try_get("kek_version")?,
        wrapped_key: row.try_get("wrapped_key")?,
        created_at: row.try_get("created_at")?,
        destroyed_at: row.try_get("destroyed_at")?,
    })
}

#[async_trait]
impl SubjectKeyStore for SqliteSubjectKeyStore {
    async fn insert_if_absent(&self, key: StoredSubjectKey) -> Result<SubjectKeyState> {
        sqlx::query(
            "INSERT INTO finsec_subject_keys \
             (subject_id, kek_name, kek_version, wrapped_key, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (subject_id) DO NOTHING",
        )
        .bind(key.subject.as_str())
        .bind(key.kek.name.as_str())
        .bind(i64::from(key.kek.version))
        .bind(key.wrapped.as_bytes())
        .bind(to_micros(key.created_at)?)
        .execute(&self.pool)
        .await?;
        self.get(&key.subject).await
    }

    async fn get(&self, subject: &SubjectId) -> Result<SubjectKeyState> {
        let row = sqlx::query(
            "SELECT subject_id, kek_name, kek_version, wrapped_key, created_at, destroyed_at \
             FROM finsec_subject_keys WHERE subject_id = ?1",
        )
        .bind(subject.as_str())
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(row) => raw(&row)?.into_state(),
            None => Ok(SubjectKeyState::Absent),
        }
    }

    async fn destroy(&self, subject: &SubjectId, at: OffsetDateTime) -> Result<bool> {
        let at = to_micros(at)?;
        // 1. An active key: wipe it.
        let wiped = sqlx::query(
            "UPDATE finsec_subject_keys SET wrapped_key = NULL, destroyed_at = ?2 \
             WHERE subject_id = ?1 AND destroyed_at IS NULL",
        )
        .bind(subject.as_str())
        .bind(at)
        .execute(&self.pool)
        .await?;
        if wiped.rows_affected() == 1 {
            return Ok(true);
        }
        // 2. No row: write a tombstone.
        let tombstone = sqlx::query(
            "INSERT INTO finsec_subject_keys (subject_id, created_at, destroyed_at) \
             VALUES (?1, ?2, ?2) ON CONFLICT (subject_id) DO NOTHING",
        )
        .bind(subject.as_str())
        .bind(at)
        .execute(&self.pool)
        .await?;
        if tombstone.rows_affected() == 1 {
            return Ok(false);
        }
        // 3. A row appeared between 1 and 2 (a concurrent first key): wipe that one. If it
        //    is already a tombstone this changes nothing.
        let wiped = sqlx::query(
            "UPDATE finsec_subject_keys SET wrapped_key = NULL, destroyed_at = ?2 \
             WHERE subject_id = ?1 AND destroyed_at IS NULL",
        )
        .bind(subject.as_str())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(wiped.rows_affected() == 1)
    }

    async fn replace_wrapped(
        &self,
        subject: &SubjectId,
        old: &KekRef,
        new_kek: KekRef,
        new_wrapped: WrappedDek,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE finsec_subject_keys \
             SET kek_name = ?4, kek_version = ?5, wrapped_key = ?6 \
             WHERE subject_id = ?1 AND kek_name = ?2 AND kek_version = ?3 \
             AND destroyed_at IS NULL",
        )
        .bind(subject.as_str())
        .bind(old.name.as_str())
        .bind(i64::from(old.version))
        .bind(new_kek.name.as_str())
        .bind(i64::from(new_kek.version))
        .bind(new_wrapped.as_bytes())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_active(
        &self,
        after: Option<&SubjectId>,
        limit: u32,
    ) -> Result<Vec<StoredSubjectKey>> {
        check_limit(limit)?;
        let rows = match after {
            Some(after) => {
                sqlx::query(
                    "SELECT subject_id, kek_name, kek_version, wrapped_key, created_at, \
                     destroyed_at FROM finsec_subject_keys \
                     WHERE destroyed_at IS NULL AND subject_id > ?1 \
                     ORDER BY subject_id LIMIT ?2",
                )
                .bind(after.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT subject_id, kek_name, kek_version, wrapped_key, created_at, \
                     destroyed_at FROM finsec_subject_keys \
                     WHERE destroyed_at IS NULL ORDER BY subject_id LIMIT ?1",
                )
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(|row| raw(row)?.into_active()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_stay_in_the_finsec_crypto_range() {
        let m = migrator();
        assert!(m.ignore_missing);
        assert!(m.iter().count() >= 1);
        for migration in m.iter() {
            assert!(
                (10001..=10999).contains(&migration.version),
                "{}",
                migration.version
            );
        }
    }
}
