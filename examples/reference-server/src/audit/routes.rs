//! The auditors' routes (permission `audit:read`): search the log, fetch the newest signed
//! checkpoint, and inclusion and consistency proofs an examiner checks on their own with
//! the checkpoint's verifier key (`finsec-audit check-proof`); and the incident list.

use axum::Json;
use axum::extract::{FromRef, State};
use finsec_audit::{AuditQuery, Hash, Order, Query as LogQuery, SignedCheckpoint};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::incidents::Incident;
use crate::http::query::Query;
use crate::problem::Problem;
use crate::rbac::{AUDIT_READ, Actor};
use crate::state::AppState;

/// The audit routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(checkpoint))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(incidents))
}

/// A log position or size from the query: at most `i64::MAX` (what the stores hold), or 400.
fn position_param(name: &str, value: u64) -> Result<u64, String> {
    if i64::try_from(value).is_ok() {
        Ok(value)
    } else {
        Err(format!("{name} is beyond any log: at most {}", i64::MAX))
    }
}

/// Refuses callers without `audit:read`.
async fn require_auditor(state: &AppState, actor: &Actor) -> Result<(), Problem> {
    crate::rbac::admin::require_permission(state, actor, AUDIT_READ).await
}

/// Waits until every event queued so far is stored (a store outage is logged; the caller
/// then sees what is stored).
async fn flush(state: &AppState) {
    if let Err(e) = state.audit().writer().flush().await {
        tracing::warn!(error = %e, "audit log flush");
    }
}

fn internal(e: &finsec_audit::Error) -> Problem {
    Problem::internal(&format_args!("audit log: {e}"))
}

/// An RFC 3339 time as unix microseconds; the error is the reason.
fn parse_time(name: &str, text: Option<&str>) -> Result<Option<i64>, String> {
    let Some(text) = text else { return Ok(None) };
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{name} must be an RFC 3339 time"))?;
    let us = t.unix_timestamp_nanos() / 1_000;
    i64::try_from(us)
        .map(Some)
        .map_err(|_| format!("{name} is out of range"))
}

/// Filters and paging for `GET /audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchParams {
    /// The acting user id.
    user: Option<String>,
    /// The acting API key id.
    api_key: Option<String>,
    /// The action (`auth.login`, `http.request`, `security.alert`, ...).
    action: Option<String>,
    /// The resource type.
    resource_type: Option<String>,
    /// The resource id.
    resource_id: Option<String>,
    /// `success`, `failure`, `denied` or `error`.
    outcome: Option<String>,
    /// Events at or after this time (RFC 3339).
    since: Option<String>,
    /// Events before this time (RFC 3339).
    until: Option<String>,
    /// The `next` cursor of the previous page.
    after: Option<u64>,
    /// Events per page, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// `newest` (default) or `oldest` first.
    order: Option<String>,
}

/// One event of the log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoggedEvent {
    /// Its position in the log.
    pub position: u64,
    /// The event, as its canonical JSON (the bytes the log hashes).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// The events, in the order asked for.
    pub events: Vec<LoggedEvent>,
    /// The cursor of the next page (`after=`), absent on the last page.
    pub next: Option<u64>,
}

/// Searches the audit log.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    params(
        ("user" = Option<String>, Query, description = "The acting user id"),
        ("api_key" = Option<String>, Query, description = "The acting API key id"),
        ("action" = Option<String>, Query, description = "The action (auth.login, http.request, security.alert, ...)"),
        ("resource_type" = Option<String>, Query, description = "The resource type"),
        ("resource_id" = Option<String>, Query, description = "The resource id"),
        ("outcome" = Option<String>, Query, description = "success, failure, denied or error", pattern = "^(success|failure|denied|error)$"),
        ("since" = Option<String>, Query, format = DateTime, description = "Events at or after this time (RFC 3339)"),
        ("until" = Option<String>, Query, format = DateTime, description = "Events before this time (RFC 3339)"),
        ("after" = Option<u64>, Query, maximum = 9_223_372_036_854_775_807_u64, description = "The next cursor of the previous page"),
        ("limit" = Option<usize>, Query, minimum = 1, maximum = 1000, description = "Events per page, 1 to 1000 (default 100)"),
        ("order" = Option<String>, Query, description = "newest (default) or oldest first", pattern = "^(newest|oldest)$"),
    ),
    responses(
        (status = 200, description = "A page of events", body = EventPage),
        (status = 400, description = "A filter does not parse", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No audit:read permission", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    actor: Actor,
    Query(p): Query<SearchParams>,
) -> Result<Json<EventPage>, Problem> {
    require_auditor(&state, &actor).await?;
    let outcome = match p.outcome.as_deref() {
        None => None,
        Some("success") => Some(finsec_audit::Outcome::Success),
        Some("failure") => Some(finsec_audit::Outcome::Failure),
        Some("denied") => Some(finsec_audit::Outcome::Denied),
        Some("error") => Some(finsec_audit::Outcome::Error),
        Some(_) => {
            return Err(Problem::bad_request(
                "outcome must be success, failure, denied or error",
            ));
        }
    };
    let order = match p.order.as_deref() {
        None | Some("newest") => Order::NewestFirst,
        Some("oldest") => Order::OldestFirst,
        Some(_) => return Err(Problem::bad_request("order must be newest or oldest")),
    };
    let query = LogQuery {
        user: p.user,
        api_key: p.api_key,
        action: p.action,
        resource_type: p.resource_type,
        resource_id: p.resource_id,
        outcome,
        since_us: parse_time("since", p.since.as_deref()).map_err(Problem::bad_request)?,
        until_us: parse_time("until", p.until.as_deref()).map_err(Problem::bad_request)?,
        after: p
            .after
            .map(|a| position_param("after", a))
            .transpose()
            .map_err(Problem::bad_request)?,
        limit: p.limit.unwrap_or(100),
        order,
    };
    // Everything queued so far is visible to the auditor.
    flush(&state).await;
    let page = match state.audit().log().sink().query(&query).await {
        Ok(page) => page,
        Err(finsec_audit::Error::InvalidQuery(why)) => return Err(Problem::bad_request(why)),
        Err(e) => return Err(internal(&e)),
    };
    let events = page
        .events
        .into_iter()
        .map(|(position, event)| {
            let bytes = event.to_canonical().map_err(|e| e.to_string())?;
            let event = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
            Ok(LoggedEvent { position, event })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| Problem::internal(&format_args!("audit event: {e}")))?;
    Ok(Json(EventPage {
        events,
        next: page.next,
    }))
}

/// A signed checkpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    /// The tree size it covers.
    pub size: u64,
    /// The root hash (base64).
    pub root: String,
    /// The whole signed note (C2SP `signed-note` of a `tlog-checkpoint`).
    pub note: String,
    /// The verifier key of the log's signatures (`name+hash+base64`).
    pub verifier_key: String,
}

fn view(state: &AppState, signed: &SignedCheckpoint) -> CheckpointView {
    CheckpointView {
        size: signed.checkpoint().size(),
        root: signed.checkpoint().root().to_base64(),
        note: signed.note().to_owned(),
        verifier_key: state.audit().verifier().to_vkey(),
    }
}

/// Signs a checkpoint of everything queued so far (and hands it to the witness).
async fn fresh_checkpoint(state: &AppState) -> Result<SignedCheckpoint, Problem> {
    if let Err(e) = state.audit().writer().flush().await {
        return Err(Problem::unavailable(format!("audit log: {e}"), 5));
    }
    let (signed, failures) = state
        .audit()
        .log()
        .checkpoint()
        .await
        .map_err(|e| internal(&e))?;
    for (name, e) in failures.0 {
        tracing::warn!(witness = %name, error = %e, "audit witness failed");
    }
    Ok(signed)
}

/// The signed checkpoint stored at `size`, if any.
async fn stored_at(state: &AppState, size: u64) -> Result<Option<SignedCheckpoint>, Problem> {
    let notes = state
        .audit()
        .log()
        .sink()
        .checkpoints(size, size)
        .await
        .map_err(|e| internal(&e))?;
    Ok(notes
        .into_iter()
        .find_map(|(_, note)| state.audit().verifier().verify(&note).ok()))
}

/// The newest stored checkpoint, or a fresh one when none covers the log yet.
async fn newest(state: &AppState) -> Result<SignedCheckpoint, Problem> {
    let sink = state.audit().log().sink();
    let newest = sink
        .checkpoints(0, u64::MAX)
        .await
        .map_err(|e| internal(&e))?
        .into_iter()
        .rev()
        .find_map(|(_, note)| state.audit().verifier().verify(&note).ok());
    match newest {
        Some(cp) => Ok(cp),
        None => fresh_checkpoint(state).await,
    }
}

/// The newest signed checkpoint of the log (one is signed if none exists yet).
#[utoipa::path(
    get,
    path = "/audit/checkpoint",
    tag = "audit",
    responses(
        (status = 200, description = "The newest checkpoint", body = CheckpointView),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No audit:read permission", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn checkpoint(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<CheckpointView>, Problem> {
    require_auditor(&state, &actor).await?;
    let cp = newest(&state).await?;
    Ok(Json(view(&state, &cp)))
}

/// Which event, against which size.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    /// The event id.
    id: uuid::Uuid,
    /// The tree size [default: the newest checkpoint's, or a fresh checkpoint's when the
    /// event is newer].
    size: Option<u64>,
}

/// An inclusion proof with the checkpoint it verifies against.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionView {
    /// The event id.
    #[schema(value_type = String, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub id: uuid::Uuid,
    /// Its position.
    pub index: u64,
    /// The tree size.
    pub size: u64,
    /// The event's leaf hash (base64).
    pub leaf: String,
    /// The audit path, leaf level first (base64 hashes).
    pub path: Vec<String>,
    /// The signed checkpoint of that size, when one is stored.
    pub checkpoint: Option<String>,
}

/// The proof that an event is in the log the server signed.
#[utoipa::path(
    get,
    path = "/audit/proof/inclusion",
    tag = "audit",
    params(
        ("id" = String, Query, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The event id (a UUID)"),
        ("size" = Option<u64>, Query, maximum = 9_223_372_036_854_775_807_u64, description = "The tree size (default: the newest checkpoint's, or a fresh one's when the event is newer)"),
    ),
    responses(
        (status = 200, description = "The proof", body = InclusionView),
        (status = 400, description = "A parameter does not parse, or the size is beyond the log", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No audit:read permission", body = Problem),
        (status = 404, description = "No such event, or not in the log at that size", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn inclusion(
    State(state): State<AppState>,
    actor: Actor,
    Query(p): Query<InclusionParams>,
) -> Result<Json<InclusionView>, Problem> {
    require_auditor(&state, &actor).await?;
    let log = state.audit().log();
    flush(&state).await;
    let position = log
        .sink()
        .position(p.id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(|| Problem::not_found("no such event"))?;
    let (size, signed) = match p.size {
        Some(size) => {
            let size = position_param("size", size).map_err(Problem::bad_request)?;
            (size, stored_at(&state, size).await?)
        }
        None => {
            let mut cp = newest(&state).await?;
            if cp.checkpoint().size() <= position {
                cp = fresh_checkpoint(&state).await?;
            }
            (cp.checkpoint().size(), Some(cp))
        }
    };
    if position >= size {
        return Err(Problem::not_found(format!(
            "the event is at position {position}, after a log of {size}"
        )));
    }
    let proof = match log.inclusion_proof_at(position, size).await {
        Ok(proof) => proof,
        Err(finsec_audit::Error::BeyondLog { size: have, asked }) => {
            return Err(Problem::bad_request(format!(
                "size {asked} is beyond the log's {have} events"
            )));
        }
        Err(e) => return Err(internal(&e)),
    };
    Ok(Json(InclusionView {
        id: p.id,
        index: proof.index,
        size: proof.size,
        leaf: proof.leaf.to_base64(),
        path: proof.path.iter().map(Hash::to_base64).collect(),
        checkpoint: signed.map(|cp| cp.note().to_owned()),
    }))
}

/// Two tree sizes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The older size (at least 1).
    from: u64,
    /// The newer size.
    to: u64,
}

/// A consistency proof between two sizes, with their checkpoints when stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyView {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof (base64 hashes).
    pub proof: Vec<String>,
    /// The signed checkpoint of the older size, when one is stored.
    pub from_checkpoint: Option<String>,
    /// The signed checkpoint of the newer size, when one is stored.
    pub to_checkpoint: Option<String>,
}

/// The proof that the log at `to` extends the log at `from`: nothing was removed or
/// rewritten in between.
#[utoipa::path(
    get,
    path = "/audit/proof/consistency",
    tag = "audit",
    params(
        ("from" = u64, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_u64, description = "The older size (at least 1)"),
        ("to" = u64, Query, minimum = 1, maximum = 9_223_372_036_854_775_807_u64, description = "The newer size (at least `from`, at most the log's size)"),
    ),
    responses(
        (status = 200, description = "The proof", body = ConsistencyView),
        (status = 400, description = "The sizes are out of order or beyond the log", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No audit:read permission", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn consistency(
    State(state): State<AppState>,
    actor: Actor,
    Query(p): Query<ConsistencyParams>,
) -> Result<Json<ConsistencyView>, Problem> {
    require_auditor(&state, &actor).await?;
    position_param("from", p.from).map_err(Problem::bad_request)?;
    position_param("to", p.to).map_err(Problem::bad_request)?;
    let proof = match state.audit().log().consistency_proof(p.from, p.to).await {
        Ok(proof) => proof,
        Err(e @ (finsec_audit::Error::BeyondLog { .. } | finsec_audit::Error::Proof(_))) => {
            return Err(Problem::bad_request(e.to_string()));
        }
        Err(e) => return Err(internal(&e)),
    };
    Ok(Json(ConsistencyView {
        from: p.from,
        to: p.to,
        proof: proof.iter().map(Hash::to_base64).collect(),
        from_checkpoint: stored_at(&state, p.from)
            .await?
            .map(|c| c.note().to_owned()),
        to_checkpoint: stored_at(&state, p.to).await?.map(|c| c.note().to_owned()),
    }))
}

/// Paging for the incident list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// Incidents with ids below this (the `next` of the previous page).
    before: Option<i64>,
    /// Incidents per page, 1 to 500 (default 100).
    limit: Option<i64>,
}

/// A page of incidents.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncidentPage {
    /// Newest first.
    pub incidents: Vec<Incident>,
    /// The cursor of the next page (`before=`), absent on the last page.
    pub next: Option<i64>,
}

/// The security monitor's alerts, newest first.
#[utoipa::path(
    get,
    path = "/audit/incidents",
    tag = "audit",
    params(
        ("before" = Option<i64>, Query, description = "Incidents with ids below this (the next of the previous page)"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 500, description = "Incidents per page, 1 to 500 (default 100)"),
    ),
    responses(
        (status = 200, description = "A page of incidents", body = IncidentPage),
        (status = 400, description = "A parameter is out of range", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No audit:read permission", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn incidents(
    State(state): State<AppState>,
    actor: Actor,
    Query(p): Query<IncidentParams>,
) -> Result<Json<IncidentPage>, Problem> {
    require_auditor(&state, &actor).await?;
    let limit = p.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(Problem::bad_request("limit must be between 1 and 500"));
    }
    let incidents = state
        .audit()
        .incidents()
        .list(p.before, limit + 1)
        .await
        .map_err(|e| Problem::internal(&e))?;
    let more = incidents.len() as i64 > limit;
    let incidents: Vec<Incident> = incidents
        .into_iter()
        .take(usize::try_from(limit).unwrap_or(0))
        .collect();
    let next = if more {
        incidents.last().map(|i| i.id)
    } else {
        None
    };
    Ok(Json(IncidentPage { incidents, next }))
}
