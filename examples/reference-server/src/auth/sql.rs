//! The authentication stores ([`UserStore`], [`SessionStore`], [`SecretStore`]) on
//! [`SqlStore`], written once for SQLite and PostgreSQL (see [`crate::storage::sql`]).
//!
//! Times are unix seconds, as the tables (migration 90401) store them. Conditional
//! changes (a pending TOTP secret, an MFA challenge's attempts and use, a re-wrapped
//! value) are one guarded statement each, so of concurrent callers exactly one wins.

use async_trait::async_trait;
use finsec_auth::api_keys::ApiKeyId;
use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::secrets::{SealedColumn, SealedValue, SecretStore, StoredSigningKey};
use super::sessions::{ResetKind, ResetRequest, SessionClient, SessionInfo, SessionStore};
use super::users::{ApiKeyName, StoredName, StoredTotpSecret, User, UserStore, Username};
use crate::storage::sql::{ServerDb, SqlStore, StoreError, StoreResult, is_unique_violation};

const SELECT_USER: &str = "SELECT id, username, password_hash, mfa_enabled FROM server_users";

/// The store code, expanded once per backend: the same code on a concrete pool type.
macro_rules! impl_auth_stores {
    ($db:ty) => {
        impl SqlStore<$db> {
            fn user(row: &<$db as sqlx::Database>::Row) -> StoreResult<User> {
                Ok(User {
                    id: <$db as ServerDb>::read_uuid(row, 0)?,
                    username: row.try_get(1)?,
                    password_hash: row.try_get(2)?,
                    mfa_enabled: row.try_get(3)?,
                })
            }

            /// In one transaction: `guarded` (a statement on `user`'s MFA secret that must
            /// change exactly one row), then `mfa_enabled = enabled`. Nothing is written and
            /// `false` returned when `guarded` changed no row.
            async fn switch_mfa(
                &self,
                guarded: &str,
                user: Uuid,
                enabled: bool,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let mut tx = self.pool().begin().await?;
                let changed = sqlx::query(guarded)
                    .bind(<$db as ServerDb>::uuid(user))
                    .execute(&mut *tx)
                    .await?;
                if changed.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "UPDATE server_users SET mfa_enabled = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(enabled)
                .bind(now.unix_timestamp())
                .bind(<$db as ServerDb>::uuid(user))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }
        }

        #[async_trait]
        impl UserStore for SqlStore<$db> {
            async fn insert_user(
                &self,
                id: Uuid,
                name: &Username,
                password_hash: &str,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO server_users \
                     (id, username, username_key, password_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $5)",
                )
                .bind(<$db as ServerDb>::uuid(id))
                .bind(name.as_str())
                .bind(name.key())
                .bind(password_hash)
                .bind(now.unix_timestamp())
                .execute(self.pool())
                .await;
                match done {
                    Ok(_) => Ok(true),
                    Err(e) if is_unique_violation(&e) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }

            async fn find_by_name(&self, key: &str) -> StoreResult<Option<User>> {
                let row = sqlx::query(&format!("{SELECT_USER} WHERE username_key = $1"))
                    .bind(key)
                    .fetch_optional(self.pool())
                    .await?;
                row.as_ref().map(Self::user).transpose()
            }

            async fn find_by_id(&self, id: Uuid) -> StoreResult<Option<User>> {
                let row = sqlx::query(&format!("{SELECT_USER} WHERE id = $1"))
                    .bind(<$db as ServerDb>::uuid(id))
                    .fetch_optional(self.pool())
                    .await?;
                row.as_ref().map(Self::user).transpose()
            }

            async fn update_password_hash(
                &self,
                id: Uuid,
                password_hash: &str,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE server_users SET password_hash = $1, updated_at = $2 WHERE id = $3",
                )
                .bind(password_hash)
                .bind(now.unix_timestamp())
                .bind(<$db as ServerDb>::uuid(id))
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn put_pending_secret(
                &self,
                user: Uuid,
                sealed: &str,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO server_mfa_secrets (user_id, secret, confirmed, created_at) \
                     VALUES ($1, $2, FALSE, $3) ON CONFLICT (user_id) DO UPDATE \
                     SET secret = excluded.secret, created_at = excluded.created_at \
                     WHERE server_mfa_secrets.confirmed = FALSE",
                )
                .bind(<$db as ServerDb>::uuid(user))
                .bind(sealed)
                .bind(now.unix_timestamp())
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn mfa_secret(&self, user: Uuid) -> StoreResult<Option<StoredTotpSecret>> {
                let row = sqlx::query(
                    "SELECT secret, confirmed FROM server_mfa_secrets WHERE user_id = $1",
                )
                .bind(<$db as ServerDb>::uuid(user))
                .fetch_optional(self.pool())
                .await?;
                row.map(|r| -> StoreResult<_> {
                    Ok(StoredTotpSecret {
                        sealed: r.try_get(0)?,
                        confirmed: r.try_get(1)?,
                    })
                })
                .transpose()
            }

            async fn confirm_mfa(&self, user: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
                // The guarded update comes first: it takes SQLite's write lock at once and
                // locks the row on PostgreSQL, so a concurrent confirmation waits and finds
                // nothing pending.
                self.switch_mfa(
                    "UPDATE server_mfa_secrets SET confirmed = TRUE \
                     WHERE user_id = $1 AND confirmed = FALSE",
                    user,
                    true,
                    now,
                )
                .await
            }

            async fn mfa_failed(&self, user: Uuid) -> StoreResult<u32> {
                let count: i64 = sqlx::query_scalar(
                    "INSERT INTO server_mfa_failures (user_id, failures) VALUES ($1, 1) \
                     ON CONFLICT (user_id) DO UPDATE \
                     SET failures = server_mfa_failures.failures + 1 \
                     RETURNING failures",
                )
                .bind(<$db as ServerDb>::uuid(user))
                .fetch_one(self.pool())
                .await?;
                u32::try_from(count).map_err(|_| StoreError::Corrupt {
                    table: "server_mfa_failures",
                    detail: format!("failures {count}"),
                })
            }

            async fn lock_mfa(&self, user: Uuid, until: OffsetDateTime) -> StoreResult<()> {
                sqlx::query("UPDATE server_mfa_failures SET locked_until = $2 WHERE user_id = $1")
                    .bind(<$db as ServerDb>::uuid(user))
                    .bind(until.unix_timestamp())
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn mfa_locked_until(&self, user: Uuid) -> StoreResult<Option<OffsetDateTime>> {
                let until: Option<Option<i64>> = sqlx::query_scalar(
                    "SELECT locked_until FROM server_mfa_failures WHERE user_id = $1",
                )
                .bind(<$db as ServerDb>::uuid(user))
                .fetch_optional(self.pool())
                .await?;
                until
                    .flatten()
                    .map(|secs| {
                        OffsetDateTime::from_unix_timestamp(secs).map_err(|_| StoreError::Corrupt {
                            table: "server_mfa_failures",
                            detail: "locked_until out of range".to_owned(),
                        })
                    })
                    .transpose()
            }

            async fn mfa_succeeded(&self, user: Uuid) -> StoreResult<()> {
                sqlx::query("DELETE FROM server_mfa_failures WHERE user_id = $1")
                    .bind(<$db as ServerDb>::uuid(user))
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn disable_mfa(&self, user: Uuid, now: OffsetDateTime) -> StoreResult<bool> {
                self.switch_mfa(
                    "DELETE FROM server_mfa_secrets WHERE user_id = $1",
                    user,
                    false,
                    now,
                )
                .await
            }

            async fn insert_key_name(
                &self,
                key_id: &ApiKeyId,
                user: Uuid,
                name: &str,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO server_api_keys (key_id, user_id, name, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING",
                )
                .bind(key_id.to_string())
                .bind(<$db as ServerDb>::uuid(user))
                .bind(name)
                .bind(now.unix_timestamp())
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn key_names(&self, user: Uuid) -> StoreResult<Vec<ApiKeyName>> {
                let rows = sqlx::query(
                    "SELECT key_id, name FROM server_api_keys WHERE user_id = $1 \
                     ORDER BY created_at, key_id",
                )
                .bind(<$db as ServerDb>::uuid(user))
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|r| {
                        let key_id: String = r.try_get(0)?;
                        Ok(ApiKeyName {
                            key_id: key_id.parse().map_err(|_| StoreError::Corrupt {
                                table: "server_api_keys",
                                detail: "a key id is not 16 hex digits".to_owned(),
                            })?,
                            name: r.try_get(1)?,
                        })
                    })
                    .collect()
            }

            async fn stored_names(
                &self,
                after: Option<Uuid>,
                limit: u32,
            ) -> StoreResult<Vec<StoredName>> {
                let rows = match after {
                    Some(after) => {
                        sqlx::query(
                            "SELECT id, username, username_key FROM server_users \
                             WHERE id > $1 ORDER BY id LIMIT $2",
                        )
                        .bind(<$db as ServerDb>::uuid(after))
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await?
                    }
                    None => {
                        sqlx::query(
                            "SELECT id, username, username_key FROM server_users \
                             ORDER BY id LIMIT $1",
                        )
                        .bind(i64::from(limit))
                        .fetch_all(self.pool())
                        .await?
                    }
                };
                rows.iter()
                    .map(|row| {
                        Ok(StoredName {
                            id: <$db as ServerDb>::read_uuid(row, 0)?,
                            name: row.try_get(1)?,
                            key: row.try_get(2)?,
                        })
                    })
                    .collect()
            }

            async fn replace_name(
                &self,
                id: Uuid,
                old: &str,
                name: &str,
                key: &str,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE server_users SET username = $3, username_key = $4 \
                     WHERE id = $1 AND username = $2",
                )
                .bind(<$db as ServerDb>::uuid(id))
                .bind(old)
                .bind(name)
                .bind(key)
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn erase_user(
                &self,
                id: Uuid,
                tombstone: &str,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let mut tx = self.pool().begin().await?;
                let done = sqlx::query(
                    "UPDATE server_users SET username = $2, username_key = $2, \
                     password_hash = '!', mfa_enabled = FALSE, updated_at = $3 WHERE id = $1",
                )
                .bind(<$db as ServerDb>::uuid(id))
                .bind(tombstone)
                .bind(now.unix_timestamp())
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    return Ok(false);
                }
                for table in [
                    "server_mfa_secrets",
                    "server_mfa_challenges",
                    "server_mfa_failures",
                    "server_remembered_devices",
                    "server_account_resets",
                    "server_api_keys",
                ] {
                    sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                        .bind(<$db as ServerDb>::uuid(id))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }
        }

        #[async_trait]
        impl SessionStore for SqlStore<$db> {
            async fn insert_session(
                &self,
                jti: &str,
                family: &str,
                user: Uuid,
                purge_before: OffsetDateTime,
                expires_at: OffsetDateTime,
            ) -> StoreResult<()> {
                sqlx::query("DELETE FROM server_sessions WHERE expires_at < $1")
                    .bind(purge_before.unix_timestamp())
                    .execute(self.pool())
                    .await?;
                sqlx::query(
                    "INSERT INTO server_sessions (access_jti, family, user_id, expires_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(jti)
                .bind(family)
                .bind(user.to_string())
                .bind(expires_at.unix_timestamp())
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn user_families(&self, user: Uuid) -> StoreResult<Vec<String>> {
                Ok(sqlx::query_scalar(
                    "SELECT DISTINCT family FROM server_sessions WHERE user_id = $1 \
                     ORDER BY family",
                )
                .bind(user.to_string())
                .fetch_all(self.pool())
                .await?)
            }

            async fn newest_access_expiry(
                &self,
                family: &str,
            ) -> StoreResult<Option<OffsetDateTime>> {
                let newest: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(expires_at) FROM server_sessions WHERE family = $1",
                )
                .bind(family)
                .fetch_one(self.pool())
                .await?;
                newest
                    .map(|secs| {
                        OffsetDateTime::from_unix_timestamp(secs).map_err(|_| StoreError::Corrupt {
                            table: "server_sessions",
                            detail: "expires_at out of range".to_owned(),
                        })
                    })
                    .transpose()
            }

            async fn session_family(&self, jti: &str) -> StoreResult<Option<String>> {
                Ok(
                    sqlx::query_scalar("SELECT family FROM server_sessions WHERE access_jti = $1")
                        .bind(jti)
                        .fetch_optional(self.pool())
                        .await?,
                )
            }

            async fn touch_session(
                &self,
                family: &str,
                user: Uuid,
                client: &SessionClient,
                now: OffsetDateTime,
                purge_before: OffsetDateTime,
            ) -> StoreResult<()> {
                sqlx::query("DELETE FROM server_session_info WHERE last_used_at < $1")
                    .bind(purge_before.unix_timestamp())
                    .execute(self.pool())
                    .await?;
                let done = sqlx::query(
                    "INSERT INTO server_session_info \
                     (family, user_id, created_at, last_used_at, client_ip, user_agent) \
                     VALUES ($1, $2, $3, $3, $4, $5) \
                     ON CONFLICT (family) DO UPDATE SET \
                     last_used_at = excluded.last_used_at, client_ip = excluded.client_ip, \
                     user_agent = excluded.user_agent \
                     WHERE server_session_info.user_id = excluded.user_id \
                     AND server_session_info.ended_at IS NULL",
                )
                .bind(family)
                .bind(user.to_string())
                .bind(now.unix_timestamp())
                .bind(client.ip.as_deref())
                .bind(client.user_agent.as_deref())
                .execute(self.pool())
                .await?;
                if done.rows_affected() == 0 {
                    let owner: Option<String> = sqlx::query_scalar(
                        "SELECT user_id FROM server_session_info WHERE family = $1",
                    )
                    .bind(family)
                    .fetch_optional(self.pool())
                    .await?;
                    if owner.is_some_and(|o| o != user.to_string()) {
                        return Err(StoreError::Corrupt {
                            table: "server_session_info",
                            detail: "a session recorded for another user".to_owned(),
                        });
                    }
                }
                Ok(())
            }

            async fn list_sessions(
                &self,
                user: Uuid,
                used_since: OffsetDateTime,
                created_since: OffsetDateTime,
            ) -> StoreResult<Vec<SessionInfo>> {
                let rows: Vec<(String, i64, i64, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT family, created_at, last_used_at, client_ip, user_agent \
                         FROM server_session_info WHERE user_id = $1 AND ended_at IS NULL \
                         AND last_used_at >= $2 AND created_at >= $3 \
                         ORDER BY created_at DESC, family",
                )
                .bind(user.to_string())
                .bind(used_since.unix_timestamp())
                .bind(created_since.unix_timestamp())
                .fetch_all(self.pool())
                .await?;
                let time = |secs: i64| {
                    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| StoreError::Corrupt {
                        table: "server_session_info",
                        detail: "a time out of range".to_owned(),
                    })
                };
                rows.into_iter()
                    .map(|(id, created, used, client_ip, user_agent)| {
                        Ok(SessionInfo {
                            id,
                            created_at: time(created)?,
                            last_used_at: time(used)?,
                            client_ip,
                            user_agent,
                        })
                    })
                    .collect()
            }

            async fn end_session(&self, family: &str, now: OffsetDateTime) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE server_session_info SET ended_at = $1 \
                     WHERE family = $2 AND ended_at IS NULL",
                )
                .bind(now.unix_timestamp())
                .bind(family)
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn insert_challenge(
                &self,
                id: &str,
                user: Uuid,
                now: OffsetDateTime,
                expires_at: OffsetDateTime,
            ) -> StoreResult<()> {
                sqlx::query("DELETE FROM server_mfa_challenges WHERE expires_at < $1")
                    .bind(now.unix_timestamp())
                    .execute(self.pool())
                    .await?;
                sqlx::query(
                    "INSERT INTO server_mfa_challenges (id, user_id, expires_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(id)
                .bind(<$db as ServerDb>::uuid(user))
                .bind(expires_at.unix_timestamp())
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn challenge_attempt(
                &self,
                id: &str,
                user: Uuid,
                now: OffsetDateTime,
                max_attempts: u32,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE server_mfa_challenges SET attempts = attempts + 1 \
                     WHERE id = $1 AND user_id = $2 AND used = FALSE AND attempts < $3 \
                     AND expires_at > $4",
                )
                .bind(id)
                .bind(<$db as ServerDb>::uuid(user))
                .bind(i64::from(max_attempts))
                .bind(now.unix_timestamp())
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn challenge_use(&self, id: &str) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE server_mfa_challenges SET used = TRUE WHERE id = $1 AND used = FALSE",
                )
                .bind(id)
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn remember_device(
                &self,
                token_hash: &str,
                user: Uuid,
                now: OffsetDateTime,
                expires_at: OffsetDateTime,
                keep: u32,
            ) -> StoreResult<()> {
                let mut tx = self.pool().begin().await?;
                sqlx::query(
                    "DELETE FROM server_remembered_devices WHERE user_id = $1 AND expires_at <= $2",
                )
                .bind(<$db as ServerDb>::uuid(user))
                .bind(now.unix_timestamp())
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO server_remembered_devices \
                     (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(<$db as ServerDb>::uuid(user))
                .bind(now.unix_timestamp())
                .bind(expires_at.unix_timestamp())
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "DELETE FROM server_remembered_devices WHERE user_id = $1 AND token_hash NOT IN \
                     (SELECT token_hash FROM server_remembered_devices WHERE user_id = $1 \
                      ORDER BY created_at DESC, token_hash DESC LIMIT $2)",
                )
                .bind(<$db as ServerDb>::uuid(user))
                .bind(i64::from(keep))
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn device_owner(
                &self,
                token_hash: &str,
                now: OffsetDateTime,
            ) -> StoreResult<Option<Uuid>> {
                let row = sqlx::query(
                    "SELECT user_id, expires_at FROM server_remembered_devices WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(self.pool())
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let expires: i64 = row.try_get(1)?;
                if expires <= now.unix_timestamp() {
                    return Ok(None);
                }
                Ok(Some(<$db as ServerDb>::read_uuid(&row, 0)?))
            }

            async fn insert_reset(&self, reset: &ResetRequest) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO server_account_resets \
                     (id, user_id, kind, revoke_api_keys, requested_by, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&reset.id)
                .bind(<$db as ServerDb>::uuid(reset.user_id))
                .bind(reset.kind.as_str())
                .bind(reset.revoke_api_keys)
                .bind(<$db as ServerDb>::uuid(reset.requested_by))
                .bind(reset.created_at.unix_timestamp())
                .bind(reset.expires_at.unix_timestamp())
                .execute(self.pool())
                .await?;
                Ok(())
            }

            async fn reset_request(&self, id: &str) -> StoreResult<Option<ResetRequest>> {
                let row = sqlx::query(
                    "SELECT id, user_id, kind, revoke_api_keys, requested_by, created_at, \
                     expires_at, approved_by, approved_at FROM server_account_resets WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let corrupt = |detail: String| StoreError::Corrupt {
                    table: "server_account_resets",
                    detail,
                };
                let time = |secs: i64| {
                    OffsetDateTime::from_unix_timestamp(secs)
                        .map_err(|_| corrupt(format!("time {secs}")))
                };
                let kind: String = row.try_get(2)?;
                let approved: Option<<$db as ServerDb>::Uuid> = row.try_get(7)?;
                let approved_by = match approved {
                    Some(_) => Some(<$db as ServerDb>::read_uuid(&row, 7)?),
                    None => None,
                };
                let approved_at: Option<i64> = row.try_get(8)?;
                Ok(Some(ResetRequest {
                    id: row.try_get(0)?,
                    user_id: <$db as ServerDb>::read_uuid(&row, 1)?,
                    kind: ResetKind::parse(&kind).ok_or_else(|| corrupt(format!("kind {kind}")))?,
                    revoke_api_keys: row.try_get(3)?,
                    requested_by: <$db as ServerDb>::read_uuid(&row, 4)?,
                    created_at: time(row.try_get(5)?)?,
                    expires_at: time(row.try_get(6)?)?,
                    approved_by,
                    approved_at: approved_at.map(time).transpose()?,
                }))
            }

            async fn approve_reset(
                &self,
                id: &str,
                approver: Uuid,
                now: OffsetDateTime,
                token: Option<(&str, OffsetDateTime)>,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE server_account_resets SET approved_by = $2, approved_at = $3, \
                     token_hash = $4, token_expires_at = $5 \
                     WHERE id = $1 AND approved_at IS NULL AND expires_at > $3 \
                     AND requested_by <> $2 AND user_id <> $2",
                )
                .bind(id)
                .bind(<$db as ServerDb>::uuid(approver))
                .bind(now.unix_timestamp())
                .bind(token.map(|(hash, _)| hash))
                .bind(token.map(|(_, expires)| expires.unix_timestamp()))
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn use_reset_token(
                &self,
                token_hash: &str,
                now: OffsetDateTime,
            ) -> StoreResult<Option<Uuid>> {
                let row = sqlx::query(
                    "UPDATE server_account_resets SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND token_expires_at > $2 \
                     RETURNING user_id",
                )
                .bind(token_hash)
                .bind(now.unix_timestamp())
                .fetch_optional(self.pool())
                .await?;
                row.map(|row| <$db as ServerDb>::read_uuid(&row, 0))
                    .transpose()
                    .map_err(Into::into)
            }

            async fn forget_devices(&self, user: Uuid) -> StoreResult<u64> {
                let done = sqlx::query("DELETE FROM server_remembered_devices WHERE user_id = $1")
                    .bind(<$db as ServerDb>::uuid(user))
                    .execute(self.pool())
                    .await?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl SecretStore for SqlStore<$db> {
            async fn insert_signing_key(
                &self,
                kid: &str,
                sealed_seed: &str,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO server_jwt_keys (kid, seed, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (kid) DO NOTHING",
                )
                .bind(kid)
                .bind(sealed_seed)
                .bind(now.unix_timestamp())
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
                let rows = sqlx::query(
                    "SELECT kid, seed FROM server_jwt_keys WHERE retired_at IS NULL \
                     ORDER BY created_at, kid",
                )
                .fetch_all(self.pool())
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(StoredSigningKey {
                            kid: r.try_get(0)?,
                            sealed_seed: r.try_get(1)?,
                        })
                    })
                    .collect()
            }

            async fn insert_secret(
                &self,
                name: &str,
                sealed: &str,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(sealed)
                .bind(now.unix_timestamp())
                .execute(self.pool())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn secret(&self, name: &str) -> StoreResult<Option<String>> {
                Ok(
                    sqlx::query_scalar("SELECT value FROM server_secrets WHERE name = $1")
                        .bind(name)
                        .fetch_optional(self.pool())
                        .await?,
                )
            }

            async fn sealed_values(&self) -> StoreResult<Vec<SealedValue>> {
                let mut values = Vec::new();
                for column in SealedColumn::ALL {
                    let rows = sqlx::query(match column {
                        SealedColumn::JwtKeySeed => "SELECT kid, seed FROM server_jwt_keys",
                        SealedColumn::ServerSecret => "SELECT name, value FROM server_secrets",
                        SealedColumn::TotpSecret => {
                            "SELECT user_id, secret FROM server_mfa_secrets"
                        }
                    })
                    .fetch_all(self.pool())
                    .await?;
                    for row in &rows {
                        let key = match column {
                            SealedColumn::TotpSecret => <$db as ServerDb>::read_uuid(row, 0)?
                                .hyphenated()
                                .to_string(),
                            SealedColumn::JwtKeySeed | SealedColumn::ServerSecret => {
                                row.try_get(0)?
                            }
                        };
                        values.push(SealedValue {
                            column,
                            key,
                            sealed: row.try_get(1)?,
                        });
                    }
                }
                Ok(values)
            }

            async fn replace_sealed(
                &self,
                column: SealedColumn,
                key: &str,
                old: &str,
                new: &str,
            ) -> StoreResult<bool> {
                let query = match column {
                    SealedColumn::JwtKeySeed => sqlx::query(
                        "UPDATE server_jwt_keys SET seed = $1 WHERE kid = $2 AND seed = $3",
                    )
                    .bind(new)
                    .bind(key),
                    SealedColumn::ServerSecret => sqlx::query(
                        "UPDATE server_secrets SET value = $1 WHERE name = $2 AND value = $3",
                    )
                    .bind(new)
                    .bind(key),
                    SealedColumn::TotpSecret => {
                        let Ok(user) = Uuid::parse_str(key) else {
                            return Ok(false);
                        };
                        sqlx::query(
                            "UPDATE server_mfa_secrets SET secret = $1 \
                             WHERE user_id = $2 AND secret = $3",
                        )
                        .bind(new)
                        .bind(<$db as ServerDb>::uuid(user))
                    }
                };
                let done = query.bind(old).execute(self.pool()).await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

impl_auth_stores!(sqlx::Sqlite);
impl_auth_stores!(sqlx::Postgres);
