//! Rate limits, built on finsec-ratelimit: per client address on every request, per address
//! on the authentication endpoints, per account and address on password and second-factor
//! attempts, and per principal on the authenticated API.
//!
//! # What is limited, and where
//!
//! | policy   | applies to                                      | keyed by                       | checked by            |
//! |----------|-------------------------------------------------|--------------------------------|-----------------------|
//! | `global` | every request (404s included)                   | client IP                      | [`global`] layer      |
//! | `auth`   | every route under `/auth/`                      | client IP                      | [`auth`] layer        |
//! | `login`  | `POST /auth/login`, `POST /auth/mfa/verify`     | client IP, then the account    | [`LoginLimit`]        |
//! | `api`    | every other route called by a principal         | the principal (see below)      | [`api`] layer         |
//!
//! The defaults are finsec-ratelimit's [`Policies::defaults`] (`global` 50 r/s burst 100,
//! `auth` 1 r/s burst 5, `api` 10 r/s burst 20) except `login`: 20/min per IP and nothing
//! per account, since failed logins per account are counted by the lockout
//! ([`finsec_auth::lockout`]: failures, not attempts, remembered devices exempt), and an
//! attempt budget per account lets anyone keep a chosen user out from rotating addresses;
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
//! **Accounts.** A `login` rule `per = "account"` (none by default) counts the case-folded
//! username (as registration makes it unique), whether or not such a user exists, so unknown
//! names are limited exactly like known ones and a 429 reveals nothing about which exist; a
//! second-factor attempt counts for the user its `mfa_token` was issued to. Accounts are
//! stored as the SHA-256 of the case-folded name, never in clear. Such a rule charges every
//! attempt, successful ones included, before anything is checked; it bounds guesses, and it
//! hands anyone a way to keep a chosen user out, which is why the default counts per address
//! only and leaves accounts to the lockout (failures counted before the check and taken back
//! on success, so concurrent guesses are bounded too; see the login route).
//!
//! **The principal.** The authentication layer runs before the `api` layer and puts its
//! outcome in the request; the `api` layer counts requests outside `/auth/` that carry an
//! accepted credential. A credential that is refused is not charged to `api` (it names
//! nobody); the route answers the uniform 401.
//!
//! [`global`]: crate::http::layers::rate_limit::global
//! [`auth`]: crate::http::layers::rate_limit::auth
//! [`api`]: crate::http::layers::rate_limit::api
//!
//! # Client addresses
//!
//! Every policy counts the address the client-address layer resolved
//! ([`ClientAddr`]): the TCP peer unless the peer is a `--trusted-proxy`; then the
//! `X-Forwarded-For` header is read from the right, skipping trusted proxies (see
//! [`finsec_ratelimit::client_ip`]). Without `--trusted-proxy`, forwarding headers are
//! ignored, so a client cannot pick its own address. IPv6 clients are limited by `/64`.
//!
//! # Answers
//!
//! A denied request gets `429 Too Many Requests` with `Retry-After` (seconds),
//! `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers) and a problem
//! body (`application/problem+json`, `type` `https://finsec.dev/problems/rate-limited`) with
//! the extension member `retry_after`, equal to `Retry-After`. Every other
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
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::response::{IntoResponse as _, Response};
use clap::{Args, ValueEnum};
use finsec_ratelimit::policy::{Policies, PoliciesConfig};
use finsec_ratelimit::tower::{HeaderScope, RateLimitStatus};
use finsec_ratelimit::{
    FailurePolicy, Identity, KeyKind, MemoryStore, RateLimitPolicy, RateLimitStore, RateLimiter,
    RedisStore, TrustedProxies, headers,
};
use ipnet::IpNet;
use sha2::{Digest as _, Sha256};
use unicode_normalization::UnicodeNormalization as _;
use uuid::Uuid;

use crate::auth::extract::unavailable;
use crate::auth::users::{UserStore, Username};
use crate::config::Config;
use crate::error::{Result, ServerError};
use crate::http::layers::client_addr::ClientAddr;
use crate::http::layers::rate_limit::HandlerChecks;
use crate::problem::Problem;
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
    policies.insert(default_login()?);
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

/// The server's default `login` policy: 20 attempts a minute per client address, nothing
/// per account. Failed logins per account are finsec-auth's lockout's to count (failures,
/// not attempts, with remembered devices exempt): an attempt budget per account would let
/// anyone keep a chosen user out with a few requests a minute from rotating addresses.
fn default_login() -> Result<RateLimitPolicy> {
    finsec_ratelimit::Quota::per_minute(std::num::NonZeroU32::MIN.saturating_add(19))
        .named("login.ip")
        .and_then(|ip| {
            RateLimitPolicy::new(
                "login",
                vec![finsec_ratelimit::policy::Rule::new(KeyKind::Ip, ip)],
            )
        })
        .map_err(|e| ServerError::Config(format!("default login policy: {e}")))
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
    global: Arc<RateLimitPolicy>,
    auth: Arc<RateLimitPolicy>,
    login: Arc<RateLimitPolicy>,
    api: Arc<RateLimitPolicy>,
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

    /// Checks `policy` for `identity` (cost 1), logging any backend failure at warn level.
    ///
    /// # Errors
    /// The 500 problem when the check itself is impossible (a store error that is not a
    /// backend failure; logged at error level).
    pub async fn check(
        &self,
        policy: &RateLimitPolicy,
        identity: &Identity,
    ) -> Result<Checked, Response> {
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
                let decision = outcome.decision();
                Ok(Checked {
                    allowed: decision.allowed(),
                    retry_after: decision.retry_after().unwrap_or_default(),
                    status: RateLimitStatus::from_decision(decision, HeaderScope::Tightest),
                })
            }
            Err(error) => {
                tracing::error!(policy = policy.name(), error = %error, "rate-limit check failed");
                Err(unavailable())
            }
        }
    }

    /// The limiter (store and failure policy).
    pub fn limiter(&self) -> &RateLimiter {
        &self.inner.limiter
    }

    /// The trusted proxies.
    pub fn proxies(&self) -> &TrustedProxies {
        &self.inner.proxies
    }

    /// The `global` policy.
    pub fn policy_global(&self) -> &Arc<RateLimitPolicy> {
        &self.inner.global
    }

    /// The `auth` policy.
    pub fn policy_auth(&self) -> &Arc<RateLimitPolicy> {
        &self.inner.auth
    }

    /// The `api` policy.
    pub fn policy_api(&self) -> &Arc<RateLimitPolicy> {
        &self.inner.api
    }
}

/// What one check of a policy decided.
#[derive(Debug, Clone)]
pub struct Checked {
    allowed: bool,
    retry_after: Duration,
    status: Option<RateLimitStatus>,
}

impl Checked {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The status for the response's headers (`None` when no quota answered).
    pub fn status(&self) -> Option<&RateLimitStatus> {
        self.status.as_ref()
    }

    /// The 429 answer when denied (the headers are added from [`status`](Self::status)).
    fn too_many(&self) -> Response {
        Problem::rate_limited(headers::retry_after_secs(self.retry_after)).into_response()
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
    ip: IpAddr,
    checks: HandlerChecks,
}

impl<S> FromRequestParts<S> for LoginLimit
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let (Some(addr), Some(checks)) = (
            parts.extensions.get::<ClientAddr>().copied(),
            parts.extensions.get::<HandlerChecks>().cloned(),
        ) else {
            tracing::error!("LoginLimit used without the client address and rate-limit layers");
            return Err(unavailable());
        };
        Ok(Self {
            limits: AppState::from_ref(state).rate_limits().clone(),
            ip: addr.ip(),
            checks,
        })
    }
}

impl LoginLimit {
    /// The client address the attempt comes from (resolved through trusted proxies).
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Charges one attempt for the account `username` names (see [`account_key`]) and the
    /// client address.
    ///
    /// # Errors
    /// The response to send instead: a 429 problem when denied, a 500 problem when the check
    /// is impossible.
    pub async fn check_login(&self, username: &str) -> Result<(), Response> {
        self.check_account(account_key(username)).await
    }

    /// Charges one attempt for the account of `user` (a second factor for that user) and the
    /// client address. A user that no longer exists is charged under its id.
    ///
    /// # Errors
    /// As [`check_login`](Self::check_login); 500 if the user cannot be looked up.
    pub async fn check_user(&self, users: &dyn UserStore, user: Uuid) -> Result<(), Response> {
        let account = match users.find_by_id(user).await {
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
        let identity = Identity::new().with_ip(self.ip).with_account(account);
        let limits = &self.limits;
        let checked = limits.check(&limits.inner.login, &identity).await?;
        if let Some(status) = checked.status() {
            self.checks.push(status.clone());
        }
        if checked.allowed() {
            Ok(())
        } else {
            Err(checked.too_many())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

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
            let store: Arc<dyn RateLimitStore> = Arc::new(store.clone());
            let limiter = RateLimiter::new(store, mode.into());
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
            assert_eq!(usize::from(decision.status().is_some()), quotas, "{mode:?}");
            if !allowed {
                assert_eq!(
                    decision.status().unwrap().headers().retry_after.as_deref(),
                    Some("1")
                );
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
