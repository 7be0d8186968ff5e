//! The API-key store in SQL, written once for SQLite and PostgreSQL (features `sqlite`,
//! `postgres`): times as unix microseconds, scopes and client networks as JSON arrays.
//!
//! Table `finsec_api_keys` (migration 20201). Rotation and batched usage run in one
//! transaction each, whose first statement is a write: SQLite takes the write lock at once
//! and concurrent writers wait (busy timeout) instead of failing a lock upgrade; on
//! PostgreSQL rotation's guarded `UPDATE` locks the old row, so a concurrent rotation of
//! the same key waits, re-checks the guard and fails with [`ApiKeyError::InvalidState`],
//! and a key is never replaced twice.

use std::fmt;

use async_trait::async_trait;
use finsec_rbac::PermissionPattern;
use finsec_sql::Backend;
use ipnet::IpNet;
use sqlx::{Pool, Row as _};
use time::OffsetDateTime;

use super::store::check_rotatable;
use super::{
    ApiKeyError, ApiKeyId, ApiKeyRecord, ApiKeyStore, ClientNetworks, Result, SecretHash,
    UsageUpdate,
};

/// Unix time in microseconds.
pub(crate) fn to_micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(|_| ApiKeyError::TimeOutOfRange(t))
}

/// A use count as stored (saturating at `i64::MAX`).
pub(crate) fn count_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A key id as stored: 16 lowercase hex digits.
pub(crate) fn id_to_db(id: &ApiKeyId) -> String {
    id.to_string()
}

/// Scopes as stored: a JSON array of pattern strings.
pub(crate) fn scopes_to_db(scopes: &[PermissionPattern]) -> String {
    let texts: Vec<&str> = scopes.iter().map(PermissionPattern::as_str).collect();
    serde_json::Value::from(texts).to_string()
}

/// Client networks as stored: a JSON array of CIDR strings.
pub(crate) fn networks_to_db(networks: &[IpNet]) -> String {
    let texts: Vec<String> = networks.iter().map(IpNet::to_string).collect();
    serde_json::Value::from(texts).to_string()
}

/// One row as read from the database.
#[derive(Debug)]
pub(crate) struct RawRow {
    pub(crate) key_id: String,
    pub(crate) owner: String,
    pub(crate) scopes: String,
    pub(crate) secret_hash: Vec<u8>,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
    pub(crate) replaced_by: Option<String>,
    pub(crate) last_used_at: Option<i64>,
    pub(crate) use_count: i64,
    pub(crate) networks: String,
}

impl RawRow {
    pub(crate) fn into_record(self) -> Result<ApiKeyRecord> {
        let key_id = self.key_id;
        let corrupt = |detail: &str| ApiKeyError::Corrupt {
            id: key_id.clone(),
            detail: detail.to_owned(),
        };
        let time = |micros: i64| {
            finsec_sql::time::from_micros(micros).map_err(|_| corrupt("timestamp out of range"))
        };
        let opt_time = |micros: Option<i64>| micros.map(time).transpose();
        let id: ApiKeyId = key_id.parse().map_err(|_| corrupt("bad key id"))?;
        let texts: Vec<String> =
            serde_json::from_str(&self.scopes).map_err(|_| corrupt("scopes not a json array"))?;
        let scopes = texts
            .iter()
            .map(|t| PermissionPattern::new(t))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| corrupt("invalid scope pattern"))?;
        let texts: Vec<String> = serde_json::from_str(&self.networks)
            .map_err(|_| corrupt("networks not a json array"))?;
        let networks = texts
            .iter()
            .map(|t| t.parse::<IpNet>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|_| corrupt("invalid client network"))?;
        let hash: [u8; 32] = self
            .secret_hash
            .try_into()
            .map_err(|_| corrupt("secret hash not 32 bytes"))?;
        let replaced_by = self
            .replaced_by
            .map(|s| s.parse::<ApiKeyId>())
            .transpose()
            .map_err(|_| corrupt("bad replaced_by id"))?;
        Ok(ApiKeyRecord {
            id,
            owner: self.owner.into(),
            scopes: scopes.into(),
            secret_hash: SecretHash::from_bytes(hash),
            created_at: time(self.created_at)?,
            expires_at: opt_time(self.expires_at)?,
            revoked_at: opt_time(self.revoked_at)?,
            replaced_by,
            last_used_at: opt_time(self.last_used_at)?,
            use_count: u64::try_from(self.use_count).map_err(|_| corrupt("negative use count"))?,
            networks: ClientNetworks::new(networks),
        })
    }
}

/// The columns every `SELECT` reads, in [`RawRow`] order.
pub(crate) const COLUMNS: &str = "key_id, owner, scopes, secret_hash, created_at, expires_at, \
     revoked_at, replaced_by, last_used_at, use_count, networks";

/// An [`ApiKeyStore`] in SQL, on a pool the caller built: `SqliteApiKeyStore` /
/// `PgApiKeyStore`. Run the crate's `migrate` (`finsec_auth::sqlite::migrate` /
/// `finsec_auth::postgres::migrate`) once before use.
pub struct SqlApiKeyStore<DB: Backend> {
    pool: Pool<DB>,
}

impl<DB: Backend> SqlApiKeyStore<DB> {
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

impl<DB: Backend> Clone for SqlApiKeyStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
        }
    }
}

impl<DB: Backend> fmt::Debug for SqlApiKeyStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlApiKeyStore")
            .field("backend", &DB::LABEL)
            .field("pool", &self.pool)
            .finish()
    }
}

const INSERT: &str = "INSERT INTO finsec_api_keys \
     (key_id, owner, scopes, secret_hash, created_at, expires_at, revoked_at, replaced_by, \
      last_used_at, use_count, networks) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (key_id) DO NOTHING";

const SELECT_BY_ID: &str = "SELECT key_id, owner, scopes, secret_hash, created_at, expires_at, \
     revoked_at, replaced_by, last_used_at, use_count, networks FROM finsec_api_keys \
     WHERE key_id = $1";

/// The trait implementation, expanded once per backend: the same code on a concrete pool
/// type, so none of sqlx's generic bounds need stating.
macro_rules! impl_api_key_store {
    ($db:ty) => {
        impl SqlApiKeyStore<$db> {
            fn raw(row: &<$db as sqlx::Database>::Row) -> Result<ApiKeyRecord> {
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
                    networks: row.try_get("networks")?,
                }
                .into_record()
            }

            async fn insert_on<'e, E>(executor: E, r: &ApiKeyRecord) -> Result<bool>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let done = sqlx::query(INSERT)
                    .bind(id_to_db(&r.id))
                    .bind(&*r.owner)
                    .bind(scopes_to_db(&r.scopes))
                    .bind(r.secret_hash.as_bytes().as_slice())
                    .bind(to_micros(r.created_at)?)
                    .bind(r.expires_at.map(to_micros).transpose()?)
                    .bind(r.revoked_at.map(to_micros).transpose()?)
                    .bind(r.replaced_by.as_ref().map(id_to_db))
                    .bind(r.last_used_at.map(to_micros).transpose()?)
                    .bind(count_to_db(r.use_count))
                    .bind(networks_to_db(&r.networks))
                    .execute(executor)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }

        #[async_trait]
        impl ApiKeyStore for SqlApiKeyStore<$db> {
            async fn insert(&self, record: &ApiKeyRecord) -> Result<()> {
                if Self::insert_on(&self.pool, record).await? {
                    Ok(())
                } else {
                    Err(ApiKeyError::DuplicateId { id: record.id })
                }
            }

            async fn get(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
                let row = sqlx::query(SELECT_BY_ID)
                    .bind(id_to_db(id))
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(Self::raw).transpose()
            }

            async fn list_for_owner(&self, owner: &str) -> Result<Vec<ApiKeyRecord>> {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM finsec_api_keys WHERE owner = $1 \
                     ORDER BY created_at, key_id COLLATE {}",
                    <$db as Backend>::BYTE_COLLATION
                ))
                .bind(owner)
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(Self::raw).collect()
            }

            async fn revoke(&self, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool> {
                let done = sqlx::query(
                    "UPDATE finsec_api_keys SET revoked_at = $2 \
                     WHERE key_id = $1 AND revoked_at IS NULL",
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
                    let row = sqlx::query(SELECT_BY_ID)
                        .bind(id_to_db(old))
                        .fetch_optional(&mut *tx)
                        .await?;
                    tx.rollback().await?;
                    let record = row
                        .as_ref()
                        .map(Self::raw)
                        .transpose()?
                        .ok_or(ApiKeyError::NotFound { id: *old })?;
                    check_rotatable(&record)?;
                    return Err(ApiKeyError::NotFound { id: *old });
                }
                if !Self::insert_on(&mut *tx, new).await? {
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
    };
}

#[cfg(feature = "sqlite")]
impl_api_key_store!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_api_key_store!(sqlx::Postgres);
