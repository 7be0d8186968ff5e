//! Failed-login lockout over HTTP: `GET` and `DELETE /admin/users/{user_id}/lockout`.
//!
//! An account with [`--login-recovery-after`](super::AuthConfig::login_recovery_after)
//! failed logins in a row (100 by default) refuses logins from devices without a
//! remembered-device token until it is recovered: by a login from such a device, or here by
//! an administrator holding [`USERS_ADMIN`] (admin's `*`) with a recent login (step-up; API
//! keys are refused). Unlocking clears the account's count, and with it any wait; it is an
//! audit event (`user.unlock`). Operators keep the `users unlock` subcommand.

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use finsec_audit::Outcome;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::layer::{AuditNotes, Note};
use crate::auth::extract::Principal;
use crate::http::path::Path;
use crate::problem::Problem;
use crate::ratelimit::account_key;
use crate::rbac::admin::{internal, require_permission, require_permission_now};
use crate::rbac::{Actor, USERS_ADMIN};
use crate::state::AppState;

/// The lockout routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(lockout_status, unlock))
}

/// An account's failed-login state.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockoutState {
    /// Failed logins in a row (from devices without a remembered-device token and with).
    pub failures: u32,
    /// Until when devices without a remembered-device token wait (RFC 3339), if they do now.
    pub blocked_until: Option<String>,
    /// Whether the account refuses such devices until recovered.
    pub recovery_required: bool,
}

/// The username of user `id`; 404 if there is none.
async fn username_of(state: &AppState, id: Uuid) -> Result<String, Problem> {
    match state.storage().stores().users.find_by_id(id).await {
        Ok(Some(user)) => Ok(user.username),
        Ok(None) => Err(Problem::not_found("no user has this id")),
        Err(e) => Err(internal("reading a user", &e)),
    }
}

/// A user's failed-login state (admin).
#[utoipa::path(
    get,
    path = "/admin/users/{user_id}/lockout",
    tag = "auth",
    params(("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)")),
    responses(
        (status = 200, description = "The account's failed-login state", body = LockoutState),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Not allowed to administer users", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn lockout_status(
    State(state): State<AppState>,
    actor: Actor,
    Path(user_id): Path<Uuid>,
) -> Result<Json<LockoutState>, Problem> {
    require_permission(&state, &actor, USERS_ADMIN).await?;
    let name = username_of(&state, user_id).await?;
    let status = state
        .auth()
        .lockout()
        .status(&account_key(&name), OffsetDateTime::now_utc())
        .await
        .map_err(|e| internal("reading failed logins", &e))?;
    Ok(Json(LockoutState {
        failures: status.failures,
        blocked_until: status
            .blocked_until
            .map(|t| t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())),
        recovery_required: status.recovery_required,
    }))
}

/// Recovers an account after failed logins: clears its count, any wait and the recovery
/// lock (admin, recent login).
#[utoipa::path(
    delete,
    path = "/admin/users/{user_id}/lockout",
    tag = "auth",
    params(("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)")),
    responses(
        (status = 204, description = "Unlocked (also when nothing was counted)"),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer users, or an API key was used", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn unlock(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(user_id): Path<Uuid>,
) -> Result<StatusCode, Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        USERS_ADMIN,
        "user.unlock",
    )
    .await?;
    let name = username_of(&state, user_id).await?;
    let had = state
        .auth()
        .lockout()
        .recover(&account_key(&name))
        .await
        .map_err(|e| internal("clearing failed logins", &e))?;
    notes.note(
        Note::new("user.unlock", Outcome::Success)
            .resource("user", user_id)
            .detail("had_failures", had),
    );
    tracing::info!(user = %user_id, by = %principal.user_id, had, "account unlocked");
    Ok(StatusCode::NO_CONTENT)
}

/// Failed-login operations for operators, on the same database as a running server.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum UsersCommand {
    /// Print a user's failed-login state.
    Lockout {
        /// The user's name.
        username: String,
    },
    /// Recover a user's account after failed logins (clears the count, any wait and the
    /// recovery lock).
    Unlock {
        /// The user's name.
        username: String,
    },
}

/// Runs a `users` subcommand, printing its result to `out`.
///
/// # Errors
/// An unknown user, bad lockout settings, the database, or writing to `out`.
pub async fn run_command(
    config: &crate::config::Config,
    command: &UsersCommand,
    out: &mut dyn std::io::Write,
) -> crate::error::Result<()> {
    let storage = crate::storage::Storage::open(config).await?;
    let result = run_on(config, &storage, command, out).await;
    storage.close().await;
    result
}

async fn run_on(
    config: &crate::config::Config,
    storage: &crate::storage::Storage,
    command: &UsersCommand,
    out: &mut dyn std::io::Write,
) -> crate::error::Result<()> {
    use crate::error::ServerError;
    crate::capabilities::migrate(storage).await?;
    let stores = storage.stores();
    let lockout = finsec_auth::lockout::Lockout::new(
        std::sync::Arc::clone(&stores.crates.login_failures),
        config.auth.lockout_policy()?,
    );
    let (UsersCommand::Lockout { username } | UsersCommand::Unlock { username }) = command;
    let name = super::users::Username::parse(username)
        .map_err(|e| ServerError::Config(format!("invalid username: {e}")))?;
    let user = stores
        .users
        .find_by_name(name.key())
        .await?
        .ok_or_else(|| ServerError::Config(format!("no user named {username:?}")))?;
    let account = account_key(&user.username);
    let failed = |e: finsec_auth::lockout::LockoutError| ServerError::Storage {
        backend: storage.backend().as_str(),
        target: "finsec_login_failures".to_owned(),
        source: Box::new(e),
    };
    let text = match command {
        UsersCommand::Lockout { .. } => {
            let status = lockout
                .status(&account, OffsetDateTime::now_utc())
                .await
                .map_err(failed)?;
            let until = status.blocked_until.map_or_else(
                || "-".to_owned(),
                |t| t.format(&Rfc3339).unwrap_or_else(|_| t.to_string()),
            );
            format!(
                "{username}: {} failed logins in a row, waiting until {until}, recovery required: {}",
                status.failures, status.recovery_required
            )
        }
        UsersCommand::Unlock { .. } => {
            let had = lockout.recover(&account).await.map_err(failed)?;
            let user_id = user.id.to_string();
            crate::audit::record_command(
                storage,
                "user.unlock",
                ("user", user_id.as_str()),
                &[("had_failures", if had { "true" } else { "false" })],
            )
            .await?;
            if had {
                format!("unlocked {username}")
            } else {
                format!("{username} had no failed logins counted")
            }
        }
    };
    writeln!(out, "{text}").map_err(|e| ServerError::io("cannot write to", "standard output", e))
}
