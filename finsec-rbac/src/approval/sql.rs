//! What the SQL adapters share: timestamp encoding and row decoding.

use time::OffsetDateTime;

use super::{ApprovalId, ApprovalRecord, ApprovalRequest};
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

/// A store error that is not a driver error (a malformed row, an out-of-range value).
pub(crate) fn store_error(message: String) -> Error {
    Error::Store(message.into())
}

/// `t` as unix microseconds, rounded towards the past.
pub(crate) fn to_micros(t: OffsetDateTime) -> Result<i64> {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000))
        .map_err(|_| store_error(format!("timestamp {t} is out of range")))
}

/// Unix microseconds back to a time.
pub(crate) fn from_micros(micros: i64, column: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).map_err(|_| {
        store_error(format!(
            "finsec_rbac_approval_requests.{column} is out of range: {micros}"
        ))
    })
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
            store_error(format!(
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
