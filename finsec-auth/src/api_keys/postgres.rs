//! PostgreSQL storage for API keys (feature `postgres`).
//!
//! ```no_run
//! # async fn example() -> finsec_auth::api_keys::Result<()> {
//! use finsec_auth::api_keys::ApiKeys;
//! use finsec_auth::api_keys::postgres::{PgApiKeyStore, migrate};
//! use sqlx::postgres::PgPool;
//!
//! let pool = PgPool::connect("postgres://finsec@db.internal/finsec").await?;
//! migrate(&pool).await?;
//! let keys = ApiKeys::new(PgApiKeyStore::new(pool));
//! # Ok(())
//! # }
//! ```
//!
//! Table `finsec_api_keys` (migration 20201). Rotation and batched usage run in one
//! transaction each. Rotation's first statement is a guarded `UPDATE` of the old row, which
//! locks it: a concurrent rotation of the same key waits, re-checks the guard and fails
//! with [`ApiKeyError::InvalidState`], so a key is never replaced twice.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgRow};
use time::OffsetDateTime;

use super::sql::{COLUMNS, RawRow, count_to_db, id_to_db, scopes_to_db, to_micros};
use super::store::check_rotatable;
use super::{ApiKeyError, ApiKeyId, ApiKeyRecord, ApiKeyStore, Result, UsageUpdate};

/// The finsec-auth PostgreSQL migrator (versions 20001–20999), with `ignore_missing` set so
/// other finsec crates' migrations in the same `_sqlx_migrations` table are not an error.
pub fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_ignore_missing(true);
    migrator
}

/// Creates or updates the finsec-auth tables (including `finsec_api_keys`).
///
/// # Errors
/// [`ApiKeyError::Migrate`] if a migration fails or an applied one was changed.
pub async fn migrate(pool: &PgPool) -> Result<()> {
    migrator().run(pool).await?;
    Ok(())
}

/// An [`ApiKeyStore`] in a PostgreSQL database, on a pool the caller built.
#[derive(Debug, Clone)]
pub struct PgApiKeyStore {
    pool: PgPool,
}

impl PgApiKeyStore {
    /// A store on `pool`. Run [`migrate`] once before use.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn raw(row: &PgRow) -> Result<ApiKeyRecord> {
    RawRow {
        key_id: row.try_get("key_id")?,
        owner: row.try_get("owner")?,
        scopes: row.try_get("scopes")?,
        secret_hash: row.try_get("secret_hash")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        replaced_by: row.try_get("replaced_by")?,
        last_used_at: row.try_get("last_used_at")?,
        use_count: row.try_get("use_count")?,
    }
    .into_record()
}

const INSERT: &str = "INSERT INTO finsec_api_keys \
     (key_id, owner, scopes, secret_hash, created_at, expires_at, revoked_at, replaced_by, \
      last_used_at, use_count) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (key_id) DO NOTHING";

async fn insert_on<'e, E>(executor: E, r: &ApiKeyRecord) -> Result<bool>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    let done = sqlx::query(INSERT)
        .bind(id_to_db(&r.id))
        .bind(&r.owner)
        .bind(scopes_to_db(&r.scopes))
        .bind(r.secret_hash.as_bytes().as_slice())
        .bind(to_micros(r.created_at)?)
        .bind(r.expires_at.map(to_micros).transpose()?)
        .bind(r.revoked_at.map(to_micros).transpose()?)
        .bind(r.replaced_by.as_ref().map(id_to_db))
        .bind(r.last_used_at.map(to_micros).transpose()?)
        .bind(count_to_db(r.use_count))
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl ApiKeyStore for PgApiKeyStore {
    async fn insert(&self, record: &ApiKeyRecord) -> Result<()> {
        if insert_on(&self.pool, record).await? {
            Ok(())
        } else {
            Err(ApiKeyError::DuplicateId { id: record.id })
        }
    }

    async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM finsec_api_keys WHERE key_id = $1"
        ))
        .bind(id_to_db(id))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(raw).transpose()
    }

    async fn list_for_owner(&self, owner: &str) -> Result<Vec<ApiKeyRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM finsec_api_keys WHERE owner = $1 \
             ORDER BY created_at, key_id COLLATE \"C\""
        ))
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(raw).collect()
    }

    async fn revoke(&self, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE finsec_api_keys SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL",
        )
        .bind(id_to_db(id))
        .bind(to_micros(at)?)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        match self.get(id).await? {
            Some(_) => Ok(false),
            None => Err(ApiKeyError::NotFound { id: *id }),
        }
    }

    async fn rotate(
        &self,
        old: &ApiKeyId,
        new: &ApiKeyRecord,
        old_valid_until: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let updated = sqlx::query(
            "UPDATE finsec_api_keys SET replaced_by = $2, \
             expires_at = CASE WHEN expires_at IS NOT NULL AND expires_at < $3 \
                          THEN expires_at ELSE $3 END \
             WHERE key_id = $1 AND revoked_at IS NULL AND replaced_by IS NULL",
        )
        .bind(id_to_db(old))
        .bind(id_to_db(&new.id))
        .bind(to_micros(old_valid_until)?)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            let row = sqlx::query(&format!(
                "SELECT {COLUMNS} FROM finsec_api_keys WHERE key_id = $1"
            ))
            .bind(id_to_db(old))
            .fetch_optional(&mut *tx)
            .await?;
            tx.rollback().await?;
            let record = row
                .as_ref()
                .map(raw)
                .transpose()?
                .ok_or(ApiKeyError::NotFound { id: *old })?;
            check_rotatable(&record)?;
            return Err(ApiKeyError::NotFound { id: *old });
        }
        if !insert_on(&mut *tx, new).await? {
            tx.rollback().await?;
            return Err(ApiKeyError::DuplicateId { id: new.id });
        }
        tx.commit().await?;
        Ok(())
    }

    async fn record_usage(&self, batch: &[UsageUpdate]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for u in batch {
            sqlx::query(
                "UPDATE finsec_api_keys SET \
                 use_count = CASE WHEN use_count > 9223372036854775807 - $2 \
                             THEN 9223372036854775807 ELSE use_count + $2 END, \
                 last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $3 \
                                THEN $3 ELSE last_used_at END \
                 WHERE key_id = $1",
            )
            .bind(id_to_db(&u.id))
            .bind(count_to_db(u.uses))
            .bind(to_micros(u.last_used_at)?)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
