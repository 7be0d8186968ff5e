//! [`RoleStore`] on [`SqlStore`]: one SQL text per query for SQLite and PostgreSQL.
//!
//! A grant is one `INSERT ... ON CONFLICT DO NOTHING` and a revocation one `DELETE`, so the
//! affected row count says whether anything changed, also under concurrent calls.

use async_trait::async_trait;
use finsec_rbac::RoleName;
use sqlx::Row as _;
use time::OffsetDateTime;
use uuid::Uuid;

use super::roles::{GrantRequest, RoleStore, role_names};
use crate::storage::sql::{ServerDb, SqlStore, StoreError, StoreResult, from_micros, to_micros};

const ROLES_OF: &str = "SELECT role FROM server_user_roles WHERE user_id = $1";

const GRANT: &str = "INSERT INTO server_user_roles (user_id, role, granted_at) \
     VALUES ($1, $2, $3) ON CONFLICT (user_id, role) DO NOTHING";

const REVOKE: &str = "DELETE FROM server_user_roles WHERE user_id = $1 AND role = $2";

const SET_DEFAULT_ROLE: &str = "INSERT INTO server_role_settings (id, default_role) \
     VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET default_role = excluded.default_role";

const REQUEST_GRANT: &str = "INSERT INTO server_role_grant_requests \
     (id, user_id, role, requested_by, requested_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

const GRANT_REQUEST: &str = "SELECT id, user_id, role, requested_by, requested_at, \
     expires_at, approved_by, approved_at FROM server_role_grant_requests WHERE id = $1";

/// Approves a pending, unexpired request; the affected row count says whether this call did.
const APPROVE_GRANT: &str = "UPDATE server_role_grant_requests \
     SET approved_by = $2, approved_at = $3 \
     WHERE id = $1 AND approved_at IS NULL AND expires_at > $3";

/// Gives the approved request's role (a role the user holds already stays as it was).
const GRANT_APPROVED: &str = "INSERT INTO server_user_roles (user_id, role, granted_at) \
     SELECT user_id, role, $2 FROM server_role_grant_requests WHERE id = $1 \
     ON CONFLICT (user_id, role) DO NOTHING";

const GRANT_TABLE: &str = "server_role_grant_requests";

/// The trait implementation, expanded once per backend.
macro_rules! impl_role_store {
    ($db:ty) => {
        #[async_trait]
        impl RoleStore for SqlStore<$db> {
            async fn roles_of(&self, user_id: Uuid) -> StoreResult<Vec<RoleName>> {
                let names: Vec<String> = sqlx::query_scalar(ROLES_OF)
                    .bind(<$db as ServerDb>::uuid(user_id))
                    .fetch_all(self.pool())
                    .await?;
                role_names(names)
            }

            async fn grant(
                &self,
                user_id: Uuid,
                role: &RoleName,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let done = sqlx::query(GRANT)
                    .bind(<$db as ServerDb>::uuid(user_id))
                    .bind(role.as_str())
                    .bind(to_micros(now)?)
                    .execute(self.pool())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn revoke(&self, user_id: Uuid, role: &RoleName) -> StoreResult<bool> {
                let done = sqlx::query(REVOKE)
                    .bind(<$db as ServerDb>::uuid(user_id))
                    .bind(role.as_str())
                    .execute(self.pool())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn set_default_role(&self, role: &RoleName) -> StoreResult<()> {
                sqlx::query(SET_DEFAULT_ROLE)
                    .bind(role.as_str())
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn request_grant(&self, request: &GrantRequest) -> StoreResult<()> {
                sqlx::query(REQUEST_GRANT)
                    .bind(<$db as ServerDb>::uuid(request.id))
                    .bind(<$db as ServerDb>::uuid(request.user))
                    .bind(request.role.as_str())
                    .bind(<$db as ServerDb>::uuid(request.requested_by))
                    .bind(to_micros(request.requested_at)?)
                    .bind(to_micros(request.expires_at)?)
                    .execute(self.pool())
                    .await?;
                Ok(())
            }

            async fn grant_request(&self, id: Uuid) -> StoreResult<Option<GrantRequest>> {
                let Some(row) = sqlx::query(GRANT_REQUEST)
                    .bind(<$db as ServerDb>::uuid(id))
                    .fetch_optional(self.pool())
                    .await?
                else {
                    return Ok(None);
                };
                let role: String = row.try_get(2)?;
                let role = RoleName::new(&role).map_err(|e| StoreError::Corrupt {
                    table: GRANT_TABLE,
                    detail: format!("invalid role name: {e}"),
                })?;
                let approved_by: Option<<$db as ServerDb>::Uuid> = row.try_get(6)?;
                let approved_at: Option<i64> = row.try_get(7)?;
                let approved = match approved_at {
                    Some(at) => Some((
                        match approved_by {
                            Some(_) => Some(<$db as ServerDb>::read_uuid(&row, 6)?),
                            None => None,
                        },
                        from_micros(GRANT_TABLE, at)?,
                    )),
                    None => None,
                };
                Ok(Some(GrantRequest {
                    id: <$db as ServerDb>::read_uuid(&row, 0)?,
                    user: <$db as ServerDb>::read_uuid(&row, 1)?,
                    role,
                    requested_by: <$db as ServerDb>::read_uuid(&row, 3)?,
                    requested_at: from_micros(GRANT_TABLE, row.try_get(4)?)?,
                    expires_at: from_micros(GRANT_TABLE, row.try_get(5)?)?,
                    approved,
                }))
            }

            async fn approve_grant(
                &self,
                id: Uuid,
                approver: Uuid,
                now: OffsetDateTime,
            ) -> StoreResult<bool> {
                let now = to_micros(now)?;
                let mut tx = self.pool().begin().await?;
                let approved = sqlx::query(APPROVE_GRANT)
                    .bind(<$db as ServerDb>::uuid(id))
                    .bind(<$db as ServerDb>::uuid(approver))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                if approved.rows_affected() != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(GRANT_APPROVED)
                    .bind(<$db as ServerDb>::uuid(id))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

impl_role_store!(sqlx::Sqlite);
impl_role_store!(sqlx::Postgres);
