//! Legal holds: records that must not be deleted or erased while litigation, an
//! investigation or a regulator's request is pending.
//!
//! A hold belongs to a case (`LIT-2026-017`) and covers a data subject, a record class, both
//! (that subject's records of that class) or, with neither, every record. While it is
//! active, retention runs skip what it covers and erasure keeps it untouched. It is
//! released only by a person other than the one who placed it (four eyes), with a reason;
//! a released hold stays on record.

use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use finsec_crypto::SubjectId;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use super::RecordClass;
use crate::error::{Error, Result};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlHoldStore;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// Longest case id, in bytes.
pub const MAX_CASE: usize = 64;
/// Longest person id (who placed or released a hold), in bytes.
pub const MAX_PERSON: usize = 128;
/// Longest reason, in bytes.
pub const MAX_REASON: usize = 1024;

/// A hold to place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewHold {
    /// The case it belongs to: 1 to [`MAX_CASE`] printable ASCII characters.
    pub case: String,
    /// Only this subject's records; `None` for everyone's.
    pub subject: Option<SubjectId>,
    /// Only records of this class; `None` for every class.
    pub class: Option<RecordClass>,
    /// Who placed it (a user id).
    pub placed_by: String,
    /// Why (up to [`MAX_REASON`] bytes, no control characters).
    pub reason: String,
    /// When.
    pub at: OffsetDateTime,
}

impl NewHold {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the field.
    pub fn validate(&self) -> Result<()> {
        super::check_token("case", &self.case, MAX_CASE)?;
        super::check_token("placed_by", &self.placed_by, MAX_PERSON)?;
        super::check_text("reason", &self.reason, MAX_REASON, false)
    }
}

/// How a hold ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRelease {
    /// Who released it: never who placed it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: OffsetDateTime,
}

/// A placed hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegalHold {
    /// Its id.
    pub id: Uuid,
    /// What was placed.
    #[serde(flatten)]
    pub hold: NewHold,
    /// Its release, once released.
    pub released: Option<HoldRelease>,
}

impl LegalHold {
    /// Whether it still holds.
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.released.is_none()
    }

    /// Whether it is active and covers a record of `class` about `subject` (`None`: a
    /// record about nobody in particular, which only holds without a subject cover).
    #[must_use]
    pub fn covers(&self, subject: Option<&SubjectId>, class: &RecordClass) -> bool {
        self.is_active()
            && self
                .hold
                .subject
                .as_ref()
                .is_none_or(|s| Some(s) == subject)
            && self.hold.class.as_ref().is_none_or(|c| c == class)
    }

    /// The explanation given when the hold keeps a record: `legal hold <id> (case <case>,
    /// placed by <who> on <date>: <reason>)`.
    #[must_use]
    pub fn explain(&self) -> String {
        format!(
            "legal hold {} (case {}, placed by {} on {}: {})",
            self.id,
            self.hold.case,
            self.hold.placed_by,
            self.hold.at.date(),
            self.hold.reason
        )
    }
}

/// The active holds in `holds` that cover a record of `class` about `subject`.
pub fn covering<'a>(
    holds: &'a [LegalHold],
    subject: Option<&'a SubjectId>,
    class: &'a RecordClass,
) -> impl Iterator<Item = &'a LegalHold> + 'a {
    holds.iter().filter(move |h| h.covers(subject, class))
}

/// Where holds are kept. One behavioural suite (`testing` feature) runs against every
/// implementation.
#[async_trait]
pub trait HoldStore: Send + Sync + fmt::Debug {
    /// Places a hold.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a bad field; store errors.
    async fn place(&self, hold: &NewHold) -> Result<LegalHold>;

    /// Releases hold `id`.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::State`] if it is already released;
    /// [`Error::SamePerson`] if `by` placed it; [`Error::Invalid`] for a bad `by` or
    /// `reason`; store errors.
    async fn release(
        &self,
        id: Uuid,
        by: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<LegalHold>;

    /// Hold `id`, active or released.
    async fn get(&self, id: Uuid) -> Result<Option<LegalHold>>;

    /// Every active hold, oldest first.
    async fn active(&self) -> Result<Vec<LegalHold>>;

    /// Every hold of `case`, active or released, oldest first.
    async fn case(&self, case: &str) -> Result<Vec<LegalHold>>;
}

/// Checks a release's fields and the hold's state; the error the release gets, if any.
pub(crate) fn refuse_release(hold: &LegalHold, by: &str, reason: &str) -> Result<()> {
    super::check_token("by", by, MAX_PERSON)?;
    super::check_text("reason", reason, MAX_REASON, false)?;
    if !hold.is_active() {
        return Err(Error::State(format!(
            "legal hold {} is already released",
            hold.id
        )));
    }
    if hold.hold.placed_by == by {
        return Err(Error::SamePerson {
            id: hold.id.to_string(),
        });
    }
    Ok(())
}

/// Holds in memory.
#[derive(Debug, Default)]
pub struct MemoryHoldStore {
    holds: Mutex<Vec<LegalHold>>,
}

impl MemoryHoldStore {
    /// No holds.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<LegalHold>> {
        self.holds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl HoldStore for MemoryHoldStore {
    async fn place(&self, hold: &NewHold) -> Result<LegalHold> {
        hold.validate()?;
        let placed = LegalHold {
            id: Uuid::now_v7(),
            hold: NewHold {
                at: super::whole_micros(hold.at),
                ..hold.clone()
            },
            released: None,
        };
        self.lock().push(placed.clone());
        Ok(placed)
    }

    async fn release(
        &self,
        id: Uuid,
        by: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> Result<LegalHold> {
        let mut holds = self.lock();
        let hold = holds
            .iter_mut()
            .find(|h| h.id == id)
            .ok_or_else(|| Error::not_found("legal hold", id))?;
        refuse_release(hold, by, reason)?;
        hold.released = Some(HoldRelease {
            by: by.to_owned(),
            reason: reason.to_owned(),
            at: super::whole_micros(at),
        });
        Ok(hold.clone())
    }

    async fn get(&self, id: Uuid) -> Result<Option<LegalHold>> {
        Ok(self.lock().iter().find(|h| h.id == id).cloned())
    }

    async fn active(&self) -> Result<Vec<LegalHold>> {
        Ok(sorted(self.lock().iter().filter(|h| h.is_active())))
    }

    async fn case(&self, case: &str) -> Result<Vec<LegalHold>> {
        Ok(sorted(self.lock().iter().filter(|h| h.hold.case == case)))
    }
}

fn sorted<'a>(holds: impl Iterator<Item = &'a LegalHold>) -> Vec<LegalHold> {
    let mut out: Vec<LegalHold> = holds.cloned().collect();
    out.sort_by_key(|h| (h.hold.at, h.id));
    out
}
