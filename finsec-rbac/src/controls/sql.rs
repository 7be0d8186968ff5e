//! [`ControlStore`] in SQL, written once for SQLite and PostgreSQL (features `sqlite`,
//! `postgres`), on `finsec_rbac_controls` and `finsec_rbac_control_version` (migration
//! 30101; run the crate's `migrate` first).
//!
//! An insert and a lift bump the version row in the same transaction. A lift is one
//! conditional `UPDATE` (in force, and for a global halt asked for by someone else), so
//! of racing lifts exactly one changes the row.

use std::fmt;

use async_trait::async_trait;
use finsec_sql::Backend;
use sqlx::{Pool, Row as _};
use time::OffsetDateTime;

use super::error::{ControlError, Result};
use super::store::ControlStore;
use super::{Control, ControlRecord, NewControl};

/// A [`ControlStore`] in SQL on a pool the caller built (`SqlControlStore<sqlx::Sqlite>`
/// or `SqlControlStore<sqlx::Postgres>`).
pub struct SqlControlStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlControlStore<DB> {
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

impl<DB: Backend> Clone for SqlControlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlControlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlControlStore")
            .field("backend", &DB::LABEL)
            .finish_non_exhaustive()
    }
}

fn micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(ControlError::store)
}

fn time_of(micros: i64) -> Result<OffsetDateTime> {
    finsec_sql::time::from_micros(micros)
        .map_err(|e| ControlError::Corrupt(format!("finsec_rbac_controls time: {e}")))
}

/// The columns every query reads, in this order.
const COLUMNS: &str = "id, kind, target, reason, set_by, set_at, expires_at, \
                       lift_requested_by, lifted_by, lifted_at";

/// One row, as read from either database.
type Raw = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn record(raw: Raw) -> Result<ControlRecord> {
    let (id, kind, target, reason, set_by, set_at, expires_at, asker, lifted_by, lifted_at) = raw;
    Ok(ControlRecord {
        id,
        control: Control::from_parts(&kind, &target)?,
        reason,
        set_by,
        set_at: time_of(set_at)?,
        expires_at: expires_at.map(time_of).transpose()?,
        lift_requested_by: asker,
        lifted_by,
        lifted_at: lifted_at.map(time_of).transpose()?,
    })
}

macro_rules! impl_control_store {
    ($db:ty) => {
        #[async_trait]
        impl ControlStore for SqlControlStore<$db> {
            async fn insert(&self, new: &NewControl, now: OffsetDateTime) -> Result<ControlRecord> {
                let mut tx = self.pool.begin().await?;
                let row = sqlx::query(
                    "INSERT INTO finsec_rbac_controls \
                     (kind, target, reason, set_by, set_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(new.control().kind())
                .bind(new.control().target())
                .bind(new.reason())
                .bind(new.set_by())
                .bind(micros(now)?)
                .bind(new.expires_at().map(micros).transpose()?)
                .fetch_one(&mut *tx)
                .await?;
                let id: i64 = row.try_get(0)?;
                sqlx::query("UPDATE finsec_rbac_control_version SET version = version + 1")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                self.get(id)
                    .await?
                    .ok_or_else(|| ControlError::Corrupt(format!("control {id} vanished")))
            }

            async fn get(&self, id: i64) -> Result<Option<ControlRecord>> {
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_rbac_controls WHERE id = $1"
                ))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
                raw.map(record).transpose()
            }

            async fn active(&self, now: OffsetDateTime) -> Result<Vec<ControlRecord>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_rbac_controls WHERE lifted_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $1) ORDER BY id"
                ))
                .bind(micros(now)?)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(record).collect()
            }

            async fn recent(&self, limit: u32) -> Result<Vec<ControlRecord>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_rbac_controls ORDER BY id DESC LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(record).collect()
            }

            async fn request_lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE finsec_rbac_controls SET lift_requested_by = $2 \
                     WHERE id = $1 AND lift_requested_by IS NULL AND lifted_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $3)",
                )
                .bind(id)
                .bind(by)
                .bind(micros(now)?)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(
                    "UPDATE finsec_rbac_controls SET lifted_by = $2, lifted_at = $3 \
                     WHERE id = $1 AND lifted_at IS NULL \
                     AND (expires_at IS NULL OR expires_at > $3) \
                     AND NOT (kind = 'halt' AND target = 'global' \
                              AND (lift_requested_by IS NULL OR lift_requested_by = $2))",
                )
                .bind(id)
                .bind(by)
                .bind(micros(now)?)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() != 1 {
                    return Ok(false);
                }
                sqlx::query("UPDATE finsec_rbac_control_version SET version = version + 1")
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn version(&self) -> Result<i64> {
                let (version,): (i64,) =
                    sqlx::query_as("SELECT version FROM finsec_rbac_control_version")
                        .fetch_one(&self.pool)
                        .await?;
                Ok(version)
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_control_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_control_store!(sqlx::Postgres);
