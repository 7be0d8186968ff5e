//! Data-subject requests (GDPR Arts. 12, 15–18, 20): what was asked, by whom, how their
//! identity was verified, and by when it must be answered.
//!
//! A request is due one month after receipt (Art. 12(3)); once, before that date, it can
//! be extended by two further months with a reason. [`RequestStore::due`] lists the open
//! requests due by a date (pass now for the overdue ones). A request is closed once, as
//! completed (with the outcome: what was exported, erased, rectified) or refused (with the
//! reason, Art. 12(4)–(5)); closed requests stay on record.
//!
//! Month arithmetic follows the calendar: one month after 31 January is the last day of
//! February, at the same time of day.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use finsec_crypto::SubjectId;
use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime};
use uuid::Uuid;

use crate::error::{Error, Result};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlRequestStore;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// Longest person id (who filed, verified or extended), in bytes.
pub const MAX_PERSON: usize = 128;
/// Longest verification method, in bytes.
pub const MAX_METHOD: usize = 64;
/// Longest note or reason, in bytes.
pub const MAX_NOTE: usize = 1024;
/// Months to answer (Art. 12(3)).
pub const ANSWER_MONTHS: u8 = 1;
/// Months an answer may be extended by, once (Art. 12(3)).
pub const EXTENSION_MONTHS: u8 = 2;

/// What the subject asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// A copy of their data (Art. 15).
    Access,
    /// Their data in a machine-readable form, to take elsewhere (Art. 20).
    Portability,
    /// Erasure (Art. 17).
    Erasure,
    /// Correction of inaccurate data (Art. 16).
    Rectification,
    /// Restriction of processing (Art. 18).
    Restriction,
}

impl RequestKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::Access,
        Self::Portability,
        Self::Erasure,
        Self::Rectification,
        Self::Restriction,
    ];

    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Portability => "portability",
            Self::Erasure => "erasure",
            Self::Rectification => "rectification",
            Self::Restriction => "restriction",
        }
    }

    /// The kind stored as `text`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for an unknown name.
    pub fn parse(text: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| {
                Error::invalid(
                    "kind",
                    "one of access, portability, erasure, rectification, restriction",
                )
            })
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Received, not answered yet.
    Open,
    /// Answered.
    Completed,
    /// Refused, with the reason in the outcome.
    Refused,
}

impl RequestStatus {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Completed => "completed",
            Self::Refused => "refused",
        }
    }

    pub(crate) fn parse(text: &str) -> Result<Self> {
        match text {
            "open" => Ok(Self::Open),
            "completed" => Ok(Self::Completed),
            "refused" => Ok(Self::Refused),
            other => Err(Error::Corrupt(format!("request status {other:?}"))),
        }
    }
}

/// How the requester's identity was checked (Art. 12(6)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verification {
    /// How: `session`, `session+mfa`, `id-document`, ... (1 to [`MAX_METHOD`] printable
    /// ASCII characters).
    pub method: String,
    /// Who checked it: the subject's own authenticated session names the subject; an
    /// officer names themselves.
    pub by: String,
    /// When.
    pub at: OffsetDateTime,
}

/// A request to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRequest {
    /// Whose data.
    pub subject: SubjectId,
    /// What is asked.
    pub kind: RequestKind,
    /// When it was received: the deadline runs from here.
    pub received_at: OffsetDateTime,
    /// Who filed it: the subject, or an officer on their behalf.
    pub filed_by: String,
    /// How the identity was verified.
    pub verification: Verification,
    /// What the request says beyond its kind (which fields to rectify, the scope of a
    /// restriction); up to [`MAX_NOTE`] bytes. Not the new values themselves.
    pub note: String,
}

impl NewRequest {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        super::check_token("filed_by", &self.filed_by, MAX_PERSON)?;
        super::check_token("verification.method", &self.verification.method, MAX_METHOD)?;
        super::check_token("verification.by", &self.verification.by, MAX_PERSON)?;
        super::check_text("note", &self.note, MAX_NOTE, true)
    }
}

/// An extension of the deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extension {
    /// Why (complexity, number of requests).
    pub reason: String,
    /// Who extended it.
    pub by: String,
    /// When.
    pub at: OffsetDateTime,
}

/// A recorded request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSubjectRequest {
    /// Its id.
    pub id: Uuid,
    /// What was received.
    #[serde(flatten)]
    pub request: NewRequest,
    /// The deadline now: one month after receipt, three once extended.
    pub due: OffsetDateTime,
    /// The extension, if any.
    pub extension: Option<Extension>,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was closed.
    pub closed_at: Option<OffsetDateTime>,
    /// What was done, or why it was refused (JSON, no personal data beyond ids).
    pub outcome: Option<serde_json::Value>,
}

impl DataSubjectRequest {
    /// Whether it is open past its deadline at `now`.
    #[must_use]
    pub fn is_overdue(&self, now: OffsetDateTime) -> bool {
        self.status == RequestStatus::Open && now > self.due
    }
}

/// `months` calendar months after `t`, the day clamped to the end of a shorter month.
#[must_use]
pub fn add_months(t: OffsetDateTime, months: u8) -> OffsetDateTime {
    let total = i32::from(u8::from(t.month())) - 1 + i32::from(months);
    let year = t.year() + total.div_euclid(12);
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1))
        .unwrap_or(Month::January);
    let last = time::util::days_in_month(month, year);
    Date::from_calendar_date(year, month, t.day().min(last)).map_or(t, |date| t.replace_date(date))
}

/// The first deadline of a request received at `received`.
#[must_use]
pub fn first_deadline(received: OffsetDateTime) -> OffsetDateTime {
    add_months(received, ANSWER_MONTHS)
}

/// The deadline once extended.
#[must_use]
pub fn extended_deadline(received: OffsetDateTime) -> OffsetDateTime {
    add_months(received, ANSWER_MONTHS + EXTENSION_MONTHS)
}

/// Where requests are kept. One behavioural suite (`testing` feature) runs against every
/// implementation.
#[async_trait]
pub trait RequestStore: Send + Sync + fmt::Debug {
    /// Records a request; its deadline is one month after receipt.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a bad field; store errors.
    async fn create(&self, request: &NewRequest) -> Result<DataSubjectRequest>;

    /// Request `id`.
    async fn get(&self, id: Uuid) -> Result<Option<DataSubjectRequest>>;

    /// Extends the deadline to three months after receipt.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::State`] if it is closed, already extended, or `at`
    /// is past the first deadline; [`Error::Invalid`] for a bad `by` or `reason`.
    async fn extend(
        &self,
        id: Uuid,
        reason: &str,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<DataSubjectRequest>;

    /// Closes an open request as completed or refused, with its outcome.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::State`] if it is closed already or `status` is
    /// [`RequestStatus::Open`].
    async fn close(
        &self,
        id: Uuid,
        status: RequestStatus,
        outcome: &serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<DataSubjectRequest>;

    /// Up to `limit` open requests whose deadline is at or before `by`, earliest deadline
    /// first: `by = now` gives the overdue ones.
    async fn due(&self, by: OffsetDateTime, limit: u32) -> Result<Vec<DataSubjectRequest>>;

    /// Every request about `subject`, oldest first.
    async fn for_subject(&self, subject: &SubjectId) -> Result<Vec<DataSubjectRequest>>;
}

/// The error an extension gets, if any.
pub(crate) fn refuse_extension(
    r: &DataSubjectRequest,
    reason: &str,
    by: &str,
    at: OffsetDateTime,
) -> Result<()> {
    super::check_token("by", by, MAX_PERSON)?;
    super::check_text("reason", reason, MAX_NOTE, false)?;
    if r.status != RequestStatus::Open {
        return Err(Error::State(format!("request {} is closed", r.id)));
    }
    if r.extension.is_some() {
        return Err(Error::State(format!(
            "request {} was extended already: it can be extended once",
            r.id
        )));
    }
    if at > r.due {
        return Err(Error::State(format!(
            "request {} is past its deadline: an extension must be decided within the first month",
            r.id
        )));
    }
    Ok(())
}

/// The error a close gets, if any.
pub(crate) fn refuse_close(r: &DataSubjectRequest, status: RequestStatus) -> Result<()> {
    if status == RequestStatus::Open {
        return Err(Error::State(
            "a request is closed as completed or refused".to_owned(),
        ));
    }
    if r.status != RequestStatus::Open {
        return Err(Error::State(format!(
            "request {} is {} already",
            r.id,
            r.status.as_str()
        )));
    }
    Ok(())
}

/// The stored form of a new request, times to the microsecond.
pub(crate) fn opened(request: &NewRequest) -> DataSubjectRequest {
    let mut request = request.clone();
    request.received_at = super::whole_micros(request.received_at);
    request.verification.at = super::whole_micros(request.verification.at);
    DataSubjectRequest {
        id: Uuid::now_v7(),
        due: first_deadline(request.received_at),
        request,
        extension: None,
        status: RequestStatus::Open,
        closed_at: None,
        outcome: None,
    }
}

/// Requests in memory.
#[derive(Debug, Default)]
pub struct MemoryRequestStore {
    requests: Mutex<Vec<DataSubjectRequest>>,
}

impl MemoryRequestStore {
    /// No requests.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<DataSubjectRequest>> {
        self.requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn update(
        &self,
        id: Uuid,
        change: impl FnOnce(&mut DataSubjectRequest) -> Result<()>,
    ) -> Result<DataSubjectRequest> {
        let mut requests = self.lock();
        let r = requests
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::not_found("request", id))?;
        change(r)?;
        Ok(r.clone())
    }
}

#[async_trait]
impl RequestStore for MemoryRequestStore {
    async fn create(&self, request: &NewRequest) -> Result<DataSubjectRequest> {
        request.validate()?;
        let r = opened(request);
        self.lock().push(r.clone());
        Ok(r)
    }

    async fn get(&self, id: Uuid) -> Result<Option<DataSubjectRequest>> {
        Ok(self.lock().iter().find(|r| r.id == id).cloned())
    }

    async fn extend(
        &self,
        id: Uuid,
        reason: &str,
        by: &str,
        at: OffsetDateTime,
    ) -> Result<DataSubjectRequest> {
        self.update(id, |r| {
            refuse_extension(r, reason, by, at)?;
            r.due = extended_deadline(r.request.received_at);
            r.extension = Some(Extension {
                reason: reason.to_owned(),
                by: by.to_owned(),
                at: super::whole_micros(at),
            });
            Ok(())
        })
    }

    async fn close(
        &self,
        id: Uuid,
        status: RequestStatus,
        outcome: &serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<DataSubjectRequest> {
        self.update(id, |r| {
            refuse_close(r, status)?;
            r.status = status;
            r.closed_at = Some(super::whole_micros(at));
            r.outcome = Some(outcome.clone());
            Ok(())
        })
    }

    async fn due(&self, by: OffsetDateTime, limit: u32) -> Result<Vec<DataSubjectRequest>> {
        let mut out: Vec<DataSubjectRequest> = self
            .lock()
            .iter()
            .filter(|r| r.status == RequestStatus::Open && r.due <= by)
            .cloned()
            .collect();
        out.sort_by_key(|r| (r.due, r.id));
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn for_subject(&self, subject: &SubjectId) -> Result<Vec<DataSubjectRequest>> {
        let mut out: Vec<DataSubjectRequest> = self
            .lock()
            .iter()
            .filter(|r| &r.request.subject == subject)
            .cloned()
            .collect();
        out.sort_by_key(|r| (r.request.received_at, r.id));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn months_follow_the_calendar() {
        assert_eq!(
            first_deadline(datetime!(2027-01-31 08:00 UTC)),
            datetime!(2027-02-28 08:00 UTC)
        );
        assert_eq!(
            first_deadline(datetime!(2028-01-31 08:00 UTC)),
            datetime!(2028-02-29 08:00 UTC)
        );
        assert_eq!(
            first_deadline(datetime!(2026-12-15 08:00 UTC)),
            datetime!(2027-01-15 08:00 UTC)
        );
        assert_eq!(
            extended_deadline(datetime!(2026-11-30 08:00 UTC)),
            datetime!(2027-02-28 08:00 UTC)
        );
        assert_eq!(
            add_months(datetime!(2026-05-31 00:00 +02:00), 1),
            datetime!(2026-06-30 00:00 +02:00)
        );
    }

    #[test]
    fn kinds_round_trip() {
        for kind in RequestKind::ALL {
            assert_eq!(RequestKind::parse(kind.as_str()).unwrap(), kind);
        }
        assert!(RequestKind::parse("delete").is_err());
    }
}
