//! Where reports are kept: [`TransactionReportStore`], in memory ([`MemoryReportStore`])
//! and in SQL (`SqlReportStore`, features `sqlite` and `postgres`).
//!
//! Records are never changed in place. A report is submitted once per transaction
//! reference (submitting the same content again is answered with the record already
//! kept); a cancellation and an amendment (a cancellation, then the new content, in one
//! step) are new records of the same reference with the next version. A reference is
//! *live* while its latest record is a new report. Deleting is refused for anything still
//! inside the [`RecordKeeping`] period.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use finsec_validate::identifiers::Isin;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::clock::TradingTime;
use super::report::{
    Lineage, PersonId, Price, Quantity, Report, ReportStatus, TransactionReference,
    TransactionReport,
};
use crate::error::{Error, Result};
use crate::gdpr::Pseudonym;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use sql::SqlReportStore;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// One kept record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReport {
    /// The store's sequence number: increasing in the order records were kept.
    pub seq: i64,
    /// The record's version within its transaction reference, from 1.
    pub version: i64,
    /// The record.
    pub report: Report,
    /// Where it came from.
    pub lineage: Lineage,
    /// When it was kept.
    pub recorded_at: OffsetDateTime,
    /// The trading time of the transaction (a cancellation's is the cancelled report's).
    pub trading_time: TradingTime,
    /// The instrument (a cancellation's is the cancelled report's).
    pub instrument: Isin,
}

/// What [`TransactionReportStore::submit`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// The report is new and was kept.
    Created(StoredReport),
    /// The same content is already the live report of the reference: nothing was added.
    Existing(StoredReport),
}

impl Submitted {
    /// The live record either way.
    #[must_use]
    pub fn record(&self) -> &StoredReport {
        match self {
            Self::Created(r) | Self::Existing(r) => r,
        }
    }
}

/// A query on kept records; every given condition must hold. The period is on the
/// trading time, `from` included and `to` excluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportFilter {
    /// Trading time at or after.
    pub from: Option<OffsetDateTime>,
    /// Trading time before.
    pub to: Option<OffsetDateTime>,
    /// Only this status.
    pub status: Option<ReportStatus>,
    /// Only this instrument.
    pub instrument: Option<Isin>,
}

impl ReportFilter {
    /// Whether `r` matches.
    #[must_use]
    pub fn matches(&self, r: &StoredReport) -> bool {
        let t = r.trading_time.at();
        self.from.is_none_or(|f| t >= f)
            && self.to.is_none_or(|to| t < to)
            && self.status.is_none_or(|s| r.report.status() == s)
            && self.instrument.is_none_or(|i| r.instrument == i)
    }
}

/// Totals of one currency in a [`PeriodSummary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotals {
    /// Live reports.
    pub count: u64,
    /// The sum of their quantities.
    pub volume: Decimal,
    /// The sum of quantity × price (for a percentage price, nominal × price / 100).
    pub value: Decimal,
}

/// The live reports of a period, totalled per currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodSummary {
    /// Live reports in the period.
    pub count: u64,
    /// Totals per price currency (ISO 4217 code).
    pub by_currency: BTreeMap<String, CurrencyTotals>,
    /// Live reports without a monetary value (price pending or not applicable, yields,
    /// basis points).
    pub unvalued: u64,
}

impl PeriodSummary {
    /// Adds a live report.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] when a total would overflow `Decimal`.
    pub fn add(&mut self, r: &TransactionReport) -> Result<()> {
        self.count += 1;
        let q = r.quantity.value();
        let valued = match (&r.quantity, &r.price) {
            (Quantity::Units(_), Price::Monetary { value, currency }) => {
                Some((currency.code(), q.checked_mul(*value)))
            }
            (
                Quantity::Nominal { currency, .. } | Quantity::Monetary { currency, .. },
                Price::Percentage(p),
            ) => Some((
                currency.code(),
                q.checked_mul(*p)
                    .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED)),
            )),
            (
                Quantity::Nominal { currency, .. } | Quantity::Monetary { currency, .. },
                Price::Monetary { value, .. },
            ) => Some((currency.code(), q.checked_mul(*value))),
            _ => None,
        };
        let Some((code, value)) = valued else {
            self.unvalued += 1;
            return Ok(());
        };
        let overflow = || Error::invalid("summary", "a total overflows");
        let value = value.ok_or_else(overflow)?;
        let t = self.by_currency.entry(code.to_owned()).or_default();
        t.count += 1;
        t.volume = t.volume.checked_add(q).ok_or_else(overflow)?;
        t.value = t.value.checked_add(value).ok_or_else(overflow)?;
        Ok(())
    }
}

/// How long records are kept: MiFIR Art. 25(1) asks five years, MiFID II Art. 16(6) and
/// Delegated Regulation 2017/565 Art. 72–76 let the authority ask up to seven; the
/// default is seven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RecordKeeping {
    years: u8,
}

impl Default for RecordKeeping {
    fn default() -> Self {
        Self {
            years: Self::DEFAULT_YEARS,
        }
    }
}

impl RecordKeeping {
    /// The default period, in years.
    pub const DEFAULT_YEARS: u8 = 7;
    /// The shortest period the law allows, in years.
    pub const MIN_YEARS: u8 = 5;

    /// Keep for `years` (at least [`Self::MIN_YEARS`]).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] below the minimum.
    pub fn years(years: u8) -> Result<Self> {
        if years < Self::MIN_YEARS {
            return Err(Error::invalid(
                "record_keeping",
                format!("records are kept at least {} years", Self::MIN_YEARS),
            ));
        }
        Ok(Self { years })
    }

    /// The period in years.
    #[must_use]
    pub fn period_years(&self) -> u8 {
        self.years
    }

    /// The earliest instant whose records must still be kept at `now`.
    #[must_use]
    pub fn keep_from(&self, now: OffsetDateTime) -> OffsetDateTime {
        let year = now.year() - i32::from(self.years);
        now.replace_year(year)
            // 29 February in a year that has none: the day before.
            .or_else(|_| (now - time::Duration::days(1)).replace_year(year))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Refuses a deletion of everything before `before` at `now` if any of it is still
    /// inside the period.
    ///
    /// # Errors
    ///
    /// [`Error::Retained`].
    pub fn allow_delete_before(&self, before: OffsetDateTime, now: OffsetDateTime) -> Result<()> {
        let keep_from = self.keep_from(now);
        if before > keep_from {
            return Err(Error::Retained {
                years: self.years,
                keep_from: keep_from
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            });
        }
        Ok(())
    }
}

/// Kept transaction reports.
///
/// One behavioural suite (`testing` feature) runs against every implementation.
#[async_trait]
pub trait TransactionReportStore: Send + Sync + fmt::Debug {
    /// Keeps a new report, idempotently: the same content already live under its
    /// reference is answered with [`Submitted::Existing`]; a reference whose latest record
    /// is a cancellation takes the report as its next version.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when other content is live under the reference (cancel or
    /// amend instead); store errors.
    async fn submit(
        &self,
        report: &TransactionReport,
        lineage: &Lineage,
        now: OffsetDateTime,
    ) -> Result<Submitted>;

    /// Keeps a cancellation of the live report of `reference`.
    ///
    /// # Errors
    ///
    /// [`Error::NotLive`] when no report of that reference exists or it is already
    /// cancelled; store errors.
    async fn cancel(
        &self,
        reference: &TransactionReference,
        lineage: &Lineage,
        now: OffsetDateTime,
    ) -> Result<StoredReport>;

    /// Replaces the live report of the report's reference: keeps a cancellation and the
    /// new report together (both or neither). Returns `(cancellation, new report)`.
    ///
    /// # Errors
    ///
    /// [`Error::NotLive`] when the reference has no live report; store errors.
    async fn amend(
        &self,
        report: &TransactionReport,
        lineage: &Lineage,
        now: OffsetDateTime,
    ) -> Result<(StoredReport, StoredReport)>;

    /// Every record of `reference`, oldest first.
    async fn history(&self, reference: &TransactionReference) -> Result<Vec<StoredReport>>;

    /// Up to `limit` records matching `filter` with a sequence number above `after`, in
    /// sequence order (keyset pagination: pass the last `seq` seen).
    async fn query(
        &self,
        filter: &ReportFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredReport>>;

    /// How many records match `filter` (to size a progress bar before a query).
    async fn count(&self, filter: &ReportFilter) -> Result<u64>;

    /// Totals of the reports live now whose trading time is in `[from, to)`.
    async fn summary(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<PeriodSummary>;

    /// Deletes the records traded before `before`, once none of them is inside `keeping`
    /// at `now`. Returns how many were deleted.
    ///
    /// # Errors
    ///
    /// [`Error::Retained`] when `before` is inside the period (nothing is deleted).
    async fn purge_before(
        &self,
        before: OffsetDateTime,
        now: OffsetDateTime,
        keeping: RecordKeeping,
    ) -> Result<u64>;

    /// GDPR erasure of a person whose reports must be kept (MiFIR Art. 25, GDPR
    /// Art. 17(3)(b)): in every record of these `references`, the natural person
    /// identified by `person` is replaced by `pseudonym` wherever they are an account owner
    /// or a decision maker. Returns how many records changed. The one change ever made to a
    /// kept record; running it again changes nothing.
    async fn pseudonymise(
        &self,
        references: &[TransactionReference],
        person: &PersonId,
        pseudonym: &Pseudonym,
    ) -> Result<u64>;
}

/// What to do with a reference given its latest record, shared by every store.
#[derive(Debug)]
pub(crate) enum Decision {
    Insert { version: i64 },
    Existing,
    Conflict,
}

/// The decision for a submit: `latest` is the latest record's (version, report).
pub(crate) fn decide_submit(
    latest: Option<(i64, &Report)>,
    report: &TransactionReport,
) -> Decision {
    match latest {
        None => Decision::Insert { version: 1 },
        Some((v, Report::Cancel(_))) => Decision::Insert { version: v + 1 },
        Some((_, Report::New(live))) if **live == *report => Decision::Existing,
        Some(_) => Decision::Conflict,
    }
}

/// The in-memory store.
#[derive(Debug, Default)]
pub struct MemoryReportStore {
    state: Mutex<MemState>,
}

#[derive(Debug, Default)]
struct MemState {
    records: Vec<StoredReport>,
    by_ref: HashMap<TransactionReference, Vec<usize>>,
    next_seq: i64,
}

impl MemState {
    fn latest(&self, reference: &TransactionReference) -> Option<&StoredReport> {
        self.by_ref
            .get(reference)
            .and_then(|v| v.last())
            .and_then(|i| self.records.get(*i))
    }

    fn push(
        &mut self,
        report: Report,
        version: i64,
        lineage: &Lineage,
        now: OffsetDateTime,
        trading_time: TradingTime,
        instrument: Isin,
    ) -> StoredReport {
        self.next_seq += 1;
        let record = StoredReport {
            seq: self.next_seq,
            version,
            lineage: lineage.clone(),
            recorded_at: now,
            trading_time,
            instrument,
            report,
        };
        self.by_ref
            .entry(record.report.reference().clone())
            .or_default()
            .push(self.records.len());
        self.records.push(record.clone());
        record
    }

    fn cancel_live(
        &mut self,
        reference: &TransactionReference,
        lineage: &Lineage,
        now: OffsetDateTime,
    ) -> Result<StoredReport> {
        let Some(latest) = self.latest(reference) else {
            return Err(Error::NotLive {
                reference: reference.to_string(),
            });
        };
        if latest.report.status() != ReportStatus::New {
            return Err(Error::NotLive {
                reference: reference.to_string(),
            });
        }
        let (version, report, time, instrument) = (
            latest.version + 1,
            Report::Cancel(latest.report.cancellation()),
            latest.trading_time,
            latest.instrument,
        );
        Ok(self.push(report, version, lineage, now, time, instrument))
    }
}

impl MemoryReportStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl TransactionReportStore for MemoryReportStore {
    async fn submit(
        &self,
        report: &TransactionReport,
        lineage: &Lineage,
        now: OffsetDateTime,
    ) -> Result<Submitted> {
        let mut s = self.lock();
        let latest = s.latest(&report.reference);
        match decide_submit(latest.map(|l| (l.version, &l.report)), report) {
            Decision::Existing => {
                Ok(Submitted::Existing(latest.cloned().ok_or_else(|| {
                    Error::Corrupt("the live record vanished".into())
                })?))
            }
            Decision::Conflict => Err(Error::Conflict {
                reference: report.reference.to_string(),
            }),
            Decision::Insert { version } => Ok(Submitted::Created(s.push(
                Report::New(Box::new(report.clone())),
                version,
                lineage,
                now,
                report.trading_time,
                report.instrument,
            ))),
        }
    }

    async fn cancel(
        &self,
        reference: &TransactionReference,
        lineage: &Lineage,
        now: OffsetDateTime,
    ) -> Result<StoredReport> {
        self.lock().cancel_live(reference, lineage, now)
    }

    async fn amend(
        &self,
        report: &TransactionReport,
        lineage: &Lineage,
        now: OffsetDateTime,
    ) -> Result<(StoredReport, StoredReport)> {
        let mut s = self.lock();
        let cancelled = s.cancel_live(&report.reference, lineage, now)?;
        let new = s.push(
            Report::New(Box::new(report.clone())),
            cancelled.version + 1,
            lineage,
            now,
            report.trading_time,
            report.instrument,
        );
        Ok((cancelled, new))
    }

    async fn history(&self, reference: &TransactionReference) -> Result<Vec<StoredReport>> {
        let s = self.lock();
        Ok(s.by_ref
            .get(reference)
            .map(|v| {
                v.iter()
                    .filter_map(|i| s.records.get(*i).cloned())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn query(
        &self,
        filter: &ReportFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredReport>> {
        let s = self.lock();
        let start = s.records.partition_point(|r| r.seq <= after);
        Ok(s.records
            .iter()
            .skip(start)
            .filter(|r| filter.matches(r))
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect())
    }

    async fn count(&self, filter: &ReportFilter) -> Result<u64> {
        let s = self.lock();
        let n = s.records.iter().filter(|r| filter.matches(r)).count();
        Ok(u64::try_from(n).unwrap_or(u64::MAX))
    }

    async fn summary(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<PeriodSummary> {
        let s = self.lock();
        let mut summary = PeriodSummary::default();
        for indexes in s.by_ref.values() {
            let Some(latest) = indexes.last().and_then(|i| s.records.get(*i)) else {
                continue;
            };
            let t = latest.trading_time.at();
            if let Report::New(r) = &latest.report
                && t >= from
                && t < to
            {
                summary.add(r)?;
            }
        }
        Ok(summary)
    }

    async fn purge_before(
        &self,
        before: OffsetDateTime,
        now: OffsetDateTime,
        keeping: RecordKeeping,
    ) -> Result<u64> {
        keeping.allow_delete_before(before, now)?;
        let mut s = self.lock();
        let old = s.records.len();
        s.records.retain(|r| r.trading_time.at() >= before);
        let removed = old - s.records.len();
        let mut by_ref: HashMap<TransactionReference, Vec<usize>> = HashMap::new();
        for (i, r) in s.records.iter().enumerate() {
            by_ref
                .entry(r.report.reference().clone())
                .or_default()
                .push(i);
        }
        s.by_ref = by_ref;
        Ok(u64::try_from(removed).unwrap_or(u64::MAX))
    }

    async fn pseudonymise(
        &self,
        references: &[TransactionReference],
        person: &PersonId,
        pseudonym: &Pseudonym,
    ) -> Result<u64> {
        let mut s = self.lock();
        let mut changed = 0u64;
        for reference in references {
            let indices = s.by_ref.get(reference).cloned().unwrap_or_default();
            for i in indices {
                if let Some(StoredReport {
                    report: Report::New(r),
                    ..
                }) = s.records.get_mut(i)
                    && r.pseudonymise(person, pseudonym) > 0
                {
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }
}
