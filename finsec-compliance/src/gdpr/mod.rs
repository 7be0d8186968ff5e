//! GDPR: data-subject rights, consent, retention and legal holds.
//!
//! - [`consent`]: the append-only consent ledger (Art. 7).
//! - [`request`]: data-subject requests (Arts. 12, 15–18, 20) with their receipt, identity
//!   verification, one-month deadline and its extension, and the queries for what is due.
//! - [`hold`]: legal holds by subject, record class or case, released only by a second
//!   person.
//! - [`retention`]: retention policies per record class (TOML), and retention runs that
//!   archive, then delete, in batches, resumable after a crash, respecting holds.
//! - [`registry`]: the application's [`PersonalDataSource`](registry::PersonalDataSource)s and
//!   what runs across all of them: the access/portability export (one JSON document,
//!   streamed), erasure (deleting, or pseudonymising what must be kept, then shredding the
//!   subject's key), rectification and restriction.
//!
//! Every step that changes or reveals personal data is recorded through an [`Auditor`]
//! (finsec-audit). Audit events name the subject by id only; personal details that go into
//! the audit log are encrypted under the subject's key (finsec-audit's `Personal`), so the
//! log stays verifiable after erasure while the details no longer decrypt.
//!
//! ```
//! use finsec_compliance::gdpr::consent::{
//!     ConsentAction, ConsentEvent, ConsentStore, MemoryConsentStore, Purpose, is_consented,
//! };
//! use finsec_compliance::gdpr::hold::{HoldStore, MemoryHoldStore, NewHold};
//! use finsec_compliance::gdpr::request::{
//!     MemoryRequestStore, NewRequest, RequestKind, RequestStore, Verification,
//! };
//! use finsec_compliance::gdpr::RecordClass;
//! use finsec_crypto::SubjectId;
//! use time::macros::datetime;
//!
//! # async fn demo() -> finsec_compliance::Result<()> {
//! let alice = SubjectId::new("user:alice")?;
//! let now = datetime!(2027-01-31 09:00 UTC);
//!
//! // Consent, granted then withdrawn just as easily.
//! let ledger = MemoryConsentStore::new();
//! let marketing = Purpose::new("marketing.email")?;
//! for action in [ConsentAction::Granted, ConsentAction::Withdrawn] {
//!     ledger
//!         .record(&ConsentEvent {
//!             subject: alice.clone(),
//!             purpose: marketing.clone(),
//!             action,
//!             policy_version: 3,
//!             at: now,
//!             channel: "web".into(),
//!             evidence: "form 17".into(),
//!         })
//!         .await?;
//! }
//! assert!(!is_consented(&ledger, &alice, &marketing).await?);
//!
//! // An access request: due one month after receipt (the end of February).
//! let requests = MemoryRequestStore::new();
//! let request = requests
//!     .create(&NewRequest {
//!         subject: alice.clone(),
//!         kind: RequestKind::Access,
//!         received_at: now,
//!         filed_by: "user:alice".into(),
//!         verification: Verification { method: "session+mfa".into(), by: "user:alice".into(), at: now },
//!         note: String::new(),
//!     })
//!     .await?;
//! assert_eq!(request.due, datetime!(2027-02-28 09:00 UTC));
//!
//! // A legal hold on her trades; only someone else may release it.
//! let holds = MemoryHoldStore::new();
//! let hold = holds
//!     .place(&NewHold {
//!         case: "LIT-2027-004".into(),
//!         subject: Some(alice.clone()),
//!         class: Some(RecordClass::new("trades")?),
//!         placed_by: "legal-1".into(),
//!         reason: "pending claim".into(),
//!         at: now,
//!     })
//!     .await?;
//! assert!(hold.covers(Some(&alice), &RecordClass::new("trades")?));
//! assert!(holds.release(hold.id, "legal-1", "settled", now).await.is_err());
//! holds.release(hold.id, "legal-2", "settled", now).await?;
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # Threat model
//!
//! - **Erasure that leaves copies**: sources are asked to delete or pseudonymise, and the
//!   subject's key is shredded last, so every ciphertext of the subject anywhere (audit
//!   details, encrypted columns, backups of them) becomes unreadable. Shredding reaches a
//!   backup only after the key-encryption key that wrapped the subject key is rotated and
//!   purged (see `finsec_crypto::subject`).
//! - **Erasure that destroys evidence**: a legal hold covering a record keeps it untouched
//!   and defers the key shredding; records a law requires (MiFIR record keeping) are
//!   pseudonymised, not deleted. Holds are released only by someone other than who placed
//!   them.
//! - **Linkable pseudonyms**: [`Pseudonymizer`] is a keyed HMAC; without its key nobody can
//!   tell which subject a pseudonym stands for or test a guess. Whoever holds the key can
//!   test a guess: keep it with the other server secrets.
//! - **Missed deadlines**: every request carries its due date;
//!   [`RequestStore::due`](request::RequestStore::due) lists what is due or overdue.
//! - **Out of scope**: deciding whether an identity was verified well enough (the caller
//!   records how it was verified), and personal data the application keeps outside its
//!   registered sources.

use std::fmt;

use async_trait::async_trait;
use finsec_audit::{AuditEvent, AuditLog, AuditSink, AuditWriter, EventTime, Outcome, Precision};
use finsec_crypto::blind_index::{BlindIndex, Normalizer};
use finsec_crypto::{Key256, SubjectId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};

pub mod consent;
pub mod hold;
pub mod registry;
pub mod request;
pub mod retention;

/// Defines a short lower-case name type: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`.
macro_rules! short_name {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Checks the shape: 1 to 64 of `a-z`, `0-9`, `.`, `_` and `-`.
            ///
            /// # Errors
            ///
            /// [`Error::Invalid`](crate::Error::Invalid) for an empty, over-long or
            /// otherwise shaped name.
            pub fn new(name: impl Into<String>) -> crate::error::Result<Self> {
                let name = name.into();
                if crate::gdpr::is_short_name(&name) {
                    Ok(Self(name))
                } else {
                    Err(crate::error::Error::invalid(
                        $field,
                        "1 to 64 of a-z, 0-9, '.', '_' and '-'",
                    ))
                }
            }

            /// The name.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = crate::error::Error;
            fn try_from(value: String) -> crate::error::Result<Self> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(p: $name) -> String {
                p.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::error::Error;
            fn from_str(s: &str) -> crate::error::Result<Self> {
                Self::new(s)
            }
        }
    };
}
pub(crate) use short_name;

pub(crate) fn is_short_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Checks a token: 1 to `max` printable ASCII characters without spaces.
pub(crate) fn check_token(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max || !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::invalid(
            field,
            format!("1 to {max} printable ASCII characters without spaces"),
        ));
    }
    Ok(())
}

/// Checks free text: at most `max` bytes (at least one unless `may_be_empty`), no control
/// characters.
pub(crate) fn check_text(
    field: &'static str,
    value: &str,
    max: usize,
    may_be_empty: bool,
) -> Result<()> {
    if (value.trim().is_empty() && !may_be_empty)
        || value.len() > max
        || value.chars().any(char::is_control)
    {
        let least = if may_be_empty { 0 } else { 1 };
        return Err(Error::invalid(
            field,
            format!("{least} to {max} bytes of text, no control characters"),
        ));
    }
    Ok(())
}

/// Truncates to whole microseconds, as the SQL stores keep times, so every store returns
/// the same values.
pub(crate) fn whole_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// RFC 3339 text of `t` (empty for a year RFC 3339 cannot write).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Lossless `usize` to `u64` (saturating on exotic targets).
pub(crate) fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

short_name!(
    /// A class of records with one retention policy: `trades`, `orders`, `logs`, `temp`,
    /// `profile`, ... (1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`).
    RecordClass,
    "record class"
);

/// Why personal data is processed (GDPR Art. 6(1)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LawfulBasis {
    /// (a) The subject consented.
    Consent,
    /// (b) Needed for a contract with the subject.
    Contract,
    /// (c) Needed to comply with a legal obligation (MiFIR record keeping, anti-money
    /// laundering).
    LegalObligation,
    /// (d) Vital interests.
    VitalInterests,
    /// (e) A task in the public interest.
    PublicTask,
    /// (f) Legitimate interests (fraud prevention, security logs).
    LegitimateInterests,
}

impl LawfulBasis {
    /// The name: `consent`, `contract`, `legal_obligation`, ...
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::Contract => "contract",
            Self::LegalObligation => "legal_obligation",
            Self::VitalInterests => "vital_interests",
            Self::PublicTask => "public_task",
            Self::LegitimateInterests => "legitimate_interests",
        }
    }

    /// The article reference: `Art. 6(1)(c)`.
    #[must_use]
    pub fn article(self) -> &'static str {
        match self {
            Self::Consent => "Art. 6(1)(a)",
            Self::Contract => "Art. 6(1)(b)",
            Self::LegalObligation => "Art. 6(1)(c)",
            Self::VitalInterests => "Art. 6(1)(d)",
            Self::PublicTask => "Art. 6(1)(e)",
            Self::LegitimateInterests => "Art. 6(1)(f)",
        }
    }
}

/// A keyed pseudonym of a data subject: `psn-` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pseudonym(String);

impl Pseudonym {
    /// The text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Pseudonym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Derives [`Pseudonym`]s: HMAC-SHA256 of the subject id under a key derived from a
/// master key (finsec-crypto's blind index, context `finsec/gdpr/pseudonym/v1`), 128 bits.
///
/// The same subject always gets the same pseudonym, so records pseudonymised in different
/// sources still belong together for a regulator, yet without the key nobody can compute
/// one or link it to a person. `Debug` shows no key material.
pub struct Pseudonymizer {
    index: BlindIndex,
}

impl Pseudonymizer {
    /// A pseudonymizer keyed from `master`.
    ///
    /// # Errors
    ///
    /// [`Error::Crypto`] if the key cannot be derived.
    pub fn new(master: &Key256) -> Result<Self> {
        Ok(Self {
            index: BlindIndex::new(master, "finsec/gdpr/pseudonym/v1", Normalizer::Exact, 16)?,
        })
    }

    /// The subject's pseudonym.
    #[must_use]
    pub fn pseudonym(&self, subject: &SubjectId) -> Pseudonym {
        Pseudonym(format!(
            "psn-{}",
            self.index
                .compute_bytes(subject.as_str().as_bytes())
                .to_hex()
        ))
    }
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer(..)")
    }
}

/// Where GDPR workflows record what they did: an [`AuditWriter`], an [`AuditLog`], or
/// anything else that keeps [`AuditEvent`]s.
#[async_trait]
pub trait Auditor: Send + Sync {
    /// Records `event`. Returns once the event is accepted for durable storage.
    ///
    /// # Errors
    ///
    /// [`Error::Audit`] when it cannot be recorded.
    async fn audit(&self, event: &AuditEvent) -> Result<()>;
}

#[async_trait]
impl Auditor for AuditWriter {
    async fn audit(&self, event: &AuditEvent) -> Result<()> {
        self.record(event)
            .await
            .map_err(|e| Error::Audit(e.to_string()))
    }
}

#[async_trait]
impl<S: AuditSink> Auditor for AuditLog<S> {
    async fn audit(&self, event: &AuditEvent) -> Result<()> {
        self.append(std::slice::from_ref(event))
            .await
            .map(|_| ())
            .map_err(|e| Error::Audit(e.to_string()))
    }
}

/// An audit event of a GDPR step: `action`, by `actor` (a user id, or `system`), on the
/// resource `kind`/`id`, at `now`.
pub(crate) fn audit_event(
    action: &str,
    outcome: Outcome,
    actor: &str,
    resource: (&str, &str),
    now: OffsetDateTime,
) -> Result<AuditEvent> {
    let audit = |e: finsec_audit::event::EventError| Error::Audit(e.to_string());
    let time = EventTime::new(now, Precision::Microsecond, "system").map_err(audit)?;
    let event = AuditEvent::new(action, outcome, time)
        .map_err(audit)?
        .with_actor(finsec_audit::event::Actor {
            user: Some(actor.to_owned()),
            ..finsec_audit::event::Actor::default()
        })
        .map_err(audit)?
        .with_resource(resource.0, resource.1)
        .map_err(audit)?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_keyed_stable_and_short_enough_for_an_identifier_field() {
        let a = Pseudonymizer::new(&Key256::from_bytes([1; 32])).unwrap();
        let b = Pseudonymizer::new(&Key256::from_bytes([2; 32])).unwrap();
        let alice = SubjectId::new("user:alice").unwrap();
        let p = a.pseudonym(&alice);
        assert_eq!(p, a.pseudonym(&alice));
        assert_ne!(p, b.pseudonym(&alice));
        assert_ne!(p, a.pseudonym(&SubjectId::new("user:bob").unwrap()));
        assert!(p.as_str().starts_with("psn-"));
        assert_eq!(p.as_str().len(), 36);
        assert!(!p.as_str().contains("alice"));
        assert_eq!(format!("{a:?}"), "Pseudonymizer(..)");
    }

    #[test]
    fn names_and_texts_are_checked() {
        assert!(RecordClass::new("trades").is_ok());
        for bad in ["", "Trades", "a b", &"x".repeat(65)] {
            assert!(RecordClass::new(bad).is_err(), "{bad:?}");
        }
        assert!(check_token("by", "officer-1", 8).is_err());
        assert!(check_token("by", "officer", 8).is_ok());
        assert!(check_text("reason", "  ", 10, false).is_err());
        assert!(check_text("reason", "", 10, true).is_ok());
        assert!(check_text("reason", "a\u{7}", 10, true).is_err());
    }
}
