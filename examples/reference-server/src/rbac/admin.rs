//! Roles over HTTP, under four eyes: `/admin/users/{user_id}/roles` and
//! `/admin/role-grants/{id}/approve`.
//!
//! Giving a role takes two people: an admin (a holder of [`ROLES_ADMIN`], admin's `*`)
//! requests it, and a second one approves it within [`GRANT_REQUEST_TTL_HOURS`] hours;
//! the requester cannot approve their own request, nor can the user receiving the role.
//! Only on approval is the role added (in the same transaction). Taking a role away
//! lowers privilege, so it needs one admin. Every change needs a session with a recent
//! login (step-up; API keys are refused), and each step is an audit event
//! (`role.grant_request`, `role.grant`, `role.revoke`). The policy's own decision is not
//! enough to skip the second person: admin's `*` allows everything, and the four eyes
//! here are the server's rule, whatever the policy says.
//!
//! Operators with access to the database keep the `roles` subcommand (for the first
//! admins).

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use finsec_audit::Outcome;
use finsec_rbac::RoleName;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::roles::GrantRequest;
use super::{Actor, ROLES_ADMIN, permission};
use crate::audit::layer::{AuditNotes, Note};
use crate::auth::extract::Principal;
use crate::http::path::Path;
use crate::problem::{Problem, ProblemType};
use crate::state::AppState;

/// How long a grant request can be approved, in hours.
pub const GRANT_REQUEST_TTL_HOURS: i64 = 24;

/// The role routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(user_roles))
        .routes(routes!(request_role, revoke_role))
        .routes(routes!(approve_grant))
        .merge(crate::controls::router())
}

/// A user's roles.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserRoles {
    /// The role names, sorted.
    pub roles: Vec<String>,
}

/// A request to give a user a role, waiting for a second admin.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleGrantRequest {
    /// The request id (approve it at `/admin/role-grants/{id}/approve`).
    pub id: String,
    /// Who gets the role.
    pub user_id: String,
    /// The role.
    pub role: String,
    /// Who asked.
    pub requested_by: String,
    /// `pending` or `granted`.
    pub status: String,
    /// When it can no longer be approved (RFC 3339).
    pub expires_at: String,
}

/// `t` as RFC 3339 text, as the admin API shows times.
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

impl From<&GrantRequest> for RoleGrantRequest {
    fn from(r: &GrantRequest) -> Self {
        Self {
            id: r.id.to_string(),
            user_id: r.user.to_string(),
            role: r.role.to_string(),
            requested_by: r.requested_by.to_string(),
            status: if r.approved.is_some() {
                "granted"
            } else {
                "pending"
            }
            .to_owned(),
            expires_at: rfc3339(r.expires_at),
        }
    }
}

/// A 500 for a failed backend call, logged with `what` was being done.
pub(crate) fn internal(what: &str, e: &dyn std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "{what}");
    Problem::server_error()
}

/// A 403 whose `reason` extension says why (`self_approval`, a policy denial's reason...).
pub(crate) fn forbidden(reason: &str, detail: &str) -> Problem {
    Problem::new(ProblemType::Forbidden)
        .detail(detail.to_owned())
        .extension("reason", reason.to_owned())
}

/// Refuses `actor` unless the policy (and an API key's scopes) allow `action`: the 403
/// names the denial's reason. Shared by every admin and audit route.
pub(crate) async fn require_permission(
    state: &AppState,
    actor: &Actor,
    action: &str,
) -> Result<(), Problem> {
    let action = permission(action).map_err(|e| Problem::internal(&e))?;
    let principal = state
        .orders()
        .principal_of(actor.user_id())
        .await
        .map_err(|e| internal("reading roles", &format_args!("{e:?}")))?;
    state
        .orders()
        .access()
        .check(actor, &principal, &action, None)
        .map_err(|denial| forbidden(&denial.reason, &format!("denied: {}", denial.reason)))
}

/// [`require_permission`], and a session with a recent login (step-up; an API key is
/// refused): for every admin change. `action` names the audit event of a refusal.
pub(crate) async fn require_permission_now(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    notes: &AuditNotes,
    permission: &str,
    action: &'static str,
) -> Result<(), Problem> {
    require_permission(state, actor, permission).await?;
    crate::auth::routes::require_recent_login(principal, notes, action)
        .map_err(crate::auth::routes::ApiError::problem)
}

/// User `id`; 404 unless it exists.
pub(crate) async fn existing_user(
    state: &AppState,
    id: Uuid,
) -> Result<crate::auth::users::User, Problem> {
    match state.auth().users().find_by_id(id).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(Problem::not_found("no user has this id")),
        Err(e) => Err(internal("reading a user", &e)),
    }
}

/// Whether the policy defines `role` (a role it does not define denies everything).
fn is_defined(state: &AppState, role: &RoleName) -> bool {
    state
        .orders()
        .access()
        .policy()
        .role(role.as_str())
        .is_some()
}

async fn roles_of(state: &AppState, user: Uuid) -> Result<Vec<RoleName>, Problem> {
    state
        .storage()
        .stores()
        .roles
        .roles_of(user)
        .await
        .map_err(|e| internal("reading roles", &e))
}

/// A user's roles (admin).
#[utoipa::path(
    get,
    path = "/admin/users/{user_id}/roles",
    tag = "roles",
    params(("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)")),
    responses(
        (status = 200, description = "The user's roles", body = UserRoles),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Not allowed to administer roles", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn user_roles(
    State(state): State<AppState>,
    actor: Actor,
    Path(user_id): Path<Uuid>,
) -> Result<Json<UserRoles>, Problem> {
    require_permission(&state, &actor, ROLES_ADMIN).await?;
    existing_user(&state, user_id).await?;
    let roles = roles_of(&state, user_id).await?;
    Ok(Json(UserRoles {
        roles: roles.iter().map(ToString::to_string).collect(),
    }))
}

/// Asks for a user to be given a role; a second admin approves it (admin, recent login).
#[utoipa::path(
    post,
    path = "/admin/users/{user_id}/roles/{role}",
    tag = "roles",
    params(
        ("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)"),
        ("role" = String, Path, pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$", description = "The role, as the policy names it"),
    ),
    responses(
        (status = 202, description = "Requested: waiting for a second admin's approval", body = RoleGrantRequest),
        (status = 400, description = "The user id or the role name is malformed", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer roles, or an API key was used", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "The user has the role already", body = Problem),
        (status = 422, description = "The policy defines no such role", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn request_role(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path((user_id, role)): Path<(Uuid, String)>,
) -> Result<(StatusCode, Json<RoleGrantRequest>), Problem> {
    let role =
        RoleName::new(&role).map_err(|e| Problem::bad_request(format!("not a role name: {e}")))?;
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        ROLES_ADMIN,
        "role.grant_request",
    )
    .await?;
    if !is_defined(&state, &role) {
        return Err(Problem::new(ProblemType::Validation)
            .detail(format!("role {role} is not defined in the rbac policy")));
    }
    existing_user(&state, user_id).await?;
    if roles_of(&state, user_id).await?.contains(&role) {
        return Err(Problem::conflict(format!(
            "the user has the role {role} already"
        )));
    }
    let now = OffsetDateTime::now_utc();
    let request = GrantRequest {
        id: Uuid::now_v7(),
        user: user_id,
        role,
        requested_by: principal.user_id,
        requested_at: now,
        expires_at: now + time::Duration::hours(GRANT_REQUEST_TTL_HOURS),
        approved: None,
    };
    state
        .storage()
        .stores()
        .roles
        .request_grant(&request)
        .await
        .map_err(|e| internal("storing a grant request", &e))?;
    notes.note(
        Note::new("role.grant_request", Outcome::Success)
            .resource("user", user_id)
            .detail("role", request.role.as_str())
            .detail("request", request.id.to_string()),
    );
    tracing::info!(user = %user_id, role = %request.role, by = %principal.user_id, request = %request.id, "role grant requested");
    Ok((StatusCode::ACCEPTED, Json(RoleGrantRequest::from(&request))))
}

/// Approves a role grant request: the role is given now (a second admin, recent login;
/// never the requester or the user receiving the role).
#[utoipa::path(
    post,
    path = "/admin/role-grants/{id}/approve",
    tag = "roles",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The request id (a UUID)")),
    responses(
        (status = 200, description = "Approved: the user has the role", body = RoleGrantRequest),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer roles, an API key was used, or the caller asked for the grant or would receive the role (`self_approval`)", body = Problem),
        (status = 404, description = "No such request", body = Problem),
        (status = 409, description = "Approved already, or expired", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn approve_grant(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(id): Path<Uuid>,
) -> Result<Json<RoleGrantRequest>, Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        ROLES_ADMIN,
        "role.grant",
    )
    .await?;
    let roles = &state.storage().stores().roles;
    let request = roles
        .grant_request(id)
        .await
        .map_err(|e| internal("reading a grant request", &e))?
        .ok_or_else(|| Problem::not_found("no such role grant request"))?;
    if principal.user_id == request.requested_by || principal.user_id == request.user {
        notes.note(
            Note::new("role.grant", Outcome::Denied)
                .resource("user", request.user)
                .detail("role", request.role.as_str())
                .detail("reason", "self_approval"),
        );
        return Err(forbidden(
            "self_approval",
            "a role grant is approved by a second admin: not the one who asked, nor the user \
             receiving the role",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let approved = roles
        .approve_grant(id, principal.user_id, now)
        .await
        .map_err(|e| internal("approving a grant request", &e))?;
    if !approved {
        let detail = if request.approved.is_some() || request.expires_at > now {
            "this request was approved already"
        } else {
            "this request expired"
        };
        return Err(Problem::conflict(detail));
    }
    notes.note(
        Note::new("role.grant", Outcome::Success)
            .resource("user", request.user)
            .detail("role", request.role.as_str())
            .detail("request", id.to_string())
            .detail("requested_by", request.requested_by.to_string()),
    );
    tracing::info!(user = %request.user, role = %request.role, approver = %principal.user_id, request = %id, "role granted");
    let done = GrantRequest {
        approved: Some((Some(principal.user_id), now)),
        ..request
    };
    Ok(Json(RoleGrantRequest::from(&done)))
}

/// Takes a role away from a user, at once (admin, recent login).
#[utoipa::path(
    delete,
    path = "/admin/users/{user_id}/roles/{role}",
    tag = "roles",
    params(
        ("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)"),
        ("role" = String, Path, pattern = "^[a-z0-9][a-z0-9_.-]{0,63}$", description = "The role"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The user id or the role name is malformed", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer roles, or an API key was used", body = Problem),
        (status = 404, description = "The user does not have the role (or does not exist)", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_role(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path((user_id, role)): Path<(Uuid, String)>,
) -> Result<StatusCode, Problem> {
    let role =
        RoleName::new(&role).map_err(|e| Problem::bad_request(format!("not a role name: {e}")))?;
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        ROLES_ADMIN,
        "role.revoke",
    )
    .await?;
    let removed = state
        .storage()
        .stores()
        .roles
        .revoke(user_id, &role)
        .await
        .map_err(|e| internal("revoking a role", &e))?;
    if !removed {
        return Err(Problem::not_found("the user does not have this role"));
    }
    notes.note(
        Note::new("role.revoke", Outcome::Success)
            .resource("user", user_id)
            .detail("role", role.as_str()),
    );
    tracing::info!(user = %user_id, role = %role, by = %principal.user_id, "role revoked");
    Ok(StatusCode::NO_CONTENT)
}
