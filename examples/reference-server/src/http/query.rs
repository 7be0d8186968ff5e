//! A query-string extractor whose rejection is a problem.
//!
//! axum's [`axum::extract::Query`] answers a query it cannot parse with plain text;
//! [`Query`] answers 400 with a [`Problem`] naming what is wrong.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::problem::Problem;

/// Query parameters, parsed as `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

/// Why the query was refused (a 400 problem).
#[derive(Debug)]
pub struct QueryRejection(String);

impl IntoResponse for QueryRejection {
    fn into_response(self) -> Response {
        Problem::bad_request(self.0).into_response()
    }
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = QueryRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Query(value) =
            <axum::extract::Query<T> as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .map_err(|e| QueryRejection(e.body_text()))?;
        Ok(Self(value))
    }
}
