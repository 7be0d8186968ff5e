//! Request timeout and body limits.
//!
//! Every request gets, in this layer:
//!
//! - a **request timeout** (`--request-timeout-secs`): a request not answered in time is
//!   answered `504` ([`ProblemType::Timeout`]) and its handler is dropped;
//! - a **body-read timeout** (`--body-read-timeout-secs`), counted from the headers: a body
//!   still arriving after it is cut off and the request answered `408`
//!   ([`ProblemType::RequestTimeout`]), so a client trickling its body in holds a task for
//!   a bounded time;
//! - a **body limit** per route: `--auth-body-limit-bytes` (8 KiB) on `/auth/...`,
//!   `--body-limit-bytes` (64 KiB) elsewhere. A request whose `Content-Length` is above the
//!   limit is answered `413` ([`ProblemType::PayloadTooLarge`]) before any of the body is
//!   read; a body without a length (chunked) is cut off as soon as it passes the limit and
//!   answered `413` too.
//!
//! A body error is recorded by the body itself, so the answer is the same whichever
//! handler or extractor was reading it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::config::LimitsConfig;
use crate::problem::{FieldError, Problem, ProblemType};

/// The path prefix whose routes get the (smaller) authentication body limit.
pub const AUTH_PREFIX: &str = "/auth/";

/// The limits this layer enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    request_timeout: Duration,
    body_read_timeout: Duration,
    body_limit: u64,
    auth_body_limit: u64,
}

impl RequestLimits {
    /// Limits with the given timeouts and body sizes (bytes).
    pub fn new(
        request_timeout: Duration,
        body_read_timeout: Duration,
        body_limit: u64,
        auth_body_limit: u64,
    ) -> Self {
        Self {
            request_timeout,
            body_read_timeout,
            body_limit,
            auth_body_limit,
        }
    }

    /// The limits the configuration asks for.
    pub fn from_config(config: &LimitsConfig) -> Self {
        Self::new(
            config.request_timeout(),
            config.body_read_timeout(),
            config.body_limit_bytes,
            config.auth_body_limit_bytes,
        )
    }

    /// The largest body accepted on `path`.
    pub fn body_limit_for(&self, path: &str) -> u64 {
        if path.starts_with(AUTH_PREFIX) {
            self.auth_body_limit
        } else {
            self.body_limit
        }
    }

    /// The time a request may take to be answered.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The time a client has to send a whole body.
    pub fn body_read_timeout(&self) -> Duration {
        self.body_read_timeout
    }
}

impl Default for RequestLimits {
    fn default() -> Self {
        Self::from_config(&LimitsConfig::default())
    }
}

/// Why a request body was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyFault {
    /// The body passed the route's limit.
    #[error("request body larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The body was not complete when the body-read timeout passed.
    #[error("request body not received within {0:?}")]
    TimedOut(Duration),
}

impl From<BodyFault> for Problem {
    fn from(fault: BodyFault) -> Self {
        match fault {
            BodyFault::TooLarge { limit } => too_large(limit),
            BodyFault::TimedOut(after) => {
                Problem::new(ProblemType::RequestTimeout).detail(format!(
                    "the request body was not received within {} s",
                    after.as_secs()
                ))
            }
        }
    }
}

/// The 413 problem; the whole body (path `""`) is also named as a `too_large` field error,
/// as the order routes have always answered it.
fn too_large(limit: u64) -> Problem {
    let message = format!("the body is larger than {limit} bytes");
    Problem::new(ProblemType::PayloadTooLarge)
        .detail(format!(
            "this route accepts bodies of at most {limit} bytes"
        ))
        .errors([FieldError::new("", "too_large", message)])
        .extension("limit", limit)
}

/// The middleware: refuses a declared length above the route's limit, wraps the body in
/// the limit and the body-read timeout, and runs the rest of the stack under the request
/// timeout (see the [module docs](self)).
pub async fn enforce(
    State(limits): State<RequestLimits>,
    request: Request,
    next: Next,
) -> Response {
    let limit = limits.body_limit_for(request.uri().path());
    // `Content-Length` (checked by the HTTP parser) is the lower bound of the size hint.
    if request.body().size_hint().lower() > limit {
        return closing(too_large(limit));
    }
    let fault = Arc::new(OnceLock::new());
    let deadline = Instant::now() + limits.body_read_timeout;
    let request = request.map(|body| {
        Body::new(GuardedBody {
            inner: body,
            limit,
            remaining: limit,
            timeout: limits.body_read_timeout,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            fault: Arc::clone(&fault),
        })
    });
    let answered = tokio::time::timeout(limits.request_timeout, next.run(request)).await;
    if let Some(fault) = fault.get() {
        return closing(Problem::from(*fault));
    }
    match answered {
        Ok(response) => response,
        Err(_) => closing(Problem::new(ProblemType::Timeout).detail(format!(
            "the request was not answered within {} s",
            limits.request_timeout.as_secs()
        ))),
    }
}

/// The response to a request whose body may be partly unread: the connection cannot carry
/// another request, and `Connection: close` tells the client so (instead of letting it
/// send its next request on a connection the server is closing).
fn closing(problem: Problem) -> Response {
    let mut response = problem.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Adds the answers of this layer to every operation of `api`: `504` everywhere, `408` and
/// `413` where there is a request body, and the hashing queue's `503` (with `Retry-After`)
/// on the routes that hash a password. An answer an operation already documents is kept.
pub fn document(api: &mut utoipa::openapi::OpenApi) {
    use std::collections::btree_map::Entry;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Content, Header, Ref, ResponseBuilder};

    let problem = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                crate::problem::PROBLEM_JSON,
                Content::new(Some(Ref::from_schema_name("Problem"))),
            )
            .build()
    };
    let timeout = problem("The request was not answered within the request timeout");
    let body_timeout = problem("The body was not received within the body-read timeout");
    let too_large = problem("The body is larger than the route accepts");
    let mut busy = problem("Too many passwords are being checked; retry after `Retry-After`");
    busy.headers.insert(
        "Retry-After".to_owned(),
        Header::builder()
            .schema(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("Seconds to wait before retrying"))
            .build(),
    );
    api.components
        .get_or_insert_with(Default::default)
        .schemas
        .entry("Problem".to_owned())
        .or_insert_with(<Problem as utoipa::PartialSchema>::schema);
    for (path, operation) in crate::openapi::operations_mut(api) {
        let hashes = matches!(path, "/auth/login" | "/auth/register");
        let has_body = operation.request_body.is_some();
        let mut answers = vec![("504", &timeout)];
        if has_body {
            answers.extend([("408", &body_timeout), ("413", &too_large)]);
        }
        if hashes {
            answers.push(("503", &busy));
        }
        for (status, response) in answers {
            if let Entry::Vacant(entry) = operation.responses.responses.entry(status.to_owned()) {
                entry.insert(response.clone().into());
            }
        }
    }
}

/// A request body cut off at a size and a deadline; the first fault is recorded in
/// `fault` for the middleware to answer.
struct GuardedBody {
    inner: Body,
    limit: u64,
    remaining: u64,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    fault: Arc<OnceLock<BodyFault>>,
}

impl fmt::Debug for GuardedBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GuardedBody")
            .field("limit", &self.limit)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl GuardedBody {
    fn fail(&self, fault: BodyFault) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let first = *self.fault.get_or_init(|| fault);
        Poll::Ready(Some(Err(axum::Error::new(first))))
    }
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Some(fault) = this.fault.get() {
            return Poll::Ready(Some(Err(axum::Error::new(*fault))));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return this.fail(BodyFault::TimedOut(this.timeout));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let len = u64::try_from(data.len()).unwrap_or(u64::MAX);
                    match this.remaining.checked_sub(len) {
                        Some(remaining) => this.remaining = remaining,
                        None => return this.fail(BodyFault::TooLarge { limit: this.limit }),
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use axum::Router;
    use axum::http::StatusCode;
    use axum::middleware;
    use axum::routing::post;
    use tower::ServiceExt as _;

    use super::*;

    const LIMIT: u64 = 2_048;
    const AUTH_LIMIT: u64 = 1_024;

    /// Counts the body it read.
    async fn read_all(body: Body) -> Response {
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => bytes.len().to_string().into_response(),
            Err(_) => (StatusCode::BAD_REQUEST, "body error").into_response(),
        }
    }

    async fn never_answers() -> Response {
        std::future::pending().await
    }

    fn app() -> Router {
        let limits = RequestLimits::new(
            Duration::from_secs(30),
            Duration::from_secs(5),
            LIMIT,
            AUTH_LIMIT,
        );
        Router::new()
            .route("/orders", post(read_all))
            .route("/auth/login", post(read_all))
            .route("/slow", post(never_answers))
            .layer(middleware::from_fn_with_state(limits, enforce))
    }

    async fn call(path: &str, body: Body) -> (StatusCode, serde_json::Value) {
        let request = Request::post(path).body(body).unwrap();
        let response = app().oneshot(request).await.unwrap();
        let status = response.status();
        let close = response.headers().get(header::CONNECTION);
        assert_eq!(
            close.is_some_and(|v| v == "close"),
            !status.is_success(),
            "{status}"
        );
        let problem = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == crate::problem::PROBLEM_JSON);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let value = if problem {
            serde_json::from_slice(&bytes).unwrap()
        } else {
            serde_json::Value::String(String::from_utf8(bytes.to_vec()).unwrap())
        };
        (status, value)
    }

    /// A body that declares `len` bytes and records whether it was ever polled.
    struct Declared {
        len: u64,
        polled: Arc<AtomicBool>,
    }

    impl HttpBody for Declared {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.polled.store(true, Ordering::SeqCst);
            Poll::Pending
        }

        fn size_hint(&self) -> SizeHint {
            SizeHint::with_exact(self.len)
        }
    }

    /// `left` chunks of `size` bytes, with no declared length (as a chunked body).
    struct Chunks {
        left: usize,
        size: usize,
    }

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if self.left == 0 {
                return Poll::Ready(None);
            }
            self.left -= 1;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from(vec![b'x'; self.size])))))
        }
    }

    fn chunked(left: usize, size: usize) -> Body {
        Body::new(Chunks { left, size })
    }

    /// One byte, then nothing more, ever (a client that stopped sending mid-body).
    struct Trickle {
        sent: bool,
    }

    impl HttpBody for Trickle {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            if self.sent {
                return Poll::Pending;
            }
            self.sent = true;
            Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"{")))))
        }
    }

    #[tokio::test]
    async fn a_declared_length_above_the_limit_is_refused_unread() {
        let polled = Arc::new(AtomicBool::new(false));
        let body = Body::new(Declared {
            len: 10_000_000,
            polled: Arc::clone(&polled),
        });
        let (status, problem) = call("/orders", body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(problem["type"], ProblemType::PayloadTooLarge.uri());
        assert_eq!(problem["limit"], LIMIT);
        assert_eq!(problem["errors"][0]["code"], "too_large");
        assert!(!polled.load(Ordering::SeqCst), "the body was read");
    }

    #[tokio::test]
    async fn a_chunked_body_is_cut_off_at_the_limit() {
        let (status, body) = call("/orders", chunked(2, 1_024)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "2048");
        let (status, problem) = call("/orders", chunked(3, 1_024)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(problem["type"], ProblemType::PayloadTooLarge.uri());
        assert_eq!(problem["status"], 413);
    }

    #[tokio::test]
    async fn auth_routes_have_their_own_limit() {
        let (status, body) = call("/auth/login", chunked(1, 1_024)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, "1024");
        let (status, problem) = call("/auth/login", chunked(2, 1_024)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(problem["limit"], AUTH_LIMIT);
        let limits = RequestLimits::default();
        assert_eq!(limits.body_limit_for("/auth/register"), 8 * 1024);
        assert_eq!(limits.body_limit_for("/orders"), 64 * 1024);
        assert_eq!(limits.body_limit_for("/authx"), 64 * 1024);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_body_is_cut_off_with_408() {
        let started = Instant::now();
        let (status, problem) = call("/orders", Body::new(Trickle { sent: false })).await;
        assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(problem["type"], ProblemType::RequestTimeout.uri());
        // Cut off at the body-read timeout (5 s), not the request timeout (30 s).
        assert_eq!(started.elapsed().as_secs(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_not_answered_in_time_gets_504() {
        let started = Instant::now();
        let (status, problem) = call("/slow", Body::empty()).await;
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(problem["type"], ProblemType::Timeout.uri());
        assert_eq!(started.elapsed().as_secs(), 30);
    }

    #[test]
    fn the_answers_are_documented() {
        let api = crate::http::openapi();
        let login = api.paths.paths["/auth/login"].post.as_ref().unwrap();
        for status in ["408", "413", "503", "504"] {
            assert!(login.responses.responses.contains_key(status), "{status}");
        }
        let health = api.paths.paths["/health"].get.as_ref().unwrap();
        assert!(health.responses.responses.contains_key("504"));
        assert!(!health.responses.responses.contains_key("413"));
        assert!(api.components.unwrap().schemas.contains_key("Problem"));
    }

    #[test]
    fn faults_are_problems() {
        let problem = Problem::from(BodyFault::TimedOut(Duration::from_secs(3)));
        assert_eq!(problem.status, 408);
        assert!(problem.detail.unwrap().contains("3 s"));
        let problem = Problem::from(BodyFault::TooLarge { limit: 10 });
        assert_eq!(problem.status, 413);
        assert_eq!(problem.extensions["limit"], 10);
    }
}
