//! [`HoldStore`] in SQL, written once for SQLite and PostgreSQL, on `finsec_legal_holds`
//! (migration 50201; run the crate's `migrate` first).

use std::fmt;

use async_trait::async_trait;
use finsec_crypto::SubjectId;
use finsec_sql::Backend;
use sqlx::Pool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{HoldRelease, HoldStore, LegalHold, NewHold, refuse_release};
use crate::error::{Error, Result};
use crate::gdpr::RecordClass;

/// A [`HoldStore`] in SQL on a pool the caller built (`SqlHoldStore<sqlx::Sqlite>` or
/// `SqlHoldStore<sqlx::Postgres>`).
pub struct SqlHoldStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlHoldStore<DB> {
    /// A store on `pool`.
    #[must_use]
    pub fn new(pool: Pool<DB>) -> Self {
        Self { pool }
    }
}

impl<DB: Backend> Clone for SqlHoldStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlHoldStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlHoldStore")
            .field("backend", &DB::LABEL)
            .finish_non_exhaustive()
    }
}

const COLUMNS: &str = "id, case_id, subject, class, placed_by, reason, placed_us, \
                       released_by, release_reason, released_us";

type Raw = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn hold(raw: Raw) -> Result<LegalHold> {
    let (id, case, subject, class, placed_by, reason, placed, by, why, released) = raw;
    let corrupt = |what: &str| Error::Corrupt(format!("finsec_legal_holds {id}: {what}"));
    let time = |us: i64| finsec_sql::time::from_micros(us).map_err(|_| corrupt("time"));
    let released = match (by, released) {
        (Some(by), Some(at)) => Some(HoldRelease {
            by,
            reason: why.unwrap_or_default(),
            at: time(at)?,
        }),
        (None, None) => None,
        _ => return Err(corrupt("release")),
    };
    Ok(LegalHold {
        id: id.parse().map_err(|_| corrupt("id"))?,
        hold: NewHold {
            case,
            subject: subject
                .map(SubjectId::new)
                .transpose()
                .map_err(|_| corrupt("subject"))?,
            class: class
                .map(RecordClass::new)
                .transpose()
                .map_err(|_| corrupt("class"))?,
            placed_by,
            reason,
            at: time(placed)?,
        },
        released,
    })
}

fn micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(Error::store)
}

macro_rules! impl_hold_store {
    ($db:ty) => {
        #[async_trait]
        impl HoldStore for SqlHoldStore<$db> {
            async fn place(&self, new: &NewHold) -> Result<LegalHold> {
                new.validate()?;
                let id = Uuid::now_v7();
                let raw: Raw = sqlx::query_as(&format!(
                    "INSERT INTO finsec_legal_holds \
                     (id, case_id, subject, class, placed_by, reason, placed_us) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(&new.case)
                .bind(new.subject.as_ref().map(SubjectId::as_str))
                .bind(new.class.as_ref().map(RecordClass::as_str))
                .bind(&new.placed_by)
                .bind(&new.reason)
                .bind(micros(new.at)?)
                .fetch_one(&self.pool)
                .await?;
                hold(raw)
            }

            async fn release(
                &self,
                id: Uuid,
                by: &str,
                reason: &str,
                at: OffsetDateTime,
            ) -> Result<LegalHold> {
                let current = self
                    .get(id)
                    .await?
                    .ok_or_else(|| Error::not_found("legal hold", id))?;
                refuse_release(&current, by, reason)?;
                // Compare-and-set: only an active hold placed by someone else is released.
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "UPDATE finsec_legal_holds \
                     SET released_by = $2, release_reason = $3, released_us = $4 \
                     WHERE id = $1 AND released_us IS NULL AND placed_by <> $2 \
                     RETURNING {COLUMNS}"
                ))
                .bind(id.to_string())
                .bind(by)
                .bind(reason)
                .bind(micros(at)?)
                .fetch_optional(&self.pool)
                .await?;
                match raw {
                    Some(raw) => hold(raw),
                    None => Err(Error::State(format!("legal hold {id} is already released"))),
                }
            }

            async fn get(&self, id: Uuid) -> Result<Option<LegalHold>> {
                let raw: Option<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_legal_holds WHERE id = $1"
                ))
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
                raw.map(hold).transpose()
            }

            async fn active(&self) -> Result<Vec<LegalHold>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_legal_holds \
                     WHERE released_us IS NULL ORDER BY placed_us, id"
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(hold).collect()
            }

            async fn case(&self, case: &str) -> Result<Vec<LegalHold>> {
                let rows: Vec<Raw> = sqlx::query_as(&format!(
                    "SELECT {COLUMNS} FROM finsec_legal_holds \
                     WHERE case_id = $1 ORDER BY placed_us, id"
                ))
                .bind(case)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(hold).collect()
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_hold_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_hold_store!(sqlx::Postgres);
