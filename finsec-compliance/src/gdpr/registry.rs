//! The application's personal-data sources, and the requests that run across all of them.
//!
//! Each [`PersonalDataSource`] declares in its [`SourceDescriptor`] what it holds, on what
//! lawful basis, its record class (and so its retention period) and what erasure does to it
//! ([`ErasureRule`]). A [`DataSubjectRegistry`] holds every source and answers:
//!
//! - **Access and portability** (Arts. 15, 20): [`DataSubjectRegistry::export`] streams one
//!   JSON document to an `AsyncWrite`, source by source and record by record, never holding
//!   more than one record in memory, and ends it with a manifest of the sources, their
//!   versions, lawful bases, record counts and times:
//!
//!   ```json
//!   {"format": "finsec.gdpr.export/1", "subject": "user:42",
//!    "generated_at": "2026-12-07T10:00:00Z",
//!    "sources": {"profile": [{...}], "orders": [{...}, {...}]},
//!    "manifest": {"sources": [{"name": "profile", "version": 1, "records": 1, ...}],
//!                 "finished_at": "2026-12-07T10:00:01Z"}}
//!   ```
//!
//! - **Erasure** (Art. 17): [`DataSubjectRegistry::erase`]. A source an active legal hold
//!   covers is kept untouched (Art. 17(3)(e)); a source whose records a law requires
//!   ([`ErasureRule::Pseudonymise`], Art. 17(3)(b)) has the subject's identifiers replaced by
//!   their keyed [`Pseudonym`] and personal fields emptied; every other source deletes. Then,
//!   unless a hold kept something, the subject's key is shredded, so whatever was encrypted
//!   under it (audit details, sealed columns) no longer decrypts. The [`ErasureReport`] says
//!   per source and class what was deleted, pseudonymised or kept, the legal reason and
//!   until when it is kept. Erasure is idempotent: after a failure, run it again.
//! - **Rectification** (Art. 16) and **restriction** (Art. 18): passed to the sources that
//!   support them.
//!
//! Every step is audited through an [`Auditor`]: the events name the subject by id and the
//! sources and counts; they never carry the personal data itself.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use finsec_audit::Outcome;
use finsec_crypto::subject::{SubjectKeyStore, SubjectKeys};
use finsec_crypto::{KeyProvider, SubjectId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use super::hold::{HoldStore, LegalHold, covering};
use super::retention::RetentionPolicies;
use super::{Auditor, LawfulBasis, Pseudonym, Pseudonymizer, RecordClass, audit_event, rfc3339};
use crate::error::{Error, Result};

/// The `format` of an export document.
pub const EXPORT_FORMAT: &str = "finsec.gdpr.export/1";

/// What erasure does to a source's records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum ErasureRule {
    /// Delete them.
    Delete,
    /// A law requires them: replace the subject's identifiers with their pseudonym and
    /// empty personal fields, keep the rest for the retention period.
    Pseudonymise {
        /// The obligation: `MiFIR Art. 25(1) record keeping`.
        obligation: String,
    },
}

/// What a source holds and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDescriptor {
    /// Its name in exports and reports: 1 to 64 of `a-z`, `0-9`, `.`, `_`, `-`.
    pub name: String,
    /// The version of its record layout: exports name it, so a reader knows the shape.
    pub version: u32,
    /// What it is, in a sentence.
    pub description: String,
    /// The categories of personal data in it (`username`, `IP address`, `orders`).
    pub categories: Vec<String>,
    /// Why it is processed.
    pub lawful_basis: LawfulBasis,
    /// Its record class (and so its retention period).
    pub class: RecordClass,
    /// What erasure does.
    pub on_erasure: ErasureRule,
}

/// How a source is to erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureMode<'a> {
    /// Delete the subject's records.
    Delete,
    /// Replace the subject's identifiers with this pseudonym, empty personal fields.
    Pseudonymise(&'a Pseudonym),
}

/// What a source did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Erased {
    /// Records deleted or pseudonymised.
    pub records: u64,
    /// When the newest of them was created (for how long pseudonymised records are kept).
    pub newest: Option<OffsetDateTime>,
}

/// Where a source writes the records of an export, one at a time.
#[async_trait]
pub trait RecordSink: Send {
    /// Writes one record.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the output fails.
    async fn record(&mut self, record: &Value) -> Result<()>;
}

/// Personal data an application keeps in one place.
#[async_trait]
pub trait PersonalDataSource: Send + Sync {
    /// What it holds and why.
    fn descriptor(&self) -> &SourceDescriptor;

    /// How many records about `subject` it holds.
    async fn count(&self, subject: &SubjectId) -> Result<u64>;

    /// Writes every record about `subject` to `sink`, decrypted, as JSON objects.
    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()>;

    /// Erases `subject`'s records as `mode` says.
    async fn erase(&self, subject: &SubjectId, mode: ErasureMode<'_>) -> Result<Erased>;

    /// Applies the `changes` (field name to new value) it understands; returns the fields
    /// it changed.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a value it refuses; [`Error::Unsupported`] (the default) for
    /// a source without rectification.
    async fn rectify(
        &self,
        subject: &SubjectId,
        changes: &BTreeMap<String, Value>,
    ) -> Result<Vec<String>> {
        let _ = (subject, changes);
        Err(Error::Unsupported {
            source_name: self.descriptor().name.clone(),
            operation: "rectification",
        })
    }

    /// Restricts (or lifts the restriction of) processing of `subject`'s records; returns
    /// how many records it covers.
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] (the default) for a source without restriction.
    async fn restrict(&self, subject: &SubjectId, restricted: bool) -> Result<u64> {
        let _ = (subject, restricted);
        Err(Error::Unsupported {
            source_name: self.descriptor().name.clone(),
            operation: "restriction",
        })
    }
}

#[async_trait]
impl<T: PersonalDataSource + ?Sized> PersonalDataSource for std::sync::Arc<T> {
    fn descriptor(&self) -> &SourceDescriptor {
        (**self).descriptor()
    }

    async fn count(&self, subject: &SubjectId) -> Result<u64> {
        (**self).count(subject).await
    }

    async fn export(&self, subject: &SubjectId, sink: &mut dyn RecordSink) -> Result<()> {
        (**self).export(subject, sink).await
    }

    async fn erase(&self, subject: &SubjectId, mode: ErasureMode<'_>) -> Result<Erased> {
        (**self).erase(subject, mode).await
    }

    async fn rectify(
        &self,
        subject: &SubjectId,
        changes: &BTreeMap<String, Value>,
    ) -> Result<Vec<String>> {
        (**self).rectify(subject, changes).await
    }

    async fn restrict(&self, subject: &SubjectId, restricted: bool) -> Result<u64> {
        (**self).restrict(subject, restricted).await
    }
}

/// Destroys a subject's key ([`SubjectKeys`] does).
#[async_trait]
pub trait KeyShredder: Send + Sync {
    /// Shreds `subject`'s key at `now`; `true` if a key existed.
    async fn shred(&self, subject: &SubjectId, now: OffsetDateTime) -> Result<bool>;
}

#[async_trait]
impl<S, P> KeyShredder for SubjectKeys<S, P>
where
    S: SubjectKeyStore,
    P: KeyProvider + Send + Sync,
{
    async fn shred(&self, subject: &SubjectId, now: OffsetDateTime) -> Result<bool> {
        Ok(self.shred_at(subject, now).await?)
    }
}

/// One source's line in an export manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// The source.
    #[serde(flatten)]
    pub source: SourceDescriptor,
    /// Its retention period, if its class has a policy.
    pub retention: Option<String>,
    /// Records exported.
    pub records: u64,
    /// When its export began.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

/// The manifest that ends an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportManifest {
    /// Every source, in registry order.
    pub sources: Vec<ManifestEntry>,
    /// When the export ended.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

impl ExportManifest {
    /// Records exported across all sources.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.sources.iter().map(|s| s.records).sum()
    }
}

/// What erasure did to one source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErasureAction {
    /// Deleted.
    Deleted,
    /// Kept, with the subject replaced by their pseudonym.
    Pseudonymised,
    /// Kept untouched (a legal hold).
    Kept,
}

/// One source's line in an [`ErasureReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureEntry {
    /// The source.
    pub source: String,
    /// Its record class.
    pub class: RecordClass,
    /// What happened.
    pub action: ErasureAction,
    /// How many records.
    pub records: u64,
    /// The legal reason.
    pub reason: String,
    /// Until when kept records are kept (`None`: deleted, or until a hold is released).
    #[serde(with = "time::serde::rfc3339::option")]
    pub kept_until: Option<OffsetDateTime>,
}

/// The outcome of an erasure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErasureReport {
    /// Whose data.
    pub subject: SubjectId,
    /// The pseudonym kept records now carry.
    pub pseudonym: Pseudonym,
    /// Per source.
    pub sources: Vec<ErasureEntry>,
    /// Whether the subject's key is shredded now.
    pub key_shredded: bool,
    /// Why it is not, when it is not.
    pub key_note: Option<String>,
    /// The legal holds that kept records.
    pub holds: Vec<uuid::Uuid>,
    /// When it finished.
    #[serde(with = "time::serde::rfc3339")]
    pub finished_at: OffsetDateTime,
}

impl ErasureReport {
    /// Whether a legal hold kept something (the erasure is then partial).
    #[must_use]
    pub fn is_partial(&self) -> bool {
        !self.holds.is_empty()
    }
}

/// What an erasure needs besides the sources.
pub struct ErasureContext<'a> {
    /// The legal holds.
    pub holds: &'a dyn HoldStore,
    /// Retention periods, for how long pseudonymised records are kept.
    pub policies: &'a RetentionPolicies,
    /// Derives the pseudonym.
    pub pseudonymizer: &'a Pseudonymizer,
    /// Shreds the subject's key.
    pub keys: &'a dyn KeyShredder,
    /// Records every step.
    pub auditor: &'a dyn Auditor,
    /// Who asked for it (a user id, or `system`).
    pub actor: &'a str,
    /// Now.
    pub now: OffsetDateTime,
}

impl fmt::Debug for ErasureContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErasureContext")
            .field("actor", &self.actor)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What a rectification changed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Rectification {
    /// Per source, the fields it changed.
    pub changed: BTreeMap<String, Vec<String>>,
    /// Fields no source took.
    pub unhandled: Vec<String>,
}

/// The registered sources.
#[derive(Default)]
pub struct DataSubjectRegistry {
    sources: Vec<Box<dyn PersonalDataSource>>,
}

impl fmt::Debug for DataSubjectRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.sources.iter().map(|s| &s.descriptor().name))
            .finish()
    }
}

/// Writes records into the export document, between `[` and `]`.
struct JsonArraySink<'w, W: AsyncWrite + Unpin + Send> {
    out: &'w mut BufWriter<W>,
    records: u64,
}

#[async_trait]
impl<W: AsyncWrite + Unpin + Send> RecordSink for JsonArraySink<'_, W> {
    async fn record(&mut self, record: &Value) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| Error::invalid("record", format!("not serialisable: {e}")))?;
        if self.records > 0 {
            self.out.write_all(b",\n").await?;
        }
        self.out.write_all(&bytes).await?;
        self.records += 1;
        Ok(())
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::invalid("export", e.to_string()))
}

impl DataSubjectRegistry {
    /// No sources.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a source.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if its name is malformed or taken.
    pub fn register(&mut self, source: impl PersonalDataSource + 'static) -> Result<&mut Self> {
        let name = &source.descriptor().name;
        if !super::is_short_name(name) {
            return Err(Error::invalid(
                "source name",
                "1 to 64 of a-z, 0-9, '.', '_' and '-'",
            ));
        }
        if self.sources.iter().any(|s| &s.descriptor().name == name) {
            return Err(Error::invalid(
                "source name",
                format!("{name} is registered already"),
            ));
        }
        self.sources.push(Box::new(source));
        Ok(self)
    }

    /// Every source's descriptor, in registration order.
    pub fn descriptors(&self) -> impl Iterator<Item = &SourceDescriptor> {
        self.sources.iter().map(|s| s.descriptor())
    }

    /// Streams the subject's export document to `out` and returns its manifest.
    ///
    /// # Errors
    ///
    /// The sources' errors and [`Error::Io`]; `out` then holds an incomplete document
    /// (no manifest), which a reader recognises as such.
    pub async fn export<W: AsyncWrite + Unpin + Send>(
        &self,
        subject: &SubjectId,
        out: W,
        policies: &RetentionPolicies,
        auditor: &dyn Auditor,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<ExportManifest> {
        let mut out = BufWriter::with_capacity(64 * 1024, out);
        out.write_all(b"{\"format\":").await?;
        out.write_all(&json(EXPORT_FORMAT)?).await?;
        out.write_all(b",\"subject\":").await?;
        out.write_all(&json(subject.as_str())?).await?;
        out.write_all(b",\"generated_at\":").await?;
        out.write_all(&json(&rfc3339(now))?).await?;
        out.write_all(b",\"sources\":{").await?;
        let mut entries = Vec::with_capacity(self.sources.len());
        for (i, source) in self.sources.iter().enumerate() {
            let descriptor = source.descriptor();
            if i > 0 {
                out.write_all(b",").await?;
            }
            out.write_all(b"\n").await?;
            out.write_all(&json(&descriptor.name)?).await?;
            out.write_all(b":[").await?;
            let started_at = OffsetDateTime::now_utc().max(now);
            let mut sink = JsonArraySink {
                out: &mut out,
                records: 0,
            };
            source.export(subject, &mut sink).await?;
            let records = sink.records;
            out.write_all(b"]").await?;
            entries.push(ManifestEntry {
                source: descriptor.clone(),
                retention: policies.get(&descriptor.class).map(|p| p.to_string()),
                records,
                started_at,
                finished_at: OffsetDateTime::now_utc().max(started_at),
            });
        }
        let manifest = ExportManifest {
            finished_at: OffsetDateTime::now_utc().max(now),
            sources: entries,
        };
        out.write_all(b"},\n\"manifest\":").await?;
        out.write_all(&json(&manifest)?).await?;
        out.write_all(b"}\n").await?;
        out.flush().await?;
        let event = audit_event(
            "gdpr.export",
            Outcome::Success,
            actor,
            ("subject", subject.as_str()),
            now,
        )?
        .with_detail(
            "records",
            i64::try_from(manifest.records()).unwrap_or(i64::MAX),
        )
        .and_then(|e| {
            e.with_detail(
                "sources",
                i64::try_from(manifest.sources.len()).unwrap_or(i64::MAX),
            )
        })
        .map_err(|e| Error::Audit(e.to_string()))?;
        auditor.audit(&event).await?;
        Ok(manifest)
    }

    /// What an erasure of `subject` would do now, without doing it: the same report, with
    /// the key not shredded.
    ///
    /// # Errors
    ///
    /// The sources' and the hold store's errors.
    pub async fn plan_erasure(
        &self,
        subject: &SubjectId,
        ctx: &ErasureContext<'_>,
    ) -> Result<ErasureReport> {
        self.erasure(subject, ctx, false).await
    }

    /// Erases `subject` across every source; see the [module docs](self).
    ///
    /// # Errors
    ///
    /// The sources', key store's, hold store's and auditor's errors: what was done stays
    /// done, and running it again completes it.
    pub async fn erase(
        &self,
        subject: &SubjectId,
        ctx: &ErasureContext<'_>,
    ) -> Result<ErasureReport> {
        self.erasure(subject, ctx, true).await
    }

    async fn erasure(
        &self,
        subject: &SubjectId,
        ctx: &ErasureContext<'_>,
        apply: bool,
    ) -> Result<ErasureReport> {
        let holds = ctx.holds.active().await?;
        let pseudonym = ctx.pseudonymizer.pseudonym(subject);
        let audit = |action: &str, outcome: Outcome| {
            audit_event(
                action,
                outcome,
                ctx.actor,
                ("subject", subject.as_str()),
                ctx.now,
            )
        };
        if apply {
            ctx.auditor
                .audit(&audit("gdpr.erasure.start", Outcome::Success)?)
                .await?;
        }
        let mut report = ErasureReport {
            subject: subject.clone(),
            pseudonym: pseudonym.clone(),
            sources: Vec::with_capacity(self.sources.len()),
            key_shredded: false,
            key_note: None,
            holds: Vec::new(),
            finished_at: ctx.now,
        };
        for source in &self.sources {
            let d = source.descriptor();
            let keeping: Vec<&LegalHold> = covering(&holds, Some(subject), &d.class).collect();
            let entry = if keeping.is_empty() {
                self.erase_source(source.as_ref(), subject, &pseudonym, ctx, apply)
                    .await?
            } else {
                for h in &keeping {
                    if !report.holds.contains(&h.id) {
                        report.holds.push(h.id);
                    }
                }
                ErasureEntry {
                    source: d.name.clone(),
                    class: d.class.clone(),
                    action: ErasureAction::Kept,
                    records: source.count(subject).await?,
                    reason: format!(
                        "Art. 17(3)(e): {}",
                        keeping
                            .iter()
                            .map(|h| h.explain())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    kept_until: None,
                }
            };
            if apply {
                let event = audit("gdpr.erasure.source", Outcome::Success)?
                    .with_detail("source", entry.source.as_str())
                    .and_then(|e| {
                        e.with_detail(
                            "action",
                            match entry.action {
                                ErasureAction::Deleted => "deleted",
                                ErasureAction::Pseudonymised => "pseudonymised",
                                ErasureAction::Kept => "kept",
                            },
                        )
                    })
                    .and_then(|e| {
                        e.with_detail("records", i64::try_from(entry.records).unwrap_or(i64::MAX))
                    })
                    .map_err(|e| Error::Audit(e.to_string()))?;
                ctx.auditor.audit(&event).await?;
            }
            report.sources.push(entry);
        }
        if report.holds.is_empty() {
            if apply {
                ctx.keys.shred(subject, ctx.now).await?;
                report.key_shredded = true;
            } else {
                report.key_note = Some("the key would be shredded".to_owned());
            }
        } else {
            report.key_note = Some(
                "not shredded: records under a legal hold must stay readable; erase again \
                 once the hold is released"
                    .to_owned(),
            );
        }
        if apply {
            let outcome = if report.is_partial() {
                Outcome::Denied
            } else {
                Outcome::Success
            };
            let event = audit("gdpr.erasure.finish", outcome)?
                .with_detail("key_shredded", report.key_shredded)
                .and_then(|e| e.with_detail("pseudonym", report.pseudonym.as_str()))
                .map_err(|e| Error::Audit(e.to_string()))?;
            ctx.auditor.audit(&event).await?;
        }
        Ok(report)
    }

    async fn erase_source(
        &self,
        source: &dyn PersonalDataSource,
        subject: &SubjectId,
        pseudonym: &Pseudonym,
        ctx: &ErasureContext<'_>,
        apply: bool,
    ) -> Result<ErasureEntry> {
        let d = source.descriptor();
        let (mode, action) = match &d.on_erasure {
            ErasureRule::Delete => (ErasureMode::Delete, ErasureAction::Deleted),
            ErasureRule::Pseudonymise { .. } => (
                ErasureMode::Pseudonymise(pseudonym),
                ErasureAction::Pseudonymised,
            ),
        };
        let erased = if apply {
            source.erase(subject, mode).await?
        } else {
            Erased {
                records: source.count(subject).await?,
                newest: None,
            }
        };
        let (reason, kept_until) = match &d.on_erasure {
            ErasureRule::Delete => (
                format!(
                    "Art. 17(1): no ground to keep it (held under {}, {})",
                    d.lawful_basis.article(),
                    d.lawful_basis.as_str()
                ),
                None,
            ),
            ErasureRule::Pseudonymise { obligation } => {
                let period = ctx.policies.get(&d.class);
                let until = period.zip(erased.newest).map(|(p, t)| p.keep_until(t));
                (
                    format!(
                        "Art. 17(3)(b): {obligation}; kept {} pseudonymised",
                        period.map_or_else(|| "as the law requires".to_owned(), |p| p.to_string())
                    ),
                    until,
                )
            }
        };
        Ok(ErasureEntry {
            source: d.name.clone(),
            class: d.class.clone(),
            action,
            records: erased.records,
            reason,
            kept_until,
        })
    }

    /// Passes `changes` to every source that supports rectification.
    ///
    /// # Errors
    ///
    /// A source's refusal of a value ([`Error::Invalid`]) or its store's error; sources
    /// before it have applied their part.
    pub async fn rectify(
        &self,
        subject: &SubjectId,
        changes: &BTreeMap<String, Value>,
        auditor: &dyn Auditor,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Rectification> {
        let mut out = Rectification::default();
        for source in &self.sources {
            match source.rectify(subject, changes).await {
                Ok(fields) if fields.is_empty() => {}
                Ok(fields) => {
                    out.changed.insert(source.descriptor().name.clone(), fields);
                }
                Err(Error::Unsupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        out.unhandled = changes
            .keys()
            .filter(|k| !out.changed.values().any(|f| f.contains(k)))
            .cloned()
            .collect();
        let fields: Vec<finsec_audit::event::Detail> = out
            .changed
            .iter()
            .flat_map(|(s, fs)| fs.iter().map(move |f| format!("{s}.{f}").into()))
            .collect();
        let event = audit_event(
            "gdpr.rectify",
            Outcome::Success,
            actor,
            ("subject", subject.as_str()),
            now,
        )?
        .with_detail("fields", finsec_audit::event::Detail::List(fields))
        .map_err(|e| Error::Audit(e.to_string()))?;
        auditor.audit(&event).await?;
        Ok(out)
    }

    /// Restricts (or lifts the restriction of) processing across every source that
    /// supports it; returns per source how many records it covers.
    ///
    /// # Errors
    ///
    /// A source's error; sources before it have applied their part.
    pub async fn restrict(
        &self,
        subject: &SubjectId,
        restricted: bool,
        auditor: &dyn Auditor,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<BTreeMap<String, u64>> {
        let mut out = BTreeMap::new();
        for source in &self.sources {
            match source.restrict(subject, restricted).await {
                Ok(n) => {
                    out.insert(source.descriptor().name.clone(), n);
                }
                Err(Error::Unsupported { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let event = audit_event(
            "gdpr.restrict",
            Outcome::Success,
            actor,
            ("subject", subject.as_str()),
            now,
        )?
        .with_detail("restricted", restricted)
        .and_then(|e| e.with_detail("sources", i64::try_from(out.len()).unwrap_or(i64::MAX)))
        .map_err(|e| Error::Audit(e.to_string()))?;
        auditor.audit(&event).await?;
        Ok(out)
    }
}
