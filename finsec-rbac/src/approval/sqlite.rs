//! SQLite storage for approval requests (feature `sqlite`).
//!
//! ```no_run
//! # async fn example() -> finsec_rbac::Result<()> {
//! use std::str::FromStr;
//!
//! use finsec_rbac::approval::sqlite::{SqliteApprovalStore, migrate};
//! use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};
//!
//! let options = SqliteConnectOptions::from_str("sqlite://data/finsec.db")
//!     .map_err(|e| finsec_rbac::Error::Store(Box::new(e)))?
//!     .create_if_missing(true)
//!     .foreign_keys(true)
//!     .journal_mode(SqliteJournalMode::Wal)
//!     .synchronous(SqliteSynchronous::Full); // a recorded approval survives power loss
//! let pool = SqlitePool::connect_with(options).await?;
//! migrate(&pool).await?;
//! let store = SqliteApprovalStore::new(pool);
//! # Ok(())
//! # }
//! ```
//!
//! Tables `finsec_rbac_approval_requests` and `finsec_rbac_approvals` (migration 30001).
//! An approval is `INSERT ... SELECT ... WHERE EXISTS ... ON CONFLICT DO NOTHING` on the
//! unique `(request_id, approver)` pair, so each approver counts once even under
//! concurrent calls; using a request is a single conditional `UPDATE`, so exactly one
//! caller wins.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::sqlite::SqlitePool;
use time::OffsetDateTime;

use super::sql::{RawRequest, to_micros};
use super::{ApprovalId, ApprovalRecord, ApprovalRequest, ApprovalStore};
use crate::error::{Error, Result};

/// The finsec-rbac SQLite migrator (versions 30001–30999), with `ignore_missing` set so
/// other finsec crates' migrations in the same `_sqlx_migrations` table are not an error.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/sqlite");
    migrator.set_ignore_missing(true);
    migrator
}

/// Creates or updates the finsec-rbac tables.
///
/// # Errors
/// [`Error::Store`] if a migration fails or an applied finsec-rbac migration was changed.
pub async fn migrate(pool: &SqlitePool) -> Result<()> {
    migrator().run(pool).await?;
    Ok(())
}

/// An [`ApprovalStore`] in a SQLite database, on a pool the caller built.
#[derive(Debug, Clone)]
pub struct SqliteApprovalStore {
    pool: SqlitePool,
}

impl SqliteApprovalStore {
    /// A store on `pool`. Run [`migrate`] once before use.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    async fn exists(&self, id: &ApprovalId) -> Result<bool> {
        let found = sqlx::query("SELECT 1 FROM finsec_rbac_approval_requests WHERE id = ?1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some())
    }
}

#[async_trait]
impl ApprovalStore for SqliteApprovalStore {
    async fn create(&self, request: &ApprovalRequest) -> Result<()> {
        sqlx::query(
            "INSERT INTO finsec_rbac_approval_requests \
             (id, initiator, action, subject, approver, quorum, created_at, expires_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(request.id.as_str())
        .bind(&request.initiator)
        .bind(request.action.as_str())
        .bind(&request.subject)
        .bind(request.approver.as_str())
        .bind(i64::from(request.quorum))
        .bind(to_micros(request.created_at)?)
        .bind(to_micros(request.expires_at)?)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>> {
        let Some(row) = sqlx::query(
            "SELECT id, initiator, action, subject, approver, quorum, created_at, expires_at, \
             consumed_at FROM finsec_rbac_approval_requests WHERE id = ?1",
        )
        .bind(id.as_str())
        .fetch_optional(&self.pool)
        .await?
        else {
            return Ok(None);
        };
        let raw = RawRequest {
            id: row.try_get("id")?,
            initiator: row.try_get("initiator")?,
            action: row.try_get("action")?,
            subject: row.try_get("subject")?,
            approver: row.try_get("approver")?,
            quorum: row.try_get("quorum")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            consumed_at: row.try_get("consumed_at")?,
        };
        let approvals = sqlx::query(
            "SELECT approver, approved_at FROM finsec_rbac_approvals \
             WHERE request_id = ?1 ORDER BY rowid",
        )
        .bind(id.as_str())
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| Ok((r.try_get("approver")?, r.try_get("approved_at")?)))
        .collect::<Result<Vec<(String, i64)>, sqlx::Error>>()?;
        raw.into_record(approvals).map(Some)
    }

    async fn add_approval(
        &self,
        id: &ApprovalId,
        approver: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO finsec_rbac_approvals (request_id, approver, approved_at) \
             SELECT ?1, ?2, ?3 WHERE EXISTS \
             (SELECT 1 FROM finsec_rbac_approval_requests WHERE id = ?1) \
             ON CONFLICT (request_id, approver) DO NOTHING",
        )
        .bind(id.as_str())
        .bind(approver)
        .bind(to_micros(at)?)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        if self.exists(id).await? {
            Ok(false)
        } else {
            Err(Error::ApprovalNotFound { id: id.to_string() })
        }
    }

    async fn consume(&self, id: &ApprovalId, at: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE finsec_rbac_approval_requests SET consumed_at = ?2 \
             WHERE id = ?1 AND consumed_at IS NULL",
        )
        .bind(id.as_str())
        .bind(to_micros(at)?)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        if self.exists(id).await? {
            Ok(false)
        } else {
            Err(Error::ApprovalNotFound { id: id.to_string() })
        }
    }
}
