//! The one error body of the API: RFC 9457 problem details (`application/problem+json`).
//!
//! Every error the server answers (a handler's, an extractor's rejection, a layer's 401, 403,
//! 408, 413, 429 or 503, the 404 fallback) is a [`Problem`]:
//!
//! ```json
//! {
//!   "type": "https://finsec.dev/problems/validation",
//!   "title": "The request has invalid fields",
//!   "status": 422,
//!   "detail": "2 fields are invalid",
//!   "errors": [{"path": "quantity", "code": "not_positive", "message": "must be above zero"}]
//! }
//! ```
//!
//! `type` is a stable URI per kind of problem ([`ProblemType`]); clients match on it (or on
//! its last segment, [`ProblemType::code`]), never on `title` or `detail`, which are for
//! people. `errors` is present only for field errors. A problem may carry extension members
//! (RFC 9457 §3.2), for example `retry_after` on a 429; they are flattened into the object.
//!
//! # Threat model
//!
//! A problem body never carries a secret, a credential or an internal error's text: internal
//! errors are logged with the request id and answered with a generic `detail`. Credential
//! failures all share one `type` and `detail` (see [`ProblemType::Unauthorized`]), so the
//! body does not tell which check failed.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The base of every problem `type` URI.
pub const TYPE_BASE: &str = "https://finsec.dev/problems/";

/// The kinds of problem the API answers, each with its `type` URI, title and usual status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ProblemType {
    /// 400: the body or a parameter cannot be read (malformed JSON, a bad path segment).
    BadRequest,
    /// 401: no credential, or one that is refused (one body for every reason).
    Unauthorized,
    /// 403: authenticated, but the policy denies the action.
    Forbidden,
    /// 404: no such resource or route.
    NotFound,
    /// 405: the route exists, not with this method.
    MethodNotAllowed,
    /// 408: the client did not send its request (or body) in time.
    RequestTimeout,
    /// 409: the request conflicts with the resource's state.
    Conflict,
    /// 413: the body is larger than the route accepts.
    PayloadTooLarge,
    /// 415: the body is not `application/json`.
    UnsupportedMediaType,
    /// 422: the body is JSON but fields are invalid (see `errors`).
    Validation,
    /// 429: a rate limit is exhausted (see `Retry-After`).
    RateLimited,
    /// 500: the server failed; the detail is in its log under the request id.
    Internal,
    /// 503: the server is overloaded or a backend is down (see `Retry-After` when present).
    Unavailable,
    /// 504: the request took longer than the server allows.
    Timeout,
}

impl ProblemType {
    /// Every problem type, for documentation and tests.
    pub const ALL: [Self; 14] = [
        Self::BadRequest,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::RequestTimeout,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::Validation,
        Self::RateLimited,
        Self::Internal,
        Self::Unavailable,
        Self::Timeout,
    ];

    /// The stable short code: the last segment of the `type` URI.
    pub const fn code(self) -> &'static str {
        match self {
            Self::BadRequest => "bad-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::RequestTimeout => "request-timeout",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::Validation => "validation",
            Self::RateLimited => "rate-limited",
            Self::Internal => "internal",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
        }
    }

    /// The `type` URI.
    pub fn uri(self) -> String {
        format!("{TYPE_BASE}{}", self.code())
    }

    /// The short, human-readable summary (the same for every occurrence).
    pub const fn title(self) -> &'static str {
        match self {
            Self::BadRequest => "The request cannot be read",
            Self::Unauthorized => "Authentication required",
            Self::Forbidden => "The action is not allowed",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::RequestTimeout => "The request was not received in time",
            Self::Conflict => "The request conflicts with the resource's state",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UnsupportedMediaType => "The request body must be JSON",
            Self::Validation => "The request has invalid fields",
            Self::RateLimited => "Too many requests",
            Self::Internal => "Internal error",
            Self::Unavailable => "The service is unavailable",
            Self::Timeout => "The request took too long",
        }
    }

    /// The status this kind of problem is answered with.
    pub const fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Timeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    /// Where the field is: a JSON path such as `legs[0].price`, or empty for the whole body.
    pub path: String,
    /// A stable code, such as `required`, `too_long`, `invalid_isin`.
    pub code: String,
    /// What is wrong, for people.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(
        path: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}

/// An RFC 9457 problem details object: the body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://finsec.dev/problems/validation",
    "title": "The request has invalid fields",
    "status": 422,
    "detail": "1 field is invalid",
    "errors": [{"path": "quantity", "code": "not_positive", "message": "must be above zero"}]
}))]
pub struct Problem {
    /// A URI naming the kind of problem; stable, the thing to match on.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status, repeated.
    pub status: u16,
    /// What happened this time, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The invalid fields, for 400 and 422 answers about the body.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub errors: Vec<FieldError>,
    /// Extension members (RFC 9457 §3.2), such as `retry_after` on a 429.
    #[serde(flatten)]
    #[schema(ignore)]
    pub extensions: Map<String, Value>,
    /// Headers to send with the response (not part of the body).
    #[serde(skip)]
    #[schema(ignore)]
    headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl Problem {
    /// A problem of kind `kind`, with its usual status and no detail.
    pub fn new(kind: ProblemType) -> Self {
        Self {
            type_uri: kind.uri(),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: None,
            errors: Vec::new(),
            extensions: Map::new(),
            headers: Vec::new(),
        }
    }

    /// Sets the detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Sets the status, for a kind answered with a status other than its usual one.
    #[must_use]
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status.as_u16();
        self
    }

    /// Adds field errors.
    #[must_use]
    pub fn errors(mut self, errors: impl IntoIterator<Item = FieldError>) -> Self {
        self.errors.extend(errors);
        self
    }

    /// Adds an extension member.
    #[must_use]
    pub fn extension(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.extensions.insert(name.to_owned(), value.into());
        self
    }

    /// Adds a response header (for example `Retry-After` or `WWW-Authenticate`).
    #[must_use]
    pub fn header(mut self, name: header::HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    /// 400 with a detail.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::BadRequest).detail(detail)
    }

    /// 404 with a detail.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::NotFound).detail(detail)
    }

    /// 409 with a detail.
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::Conflict).detail(detail)
    }

    /// 422 listing the invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => "1 field is invalid".to_owned(),
            n => format!("{n} fields are invalid"),
        };
        Self::new(ProblemType::Validation)
            .detail(detail)
            .errors(errors)
    }

    /// 500. `error` is logged (with the request's span); the client sees a generic detail.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        Self::server_error()
    }

    /// 500 for a failure whose cause the caller has already logged.
    pub fn server_error() -> Self {
        Self::new(ProblemType::Internal)
            .detail("the server failed; see its log for this request id")
    }

    /// 429 with the `retry_after` extension (seconds, the same as the `Retry-After` header
    /// the rate limiter adds).
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::new(ProblemType::RateLimited)
            .detail(format!(
                "rate limit exhausted; retry in {retry_after_secs} s"
            ))
            .extension("retry_after", retry_after_secs)
    }

    /// 503 with `Retry-After: retry_after_secs`.
    pub fn unavailable(detail: impl Into<String>, retry_after_secs: u64) -> Self {
        Self::new(ProblemType::Unavailable)
            .detail(detail)
            .header(header::RETRY_AFTER, HeaderValue::from(retry_after_secs))
    }

    /// The status this problem is answered with.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<ProblemType> for Problem {
    fn from(kind: ProblemType) -> Self {
        Self::new(kind)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let body = match serde_json::to_vec(&self) {
            Ok(body) => body,
            // A map of strings and JSON values always serialises; keep a valid body anyway.
            Err(_) => br#"{"type":"https://finsec.dev/problems/internal","title":"Internal error","status":500}"#.to_vec(),
        };
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_problem_is_problem_json_with_its_status_and_headers() {
        let response = Problem::validation(vec![FieldError::new(
            "quantity",
            "not_positive",
            "must be above zero",
        )])
        .header(header::RETRY_AFTER, HeaderValue::from_static("3"))
        .into_response();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let value: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "type": "https://finsec.dev/problems/validation",
                "title": "The request has invalid fields",
                "status": 422,
                "detail": "1 field is invalid",
                "errors": [{"path": "quantity", "code": "not_positive", "message": "must be above zero"}]
            })
        );
    }

    #[test]
    fn every_type_has_a_distinct_code_and_an_error_status() {
        let mut codes: Vec<_> = ProblemType::ALL.iter().map(|t| t.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ProblemType::ALL.len());
        for kind in ProblemType::ALL {
            assert!(kind.status().is_client_error() || kind.status().is_server_error());
            assert!(kind.uri().starts_with(TYPE_BASE));
        }
    }

    #[test]
    fn extensions_are_flattened_and_round_trip() {
        let problem = Problem::new(ProblemType::RateLimited).extension("retry_after", 7);
        let json = serde_json::to_value(&problem).unwrap();
        assert_eq!(json["retry_after"], 7);
        let back: Problem = serde_json::from_value(json).unwrap();
        assert_eq!(back.extensions["retry_after"], 7);
        assert_eq!(back.status, 429);
    }
}
