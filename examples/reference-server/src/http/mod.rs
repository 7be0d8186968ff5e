//! HTTP: the router, its middleware and its handlers.
//!
//! Layers, outermost first: security headers (so every response has them, 404s and
//! errors included), request id, tracing span per request, the request timeout and body
//! limits (see [`layers::limits`]), the global rate limit (see [`crate::ratelimit`]), then
//! the routes, each behind its route rate limit.

pub mod headers;
pub mod json;
pub mod layers;
pub mod request_id;
pub mod routes;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::FromRef;
use axum::http::Request;
use axum::middleware;
use tower_http::LatencyUnit;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{Result, ServerError};
use crate::openapi::ApiDoc;
use crate::state::AppState;
use request_id::RequestId;
use routes::OpenApiJson;

/// The router's state: the application state and the serialised OpenAPI document.
#[derive(Debug, Clone)]
pub struct HttpState {
    app: AppState,
    openapi: OpenApiJson,
}

impl FromRef<HttpState> for AppState {
    fn from_ref(state: &HttpState) -> Self {
        state.app.clone()
    }
}

impl FromRef<HttpState> for OpenApiJson {
    fn from_ref(state: &HttpState) -> Self {
        state.openapi.clone()
    }
}

/// Every route with its documentation. The only place routes are added.
pub fn api_router() -> OpenApiRouter<HttpState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::health))
        .routes(routes!(routes::openapi_json))
        .merge(crate::auth::routes::router())
        .merge(crate::orders::routes::router())
}

/// The OpenAPI document of [`api_router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = api_router().into_openapi();
    crate::ratelimit::document(&mut api);
    layers::limits::document(&mut api);
    api
}

/// Builds the application: routes, the 404 fallback and every middleware layer.
///
/// # Errors
/// [`ServerError::OpenApi`] if the OpenAPI document cannot be serialised.
pub fn build_app(state: AppState) -> Result<Router> {
    let (router, mut api) = api_router().split_for_parts();
    crate::ratelimit::document(&mut api);
    layers::limits::document(&mut api);
    let json = api.to_json().map_err(ServerError::OpenApi)?;
    let limits = state.rate_limits().clone();
    let request_limits = state.request_limits();
    let route_limit = middleware::from_fn_with_state(state.clone(), crate::ratelimit::route_limit);
    let state = HttpState {
        app: state,
        openapi: OpenApiJson(Arc::from(json)),
    };
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<Body>| {
            let id = request
                .extensions()
                .get::<RequestId>()
                .map_or("-", RequestId::as_str);
            tracing::info_span!(
                "request",
                method = %request.method(),
                path = %request.uri().path(),
                request_id = %id,
            )
        })
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Micros),
        );
    Ok(router
        .route_layer(route_limit)
        .fallback(routes::not_found)
        .with_state(state)
        .layer(middleware::from_fn_with_state(
            limits,
            crate::ratelimit::global_limit,
        ))
        .layer(middleware::from_fn_with_state(
            request_limits,
            layers::limits::enforce,
        ))
        .layer(trace)
        .layer(middleware::from_fn(request_id::request_id))
        .layer(middleware::map_response(headers::security_headers)))
}
