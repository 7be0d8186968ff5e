//! [`RoleStore`] on [`SqlStore`]: one SQL text per query for SQLite and PostgreSQL.
//!
//! A grant is one `INSERT ... ON CONFLICT DO NOTHING` and a revocation one `DELETE`, so the
//! affected row count says whether anything changed, also under concurrent calls.

use async_trait::async_trait;
use finsec_rbac::RoleName;
use time::OffsetDateTime;
use uuid::Uuid;

use super::roles::{RoleStore, role_names};
use crate::storage::sql::{ServerDb, SqlStore, StoreResult, to_micros};

const ROLES_OF: &str = "SELECT role FROM server_user_roles WHERE user_id = $1";

const GRANT: &str = "INSERT INTO server_user_roles (user_id, role, granted_at) \
     VALUES ($1, $2, $3) ON CONFLICT (user_id, role) DO NOTHING";

const REVOKE: &str = "DELETE FROM server_user_roles WHERE user_id = $1 AND role = $2";

const SET_DEFAULT_ROLE: &str = "INSERT INTO server_role_settings (id, default_role) \
     VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET default_role = excluded.default_role";

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
        }
    };
}

impl_role_store!(sqlx::Sqlite);
impl_role_store!(sqlx::Postgres);
