//! A `tower` [`Layer`] that rate-limits HTTP requests with a [`RateLimitPolicy`] (feature `tower`).
//!
//! [`RateLimitLayer`] wraps any `tower::Service<http::Request<B>>` (axum, tonic, hyper): for
//! each request a [`KeyExtractor`] says who is asking (an [`Identity`]: client IP,
//! authenticated subject, API key id, ...), a cost function says what the route costs (1 by
//! default), and the [`RateLimiter`] checks the policy with its failure policy. Then:
//!
//! - **allowed**: the inner service answers, and its response gets `RateLimit-Policy` and
//!   `RateLimit` headers;
//! - **denied**: the layer's [`Respond`] answers ([`EmptyBody`] by default: `429 Too Many
//!   Requests` with an empty body; [`RateLimitLayer::with_response`] for a body of your own,
//!   such as a JSON problem), with `Retry-After`, `RateLimit-Policy` and `RateLimit` added,
//!   and the inner service is not called;
//! - **no identity** (the extractor returns `None`): the request passes unlimited. This is
//!   also how a layer applies to some routes only (an extractor that answers `None` outside
//!   `/auth/`), or to authenticated requests only (one that reads the principal an earlier
//!   layer put in the request's extensions);
//! - **an error that is not a backend failure** (the policy counts per something the identity
//!   lacks, a cost above a quota's capacity): [`Refusal::Failed`] (by default `500 Internal
//!   Server Error`), reported to the hook.
//!
//! **Stacked layers.** When several layers (or a check the handler makes itself) limit one
//! request, the response describes the tightest of them: each puts a [`RateLimitStatus`] in
//! the response's extensions with its headers, and a layer replaces the headers only when its
//! own decision is tighter (see [`RateLimitStatus::apply`]). With
//! [`HeaderScope::Tightest`] the headers name only the tightest quota.
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
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::client_ip::TrustedProxies;
use crate::decision::Decision;
use crate::error::Error;
use crate::failure::RateLimiter;
use crate::headers::{self, RateLimitHeaders};
use crate::policy::{Identity, RateLimitPolicy};
use crate::store::RateLimitStore;

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

/// Which quotas the headers of a response describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum HeaderScope {
    /// Every quota of the policy (`RateLimit-Policy`) and of the decision (`RateLimit`).
    #[default]
    AllQuotas,
    /// Only the decision's tightest quota (the one with the fewest requests left), in both
    /// headers: one short answer when several policies or quotas apply to a request.
    Tightest,
}

/// Why a [`RateLimitLayer`] answers instead of its inner service; a [`Respond`] turns it into
/// a response.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal<'a> {
    /// The policy denied the request.
    Denied {
        /// The policy's name.
        policy: &'a str,
        /// How long until the request would be allowed (at least the `Retry-After` the
        /// layer adds, before rounding up to whole seconds).
        retry_after: Duration,
    },
    /// The check itself is impossible (not a backend failure, which the limiter's failure
    /// policy decides): the policy counts per something the identity lacks, or the cost is
    /// above a quota's capacity. Already reported to the error hook.
    Failed(&'a Error),
}

/// Builds the response a [`RateLimitLayer`] sends instead of calling its inner service (the
/// layer adds the rate-limit headers afterwards). Implemented by [`EmptyBody`] and by any
/// `Fn(Refusal<'_>) -> http::Response<ResB>`.
pub trait Respond<ResB>: Send + Sync + 'static {
    /// The response for `refusal`.
    fn respond(&self, refusal: Refusal<'_>) -> Response<ResB>;
}

impl<F, ResB> Respond<ResB> for F
where
    F: Fn(Refusal<'_>) -> Response<ResB> + Send + Sync + 'static,
{
    fn respond(&self, refusal: Refusal<'_>) -> Response<ResB> {
        self(refusal)
    }
}

/// The default [`Respond`]: an empty body with `429 Too Many Requests` when denied, `500
/// Internal Server Error` when the check failed.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyBody;

impl<ResB: Default> Respond<ResB> for EmptyBody {
    fn respond(&self, refusal: Refusal<'_>) -> Response<ResB> {
        let status = match refusal {
            Refusal::Denied { .. } => StatusCode::TOO_MANY_REQUESTS,
            Refusal::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut response = Response::new(ResB::default());
        *response.status_mut() = status;
        response
    }
}

/// The rate-limit state a response reports, kept in its extensions next to the headers it
/// set, so that when several limits apply to one request (stacked layers, or a check made by
/// the handler itself) the response describes the tightest of them.
///
/// [`RateLimitLayer`] merges with [`apply`](Self::apply); code that checks a policy itself
/// (for example a per-account login limit that needs the request body) builds one with
/// [`from_decision`](Self::from_decision) and applies it to its response the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitStatus {
    allowed: bool,
    remaining: u64,
    retry_after: Duration,
    headers: RateLimitHeaders,
}

impl RateLimitStatus {
    /// The status of `decision` with headers covering `scope`; `None` when the decision names
    /// no quota.
    pub fn from_decision(decision: &Decision<'_>, scope: HeaderScope) -> Option<Self> {
        let tightest = decision.tightest()?;
        let headers = match scope {
            HeaderScope::AllQuotas => RateLimitHeaders::from_decision(decision),
            HeaderScope::Tightest => RateLimitHeaders {
                policy: headers::rate_limit_policy(std::slice::from_ref(tightest.quota())),
                rate_limit: headers::rate_limit_tightest(decision),
                retry_after: headers::retry_after(decision),
            },
        };
        Some(Self {
            allowed: decision.allowed(),
            remaining: tightest.remaining(),
            retry_after: tightest.retry_after(),
            headers,
        })
    }

    /// Whether the decision allowed the request.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// What its tightest quota has left.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// The header values.
    pub fn headers(&self) -> &RateLimitHeaders {
        &self.headers
    }

    /// Whether `self` is strictly tighter than `other`: a denial before an allowance, then
    /// fewer requests left, then a longer wait.
    pub fn is_tighter_than(&self, other: &Self) -> bool {
        let key = |s: &Self| (s.allowed, s.remaining, std::cmp::Reverse(s.retry_after));
        key(self) < key(other)
    }

    /// Puts this status and its headers on `response`, unless the response already reports
    /// a status at least as tight (then it is left as it is).
    ///
    /// A `Retry-After` the response carries for another reason (a `503` from the service,
    /// say) is kept: only one that an earlier denial put there is replaced.
    pub fn apply<ResB>(self, response: &mut Response<ResB>) {
        let existing = response.extensions().get::<Self>();
        if existing.is_some_and(|existing| !self.is_tighter_than(existing)) {
            return;
        }
        let denial_set_retry_after = existing.is_some_and(|existing| !existing.allowed);
        let headers = response.headers_mut();
        for name in [headers::RATE_LIMIT_POLICY, headers::RATE_LIMIT] {
            headers.remove(name);
        }
        if denial_set_retry_after || !self.allowed {
            headers.remove(headers::RETRY_AFTER);
        }
        for (name, value) in self.headers.pairs() {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), value);
            }
        }
        response.extensions_mut().insert(self);
    }
}

/// A [`Layer`] rate-limiting requests with a policy (see the [module docs](self)).
///
/// Cloning is cheap (the parts are shared); the builder methods may be called on any copy.
pub struct RateLimitLayer<K, B, R = EmptyBody, S = Arc<dyn RateLimitStore>> {
    limiter: RateLimiter<S>,
    policy: Arc<RateLimitPolicy>,
    policy_header: Option<String>,
    scope: HeaderScope,
    extractor: Arc<K>,
    cost: Option<CostFn<B>>,
    on_error: ErrorHook,
    respond: Arc<R>,
}

impl<K, B, R, S: Clone> Clone for RateLimitLayer<K, B, R, S> {
    fn clone(&self) -> Self {
        Self {
            limiter: self.limiter.clone(),
            policy: Arc::clone(&self.policy),
            policy_header: self.policy_header.clone(),
            scope: self.scope,
            extractor: Arc::clone(&self.extractor),
            cost: self.cost.clone(),
            on_error: Arc::clone(&self.on_error),
            respond: Arc::clone(&self.respond),
        }
    }
}

impl<K: fmt::Debug, B, R, S: RateLimitStore> fmt::Debug for RateLimitLayer<K, B, R, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.limiter)
            .field("policy", &self.policy.name())
            .field("scope", &self.scope)
            .field("extractor", &self.extractor)
            .finish_non_exhaustive()
    }
}

impl<K, B, S> RateLimitLayer<K, B, EmptyBody, S>
where
    K: KeyExtractor<B>,
    S: RateLimitStore,
{
    /// Limits requests with `policy`, identified by `extractor`, each of cost 1, refused with
    /// an empty body ([`EmptyBody`]).
    pub fn new(
        limiter: RateLimiter<S>,
        policy: impl Into<Arc<RateLimitPolicy>>,
        extractor: K,
    ) -> Self {
        let policy = policy.into();
        let policy_header = headers::rate_limit_policy(&policy.quotas());
        Self {
            limiter,
            policy,
            policy_header,
            scope: HeaderScope::AllQuotas,
            extractor: Arc::new(extractor),
            cost: None,
            on_error: Arc::new(default_hook),
            respond: Arc::new(EmptyBody),
        }
    }
}

impl<K, B, R, S> RateLimitLayer<K, B, R, S> {
    /// The same layer with a per-request cost (for example by route). A cost above a quota's
    /// capacity is refused as [`Refusal::Failed`], since it could never be allowed.
    #[must_use]
    pub fn with_cost(mut self, cost: impl Fn(&Request<B>) -> u32 + Send + Sync + 'static) -> Self {
        self.cost = Some(Arc::new(cost));
        self
    }

    /// The same layer reporting backend failures and configuration errors to `hook` instead of
    /// `tracing::warn!` (for example to an audit log or a metric).
    #[must_use]
    pub fn on_error(mut self, hook: impl Fn(&Error) + Send + Sync + 'static) -> Self {
        self.on_error = Arc::new(hook);
        self
    }

    /// The same layer with headers describing `scope` (by default every quota).
    #[must_use]
    pub fn with_header_scope(mut self, scope: HeaderScope) -> Self {
        self.scope = scope;
        self
    }

    /// The same layer answering refusals with `respond` (for example a JSON problem body)
    /// instead of an empty body. The rate-limit headers are added to its response.
    pub fn with_response<R2>(self, respond: R2) -> RateLimitLayer<K, B, R2, S> {
        RateLimitLayer {
            limiter: self.limiter,
            policy: self.policy,
            policy_header: self.policy_header,
            scope: self.scope,
            extractor: self.extractor,
            cost: self.cost,
            on_error: self.on_error,
            respond: Arc::new(respond),
        }
    }
}

impl<Inner, K, B, R, S: Clone> Layer<Inner> for RateLimitLayer<K, B, R, S> {
    type Service = RateLimit<Inner, K, B, R, S>;

    fn layer(&self, inner: Inner) -> Self::Service {
        RateLimit {
            inner,
            layer: Arc::new(self.clone()),
        }
    }
}

/// The service [`RateLimitLayer`] produces.
pub struct RateLimit<Inner, K, B, R = EmptyBody, S = Arc<dyn RateLimitStore>> {
    inner: Inner,
    // Shared: the service is cloned for every request, and so is the layer for its future.
    layer: Arc<RateLimitLayer<K, B, R, S>>,
}

impl<Inner: Clone, K, B, R, S> Clone for RateLimit<Inner, K, B, R, S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: Arc::clone(&self.layer),
        }
    }
}

impl<Inner: fmt::Debug, K: fmt::Debug, B, R, S: RateLimitStore> fmt::Debug
    for RateLimit<Inner, K, B, R, S>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<Inner, K, B, R, S, ResB> Service<Request<B>> for RateLimit<Inner, K, B, R, S>
where
    Inner: Service<Request<B>, Response = Response<ResB>> + Clone + Send + 'static,
    Inner::Future: Send + 'static,
    S: RateLimitStore + 'static,
    K: KeyExtractor<B>,
    R: Respond<ResB>,
    B: Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = Inner::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone is not ready; the instance that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = Arc::clone(&self.layer);
        Box::pin(async move {
            let Some(identity) = layer.extractor.identity(&request) else {
                return inner.call(request).await;
            };
            let cost = layer.cost.as_ref().map_or(1, |cost| cost(&request));
            let outcome = match layer
                .limiter
                .check_policy(&layer.policy, &identity, cost)
                .await
            {
                Ok(outcome) => outcome,
                Err(error) => {
                    (layer.on_error)(&error);
                    return Ok(layer.respond.respond(Refusal::Failed(&error)));
                }
            };
            for error in outcome.backend_errors() {
                (layer.on_error)(error);
            }
            let decision = outcome.decision();
            let status = RateLimitStatus::from_decision(decision, layer.scope).map(|mut status| {
                if layer.scope == HeaderScope::AllQuotas {
                    status.headers.policy.clone_from(&layer.policy_header);
                }
                status
            });
            let mut response = if outcome.allowed() {
                inner.call(request).await?
            } else {
                let retry_after = decision.retry_after().unwrap_or_default();
                layer.respond.respond(Refusal::Denied {
                    policy: layer.policy.name(),
                    retry_after,
                })
            };
            match status {
                Some(status) => status.apply(&mut response),
                // No quota answered (a failure policy decided): say so only when denying.
                None if !outcome.allowed() => {
                    response.headers_mut().insert(
                        HeaderName::from_static(headers::RETRY_AFTER),
                        HeaderValue::from(headers::retry_after_secs(
                            decision.retry_after().unwrap_or_default(),
                        )),
                    );
                }
                None => {}
            }
            Ok(response)
        })
    }
}
