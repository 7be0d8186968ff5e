//! [`FailureStore`] in SQL, written once for SQLite and PostgreSQL (features `sqlite`,
//! `postgres`), on the table `finsec_login_failures` (run the crate's `migrate` first).
//!
//! [`replace`](FailureStore::replace) is one statement: an `INSERT ... ON CONFLICT DO
//! NOTHING` when no record is expected, else an `UPDATE` whose `WHERE` names every column of
//! the expected record; it succeeded iff it changed one row. SQLite serialises writers; on
//! PostgreSQL the second of two racing updates waits for the first one's row lock and
//! re-checks its `WHERE` against the committed row (READ COMMITTED), so exactly one wins.

use std::fmt;

use async_trait::async_trait;
use finsec_sql::Backend;
use sqlx::Pool;
use time::OffsetDateTime;

use super::error::Result;
use super::store::{FailureKey, FailureRecord, FailureStore, unix_ms};

/// A [`FailureStore`] in SQL on a pool the caller built (`SqlFailureStore<sqlx::Sqlite>` or
/// `SqlFailureStore<sqlx::Postgres>`).
pub struct SqlFailureStore<DB: Backend> {
    pool: Pool<DB>,
}

crate::sql_store::pool_wrapper!(SqlFailureStore);

macro_rules! impl_failure_store {
    ($db:ty) => {
        #[async_trait]
        impl FailureStore for SqlFailureStore<$db> {
            async fn get(&self, key: &FailureKey) -> Result<Option<FailureRecord>> {
                let row: Option<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT failures, last_failure_ms, blocked_until_ms \
                     FROM finsec_login_failures WHERE failure_key = $1",
                )
                .bind(key.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(f, l, b)| FailureRecord::from_stored(f, l, b))
                    .transpose()
            }

            async fn replace(
                &self,
                key: &FailureKey,
                expected: Option<&FailureRecord>,
                next: &FailureRecord,
            ) -> Result<bool> {
                let done = match expected {
                    None => {
                        sqlx::query(
                            "INSERT INTO finsec_login_failures \
                             (failure_key, failures, last_failure_ms, blocked_until_ms) \
                             VALUES ($1, $2, $3, $4) ON CONFLICT (failure_key) DO NOTHING",
                        )
                        .bind(key.as_str())
                        .bind(i64::from(next.failures()))
                        .bind(next.last_failure_ms())
                        .bind(next.blocked_until_ms())
                        .execute(&self.pool)
                        .await?
                    }
                    Some(old) => {
                        sqlx::query(
                            "UPDATE finsec_login_failures \
                             SET failures = $2, last_failure_ms = $3, blocked_until_ms = $4 \
                             WHERE failure_key = $1 AND failures = $5 \
                             AND last_failure_ms = $6 AND blocked_until_ms = $7",
                        )
                        .bind(key.as_str())
                        .bind(i64::from(next.failures()))
                        .bind(next.last_failure_ms())
                        .bind(next.blocked_until_ms())
                        .bind(i64::from(old.failures()))
                        .bind(old.last_failure_ms())
                        .bind(old.blocked_until_ms())
                        .execute(&self.pool)
                        .await?
                    }
                };
                Ok(done.rows_affected() == 1)
            }

            async fn clear(&self, key: &FailureKey) -> Result<()> {
                sqlx::query("DELETE FROM finsec_login_failures WHERE failure_key = $1")
                    .bind(key.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn purge(&self, before: OffsetDateTime, keep_failures: u32) -> Result<u64> {
                let before = unix_ms(before);
                let done = sqlx::query(
                    "DELETE FROM finsec_login_failures WHERE failures < $1 \
                     AND last_failure_ms < $2 AND blocked_until_ms < $2",
                )
                .bind(i64::from(keep_failures))
                .bind(before)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_failure_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_failure_store!(sqlx::Postgres);
