//! Revocations and refresh tokens in SQL, written once for SQLite and PostgreSQL (features
//! `sqlite`, `postgres`).
//!
//! Run the crate's `migrate` once at start-up (`finsec_auth::sqlite::migrate` /
//! `finsec_auth::postgres::migrate`; the tokens tables are version 20001). `rotate` is one
//! transaction whose first statement is a conditional `UPDATE ... WHERE used_at IS NULL`,
//! so of concurrent rotations of one token exactly one succeeds; the losers see the token
//! as spent and revoke its family. On SQLite that first write takes the file's write lock;
//! on PostgreSQL it locks the row, and a concurrent rotation re-checks the guard after the
//! first one commits.

use std::fmt;

use async_trait::async_trait;
use finsec_sql::Backend;
use sqlx::{Pool, Row as _};
use time::OffsetDateTime;

use super::store::{NextRefresh, RefreshRecord, RefreshTokenStore, RevocationStore, RotateOutcome};
use super::{Result, TokenError};

fn micros(t: OffsetDateTime) -> Result<i64> {
    finsec_sql::time::to_micros(t).map_err(TokenError::store)
}

fn from_micros(m: i64) -> Result<OffsetDateTime> {
    finsec_sql::time::from_micros(m).map_err(TokenError::store)
}

/// A [`RevocationStore`] in SQL, on a pool the caller built: `SqliteRevocationStore` /
/// `PostgresRevocationStore`. Run the crate's `migrate` once before use.
pub struct SqlRevocationStore<DB: Backend> {
    pool: Pool<DB>,
}

/// A [`RefreshTokenStore`] in SQL, on a pool the caller built: `SqliteRefreshTokenStore` /
/// `PostgresRefreshTokenStore`. Run the crate's `migrate` once before use.
pub struct SqlRefreshTokenStore<DB: Backend> {
    pool: Pool<DB>,
}

crate::sql_store::pool_wrapper!(SqlRevocationStore);
crate::sql_store::pool_wrapper!(SqlRefreshTokenStore);

const INSERT_REFRESH: &str = "INSERT INTO finsec_refresh_tokens \
     (token_hash, family, subject, expires_at) VALUES ($1, $2, $3, $4)";

const REVOKE_FAMILY: &str = "INSERT INTO finsec_refresh_families_revoked (family, revoked_at) \
     VALUES ($1, $2) ON CONFLICT (family) DO NOTHING";

/// The trait implementations, expanded once per backend: the same code on a concrete pool
/// type, so none of sqlx's generic bounds need stating.
macro_rules! impl_token_stores {
    ($db:ty) => {
        #[async_trait]
        impl RevocationStore for SqlRevocationStore<$db> {
            async fn revoke(&self, jti: &str, expires_at: OffsetDateTime) -> Result<()> {
                sqlx::query(
                    "INSERT INTO finsec_revoked_jti (jti, expires_at) VALUES ($1, $2) \
                     ON CONFLICT (jti) DO UPDATE SET expires_at = CASE \
                     WHEN excluded.expires_at > finsec_revoked_jti.expires_at \
                     THEN excluded.expires_at ELSE finsec_revoked_jti.expires_at END",
                )
                .bind(jti)
                .bind(micros(expires_at)?)
                .execute(&self.pool)
                .await
                .map_err(TokenError::store)?;
                Ok(())
            }

            async fn is_revoked(&self, jti: &str, now: OffsetDateTime) -> Result<bool> {
                let row = sqlx::query(
                    "SELECT 1 FROM finsec_revoked_jti WHERE jti = $1 AND expires_at > $2",
                )
                .bind(jti)
                .bind(micros(now)?)
                .fetch_optional(&self.pool)
                .await
                .map_err(TokenError::store)?;
                Ok(row.is_some())
            }

            async fn any_revoked(&self, jtis: &[&str], now: OffsetDateTime) -> Result<bool> {
                match jtis {
                    [] => Ok(false),
                    [jti] => self.is_revoked(jti, now).await,
                    [first, second] => {
                        let row = sqlx::query(
                            "SELECT 1 FROM finsec_revoked_jti \
                             WHERE jti IN ($1, $2) AND expires_at > $3 LIMIT 1",
                        )
                        .bind(*first)
                        .bind(*second)
                        .bind(micros(now)?)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(TokenError::store)?;
                        Ok(row.is_some())
                    }
                    [first, rest @ ..] => Ok(self.is_revoked(first, now).await?
                        || self.any_revoked(rest, now).await?),
                }
            }

            async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
                let done = sqlx::query("DELETE FROM finsec_revoked_jti WHERE expires_at <= $1")
                    .bind(micros(now)?)
                    .execute(&self.pool)
                    .await
                    .map_err(TokenError::store)?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl RefreshTokenStore for SqlRefreshTokenStore<$db> {
            async fn insert(&self, record: RefreshRecord) -> Result<()> {
                sqlx::query(INSERT_REFRESH)
                    .bind(&record.token_hash)
                    .bind(&record.family)
                    .bind(&record.subject)
                    .bind(micros(record.expires_at)?)
                    .execute(&self.pool)
                    .await
                    .map_err(TokenError::store)?;
                Ok(())
            }

            async fn rotate(
                &self,
                token_hash: &str,
                next: NextRefresh,
                now: OffsetDateTime,
            ) -> Result<RotateOutcome> {
                let mut tx = self.pool.begin().await.map_err(TokenError::store)?;
                let spent = sqlx::query(
                    "UPDATE finsec_refresh_tokens SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                     AND family NOT IN (SELECT family FROM finsec_refresh_families_revoked) \
                     RETURNING family, subject, expires_at",
                )
                .bind(token_hash)
                .bind(micros(now)?)
                .fetch_optional(&mut *tx)
                .await
                .map_err(TokenError::store)?;
                if let Some(row) = spent {
                    let family: String = row.try_get("family").map_err(TokenError::store)?;
                    let subject: String = row.try_get("subject").map_err(TokenError::store)?;
                    let expires_at = from_micros(row.try_get("expires_at").map_err(TokenError::store)?)?;
                    sqlx::query(INSERT_REFRESH)
                        .bind(&next.token_hash)
                        .bind(&family)
                        .bind(&subject)
                        .bind(micros(next.expires_at.min(expires_at))?)
                        .execute(&mut *tx)
                        .await
                        .map_err(TokenError::store)?;
                    tx.commit().await.map_err(TokenError::store)?;
                    return Ok(RotateOutcome::Rotated(RefreshRecord {
                        token_hash: token_hash.to_owned(),
                        family,
                        subject,
                        expires_at,
                    }));
                }
                let row = sqlx::query(
                    "SELECT t.family, t.used_at, EXISTS (SELECT 1 FROM \
                     finsec_refresh_families_revoked r WHERE r.family = t.family) AS revoked \
                     FROM finsec_refresh_tokens t WHERE t.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(TokenError::store)?;
                let Some(row) = row else {
                    tx.commit().await.map_err(TokenError::store)?;
                    return Ok(RotateOutcome::Unknown);
                };
                let family: String = row.try_get("family").map_err(TokenError::store)?;
                let used_at: Option<i64> = row.try_get("used_at").map_err(TokenError::store)?;
                let revoked: bool = row.try_get("revoked").map_err(TokenError::store)?;
                let outcome = if revoked {
                    RotateOutcome::FamilyRevoked
                } else if used_at.is_some() {
                    sqlx::query(REVOKE_FAMILY)
                        .bind(&family)
                        .bind(micros(now)?)
                        .execute(&mut *tx)
                        .await
                        .map_err(TokenError::store)?;
                    RotateOutcome::Reused { family }
                } else {
                    RotateOutcome::Expired
                };
                tx.commit().await.map_err(TokenError::store)?;
                Ok(outcome)
            }

            async fn revoke_family(&self, family: &str, at: OffsetDateTime) -> Result<()> {
                sqlx::query(REVOKE_FAMILY)
                    .bind(family)
                    .bind(micros(at)?)
                    .execute(&self.pool)
                    .await
                    .map_err(TokenError::store)?;
                Ok(())
            }
        }
    };
}

#[cfg(feature = "sqlite")]
impl_token_stores!(sqlx::Sqlite);
#[cfg(feature = "postgres")]
impl_token_stores!(sqlx::Postgres);
