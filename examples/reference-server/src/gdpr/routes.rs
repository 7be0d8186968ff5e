//! The GDPR routes: data-subject requests and the export download, consent, legal holds,
//! retention dry runs and erasure plans.
//!
//! A user files requests about themselves with a session (not an API key); erasing,
//! rectifying or restricting one's own account also needs one's password. A privacy officer (`gdpr:admin`, after a recent
//! login) files for another user, extends deadlines and places and releases holds;
//! `gdpr:read` reads every request, the due list, holds, dry runs and erasure plans.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{FromRef, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use finsec_audit::Outcome;
use finsec_compliance::gdpr::RecordClass;
use finsec_compliance::gdpr::consent::{ConsentAction, ConsentEvent, ConsentRecord, Purpose};
use finsec_compliance::gdpr::hold::{LegalHold, NewHold};
use finsec_compliance::gdpr::request::{
    DataSubjectRequest, NewRequest, RequestKind, RequestStatus, Verification,
};
use finsec_compliance::gdpr::retention::RetentionRun;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::io::{AsyncRead, DuplexStream, ReadBuf};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::sealing::user_subject;
use super::{GDPR_ADMIN, GDPR_READ, Gdpr};
use crate::audit::layer::{AuditNotes, Note};
use crate::auth::extract::{Principal, Via};
use crate::http::json::Json as JsonBody;
use crate::http::path::Path;
use crate::http::query::Query;
use crate::problem::{FieldError, Problem};
use crate::rbac::Actor;
use crate::rbac::admin::{internal, require_permission, require_permission_now};
use crate::state::AppState;

/// The GDPR routes.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(file_request, due_requests))
        .routes(routes!(get_request))
        .routes(routes!(extend_request))
        .routes(routes!(export))
        .routes(routes!(my_consent, record_consent))
        .routes(routes!(list_holds, place_hold))
        .routes(routes!(release_hold))
        .routes(routes!(retention_dry_run))
        .routes(routes!(erasure_plan))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn forbidden(detail: &str) -> Problem {
    Problem::new(crate::problem::ProblemType::Forbidden).detail(detail)
}

/// The refusal of a request made with an API key (GDPR requests and consent need the
/// person's own session).
fn without_session(principal: &Principal) -> Option<Problem> {
    (!principal.is_bearer()).then(|| {
        forbidden("GDPR requests and consent need a session (bearer access token), not an API key")
    })
}

fn failed(what: &str, e: &finsec_compliance::Error) -> Problem {
    match e {
        finsec_compliance::Error::Invalid { field, reason } => {
            Problem::validation(vec![FieldError::new(*field, e.code(), reason.clone())])
        }
        finsec_compliance::Error::State(reason) => Problem::conflict(reason.clone()),
        finsec_compliance::Error::SamePerson { .. } => {
            Problem::conflict(e.to_string()).extension("code", "same_person")
        }
        finsec_compliance::Error::NotFound { .. } => Problem::not_found(e.to_string()),
        _ => internal(what, e),
    }
}

/// A request to file. `Debug` leaves the password out.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestBody {
    /// What is asked.
    #[schema(
        pattern = "^(access|portability|erasure|rectification|restriction)$",
        example = "access"
    )]
    pub kind: String,
    /// Whose data: another user's id (privacy officer, `gdpr:admin`); the caller when absent.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub user_id: Option<Uuid>,
    /// What the request says beyond its kind (up to 1,024 bytes).
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub note: Option<String>,
    /// The caller's password: needed to erase, rectify or restrict one's own account.
    #[serde(default)]
    #[schema(max_length = 1024, format = Password)]
    pub password: Option<String>,
    /// Rectification: the corrected username.
    #[serde(default)]
    #[schema(min_length = 3, max_length = 64, pattern = "^[A-Za-z0-9._-]{3,64}$")]
    pub username: Option<String>,
    /// Restriction: `true` (the default) to restrict, `false` to lift (officer).
    #[serde(default)]
    pub restricted: Option<bool>,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestBody")
            .field("kind", &self.kind)
            .field("user_id", &self.user_id)
            .field("note", &self.note)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("username", &self.username)
            .field("restricted", &self.restricted)
            .finish()
    }
}

/// How a requester's identity was checked.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    /// `session`, `session+mfa`, `password`, `officer`.
    pub method: String,
    /// Who checked it.
    pub by: String,
    /// When.
    pub at: String,
}

/// A deadline's extension.
#[derive(Debug, Serialize, ToSchema)]
pub struct ExtensionView {
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// When.
    pub at: String,
}

/// A data-subject request.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    /// Its id.
    pub id: String,
    /// Whose data: the user's id.
    pub user_id: String,
    /// What was asked.
    pub kind: String,
    /// When it was received.
    pub received_at: String,
    /// Who filed it.
    pub filed_by: String,
    /// How the requester's identity was checked.
    pub verification: VerificationView,
    /// What the request says.
    pub note: String,
    /// When it must be answered (one month after receipt; three once extended).
    pub due: String,
    /// Whether it is open past its deadline.
    pub overdue: bool,
    /// The deadline's extension.
    pub extension: Option<ExtensionView>,
    /// `open`, `completed` or `refused`.
    pub status: String,
    /// When it was closed.
    pub closed_at: Option<String>,
    /// What was done (an export's manifest, an erasure's report per source, ...).
    #[schema(value_type = Option<Object>)]
    pub outcome: Option<Value>,
    /// Where the export is downloaded (access and portability).
    pub export: Option<String>,
}

fn view(r: &DataSubjectRequest, now: OffsetDateTime) -> RequestView {
    let subject = r.request.subject.as_str();
    let exportable = matches!(
        r.request.kind,
        RequestKind::Access | RequestKind::Portability
    ) && r.status != RequestStatus::Refused;
    RequestView {
        id: r.id.to_string(),
        user_id: subject.strip_prefix("user:").unwrap_or(subject).to_owned(),
        kind: r.request.kind.as_str().to_owned(),
        received_at: rfc3339(r.request.received_at),
        filed_by: r.request.filed_by.clone(),
        verification: VerificationView {
            method: r.request.verification.method.clone(),
            by: r.request.verification.by.clone(),
            at: rfc3339(r.request.verification.at),
        },
        note: r.request.note.clone(),
        due: rfc3339(r.due),
        overdue: r.is_overdue(now),
        extension: r.extension.as_ref().map(|e| ExtensionView {
            reason: e.reason.clone(),
            by: e.by.clone(),
            at: rfc3339(e.at),
        }),
        status: r.status.as_str().to_owned(),
        closed_at: r.closed_at.map(rfc3339),
        outcome: r.outcome.clone(),
        export: exportable.then(|| format!("/gdpr/requests/{}/export", r.id)),
    }
}

/// Whether `principal` may read request `r`: its subject, who filed it, or `gdpr:read`.
async fn may_read(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    r: &DataSubjectRequest,
) -> bool {
    r.request.subject == user_subject(principal.user_id)
        || r.request.filed_by == principal.user_id.to_string()
        || require_permission(state, actor, GDPR_READ).await.is_ok()
}

/// Files a data-subject request and, except for access and portability (answered by the
/// export download), carries it out at once: erasure (GDPR Art. 17), rectification of the
/// username (Art. 16), restriction of processing (Art. 18). The request records how the
/// requester was verified and its one-month deadline.
#[utoipa::path(
    post,
    path = "/gdpr/requests",
    tag = "gdpr",
    request_body = RequestBody,
    responses(
        (status = 201, description = "Filed; carried out unless it is an access or portability request (then download the export)", body = RequestView),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, the password is wrong, or (officer) the login is not recent", body = Problem),
        (status = 403, description = "Called with an API key, or another user's request without gdpr:admin", body = Problem),
        (status = 404, description = "No such user", body = Problem),
        (status = 422, description = "An unknown kind, a missing password (erasing, rectifying or restricting one's own account) or username (rectification), a bad note", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn file_request(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    JsonBody(body): JsonBody<RequestBody>,
) -> Result<(StatusCode, Json<RequestView>), Problem> {
    if let Some(refused) = without_session(&principal) {
        return Err(refused);
    }
    let kind = RequestKind::parse(&body.kind).map_err(|e| failed("request kind", &e))?;
    let now = OffsetDateTime::now_utc();
    let gdpr = state.gdpr();
    let target = body.user_id.unwrap_or(principal.user_id);
    let own = target == principal.user_id;
    let verification = if own {
        let mfa =
            matches!(&principal.via, Via::Bearer { amr, .. } if amr.iter().any(|m| m == "mfa"));
        Verification {
            method: if mfa { "session+mfa" } else { "session" }.to_owned(),
            by: principal.user_id.to_string(),
            at: now,
        }
    } else {
        require_permission_now(
            &state,
            &principal,
            &actor,
            &notes,
            GDPR_ADMIN,
            "gdpr.request",
        )
        .await?;
        // The row as stored: an erasure held back by a legal hold left a tombstone whose
        // erasure the officer completes.
        if state
            .storage()
            .stores()
            .users
            .find_by_id(target)
            .await
            .map_err(|e| internal("reading a user", &e))?
            .is_none()
        {
            return Err(Problem::not_found("no user has this id"));
        }
        Verification {
            method: "officer".to_owned(),
            by: principal.user_id.to_string(),
            at: now,
        }
    };
    if kind == RequestKind::Restriction && body.restricted == Some(false) && own {
        return Err(forbidden("a restriction is lifted by the privacy officer"));
    }
    let username = match (kind, &body.username) {
        (RequestKind::Rectification, Some(name)) => {
            Some(crate::auth::users::Username::parse(name).map_err(|reason| {
                Problem::validation(vec![FieldError::new("username", "invalid", reason)])
            })?)
        }
        (RequestKind::Rectification, None) => {
            return Err(Problem::validation(vec![FieldError::new(
                "username",
                "missing",
                "a rectification names the corrected username",
            )]));
        }
        _ => None,
    };
    let mut verification = verification;
    // What changes one's own account (erasure, rectification, restriction) needs the
    // password: a stolen session alone cannot erase, rename or lock the account.
    let changes_account = matches!(
        kind,
        RequestKind::Erasure | RequestKind::Rectification | RequestKind::Restriction
    );
    if changes_account && own {
        let Some(password) = body.password.clone() else {
            return Err(Problem::validation(vec![FieldError::new(
                "password",
                "missing",
                "erasing, rectifying or restricting your account needs your password",
            )]));
        };
        let auth = Arc::clone(state.auth());
        let admission =
            crate::auth::routes::admit(&auth).map_err(crate::auth::routes::ApiError::problem)?;
        let user = crate::auth::routes::check_password(
            &auth,
            admission,
            "gdpr.request",
            &principal.username,
            password,
            &notes,
        )
        .await
        .map_err(crate::auth::routes::ApiError::problem)?;
        if user.id != principal.user_id {
            return Err(crate::auth::routes::ApiError::BadCredentials.problem());
        }
        verification.method = "password".to_owned();
    }
    let new = NewRequest {
        subject: user_subject(target),
        kind,
        received_at: now,
        filed_by: principal.user_id.to_string(),
        verification,
        note: body.note.clone().unwrap_or_default(),
    };
    let request = gdpr
        .requests()
        .create(&new)
        .await
        .map_err(|e| failed("recording a request", &e))?;
    notes.note(
        Note::new("gdpr.request", Outcome::Success)
            .resource("gdpr_request", request.id)
            .detail("kind", kind.as_str())
            .detail("subject", target.to_string()),
    );
    let actor_id = principal.user_id.to_string();
    let subject = user_subject(target);
    let outcome = match kind {
        RequestKind::Access | RequestKind::Portability => None,
        RequestKind::Erasure => {
            let report = gdpr
                .erase(&subject, &actor_id, now)
                .await
                .map_err(|e| failed("erasure", &e))?;
            Some(serde_json::to_value(&report).map_err(|e| internal("erasure report", &e))?)
        }
        RequestKind::Rectification => {
            let changes: BTreeMap<String, Value> = username
                .iter()
                .map(|u| ("username".to_owned(), Value::String(u.as_str().to_owned())))
                .collect();
            let done = gdpr
                .registry()
                .rectify(&subject, &changes, gdpr.auditor(), &actor_id, now)
                .await
                .map_err(|e| failed("rectification", &e))?;
            Some(serde_json::to_value(&done).map_err(|e| internal("rectification", &e))?)
        }
        RequestKind::Restriction => {
            let restricted = body.restricted.unwrap_or(true);
            let done = gdpr
                .registry()
                .restrict(&subject, restricted, gdpr.auditor(), &actor_id, now)
                .await
                .map_err(|e| failed("restriction", &e))?;
            Some(json!({"restricted": restricted, "sources": done}))
        }
    };
    let request = match outcome {
        Some(outcome) => gdpr
            .requests()
            .close(request.id, RequestStatus::Completed, &outcome, now)
            .await
            .map_err(|e| failed("closing a request", &e))?,
        None => request,
    };
    Ok((StatusCode::CREATED, Json(view(&request, now))))
}

/// The due list's query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DueParams {
    /// Requests due at or before this time (RFC 3339); now when absent (the overdue ones).
    due_by: Option<String>,
    /// At most this many (1 to 1,000, default 100).
    limit: Option<u32>,
}

/// Open requests due by a time (`gdpr:read`): without `due_by`, the overdue ones.
#[utoipa::path(
    get,
    path = "/gdpr/requests",
    tag = "gdpr",
    params(
        ("due_by" = Option<String>, Query, format = DateTime, description = "Requests due at or before this time (RFC 3339); now when absent"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 100)"),
    ),
    responses(
        (status = 200, description = "Open requests, earliest deadline first", body = [RequestView]),
        (status = 400, description = "due_by is not an RFC 3339 time, or limit is out of range", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No gdpr:read permission", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn due_requests(
    State(state): State<AppState>,
    actor: Actor,
    Query(params): Query<DueParams>,
) -> Result<Json<Vec<RequestView>>, Problem> {
    require_permission(&state, &actor, GDPR_READ).await?;
    let now = OffsetDateTime::now_utc();
    let by = match &params.due_by {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|_| Problem::bad_request("due_by is not an RFC 3339 time"))?,
        None => now,
    };
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Problem::bad_request("limit is 1 to 1000"));
    }
    let due = state
        .gdpr()
        .requests()
        .due(by, limit)
        .await
        .map_err(|e| failed("listing requests", &e))?;
    Ok(Json(due.iter().map(|r| view(r, now)).collect()))
}

fn no_request() -> Problem {
    Problem::not_found("no request has this id")
}

async fn readable_request(
    state: &AppState,
    principal: &Principal,
    actor: &Actor,
    id: &str,
) -> Result<DataSubjectRequest, Problem> {
    let id: Uuid = id.parse().map_err(|_| no_request())?;
    let request = state
        .gdpr()
        .requests()
        .get(id)
        .await
        .map_err(|e| failed("reading a request", &e))?
        .ok_or_else(|| Problem::not_found("no request has this id"))?;
    if may_read(state, principal, actor, &request).await {
        Ok(request)
    } else {
        Err(Problem::not_found("no request has this id"))
    }
}

/// A request: its subject, who filed it, or `gdpr:read`.
#[utoipa::path(
    get,
    path = "/gdpr/requests/{id}",
    tag = "gdpr",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The request's id")),
    responses(
        (status = 200, description = "The request", body = RequestView),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 404, description = "No such request (or not the caller's)", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_request(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, Problem> {
    let request = readable_request(&state, &principal, &actor, &id).await?;
    Ok(Json(view(&request, OffsetDateTime::now_utc())))
}

/// Why a deadline is extended.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// The reason (1 to 1,024 bytes).
    #[schema(min_length = 1, max_length = 1024)]
    pub reason: String,
}

/// Extends a request's deadline by two months, once, before it passes, with a reason
/// (GDPR Art. 12(3); `gdpr:admin`, recent login).
#[utoipa::path(
    post,
    path = "/gdpr/requests/{id}/extend",
    tag = "gdpr",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The request's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "Extended", body = RequestView),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent", body = Problem),
        (status = 403, description = "No gdpr:admin permission, or an API key was used", body = Problem),
        (status = 404, description = "No such request", body = Problem),
        (status = 409, description = "Closed, extended already, or past its deadline", body = Problem),
        (status = 422, description = "No reason", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn extend_request(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<Json<RequestView>, Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        GDPR_ADMIN,
        "gdpr.extend",
    )
    .await?;
    let id: Uuid = id.parse().map_err(|_| no_request())?;
    let now = OffsetDateTime::now_utc();
    let extended = state
        .gdpr()
        .requests()
        .extend(id, &body.reason, &principal.user_id.to_string(), now)
        .await
        .map_err(|e| failed("extending a request", &e))?;
    notes.note(Note::new("gdpr.extend", Outcome::Success).resource("gdpr_request", id));
    Ok(Json(view(&extended, now)))
}

/// The read half of the export pipe as a response body.
struct PipeBody {
    reader: DuplexStream,
    buf: Box<[u8]>,
}

impl http_body::Body for PipeBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let mut read = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.reader).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(None),
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(http_body::Frame::data(
                Bytes::copy_from_slice(read.filled()),
            )))),
        }
    }
}

/// The export of an access or portability request: one JSON document with every source's
/// records and a closing manifest, streamed as it is read (the subject, who filed the
/// request, or `gdpr:read`). The first complete download closes the request.
#[utoipa::path(
    get,
    path = "/gdpr/requests/{id}/export",
    tag = "gdpr",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The request's id")),
    responses(
        (status = 200, description = "`{format, subject, generated_at, sources: {name: [records]}, manifest}`, streamed (`application/json` attachment); a document without its manifest was cut short", content((Object = "application/json"))),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 404, description = "No such request (or not the caller's)", body = Problem),
        (status = 409, description = "Not an access or portability request, or refused", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let request = readable_request(&state, &principal, &actor, &id).await?;
    if !matches!(
        request.request.kind,
        RequestKind::Access | RequestKind::Portability
    ) || request.status == RequestStatus::Refused
    {
        return Err(Problem::conflict(
            "only an access or portability request has an export",
        ));
    }
    let (writer, reader) = tokio::io::duplex(64 * 1024);
    let gdpr: Arc<Gdpr> = Arc::clone(state.gdpr());
    let subject = request.request.subject.clone();
    let actor_id = principal.user_id.to_string();
    let id = request.id;
    tokio::spawn(async move {
        let now = OffsetDateTime::now_utc();
        match gdpr
            .registry()
            .export(
                &subject,
                writer,
                gdpr.policies(),
                gdpr.auditor(),
                &actor_id,
                now,
            )
            .await
        {
            Ok(manifest) => {
                let outcome = json!({
                    "records": manifest.records(),
                    "sources": manifest.sources.len(),
                    "finished_at": rfc3339(manifest.finished_at),
                });
                let closed = gdpr
                    .requests()
                    .close(
                        id,
                        RequestStatus::Completed,
                        &outcome,
                        OffsetDateTime::now_utc(),
                    )
                    .await;
                if let Err(e) = closed
                    && !matches!(e, finsec_compliance::Error::State(_))
                {
                    tracing::error!(error = %e, request = %id, "closing an exported request");
                }
            }
            Err(e) => tracing::error!(error = %e, request = %id, "export cut short"),
        }
    });
    notes.note(Note::new("gdpr.export", Outcome::Success).resource("gdpr_request", id));
    let mut response = Body::new(PipeBody {
        reader,
        buf: vec![0; 64 * 1024].into_boxed_slice(),
    })
    .into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"gdpr-export-{id}.json\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// A consent entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentView {
    /// The ledger's sequence number.
    pub seq: i64,
    /// The purpose.
    pub purpose: String,
    /// `granted` or `withdrawn`.
    pub action: String,
    /// The policy version it was given under.
    pub policy_version: u32,
    /// When.
    pub at: String,
    /// Through what.
    pub channel: String,
    /// What proves it.
    pub evidence: String,
}

fn consent_view(r: &ConsentRecord) -> ConsentView {
    ConsentView {
        seq: r.seq,
        purpose: r.event.purpose.to_string(),
        action: r.event.action.as_str().to_owned(),
        policy_version: r.event.policy_version,
        at: rfc3339(r.event.at),
        channel: r.event.channel.clone(),
        evidence: r.event.evidence.clone(),
    }
}

/// The caller's consent.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentState {
    /// Per purpose, whether consent is given now.
    pub current: BTreeMap<String, bool>,
    /// Every entry, in the order recorded.
    pub history: Vec<ConsentView>,
}

/// The caller's consent: per purpose whether it is given now, and every entry.
#[utoipa::path(
    get,
    path = "/gdpr/consent",
    tag = "gdpr",
    responses(
        (status = 200, description = "The caller's consent", body = ConsentState),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn my_consent(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<ConsentState>, Problem> {
    if let Some(refused) = without_session(&principal) {
        return Err(refused);
    }
    let history = state
        .gdpr()
        .consent()
        .history(&user_subject(principal.user_id))
        .await
        .map_err(|e| failed("reading consent", &e))?;
    let mut current = BTreeMap::new();
    for r in &history {
        current.insert(r.event.purpose.to_string(), r.is_granted());
    }
    Ok(Json(ConsentState {
        current,
        history: history.iter().map(consent_view).collect(),
    }))
}

/// A consent decision.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentBody {
    /// The purpose (`marketing.email`: 1 to 64 of a-z, 0-9, `.`, `_`, `-`).
    #[schema(pattern = "^[a-z0-9._-]{1,64}$", example = "marketing.email")]
    pub purpose: String,
    /// `true` to grant, `false` to withdraw.
    pub granted: bool,
    /// The version of the consent text shown.
    #[schema(minimum = 0, maximum = 4294967295_u64)]
    pub policy_version: u32,
}

/// Grants or withdraws the caller's consent to a purpose (GDPR Art. 7): withdrawing is
/// exactly as easy as granting. Recorded with the channel `api` and the request id as
/// evidence.
#[utoipa::path(
    post,
    path = "/gdpr/consent",
    tag = "gdpr",
    request_body = ConsentBody,
    responses(
        (status = 201, description = "Recorded", body = ConsentView),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Called with an API key", body = Problem),
        (status = 422, description = "A malformed purpose", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn record_consent(
    State(state): State<AppState>,
    principal: Principal,
    notes: AuditNotes,
    request_id: Option<axum::Extension<crate::http::layers::request_id::RequestId>>,
    JsonBody(body): JsonBody<ConsentBody>,
) -> Result<(StatusCode, Json<ConsentView>), Problem> {
    if let Some(refused) = without_session(&principal) {
        return Err(refused);
    }
    let purpose = Purpose::new(body.purpose).map_err(|e| failed("purpose", &e))?;
    let evidence = request_id
        .map(|id| format!("request {}", id.as_str()))
        .unwrap_or_default();
    let event = ConsentEvent {
        subject: user_subject(principal.user_id),
        purpose,
        action: if body.granted {
            ConsentAction::Granted
        } else {
            ConsentAction::Withdrawn
        },
        policy_version: body.policy_version,
        at: OffsetDateTime::now_utc(),
        channel: "api".to_owned(),
        evidence,
    };
    let record = state
        .gdpr()
        .consent()
        .record(&event)
        .await
        .map_err(|e| failed("recording consent", &e))?;
    notes.note(
        Note::new("gdpr.consent", Outcome::Success)
            .resource("consent", record.seq)
            .detail("purpose", event.purpose.as_str())
            .detail("action", event.action.as_str()),
    );
    Ok((StatusCode::CREATED, Json(consent_view(&record))))
}

/// A legal hold.
#[derive(Debug, Serialize, ToSchema)]
pub struct HoldView {
    /// Its id.
    pub id: String,
    /// The case.
    pub case: String,
    /// The user it covers (every user when absent).
    pub user_id: Option<String>,
    /// The record class it covers (every class when absent).
    pub class: Option<String>,
    /// Who placed it.
    pub placed_by: String,
    /// Why.
    pub reason: String,
    /// When.
    pub placed_at: String,
    /// Who released it, when, why.
    #[schema(value_type = Option<Object>)]
    pub released: Option<Value>,
}

fn hold_view(h: &LegalHold) -> HoldView {
    HoldView {
        id: h.id.to_string(),
        case: h.hold.case.clone(),
        user_id: h.hold.subject.as_ref().map(|s| {
            s.as_str()
                .strip_prefix("user:")
                .unwrap_or(s.as_str())
                .to_owned()
        }),
        class: h.hold.class.as_ref().map(ToString::to_string),
        placed_by: h.hold.placed_by.clone(),
        reason: h.hold.reason.clone(),
        placed_at: rfc3339(h.hold.at),
        released: h
            .released
            .as_ref()
            .map(|r| json!({"by": r.by, "reason": r.reason, "at": rfc3339(r.at)})),
    }
}

/// Active legal holds (`gdpr:read`).
#[utoipa::path(
    get,
    path = "/gdpr/holds",
    tag = "gdpr",
    responses(
        (status = 200, description = "Active holds, oldest first", body = [HoldView]),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No gdpr:read permission", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_holds(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<HoldView>>, Problem> {
    require_permission(&state, &actor, GDPR_READ).await?;
    let holds = state
        .gdpr()
        .holds()
        .active()
        .await
        .map_err(|e| failed("listing holds", &e))?;
    Ok(Json(holds.iter().map(hold_view).collect()))
}

/// A hold to place.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    /// The case (1 to 64 printable ASCII characters without spaces).
    #[schema(pattern = "^[!-~]{1,64}$", example = "LIT-2026-017")]
    pub case: String,
    /// Only this user's records.
    #[serde(default)]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub user_id: Option<Uuid>,
    /// Only records of this class (`trades`, `orders`, `audit`, ...).
    #[serde(default)]
    #[schema(pattern = "^[a-z0-9._-]{1,64}$")]
    pub class: Option<String>,
    /// Why (1 to 1,024 bytes).
    #[schema(min_length = 1, max_length = 1024)]
    pub reason: String,
}

/// Places a legal hold (`gdpr:admin`, recent login): what it covers is neither deleted by
/// retention nor erased until a second person releases it.
#[utoipa::path(
    post,
    path = "/gdpr/holds",
    tag = "gdpr",
    request_body = HoldBody,
    responses(
        (status = 201, description = "Placed", body = HoldView),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent", body = Problem),
        (status = 403, description = "No gdpr:admin permission, or an API key was used", body = Problem),
        (status = 422, description = "A bad case, class or reason", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn place_hold(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    JsonBody(body): JsonBody<HoldBody>,
) -> Result<(StatusCode, Json<HoldView>), Problem> {
    require_permission_now(&state, &principal, &actor, &notes, GDPR_ADMIN, "gdpr.hold").await?;
    let class = body
        .class
        .map(RecordClass::new)
        .transpose()
        .map_err(|e| failed("class", &e))?;
    let hold = state
        .gdpr()
        .holds()
        .place(&NewHold {
            case: body.case,
            subject: body.user_id.map(user_subject),
            class,
            placed_by: principal.user_id.to_string(),
            reason: body.reason,
            at: OffsetDateTime::now_utc(),
        })
        .await
        .map_err(|e| failed("placing a hold", &e))?;
    notes.note(
        Note::new("gdpr.hold", Outcome::Success)
            .resource("legal_hold", hold.id)
            .detail("case", hold.hold.case.as_str()),
    );
    Ok((StatusCode::CREATED, Json(hold_view(&hold))))
}

/// Releases a legal hold (`gdpr:admin`, recent login; never by who placed it).
#[utoipa::path(
    post,
    path = "/gdpr/holds/{id}/release",
    tag = "gdpr",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The hold's id")),
    request_body = ReasonBody,
    responses(
        (status = 200, description = "Released", body = HoldView),
        (status = 400, description = "The body is not JSON", body = Problem),
        (status = 401, description = "Not authenticated, or the login is not recent", body = Problem),
        (status = 403, description = "No gdpr:admin permission, or an API key was used", body = Problem),
        (status = 404, description = "No such hold", body = Problem),
        (status = 409, description = "Released already, or the caller placed it (`same_person`)", body = Problem),
        (status = 422, description = "No reason", body = Problem),
    ),
    security(("bearer" = []))
)]
pub async fn release_hold(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    notes: AuditNotes,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ReasonBody>,
) -> Result<Json<HoldView>, Problem> {
    require_permission_now(
        &state,
        &principal,
        &actor,
        &notes,
        GDPR_ADMIN,
        "gdpr.hold_release",
    )
    .await?;
    let id: Uuid = id
        .parse()
        .map_err(|_| Problem::not_found("no hold has this id"))?;
    let hold = state
        .gdpr()
        .holds()
        .release(
            id,
            &principal.user_id.to_string(),
            &body.reason,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| failed("releasing a hold", &e))?;
    notes.note(Note::new("gdpr.hold_release", Outcome::Success).resource("legal_hold", id));
    Ok(Json(hold_view(&hold)))
}

/// The dry run's query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DryRunParams {
    /// Records of each kind to list (0 to 1,000, default 50).
    list: Option<usize>,
}

/// What a retention run of a class would delete and keep now, and why (`gdpr:read`).
/// Changes nothing; the latest runs of the class come with it.
#[utoipa::path(
    get,
    path = "/gdpr/retention/{class}",
    tag = "gdpr",
    params(
        ("class" = String, Path, pattern = "^(orders|trades)$", description = "The record class"),
        ("list" = Option<u32>, Query, minimum = 0, maximum = 1000, description = "Records of each kind to list (default 50)"),
    ),
    responses(
        (status = 200, description = "The dry run and the latest runs", body = Object),
        (status = 400, description = "list is out of range", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No gdpr:read permission", body = Problem),
        (status = 404, description = "No retention source for this class", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn retention_dry_run(
    State(state): State<AppState>,
    actor: Actor,
    Path(class): Path<String>,
    Query(params): Query<DryRunParams>,
) -> Result<Json<Value>, Problem> {
    require_permission(&state, &actor, GDPR_READ).await?;
    let list = params.list.unwrap_or(50);
    if list > 1000 {
        return Err(Problem::bad_request("list is 0 to 1000"));
    }
    let gdpr = state.gdpr();
    let source = super::retention::TableSource::new(&class, Arc::clone(&gdpr.env().store))
        .map_err(|_| Problem::not_found("no retention source for this class"))?;
    let archive = super::archive::FileArchive::new(
        gdpr.archive_dir().to_path_buf(),
        Arc::clone(gdpr.keyring()),
        crate::keys::pii_key_name().map_err(|e| internal("key name", &e))?,
    );
    let runner = RetentionRun::new(
        gdpr.policies(),
        &**gdpr.holds(),
        &**gdpr.runs(),
        &archive,
        gdpr.auditor(),
    );
    let dry = runner
        .dry_run(&source, OffsetDateTime::now_utc(), list)
        .await
        .map_err(|e| failed("retention dry run", &e))?;
    let recent = gdpr
        .runs()
        .recent(
            finsec_compliance::gdpr::retention::RetentionSource::class(&source),
            5,
        )
        .await
        .map_err(|e| failed("retention runs", &e))?;
    Ok(Json(json!({"dry_run": dry, "recent_runs": recent})))
}

/// What erasing a user would do now: per source the records and whether they would be
/// deleted, pseudonymised or kept, and why (`gdpr:read`). Changes nothing.
#[utoipa::path(
    get,
    path = "/gdpr/users/{user_id}/erasure-plan",
    tag = "gdpr",
    params(("user_id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The user's id")),
    responses(
        (status = 200, description = "The plan", body = Object),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "No gdpr:read permission", body = Problem),
        (status = 404, description = "No such user", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn erasure_plan(
    State(state): State<AppState>,
    principal: Principal,
    actor: Actor,
    Path(user_id): Path<Uuid>,
) -> Result<Json<Value>, Problem> {
    require_permission(&state, &actor, GDPR_READ).await?;
    if state
        .auth()
        .users()
        .find_by_id(user_id)
        .await
        .map_err(|e| internal("reading a user", &e))?
        .is_none()
    {
        return Err(Problem::not_found("no user has this id"));
    }
    let plan = state
        .gdpr()
        .plan_erasure(
            &user_subject(user_id),
            &principal.user_id.to_string(),
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| failed("erasure plan", &e))?;
    Ok(Json(
        serde_json::to_value(&plan).map_err(|e| internal("erasure plan", &e))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::RequestBody;

    #[test]
    fn a_request_body_never_shows_its_password() {
        let body: RequestBody = serde_json::from_str(
            r#"{"kind": "erasure", "password": "correct horse battery staple"}"#,
        )
        .unwrap();
        let shown = format!("{body:?}");
        assert!(!shown.contains("correct horse"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }
}
