//! [`ConsentStore`] in SQL, written once for SQLite and PostgreSQL, on
//! `finsec_consent_events` (migration 50101; run the crate's `migrate` first). Rows are
//! only ever inserted.

use std::fmt;

use async_trait::async_trait;
use finsec_crypto::SubjectId;
use finsec_sql::Backend;
use sqlx::Pool;

use super::{ConsentAction, ConsentEvent, ConsentRecord, ConsentStore, Purpose};
use crate::error::{Error, Result};

/// A [`ConsentStore`] in SQL on a pool the caller built
/// (`SqlConsentStore<sqlx::Sqlite>` or `SqlConsentStore<sqlx::Postgres>`).
pub struct SqlConsentStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlConsentStore<DB> {
    /// A store on `pool`.
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

impl<DB: Backend> Clone for SqlConsentStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlConsentStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConsentStore")
            .field("backend", &DB::LABEL)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "seq, subject, purpose, action, policy_version, at_us, channel, evidence";

type Raw = (i64, String, String, String, i64, i64, String, String);

fn record(raw: Raw) -> Result<ConsentRecord> {
    let (seq, subject, purpose, action, version, at, channel, evidence) = raw;
    let corrupt = |what: &str| Error::Corrupt(format!("finsec_consent_events {seq}: {what}"));
    Ok(ConsentRecord {
        seq,
        event: ConsentEvent {
            subject: SubjectId::new(subject).map_err(|_| corrupt("subject"))?,
            purpose: Purpose::new(purpose).map_err(|_| corrupt("purpose"))?,
            action: ConsentAction::parse(&action)?,
            policy_version: u32::try_from(version).map_err(|_| corrupt("policy_version"))?,
            at: finsec_sql::time::from_micros(at).map_err(|_| corrupt("time"))?,
            channel,
            evidence,
        },
    })
}

macro_rules! impl_consent_store {
    ($db:ty) => {
        #[async_trait]
        impl ConsentStore for SqlConsentStore<$db> {
            async fn record(&self, event: &ConsentEvent) -> Result<ConsentRecord> {
                event.validate()?;
                let at = finsec_sql::time::to_micros(event.at).map_err(Error::store)?;
                let (seq,): (i64,) = sqlx::query_as(
                    "INSERT INTO finsec_consent_events \
                     (subject, purpose, action, policy_version, at_us, channel, evidence) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
                )
                .bind(event.subject.as_str())
                .bind(event.purpose.as_str())
                .bind(event.action.as_str())
                .bind(i64::from(event.policy_version))
                .bind(at)
                .bind(&event.channel)
                .bind(&event.evidence)
                .fetch_one(&self.pool)
                .await?;
                Ok(ConsentRecord {
                    seq,
                    event: event.clone(),
                })
            }

            async fn current(
                &self,
                subject: &SubjectId,
                purpose: &Purpose,
            ) -> Result<Option<ConsentRecord>> {
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_consent_events \
                     WHERE subject = $1 AND purpose = $2 ORDER BY seq DESC LIMIT 1"
                ))
                .bind(subject.as_str())
                .bind(purpose.as_str())
                .fetch_optional(&self.pool)
                .await?;
                raw.map(record).transpose()
            }

            async fn history(&self, subject: &SubjectId) -> Result<Vec<ConsentRecord>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_consent_events WHERE subject = $1 ORDER BY seq"
                ))
                .bind(subject.as_str())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(record).collect()
            }

            async fn granted_before(
                &self,
                purpose: &Purpose,
                version: u32,
                after: i64,
                limit: u32,
            ) -> Result<Vec<ConsentRecord>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_consent_events c \
                     WHERE c.purpose = $1 AND c.seq > $2 AND c.action = 'granted' \
                     AND c.policy_version < $3 \
                     AND NOT EXISTS (SELECT 1 FROM finsec_consent_events l \
                                     WHERE l.subject = c.subject AND l.purpose = c.purpose \
                                     AND l.seq > c.seq) \
                     ORDER BY c.seq LIMIT $4"
                ))
                .bind(purpose.as_str())
                .bind(after)
                .bind(i64::from(version))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(record).collect()
            }

            async fn erase(&self, subject: &SubjectId) -> Result<u64> {
                let done = sqlx::query("DELETE FROM finsec_consent_events WHERE subject = $1")
                    .bind(subject.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_consent_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_consent_store!(sqlx::Postgres);
