//! HTTP: the router, its request pipeline and its handlers.
//!
//! The pipeline (request id, security headers, request timeout and body limits, client
//! address, rate limits, authentication) is described in [`layers`]. Every error answer,
//! from a handler, an extractor, the 404 and 405 fallbacks or a layer, is a
//! [`Problem`](crate::problem::Problem).

pub mod json;
pub mod layers;
pub mod path;
pub mod query;
pub mod routes;
#[cfg(test)]
mod tests;

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
use layers::request_id::RequestId;
use layers::{authenticate, client_addr, rate_limit, request_id, security_headers};
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
        .merge(crate::capabilities::routes())
}

/// The OpenAPI document of [`api_router`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = api_router().into_openapi();
    crate::openapi::document_errors(&mut api);
    layers::limits::document(&mut api);
    crate::openapi_links::document(&mut api);
    api
}

/// Builds the application: routes, the 404 fallback and every middleware layer.
///
/// # Errors
/// [`ServerError::OpenApi`] if the OpenAPI document cannot be serialised.
pub fn build_app(state: AppState) -> Result<Router> {
    let routes = app_routes(state.clone())?;
    Ok(with_pipeline(routes, &state))
}

/// The routes with their state and the 404 and 405 fallbacks, without the pipeline.
///
/// # Errors
/// [`ServerError::OpenApi`] if the OpenAPI document cannot be serialised.
pub fn app_routes(state: AppState) -> Result<Router> {
    let (router, mut api) = api_router().split_for_parts();
    crate::openapi::document_errors(&mut api);
    layers::limits::document(&mut api);
    crate::openapi_links::document(&mut api);
    let json = crate::openapi_links::to_json(&api).map_err(ServerError::OpenApi)?;
    let state = HttpState {
        app: state,
        openapi: OpenApiJson(Arc::from(json)),
    };
    Ok(router
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(state))
}

/// Wraps `routes` in the request pipeline (see [`layers`]). A layer added to `routes`
/// before this call runs after authentication, with the principal in the request.
pub fn with_pipeline(routes: Router, state: &AppState) -> Router {
    let limits = state.rate_limits();
    let request_limits = state.request_limits();
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
    routes
        .layer(middleware::from_fn(rate_limit::handler_checks))
        .layer(rate_limit::api(limits))
        .layer(middleware::from_fn(crate::audit::layer::principal))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            authenticate::authenticate,
        ))
        .layer(rate_limit::auth(limits))
        .layer(rate_limit::global(limits))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::audit::layer::record,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::controls::block,
        ))
        .layer(middleware::from_fn_with_state(
            limits.proxies().clone(),
            client_addr::client_addr,
        ))
        .layer(middleware::from_fn_with_state(
            request_limits,
            layers::limits::enforce,
        ))
        .layer(trace)
        .layer(middleware::from_fn(request_id::request_id))
        .layer(middleware::map_response(security_headers::security_headers))
}
