//! PostgreSQL [`TotpReplayStore`] and [`BackupCodeStore`] (feature `postgres`).
//!
//! [`TotpReplayStore::try_advance`] is one statement,
//! `INSERT ... ON CONFLICT (user_id) DO UPDATE ... WHERE last_step < excluded.last_step`,
//! and succeeds iff it changed a row. Under concurrency the second writer waits for the
//! first one's row lock and then re-checks the `WHERE` against the committed row (READ
//! COMMITTED), so two requests (on any number of servers) can never both accept one step.

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;

use super::backup::BackupCodeHash;
use super::error::{Error, Result};
use super::store::{BackupCodeStore, MfaUserId, TotpReplayStore, step_to_i64};

/// The finsec-auth PostgreSQL migrator (versions 20001–20999), with `ignore_missing` set so
/// other finsec crates' migrations in the same `_sqlx_migrations` table are not an error.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// Creates or updates the finsec-auth tables (including `finsec_mfa_totp_replay`).
///
/// # Errors
/// [`Error::Migrate`] if a migration fails.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    migrator().run(pool).await?;
    Ok(())
}

/// A [`TotpReplayStore`] in PostgreSQL, on a pool the caller built. Run [`migrate`] first.
#[derive(Debug, Clone)]
pub struct PgTotpReplayStore {
    pool: PgPool,
}

impl PgTotpReplayStore {
    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

fn to_step(value: i64) -> Result<u64> {
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("negative step {value}")))
}

#[async_trait]
impl TotpReplayStore for PgTotpReplayStore {
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
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT last_step FROM finsec_mfa_totp_replay WHERE user_id = $1")
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

/// A [`BackupCodeStore`] in PostgreSQL, on a pool the caller built. Run [`migrate`] first.
///
/// `consume` is one `DELETE` of the (user, hash) row and succeeds iff it deleted one, so
/// a code works once however many requests race; `replace` is one transaction.
#[derive(Debug, Clone)]
pub struct PgBackupCodeStore {
    pool: PgPool,
}

impl PgBackupCodeStore {
    /// A store on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl BackupCodeStore for PgBackupCodeStore {
    async fn replace(&self, user: &MfaUserId, hashes: Vec<BackupCodeHash>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM finsec_mfa_backup_codes WHERE user_id = $1")
            .bind(user.as_str())
            .execute(&mut *tx)
            .await?;
        for hash in &hashes {
            sqlx::query(
                "INSERT INTO finsec_mfa_backup_codes (user_id, code_hash) VALUES ($1, $2) \
                 ON CONFLICT (user_id, code_hash) DO NOTHING",
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
        let (count,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM finsec_mfa_backup_codes WHERE user_id = $1")
                .bind(user.as_str())
                .fetch_one(&self.pool)
                .await?;
        usize::try_from(count).map_err(|_| Error::Corrupt(format!("negative count {count}")))
    }
}
