//! The order endpoints. Each is registered with `utoipa_axum::routes!`, so the OpenAPI
//! document lists exactly the routes served.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::NewOrder;
use super::store::Order;
use super::{Approved, MAX_BODY_BYTES, OrderError};
use crate::audit::layer::{AuditNotes, Note};
use crate::auth::extract::{AuthRejection, Principal};
use crate::http::layers::client_addr::ClientAddr;
use crate::http::path::Path;
use crate::problem::Problem;
use crate::rbac::Actor;
use crate::state::AppState;
use finsec_audit::Outcome;

/// The order routes and the account entitlement routes, with a [`MAX_BODY_BYTES`] body
/// limit.
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    AppState: FromRef<S>,
{
    OpenApiRouter::new()
        .routes(routes!(place_order, list_orders))
        .routes(routes!(get_order))
        .routes(routes!(approve_order))
        .merge(super::admin::router())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The authenticated user ([`Principal`]: a 401 otherwise), with its API key's scopes and
/// the client's address ([`ClientAddr`]).
impl<S> FromRequestParts<S> for Actor
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let actor = Actor::from_principal(&principal);
        // Resolved once by the client-address layer: the TCP peer, or what a trusted proxy
        // forwarded (never a header the client wrote itself).
        Ok(match parts.extensions.get::<ClientAddr>() {
            Some(addr) => actor.from_ip(addr.ip()),
            None => actor,
        })
    }
}

/// Whether the request declares a JSON body (`application/json`, parameters allowed).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn location(order: &Order) -> [(header::HeaderName, HeaderValue); 1] {
    let value = HeaderValue::from_str(&format!("/orders/{}", order.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/orders"));
    [(header::LOCATION, value)]
}

/// Places an order.
///
/// The body is validated field by field (every problem is reported at once); notes are
/// sanitised. Orders valued above the approval threshold (at the larger of their limit and
/// the reference price), orders that take the trader's or the account's day above it, and
/// sells and market orders without a reference price wait for a second person's approval
/// (202); others are accepted (201).
///
/// With an `Idempotency-Key` header, a retry (the same key and body, from the same user)
/// places nothing and answers the first request's order with its status and
/// `Idempotent-Replayed: true`; the key with another body is a 422.
#[utoipa::path(
    post,
    path = "/orders",
    tag = "orders",
    request_body(content = NewOrder, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header,
            description = "1 to 255 visible ASCII characters other than `\"` (the key may also be sent as a structured-field string, in double quotes), unique per user: a retry with the same key and body returns the first request's order instead of placing another",
            min_length = 1, max_length = 255, pattern = r#"^[!#-~]+$"#),
    ),
    responses(
        (status = 201, description = "Accepted (or, for a retry, the order the first request placed)", body = Order,
            headers(("location" = String, description = "The order's URL"),
                    ("idempotent-replayed" = String, description = "`true` when this is the order an earlier request with the same Idempotency-Key placed"))),
        (status = 202, description = "Stored, waiting for approval (see `approval_id`)", body = Order,
            headers(("location" = String, description = "The order's URL"),
                    ("idempotent-replayed" = String, description = "`true` when this is the order an earlier request with the same Idempotency-Key placed"))),
        (status = 400, description = "The body is not JSON, or the Idempotency-Key is malformed", body = Problem),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Not allowed to trade (or the API key lacks the scope)", body = Problem),
        (status = 413, description = "The body is larger than 64 KiB", body = Problem),
        (status = 415, description = "The body is not declared as application/json", body = Problem),
        (status = 422, description = "Every field error (a limit price outside the price band around the reference price is `price_band` on `limit_price`), or an Idempotency-Key already used with another body", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn place_order(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OrderError> {
    let body = if is_json(&headers) {
        body.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                OrderError::TooLarge
            } else {
                OrderError::Malformed(rejection.body_text())
            }
        })
    } else {
        Err(OrderError::UnsupportedMediaType)
    };
    let bytes;
    let body = match body {
        Ok(b) => {
            bytes = b;
            Ok(bytes.as_ref())
        }
        Err(e) => Err(e),
    };
    let key = match headers.get(IDEMPOTENCY_KEY) {
        Some(value) => Some(value.to_str().map_err(|_| OrderError::BadIdempotencyKey)?),
        None => None,
    };
    let placed = state
        .orders()
        .place_keyed_at(&actor, key, body, OffsetDateTime::now_utc())
        .await?;
    let order = placed.order;
    // A replay answers what the first request did: 202 if the order was placed pending
    // approval (it names its approval request for good), 201 otherwise.
    let status = if order.approval_id.is_some() {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    let mut response = (status, location(&order), Json(order)).into_response();
    if placed.replayed {
        response
            .headers_mut()
            .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    Ok(response)
}

/// The request header that makes `POST /orders` safe to retry.
const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The response header that marks an answer as the earlier request's order.
const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Lists the caller's own orders, newest first (at most 500).
#[utoipa::path(
    get,
    path = "/orders",
    tag = "orders",
    responses(
        (status = 200, description = "The caller's orders", body = [Order]),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Not allowed to read orders", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn list_orders(
    State(state): State<AppState>,
    actor: Actor,
) -> Result<Json<Vec<Order>>, OrderError> {
    Ok(Json(state.orders().list(&actor).await?))
}

/// Reads an order: its owner, or a role that may read every order.
#[utoipa::path(
    get,
    path = "/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The order id (a UUID)")),
    responses(
        (status = 200, description = "The order", body = Order),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "The API key lacks the orders:read scope", body = Problem),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 404, description = "No such order, or not readable by the caller", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn get_order(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<Order>, OrderError> {
    Ok(Json(state.orders().get(&actor, &id.to_string()).await?))
}

/// Approves an order waiting for approval. The initiator cannot approve their own order;
/// when the policy's quorum is reached the order is accepted (or rejected, if its initiator
/// may no longer trade).
#[utoipa::path(
    post,
    path = "/orders/{id}/approve",
    tag = "orders",
    params(("id" = String, Path, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", description = "The order id (a UUID)")),
    responses(
        (status = 200, description = "Approval recorded", body = Approved),
        (status = 401, description = "Not authenticated", body = Problem),
        (status = 403, description = "Not an approver, or the initiator", body = Problem),
        (status = 400, description = "The id is not a UUID", body = Problem),
        (status = 404, description = "No such order", body = Problem),
        (status = 409, description = "Not waiting for approval, or the approval expired", body = Problem),
    ),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn approve_order(
    State(state): State<AppState>,
    actor: Actor,
    notes: AuditNotes,
    Path(id): Path<uuid::Uuid>,
) -> Result<Json<Approved>, OrderError> {
    let result = state
        .orders()
        .approve_at(&actor, &id.to_string(), OffsetDateTime::now_utc())
        .await;
    // The maker-checker decision, beside the request event: who approved which order,
    // and how far the quorum is.
    let note = match &result {
        Ok(done) => Note::new("order.approve", Outcome::Success)
            .detail(
                "approvals",
                i64::try_from(done.approvals).unwrap_or(i64::MAX),
            )
            .detail("quorum", i64::from(done.quorum)),
        Err(OrderError::Forbidden(denial)) => {
            Note::new("order.approve", Outcome::Denied).detail("reason", denial.reason.clone())
        }
        Err(_) => Note::new("order.approve", Outcome::Failure),
    };
    notes.note(note.resource("order", id));
    Ok(Json(result?))
}
