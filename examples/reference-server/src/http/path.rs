//! A path-parameter extractor whose rejection is a problem.
//!
//! axum's [`axum::extract::Path`] answers a segment it cannot parse (an order id that is not
//! a UUID) with plain text; [`Path`] answers the same status with a
//! [`Problem`] naming the parameter's problem.

use axum::extract::FromRequestParts;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::problem::{Problem, ProblemType};

/// Path parameters, parsed as `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

/// Why [`Path`] parameters were refused (a 400 problem; 500 if the route has none).
#[derive(Debug)]
pub struct PathParamRejection(PathRejection);

impl IntoResponse for PathParamRejection {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let kind = if status.is_server_error() {
            ProblemType::Internal
        } else {
            ProblemType::BadRequest
        };
        if status.is_server_error() {
            tracing::error!(error = %self.0.body_text(), "path parameters unavailable");
        }
        Problem::new(kind)
            .with_status(status)
            .detail(self.0.body_text())
            .into_response()
    }
}

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = PathParamRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(value) =
            <axum::extract::Path<T> as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .map_err(PathParamRejection)?;
        Ok(Self(value))
    }
}
