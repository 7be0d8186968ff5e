//! The subject-key store in SQL, written once for SQLite and PostgreSQL (features `sqlite`,
//! `postgres`): timestamp encoding, row decoding and the queries.
//!
//! The table, timestamps and migration numbering are described in the
//! [module docs](super#sql-storage). Every method is one or a few single-statement
//! transactions; `insert_if_absent` is `INSERT ... ON CONFLICT DO NOTHING` followed by a
//! read, so concurrent callers (several pools on one SQLite file, several application
//! instances on one PostgreSQL database) all get the one key that was stored first: on
//! PostgreSQL the conflicting insert waits for the first one to commit, and the read (a
//! new snapshot under the default `READ COMMITTED`) sees it. Rows are never deleted, which
//! is what makes the two-step forms atomic: once a row exists it only moves forward
//! (active, then destroyed).

use std::fmt;

use async_trait::async_trait;
use finsec_sql::Backend;
use sqlx::{Pool, Row as _};
use time::OffsetDateTime;

use super::{StoredSubjectKey, SubjectId, SubjectKeyState, SubjectKeyStore, check_limit};
use crate::error::{Error, Result};
use crate::provider::{KekRef, KeyName, WrappedDek};

/// `t` as unix microseconds, rounded towards the past.
pub(crate) fn to_micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(Error::store)
}

/// Unix microseconds back to a time.
pub(crate) fn from_micros(micros: i64, column: &str, subject: &str) -> Result<OffsetDateTime> {
    finsec_sql::time::from_micros(micros).map_err(|e| {
        Error::store(format!(
            "finsec_subject_keys.{column} of subject {subject}: {e}"
        ))
    })
}

/// One row of `finsec_subject_keys`, as read from either database.
pub(crate) struct RawRow {
    pub(crate) subject_id: String,
    pub(crate) kek_name: Option<String>,
    pub(crate) kek_version: Option<i64>,
    pub(crate) wrapped_key: Option<Vec<u8>>,
    pub(crate) created_at: i64,
    pub(crate) destroyed_at: Option<i64>,
}

impl RawRow {
    /// The state the row stands for; refuses rows that break the table's invariants.
    pub(crate) fn into_state(self) -> Result<SubjectKeyState> {
        let subject = self.subject_id;
        if let Some(destroyed_at) = self.destroyed_at {
            return Ok(SubjectKeyState::Destroyed {
                destroyed_at: from_micros(destroyed_at, "destroyed_at", &subject)?,
            });
        }
        let malformed = |what: &str| {
            Error::store(format!(
                "finsec_subject_keys row of subject {subject} {what}"
            ))
        };
        let (Some(name), Some(version), Some(wrapped)) =
            (self.kek_name, self.kek_version, self.wrapped_key)
        else {
            return Err(malformed("is active but lacks its key columns"));
        };
        let kek = KekRef {
            name: KeyName::new(name).map_err(|_| malformed("has an invalid kek_name"))?,
            version: u32::try_from(version)
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| malformed("has an invalid kek_version"))?,
        };
        let wrapped =
            WrappedDek::new(wrapped).map_err(|_| malformed("has an invalid wrapped_key length"))?;
        let created_at = from_micros(self.created_at, "created_at", &subject)?;
        let subject =
            SubjectId::new(subject.clone()).map_err(|_| malformed("has an invalid subject_id"))?;
        Ok(SubjectKeyState::Active(StoredSubjectKey {
            subject,
            kek,
            wrapped,
            created_at,
        }))
    }

    /// An active key, or an error for a row that is not one (list queries select only
    /// active rows).
    pub(crate) fn into_active(self) -> Result<StoredSubjectKey> {
        let subject = self.subject_id.clone();
        match self.into_state()? {
            SubjectKeyState::Active(stored) => Ok(stored),
            _ => Err(Error::store(format!(
                "finsec_subject_keys row of subject {subject} was listed as active but is not"
            ))),
        }
    }
}

/// A [`SubjectKeyStore`] in SQL, on a pool the caller built: `SqliteSubjectKeyStore` /
/// `PostgresSubjectKeyStore`. Run the crate's `migrate` (`finsec_crypto::sqlite::migrate`
/// / `finsec_crypto::postgres::migrate`) once before use.
///
/// On SQLite, open the pool with WAL and `synchronous=FULL` for durable writes; on
/// PostgreSQL the table lives in the pool's current schema (the first of `search_path`).
pub struct SqlSubjectKeyStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlSubjectKeyStore<DB> {
    /// A store on `pool`.
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

impl<DB: Backend> Clone for SqlSubjectKeyStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlSubjectKeyStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlSubjectKeyStore")
            .field("backend", &DB::LABEL)
            .field("pool", &self.pool)
            .finish()
    }
}

const SELECT_ONE: &str = "SELECT subject_id, kek_name, kek_version, wrapped_key, created_at, \
     destroyed_at FROM finsec_subject_keys WHERE subject_id = $1";

const WIPE: &str = "UPDATE finsec_subject_keys SET wrapped_key = NULL, destroyed_at = $2 \
     WHERE subject_id = $1 AND destroyed_at IS NULL";

/// The trait implementation, expanded once per backend: the same code on a concrete pool
/// type, so none of sqlx's generic bounds need stating.
macro_rules! impl_subject_key_store {
    ($db:ty) => {
        impl SqlSubjectKeyStore<$db> {
            fn raw(row: &<$db as sqlx::Database>::Row) -> Result<RawRow> {
                Ok(RawRow {
                    subject_id: row.try_get("subject_id")?,
                    kek_name: row.try_get("kek_name")?,
                    kek_version: row.try_get("kek_version")?,
                    wrapped_key: row.try_get("wrapped_key")?,
                    created_at: row.try_get("created_at")?,
                    destroyed_at: row.try_get("destroyed_at")?,
                })
            }
        }

        #[async_trait]
        impl SubjectKeyStore for SqlSubjectKeyStore<$db> {
            async fn insert_if_absent(&self, key: StoredSubjectKey) -> Result<SubjectKeyState> {
                sqlx::query(
                    "INSERT INTO finsec_subject_keys \
                     (subject_id, kek_name, kek_version, wrapped_key, created_at) \
                     VALUES ($1, $2, $3, $4, $5) \
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
                let row = sqlx::query(SELECT_ONE)
                    .bind(subject.as_str())
                    .fetch_optional(&self.pool)
                    .await?;
                match row {
                    Some(row) => Self::raw(&row)?.into_state(),
                    None => Ok(SubjectKeyState::Absent),
                }
            }

            async fn destroy(&self, subject: &SubjectId, at: OffsetDateTime) -> Result<bool> {
                let at = to_micros(at)?;
                // 1. An active key: wipe it.
                let wiped = sqlx::query(WIPE)
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
                     VALUES ($1, $2, $2) ON CONFLICT (subject_id) DO NOTHING",
                )
                .bind(subject.as_str())
                .bind(at)
                .execute(&self.pool)
                .await?;
                if tombstone.rows_affected() == 1 {
                    return Ok(false);
                }
                // 3. A row appeared between 1 and 2 (a concurrent first key): wipe that one.
                //    If it is already a tombstone this changes nothing.
                let wiped = sqlx::query(WIPE)
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
                     SET kek_name = $4, kek_version = $5, wrapped_key = $6 \
                     WHERE subject_id = $1 AND kek_name = $2 AND kek_version = $3 \
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
                let rows =
                    match after {
                        Some(after) => sqlx::query(
                            "SELECT subject_id, kek_name, kek_version, wrapped_key, created_at, \
                             destroyed_at FROM finsec_subject_keys \
                             WHERE destroyed_at IS NULL AND subject_id > $1 \
                             ORDER BY subject_id LIMIT $2",
                        )
                        .bind(after.as_str())
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?,
                        None => sqlx::query(
                            "SELECT subject_id, kek_name, kek_version, wrapped_key, created_at, \
                             destroyed_at FROM finsec_subject_keys \
                             WHERE destroyed_at IS NULL ORDER BY subject_id LIMIT $1",
                        )
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?,
                    };
                rows.iter()
                    .map(|row| Self::raw(row)?.into_active())
                    .collect()
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_subject_key_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_subject_key_store!(sqlx::Postgres);

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn micros_round_trip_and_round_down() {
        for t in [
            datetime!(1970-01-01 00:00 UTC),
            datetime!(2024-02-29 23:59:59.999999 UTC),
            datetime!(1969-12-31 23:59:59.5 UTC),
            datetime!(9999-12-31 23:59:59.999999 UTC),
            datetime!(-9999-01-01 00:00 UTC),
        ] {
            let us = to_micros(t).unwrap();
            assert_eq!(from_micros(us, "c", "s").unwrap(), t);
        }
        assert_eq!(
            to_micros(datetime!(1969-12-31 23:59:59.999999999 UTC)).unwrap(),
            -1
        );
        assert_eq!(
            to_micros(datetime!(1970-01-01 00:00:00.000001999 UTC)).unwrap(),
            1
        );
        assert!(from_micros(i64::MAX, "c", "s").is_err());
    }

    fn row() -> RawRow {
        RawRow {
            subject_id: "s".into(),
            kek_name: Some("k".into()),
            kek_version: Some(1),
            wrapped_key: Some(vec![1; 60]),
            created_at: 0,
            destroyed_at: None,
        }
    }

    #[test]
    fn malformed_rows_are_store_errors() {
        assert!(matches!(row().into_state(), Ok(SubjectKeyState::Active(_))));
        let bad: [fn(&mut RawRow); 6] = [
            |r| r.kek_name = None,
            |r| r.kek_name = Some("BAD NAME".into()),
            |r| r.kek_version = Some(0),
            |r| r.kek_version = Some(1 << 32),
            |r| r.wrapped_key = Some(vec![]),
            |r| r.subject_id = "a b".into(),
        ];
        for f in bad {
            let mut r = row();
            f(&mut r);
            assert!(matches!(r.into_state(), Err(Error::Store(_))));
        }
        let mut tomb = row();
        tomb.wrapped_key = None;
        tomb.destroyed_at = Some(5);
        assert!(matches!(
            tomb.into_state(),
            Ok(SubjectKeyState::Destroyed { .. })
        ));
        let mut tomb = row();
        tomb.destroyed_at = Some(5);
        assert!(tomb.into_active().is_err());
    }
}
