//! The trading-account entitlement endpoints: `GET /accounts` (the caller's own) and the
//! admin API under `/admin/users/{user_id}/accounts`.
//!
//! The admin endpoints need [`ACCOUNTS_ADMIN`] (admin holds it through `*`); granting and
//! revoking also need a session whose login is recent (step-up, as for every action that
//! changes who may do what), so a leaked access token or an API key cannot grant accounts.
//! Each grant and revocation is an audit event (`account.grant`, `account.revoke`) naming
//! the user, the account and the admin.

use axum::Json;
use axum::extract::{FromRef, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use finsec_audit::Outcome;
use finsec_validate::request::AccountId;
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::accounts::{AccountEntitlement, Granted, MAX_ACCOUNTS_PER_USER};
use crate::audit::layer::{AuditNotes, Note};
use crate::auth::extract::Principal;
use crate::http::path::Path;
use crate::problem::Problem;
use crate::rbac::admin::{existing_user, internal, require_permission, require_permission_now};
use crate::rbac::{ACCOUNTS_ADMIN, Actor};
use crate::state::AppState;

/// The entitlement routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(my_accounts))
        .routes(routes!(user_accounts))
        .routes(routes!(grant_account, revoke_account))
}

/// The account in a path (`None` if malformed: a 400, see [`bad_account`]).
fn account(text: &str) -> Option<AccountId> {
    text.parse().ok()
}

fn bad_account() -> Problem {
    Problem::bad_request("the account id must be 1 to 64 ASCII letters, digits, `-` or `_`")
}

async fn entitlements_of(state: &AppState, id: Uuid) -> Result<Vec<AccountEntitlement>, Problem> {
    let all = state
        .orders()
        .entitlements()
        .accounts_of(id)
        .await
        .map_err(|e| internal("reading entitlements", &e))?;
    Ok(all.iter().map(AccountEntitlement::from).collect())
}

/// The trading accounts the caller is entitled to, by account id.
#[utoipa::path(
    get,
    path = "/accounts",
    tag = "accounts",
    responses(
        (status = 200, description = "The caller's entitlements", body = [AccountEntitlement]),
        (status = 401, description = "Not authenticated", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn my_accounts(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<AccountEntitlement>>, Problem> {
    Ok(Json(entitlements_of(&state, principal.user_id).await?))
}

/// A user's trading-account entitlements (admin).
#[utoipa::path(
    get,
    path = "/admin/users/{user_id}/accounts",
    tag = "accounts",
    params(("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)")),
    responses(
        (status = 200, description = "The user's entitlements", body = [AccountEntitlement]),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Not allowed to administer accounts", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn user_accounts(
    State(state): State<AppState>,
    actor: Actor,
    Path(user_id): Path<Uuid>,
) -> Result<Json<Vec<AccountEntitlement>>, Problem> {
    require_permission(&state, &actor, ACCOUNTS_ADMIN).await?;
    existing_user(&state, user_id).await?;
    Ok(Json(entitlements_of(&state, user_id).await?))
}

/// Entitles a user to a trading account (admin, recent login). Answers 201 with the new
/// entitlement, or 200 with the existing one.
#[utoipa::path(
    put,
    path = "/admin/users/{user_id}/accounts/{account_id}",
    tag = "accounts",
    params(
        ("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)"),
        ("account_id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The trading account"),
    ),
    responses(
        (status = 201, description = "Granted", body = AccountEntitlement),
        (status = 200, description = "The user was entitled already", body = AccountEntitlement),
        (status = 400, description = "The user id or the account id is malformed", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer accounts, or an API key was used", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "The user holds the most entitlements one user may hold", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn grant_account(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path((user_id, account_id)): Path<(Uuid, String)>,
) -> Result<Response, Problem> {
    let account_id = account(&account_id).ok_or_else(bad_account)?;
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        ACCOUNTS_ADMIN,
        "account.grant",
    )
    .await?;
    existing_user(&state, user_id).await?;
    let now = OffsetDateTime::now_utc();
    let granted = state
        .orders()
        .entitlements()
        .grant(user_id, &account_id, Some(principal.user_id), now)
        .await
        .map_err(|e| internal("granting an account", &e))?;
    let status = match granted {
        Granted::Added => StatusCode::CREATED,
        Granted::Existing => StatusCode::OK,
        Granted::LimitReached => {
            return Err(Problem::conflict(format!(
                "the user holds {MAX_ACCOUNTS_PER_USER} entitlements, the most one user may hold"
            )));
        }
    };
    if granted == Granted::Added {
        notes.note(
            Note::new("account.grant", Outcome::Success)
                .resource("user", user_id)
                .detail("account", account_id.as_str()),
        );
        tracing::info!(user = %user_id, account = %account_id, by = %principal.user_id, "account entitlement granted");
    }
    let current = entitlements_of(&state, user_id).await?;
    let entitlement = current
        .into_iter()
        .find(|e| e.account_id == account_id.as_str())
        .ok_or_else(|| Problem::conflict("the entitlement was revoked at the same moment"))?;
    Ok((status, Json(entitlement)).into_response())
}

/// Takes a user's entitlement to a trading account away (admin, recent login). Orders of
/// the account waiting for approval are rejected when approved.
#[utoipa::path(
    delete,
    path = "/admin/users/{user_id}/accounts/{account_id}",
    tag = "accounts",
    params(
        ("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)"),
        ("account_id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The trading account"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 400, description = "The user id or the account id is malformed", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to administer accounts, or an API key was used", body = Problem),
        (status = 404, description = "The user is not entitled to this account (or does not exist)", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_account(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path((user_id, account_id)): Path<(Uuid, String)>,
) -> Result<StatusCode, Problem> {
    let account_id = account(&account_id).ok_or_else(bad_account)?;
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        ACCOUNTS_ADMIN,
        "account.revoke",
    )
    .await?;
    let removed = state
        .orders()
        .entitlements()
        .revoke(user_id, &account_id)
        .await
        .map_err(|e| internal("revoking an account", &e))?;
    if !removed {
        return Err(Problem::not_found(
            "the user is not entitled to this account",
        ));
    }
    notes.note(
        Note::new("account.revoke", Outcome::Success)
            .resource("user", user_id)
            .detail("account", account_id.as_str()),
    );
    tracing::info!(user = %user_id, account = %account_id, by = %principal.user_id, "account entitlement revoked");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids_in_paths_follow_the_order_rules() {
        assert!(account("ACC-1").is_some());
        assert!(account("a_b-9").is_some());
        assert!(account(&"A".repeat(64)).is_some());
        for bad in ["", "ACC 1", "ACC/1", "é", "ACC%2F1", &"A".repeat(65)] {
            assert!(account(bad).is_none(), "{bad:?}");
        }
    }
}
