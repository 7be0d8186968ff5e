//! Rate limits, built on finsec-ratelimit: per client address on every request, per address
//! on the authentication endpoints, per account and address on password and second-factor
//! attempts, and per principal on the authenticated API.
//!
//! # What is limited, and where
//!
//! | policy   | applies to                                      | keyed by                       | checked by            |
//! |----------|-------------------------------------------------|--------------------------------|-----------------------|
//! | `global` | every request (404s included)                   | client IP                      | [`global_limit`]      |
//! | `auth`   | every route under `/auth/`                      | client IP                      | [`route_limit`]       |
//! | `login`  | `POST /auth/login`, `POST /auth/mfa/verify`     | client IP, then the account    | [`LoginLimit`]        |
//! | `api`    | every other route called with a credential      | the principal (see below)      | [`route_limit`]       |
//!
//! The defaults are finsec-ratelimit's [`Policies::defaults`] (`global` 50 r/s burst 100,
//! `auth` 1 r/s burst 5, `login` 20/min per IP and 5/min per account, `api` 10 r/s burst 20);
//! `--rate-limits FILE` replaces any of them with a TOML file in finsec-ratelimit's
//! [configuration model](finsec_ratelimit::policy#configuration):
//!
//! ```toml
//! [[login]]
//! per = "ip"
//! limit = 20
//! period = "1m"
//!
//! [[login]]
//! per = "account"
//! limit = 3
//! period = "1m"
//! ```
//!
//! A policy not in the file keeps its default. The file is checked at start: a syntax error,
//! an invalid rule, a policy name the server does not use, or a rule keyed by something the
//! server cannot tell for that policy stops start-up with an error naming the place
//! (`policies.login[1].per`). `global` and `auth` may count per `ip` only, `login` per `ip`
//! and `account`, and `api` per `ip`, `key` (the credential: the API key's id, or the user for
//! a session) and `subject` (the user, across all of their API keys and sessions).
//!
//! **Accounts.** The account of a login is the case-folded username (as registration makes it
//! unique), whether or not such a user exists, so unknown names are limited exactly like
//! known ones and a 429 reveals nothing about which exist. The account of a second-factor
//! attempt is the user its `mfa_token` was issued to (the token is checked first: it is signed,
//! so it names a user and cannot be guessed), so password and code guesses against one account
//! share its budget. Accounts are stored as the SHA-256 of the case-folded name, never in
//! clear.
//!
//! **Which attempts count.** Every attempt is charged before any password or code is checked,
//! successful ones included. Charging only failures would need a second round trip after the
//! verification and would let concurrent guesses all pass the check before any of them is
//! recorded; charging every attempt is the simplest rule that bounds guesses exactly, at the
//! price of counting a user's own successful logins (5 a minute per account by default, which
//! an honest user does not reach).
//!
//! **The principal.** Requests outside `/auth/` that carry `Authorization` or `X-API-Key`
//! are authenticated by [`route_limit`] before the handler runs; the [`Principal`] is then
//! kept in the request, so the handler does not authenticate again. A credential that is
//! refused is not charged to `api` (it names nobody); the handler answers the uniform 401.
//!
//! # Client addresses
//!
//! The client is the TCP peer unless the peer is a `--trusted-proxy`; then the
//! `X-Forwarded-For` header is read from the right, skipping trusted proxies (see
//! [`finsec_ratelimit::client_ip`]). Without `--trusted-proxy`, forwarding headers are
//! ignored, so a client cannot pick its own address. IPv6 clients are limited by `/64`.
//!
//! # Answers
//!
//! A denied request gets `429 Too Many Requests` with `Retry-After` (seconds),
//! `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) and the body
//! `{"error":"rate_limited","retry_after":N}`, with `N` equal to `Retry-After`. Every other
//! response of a checked request carries `RateLimit-Policy` and `RateLimit` for the tightest
//! quota checked (the one with the fewest requests left).
//!
//! # Backends and failures
//!
//! Limits live in memory (per instance) unless `--redis-url` is given: then in Redis, on the
//! server's connection, under `<--redis-prefix>rl:`, shared by every instance with the same
//! Redis and prefix. When Redis fails, `--rate-limit-failure` decides: `fallback` (the
//! default) limits with a local in-memory store, `open` allows, `closed` denies (429,
//! `Retry-After: 1`). Every such failure is logged at warn level with its error.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use clap::{Args, ValueEnum};
use finsec_ratelimit::policy::{Policies, PoliciesConfig};
use finsec_ratelimit::{
    Decision, FailurePolicy, Identity, KeyKind, MemoryStore, Policy, RateLimitStore, RateLimiter,
    RedisStore, TrustedProxies, headers,
};
use ipnet::IpNet;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use unicode_normalization::UnicodeNormalization as _;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::extract::{API_KEY_HEADER, Principal, Via, authenticate, unavailable};
use crate::auth::users::{self, Username};
use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::redis_backend::Redis;
use crate::state::AppState;

/// The policies the server uses, and the key kinds each may count per.
pub const POLICIES: [(&str, &[KeyKind]); 4] = [
    ("global", &[KeyKind::Ip]),
    ("auth", &[KeyKind::Ip]),
    ("login", &[KeyKind::Ip, KeyKind::Account]),
    ("api", &[KeyKind::Ip, KeyKind::ApiKey, KeyKind::Subject]),
];

/// What appears between `--redis-prefix` and the limiter's keys in Redis.
pub const REDIS_SUBPREFIX: &str = "rl:";

/// What a rate-limit check answers when Redis fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum FailureMode {
    /// Allow the request (nothing is limited while Redis is down).
    Open,
    /// Deny the request (429 with `Retry-After: 1`).
    Closed,
    /// Limit with a local in-memory store, per instance.
    #[default]
    Fallback,
}

impl From<FailureMode> for FailurePolicy {
    fn from(mode: FailureMode) -> Self {
        match mode {
            FailureMode::Open => Self::FailOpen,
            FailureMode::Closed => Self::FailClosed,
            FailureMode::Fallback => Self::FallbackLocal,
        }
    }
}

/// Rate-limit settings.
#[derive(Debug, Clone, Default, Args)]
pub struct RateLimitConfig {
    /// TOML file overriding the built-in rate-limit policies (`global`, `auth`, `login`,
    /// `api`); policies it does not name keep their defaults.
    #[arg(long = "rate-limits", env = "FINSEC_RATE_LIMITS", global = true)]
    pub rate_limits: Option<PathBuf>,

    /// A proxy (address or CIDR network) whose `X-Forwarded-For` is believed; repeatable.
    /// Without one, the TCP peer is the client.
    #[arg(
        long = "trusted-proxy",
        env = "FINSEC_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_net,
        global = true
    )]
    pub trusted_proxies: Vec<IpNet>,

    /// What rate limiting does when Redis fails: `fallback` to per-instance memory, `open`
    /// (allow) or `closed` (deny).
    #[arg(
        long = "rate-limit-failure",
        env = "FINSEC_RATE_LIMIT_FAILURE",
        value_enum,
        default_value_t = FailureMode::Fallback,
        global = true
    )]
    pub rate_limit_failure: FailureMode,
}

fn parse_net(s: &str) -> Result<IpNet, String> {
    TrustedProxies::parse([s])
        .ok()
        .and_then(|p| p.networks().first().copied())
        .ok_or_else(|| format!("{s:?} is neither an IP address nor a CIDR network"))
}

/// Reads a `--rate-limits` file: the built-in policies, replaced by those the file defines.
///
/// # Errors
/// [`ServerError::Config`] naming the file and the place in it: a TOML syntax error (line
/// and column), an invalid rule (`policies.login[1].period`), a policy the server does not
/// use, or a rule counting per something its policy cannot be keyed by.
pub fn load_policies(path: Option<&Path>) -> Result<Policies> {
    let mut policies = Policies::defaults();
    let Some(path) = path else {
        return Ok(policies);
    };
    let fail = |reason: String| {
        ServerError::Config(format!("rate limits file {}: {reason}", path.display()))
    };
    let text = std::fs::read_to_string(path)
        .map_err(|source| ServerError::io("cannot read rate limits file", path, source))?;
    let config: PoliciesConfig = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
    let configured = Policies::from_config(&config).map_err(|e| fail(e.to_string()))?;
    for policy in configured.iter() {
        let Some((_, kinds)) = POLICIES.iter().find(|(name, _)| *name == policy.name()) else {
            return Err(fail(format!(
                "at policies.{}: unknown policy; the server uses global, auth, login and api",
                policy.name()
            )));
        };
        for (i, rule) in policy.rules().iter().enumerate() {
            if !kinds.contains(rule.kind()) {
                let allowed: Vec<String> = kinds.iter().map(ToString::to_string).collect();
                return Err(fail(format!(
                    "at policies.{}[{i}].per: policy {} cannot count per {}; it may count per {}",
                    policy.name(),
                    policy.name(),
                    rule.kind(),
                    allowed.join(", ")
                )));
            }
        }
    }
    policies.extend(configured);
    Ok(policies)
}

/// The server's rate limiter: the store, the failure policy, the trusted proxies and the four
/// policies. Cheap to clone.
#[derive(Clone)]
pub struct RateLimits {
    inner: Arc<Inner>,
}

struct Inner {
    limiter: RateLimiter,
    proxies: TrustedProxies,
    global: Arc<Policy>,
    auth: Arc<Policy>,
    login: Arc<Policy>,
    api: Arc<Policy>,
}

impl fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimits")
            .field("limiter", &self.inner.limiter)
            .field("proxies", &self.inner.proxies)
            .finish_non_exhaustive()
    }
}

impl RateLimits {
    /// Sets up rate limiting as configured: the policies (see [`load_policies`]), in Redis
    /// under `<--redis-prefix>rl:` when `redis` is given (the script is loaded now), in memory
    /// otherwise.
    ///
    /// # Errors
    /// [`ServerError::Config`] for a bad policy file or Redis prefix; [`ServerError::Redis`]
    /// if the script cannot be loaded.
    pub async fn open(config: &Config, redis: Option<&Redis>) -> Result<Self> {
        let settings = &config.rate_limits;
        let policies = load_policies(settings.rate_limits.as_deref())?;
        let store: Arc<dyn RateLimitStore> = match redis {
            Some(redis) => {
                let prefix = format!("{}{REDIS_SUBPREFIX}", config.auth.redis_prefix);
                let store = RedisStore::new(redis.connection(), &prefix)
                    .map_err(|e| ServerError::Config(format!("--redis-prefix: {e}")))?;
                store.load_script().await.map_err(|e| ServerError::Redis {
                    url: redis.redacted_url().to_owned(),
                    reason: format!("cannot load the rate-limit script: {e}"),
                })?;
                Arc::new(store)
            }
            None => Arc::new(MemoryStore::new()),
        };
        let limiter = RateLimiter::new(store, settings.rate_limit_failure.into());
        let limits = Self::new(
            &policies,
            limiter,
            TrustedProxies::new(settings.trusted_proxies.iter().copied()),
        )?;
        tracing::info!(
            backend = limits.inner.limiter.primary().backend(),
            failure = ?settings.rate_limit_failure,
            trusted_proxies = settings.trusted_proxies.len(),
            "rate limits ready"
        );
        Ok(limits)
    }

    /// Rate limiting with `policies` (which must hold `global`, `auth`, `login` and `api`).
    ///
    /// # Errors
    /// [`ServerError::Config`] if one of the four is missing.
    pub fn new(policies: &Policies, limiter: RateLimiter, proxies: TrustedProxies) -> Result<Self> {
        let get = |name: &str| {
            policies
                .get(name)
                .cloned()
                .map_err(|e| ServerError::Config(e.to_string()))
        };
        Ok(Self {
            inner: Arc::new(Inner {
                limiter,
                proxies,
                global: get("global")?,
                auth: get("auth")?,
                login: get("login")?,
                api: get("api")?,
            }),
        })
    }

    /// The client's address for a request from `peer` (unknown: `0.0.0.0`, one shared
    /// bucket, so a request whose peer is unknown is still limited).
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        let Some(peer) = peer else {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        self.inner.proxies.client_ip(
            peer,
            headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_bytes())),
        )
    }

    /// Checks `policy` for `identity` (cost 1), logging any backend failure at warn level.
    ///
    /// # Errors
    /// The 500 response when the check itself is impossible (a store error that is not a
    /// backend failure; logged at error level).
    async fn check(&self, policy: &Policy, identity: &Identity) -> Result<Recorded, Response> {
        match self.inner.limiter.check_policy(policy, identity, 1).await {
            Ok(outcome) => {
                for error in outcome.backend_errors() {
                    tracing::warn!(
                        policy = policy.name(),
                        failure = ?self.inner.limiter.failure_policy(),
                        error = %error,
                        "rate-limit backend failed; the failure policy decided"
                    );
                }
                Ok(Recorded::of(outcome.decision()))
            }
            Err(error) => {
                tracing::error!(policy = policy.name(), error = %error, "rate-limit check failed");
                Err(unavailable())
            }
        }
    }
}

/// What the response needs from one decision (a decision borrows its policy's quotas, so the
/// figures are taken when it is made).
#[derive(Debug, Clone)]
struct Recorded {
    allowed: bool,
    /// When denied, the longest wait.
    retry_after: Option<Duration>,
    /// How tight its tightest quota is (see [`tightness`]).
    tightness: Option<Tightness>,
    /// `RateLimit-Policy` and `RateLimit` for its tightest quota.
    policy: Option<String>,
    rate_limit: Option<String>,
}

impl Recorded {
    fn of(decision: &Decision<'_>) -> Self {
        Self {
            allowed: decision.allowed(),
            retry_after: decision.retry_after(),
            tightness: tightness(decision),
            policy: decision
                .tightest()
                .and_then(|q| headers::rate_limit_policy(std::slice::from_ref(q.quota()))),
            rate_limit: headers::rate_limit_tightest(decision),
        }
    }

    fn allowed(&self) -> bool {
        self.allowed
    }

    /// The `Retry-After` value when denied.
    fn retry_after_header(&self) -> Option<String> {
        (!self.allowed)
            .then(|| headers::retry_after_secs(self.retry_after.unwrap_or_default()).to_string())
    }
}

/// The decisions taken for one request, for its response headers.
#[derive(Debug, Clone, Default)]
struct Record(Arc<Mutex<Vec<Recorded>>>);

impl Record {
    fn push(&self, decision: Recorded) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(decision);
    }

    fn take(&self) -> Vec<Recorded> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// What [`global_limit`] leaves in the request for the checks after it.
#[derive(Debug, Clone)]
struct Checked {
    ip: IpAddr,
    record: Record,
}

/// The body of a 429.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RateLimited {
    /// Always `rate_limited`.
    pub error: String,
    /// Seconds to wait before retrying (the same as `Retry-After`).
    pub retry_after: u64,
}

/// The 429 answer for a denying `decision` (the headers are added by [`global_limit`]).
fn too_many(decision: &Recorded) -> Response {
    let wait = decision.retry_after.unwrap_or_default();
    (
        StatusCode::TOO_MANY_REQUESTS,
        Json(RateLimited {
            error: "rate_limited".to_owned(),
            retry_after: headers::retry_after_secs(wait),
        }),
    )
        .into_response()
}

/// How tight a quota answer is; the smallest is the tightest.
type Tightness = (bool, u64, std::cmp::Reverse<Duration>);

/// Orders quota answers: a denying one first, then fewest remaining, then longest wait.
fn tightness(decision: &Decision<'_>) -> Option<Tightness> {
    decision.tightest().map(|q| {
        (
            q.allowed(),
            q.remaining(),
            std::cmp::Reverse(q.retry_after()),
        )
    })
}

/// Sets `Retry-After` (if a decision denied), `RateLimit-Policy` and `RateLimit` (for the
/// tightest quota of all decisions).
fn set_headers(response: &mut Response, decisions: &[Recorded]) {
    let mut values: Vec<(&'static str, String)> = Vec::with_capacity(3);
    if let Some(tightest) = decisions
        .iter()
        .filter_map(|d| d.tightness.map(|t| (t, d)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, d)| d)
    {
        if let Some(policy) = &tightest.policy {
            values.push((headers::RATE_LIMIT_POLICY, policy.clone()));
        }
        if let Some(limit) = &tightest.rate_limit {
            values.push((headers::RATE_LIMIT, limit.clone()));
        }
    }
    if let Some(retry) = decisions.iter().find_map(Recorded::retry_after_header) {
        values.push((headers::RETRY_AFTER, retry));
    }
    let map = response.headers_mut();
    for (name, value) in values {
        if let Ok(value) = HeaderValue::from_str(&value) {
            map.insert(HeaderName::from_static(name), value);
        }
    }
}

/// Middleware for every request: the `global` policy per client address, then the response
/// headers of every check made for the request.
pub async fn global_limit(
    State(limits): State<RateLimits>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let ip = limits.client_ip(peer, request.headers());
    let record = Record::default();
    let decision = match limits
        .check(&limits.inner.global, &Identity::new().with_ip(ip))
        .await
    {
        Ok(decision) => decision,
        Err(response) => return response,
    };
    let allowed = decision.allowed();
    let mut response = if allowed {
        record.push(decision);
        request.extensions_mut().insert(Checked {
            ip,
            record: record.clone(),
        });
        next.run(request).await
    } else {
        let response = too_many(&decision);
        record.push(decision);
        response
    };
    set_headers(&mut response, &record.take());
    response
}

/// Whether the request presents a credential (which [`Principal`] would check).
fn has_credential(headers: &HeaderMap) -> bool {
    headers.contains_key(header::AUTHORIZATION) || headers.contains_key(API_KEY_HEADER)
}

/// The `api` key of a principal: the API key's id, or the user for a session.
fn principal_key(principal: &Principal) -> String {
    match &principal.via {
        Via::ApiKey { key_id, .. } => format!("k:{key_id}"),
        Via::Bearer { .. } => format!("u:{}", principal.user_id),
    }
}

/// Route middleware (after [`global_limit`]): the `auth` policy per address on `/auth/`
/// routes; elsewhere, for a request with a credential, authentication and the `api` policy
/// per principal.
pub async fn route_limit(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(checked) = request.extensions().get::<Checked>().cloned() else {
        tracing::error!("route_limit runs without global_limit in front of it");
        return unavailable();
    };
    let limits = state.rate_limits();
    let ip_only = Identity::new().with_ip(checked.ip);
    let decision = if request.uri().path().starts_with("/auth/") {
        limits.check(&limits.inner.auth, &ip_only).await
    } else if has_credential(request.headers()) {
        let now = time::OffsetDateTime::now_utc();
        match authenticate(&state, request.headers(), now).await {
            Ok(principal) => {
                let identity = ip_only
                    .with_api_key(principal_key(&principal))
                    .with_subject(principal.user_id.to_string());
                request.extensions_mut().insert(principal);
                limits.check(&limits.inner.api, &identity).await
            }
            // Refused or not checkable: the handler's extractor answers (401 or 500).
            Err(_) => return next.run(request).await,
        }
    } else {
        return next.run(request).await;
    };
    let decision = match decision {
        Ok(decision) => decision,
        Err(response) => return response,
    };
    if decision.allowed() {
        checked.record.push(decision);
        next.run(request).await
    } else {
        let response = too_many(&decision);
        checked.record.push(decision);
        response
    }
}

/// The account key of a login name: the SHA-256 (hex) of its case-folded form, the same
/// whether or not the user exists (a name that is not a valid username is folded the same
/// way, NFKC then lowercase).
pub fn account_key(username: &str) -> String {
    let folded = match Username::parse(username) {
        Ok(name) => name.key().to_owned(),
        Err(_) => username.nfkc().collect::<String>().to_lowercase(),
    };
    hex::encode(Sha256::digest(folded.as_bytes()))
}

/// The `login` policy for a handler: extract it, then call [`check_login`](Self::check_login)
/// or [`check_user`](Self::check_user) before verifying anything.
#[derive(Debug, Clone)]
pub struct LoginLimit {
    limits: RateLimits,
    checked: Checked,
}

impl<S> FromRequestParts<S> for LoginLimit
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(checked) = parts.extensions.get::<Checked>().cloned() else {
            tracing::error!("LoginLimit used without global_limit in front of it");
            return Err(unavailable());
        };
        Ok(Self {
            limits: AppState::from_ref(state).rate_limits().clone(),
            checked,
        })
    }
}

impl LoginLimit {
    /// Charges one attempt for the account `username` names (see [`account_key`]) and the
    /// client address.
    ///
    /// # Errors
    /// The response to send instead: 429 when denied, 500 when the check is impossible.
    pub async fn check_login(&self, username: &str) -> Result<(), Response> {
        self.check_account(account_key(username)).await
    }

    /// Charges one attempt for the account of `user` (a second factor for that user) and the
    /// client address. A user that no longer exists is charged under its id.
    ///
    /// # Errors
    /// As [`check_login`](Self::check_login); 500 if the user cannot be looked up.
    pub async fn check_user(
        &self,
        storage: &crate::storage::Storage,
        user: Uuid,
    ) -> Result<(), Response> {
        let account = match users::find_by_id(storage, user).await {
            Ok(Some(found)) => account_key(&found.username),
            Ok(None) => format!("id:{user}"),
            Err(e) => {
                tracing::error!(error = %e, "user lookup failed");
                return Err(unavailable());
            }
        };
        self.check_account(account).await
    }

    async fn check_account(&self, account: String) -> Result<(), Response> {
        let identity = Identity::new()
            .with_ip(self.checked.ip)
            .with_account(account);
        let limits = &self.limits;
        let decision = limits.check(&limits.inner.login, &identity).await?;
        if decision.allowed() {
            self.checked.record.push(decision);
            Ok(())
        } else {
            let response = too_many(&decision);
            self.checked.record.push(decision);
            Err(response)
        }
    }
}

/// Adds the 429 answer (its headers and body) to every operation of `api`; an operation
/// that documents its own 429 keeps its description and gets the headers.
pub fn document(api: &mut utoipa::openapi::OpenApi) {
    use std::collections::btree_map::Entry;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Content, Header, Ref, RefOr, ResponseBuilder};

    let header = |description: &str, kind: Type| {
        Header::builder()
            .schema(ObjectBuilder::new().schema_type(kind))
            .description(Some(description))
            .build()
    };
    let response = ResponseBuilder::new()
        .description("Rate limited")
        .header(
            "Retry-After",
            header("Seconds to wait before retrying", Type::Integer),
        )
        .header(
            "RateLimit-Policy",
            header(
                "The quota that denied (draft-ietf-httpapi-ratelimit-headers)",
                Type::String,
            ),
        )
        .header(
            "RateLimit",
            header("What is left of that quota, and when", Type::String),
        )
        .content(
            "application/json",
            Content::new(Some(Ref::from_schema_name("RateLimited"))),
        )
        .build();
    api.components
        .get_or_insert_with(Default::default)
        .schemas
        .insert(
            "RateLimited".to_owned(),
            <RateLimited as utoipa::PartialSchema>::schema(),
        );
    for item in api.paths.paths.values_mut() {
        for operation in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ]
        .into_iter()
        .flatten()
        {
            match operation.responses.responses.entry("429".to_owned()) {
                Entry::Vacant(entry) => {
                    entry.insert(response.clone().into());
                }
                Entry::Occupied(mut entry) => {
                    if let RefOr::T(own) = entry.get_mut() {
                        for (name, header) in &response.headers {
                            own.headers
                                .entry(name.clone())
                                .or_insert_with(|| header.clone());
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_fold_case_and_hide_the_name() {
        assert_eq!(account_key("Alice.W"), account_key("alice.w"));
        assert_eq!(account_key("ＡＬＩＣＥ"), account_key("alice"));
        assert_ne!(account_key("alice"), account_key("alicf"));
        // Not a valid username: folded the same way, still limited.
        assert_eq!(account_key("No Such User!"), account_key("no such user!"));
        let key = account_key("alice");
        assert_eq!(key.len(), 64);
        assert!(!key.contains("alice"));
    }

    #[test]
    fn policy_files_are_checked_where_they_fail() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let good = write(
            "good.toml",
            "[[login]]\nper = \"account\"\nlimit = 3\nperiod = \"1m\"\n",
        );
        let policies = load_policies(Some(&good)).unwrap();
        assert_eq!(policies.len(), 4);
        let login = policies.get("login").unwrap();
        assert_eq!(login.rules().len(), 1);
        assert_eq!(login.rules()[0].quota().limit(), 3);
        assert_eq!(
            policies.get("auth").unwrap(),
            Policies::defaults().get("auth").unwrap()
        );

        for (name, text, place) in [
            (
                "period.toml",
                "[[login]]\nper = \"ip\"\nlimit = 3\nperiod = \"1 minute\"\n",
                "policies.login[0].period",
            ),
            ("syntax.toml", "[[login]\nper = \"ip\"\n", "line 1"),
            (
                "unknown.toml",
                "[[logins]]\nper = \"ip\"\nlimit = 3\nperiod = \"1m\"\n",
                "policies.logins",
            ),
            (
                "kind.toml",
                "[[global]]\nper = \"account\"\nlimit = 3\nperiod = \"1m\"\n",
                "policies.global[0].per",
            ),
            (
                "field.toml",
                "[[api]]\nper = \"key\"\nlimit = 3\nperiod = \"1m\"\nbrust = 4\n",
                "brust",
            ),
        ] {
            let path = write(name, text);
            let error = load_policies(Some(&path)).unwrap_err().to_string();
            assert!(error.contains(name), "{error}");
            assert!(error.contains(place), "{place} not in {error}");
        }
        let missing = dir.path().join("missing.toml");
        assert!(
            load_policies(Some(&missing))
                .unwrap_err()
                .to_string()
                .contains("missing.toml")
        );
    }

    /// Log lines written by `tracing` while a future runs.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn redis_failures_follow_the_failure_policy_and_are_logged() {
        use tracing::instrument::WithSubscriber as _;

        let redis = finsec_testkit::redis().await;
        let store = RedisStore::new(redis.conn.clone(), &redis.prefix).unwrap();
        let policies = Policies::defaults();
        let global = Arc::clone(policies.get("global").unwrap());
        let identity = Identity::new().with_ip("192.0.2.7".parse().unwrap());
        // A value of the wrong type under the limiter's key: Redis answers WRONGTYPE.
        let group = &global.groups()[0];
        let key = store.storage_key(&global.key(group, &identity).unwrap(), &group.quotas()[0]);
        let mut conn = redis.conn.clone();
        let _: () = redis::cmd("HSET")
            .arg(&key)
            .arg("field")
            .arg("value")
            .query_async(&mut conn)
            .await
            .unwrap();

        for (mode, allowed, quotas) in [
            (FailureMode::Open, true, 0),
            (FailureMode::Closed, false, 1),
            (FailureMode::Fallback, true, 1),
        ] {
            let limiter = RateLimiter::new(Arc::new(store.clone()), mode.into());
            let limits = RateLimits::new(&policies, limiter, TrustedProxies::none()).unwrap();
            let logs = Captured::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .finish();
            let decision = limits
                .check(&global, &identity)
                .with_subscriber(subscriber)
                .await
                .unwrap();
            assert_eq!(decision.allowed(), allowed, "{mode:?}");
            // A decision names a quota exactly when it has a tightest one.
            assert_eq!(
                usize::from(decision.tightness.is_some()),
                quotas,
                "{mode:?}"
            );
            if !allowed {
                assert_eq!(decision.retry_after_header().as_deref(), Some("1"));
            }
            let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
            assert!(text.contains("WARN"), "{mode:?}: {text}");
            assert!(text.contains("rate-limit backend failed"), "{text}");
            assert!(text.contains("WRONGTYPE"), "{text}");
        }
        redis.cleanup().await;
    }

    #[test]
    fn failure_modes_map_onto_failure_policies() {
        assert_eq!(
            FailurePolicy::from(FailureMode::Open),
            FailurePolicy::FailOpen
        );
        assert_eq!(
            FailurePolicy::from(FailureMode::Closed),
            FailurePolicy::FailClosed
        );
        assert_eq!(
            FailurePolicy::from(FailureMode::default()),
            FailurePolicy::FallbackLocal
        );
        assert!(parse_net("10.0.0.0/8").is_ok());
        assert!(parse_net("192.0.2.1").is_ok());
        assert!(parse_net("10.0.0.0/33").is_err());
        assert!(parse_net("proxy.example").is_err());
    }
}
