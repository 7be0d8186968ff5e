//! A `tower` [`Layer`] that rate-limits HTTP requests with a [`Policy`] (feature `tower`).
//!
//! [`RateLimitLayer`] wraps any `tower::Service<http::Request<B>>` (axum, tonic, hyper): for
//! each request a [`KeyExtractor`] says who is asking (an [`Identity`]: client IP,
//! authenticated subject, API key id, ...), a cost function says what the route costs (1 by
//! default), and the [`RateLimiter`] checks the policy with its failure policy. Then:
//!
//! - **allowed**: the inner service answers, and its response gets `RateLimit-Policy` and
//!   `RateLimit` headers;
//! - **denied**: `429 Too Many Requests` with an empty body, `Retry-After`, `RateLimit-Policy`
//!   and `RateLimit`, and the inner service is not called;
//! - **no identity** (the extractor returns `None`): the request passes unlimited, for
//!   example requests without an API key under a per-key layer (put a per-IP layer in front);
//! - **an error that is not a backend failure** (the policy counts per something the identity
//!   lacks, a cost above a quota's capacity): `500 Internal Server Error`, reported to the hook.
//!
//! Backend failures are handled by the limiter's [`FailurePolicy`](crate::FailurePolicy) and
//! every one is passed to the error hook ([`RateLimitLayer::on_error`]); the default hook logs
//! it with `tracing::warn!` (target `finsec_ratelimit`). The headers follow
//! [`headers`](mod@crate::headers).
//!
//! The client IP comes from [`ClientIp`], which reads the direct peer's address from the
//! request's extensions ([`PeerAddr`], or a `SocketAddr`, or a function of your own such as
//! one reading axum's `ConnectInfo`) and applies the [trusted-proxy rule](crate::client_ip).
//!
//! ```
//! use std::sync::Arc;
//! use finsec_ratelimit::failure::{FailurePolicy, RateLimiter};
//! use finsec_ratelimit::tower::{ClientIp, RateLimitLayer};
//! use finsec_ratelimit::{MemoryStore, Policies, TrustedProxies};
//!
//! let limiter = RateLimiter::new(Arc::new(MemoryStore::new()), FailurePolicy::FallbackLocal);
//! let policy = Policies::defaults().get("auth")?.clone();
//! let proxies = TrustedProxies::parse(["10.0.0.0/8"])?;
//! let layer = RateLimitLayer::new(limiter, policy, ClientIp::new(proxies))
//!     .with_cost(|req: &http::Request<String>| if req.method() == http::Method::POST { 2 } else { 1 });
//! # let _ = layer;
//! # Ok::<(), finsec_ratelimit::Error>(())
//! ```

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::client_ip::TrustedProxies;
use crate::error::Error;
use crate::failure::RateLimiter;
use crate::headers::{self, RateLimitHeaders};
use crate::policy::{Identity, Policy};

/// The direct peer's address, as a request extension. Insert it where the connection is
/// accepted if the server does not already put a `SocketAddr` in the extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub IpAddr);

/// Says who a request is from. Implemented by [`ClientIp`] and by any
/// `Fn(&http::Request<B>) -> Option<Identity>`.
pub trait KeyExtractor<B>: Send + Sync + 'static {
    /// The request's identity, or `None` to let it pass without a limit.
    fn identity(&self, request: &Request<B>) -> Option<Identity>;
}

impl<B, F> KeyExtractor<B> for F
where
    F: Fn(&Request<B>) -> Option<Identity> + Send + Sync + 'static,
{
    fn identity(&self, request: &Request<B>) -> Option<Identity> {
        self(request)
    }
}

type PeerFn = Arc<dyn Fn(&http::Extensions) -> Option<IpAddr> + Send + Sync>;

/// The client-IP key extractor: the direct peer from the request's extensions, then the
/// [trusted-proxy rule](crate::client_ip) over the request's headers.
#[derive(Clone)]
pub struct ClientIp {
    proxies: TrustedProxies,
    peer: PeerFn,
}

impl fmt::Debug for ClientIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIp")
            .field("proxies", &self.proxies)
            .finish_non_exhaustive()
    }
}

impl ClientIp {
    /// Reads the peer from a [`PeerAddr`] or `SocketAddr` extension.
    pub fn new(proxies: TrustedProxies) -> Self {
        Self {
            proxies,
            peer: Arc::new(|ext: &http::Extensions| {
                ext.get::<PeerAddr>()
                    .map(|p| p.0)
                    .or_else(|| ext.get::<SocketAddr>().map(SocketAddr::ip))
            }),
        }
    }

    /// Reads the peer with `peer` instead, for example from axum's
    /// `ConnectInfo<SocketAddr>`: `|ext| ext.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())`.
    pub fn with_peer(
        mut self,
        peer: impl Fn(&http::Extensions) -> Option<IpAddr> + Send + Sync + 'static,
    ) -> Self {
        self.peer = Arc::new(peer);
        self
    }

    /// The client IP of `request`, or `None` if its peer address is unknown.
    pub fn client_ip<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        let peer = (self.peer)(request.extensions())?;
        Some(
            self.proxies.client_ip(
                peer,
                request
                    .headers()
                    .iter()
                    .map(|(name, value)| (name.as_str(), value.as_bytes())),
            ),
        )
    }
}

impl<B> KeyExtractor<B> for ClientIp {
    /// The client IP as the identity; `None` (no limit) if the peer address is unknown, so
    /// make sure the server records it.
    fn identity(&self, request: &Request<B>) -> Option<Identity> {
        self.client_ip(request)
            .map(|ip| Identity::new().with_ip(ip))
    }
}

type CostFn<B> = Arc<dyn Fn(&Request<B>) -> u32 + Send + Sync>;
type ErrorHook = Arc<dyn Fn(&Error) + Send + Sync>;

fn default_hook(error: &Error) {
    tracing::warn!(target: "finsec_ratelimit", error = %error, backend = error.is_backend(), "rate limiting degraded");
}

/// A [`Layer`] rate-limiting requests with a policy (see the [module docs](self)).
pub struct RateLimitLayer<K, B> {
    shared: Arc<Shared<K, B>>,
}

struct Shared<K, B> {
    limiter: RateLimiter,
    policy: Arc<Policy>,
    policy_header: Option<HeaderValue>,
    extractor: K,
    cost: Option<CostFn<B>>,
    on_error: ErrorHook,
}

impl<K, B> Clone for RateLimitLayer<K, B> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: fmt::Debug, B> fmt::Debug for RateLimitLayer<K, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.shared.limiter)
            .field("policy", &self.shared.policy.name())
            .field("extractor", &self.shared.extractor)
            .finish_non_exhaustive()
    }
}

impl<K, B> RateLimitLayer<K, B>
where
    K: KeyExtractor<B>,
{
    /// Limits requests with `policy`, identified by `extractor`, each of cost 1.
    pub fn new(limiter: RateLimiter, policy: impl Into<Arc<Policy>>, extractor: K) -> Self {
        let policy = policy.into();
        let policy_header = headers::rate_limit_policy(&policy.quotas())
            .and_then(|v| HeaderValue::from_str(&v).ok());
        Self {
            shared: Arc::new(Shared {
                limiter,
                policy,
                policy_header,
                extractor,
                cost: None,
                on_error: Arc::new(default_hook),
            }),
        }
    }

    fn map_shared(self, f: impl FnOnce(&mut Shared<K, B>)) -> Self {
        match Arc::try_unwrap(self.shared) {
            Ok(mut shared) => {
                f(&mut shared);
                Self {
                    shared: Arc::new(shared),
                }
            }
            // A clone exists: the builder methods are for a layer being built, which has none.
            Err(shared) => Self { shared },
        }
    }

    /// The same layer with a per-request cost (for example by route). A cost above a quota's
    /// capacity answers 500, since it could never be allowed.
    ///
    /// Call the builder methods before cloning the layer; on a clone they change nothing.
    pub fn with_cost(self, cost: impl Fn(&Request<B>) -> u32 + Send + Sync + 'static) -> Self {
        self.map_shared(|s| s.cost = Some(Arc::new(cost)))
    }

    /// The same layer reporting backend failures and configuration errors to `hook` instead of
    /// `tracing::warn!` (for example to an audit log or a metric).
    pub fn on_error(self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.map_shared(|s| s.on_error = Arc::new(hook))
    }
}

impl<S, K, B> Layer<S> for RateLimitLayer<K, B> {
    type Service = RateLimit<S, K, B>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

/// The service [`RateLimitLayer`] produces.
pub struct RateLimit<S, K, B> {
    inner: S,
    shared: Arc<Shared<K, B>>,
}

impl<S: Clone, K, B> Clone for RateLimit<S, K, B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, K: fmt::Debug, B> fmt::Debug for RateLimit<S, K, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("policy", &self.shared.policy.name())
            .field("extractor", &self.shared.extractor)
            .finish_non_exhaustive()
    }
}

impl<S, K, B, ResB> Service<Request<B>> for RateLimit<S, K, B>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    K: KeyExtractor<B>,
    B: Send + 'static,
    ResB: Default + Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready; the instance that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let Some(identity) = shared.extractor.identity(&request) else {
                return inner.call(request).await;
            };
            let cost = shared.cost.as_ref().map_or(1, |cost| cost(&request));
            let outcome = match shared
                .limiter
                .check_policy(&shared.policy, &identity, cost)
                .await
            {
                Ok(outcome) => outcome,
                Err(error) => {
                    (shared.on_error)(&error);
                    return Ok(empty(StatusCode::INTERNAL_SERVER_ERROR));
                }
            };
            for error in outcome.backend_errors() {
                (shared.on_error)(error);
            }
            let values = RateLimitHeaders::from_decision(outcome.decision());
            let mut response = if outcome.allowed() {
                inner.call(request).await?
            } else {
                empty(StatusCode::TOO_MANY_REQUESTS)
            };
            set_headers(&mut response, shared.policy_header.as_ref(), &values);
            Ok(response)
        })
    }
}

fn empty<ResB: Default>(status: StatusCode) -> Response<ResB> {
    let mut response = Response::new(ResB::default());
    *response.status_mut() = status;
    response
}

fn set_headers<ResB>(
    response: &mut Response<ResB>,
    policy: Option<&HeaderValue>,
    values: &RateLimitHeaders,
) {
    let headers = response.headers_mut();
    if let Some(policy) = policy {
        headers.insert(
            HeaderName::from_static(headers::RATE_LIMIT_POLICY),
            policy.clone(),
        );
    }
    for (name, value) in [
        (headers::RATE_LIMIT, values.rate_limit.as_deref()),
        (headers::RETRY_AFTER, values.retry_after.as_deref()),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}
