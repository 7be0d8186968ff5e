//! Retention: how long each class of records is kept, and the runs that delete what is
//! older.
//!
//! [`RetentionPolicies`] map a [`RecordClass`] to a [`RetentionPeriod`]; the defaults are
//! trades and orders 7 years (MiFID II Art. 16(6), MiFIR Art. 25), application logs 90 days,
//! temporary data 24 hours, and a TOML table overrides or adds classes:
//!
//! ```toml
//! trades = "7y"
//! orders = "7y"
//! logs = "90d"
//! temp = "24h"
//! sessions = "30d"
//! ```
//!
//! A [`RetentionRun`] works through one [`RetentionSource`] (the application's records of one
//! class) in batches:
//!
//! 1. it asks the source for the next records created before the cut-off (now minus the
//!    period), in key order after the run's cursor;
//! 2. records an active [`super::hold::LegalHold`] covers are skipped and
//!    counted;
//! 3. the rest go to the [`Archive`] first, and only once the archive has them are they
//!    deleted from the source;
//! 4. every deletion is audited (the keys of each batch, through the [`Auditor`]);
//! 5. the run's state (cursor and counts) is saved in a [`RetentionStateStore`].
//!
//! After a crash, [`RetentionRun::run`] for the same class resumes the unfinished run from
//! its cursor with its original cut-off. A batch archived but not deleted before the crash
//! is read again and archived again under the same [`ArchiveBatch::first_key`], so the
//! archive replaces it with the same records; a batch deleted but not yet checkpointed is
//! simply gone from the source and the run goes on after it. Nothing is deleted that was
//! not archived first. [`RetentionRun::dry_run`] lists what a run would delete and what it
//! would keep, and why, and changes nothing.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use async_trait::async_trait;
use finsec_audit::Outcome;
use finsec_audit::event::Detail;
use finsec_crypto::SubjectId;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::hold::{HoldStore, LegalHold, covering};
use super::{Auditor, RecordClass, audit_event};
use crate::error::{Error, Result};

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlRetentionStateStore;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// How long records are kept: whole years (calendar), days or hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetentionPeriod {
    /// Calendar years: a record of 29 February is kept until 28 February.
    Years(u16),
    /// Days of 24 hours.
    Days(u32),
    /// Hours.
    Hours(u32),
}

impl RetentionPeriod {
    /// The instant `period` before `now`: records created before it have expired.
    #[must_use]
    pub fn cutoff(self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Years(y) => shift_years(now, -i32::from(y)),
            Self::Days(d) => now.saturating_sub(Duration::days(i64::from(d))),
            Self::Hours(h) => now.saturating_sub(Duration::hours(i64::from(h))),
        }
    }

    /// When a record created at `created` expires.
    #[must_use]
    pub fn keep_until(self, created: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::Years(y) => shift_years(created, i32::from(y)),
            Self::Days(d) => created.saturating_add(Duration::days(i64::from(d))),
            Self::Hours(h) => created.saturating_add(Duration::hours(i64::from(h))),
        }
    }
}

fn shift_years(t: OffsetDateTime, years: i32) -> OffsetDateTime {
    let year = t.year().saturating_add(years);
    t.replace_year(year)
        .or_else(|_| {
            // 29 February in a year without one.
            t.replace_day(28).and_then(|t| t.replace_year(year))
        })
        .unwrap_or(if years < 0 {
            OffsetDateTime::UNIX_EPOCH
        } else {
            t
        })
}

impl fmt::Display for RetentionPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Years(n) => write!(f, "{n}y"),
            Self::Days(n) => write!(f, "{n}d"),
            Self::Hours(n) => write!(f, "{n}h"),
        }
    }
}

impl FromStr for RetentionPeriod {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "retention period",
                format!(
                    "{s:?} is not a whole number followed by y, d or h (\"7y\", \"90d\", \"24h\")"
                ),
            )
        };
        let unit = s.chars().last().ok_or_else(bad)?;
        let number = &s[..s.len() - unit.len_utf8()];
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let period = match unit {
            'y' => Self::Years(number.parse().map_err(|_| bad())?),
            'd' => Self::Days(number.parse().map_err(|_| bad())?),
            'h' => Self::Hours(number.parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        let zero = matches!(period, Self::Years(0) | Self::Days(0) | Self::Hours(0));
        let too_long = matches!(period, Self::Years(y) if y > 200)
            || matches!(period, Self::Days(d) if d > 73_000)
            || matches!(period, Self::Hours(h) if h > 1_752_000);
        if zero || too_long {
            return Err(Error::invalid(
                "retention period",
                format!("{s:?}: between 1 hour and 200 years"),
            ));
        }
        Ok(period)
    }
}

impl Serialize for RetentionPeriod {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RetentionPeriod {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The retention period of each record class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RetentionPolicies {
    periods: BTreeMap<RecordClass, RetentionPeriod>,
}

impl Default for RetentionPolicies {
    /// Trades and orders 7 years, logs 90 days, temp 24 hours.
    fn default() -> Self {
        let mut periods = BTreeMap::new();
        for (class, period) in [
            ("trades", RetentionPeriod::Years(7)),
            ("orders", RetentionPeriod::Years(7)),
            ("logs", RetentionPeriod::Days(90)),
            ("temp", RetentionPeriod::Hours(24)),
        ] {
            periods.insert(RecordClass(class.to_owned()), period);
        }
        Self { periods }
    }
}

impl RetentionPolicies {
    /// No classes at all.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            periods: BTreeMap::new(),
        }
    }

    /// The defaults with the classes of a TOML table (`class = "period"`) set over them.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] naming the line's problem: not TOML, a bad class name or a bad
    /// period.
    pub fn from_toml(text: &str) -> Result<Self> {
        let table: BTreeMap<String, String> = toml::from_str(text)
            .map_err(|e| Error::invalid("retention policies", e.message().to_owned()))?;
        let mut policies = Self::default();
        for (class, period) in table {
            policies.set(RecordClass::new(class)?, period.parse()?);
        }
        Ok(policies)
    }

    /// Sets the period of `class`.
    pub fn set(&mut self, class: RecordClass, period: RetentionPeriod) -> &mut Self {
        self.periods.insert(class, period);
        self
    }

    /// The period of `class`, if it has one.
    #[must_use]
    pub fn get(&self, class: &RecordClass) -> Option<RetentionPeriod> {
        self.periods.get(class).copied()
    }

    /// The period of `class`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if the class has no policy.
    pub fn period(&self, class: &RecordClass) -> Result<RetentionPeriod> {
        self.get(class).ok_or_else(|| {
            Error::invalid("record class", format!("{class} has no retention policy"))
        })
    }

    /// Every class and its period, by class name.
    pub fn iter(&self) -> impl Iterator<Item = (&RecordClass, RetentionPeriod)> {
        self.periods.iter().map(|(c, p)| (c, *p))
    }
}

/// A record past its retention period, as a source hands it over.
#[derive(Clone, PartialEq, Eq)]
pub struct ExpiredRecord {
    /// The source's key for it: unique within the source, and the order of the run.
    pub key: String,
    /// Whom it is about, if anyone (legal holds on a subject cover it).
    pub subject: Option<SubjectId>,
    /// When it was created: the retention period runs from here.
    pub created: OffsetDateTime,
    /// The record as the archive should keep it (the source's serialisation).
    pub content: Vec<u8>,
}

impl fmt::Debug for ExpiredRecord {
    /// Shows the key, subject and time; never the content.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpiredRecord")
            .field("key", &self.key)
            .field("subject", &self.subject)
            .field("created", &self.created)
            .field("content_len", &self.content.len())
            .finish()
    }
}

/// The application's records of one class, as a retention run sees them.
#[async_trait]
pub trait RetentionSource: Send + Sync {
    /// The class its records belong to.
    fn class(&self) -> &RecordClass;

    /// Up to `limit` records created before `cutoff` whose key is after `after` (all
    /// when `None`), in key order.
    async fn expired(
        &self,
        cutoff: OffsetDateTime,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>>;

    /// Deletes the records with these keys; returns how many were there.
    async fn delete(&self, keys: &[String]) -> Result<u64>;
}

/// One batch for the archive.
#[derive(Debug)]
pub struct ArchiveBatch<'a> {
    /// The run.
    pub run: Uuid,
    /// The records' class.
    pub class: &'a RecordClass,
    /// The batch's number in the run (from 1); after a resume, numbers go on.
    pub batch: u64,
    /// The key of the batch's first record: with `run`, what identifies the batch. The
    /// same run and first key always carry the same records.
    pub first_key: &'a str,
    /// The records.
    pub records: &'a [ExpiredRecord],
}

/// Where expired records go before they are deleted.
#[async_trait]
pub trait Archive: Send + Sync {
    /// Keeps the batch durably; only after `Ok` are its records deleted. A batch with a
    /// run and first key already archived (a repeat after a crash) replaces it.
    ///
    /// # Errors
    ///
    /// [`Error::Archive`] or [`Error::Io`]: the batch is not deleted and the run stops.
    async fn store(&self, batch: &ArchiveBatch<'_>) -> Result<()>;
}

/// The state of a run, as saved after each batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The run.
    pub id: Uuid,
    /// The class.
    pub class: RecordClass,
    /// Records created before this expire (fixed when the run began).
    pub cutoff: OffsetDateTime,
    /// When it began.
    pub started_at: OffsetDateTime,
    /// The key of the last record handled.
    pub cursor: Option<String>,
    /// Batches done.
    pub batches: u64,
    /// Records archived.
    pub archived: u64,
    /// Records deleted.
    pub deleted: u64,
    /// Records kept because a legal hold covers them.
    pub held: u64,
    /// When it finished.
    pub finished_at: Option<OffsetDateTime>,
}

/// What one batch added to a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchCounts {
    /// Records archived.
    pub archived: u64,
    /// Records deleted.
    pub deleted: u64,
    /// Records kept under a legal hold.
    pub held: u64,
}

/// Where run states are kept. One behavioural suite (`testing` feature) runs against
/// every implementation.
#[async_trait]
pub trait RetentionStateStore: Send + Sync + fmt::Debug {
    /// The unfinished run of `class` if there is one (to resume), else a new run with
    /// `cutoff` begun at `at`. At most one run per class is unfinished.
    async fn begin(
        &self,
        class: &RecordClass,
        cutoff: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<RunState>;

    /// Records a batch: the cursor moves to `cursor` and the counts grow, provided the run
    /// has done exactly `batches` batches (compare-and-set: two runners of one run cannot
    /// both advance it).
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::State`] if the run finished or moved on.
    async fn advance(
        &self,
        id: Uuid,
        batches: u64,
        cursor: &str,
        counts: BatchCounts,
    ) -> Result<RunState>;

    /// Marks the run finished.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`]; [`Error::State`] if it finished already.
    async fn finish(&self, id: Uuid, at: OffsetDateTime) -> Result<RunState>;

    /// Run `id`.
    async fn get(&self, id: Uuid) -> Result<Option<RunState>>;

    /// The latest `limit` runs of `class`, newest first.
    async fn recent(&self, class: &RecordClass, limit: u32) -> Result<Vec<RunState>>;
}

/// Run states in memory.
#[derive(Debug, Default)]
pub struct MemoryRetentionStateStore {
    runs: Mutex<Vec<RunState>>,
}

impl MemoryRetentionStateStore {
    /// No runs.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RunState>> {
        self.runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The error an advance gets, if any.
pub(crate) fn refuse_advance(run: &RunState, batches: u64) -> Result<()> {
    if run.finished_at.is_some() {
        return Err(Error::State(format!(
            "retention run {} is finished",
            run.id
        )));
    }
    if run.batches != batches {
        return Err(Error::State(format!(
            "retention run {} is at batch {}, not {batches}: another runner moved it",
            run.id, run.batches
        )));
    }
    Ok(())
}

#[async_trait]
impl RetentionStateStore for MemoryRetentionStateStore {
    async fn begin(
        &self,
        class: &RecordClass,
        cutoff: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Result<RunState> {
        let mut runs = self.lock();
        if let Some(open) = runs
            .iter()
            .find(|r| &r.class == class && r.finished_at.is_none())
        {
            return Ok(open.clone());
        }
        let run = RunState {
            id: Uuid::now_v7(),
            class: class.clone(),
            cutoff: super::whole_micros(cutoff),
            started_at: super::whole_micros(at),
            cursor: None,
            batches: 0,
            archived: 0,
            deleted: 0,
            held: 0,
            finished_at: None,
        };
        runs.push(run.clone());
        Ok(run)
    }

    async fn advance(
        &self,
        id: Uuid,
        batches: u64,
        cursor: &str,
        counts: BatchCounts,
    ) -> Result<RunState> {
        let mut runs = self.lock();
        let run = runs
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::not_found("retention run", id))?;
        refuse_advance(run, batches)?;
        run.batches += 1;
        run.cursor = Some(cursor.to_owned());
        run.archived += counts.archived;
        run.deleted += counts.deleted;
        run.held += counts.held;
        Ok(run.clone())
    }

    async fn finish(&self, id: Uuid, at: OffsetDateTime) -> Result<RunState> {
        let mut runs = self.lock();
        let run = runs
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| Error::not_found("retention run", id))?;
        if run.finished_at.is_some() {
            return Err(Error::State(format!("retention run {id} is finished")));
        }
        run.finished_at = Some(super::whole_micros(at));
        Ok(run.clone())
    }

    async fn get(&self, id: Uuid) -> Result<Option<RunState>> {
        Ok(self.lock().iter().find(|r| r.id == id).cloned())
    }

    async fn recent(&self, class: &RecordClass, limit: u32) -> Result<Vec<RunState>> {
        Ok(self
            .lock()
            .iter()
            .rev()
            .filter(|r| &r.class == class)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }
}

/// One record a dry run lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The source's key.
    pub key: String,
    /// When it was created.
    pub created: OffsetDateTime,
    /// When its retention period ended.
    pub expired_at: OffsetDateTime,
    /// Why it would go, or why it stays (the holds that keep it).
    pub reason: String,
}

/// What a run would do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DryRun {
    /// The class.
    pub class: RecordClass,
    /// Its period.
    pub period: String,
    /// Records created before this would go.
    pub cutoff: OffsetDateTime,
    /// How many records would be deleted.
    pub would_delete: u64,
    /// How many expired records legal holds keep.
    pub held: u64,
    /// The first records that would be deleted (up to the listing limit).
    pub deleted: Vec<Candidate>,
    /// The first records holds keep (up to the listing limit), with the holds.
    pub kept: Vec<Candidate>,
}

/// A retention run's collaborators. Build it once; call [`dry_run`](Self::dry_run) and
/// [`run`](Self::run) per source.
pub struct RetentionRun<'a> {
    policies: &'a RetentionPolicies,
    holds: &'a dyn HoldStore,
    state: &'a dyn RetentionStateStore,
    archive: &'a dyn Archive,
    auditor: &'a dyn Auditor,
    batch: u32,
    actor: String,
}

impl fmt::Debug for RetentionRun<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetentionRun")
            .field("batch", &self.batch)
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

/// Largest total key length per audit event of a batch's deletions (the rest goes in
/// further events), well under finsec-audit's 64 KiB event limit.
const AUDIT_KEYS_BYTES: usize = 32 * 1024;

impl<'a> RetentionRun<'a> {
    /// A run with batches of 1,000 records, audited as `system`.
    #[must_use]
    pub fn new(
        policies: &'a RetentionPolicies,
        holds: &'a dyn HoldStore,
        state: &'a dyn RetentionStateStore,
        archive: &'a dyn Archive,
        auditor: &'a dyn Auditor,
    ) -> Self {
        Self {
            policies,
            holds,
            state,
            archive,
            auditor,
            batch: 1000,
            actor: "system".to_owned(),
        }
    }

    /// Records per batch (at least 1).
    #[must_use]
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Who the audit events name as the actor (a user id, or `system`).
    #[must_use]
    pub fn with_actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = actor.into();
        self
    }

    /// What a run over `source` at `now` would delete and keep, listing up to `list`
    /// records of each. Changes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if the class has no policy; the source's and stores' errors.
    pub async fn dry_run(
        &self,
        source: &dyn RetentionSource,
        now: OffsetDateTime,
        list: usize,
    ) -> Result<DryRun> {
        let class = source.class();
        let period = self.policies.period(class)?;
        let cutoff = period.cutoff(now);
        let holds = self.holds.active().await?;
        let mut out = DryRun {
            class: class.clone(),
            period: period.to_string(),
            cutoff,
            would_delete: 0,
            held: 0,
            deleted: Vec::new(),
            kept: Vec::new(),
        };
        let mut after: Option<String> = None;
        loop {
            let page = source.expired(cutoff, after.as_deref(), self.batch).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.key.clone());
            for record in &page {
                let expired_at = period.keep_until(record.created);
                let keeping: Vec<&LegalHold> =
                    covering(&holds, record.subject.as_ref(), class).collect();
                if keeping.is_empty() {
                    out.would_delete += 1;
                    if out.deleted.len() < list {
                        out.deleted.push(Candidate {
                            key: record.key.clone(),
                            created: record.created,
                            expired_at,
                            reason: format!(
                                "{class} are kept {period}; this one expired on {}",
                                expired_at.date()
                            ),
                        });
                    }
                } else {
                    out.held += 1;
                    if out.kept.len() < list {
                        out.kept.push(Candidate {
                            key: record.key.clone(),
                            created: record.created,
                            expired_at,
                            reason: keeping
                                .iter()
                                .map(|h| h.explain())
                                .collect::<Vec<_>>()
                                .join("; "),
                        });
                    }
                }
            }
        }
        Ok(out)
    }

    /// Runs retention over `source` at `now`, resuming the class's unfinished run if there
    /// is one, and returns the finished run's state.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] if the class has no policy; the source's, archive's, auditor's
    /// and stores' errors: the run stops where it was and resumes from there next time.
    pub async fn run(&self, source: &dyn RetentionSource, now: OffsetDateTime) -> Result<RunState> {
        let class = source.class();
        let period = self.policies.period(class)?;
        let mut state = self.state.begin(class, period.cutoff(now), now).await?;
        let run_id = state.id.to_string();
        let started = audit_event(
            "gdpr.retention.run",
            Outcome::Success,
            &self.actor,
            ("retention_run", &run_id),
            now,
        )?
        .with_detail("class", class.as_str())
        .and_then(|e| e.with_detail("period", period.to_string()))
        .and_then(|e| {
            e.with_detail(
                "resumed_at_batch",
                i64::try_from(state.batches).unwrap_or(i64::MAX),
            )
        })
        .map_err(|e| Error::Audit(e.to_string()))?;
        self.auditor.audit(&started).await?;
        loop {
            let page = source
                .expired(state.cutoff, state.cursor.as_deref(), self.batch)
                .await?;
            let (Some(first), Some(last)) = (page.first(), page.last()) else {
                break;
            };
            let holds = self.holds.active().await?;
            let (held, doomed): (Vec<&ExpiredRecord>, Vec<&ExpiredRecord>) = page
                .iter()
                .partition(|r| covering(&holds, r.subject.as_ref(), class).next().is_some());
            let doomed: Vec<ExpiredRecord> = doomed.into_iter().cloned().collect();
            let mut counts = BatchCounts {
                held: super::count(held.len()),
                ..BatchCounts::default()
            };
            if !doomed.is_empty() {
                self.archive
                    .store(&ArchiveBatch {
                        run: state.id,
                        class,
                        batch: state.batches + 1,
                        first_key: &first.key,
                        records: &doomed,
                    })
                    .await?;
                counts.archived = super::count(doomed.len());
                let keys: Vec<String> = doomed.iter().map(|r| r.key.clone()).collect();
                counts.deleted = source.delete(&keys).await?;
                self.audit_deletions(&state, class, &keys, now).await?;
            }
            state = self
                .state
                .advance(state.id, state.batches, &last.key, counts)
                .await?;
        }
        let state = self.state.finish(state.id, now).await?;
        let done = audit_event(
            "gdpr.retention.finish",
            Outcome::Success,
            &self.actor,
            ("retention_run", &run_id),
            now,
        )?
        .with_detail("class", class.as_str())
        .and_then(|e| e.with_detail("deleted", i64::try_from(state.deleted).unwrap_or(i64::MAX)))
        .and_then(|e| e.with_detail("held", i64::try_from(state.held).unwrap_or(i64::MAX)))
        .map_err(|e| Error::Audit(e.to_string()))?;
        self.auditor.audit(&done).await?;
        Ok(state)
    }

    /// One `gdpr.retention.delete` event per slice of keys small enough for one event.
    async fn audit_deletions(
        &self,
        state: &RunState,
        class: &RecordClass,
        keys: &[String],
        now: OffsetDateTime,
    ) -> Result<()> {
        let mut chunk: Vec<Detail> = Vec::new();
        let mut bytes = 0;
        for key in keys {
            if !chunk.is_empty() && bytes + key.len() > AUDIT_KEYS_BYTES {
                self.audit_chunk(state, class, std::mem::take(&mut chunk), now)
                    .await?;
                bytes = 0;
            }
            bytes += key.len() + 4;
            chunk.push(Detail::Text(key.clone()));
        }
        if !chunk.is_empty() {
            self.audit_chunk(state, class, chunk, now).await?;
        }
        Ok(())
    }

    async fn audit_chunk(
        &self,
        state: &RunState,
        class: &RecordClass,
        keys: Vec<Detail>,
        now: OffsetDateTime,
    ) -> Result<()> {
        let event = audit_event(
            "gdpr.retention.delete",
            Outcome::Success,
            &self.actor,
            ("retention_run", &state.id.to_string()),
            now,
        )?
        .with_detail("class", class.as_str())
        .and_then(|e| {
            e.with_detail(
                "batch",
                i64::try_from(state.batches + 1).unwrap_or(i64::MAX),
            )
        })
        .and_then(|e| e.with_detail("keys", Detail::List(keys)))
        .map_err(|e| Error::Audit(e.to_string()))?;
        self.auditor.audit(&event).await
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn periods_parse_and_count_in_calendar_years() {
        assert_eq!(
            "7y".parse::<RetentionPeriod>().unwrap(),
            RetentionPeriod::Years(7)
        );
        assert_eq!(
            "90d".parse::<RetentionPeriod>().unwrap(),
            RetentionPeriod::Days(90)
        );
        assert_eq!(
            "24h".parse::<RetentionPeriod>().unwrap(),
            RetentionPeriod::Hours(24)
        );
        for bad in [
            "", "y", "7", "7w", "-1d", "0d", "201y", "7 y", "1.5y", "７y",
        ] {
            assert!(bad.parse::<RetentionPeriod>().is_err(), "{bad:?}");
        }
        let leap = datetime!(2028-02-29 10:00 UTC);
        assert_eq!(
            RetentionPeriod::Years(7).keep_until(leap),
            datetime!(2035-02-28 10:00 UTC)
        );
        assert_eq!(
            RetentionPeriod::Years(7).cutoff(datetime!(2033-12-07 12:00 UTC)),
            datetime!(2026-12-07 12:00 UTC)
        );
        assert_eq!(
            RetentionPeriod::Hours(24).cutoff(leap),
            datetime!(2028-02-28 10:00 UTC)
        );
    }

    #[test]
    fn policies_default_and_toml() {
        let defaults = RetentionPolicies::default();
        let get = |p: &RetentionPolicies, c: &str| p.get(&RecordClass::new(c).unwrap());
        assert_eq!(get(&defaults, "trades"), Some(RetentionPeriod::Years(7)));
        assert_eq!(get(&defaults, "orders"), Some(RetentionPeriod::Years(7)));
        assert_eq!(get(&defaults, "logs"), Some(RetentionPeriod::Days(90)));
        assert_eq!(get(&defaults, "temp"), Some(RetentionPeriod::Hours(24)));
        let custom = RetentionPolicies::from_toml("logs = \"30d\"\nsessions = \"400d\"\n").unwrap();
        assert_eq!(get(&custom, "logs"), Some(RetentionPeriod::Days(30)));
        assert_eq!(get(&custom, "sessions"), Some(RetentionPeriod::Days(400)));
        assert_eq!(get(&custom, "trades"), Some(RetentionPeriod::Years(7)));
        for bad in [
            "logs = 30",
            "logs = \"30 days\"",
            "Logs = \"30d\"",
            "logs =",
        ] {
            assert!(
                matches!(
                    RetentionPolicies::from_toml(bad),
                    Err(Error::Invalid { .. })
                ),
                "{bad:?}"
            );
        }
        let json = serde_json::to_string(&custom).unwrap();
        assert!(json.contains("\"sessions\":\"400d\""), "{json}");
    }
}
