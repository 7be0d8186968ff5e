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
use crate::mifid::clock::TradingTime;
use crate::mifid::report::{Lineage, Report, TransactionReference, TransactionReport};

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
                    match self
                        .insert(
                            &self.pool,
                            Body {
                                report: Report::New(Box::new(report.clone())),
                                trading_time: report.trading_time,
                                instrument: report.instrument,
                            },
                            version,
                            lineage,
                            now,
                        )
                        .await
                    {
                        Ok(r) => return Ok(Submitted::Created(r)),
                        Err(e) if is_unique_violation(&e) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(Error::store(format!(
                    "transaction {}: too many concurrent writers",
                    report.reference
                )))
            }

            async fn cancel(
                &self,
                reference: &TransactionReference,
                lineage: &Lineage,
                now: OffsetDateTime,
            ) -> Result<StoredReport> {
                for _ in 0..RETRIES {
                    let latest = self.latest(&self.pool, reference).await?;
                    let Some(live) = latest.filter(|l| matches!(l.report, Report::New(_))) else {
                        return Err(Error::NotLive {
                            reference: reference.to_string(),
                        });
                    };
                    match self
                        .insert(
                            &self.pool,
                            Body {
                                report: Report::Cancel(live.report.cancellation()),
                                trading_time: live.trading_time,
                                instrument: live.instrument,
                            },
                            live.version + 1,
                            lineage,
                            now,
                        )
                        .await
                    {
                        Ok(r) => return Ok(r),
                        Err(e) if is_unique_violation(&e) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(Error::store(format!(
                    "transaction {reference}: too many concurrent writers"
                )))
            }

            async fn amend(
                &self,
                report: &TransactionReport,
                lineage: &Lineage,
                now: OffsetDateTime,
            ) -> Result<(StoredReport, StoredReport)> {
                for _ in 0..RETRIES {
                    let mut tx = self.pool.begin().await?;
                    let latest = self.latest(&mut *tx, &report.reference).await?;
                    let Some(live) = latest.filter(|l| matches!(l.report, Report::New(_))) else {
                        return Err(Error::NotLive {
                            reference: report.reference.to_string(),
                        });
                    };
                    let cancelled = self
                        .insert(
                            &mut *tx,
                            Body {
                                report: Report::Cancel(live.report.cancellation()),
                                trading_time: live.trading_time,
                                instrument: live.instrument,
                            },
                            live.version + 1,
                            lineage,
                            now,
                        )
                        .await;
                    let cancelled = match cancelled {
                        Ok(c) => c,
                        Err(e) if is_unique_violation(&e) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let new = self
                        .insert(
                            &mut *tx,
                            Body {
                                report: Report::New(Box::new(report.clone())),
                                trading_time: report.trading_time,
                                instrument: report.instrument,
                            },
                            live.version + 2,
                            lineage,
                            now,
                        )
                        .await;
                    let new = match new {
                        Ok(n) => n,
                        Err(e) if is_unique_violation(&e) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    match tx.commit().await {
                        Ok(()) => return Ok((cancelled, new)),
                        Err(e) if is_unique_violation(&e) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(Error::store(format!(
                    "transaction {}: too many concurrent writers",
                    report.reference
                )))
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
                let mut sql = format!("SELECT {COLUMNS} FROM finsec_mifid_reports WHERE seq > $1");
                let mut n = 1;
                let mut arg = |sql: &mut String, cond: &str| {
                    n += 1;
                    sql.push_str(&format!(" AND {cond} ${n}"));
                };
                if filter.from.is_some() {
                    arg(&mut sql, "trading_us >=");
                }
                if filter.to.is_some() {
                    arg(&mut sql, "trading_us <");
                }
                if filter.status.is_some() {
                    arg(&mut sql, "status =");
                }
                if filter.instrument.is_some() {
                    arg(&mut sql, "instrument =");
                }
                n += 1;
                sql.push_str(&format!(" ORDER BY seq LIMIT ${n}"));
                let mut q = sqlx::query_as::<_, Raw>(&sql).bind(after);
                if let Some(from) = filter.from {
                    q = q.bind(micros(from)?);
                }
                if let Some(to) = filter.to {
                    q = q.bind(micros(to)?);
                }
                if let Some(status) = filter.status {
                    q = q.bind(status.code());
                }
                if let Some(instrument) = filter.instrument {
                    q = q.bind(instrument.as_str().to_owned());
                }
                let rows = q.bind(i64::from(limit)).fetch_all(&self.pool).await?;
                rows.into_iter().map(record).collect()
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
        }
    };
}

#[cfg(feature = "sqlite")]
impl_report_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_report_store!(sqlx::Postgres);
