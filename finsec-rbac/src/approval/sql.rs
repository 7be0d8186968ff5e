//! The approval store in SQL, written once for SQLite and PostgreSQL (features `sqlite`,
//! `postgres`): timestamp encoding, row decoding and the queries.
//!
//! Tables `finsec_rbac_approval_requests` and `finsec_rbac_approvals` (migration 30001).
//! An approval is `INSERT ... SELECT ... WHERE EXISTS ... ON CONFLICT DO NOTHING` on the
//! unique `(request_id, approver)` pair, so each approver counts once even under
//! concurrent calls; using a request is a single conditional `UPDATE`, so exactly one
//! caller wins.

use std::fmt;

use async_trait::async_trait;
use finsec_sql::Backend;
use sqlx::{Pool, Row as _};
use time::OffsetDateTime;

use super::{ApprovalId, ApprovalRecord, ApprovalRequest, ApprovalStore};
use crate::error::{Error, Result};
use crate::permission::Permission;

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(Box::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Store(Box::new(e))
    }
}

/// `t` as unix microseconds, rounded towards the past.
pub(crate) fn to_micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(Error::store)
}

/// Unix microseconds back to a time.
pub(crate) fn from_micros(micros: i64, column: &str) -> Result<OffsetDateTime> {
    finsec_sql::time::from_micros(micros)
        .map_err(|e| Error::store(format!("finsec_rbac_approval_requests.{column}: {e}")))
}

/// One row of `finsec_rbac_approval_requests`, as read from either database.
pub(crate) struct RawRequest {
    pub(crate) id: String,
    pub(crate) initiator: String,
    pub(crate) action: String,
    pub(crate) subject: String,
    pub(crate) approver: String,
    pub(crate) quorum: i64,
    pub(crate) created_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) consumed_at: Option<i64>,
}

impl RawRequest {
    /// The record the rows stand for; refuses values that do not parse.
    pub(crate) fn into_record(self, approvals: Vec<(String, i64)>) -> Result<ApprovalRecord> {
        let malformed = |what: &str| {
            Error::store(format!(
                "finsec_rbac_approval_requests row {} has an invalid {what}",
                self.id
            ))
        };
        let request = ApprovalRequest {
            id: ApprovalId::parse(&self.id).map_err(|_| malformed("id"))?,
            initiator: self.initiator.clone(),
            action: Permission::new(&self.action).map_err(|_| malformed("action"))?,
            subject: self.subject.clone(),
            approver: Permission::new(&self.approver).map_err(|_| malformed("approver"))?,
            quorum: u8::try_from(self.quorum).map_err(|_| malformed("quorum"))?,
            created_at: from_micros(self.created_at, "created_at")?,
            expires_at: from_micros(self.expires_at, "expires_at")?,
        };
        let consumed_at = match self.consumed_at {
            Some(m) => Some(from_micros(m, "consumed_at")?),
            None => None,
        };
        let approvals = approvals
            .into_iter()
            .map(|(who, at)| Ok((who, from_micros(at, "approved_at")?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(ApprovalRecord {
            request,
            approvals,
            consumed_at,
        })
    }
}

/// An [`ApprovalStore`] in SQL, on a pool the caller built: `SqliteApprovalStore` /
/// `PgApprovalStore`. Run the crate's `migrate` (`finsec_rbac::sqlite::migrate` /
/// `finsec_rbac::postgres::migrate`) once before use.
pub struct SqlApprovalStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlApprovalStore<DB> {
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

impl<DB: Backend> Clone for SqlApprovalStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlApprovalStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlApprovalStore")
            .field("backend", &DB::LABEL)
            .field("pool", &self.pool)
            .finish()
    }
}

/// The trait implementation, expanded once per backend: the same code on a concrete pool
/// type, so none of sqlx's generic bounds need stating. `$order` is the column that keeps
/// approvals in the order they were recorded, the one schema difference migration 30001
/// made: SQLite's implicit `rowid`, PostgreSQL's identity column `seq`.
macro_rules! impl_approval_store {
    ($db:ty, order = $order:literal) => {
        impl SqlApprovalStore<$db> {
            async fn exists(&self, id: &ApprovalId) -> Result<bool> {
                let found =
                    sqlx::query("SELECT 1 FROM finsec_rbac_approval_requests WHERE id = $1")
                        .bind(id.as_str())
                        .fetch_optional(&self.pool)
                        .await?;
                Ok(found.is_some())
            }
        }

        #[async_trait]
        impl ApprovalStore for SqlApprovalStore<$db> {
            async fn create(&self, request: &ApprovalRequest) -> Result<()> {
                sqlx::query(
                    "INSERT INTO finsec_rbac_approval_requests \
                     (id, initiator, action, subject, approver, quorum, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(request.id.as_str())
                .bind(&request.initiator)
                .bind(request.action.as_str())
                .bind(&request.subject)
                .bind(request.approver.as_str())
                .bind(i16::from(request.quorum))
                .bind(to_micros(request.created_at)?)
                .bind(to_micros(request.expires_at)?)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn get(&self, id: &ApprovalId) -> Result<Option<ApprovalRecord>> {
                // The quorum column is SMALLINT on PostgreSQL and INTEGER on SQLite; read it
                // as a 64-bit integer on both.
                let Some(row) = sqlx::query(
                    "SELECT id, initiator, action, subject, approver, \
                     CAST(quorum AS BIGINT) AS quorum, created_at, expires_at, consumed_at \
                     FROM finsec_rbac_approval_requests WHERE id = $1",
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
                let approvals = sqlx::query(concat!(
                    "SELECT approver, approved_at FROM finsec_rbac_approvals \
                     WHERE request_id = $1 ORDER BY ",
                    $order
                ))
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
                     SELECT $1, $2, $3 WHERE EXISTS \
                     (SELECT 1 FROM finsec_rbac_approval_requests WHERE id = $1) \
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
                    "UPDATE finsec_rbac_approval_requests SET consumed_at = $2 \
                     WHERE id = $1 AND consumed_at IS NULL",
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
    };
}

#[cfg(feature = "sqlite")]
impl_approval_store!(sqlx::Sqlite, order = "rowid");
#[cfg(feature = "postgres")]
impl_approval_store!(sqlx::Postgres, order = "seq");
