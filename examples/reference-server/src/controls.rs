//! Incident controls over HTTP, on finsec-rbac's [`controls`](finsec_rbac::controls):
//! suspending users, blocking client networks and halting trading, each shared by every
//! instance on the database.
//!
//! | control | set with | enforced |
//! |---|---|---|
//! | suspension | `POST /admin/users/{user_id}/suspension` (ends the user's sessions; with `revoke_api_keys`, their keys too) | a right password at login is a 403 `account_suspended`; every credential of the user is refused (the uniform 401) |
//! | block | `POST /admin/blocks` (`network`, a CIDR or address) | every request from the network gets a 403 `address_blocked` before any other work (no audit record, no database query) |
//! | halt | `POST /admin/halts` (global), `/admin/halts/accounts/{account_id}`, `/admin/halts/instruments/{symbol}` | a new order in the scope is a 403 `trading_halted` |
//!
//! Each takes a `reason` and optionally `expires_in_minutes`. `GET /admin/controls` lists
//! those in force, `GET /admin/controls/history` the newest 200 in any state, and
//! `DELETE /admin/controls/{id}` lifts one; a global halt is lifted by two people: the
//! first `DELETE` asks (202), a second admin's lifts it (204), and the asker confirming is
//! a 403 `self_approval`. Every endpoint needs [`INCIDENTS_ADMIN`] (admin's `*`); the
//! changes need a session with a recent login (step-up; API keys are refused). Every change
//! is an audit event (`control.set`, `control.lift_request`, `control.lift`).
//!
//! **Every instance within a second.** Each instance reloads the controls when the store's
//! version changes, checked every [`REFRESH_EVERY`] (one single-row read), and at once after
//! a change it made itself; the request path reads them from memory.
//!
//! **The audit monitor.** [`Responder`] is the [`IncidentHandler`] the security monitor's
//! alerts go to after they are stored: a rule whose `response` is `block_ip` blocks the
//! alert's address for [`MONITOR_BLOCK_MINUTES`], `suspend_user` suspends the alert's user
//! (ending their sessions), `halt_trading` halts all trading (lifted by two people). None
//! of the default rules sets a response.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use axum::Json;
use axum::extract::{FromRef, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use finsec_audit::{Alert, IncidentHandler, Outcome};
use finsec_rbac::controls::{
    Control, ControlError, ControlRecord, ControlStore, ControlWatcher, HaltScope, Lift,
    NewControl, lift,
};
use finsec_validate::request::AccountId;
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::audit::layer::{AuditNotes, Note};
use crate::auth::Auth;
use crate::auth::extract::Principal;
use crate::auth::routes::revoke_credentials;
use crate::http::json::Json as JsonBody;
use crate::http::layers::client_addr::ClientAddr;
use crate::http::path::Path;
use crate::problem::{Problem, ProblemType};
use crate::rbac::admin::{
    existing_user, forbidden, internal, require_permission, require_permission_now, rfc3339,
};
use crate::rbac::{Actor, INCIDENTS_ADMIN};
use crate::state::AppState;

/// The controls as the server keeps them: finsec-rbac's watcher over the database's store.
pub type Watcher = ControlWatcher<Arc<dyn ControlStore>>;

/// How often each instance checks the store's version.
pub const REFRESH_EVERY: StdDuration = StdDuration::from_millis(250);

/// How long the monitor's `block_ip` response blocks an address.
pub const MONITOR_BLOCK_MINUTES: i64 = 60;

/// The longest `expires_in_minutes`: a year.
pub const MAX_EXPIRY_MINUTES: u32 = 525_600;

/// How many controls `GET /admin/controls/history` lists.
pub const HISTORY_LEN: u32 = 200;

/// Keeps `watcher` current until the task is aborted; a failing store is logged and the
/// controls in force stay.
pub async fn watch(watcher: Arc<Watcher>) {
    let mut every = tokio::time::interval(REFRESH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        reload(&watcher).await;
    }
}

/// Middleware for [`axum::middleware::from_fn_with_state`], right after the client address
/// is resolved: a request from a blocked network gets a 403 `address_blocked` and nothing
/// else is done for it.
pub async fn block(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let client = request.extensions().get::<ClientAddr>().map(|c| c.ip());
    if let Some(ip) = client
        && let Some(block) = state
            .orders()
            .controls()
            .current()
            .block(ip, OffsetDateTime::now_utc())
    {
        tracing::debug!(%ip, control = block.id, "request from a blocked network refused");
        return Problem::new(ProblemType::Forbidden)
            .detail("requests from this address are blocked")
            .extension("code", "address_blocked")
            .into_response();
    }
    next.run(request).await
}

/// Whether user `id` is suspended now.
pub fn is_suspended(state: &AppState, id: Uuid) -> bool {
    let controls = state.orders().controls().current();
    if controls.is_empty() {
        return false;
    }
    // On every authenticated request: the id's text in a stack buffer, no allocation.
    let mut text = Uuid::encode_buffer();
    controls
        .suspension(
            id.hyphenated().encode_lower(&mut text),
            OffsetDateTime::now_utc(),
        )
        .is_some()
}

/// Reloads this instance's controls now (the others do within [`REFRESH_EVERY`]); a failure
/// is logged and the controls in force stay.
async fn reload(watcher: &Watcher) {
    if let Err(e) = watcher.refresh().await {
        tracing::warn!(error = %e, "could not refresh the incident controls");
    }
}

/// Stores `new` at `now` and puts it in force on this instance at once.
async fn insert_now(
    watcher: &Watcher,
    new: &NewControl,
    now: OffsetDateTime,
) -> Result<ControlRecord, ControlError> {
    let record = watcher.store().insert(new, now).await?;
    reload(watcher).await;
    Ok(record)
}

/// The [`IncidentHandler`] that carries out a monitor rule's `response` (see the module
/// docs). Alerts without a response, or with one it does not know, are left alone.
pub struct Responder {
    watcher: Arc<Watcher>,
    auth: Arc<Auth>,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder").finish_non_exhaustive()
    }
}

impl Responder {
    /// Responds with the controls of `watcher`, ending sessions through `auth`.
    pub fn new(watcher: Arc<Watcher>, auth: Arc<Auth>) -> Self {
        Self { watcher, auth }
    }

    async fn set(
        &self,
        control: Control,
        alert: &Alert,
        expires: Option<Duration>,
    ) -> finsec_audit::Result<Option<ControlRecord>> {
        let now = OffsetDateTime::now_utc();
        let reason = format!(
            "monitor rule {}: {} over {} in {} s",
            alert.rule, alert.observed, alert.threshold, alert.window_secs
        );
        let mut new = NewControl::new(control, &reason, "monitor").map_err(respond_err)?;
        if let Some(expires) = expires {
            new = new.expiring_at(now + expires);
        }
        let record = insert_now(&self.watcher, &new, now)
            .await
            .map_err(respond_err)?;
        tracing::warn!(control = record.id, rule = %alert.rule, "incident control set by the monitor");
        Ok(Some(record))
    }
}

fn respond_err(e: impl std::fmt::Display) -> finsec_audit::Error {
    finsec_audit::Error::InvalidRule(format!("incident response: {e}"))
}

#[async_trait]
impl IncidentHandler for Responder {
    async fn incident(&self, alert: &Alert) -> finsec_audit::Result<()> {
        let now = OffsetDateTime::now_utc();
        let current = self.watcher.current();
        match alert.response.as_deref() {
            Some("block_ip") => {
                let Ok(ip) = alert.key.parse::<IpAddr>() else {
                    tracing::warn!(rule = %alert.rule, "block_ip response for a key that is not an address; nothing blocked");
                    return Ok(());
                };
                if current.block(ip, now).is_none() {
                    self.set(
                        Control::block(ipnet::IpNet::from(ip.to_canonical())),
                        alert,
                        Some(Duration::minutes(MONITOR_BLOCK_MINUTES)),
                    )
                    .await?;
                }
            }
            Some("suspend_user") => {
                let Ok(user) = alert.key.parse::<Uuid>() else {
                    tracing::warn!(rule = %alert.rule, "suspend_user response for a key that is not a user id; nobody suspended");
                    return Ok(());
                };
                if current.suspension(&user.to_string(), now).is_none() {
                    let control = Control::suspension(&user.to_string()).map_err(respond_err)?;
                    self.set(control, alert, None).await?;
                    revoke_credentials(&self.auth, user, None, false, now)
                        .await
                        .map_err(|_| respond_err("ending the suspended user's sessions failed"))?;
                }
            }
            Some("halt_trading")
                if current
                    .halt_for("", "", now)
                    .is_none_or(|h| !matches!(h.control, Control::Halt(HaltScope::Global))) =>
            {
                self.set(Control::Halt(HaltScope::Global), alert, None)
                    .await?;
            }
            Some("halt_trading") => {}
            Some(other) => {
                tracing::warn!(rule = %alert.rule, response = other, "unknown incident response; nothing done");
            }
            None => {}
        }
        Ok(())
    }
}

/// The control routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(active_controls))
        .routes(routes!(control_history))
        .routes(routes!(lift_control))
        .routes(routes!(suspend_user))
        .routes(routes!(block_network))
        .routes(routes!(halt_all))
        .routes(routes!(halt_account))
        .routes(routes!(halt_instrument))
}

/// A control, as the admin API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ControlView {
    /// Its id (lift it at `/admin/controls/{id}`).
    pub id: i64,
    /// `suspension`, `block` or `halt`.
    pub kind: String,
    /// The user id, the network, or the halt's scope (`global`, `account:ID`,
    /// `instrument:SYMBOL`).
    pub target: String,
    /// Why it was set.
    pub reason: String,
    /// Who set it: an admin's user id, or `monitor`.
    pub set_by: String,
    /// When (RFC 3339).
    pub set_at: String,
    /// When it ends by itself (RFC 3339), if it does.
    pub expires_at: Option<String>,
    /// Who asked for a global halt to be lifted, waiting for a second admin.
    pub lift_requested_by: Option<String>,
    /// Who lifted it.
    pub lifted_by: Option<String>,
    /// When (RFC 3339).
    pub lifted_at: Option<String>,
    /// Whether it is in force now.
    pub active: bool,
}

impl From<&ControlRecord> for ControlView {
    fn from(r: &ControlRecord) -> Self {
        Self {
            id: r.id,
            kind: r.control.kind().to_owned(),
            target: r.control.target(),
            reason: r.reason.clone(),
            set_by: r.set_by.clone(),
            set_at: rfc3339(r.set_at),
            expires_at: r.expires_at.map(rfc3339),
            lift_requested_by: r.lift_requested_by.clone(),
            lifted_by: r.lifted_by.clone(),
            lifted_at: r.lifted_at.map(rfc3339),
            active: r.active_at(OffsetDateTime::now_utc()),
        }
    }
}

/// `reason`: 1 to 500 characters, no control character.
fn reason_schema() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(finsec_rbac::controls::MAX_REASON_CHARS))
        .pattern(Some(r"^[^\x00-\x1F\x7F-\x9F]*$"))
        .description(Some("Why: 1 to 500 characters, no control character"))
        .examples(["credential leak reported in ticket 4711"])
        .build()
}

/// `expires_in_minutes`: 1 to [`MAX_EXPIRY_MINUTES`], or null.
fn expiry_schema() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .minimum(Some(1))
        .maximum(Some(MAX_EXPIRY_MINUTES))
        .description(Some(
            "Minutes until the control ends by itself (1 to 525,600); null or absent: until lifted",
        ))
        .build()
}

/// `BlockRequest.network`.
fn network_schema() -> utoipa::openapi::schema::Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(2))
        .max_length(Some(crate::auth::request_schema::NETWORK_MAX_CHARS))
        .pattern(Some(crate::auth::request_schema::NETWORK_PATTERN))
        .description(Some(
            "An IPv4 or IPv6 network in CIDR notation (`203.0.113.0/24`) or one address",
        ))
        .examples(["203.0.113.0/24"])
        .build()
}

/// Suspending a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspensionRequest {
    /// Why.
    #[schema(schema_with = reason_schema)]
    pub reason: String,
    /// Also revoke every API key of the user (sessions always end).
    #[serde(default)]
    pub revoke_api_keys: bool,
    /// Minutes until the suspension ends by itself.
    #[serde(default)]
    #[schema(schema_with = expiry_schema)]
    pub expires_in_minutes: Option<u32>,
}

/// Blocking a network.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockRequest {
    /// The network.
    #[schema(schema_with = network_schema)]
    pub network: String,
    /// Why.
    #[schema(schema_with = reason_schema)]
    pub reason: String,
    /// Minutes until the block ends by itself.
    #[serde(default)]
    #[schema(schema_with = expiry_schema)]
    pub expires_in_minutes: Option<u32>,
}

/// Halting trading.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HaltRequest {
    /// Why.
    #[schema(schema_with = reason_schema)]
    pub reason: String,
    /// Minutes until the halt ends by itself.
    #[serde(default)]
    #[schema(schema_with = expiry_schema)]
    pub expires_in_minutes: Option<u32>,
}

/// What suspending did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Suspended {
    /// The suspension.
    pub control: ControlView,
    /// Sessions ended.
    pub sessions_ended: usize,
    /// API keys revoked.
    pub api_keys_revoked: usize,
}

fn invalid(detail: impl Into<String>) -> Problem {
    Problem::new(ProblemType::Validation).detail(detail)
}

/// The control `new` describes, set by the caller with `reason` and the expiry; `Err` is
/// the 422's detail.
fn new_control(
    control: Control,
    reason: &str,
    principal: &Principal,
    expires_in_minutes: Option<u32>,
    now: OffsetDateTime,
) -> Result<NewControl, String> {
    let mut new = NewControl::new(control, reason, &principal.user_id.to_string())
        .map_err(|e| e.to_string())?;
    if let Some(minutes) = expires_in_minutes {
        if minutes == 0 || minutes > MAX_EXPIRY_MINUTES {
            return Err(format!(
                "expires_in_minutes must be 1 to {MAX_EXPIRY_MINUTES}"
            ));
        }
        new = new.expiring_at(now + Duration::minutes(i64::from(minutes)));
    }
    Ok(new)
}

/// Stores `new`, refreshes this instance, and notes the change.
async fn set(
    state: &AppState,
    notes: &AuditNotes,
    new: &NewControl,
    now: OffsetDateTime,
) -> Result<ControlRecord, Problem> {
    let record = insert_now(state.orders().controls(), new, now)
        .await
        .map_err(|e| internal("setting a control", &e))?;
    notes.note(
        Note::new("control.set", Outcome::Success)
            .resource("control", record.id)
            .detail("kind", record.control.kind())
            .detail("target", record.control.target())
            .detail("reason", record.reason.as_str()),
    );
    tracing::warn!(control = record.id, kind = record.control.kind(), target = %record.control.target(), by = %record.set_by, "incident control set");
    Ok(record)
}

/// The controls in force (admin).
#[utoipa::path(
    get,
    path = "/admin/controls",
    tag = "incidents",
    responses(
        (status = 200, description = "The suspensions, blocks and halts in force, oldest first", body = [ControlView]),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Not allowed to manage incident controls", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn active_controls(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<ControlView>>, Problem> {
    list_controls(&state, &actor, false).await
}

/// The controls in force, or with `history` the newest [`HISTORY_LEN`] in any state, for
/// a holder of [`INCIDENTS_ADMIN`].
async fn list_controls(
    state: &AppState,
    actor: &Actor,
    history: bool,
) -> Result<Json<Vec<ControlView>>, Problem> {
    require_permission(state, actor, INCIDENTS_ADMIN).await?;
    let store = state.orders().controls().store();
    let records = if history {
        store.recent(HISTORY_LEN).await
    } else {
        store.active(OffsetDateTime::now_utc()).await
    }
    .map_err(|e| internal("reading controls", &e))?;
    Ok(Json(records.iter().map(ControlView::from).collect()))
}

/// The newest 200 controls in any state (admin).
#[utoipa::path(
    get,
    path = "/admin/controls/history",
    tag = "incidents",
    responses(
        (status = 200, description = "The newest 200 controls, newest first, lifted and expired ones included", body = [ControlView]),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Not allowed to manage incident controls", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn control_history(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<ControlView>>, Problem> {
    list_controls(&state, &actor, true).await
}

/// Lifts a control (admin, recent login). A global halt takes two admins: the first call
/// asks (202), another admin's call lifts it.
#[utoipa::path(
    delete,
    path = "/admin/controls/{id}",
    tag = "incidents",
    params(("id" = i64, Path, minimum = 1, description = "The control's id")),
    responses(
        (status = 202, description = "A global halt: the lift is asked for; a second admin lifts it", body = ControlView),
        (status = 204, description = "Lifted"),
        (status = 400, description = "The id is not a number", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to manage incident controls, an API key was used, or the admin who asked to lift a global halt confirms it (`self_approval`)", body = Problem),
        (status = 404, description = "No control has this id", body = Problem),
        (status = 409, description = "The control is not in force (lifted or expired)", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn lift_control(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(id): Path<i64>,
) -> Result<Response, Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        INCIDENTS_ADMIN,
        "control.lift",
    )
    .await?;
    let watcher = state.orders().controls();
    let by = principal.user_id.to_string();
    let now = OffsetDateTime::now_utc();
    let lifted = match lift(watcher.store(), id, &by, now).await {
        Ok(lifted) => lifted,
        Err(ControlError::SamePerson) => {
            notes.note(
                Note::new("control.lift", Outcome::Denied)
                    .resource("control", id)
                    .detail("reason", "self_approval"),
            );
            return Err(forbidden(
                "self_approval",
                "a global halt is lifted by a second admin, not the one who asked to lift it",
            ));
        }
        Err(e) => return Err(internal("lifting a control", &e)),
    };
    match lifted {
        Lift::Lifted(record) => {
            reload(watcher).await;
            notes.note(
                Note::new("control.lift", Outcome::Success)
                    .resource("control", id)
                    .detail("kind", record.control.kind())
                    .detail("target", record.control.target()),
            );
            tracing::warn!(control = id, by = %by, "incident control lifted");
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Lift::Requested(mut record) => {
            record.lift_requested_by = Some(by);
            notes.note(
                Note::new("control.lift_request", Outcome::Success)
                    .resource("control", id)
                    .detail("target", record.control.target()),
            );
            Ok((StatusCode::ACCEPTED, Json(ControlView::from(&record))).into_response())
        }
        Lift::NotActive(_) => Err(Problem::conflict("the control is not in force")),
        Lift::NotFound => Err(Problem::not_found("no control has this id")),
    }
}

/// Suspends a user (admin, recent login): every credential of theirs is refused on every
/// instance, their sessions end, and with `revoke_api_keys` their API keys are revoked.
#[utoipa::path(
    post,
    path = "/admin/users/{user_id}/suspension",
    tag = "incidents",
    params(("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id (a UUID)")),
    request_body = SuspensionRequest,
    responses(
        (status = 201, description = "Suspended", body = Suspended),
        (status = 400, description = "The id is not a UUID, or the body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to manage incident controls, an API key was used, or the admin names themselves (`self_suspension`)", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 409, description = "The user is suspended already", body = Problem),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared as application/json", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn suspend_user(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(user_id): Path<Uuid>,
    JsonBody(request): JsonBody<SuspensionRequest>,
) -> Result<(StatusCode, Json<Suspended>), Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        INCIDENTS_ADMIN,
        "control.set",
    )
    .await?;
    existing_user(&state, user_id).await?;
    if user_id == principal.user_id {
        return Err(forbidden(
            "self_suspension",
            "an admin cannot suspend themselves (another admin can)",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let subject = user_id.to_string();
    let control = Control::suspension(&subject).map_err(|e| invalid(e.to_string()))?;
    let new = new_control(
        control,
        &request.reason,
        &principal,
        request.expires_in_minutes,
        now,
    )
    .map_err(invalid)?;
    if is_suspended(&state, user_id) {
        return Err(Problem::conflict("the user is suspended already"));
    }
    let record = set(&state, &notes, &new, now).await?;
    let revoked = revoke_credentials(state.auth(), user_id, None, request.revoke_api_keys, now)
        .await
        .map_err(crate::auth::routes::ApiError::problem)?;
    Ok((
        StatusCode::CREATED,
        Json(Suspended {
            control: ControlView::from(&record),
            sessions_ended: revoked.sessions,
            api_keys_revoked: revoked.api_keys,
        }),
    ))
}

/// Blocks a client network (admin, recent login).
#[utoipa::path(
    post,
    path = "/admin/blocks",
    tag = "incidents",
    request_body = BlockRequest,
    responses(
        (status = 201, description = "Blocked", body = ControlView),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to manage incident controls, an API key was used, or the network holds the caller's own address (`blocks_own_address`)", body = Problem),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared as application/json", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn block_network(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    axum::Extension(client): axum::Extension<ClientAddr>,
    JsonBody(request): JsonBody<BlockRequest>,
) -> Result<(StatusCode, Json<ControlView>), Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        INCIDENTS_ADMIN,
        "control.set",
    )
    .await?;
    let network = crate::auth::routes::network(&request.network).ok_or_else(|| {
        invalid("network must be an IPv4 or IPv6 address or CIDR network (`203.0.113.0/24`)")
    })?;
    let control = Control::block(network);
    if let Control::Block(net) = &control
        && net.contains(&client.ip().to_canonical())
    {
        return Err(forbidden(
            "blocks_own_address",
            "the network holds the address this request comes from: blocking it would shut the caller out",
        ));
    }
    let now = OffsetDateTime::now_utc();
    let new = new_control(
        control,
        &request.reason,
        &principal,
        request.expires_in_minutes,
        now,
    )
    .map_err(invalid)?;
    let record = set(&state, &notes, &new, now).await?;
    Ok((StatusCode::CREATED, Json(ControlView::from(&record))))
}

/// Halts `scope` for the caller's request.
async fn halt(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    notes: &AuditNotes,
    scope: HaltScope,
    request: &HaltRequest,
) -> Result<(StatusCode, Json<ControlView>), Problem> {
    require_permission_now(
        state,
        principal,
        actor,
        notes,
        INCIDENTS_ADMIN,
        "control.set",
    )
    .await?;
    let now = OffsetDateTime::now_utc();
    let new = new_control(
        Control::Halt(scope),
        &request.reason,
        principal,
        request.expires_in_minutes,
        now,
    )
    .map_err(invalid)?;
    let record = set(state, notes, &new, now).await?;
    Ok((StatusCode::CREATED, Json(ControlView::from(&record))))
}

/// Halts all trading (admin, recent login); lifting it takes two admins.
#[utoipa::path(
    post,
    path = "/admin/halts",
    tag = "incidents",
    request_body = HaltRequest,
    responses(
        (status = 201, description = "Halted: new orders are refused (403 `trading_halted`)", body = ControlView),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to manage incident controls, or an API key was used", body = Problem),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared as application/json", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn halt_all(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    JsonBody(request): JsonBody<HaltRequest>,
) -> Result<(StatusCode, Json<ControlView>), Problem> {
    halt(
        &state,
        &principal,
        &actor,
        &notes,
        HaltScope::Global,
        &request,
    )
    .await
}

/// Halts one trading account (admin, recent login).
#[utoipa::path(
    post,
    path = "/admin/halts/accounts/{account_id}",
    tag = "incidents",
    params(("account_id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$", description = "The trading account")),
    request_body = HaltRequest,
    responses(
        (status = 201, description = "Halted: the account's new orders are refused (403 `trading_halted`)", body = ControlView),
        (status = 400, description = "The account id is malformed, or the body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to manage incident controls, or an API key was used", body = Problem),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared as application/json", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn halt_account(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(account_id): Path<String>,
    JsonBody(request): JsonBody<HaltRequest>,
) -> Result<(StatusCode, Json<ControlView>), Problem> {
    let account = account_id.parse::<AccountId>().map_err(|_| {
        Problem::bad_request("the account id must be 1 to 64 ASCII letters, digits, `-` or `_`")
    })?;
    let scope = HaltScope::account(account.as_str()).map_err(|e| invalid(e.to_string()))?;
    halt(&state, &principal, &actor, &notes, scope, &request).await
}

/// Halts one instrument (admin, recent login).
#[utoipa::path(
    post,
    path = "/admin/halts/instruments/{symbol}",
    tag = "incidents",
    params(("symbol" = String, Path, pattern = r"^[A-Z0-9]+([.-][A-Z0-9]+)*$", max_length = 12, description = "The instrument's ticker symbol, as orders name it")),
    request_body = HaltRequest,
    responses(
        (status = 201, description = "Halted: the instrument's new orders are refused (403 `trading_halted`)", body = ControlView),
        (status = 400, description = "The symbol is malformed, or the body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent (step-up needed)", body = Problem),
        (status = 403, description = "Not allowed to manage incident controls, or an API key was used", body = Problem),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared as application/json", body = Problem),
        (status = 422, description = "A field is invalid", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn halt_instrument(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(symbol): Path<String>,
    JsonBody(request): JsonBody<HaltRequest>,
) -> Result<(StatusCode, Json<ControlView>), Problem> {
    let symbol = symbol
        .parse::<finsec_validate::Symbol>()
        .map_err(|e| Problem::bad_request(format!("the symbol is not valid: {e}")))?;
    let scope = HaltScope::instrument(symbol.as_str()).map_err(|e| invalid(e.to_string()))?;
    halt(&state, &principal, &actor, &notes, scope, &request).await
}
