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

crate::gdpr::short_name!(
    /// What consent is for: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-` (`marketing.email`).
    Purpose,
    "purpose"
);

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
        crate::gdpr::check_token("channel", &self.channel, MAX_CHANNEL)?;
        crate::gdpr::check_text("evidence", &self.evidence, MAX_EVIDENCE, true)
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

    /// Deletes every entry of the subject (erasure, Art. 17) and returns how many there
    /// were. The only way entries ever leave the ledger.
    async fn erase(&self, subject: &SubjectId) -> Result<u64>;
}

#[async_trait]
impl<T: ConsentStore + ?Sized> ConsentStore for std::sync::Arc<T> {
    async fn record(&self, event: &ConsentEvent) -> Result<ConsentRecord> {
        (**self).record(event).await
    }

    async fn current(
        &self,
        subject: &SubjectId,
        purpose: &Purpose,
    ) -> Result<Option<ConsentRecord>> {
        (**self).current(subject, purpose).await
    }

    async fn history(&self, subject: &SubjectId) -> Result<Vec<ConsentRecord>> {
        (**self).history(subject).await
    }

    async fn granted_before(
        &self,
        purpose: &Purpose,
        version: u32,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ConsentRecord>> {
        (**self)
            .granted_before(purpose, version, after, limit)
            .await
    }

    async fn erase(&self, subject: &SubjectId) -> Result<u64> {
        (**self).erase(subject).await
    }
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

    async fn erase(&self, subject: &SubjectId) -> Result<u64> {
        let mut records = self.lock();
        let before = records.len();
        records.retain(|r| &r.event.subject != subject);
        Ok(crate::gdpr::count(before - records.len()))
    }
}

/// The consent ledger as a [`PersonalDataSource`](crate::gdpr::registry::PersonalDataSource)
/// named `consent` (record class `consent`, lawful basis: legal obligation, Art. 7(1)):
/// exports a subject's history, and erasure deletes it.
#[derive(Debug)]
pub struct ConsentSource<S> {
    store: S,
    descriptor: crate::gdpr::registry::SourceDescriptor,
}

impl<S: ConsentStore> ConsentSource<S> {
    /// The source over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            descriptor: crate::gdpr::registry::SourceDescriptor {
                name: "consent".to_owned(),
                version: 1,
                description: "every consent granted or withdrawn, with the policy version, \
                              time, channel and evidence"
                    .to_owned(),
                categories: vec!["consent decisions".to_owned()],
                lawful_basis: crate::gdpr::LawfulBasis::LegalObligation,
                class: crate::gdpr::RecordClass("consent".to_owned()),
                on_erasure: crate::gdpr::registry::ErasureRule::Delete,
            },
        }
    }
}

#[async_trait]
impl<S: ConsentStore> crate::gdpr::registry::PersonalDataSource for ConsentSource<S> {
    fn descriptor(&self) -> &crate::gdpr::registry::SourceDescriptor {
        &self.descriptor
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        Ok(crate::gdpr::count(self.store.history(subject).await?.len()))
    }

    async fn export(
        &self,
        subject: &SubjectId,
        sink: &mut dyn crate::gdpr::registry::RecordSink,
    ) -> Result<()> {
        for record in self.store.history(subject).await? {
            let e = &record.event;
            sink.record(&serde_json::json!({
                "seq": record.seq,
                "purpose": e.purpose.as_str(),
                "action": e.action.as_str(),
                "policy_version": e.policy_version,
                "at": crate::gdpr::rfc3339(e.at),
                "channel": e.channel,
                "evidence": e.evidence,
            }))
            .await?;
        }
        Ok(())
    }

    async fn erase(
        &self,
        subject: &SubjectId,
        _mode: crate::gdpr::registry::ErasureMode<'_>,
    ) -> Result<crate::gdpr::registry::Erased> {
        let newest = self
            .store
            .history(subject)
            .await?
            .last()
            .map(|r| r.event.at);
        Ok(crate::gdpr::registry::Erased {
            records: self.store.erase(subject).await?,
            newest,
        })
    }
}
