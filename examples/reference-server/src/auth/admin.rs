//! Failed-login lockout over HTTP: `GET` and `DELETE /admin/users/{user_id}/lockout`.
//!
//! An account with [`--login-recovery-after`](super::AuthConfig::login_recovery_after)
//! failed logins in a row (100 by default) refuses logins from devices without a
//! remembered-device token until it is recovered: by a login from such a device, or here by
//! an administrator holding [`USERS_ADMIN`] (admin's `*`) with a recent login (step-up; API
//! keys are refused). Unlocking clears the account's count, and with it any wait; it is an
//! audit event (`user.unlock`). Operators keep the `users unlock` subcommand.
//!
//! **Resets under four eyes.** `POST /admin/users/{user_id}/resets` asks for the user's
//! password or second factor to be reset; a second admin approves it within
//! [`RESET_REQUEST_TTL_HOURS`] hours at `POST /admin/resets/{id}/approve` (never the asker,
//! never the user: 403 `self_approval`). Only then is it done, and in both cases every
//! session of the user ends and their remembered devices are forgotten (and, if asked, their
//! API keys revoked). A password reset makes the old password stop working and hands the
//! approving admin a single-use token (`fsr_…`, valid [`RESET_TOKEN_TTL_HOURS`] hours) to
//! pass to the user, who sets a new password with it at `POST /auth/password/reset`. A
//! second-factor reset turns TOTP off and deletes the backup codes; the user enrols again.
//! Each step is an audit event (`user.reset_request`, `user.reset`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use finsec_audit::Outcome;
use finsec_auth::mfa::MfaUserId;
use finsec_auth::passwords::Password;
use serde::{Deserialize, Serialize};
use time::Duration;
use time::OffsetDateTime;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::routes::{
    ApiError, Registered, admit, blocking, random_text, revoke_credentials, token_hash,
};
use super::sessions::{ResetKind, ResetRequest};
use super::users::Username;
use crate::audit::layer::{AuditNotes, Note};
use crate::auth::extract::Principal;
use crate::http::path::Path;
use crate::problem::{Problem, ProblemType};
use crate::ratelimit::account_key;
use crate::rbac::admin::{
    existing_user, forbidden, internal, require_permission, require_permission_now, rfc3339,
};
use crate::rbac::{Actor, USERS_ADMIN};
use crate::state::AppState;

/// The lockout routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(lockout_status, unlock))
        .routes(routes!(request_reset))
        .routes(routes!(approve_reset))
        .routes(routes!(create_user))
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
    let name = existing_user(&state, user_id).await?.username;
    let status = state
        .auth()
        .lockout()
        .status(&account_key(&name), OffsetDateTime::now_utc())
        .await
        .map_err(|e| internal("reading failed logins", &e))?;
    Ok(Json(LockoutState {
        failures: status.failures,
        blocked_until: status.blocked_until.map(rfc3339),
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
    let name = existing_user(&state, user_id).await?.username;
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

/// How long a reset request can be approved, in hours.
pub const RESET_REQUEST_TTL_HOURS: i64 = 24;

/// How long a password-reset token works after the approval, in hours.
pub const RESET_TOKEN_TTL_HOURS: i64 = 24;

/// The prefix of password-reset tokens.
pub const RESET_TOKEN_PREFIX: &str = "fsr_";

/// What to reset.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResetWhat {
    /// The password.
    Password,
    /// The second factor.
    Mfa,
}

/// Asking for a reset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetAsk {
    /// `password` or `mfa`.
    pub kind: ResetWhat,
    /// Also revoke every API key of the user when the reset is done.
    #[serde(default)]
    pub revoke_api_keys: bool,
}

/// A reset request.
#[derive(Serialize, ToSchema)]
pub struct ResetView {
    /// Its id (approve it at `/admin/resets/{id}/approve`).
    pub id: String,
    /// Whose account.
    pub user_id: String,
    /// `password` or `mfa`.
    pub kind: String,
    /// Whether the user's API keys are revoked too.
    pub revoke_api_keys: bool,
    /// Who asked.
    pub requested_by: String,
    /// `pending` or `done`.
    pub status: String,
    /// Until when it can be approved (RFC 3339).
    pub expires_at: String,
    /// Who approved it.
    pub approved_by: Option<String>,
    /// A password reset's single-use token, shown once to the approving admin: pass it to
    /// the user, who sets a new password with it at `POST /auth/password/reset`.
    pub reset_token: Option<String>,
    /// When the token stops working (RFC 3339).
    pub reset_token_expires_at: Option<String>,
}

impl std::fmt::Debug for ResetView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResetView")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl From<&ResetRequest> for ResetView {
    fn from(r: &ResetRequest) -> Self {
        Self {
            id: r.id.clone(),
            user_id: r.user_id.to_string(),
            kind: r.kind.as_str().to_owned(),
            revoke_api_keys: r.revoke_api_keys,
            requested_by: r.requested_by.to_string(),
            status: if r.approved_at.is_some() {
                "done"
            } else {
                "pending"
            }
            .to_owned(),
            expires_at: rfc3339(r.expires_at),
            approved_by: r.approved_by.map(|u| u.to_string()),
            reset_token: None,
            reset_token_expires_at: None,
        }
    }
}

/// Asks for a user's password or second factor to be reset; a second admin approves it
/// (admin, recent login).
#[utoipa::path(
    post,
    path = "/admin/users/{user_id}/resets",
    tag = "auth",
    params(("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)")),
    request_body = ResetAsk,
    responses(
        (status = 202, description = "Asked: nothing changes until a second admin approves", body = ResetView),
        (status = 400, description = "The id is not a UUID, or the body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer users, an API key was used, or the admin names themselves (`self_approval`)", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared as application/json", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn request_reset(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(user_id): Path<Uuid>,
    crate::http::json::Json(ask): crate::http::json::Json<ResetAsk>,
) -> Result<(StatusCode, Json<ResetView>), Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        USERS_ADMIN,
        "user.reset_request",
    )
    .await?;
    existing_user(&state, user_id).await?;
    if user_id == principal.user_id {
        return Err(forbidden(
            "self_approval",
            "an admin cannot reset their own account (another admin can)",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let reset = ResetRequest {
        id: Uuid::now_v7().simple().to_string(),
        user_id,
        kind: match ask.kind {
            ResetWhat::Password => ResetKind::Password,
            ResetWhat::Mfa => ResetKind::Mfa,
        },
        revoke_api_keys: ask.revoke_api_keys,
        requested_by: principal.user_id,
        created_at: now,
        expires_at: now + Duration::hours(RESET_REQUEST_TTL_HOURS),
        approved_by: None,
        approved_at: None,
    };
    state
        .auth()
        .sessions
        .insert_reset(&reset)
        .await
        .map_err(|e| internal("recording a reset request", &e))?;
    notes.note(
        Note::new("user.reset_request", Outcome::Success)
            .resource("user", user_id)
            .detail("kind", reset.kind.as_str())
            .detail("request", reset.id.as_str()),
    );
    tracing::info!(user = %user_id, by = %principal.user_id, kind = reset.kind.as_str(), "account reset requested");
    Ok((StatusCode::ACCEPTED, Json(ResetView::from(&reset))))
}

/// Approves and carries out a reset request (a second admin, recent login).
#[utoipa::path(
    post,
    path = "/admin/resets/{id}/approve",
    tag = "auth",
    params(("id" = String, Path, pattern = "^[0-9a-f]{32}$", description = "The reset request's id")),
    responses(
        (status = 200, description = "Done; a password reset carries the single-use `reset_token` for the user", body = ResetView),
        (status = 400, description = "The id is malformed", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer users, an API key was used, or the approver asked for the reset or is its user (`self_approval`)", body = Problem),
        (status = 404, description = "No such request", body = Problem),
        (status = 409, description = "Approved already, or expired", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn approve_reset(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(id): Path<String>,
) -> Result<Json<ResetView>, Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        USERS_ADMIN,
        "user.reset",
    )
    .await?;
    if id.len() != 32
        || !id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        return Err(Problem::bad_request(
            "the request id must be 32 lower-case hex digits",
        ));
    }
    let auth = Arc::clone(state.auth());
    let Some(reset) = auth
        .sessions
        .reset_request(&id)
        .await
        .map_err(|e| internal("reading a reset request", &e))?
    else {
        return Err(Problem::not_found("no reset request has this id"));
    };
    if principal.user_id == reset.requested_by || principal.user_id == reset.user_id {
        notes.note(
            Note::new("user.reset", Outcome::Denied)
                .resource("user", reset.user_id)
                .detail("reason", "self_approval"),
        );
        return Err(forbidden(
            "self_approval",
            "a reset is approved by a second admin: neither the one who asked nor its user",
        ));
    }
    let now = OffsetDateTime::now_utc();
    // A password reset's token, and the random password that replaces the old one.
    let token = match reset.kind {
        ResetKind::Password => Some(
            random_text(RESET_TOKEN_PREFIX)
                .map_err(ApiError::problem)?
                .to_string(),
        ),
        ResetKind::Mfa => None,
    };
    let token_expires = now + Duration::hours(RESET_TOKEN_TTL_HOURS);
    let hash = token.as_deref().map(token_hash);
    if !auth
        .sessions
        .approve_reset(
            &id,
            principal.user_id,
            now,
            hash.as_deref().map(|h| (h, token_expires)),
        )
        .await
        .map_err(|e| internal("approving a reset", &e))?
    {
        return Err(Problem::conflict(if reset.approved_at.is_some() {
            "the reset was approved already"
        } else {
            "the reset request expired or was approved at the same moment"
        }));
    }
    let user = reset.user_id;
    match reset.kind {
        ResetKind::Password => {
            // The old password stops working: a random one nobody knows replaces it.
            let unknown = random_text("").map_err(ApiError::problem)?;
            let new = auth
                .policy
                .check(&Password::new(unknown.as_str()))
                .map_err(|e| internal("random password", &e))?;
            let admission = admit(&auth).map_err(ApiError::problem)?;
            let hasher = Arc::clone(&auth);
            let hashed = blocking(admission, move || hasher.hasher.hash(&new))
                .await
                .map_err(ApiError::problem)?
                .map_err(|e| internal("password hashing", &e))?;
            auth.users
                .update_password_hash(user, &hashed, now)
                .await
                .map_err(|e| internal("password update", &e))?;
            if let Some(found) = auth
                .users
                .find_by_id(user)
                .await
                .map_err(|e| internal("user lookup", &e))?
            {
                auth.lockout()
                    .recover(&account_key(&found.username))
                    .await
                    .map_err(|e| internal("failed-login reset", &e))?;
            }
        }
        ResetKind::Mfa => {
            let who = MfaUserId::new(user.to_string()).map_err(|e| internal("mfa user", &e))?;
            auth.backup_codes
                .replace(&who, Vec::new())
                .await
                .map_err(|e| internal("backup code removal", &e))?;
            auth.users
                .disable_mfa(user, now)
                .await
                .map_err(|e| internal("mfa removal", &e))?;
        }
    }
    let revoked = revoke_credentials(&auth, user, None, reset.revoke_api_keys, now)
        .await
        .map_err(ApiError::problem)?;
    notes.note(
        Note::new("user.reset", Outcome::Success)
            .resource("user", user)
            .detail("kind", reset.kind.as_str())
            .detail("request", id.as_str())
            .detail("requested_by", reset.requested_by.to_string())
            .detail(
                "sessions_ended",
                i64::try_from(revoked.sessions).unwrap_or(i64::MAX),
            )
            .detail(
                "api_keys_revoked",
                i64::try_from(revoked.api_keys).unwrap_or(i64::MAX),
            ),
    );
    tracing::info!(user = %user, by = %principal.user_id, kind = reset.kind.as_str(), "account reset approved and done");
    let mut done = reset.clone();
    done.approved_by = Some(principal.user_id);
    done.approved_at = Some(now);
    let mut view = ResetView::from(&done);
    view.reset_token_expires_at = token.as_ref().map(|_| rfc3339(token_expires));
    view.reset_token = token;
    Ok(Json(view))
}

/// A new account, created by an admin.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// As at registration: 3 to 64 ASCII letters, digits, `.`, `_` or `-`.
    #[schema(schema_with = super::request_schema::username)]
    pub username: String,
    /// As at registration: 12 to 256 characters, not a common password.
    #[schema(schema_with = super::request_schema::new_password)]
    pub password: String,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewUser { [REDACTED] }")
    }
}

/// Creates an account (admin, recent login): how accounts come to be under
/// `--registration closed`.
#[utoipa::path(
    post,
    path = "/admin/users",
    tag = "auth",
    request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = Registered),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer users, or an API key was used", body = Problem),
        (status = 409, description = "The username is taken", body = Problem),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared as application/json", body = Problem),
        (status = 422, description = "The username or password breaks the rules", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn create_user(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    crate::http::json::Json(request): crate::http::json::Json<NewUser>,
) -> Result<(StatusCode, Json<Registered>), Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        USERS_ADMIN,
        "user.create",
    )
    .await?;
    let name = Username::parse(&request.username)
        .map_err(|e| Problem::new(ProblemType::Validation).detail(e))?;
    let created = super::routes::create_user(
        state.auth(),
        &name,
        request.password,
        OffsetDateTime::now_utc(),
    )
    .await
    .map_err(ApiError::problem)?;
    let Some(id) = created else {
        return Err(Problem::conflict("username is taken"));
    };
    notes.note(
        Note::new("user.create", Outcome::Success)
            .resource("user", id)
            .detail("username", name.as_str()),
    );
    tracing::info!(user = %id, by = %principal.user_id, "account created by an admin");
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            id: id.to_string(),
            username: name.as_str().to_owned(),
        }),
    ))
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
    /// Create an account (the first admin's, or any under `--registration closed`). The
    /// password is read from `FINSEC_NEW_USER_PASSWORD`, or else from the first line of
    /// standard input; it follows the registration rules.
    Create {
        /// The new user's name.
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
    let users = crate::gdpr::sealing::command_users(config, storage).await?;
    let lockout = finsec_auth::lockout::Lockout::new(
        Arc::clone(&stores.crates.login_failures),
        config.auth.lockout_policy()?,
    );
    let (username, unlock) = match command {
        UsersCommand::Create { username } => {
            return create_on(config, storage, username, out).await;
        }
        UsersCommand::Lockout { username } => (username, false),
        UsersCommand::Unlock { username } => (username, true),
    };
    let name = Username::parse(username)
        .map_err(|e| ServerError::Config(format!("invalid username: {e}")))?;
    let user = users
        .find_by_name(name.key())
        .await?
        .ok_or_else(|| ServerError::Config(format!("no user named {username:?}")))?;
    let account = account_key(&user.username);
    let failed = |e: finsec_auth::lockout::LockoutError| ServerError::Storage {
        backend: storage.backend().as_str(),
        target: "finsec_login_failures".to_owned(),
        source: Box::new(e),
    };
    let text = if unlock {
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
    } else {
        let status = lockout
            .status(&account, OffsetDateTime::now_utc())
            .await
            .map_err(failed)?;
        let until = status.blocked_until.map_or_else(|| "-".to_owned(), rfc3339);
        format!(
            "{username}: {} failed logins in a row, waiting until {until}, recovery required: {}",
            status.failures, status.recovery_required
        )
    };
    writeln!(out, "{text}").map_err(|e| ServerError::io("cannot write to", "standard output", e))
}

/// The environment variable `users create` reads the password from.
pub const NEW_USER_PASSWORD_VAR: &str = "FINSEC_NEW_USER_PASSWORD";

async fn create_on(
    config: &crate::config::Config,
    storage: &crate::storage::Storage,
    username: &str,
    out: &mut dyn std::io::Write,
) -> crate::error::Result<()> {
    use crate::error::ServerError;
    use finsec_auth::passwords::{Argon2Params, CommonPasswords, PasswordHasher, PasswordPolicy};
    let name = Username::parse(username)
        .map_err(|e| ServerError::Config(format!("invalid username: {e}")))?;
    let password = match std::env::var(NEW_USER_PASSWORD_VAR) {
        Ok(password) => Zeroizing::new(password),
        Err(_) => {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut line).map_err(|e| {
                ServerError::io("cannot read the password from", "standard input", e)
            })?;
            Zeroizing::new(line.trim_end_matches(['\n', '\r']).to_owned())
        }
    };
    let policy = PasswordPolicy::default().with_deny_list(Arc::new(CommonPasswords::new()));
    let new = policy
        .check(&Password::new(password.as_str()))
        .map_err(|e| ServerError::Config(format!("the password is refused: {e}")))?;
    let pepper = super::secrets::load_pepper(&config.auth.pepper_path(config))?;
    let hasher = PasswordHasher::new(Argon2Params::default(), Some(pepper))
        .map_err(|e| ServerError::Config(format!("password hasher: {e}")))?;
    let hash = hasher
        .hash(&new)
        .map_err(|e| ServerError::Config(format!("password hashing: {e}")))?;
    let id = Uuid::now_v7();
    let inserted = crate::gdpr::sealing::command_users(config, storage)
        .await?
        .insert_user(id, &name, &hash, OffsetDateTime::now_utc())
        .await?;
    if !inserted {
        return Err(ServerError::Config(format!(
            "the name {username:?} is taken"
        )));
    }
    let user_id = id.to_string();
    crate::audit::record_command(storage, "user.create", ("user", user_id.as_str()), &[]).await?;
    writeln!(out, "created {} ({id})", name.as_str())
        .map_err(|e| ServerError::io("cannot write to", "standard output", e))
}
