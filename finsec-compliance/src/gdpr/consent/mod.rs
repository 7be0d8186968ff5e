//! The consent ledger (GDPR Art. 7): an append-only record of every grant and withdrawal
//! of consent, per data subject and purpose, with the policy version it was given under,
//! when, through which channel and on what evidence.
//!
//! Nothing is updated in place: withdrawing is a new entry, exactly as easy as granting.
//! A subject consents to a purpose *now* when their latest entry for it is a grant
//! ([`ConsentStore::current`]); [`ConsentStore::history`] is every entry of a subject, and
//! [`ConsentStore::granted_before`] lists the subjects whose current consent was given under
//! a policy version older than a new one (whom to ask again).
//!
//! Entries are ordered by the store's sequence number, not by their clock: of a grant and a
//! withdrawal recorded at the same instant, the one recorded last decides.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use finsec_crypto::SubjectId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlConsentStore;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// What consent is for: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-` (`marketing.email`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Purpose(String);

impl Purpose {
    /// Checks the shape.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for an empty, over-long or otherwise shaped name.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if !ok {
            return Err(Error::invalid(
                "purpose",
                "1 to 64 of a-z, 0-9, '.', '_' and '-'",
            ));
        }
        Ok(Self(name))
    }

    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Purpose {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<Purpose> for String {
    fn from(p: Purpose) -> String {
        p.0
    }
}

/// Granted or withdrawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsentAction {
    /// Consent given.
    Granted,
    /// Consent taken back.
    Withdrawn,
}

impl ConsentAction {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// The action stored as `text`.
    pub(crate) fn parse(text: &str) -> Result<Self> {
        match text {
            "granted" => Ok(Self::Granted),
            "withdrawn" => Ok(Self::Withdrawn),
            other => Err(Error::Corrupt(format!("consent action {other:?}"))),
        }
    }
}

/// Longest channel name, in bytes.
pub const MAX_CHANNEL: usize = 64;
/// Longest evidence text, in bytes.
pub const MAX_EVIDENCE: usize = 1024;

/// One entry to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentEvent {
    /// The data subject.
    pub subject: SubjectId,
    /// The purpose.
    pub purpose: Purpose,
    /// Granted or withdrawn.
    pub action: ConsentAction,
    /// The version of the privacy policy or consent text shown.
    pub policy_version: u32,
    /// When.
    pub at: OffsetDateTime,
    /// Through what: `web`, `app`, `phone`, `paper`, ... (1 to [`MAX_CHANNEL`] printable
    /// ASCII characters).
    pub channel: String,
    /// What proves it: a form id, a recording reference, a signed document's hash (up to
    /// [`MAX_EVIDENCE`] bytes, no control characters). Not personal data: point to it.
    pub evidence: String,
}

impl ConsentEvent {
    /// Checks the channel and the evidence.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.channel.is_empty()
            || self.channel.len() > MAX_CHANNEL
            || !self.channel.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "channel",
                format!("1 to {MAX_CHANNEL} printable ASCII characters without spaces"),
            ));
        }
        if self.evidence.len() > MAX_EVIDENCE || self.evidence.chars().any(char::is_control) {
            return Err(Error::invalid(
                "evidence",
                format!("at most {MAX_EVIDENCE} bytes, no control characters"),
            ));
        }
        Ok(())
    }
}

/// A recorded entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    /// The store's sequence number: the order entries were recorded in.
    pub seq: i64,
    /// The entry.
    pub event: ConsentEvent,
}

impl ConsentRecord {
    /// Whether this entry, as a subject's latest for its purpose, means consent is given.
    #[must_use]
    pub fn is_granted(&self) -> bool {
        self.event.action == ConsentAction::Granted
    }
}

/// The consent ledger.
///
/// One behavioural suite (`testing` feature) runs against every implementation.
#[async_trait]
pub trait ConsentStore: Send + Sync + fmt::Debug {
    /// Appends an entry.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a bad channel or evidence; store errors.
    async fn record(&self, event: &ConsentEvent) -> Result<ConsentRecord>;

    /// The subject's latest entry for `purpose`; consent is given now when it is a grant.
    async fn current(
        &self,
        subject: &SubjectId,
        purpose: &Purpose,
    ) -> Result<Option<ConsentRecord>>;

    /// Every entry of the subject, in the order recorded.
    async fn history(&self, subject: &SubjectId) -> Result<Vec<ConsentRecord>>;

    /// Up to `limit` latest entries for `purpose` that are grants under a policy version
    /// below `version`, with a sequence number above `after` (keyset pagination), in
    /// sequence order: the subjects to ask again after a policy change.
    async fn granted_before(
        &self,
        purpose: &Purpose,
        version: u32,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ConsentRecord>>;
}

/// Whether `subject` consents to `purpose` now.
///
/// # Errors
///
/// The store's.
pub async fn is_consented<S: ConsentStore + ?Sized>(
    store: &S,
    subject: &SubjectId,
    purpose: &Purpose,
) -> Result<bool> {
    Ok(store
        .current(subject, purpose)
        .await?
        .is_some_and(|r| r.is_granted()))
}

/// The in-memory ledger.
#[derive(Debug, Default)]
pub struct MemoryConsentStore {
    state: Mutex<Vec<ConsentRecord>>,
}

impl MemoryConsentStore {
    /// An empty ledger.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ConsentRecord>> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ConsentStore for MemoryConsentStore {
    async fn record(&self, event: &ConsentEvent) -> Result<ConsentRecord> {
        event.validate()?;
        let mut records = self.lock();
        let seq = records.last().map_or(1, |r| r.seq + 1);
        let record = ConsentRecord {
            seq,
            event: event.clone(),
        };
        records.push(record.clone());
        Ok(record)
    }

    async fn current(
        &self,
        subject: &SubjectId,
        purpose: &Purpose,
    ) -> Result<Option<ConsentRecord>> {
        Ok(self
            .lock()
            .iter()
            .rev()
            .find(|r| &r.event.subject == subject && &r.event.purpose == purpose)
            .cloned())
    }

    async fn history(&self, subject: &SubjectId) -> Result<Vec<ConsentRecord>> {
        Ok(self
            .lock()
            .iter()
            .filter(|r| &r.event.subject == subject)
            .cloned()
            .collect())
    }

    async fn granted_before(
        &self,
        purpose: &Purpose,
        version: u32,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ConsentRecord>> {
        let records = self.lock();
        let mut latest: HashMap<&SubjectId, &ConsentRecord> = HashMap::new();
        for r in records.iter().filter(|r| &r.event.purpose == purpose) {
            latest.insert(&r.event.subject, r);
        }
        let mut out: Vec<ConsentRecord> = latest
            .into_values()
            .filter(|r| r.seq > after && r.is_granted() && r.event.policy_version < version)
            .cloned()
            .collect();
        out.sort_by_key(|r| r.seq);
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(out)
    }
}
