//! The HTTP endpoints. Each one is registered through `utoipa_axum::routes!`, which adds
//! the route and its OpenAPI entry together.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::{Problem, ProblemType};
use crate::state::AppState;
use crate::storage::StorageBackend;

/// Overall health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every configured backend answers.
    Ok,
    /// A configured backend does not answer.
    Unavailable,
}

/// The database's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StorageHealth {
    /// Which database holds the state.
    pub backend: StorageBackend,
    /// Whether it answered `SELECT 1`.
    pub ok: bool,
}

/// Redis's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedisHealth {
    /// No Redis is configured.
    Absent,
    /// Redis answered `PING`.
    Ok,
    /// Redis is configured but did not answer.
    Error,
}

/// One key of the keyring (no key material).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeySummary {
    /// The key name.
    pub name: String,
    /// The version that wraps new data keys.
    pub primary_version: u32,
    /// Whether the primary version has encrypted enough to be rotated.
    pub rotation_due: bool,
}

/// The `/health` document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a backend does not answer (HTTP 503).
    pub status: HealthStatus,
    /// The server's version.
    pub version: String,
    /// The database.
    pub storage: StorageHealth,
    /// Redis.
    pub redis: RedisHealth,
    /// The keys of the keyring, as loaded at start.
    pub keyring: Vec<KeySummary>,
}

/// Reports whether the server and its backends work.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Every backend answers", body = Health),
        (status = 503, description = "A backend does not answer", body = Health),
    )
)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let storage_ping = async {
        match tokio::time::timeout(crate::storage::CONNECT_TIMEOUT, state.storage().ping()).await {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "health: database did not answer");
                false
            }
            Err(_) => {
                tracing::warn!("health: database check timed out");
                false
            }
        }
    };
    let redis_ping = async {
        match state.redis() {
            None => RedisHealth::Absent,
            Some(redis) => match redis.ping().await {
                Ok(()) => RedisHealth::Ok,
                Err(e) => {
                    tracing::warn!(error = %e, "health: redis did not answer");
                    RedisHealth::Error
                }
            },
        }
    };
    let (storage_ok, redis) = tokio::join!(storage_ping, redis_ping);
    let keyring = state
        .keyring()
        .status()
        .into_iter()
        .filter(|s| s.is_primary)
        .map(|s| KeySummary {
            name: s.name.to_string(),
            primary_version: s.version,
            rotation_due: s.rotation_due,
        })
        .collect();
    let healthy = storage_ok && redis != RedisHealth::Error;
    let body = Health {
        status: if healthy {
            HealthStatus::Ok
        } else {
            HealthStatus::Unavailable
        },
        version: env!("CARGO_PKG_VERSION").to_owned(),
        storage: StorageHealth {
            backend: state.storage().backend(),
            ok: storage_ok,
        },
        redis,
        keyring,
    };
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

/// The OpenAPI document, serialised once at start.
#[derive(Debug, Clone)]
pub struct OpenApiJson(pub Arc<str>);

/// The OpenAPI 3 document describing every endpoint.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This OpenAPI 3 document", content_type = "application/json", body = Object),
    )
)]
pub async fn openapi_json(State(doc): State<OpenApiJson>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        doc.0.to_string(),
    )
        .into_response()
}

/// The fallback for unknown paths: a 404 problem.
pub async fn not_found() -> Problem {
    Problem::not_found("no route for this path")
}

/// The fallback for a known path with another method: a 405 problem (axum adds `Allow`).
pub async fn method_not_allowed() -> Problem {
    Problem::new(ProblemType::MethodNotAllowed).detail("the path does not accept this method")
}
