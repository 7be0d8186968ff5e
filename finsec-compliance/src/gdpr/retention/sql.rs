//! [`RetentionStateStore`] in SQL, written once for SQLite and PostgreSQL, on
//! `finsec_retention_runs` (migration 50401; run the crate's `migrate` first).
//!
//! A unique index on the class of unfinished runs makes [`RetentionStateStore::begin`]
//! race-free across instances: the loser of two concurrent begins resumes the winner's run.

use std::fmt;

use async_trait::async_trait;
use finsec_sql::Backend;
use sqlx::Pool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{BatchCounts, RetentionStateStore, RunState, refuse_advance};
use crate::error::{Error, Result};
use crate::gdpr::RecordClass;

/// A [`RetentionStateStore`] in SQL on a pool the caller built
/// (`SqlRetentionStateStore<sqlx::Sqlite>` or `SqlRetentionStateStore<sqlx::Postgres>`).
pub struct SqlRetentionStateStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlRetentionStateStore<DB> {
    /// A store on `pool`.
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

impl<DB: Backend> Clone for SqlRetentionStateStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlRetentionStateStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlRetentionStateStore")
            .field("backend", &DB::LABEL)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str =
    "id, class, cutoff_us, started_us, cursor, batches, archived, deleted, held, finished_us";

type Raw = (
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
);

fn run(raw: Raw) -> Result<RunState> {
    let (id, class, cutoff, started, cursor, batches, archived, deleted, held, finished) = raw;
    let corrupt = |what: &str| Error::Corrupt(format!("finsec_retention_runs {id}: {what}"));
    let time = |us: i64| finsec_sql::time::from_micros(us).map_err(|_| corrupt("time"));
    let n = |v: i64| u64::try_from(v).map_err(|_| corrupt("count"));
    Ok(RunState {
        id: id.parse().map_err(|_| corrupt("id"))?,
        class: RecordClass::new(class).map_err(|_| corrupt("class"))?,
        cutoff: time(cutoff)?,
        started_at: time(started)?,
        cursor,
        batches: n(batches)?,
        archived: n(archived)?,
        deleted: n(deleted)?,
        held: n(held)?,
        finished_at: finished.map(time).transpose()?,
    })
}

fn micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(Error::store)
}

fn signed(n: u64) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::invalid("count", "too large"))
}

macro_rules! impl_state_store {
    ($db:ty) => {
        #[async_trait]
        impl RetentionStateStore for SqlRetentionStateStore<$db> {
            async fn begin(
                &self,
                class: &RecordClass,
                cutoff: OffsetDateTime,
                at: OffsetDateTime,
            ) -> Result<RunState> {
                sqlx::query(
                    "INSERT INTO finsec_retention_runs (id, class, cutoff_us, started_us) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(class.as_str())
                .bind(micros(cutoff)?)
                .bind(micros(at)?)
                .execute(&self.pool)
                .await?;
                let raw: Raw = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_retention_runs \
                     WHERE class = $1 AND finished_us IS NULL"
                ))
                .bind(class.as_str())
                .fetch_one(&self.pool)
                .await?;
                run(raw)
            }

            async fn advance(
                &self,
                id: Uuid,
                batches: u64,
                cursor: &str,
                counts: BatchCounts,
            ) -> Result<RunState> {
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "UPDATE finsec_retention_runs \
                     SET batches = batches + 1, cursor = $3, archived = archived + $4, \
                         deleted = deleted + $5, held = held + $6 \
                     WHERE id = $1 AND batches = $2 AND finished_us IS NULL \
                     RETURNING {COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(signed(batches)?)
                .bind(cursor)
                .bind(signed(counts.archived)?)
                .bind(signed(counts.deleted)?)
                .bind(signed(counts.held)?)
                .fetch_optional(&self.pool)
                .await?;
                match raw {
                    Some(raw) => run(raw),
                    None => {
                        let current = self
                            .get(id)
                            .await?
                            .ok_or_else(|| Error::not_found("retention run", id))?;
                        refuse_advance(&current, batches)?;
                        Err(Error::State(format!(
                            "retention run {id} changed while it was advanced"
                        )))
                    }
                }
            }

            async fn finish(&self, id: Uuid, at: OffsetDateTime) -> Result<RunState> {
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "UPDATE finsec_retention_runs SET finished_us = $2 \
                     WHERE id = $1 AND finished_us IS NULL RETURNING {COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(micros(at)?)
                .fetch_optional(&self.pool)
                .await?;
                match raw {
                    Some(raw) => run(raw),
                    None if self.get(id).await?.is_some() => {
                        Err(Error::State(format!("retention run {id} is finished")))
                    }
                    None => Err(Error::not_found("retention run", id)),
                }
            }

            async fn get(&self, id: Uuid) -> Result<Option<RunState>> {
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_retention_runs WHERE id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                raw.map(run).transpose()
            }

            async fn recent(&self, class: &RecordClass, limit: u32) -> Result<Vec<RunState>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_retention_runs WHERE class = $1 \
                     ORDER BY started_us DESC, id DESC LIMIT $2"
                ))
                .bind(class.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(run).collect()
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_state_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_state_store!(sqlx::Postgres);
