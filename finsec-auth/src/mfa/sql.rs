//! [`TotpReplayStore`] and [`BackupCodeStore`] in SQL, written once for SQLite and
//! PostgreSQL (features `sqlite`, `postgres`).
//!
//! [`TotpReplayStore::try_advance`] is one statement,
//! `INSERT ... ON CONFLICT (user_id) DO UPDATE ... WHERE last_step < excluded.last_step`,
//! and succeeds iff it changed a row. SQLite serializes writers, so two pools (two
//! processes) on one file can never both accept one step; on PostgreSQL the second writer
//! waits for the first one's row lock and then re-checks the `WHERE` against the committed
//! row (READ COMMITTED), so two requests on any number of servers never both accept one
//! step. Run the crate's `migrate` (`finsec_auth::sqlite::migrate` /
//! `finsec_auth::postgres::migrate`) once before use.

use std::fmt;

use async_trait::async_trait;
use finsec_sql::Backend;
use sqlx::Pool;

use super::backup::BackupCodeHash;
use super::error::{MfaError, Result};
use super::store::{BackupCodeStore, MfaUserId, TotpReplayStore, step_to_i64};

/// A [`TotpReplayStore`] in SQL, on a pool the caller built: `SqliteTotpReplayStore` /
/// `PgTotpReplayStore`.
pub struct SqlTotpReplayStore<DB: Backend> {
    pool: Pool<DB>,
}

/// A [`BackupCodeStore`] in SQL, on a pool the caller built: `SqliteBackupCodeStore` /
/// `PgBackupCodeStore`.
///
/// `consume` is one `DELETE` of the (user, hash) row and succeeds iff it deleted one, so
/// a code works once however many requests race; `replace` is one transaction.
pub struct SqlBackupCodeStore<DB: Backend> {
    pool: Pool<DB>,
}

crate::sql_store::pool_wrapper!(SqlTotpReplayStore);
crate::sql_store::pool_wrapper!(SqlBackupCodeStore);

fn to_step(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| MfaError::Corrupt(format!("negative step {value}")))
}

/// The trait implementations, expanded once per backend: the same code on a concrete pool
/// type, so none of sqlx's generic bounds need stating.
macro_rules! impl_mfa_stores {
    ($db:ty) => {
        #[async_trait]
        impl TotpReplayStore for SqlTotpReplayStore<$db> {
            async fn try_advance(&self, user: &MfaUserId, step: u64) -> Result<bool> {
                let step = step_to_i64(step)?;
                let done = sqlx::query(
                    "INSERT INTO finsec_mfa_totp_replay (user_id, last_step) VALUES ($1, $2) \
                     ON CONFLICT (user_id) DO UPDATE SET last_step = excluded.last_step \
                     WHERE finsec_mfa_totp_replay.last_step < excluded.last_step",
                )
                .bind(user.as_str())
                .bind(step)
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn last_step(&self, user: &MfaUserId) -> Result<Option<u64>> {
                let row: Option<(i64,)> = sqlx::query_as(
                    "SELECT last_step FROM finsec_mfa_totp_replay WHERE user_id = $1",
                )
                .bind(user.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|(v,)| to_step(v)).transpose()
            }

            async fn forget(&self, user: &MfaUserId) -> Result<()> {
                sqlx::query("DELETE FROM finsec_mfa_totp_replay WHERE user_id = $1")
                    .bind(user.as_str())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }
        }

        #[async_trait]
        impl BackupCodeStore for SqlBackupCodeStore<$db> {
            async fn replace(&self, user: &MfaUserId, hashes: Vec<BackupCodeHash>) -> Result<()> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("DELETE FROM finsec_mfa_backup_codes WHERE user_id = $1")
                    .bind(user.as_str())
                    .execute(&mut *tx)
                    .await?;
                for hash in &hashes {
                    sqlx::query(
                        "INSERT INTO finsec_mfa_backup_codes (user_id, code_hash) \
                         VALUES ($1, $2) ON CONFLICT (user_id, code_hash) DO NOTHING",
                    )
                    .bind(user.as_str())
                    .bind(hash.as_bytes().as_slice())
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn consume(&self, user: &MfaUserId, hash: &BackupCodeHash) -> Result<bool> {
                let done = sqlx::query(
                    "DELETE FROM finsec_mfa_backup_codes WHERE user_id = $1 AND code_hash = $2",
                )
                .bind(user.as_str())
                .bind(hash.as_bytes().as_slice())
                .execute(&self.pool)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remaining(&self, user: &MfaUserId) -> Result<usize> {
                let (count,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM finsec_mfa_backup_codes WHERE user_id = $1",
                )
                .bind(user.as_str())
                .fetch_one(&self.pool)
                .await?;
                usize::try_from(count)
                    .map_err(|_| MfaError::Corrupt(format!("negative count {count}")))
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_mfa_stores!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_mfa_stores!(sqlx::Postgres);
