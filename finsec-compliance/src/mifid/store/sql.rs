//! [`TransactionReportStore`] in SQL, written once for SQLite and PostgreSQL, on
//! `finsec_mifid_reports` (migration 50001; run the crate's `migrate` first).
//!
//! Each reference's records are numbered by version, unique per reference: of two writers
//! racing to add the next version of one reference exactly one succeeds, and the other
//! reads again and decides again (an identical submit then finds the winner's record).

use std::fmt;

use async_trait::async_trait;
use finsec_sql::Backend;
use futures_util::TryStreamExt as _;
use sqlx::Pool;
use time::OffsetDateTime;

use super::{
    Decision, PeriodSummary, RecordKeeping, ReportFilter, StoredReport, Submitted,
    TransactionReportStore, decide_submit,
};
use crate::error::{Error, Result};
use crate::gdpr::Pseudonym;
use crate::mifid::clock::TradingTime;
use crate::mifid::report::{Lineage, PersonId, Report, TransactionReference, TransactionReport};

/// A [`TransactionReportStore`] in SQL on a pool the caller built
/// (`SqlReportStore<sqlx::Sqlite>` or `SqlReportStore<sqlx::Postgres>`).
pub struct SqlReportStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlReportStore<DB> {
    /// A store on `pool`.
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }
}

impl<DB: Backend> Clone for SqlReportStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlReportStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlReportStore")
            .field("backend", &DB::LABEL)
            .finish_non_exhaustive()
    }
}

fn micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(Error::store)
}

fn time_of(micros: i64) -> Result<OffsetDateTime> {
    finsec_sql::time::from_micros(micros)
        .map_err(|e| Error::Corrupt(format!("finsec_mifid_reports time: {e}")))
}

/// The columns every read takes, in this order.
const COLUMNS: &str = "seq, version, recorded_us, body, lineage";

type Raw = (i64, i64, i64, String, String);

/// The body column: the record plus the cancelled report's time and instrument for a
/// cancellation (which the record itself does not carry).
#[derive(serde::Serialize, serde::Deserialize)]
struct Body {
    report: Report,
    trading_time: TradingTime,
    instrument: finsec_validate::identifiers::Isin,
}

impl Body {
    /// The cancellation of `live`.
    fn cancelling(live: &StoredReport) -> Self {
        Self {
            report: Report::Cancel(live.report.cancellation()),
            trading_time: live.trading_time,
            instrument: live.instrument,
        }
    }

    /// A new report.
    fn new_report(report: &TransactionReport) -> Self {
        Self {
            report: Report::New(Box::new(report.clone())),
            trading_time: report.trading_time,
            instrument: report.instrument,
        }
    }
}

/// The latest record if it is a live new report, else [`Error::NotLive`].
fn live(latest: Option<StoredReport>, reference: &TransactionReference) -> Result<StoredReport> {
    latest
        .filter(|l| matches!(l.report, Report::New(_)))
        .ok_or_else(|| Error::NotLive {
            reference: reference.to_string(),
        })
}

/// A write's result: `None` when it lost a race for a version (read and decide again).
fn raced<T>(result: std::result::Result<T, sqlx::Error>) -> Result<Option<T>> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(e) if is_unique_violation(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn too_many_writers(reference: &TransactionReference) -> Error {
    Error::store(format!(
        "transaction {reference}: too many concurrent writers"
    ))
}

fn record(raw: Raw) -> Result<StoredReport> {
    let (seq, version, recorded, body, lineage) = raw;
    let body: Body =
        serde_json::from_str(&body).map_err(|e| Error::Corrupt(format!("record {seq}: {e}")))?;
    let lineage: Lineage = serde_json::from_str(&lineage)
        .map_err(|e| Error::Corrupt(format!("record {seq} lineage: {e}")))?;
    Ok(StoredReport {
        seq,
        version,
        report: body.report,
        lineage,
        recorded_at: time_of(recorded)?,
        trading_time: body.trading_time,
        instrument: body.instrument,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// How many times a writer that lost a race for a version reads and decides again.
const RETRIES: usize = 8;

/// The `AND ...` conditions of `filter`, numbering parameters after `first`; returns them
/// and the last parameter number used.
fn conditions(filter: &ReportFilter, first: usize) -> (String, usize) {
    let mut sql = String::new();
    let mut n = first;
    for (present, cond) in [
        (filter.from.is_some(), "trading_us >="),
        (filter.to.is_some(), "trading_us <"),
        (filter.status.is_some(), "status ="),
        (filter.instrument.is_some(), "instrument ="),
    ] {
        if present {
            n += 1;
            sql.push_str(&format!(" AND {cond} ${n}"));
        }
    }
    (sql, n)
}

/// Binds `filter`'s values in the order [`conditions`] numbers them.
macro_rules! bind_filter {
    ($q:expr, $filter:expr) => {{
        let mut q = $q;
        if let Some(from) = $filter.from {
            q = q.bind(micros(from)?);
        }
        if let Some(to) = $filter.to {
            q = q.bind(micros(to)?);
        }
        if let Some(status) = $filter.status {
            q = q.bind(status.code());
        }
        if let Some(instrument) = $filter.instrument {
            q = q.bind(instrument.as_str().to_owned());
        }
        q
    }};
}

macro_rules! impl_report_store {
    ($db:ty) => {
        impl SqlReportStore<$db> {
            async fn latest<'e, E>(&self, exec: E, reference: &TransactionReference) -> Result<Option<StoredReport>>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_mifid_reports WHERE reference = $1 \
                     ORDER BY version DESC LIMIT 1"
                ))
                .bind(reference.as_str())
                .fetch_optional(exec)
                .await?;
                raw.map(record).transpose()
            }

            async fn insert<'e, E>(
                &self,
                exec: E,
                body: Body,
                version: i64,
                lineage: &Lineage,
                now: OffsetDateTime,
            ) -> std::result::Result<StoredReport, sqlx::Error>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let (trading_time, instrument) = (body.trading_time, body.instrument);
                let encode = |e: serde_json::Error| sqlx::Error::Encode(Box::new(e));
                let json = serde_json::to_string(&body).map_err(encode)?;
                let lineage_json = serde_json::to_string(lineage).map_err(encode)?;
                let to_us = |t| micros(t).map_err(|e| sqlx::Error::Encode(Box::new(e)));
                let (seq,): (i64,) = sqlx::query_as(
                    "INSERT INTO finsec_mifid_reports \
                     (reference, version, status, instrument, trading_us, recorded_us, body, lineage) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
                )
                .bind(body.report.reference().as_str())
                .bind(version)
                .bind(body.report.status().code())
                .bind(instrument.as_str())
                .bind(to_us(trading_time.at())?)
                .bind(to_us(now)?)
                .bind(json)
                .bind(lineage_json)
                .fetch_one(exec)
                .await?;
                Ok(StoredReport {
                    seq,
                    version,
                    report: body.report,
                    lineage: lineage.clone(),
                    recorded_at: now,
                    trading_time,
                    instrument,
                })
            }
        }

        #[async_trait]
        impl TransactionReportStore for SqlReportStore<$db> {
            async fn submit(
                &self,
                report: &TransactionReport,
                lineage: &Lineage,
                now: OffsetDateTime,
            ) -> Result<Submitted> {
                for _ in 0..RETRIES {
                    let latest = self.latest(&self.pool, &report.reference).await?;
                    let version = match decide_submit(latest.as_ref().map(|l| (l.version, &l.report)), report) {
                        Decision::Existing => {
                            return latest
                                .map(Submitted::Existing)
                                .ok_or_else(|| Error::Corrupt("the live record vanished".into()));
                        }
                        Decision::Conflict => {
                            return Err(Error::Conflict {
                                reference: report.reference.to_string(),
                            });
                        }
                        Decision::Insert { version } => version,
                    };
                    let inserted = self
                        .insert(&self.pool, Body::new_report(report), version, lineage, now)
                        .await;
                    if let Some(r) = raced(inserted)? {
                        return Ok(Submitted::Created(r));
                    }
                }
                Err(too_many_writers(&report.reference))
            }

            async fn cancel(
                &self,
                reference: &TransactionReference,
                lineage: &Lineage,
                now: OffsetDateTime,
            ) -> Result<StoredReport> {
                for _ in 0..RETRIES {
                    let live = live(self.latest(&self.pool, reference).await?, reference)?;
                    let inserted = self
                        .insert(&self.pool, Body::cancelling(&live), live.version + 1, lineage, now)
                        .await;
                    if let Some(r) = raced(inserted)? {
                        return Ok(r);
                    }
                }
                Err(too_many_writers(reference))
            }

            async fn amend(
                &self,
                report: &TransactionReport,
                lineage: &Lineage,
                now: OffsetDateTime,
            ) -> Result<(StoredReport, StoredReport)> {
                for _ in 0..RETRIES {
                    let mut tx = self.pool.begin().await?;
                    let live = live(self.latest(&mut *tx, &report.reference).await?, &report.reference)?;
                    let cancelling = Body::cancelling(&live);
                    let inserted = self
                        .insert(&mut *tx, cancelling, live.version + 1, lineage, now)
                        .await;
                    let Some(cancelled) = raced(inserted)? else {
                        continue;
                    };
                    let inserted = self
                        .insert(&mut *tx, Body::new_report(report), live.version + 2, lineage, now)
                        .await;
                    let Some(new) = raced(inserted)? else {
                        continue;
                    };
                    if raced(tx.commit().await)?.is_some() {
                        return Ok((cancelled, new));
                    }
                }
                Err(too_many_writers(&report.reference))
            }

            async fn history(&self, reference: &TransactionReference) -> Result<Vec<StoredReport>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_mifid_reports WHERE reference = $1 ORDER BY version"
                ))
                .bind(reference.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(record).collect()
            }

            async fn query(&self, filter: &ReportFilter, after: i64, limit: u32) -> Result<Vec<StoredReport>> {
                let (conditions, n) = conditions(filter, 1);
                let sql = format!(
                    "SELECT {COLUMNS} FROM finsec_mifid_reports WHERE seq > $1{conditions} \
                     ORDER BY seq LIMIT ${}",
                    n + 1
                );
                let q = sqlx::query_as::<_, Raw>(&sql).bind(after);
                let q = bind_filter!(q, filter);
                let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.into_iter().map(record).collect()
            }

            async fn count(&self, filter: &ReportFilter) -> Result<u64> {
                let (conditions, _) = conditions(filter, 0);
                let sql = format!("SELECT COUNT(*) FROM finsec_mifid_reports WHERE TRUE{conditions}");
                let q = sqlx::query_as::<_, (i64,)>(&sql);
                let q = bind_filter!(q, filter);
                let (n,) = q.fetch_one(&self.pool).await?;
                Ok(u64::try_from(n).unwrap_or_default())
            }

            async fn summary(&self, from: OffsetDateTime, to: OffsetDateTime) -> Result<PeriodSummary> {
                let mut rows = sqlx::query_as::<_, (String,)>(
                    "SELECT r.body FROM finsec_mifid_reports r \
                     WHERE r.status = 'NEWT' AND r.trading_us >= $1 AND r.trading_us < $2 \
                     AND NOT EXISTS (SELECT 1 FROM finsec_mifid_reports l \
                                     WHERE l.reference = r.reference AND l.version > r.version)",
                )
                .bind(micros(from)?)
                .bind(micros(to)?)
                .fetch(&self.pool);
                let mut summary = PeriodSummary::default();
                while let Some((body,)) = rows.try_next().await? {
                    let body: Body = serde_json::from_str(&body)
                        .map_err(|e| Error::Corrupt(format!("summary: {e}")))?;
                    if let Report::New(r) = &body.report {
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
                let done = sqlx::query("DELETE FROM finsec_mifid_reports WHERE trading_us < $1")
                    .bind(micros(before)?)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn pseudonymise(
                &self,
                references: &[TransactionReference],
                person: &PersonId,
                pseudonym: &Pseudonym,
            ) -> Result<u64> {
                // Each record is rewritten by compare-and-set on its old body, not in a
                // read-then-write transaction (which SQLite refuses when another writer
                // committed in between); a run stopped half-way is completed by the next.
                let mut changed = 0u64;
                for reference in references {
                    let rows: Vec<(i64, String)> = sqlx::query_as(
                        "SELECT seq, body FROM finsec_mifid_reports \
                         WHERE reference = $1 AND status = 'NEWT' ORDER BY seq",
                    )
                    .bind(reference.as_str())
                    .fetch_all(&self.pool)
                    .await?;
                    for (seq, old) in rows {
                        let body = old.clone();
                        let mut parsed: Body = serde_json::from_str(&body)
                            .map_err(|e| Error::Corrupt(format!("record {seq}: {e}")))?;
                        let Report::New(r) = &mut parsed.report else {
                            continue;
                        };
                        if r.pseudonymise(person, pseudonym) == 0 {
                            continue;
                        }
                        let body = serde_json::to_string(&parsed)
                            .map_err(|e| Error::Corrupt(format!("record {seq}: {e}")))?;
                        let done = sqlx::query(
                            "UPDATE finsec_mifid_reports SET body = $1 WHERE seq = $2 AND body = $3",
                        )
                        .bind(body)
                        .bind(seq)
                        .bind(&old)
                        .execute(&self.pool)
                        .await?;
                        changed += done.rows_affected();
                    }
                }
                Ok(changed)
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_report_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_report_store!(sqlx::Postgres);
