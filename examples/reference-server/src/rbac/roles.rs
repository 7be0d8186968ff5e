//! Users' roles (`server_user_roles`) and the `roles` operator subcommands.
//!
//! A user holds any number of roles, one row each. The server reads them on every request,
//! so `roles grant` and `roles revoke` take effect on the next request, also while the
//! server runs. The subcommands refuse to grant a role the policy does not define (it would
//! deny the user everything); revoking one is allowed, to clean up after a policy change.
//!
//! New users get the default role through a trigger on `server_users`: it copies the role
//! in `server_role_settings` (one row, written at start-up from `--default-role`) into
//! `server_user_roles` in the transaction that creates the user, so there is no moment at
//! which a user exists without it. Several instances sharing a database should use the same
//! `--default-role`; the last one started wins.

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use async_trait::async_trait;
use clap::Subcommand;
use finsec_rbac::{Policy, RoleName};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::users::{self, Username};
use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::storage::Storage;
use crate::storage::sql::{StoreError, StoreResult};

/// Role operations for operators, on the same database as a running server.
#[derive(Debug, Clone, Subcommand)]
pub enum RolesCommand {
    /// Give a user a role (it must be defined in the policy).
    Grant {
        /// The user's name.
        username: String,
        /// The role.
        #[arg(value_parser = parse_role)]
        role: RoleName,
    },
    /// Take a role away from a user.
    Revoke {
        /// The user's name.
        username: String,
        /// The role.
        #[arg(value_parser = parse_role)]
        role: RoleName,
    },
    /// Print a user's roles, one per line.
    List {
        /// The user's name.
        username: String,
    },
}

fn parse_role(s: &str) -> std::result::Result<RoleName, String> {
    RoleName::new(s).map_err(|e| e.to_string())
}

/// Users' roles and the default role of new users, on the server's database
/// (`server_user_roles`, `server_role_settings`). Implemented by
/// [`SqlStore`](crate::storage::sql::SqlStore) on SQLite and PostgreSQL.
#[async_trait]
pub trait RoleStore: fmt::Debug + Send + Sync + 'static {
    /// The roles of user `user_id`, sorted by name (byte order, the same on both
    /// databases); empty if the user has none or does not exist.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] if a stored role is not a valid
    /// role name (the table's `CHECK` prevents it).
    async fn roles_of(&self, user_id: Uuid) -> StoreResult<Vec<RoleName>>;

    /// Gives `role` to user `user_id` at `now`: `true` if it was added, `false` if the user
    /// had it already (also when two grants race: exactly one returns `true`).
    ///
    /// # Errors
    /// [`StoreError::Database`], also when the user does not exist (foreign key);
    /// [`StoreError::TimeOutOfRange`] if `now` cannot be stored.
    async fn grant(&self, user_id: Uuid, role: &RoleName, now: OffsetDateTime)
    -> StoreResult<bool>;

    /// Takes `role` away from user `user_id`: `true` if it was removed, `false` if the user
    /// did not have it (or does not exist).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn revoke(&self, user_id: Uuid, role: &RoleName) -> StoreResult<bool>;

    /// Sets the role new users get (copied by the trigger on `server_users` in the
    /// transaction that creates a user), replacing the previous one. Existing users keep
    /// their roles.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    async fn set_default_role(&self, role: &RoleName) -> StoreResult<()>;

    /// Stores a new request to give a role (see [`GrantRequest`]).
    ///
    /// # Errors
    /// [`StoreError::Database`], also when a user does not exist (foreign key);
    /// [`StoreError::TimeOutOfRange`].
    async fn request_grant(&self, request: &GrantRequest) -> StoreResult<()>;

    /// The grant request `id`, if there is one.
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::Corrupt`] if a stored row does not decode.
    async fn grant_request(&self, id: Uuid) -> StoreResult<Option<GrantRequest>>;

    /// Approves grant request `id` by `approver` at `now` and gives its role, in one
    /// transaction: `true` if this call approved it; `false` if it was approved already
    /// or expired at `now` (of concurrent approvals, exactly one returns `true`).
    ///
    /// # Errors
    /// [`StoreError::Database`]; [`StoreError::TimeOutOfRange`].
    async fn approve_grant(
        &self,
        id: Uuid,
        approver: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<bool>;
}

/// A request to give `user` the role `role`, made by `requested_by`; it takes effect when
/// a second person approves it before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRequest {
    /// The request id.
    pub id: Uuid,
    /// Who gets the role.
    pub user: Uuid,
    /// The role.
    pub role: RoleName,
    /// Who asked.
    pub requested_by: Uuid,
    /// When.
    pub requested_at: OffsetDateTime,
    /// When it can no longer be approved.
    pub expires_at: OffsetDateTime,
    /// Who approved it, and when (`None` while pending, or if the approver's account was
    /// deleted since).
    pub approved: Option<(Option<Uuid>, OffsetDateTime)>,
}

/// Stored role names as [`RoleName`]s, sorted by name (byte order, whatever the database's
/// collation).
///
/// # Errors
/// [`StoreError::Corrupt`] naming the first text that is not a valid role name.
pub(crate) fn role_names(mut names: Vec<String>) -> StoreResult<Vec<RoleName>> {
    names.sort_unstable();
    names
        .iter()
        .map(|name| {
            RoleName::new(name).map_err(|e| StoreError::Corrupt {
                table: "server_user_roles",
                detail: format!("invalid role name: {e}"),
            })
        })
        .collect()
}

fn db_error<E>(storage: &Storage) -> impl Fn(E) -> ServerError + '_
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |source| ServerError::Storage {
        backend: storage.backend().as_str(),
        target: "server_user_roles".to_owned(),
        source: Box::new(source),
    }
}

/// Runs a `roles` subcommand, printing its result to `out`.
///
/// # Errors
/// No policy file (the server has not started yet), an unknown user, a role the policy
/// does not define (for `grant`), the database, or writing to `out`.
pub async fn run_command(
    config: &Config,
    command: &RolesCommand,
    out: &mut dyn Write,
) -> Result<()> {
    let path = config.rbac.policy_path(config.data_dir());
    if !path.exists() {
        return Err(ServerError::Config(format!(
            "no rbac policy at {}; start the server once to create it, or point \
             --rbac-policy at the server's policy",
            path.display()
        )));
    }
    let policy = super::load_policy(&path)?;
    let storage = Storage::open(config).await?;
    let result = run_on(config, &storage, &policy, command, out).await;
    storage.close().await;
    result
}

async fn run_on(
    config: &Config,
    storage: &Storage,
    policy: &Policy,
    command: &RolesCommand,
    out: &mut dyn Write,
) -> Result<()> {
    crate::capabilities::migrate(storage).await?;
    let store = storage.stores().roles;
    let sealed_users = crate::gdpr::sealing::command_users(config, storage).await?;
    let user = |username: &str| {
        let username = username.to_owned();
        let sealed_users = Arc::clone(&sealed_users);
        async move {
            let name = Username::parse(&username)
                .map_err(|e| ServerError::Config(format!("invalid username: {e}")))?;
            let user = users::UserStore::find_by_name(&*sealed_users, name.key())
                .await?
                .ok_or_else(|| ServerError::Config(format!("no user named {username:?}")))?;
            Ok::<_, ServerError>(user.id)
        }
    };
    match command {
        RolesCommand::Grant { username, role } => {
            if policy.role(role.as_str()).is_none() {
                return Err(ServerError::Config(format!(
                    "role {role} is not defined in the rbac policy; defined roles: {}",
                    defined(policy)
                )));
            }
            let id = user(username).await?;
            let new = store
                .grant(id, role, OffsetDateTime::now_utc())
                .await
                .map_err(db_error(storage))?;
            if new {
                let user_id = id.to_string();
                crate::audit::record_command(
                    storage,
                    "role.grant",
                    ("user", user_id.as_str()),
                    &[("role", role.as_str())],
                )
                .await?;
            }
            let text = if new {
                format!("granted {role} to {username}")
            } else {
                format!("{username} already has {role}")
            };
            writeln!(out, "{text}").map_err(stdout_error)
        }
        RolesCommand::Revoke { username, role } => {
            let id = user(username).await?;
            let removed = store.revoke(id, role).await.map_err(db_error(storage))?;
            if removed {
                let user_id = id.to_string();
                crate::audit::record_command(
                    storage,
                    "role.revoke",
                    ("user", user_id.as_str()),
                    &[("role", role.as_str())],
                )
                .await?;
            }
            let text = if removed {
                format!("revoked {role} from {username}")
            } else {
                format!("{username} does not have {role}")
            };
            writeln!(out, "{text}").map_err(stdout_error)
        }
        RolesCommand::List { username } => {
            let id = user(username).await?;
            let roles = store.roles_of(id).await.map_err(db_error(storage))?;
            for role in roles {
                if policy.role(role.as_str()).is_some() {
                    writeln!(out, "{role}")
                } else {
                    writeln!(out, "{role} (not defined in the policy: denies everything)")
                }
                .map_err(stdout_error)?;
            }
            Ok(())
        }
    }
}

fn defined(policy: &Policy) -> String {
    policy
        .roles()
        .iter()
        .map(|r| r.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn stdout_error(e: io::Error) -> ServerError {
    ServerError::io("cannot write to", "standard output", e)
}
