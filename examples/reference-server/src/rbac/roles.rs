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

use std::io::{self, Write};

use clap::Subcommand;
use finsec_rbac::{Policy, RoleName};
use time::OffsetDateTime;

use crate::auth::users::{self, Username};
use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::orders::store::to_micros;
use crate::storage::Storage;

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

/// The roles table on the server's database.
#[derive(Debug, Clone)]
pub struct RoleStore {
    storage: Storage,
}

impl RoleStore {
    /// The store on `storage` (migrated at start-up).
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// The roles of user `user_id`, sorted by name.
    ///
    /// # Errors
    /// The database error; a stored role that is not a valid role name (the table's
    /// `CHECK` prevents it) is a decode error.
    pub async fn roles_of(&self, user_id: &str) -> Result<Vec<RoleName>, sqlx::Error> {
        let names: Vec<String> = match &self.storage {
            Storage::Sqlite(pool) => {
                sqlx::query_scalar(
                    "SELECT role FROM server_user_roles WHERE user_id = ?1 ORDER BY role",
                )
                .bind(user_id)
                .fetch_all(pool)
                .await?
            }
            Storage::Postgres(pool) => {
                sqlx::query_scalar(
                    "SELECT role FROM server_user_roles WHERE user_id = $1::uuid ORDER BY role",
                )
                .bind(user_id)
                .fetch_all(pool)
                .await?
            }
        };
        names
            .iter()
            .map(|n| RoleName::new(n).map_err(|e| sqlx::Error::Decode(Box::new(e))))
            .collect()
    }

    /// Gives `role` to user `user_id` at `now`; `false` if the user had it already.
    ///
    /// # Errors
    /// The database error (also when the user does not exist: foreign key).
    pub async fn grant(
        &self,
        user_id: &str,
        role: &RoleName,
        now: OffsetDateTime,
    ) -> Result<bool, sqlx::Error> {
        let at = to_micros(now);
        let done = match &self.storage {
            Storage::Sqlite(pool) => sqlx::query(
                "INSERT INTO server_user_roles (user_id, role, granted_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (user_id, role) DO NOTHING",
            )
            .bind(user_id)
            .bind(role.as_str())
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected(),
            Storage::Postgres(pool) => sqlx::query(
                "INSERT INTO server_user_roles (user_id, role, granted_at) \
                 VALUES ($1::uuid, $2, $3) ON CONFLICT (user_id, role) DO NOTHING",
            )
            .bind(user_id)
            .bind(role.as_str())
            .bind(at)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(done == 1)
    }

    /// Takes `role` away from user `user_id`; `false` if the user did not have it.
    ///
    /// # Errors
    /// The database error.
    pub async fn revoke(&self, user_id: &str, role: &RoleName) -> Result<bool, sqlx::Error> {
        let done = match &self.storage {
            Storage::Sqlite(pool) => {
                sqlx::query("DELETE FROM server_user_roles WHERE user_id = ?1 AND role = ?2")
                    .bind(user_id)
                    .bind(role.as_str())
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
            Storage::Postgres(pool) => {
                sqlx::query("DELETE FROM server_user_roles WHERE user_id = $1::uuid AND role = $2")
                    .bind(user_id)
                    .bind(role.as_str())
                    .execute(pool)
                    .await?
                    .rows_affected()
            }
        };
        Ok(done == 1)
    }

    /// Sets the role the trigger gives new users.
    ///
    /// # Errors
    /// The database error.
    pub async fn set_default_role(&self, role: &RoleName) -> Result<(), sqlx::Error> {
        match &self.storage {
            Storage::Sqlite(pool) => {
                sqlx::query(
                    "INSERT INTO server_role_settings (id, default_role) VALUES (1, ?1) \
                     ON CONFLICT (id) DO UPDATE SET default_role = excluded.default_role",
                )
                .bind(role.as_str())
                .execute(pool)
                .await?;
            }
            Storage::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO server_role_settings (id, default_role) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET default_role = excluded.default_role",
                )
                .bind(role.as_str())
                .execute(pool)
                .await?;
            }
        }
        Ok(())
    }
}

fn db_error(storage: &Storage) -> impl Fn(sqlx::Error) -> ServerError + '_ {
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
    let result = run_on(&storage, &policy, command, out).await;
    storage.close().await;
    result
}

async fn run_on(
    storage: &Storage,
    policy: &Policy,
    command: &RolesCommand,
    out: &mut dyn Write,
) -> Result<()> {
    crate::capabilities::migrate(storage).await?;
    let store = RoleStore::new(storage.clone());
    let user = |username: &str| {
        let username = username.to_owned();
        async move {
            let name = Username::parse(&username)
                .map_err(|e| ServerError::Config(format!("invalid username: {e}")))?;
            let user = users::UserStore::find_by_name(&*storage.stores().users, name.key())
                .await?
                .ok_or_else(|| ServerError::Config(format!("no user named {username:?}")))?;
            Ok::<_, ServerError>(user.id.hyphenated().to_string())
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
                .grant(&id, role, OffsetDateTime::now_utc())
                .await
                .map_err(db_error(storage))?;
            let text = if new {
                format!("granted {role} to {username}")
            } else {
                format!("{username} already has {role}")
            };
            writeln!(out, "{text}").map_err(stdout_error)
        }
        RolesCommand::Revoke { username, role } => {
            let id = user(username).await?;
            let removed = store.revoke(&id, role).await.map_err(db_error(storage))?;
            let text = if removed {
                format!("revoked {role} from {username}")
            } else {
                format!("{username} does not have {role}")
            };
            writeln!(out, "{text}").map_err(stdout_error)
        }
        RolesCommand::List { username } => {
            let id = user(username).await?;
            let roles = store.roles_of(&id).await.map_err(db_error(storage))?;
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
