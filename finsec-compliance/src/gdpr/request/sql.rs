//! [`RequestStore`] in SQL, written once for SQLite and PostgreSQL, on
//! `finsec_subject_requests` (migration 50301; run the crate's `migrate` first).
//!
//! Extending and closing are compare-and-set updates: of two officers acting on one
//! request at once, one wins and the other gets [`Error::State`].

use std::fmt;

use async_trait::async_trait;
use finsec_crypto::SubjectId;
use finsec_sql::Backend;
use sqlx::Pool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{
    DataSubjectRequest, Extension, NewRequest, RequestKind, RequestStatus, RequestStore,
    Verification, extended_deadline, opened, refuse_close, refuse_extension,
};
use crate::error::{Error, Result};

/// A [`RequestStore`] in SQL on a pool the caller built (`SqlRequestStore<sqlx::Sqlite>` or
/// `SqlRequestStore<sqlx::Postgres>`).
pub struct SqlRequestStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlRequestStore<DB> {
    /// A store on `pool`.
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

impl<DB: Backend> Clone for SqlRequestStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlRequestStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlRequestStore")
            .field("backend", &DB::LABEL)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, subject, kind, received_us, filed_by, verify_method, verified_by, \
                       verified_us, note, due_us, ext_reason, ext_by, ext_us, status, \
                       closed_us, outcome";

type Raw = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    i64,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    Option<i64>,
    Option<String>,
);

fn request(raw: Raw) -> Result<DataSubjectRequest> {
    let (
        id,
        subject,
        kind,
        received,
        filed_by,
        method,
        verified_by,
        verified,
        note,
        due,
        ext_reason,
        ext_by,
        ext_at,
        status,
        closed,
        outcome,
    ) = raw;
    let corrupt = |what: &str| Error::Corrupt(format!("finsec_subject_requests {id}: {what}"));
    let time = |us: i64| finsec_sql::time::from_micros(us).map_err(|_| corrupt("time"));
    let extension = match (ext_reason, ext_by, ext_at) {
        (Some(reason), Some(by), Some(at)) => Some(Extension {
            reason,
            by,
            at: time(at)?,
        }),
        (None, None, None) => None,
        _ => return Err(corrupt("extension")),
    };
    Ok(DataSubjectRequest {
        id: id.parse().map_err(|_| corrupt("id"))?,
        request: NewRequest {
            subject: SubjectId::new(subject).map_err(|_| corrupt("subject"))?,
            kind: RequestKind::parse(&kind).map_err(|_| corrupt("kind"))?,
            received_at: time(received)?,
            filed_by,
            verification: Verification {
                method,
                by: verified_by,
                at: time(verified)?,
            },
            note,
        },
        due: time(due)?,
        extension,
        status: RequestStatus::parse(&status)?,
        closed_at: closed.map(time).transpose()?,
        outcome: outcome
            .map(|o| serde_json::from_str(&o))
            .transpose()
            .map_err(|_| corrupt("outcome"))?,
    })
}

fn micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(Error::store)
}

macro_rules! impl_request_store {
    ($db:ty) => {
        impl SqlRequestStore<$db> {
            async fn current(&self, id: Uuid) -> Result<DataSubjectRequest> {
                self.get(id)
                    .await?
                    .ok_or_else(|| Error::not_found("request", id))
            }

            /// Reads the row back after a compare-and-set update; `None` means another
            /// writer changed it first.
            async fn changed(&self, id: Uuid, raw: Option<Raw>) -> Result<DataSubjectRequest> {
                match raw {
                    Some(raw) => request(raw),
                    None => Err(Error::State(format!(
                        "request {id} was changed by someone else; read it again"
                    ))),
                }
            }
        }

        #[async_trait]
        impl RequestStore for SqlRequestStore<$db> {
            async fn create(&self, new: &NewRequest) -> Result<DataSubjectRequest> {
                new.validate()?;
                let r = opened(new);
                let raw: Raw = sqlx::query_as(&format!(
                    "INSERT INTO finsec_subject_requests \
                     (id, subject, kind, received_us, filed_by, verify_method, verified_by, \
                      verified_us, note, due_us, status) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'open') \
                     RETURNING {COLUMNS}"
                ))
                .bind(r.id.to_string())
                .bind(r.request.subject.as_str())
                .bind(r.request.kind.as_str())
                .bind(micros(r.request.received_at)?)
                .bind(&r.request.filed_by)
                .bind(&r.request.verification.method)
                .bind(&r.request.verification.by)
                .bind(micros(r.request.verification.at)?)
                .bind(&r.request.note)
                .bind(micros(r.due)?)
                .fetch_one(&self.pool)
                .await?;
                request(raw)
            }

            async fn get(&self, id: Uuid) -> Result<Option<DataSubjectRequest>> {
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_subject_requests WHERE id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                raw.map(request).transpose()
            }

            async fn extend(
                &self,
                id: Uuid,
                reason: &str,
                by: &str,
                at: OffsetDateTime,
            ) -> Result<DataSubjectRequest> {
                let r = self.current(id).await?;
                refuse_extension(&r, reason, by, at)?;
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "UPDATE finsec_subject_requests \
                     SET due_us = $2, ext_reason = $3, ext_by = $4, ext_us = $5 \
                     WHERE id = $1 AND status = 'open' AND ext_us IS NULL \
                     RETURNING {COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(micros(extended_deadline(r.request.received_at))?)
                .bind(reason)
                .bind(by)
                .bind(micros(at)?)
                .fetch_optional(&self.pool)
                .await?;
                self.changed(id, raw).await
            }

            async fn close(
                &self,
                id: Uuid,
                status: RequestStatus,
                outcome: &serde_json::Value,
                at: OffsetDateTime,
            ) -> Result<DataSubjectRequest> {
                let r = self.current(id).await?;
                refuse_close(&r, status)?;
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "UPDATE finsec_subject_requests \
                     SET status = $2, closed_us = $3, outcome = $4 \
                     WHERE id = $1 AND status = 'open' RETURNING {COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(status.as_str())
                .bind(micros(at)?)
                .bind(outcome.to_string())
                .fetch_optional(&self.pool)
                .await?;
                self.changed(id, raw).await
            }

            async fn due(
                &self,
                by: OffsetDateTime,
                limit: u32,
            ) -> Result<Vec<DataSubjectRequest>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_subject_requests \
                     WHERE status = 'open' AND due_us <= $1 ORDER BY due_us, id LIMIT $2"
                ))
                .bind(micros(by)?)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(request).collect()
            }

            async fn for_subject(&self, subject: &SubjectId) -> Result<Vec<DataSubjectRequest>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_subject_requests \
                     WHERE subject = $1 ORDER BY received_us, id"
                ))
                .bind(subject.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(request).collect()
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_request_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_request_store!(sqlx::Postgres);
