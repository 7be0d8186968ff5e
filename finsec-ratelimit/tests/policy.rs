//! Named policies from configuration, header rendering, the failure policy, policy checks and
//! the trading limits, on the real memory store with time as a parameter.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test loudly"
)]

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use finsec_ratelimit::failure::{FailurePolicy, RateLimiter, Source};
use finsec_ratelimit::headers::{self, RateLimitHeaders};
use finsec_ratelimit::policy::{Policies, PoliciesConfig};
use finsec_ratelimit::trading::{self, OrderToTradeConfig, OrderToTradeRatio};
use finsec_ratelimit::{
    Check, Decision, Error, Identity, KeyKind, MemoryStore, Quota, RateLimitStore, Result,
};

const T0: i64 = 1_800_000_000_000_000;

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

/// The real memory store, deciding at a time the test sets.
#[derive(Debug, Default)]
struct AtTime {
    store: MemoryStore,
    now: AtomicI64,
}

impl AtTime {
    fn new(now: i64) -> Arc<Self> {
        Arc::new(Self {
            store: MemoryStore::new(),
            now: AtomicI64::new(now),
        })
    }
    fn set(&self, now: i64) {
        self.now.store(now, Ordering::SeqCst);
    }
}

#[async_trait]
impl RateLimitStore for AtTime {
    async fn check<'q>(&self, check: Check<'_, 'q>) -> Result<Decision<'q>> {
        self.store
            .check_at_micros(check, self.now.load(Ordering::SeqCst))
    }
    fn backend(&self) -> &'static str {
        "memory-at-time"
    }
}

/// A store whose backend is down: validates like every store, then fails.
#[derive(Debug, Default)]
struct Down {
    calls: AtomicUsize,
}

#[async_trait]
impl RateLimitStore for Down {
    async fn check<'q>(&self, check: Check<'_, 'q>) -> Result<Decision<'q>> {
        check.validate()?;
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(Error::Backend {
            backend: "down",
            source: "connection refused".into(),
        })
    }
    fn backend(&self) -> &'static str {
        "down"
    }
}

fn config(json: &str) -> PoliciesConfig {
    serde_json::from_str(json).unwrap()
}

fn config_error(json: &str) -> (String, String) {
    match Policies::from_config(&config(json)) {
        Err(Error::Config { path, reason }) => (path, reason),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn policies_load_from_json_and_toml_alike() {
    let json = config(
        r#"{ "login": [ {"per": "account", "limit": 5, "period": "1m"},
                        {"per": "ip", "limit": 20, "period": "1m"} ],
             "api": [ {"per":"key","limit":10,"period":"1s","burst":20} ],
             "reports": [ {"per":"custom:tenant","limit":100,"period":"1h",
                           "algorithm":"fixed_window","name":"tenant-hour"} ] }"#,
    );
    let toml_text = r#"
        login = [ { per = "account", limit = 5, period = "1m" },
                  { per = "ip", limit = 20, period = "1m" } ]
        api = [ { per = "key", limit = 10, period = "1s", burst = 20 } ]
        reports = [ { per = "custom:tenant", limit = 100, period = "1h", algorithm = "fixed_window", name = "tenant-hour" } ]
    "#;
    let from_toml: PoliciesConfig = toml::from_str(toml_text).unwrap();
    let a = Policies::from_config(&json).unwrap();
    let b = Policies::from_config(&from_toml).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.len(), 3);
    let login = a.get("login").unwrap();
    assert_eq!(login.rules().len(), 2);
    assert_eq!(login.rules()[0].kind(), &KeyKind::Account);
    assert_eq!(login.rules()[0].quota().name(), "login.account");
    assert_eq!(login.rules()[1].quota().limit(), 20);
    let api = a.get("api").unwrap().rules()[0].quota().clone();
    assert_eq!(
        (api.limit(), api.burst(), api.period()),
        (10, 20, Duration::from_secs(1))
    );
    let reports = &a.get("reports").unwrap().rules()[0];
    assert_eq!(reports.kind(), &KeyKind::Custom("tenant".into()));
    assert_eq!(reports.quota().name(), "tenant-hour");
    assert!(matches!(a.get("nope"), Err(Error::UnknownPolicy { .. })));
    // Round trip through serde.
    let again: PoliciesConfig =
        serde_json::from_str(&serde_json::to_string(&json).unwrap()).unwrap();
    assert_eq!(again, json);
}

#[test]
fn configuration_errors_name_the_path() {
    let cases = [
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"1s","algorithm":"leaky"}]}"#,
            "policies.a[0].algorithm",
        ),
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"1 min"}]}"#,
            "policies.a[0].period",
        ),
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"400d"}]}"#,
            "policies.a[0].period",
        ),
        (
            r#"{"a": [{"per":"ip","limit":0,"period":"1s"}]}"#,
            "policies.a[0].limit",
        ),
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"1s"}, {"per":"ipp","limit":1,"period":"1s"}]}"#,
            "policies.a[1].per",
        ),
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"1s","burst":0}]}"#,
            "policies.a[0].burst",
        ),
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"1s","algorithm":"fixed_window","burst":2}]}"#,
            "policies.a[0].burst",
        ),
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"1s"}, {"per":"ip","limit":9,"period":"1h"}]}"#,
            "policies.a[1].name",
        ),
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"1s","name":"x y"}]}"#,
            "policies.a[0].name",
        ),
        (
            r#"{"a": [{"per":"ip","limit":1,"period":"1s"}], "a": [{"per":"ip","limit":2,"period":"1s"}]}"#,
            "policies.a",
        ),
        (
            r#"{"a b": [{"per":"ip","limit":1,"period":"1s"}]}"#,
            "policies.a b",
        ),
        (r#"{"a": []}"#, "policies.a"),
    ];
    for (json, path) in cases {
        let (got, reason) = config_error(json);
        assert_eq!(got, path, "{json}: {reason}");
        assert!(!reason.is_empty());
    }
    // Unknown fields are refused by the format itself.
    assert!(
        serde_json::from_str::<PoliciesConfig>(
            r#"{"a": [{"per":"ip","limit":1,"period":"1s","brust":3}]}"#
        )
        .is_err()
    );
}

#[test]
fn defaults_match_the_nginx_zones() {
    let d = Policies::defaults();
    assert_eq!(d.len(), 4);
    let api = d.get("api").unwrap();
    assert_eq!(api.rules()[0].kind(), &KeyKind::ApiKey);
    let q = api.rules()[0].quota();
    assert_eq!(
        (q.limit(), q.period(), q.burst()),
        (10, Duration::from_secs(1), 20)
    );
    let auth = d.get("auth").unwrap().rules()[0].quota().clone();
    assert_eq!(
        (auth.limit(), auth.period(), auth.burst()),
        (1, Duration::from_secs(1), 5)
    );
    let login = d.get("login").unwrap();
    let kinds: Vec<_> = login
        .rules()
        .iter()
        .map(|r| (r.kind().clone(), r.quota().limit(), r.quota().period()))
        .collect();
    assert_eq!(
        kinds,
        [
            (KeyKind::Ip, 20, Duration::from_secs(60)),
            (KeyKind::Account, 5, Duration::from_secs(60))
        ]
    );
    assert_eq!(d.get("global").unwrap().rules()[0].kind(), &KeyKind::Ip);
}

#[test]
fn headers_render_exactly() {
    let store = MemoryStore::new();
    let api = Quota::per_second(n(10))
        .with_burst(n(20))
        .unwrap()
        .named("api.key")
        .unwrap();
    let hour = Quota::per_hour(n(1000)).named("hour").unwrap();
    let quotas = [api.clone(), hour.clone()];
    assert_eq!(
        headers::rate_limit_policy(&quotas).unwrap(),
        r#""api.key";q=10;w=1;finsec-burst=20, "hour";q=1000;w=3600"#
    );
    let sub = Quota::new(n(3), Duration::from_millis(1500))
        .unwrap()
        .named("sub")
        .unwrap();
    assert_eq!(headers::rate_limit_policy(&[sub]).unwrap(), r#""sub";q=3"#);
    assert_eq!(headers::rate_limit_policy(&[]), None);

    let check = Check::new("k", &quotas);
    let first = store.check_at_micros(check, T0).unwrap();
    let h = RateLimitHeaders::from_decision(&first);
    // GCRA: 19 of the burst left, fully refilled in 0.1 s (rounded up to 1); the hour quota
    // has 999 left and is full again after 3.6 s.
    assert_eq!(
        h.rate_limit.as_deref(),
        Some(r#""api.key";r=19;t=1, "hour";r=999;t=4"#)
    );
    assert_eq!(h.retry_after, None);
    assert_eq!(
        headers::rate_limit_tightest(&first).as_deref(),
        Some(r#""api.key";r=19;t=1"#)
    );
    for _ in 0..19 {
        assert!(store.check_at_micros(check, T0).unwrap().allowed());
    }
    let denied = store.check_at_micros(check, T0 + 30_000).unwrap();
    assert!(!denied.allowed());
    // Next cell in 70 ms: Retry-After rounds up to 1 s.
    assert_eq!(denied.retry_after(), Some(Duration::from_millis(70)));
    let h = RateLimitHeaders::from_decision(&denied);
    assert_eq!(h.retry_after.as_deref(), Some("1"));
    // The hour quota allowed on its own; nothing was counted, so its reset time is reported
    // without this request (20 × 3.6 s − 30 ms, rounded up), like its remaining count.
    assert_eq!(
        h.rate_limit.as_deref(),
        Some(r#""api.key";r=0;t=1, "hour";r=980;t=72"#)
    );
    let pairs: Vec<_> = h.pairs().map(|(n, _)| n).collect();
    assert_eq!(pairs, ["ratelimit-policy", "ratelimit", "retry-after"]);

    // A fixed window denial waits for the window's end, rounded up.
    let minute = [Quota::per_minute(n(1))
        .with_algorithm(finsec_ratelimit::Algorithm::FixedWindow)
        .unwrap()
        .named("m")
        .unwrap()];
    let start = T0 - T0.rem_euclid(60_000_000);
    assert!(
        store
            .check_at_micros(Check::new("w", &minute), start)
            .unwrap()
            .allowed()
    );
    let d = store
        .check_at_micros(Check::new("w", &minute), start + 15_500_000)
        .unwrap();
    assert_eq!(headers::retry_after(&d).as_deref(), Some("45"));
    assert_eq!(headers::rate_limit(&d).as_deref(), Some(r#""m";r=0;t=45"#));
}

fn one_per_day(name: &str) -> Vec<Quota> {
    vec![Quota::per_day(n(2)).named(name).unwrap()]
}

#[tokio::test]
async fn fail_open_reports_the_failure() {
    let down = Arc::new(Down::default());
    let limiter = RateLimiter::new(down.clone(), FailurePolicy::FailOpen);
    let quotas = one_per_day("q");
    for _ in 0..5 {
        let out = limiter.check(Check::new("k", &quotas)).await.unwrap();
        assert!(out.allowed());
        assert_eq!(out.source(), Source::FailOpen);
        assert!(out.backend_error().unwrap().is_backend());
        assert!(out.is_degraded());
        assert!(out.decision().quotas().is_empty());
        assert_eq!(headers::rate_limit(out.decision()), None);
    }
    assert_eq!(down.calls.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn fail_closed_denies_with_the_configured_wait() {
    let limiter = RateLimiter::new(Arc::new(Down::default()), FailurePolicy::FailClosed)
        .with_fail_closed_retry_after(Duration::from_millis(2500));
    let quotas = one_per_day("q");
    let out = limiter.check(Check::new("k", &quotas)).await.unwrap();
    assert!(!out.allowed());
    assert_eq!(out.source(), Source::FailClosed);
    assert!(out.backend_error().is_some());
    assert_eq!(
        out.decision().retry_after(),
        Some(Duration::from_millis(2500))
    );
    let h = RateLimitHeaders::from_decision(out.decision());
    assert_eq!(h.retry_after.as_deref(), Some("3"));
    assert_eq!(h.rate_limit.as_deref(), Some(r#""q";r=0;t=3"#));
    // Default: one second.
    let limiter = RateLimiter::new(Arc::new(Down::default()), FailurePolicy::FailClosed);
    let out = limiter.check(Check::new("k", &quotas)).await.unwrap();
    assert_eq!(out.decision().retry_after(), Some(Duration::from_secs(1)));
}

#[tokio::test]
async fn fallback_limits_locally_and_reports() {
    let local = AtTime::new(T0);
    let limiter = RateLimiter::new(Arc::new(Down::default()), FailurePolicy::FallbackLocal)
        .with_fallback(local.clone());
    let quotas = one_per_day("q");
    let mut allowed = 0;
    for _ in 0..5 {
        let out = limiter.check(Check::new("k", &quotas)).await.unwrap();
        assert_eq!(out.source(), Source::Fallback);
        assert!(out.backend_error().is_some());
        assert!(out.fallback_error().is_none());
        allowed += usize::from(out.allowed());
    }
    assert_eq!(allowed, 2, "the local store enforces the quota");
    // The fallback failing too denies, and both failures are reported.
    let limiter = RateLimiter::new(Arc::new(Down::default()), FailurePolicy::FallbackLocal)
        .with_fallback(Arc::new(Down::default()));
    let out = limiter.check(Check::new("k", &quotas)).await.unwrap();
    assert!(!out.allowed());
    assert_eq!(out.source(), Source::FailClosed);
    assert!(out.backend_error().is_some() && out.fallback_error().is_some());
}

#[tokio::test]
async fn validation_errors_are_not_subject_to_the_policy() {
    let down = Arc::new(Down::default());
    let limiter = RateLimiter::new(down.clone(), FailurePolicy::FailOpen);
    let quotas = one_per_day("q");
    assert!(matches!(
        limiter.check(Check::new("", &quotas)).await,
        Err(Error::InvalidKey { .. })
    ));
    assert!(matches!(
        limiter.check(Check::new("k", &quotas).with_cost(3)).await,
        Err(Error::CostExceedsCapacity { .. })
    ));
    assert!(matches!(
        limiter.check(Check::new("k", &[])).await,
        Err(Error::NoQuotas)
    ));
    assert_eq!(down.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn primary_decides_when_healthy() {
    let store = AtTime::new(T0);
    let limiter = RateLimiter::new(store.clone(), FailurePolicy::FailClosed);
    let quotas = one_per_day("q");
    let out = limiter.check(Check::new("k", &quotas)).await.unwrap();
    assert_eq!(out.source(), Source::Primary);
    assert!(out.backend_error().is_none() && !out.is_degraded());
}

#[tokio::test]
async fn login_policy_checks_ip_then_account_and_stops_at_the_first_denial() {
    let store = AtTime::new(T0);
    let limiter = RateLimiter::new(store.clone(), FailurePolicy::FailClosed);
    let policies = Policies::defaults();
    let login = policies.get("login").unwrap();
    let ip: IpAddr = "203.0.113.9".parse().unwrap();
    let victim = Identity::new().with_ip(ip).with_account("alice");
    // 5 per account per minute.
    for i in 0..5 {
        let out = limiter.check_policy(login, &victim, 1).await.unwrap();
        assert!(out.allowed(), "attempt {i}");
        assert_eq!(out.keys().len(), 2);
        assert_eq!(out.keys()[0].key(), "login:ip:203.0.113.9");
        assert_eq!(out.keys()[1].key(), "login:account:alice");
    }
    let out = limiter.check_policy(login, &victim, 1).await.unwrap();
    assert!(!out.allowed());
    assert_eq!(out.denied_by(), Some(&KeyKind::Account));
    assert_eq!(
        headers::rate_limit(out.decision()).unwrap(),
        r#""login.ip";r=14;t=18, "login.account";r=0;t=12"#
    );
    // The IP's consumption by the denied attempt stands (6 of 20 used).
    // An attacker on another IP over its own limit never reaches the account key.
    let attacker_ip: IpAddr = "2001:db8:1:2::99".parse().unwrap();
    for i in 0..20 {
        let id = Identity::new()
            .with_ip(attacker_ip)
            .with_account(format!("user{i}"));
        assert!(limiter.check_policy(login, &id, 1).await.unwrap().allowed());
    }
    // Another address in the same /64 shares the limit.
    let same_net = Identity::new()
        .with_ip("2001:db8:1:2::1234".parse().unwrap())
        .with_account("bob");
    let out = limiter.check_policy(login, &same_net, 1).await.unwrap();
    assert!(!out.allowed());
    assert_eq!(out.denied_by(), Some(&KeyKind::Ip));
    assert_eq!(out.keys().len(), 1, "the account key was not touched");
    assert_eq!(out.keys()[0].key(), "login:ip:2001:db8:1:2::/64");
    let bob = Identity::new()
        .with_ip("198.51.100.1".parse().unwrap())
        .with_account("bob");
    let out = limiter.check_policy(login, &bob, 1).await.unwrap();
    assert!(out.allowed());
    assert_eq!(
        out.keys()[1].outcome().decision().remaining(),
        4,
        "bob's budget is intact"
    );
    // A minute later alice may try again.
    store.set(T0 + 60_000_000);
    assert!(
        limiter
            .check_policy(login, &victim, 1)
            .await
            .unwrap()
            .allowed()
    );
}

#[tokio::test]
async fn policy_errors_consume_nothing() {
    let store = AtTime::new(T0);
    let limiter = RateLimiter::new(store.clone(), FailurePolicy::FailClosed);
    let policies = Policies::defaults();
    let login = policies.get("login").unwrap();
    let ip_only = Identity::new().with_ip("203.0.113.9".parse().unwrap());
    match limiter.check_policy(login, &ip_only, 1).await {
        Err(Error::Config { reason, .. }) => assert!(reason.contains("account"), "{reason}"),
        other => panic!("{other:?}"),
    }
    // Cost above the account quota's capacity (5): refused before the IP key is touched.
    let id = ip_only.clone().with_account("a");
    assert!(matches!(
        limiter.check_policy(login, &id, 6).await,
        Err(Error::CostExceedsCapacity { .. })
    ));
    let out = limiter.check_policy(login, &id, 1).await.unwrap();
    assert_eq!(out.keys()[0].outcome().decision().remaining(), 19);
}

#[tokio::test]
async fn policy_backend_failures_are_reported_per_key() {
    let limiter = RateLimiter::new(Arc::new(Down::default()), FailurePolicy::FailOpen);
    let policies = Policies::defaults();
    let id = Identity::new()
        .with_ip("203.0.113.9".parse().unwrap())
        .with_account("a");
    let out = limiter
        .check_policy(policies.get("login").unwrap(), &id, 1)
        .await
        .unwrap();
    assert!(out.allowed() && out.is_degraded());
    assert_eq!(out.backend_errors().count(), 2);
}

#[tokio::test]
async fn message_rate_per_account() {
    let store = AtTime::new(T0);
    let limiter = RateLimiter::new(store.clone(), FailurePolicy::FailClosed);
    let policy = trading::message_rate(n(5), None).unwrap();
    let acct = Identity::new().with_account("ACC-1");
    let mut allowed = 0;
    for _ in 0..8 {
        allowed += usize::from(
            limiter
                .check_policy(&policy, &acct, 1)
                .await
                .unwrap()
                .allowed(),
        );
    }
    assert_eq!(allowed, 5);
    // Another account is independent; one emission interval (200 ms) later one more.
    assert!(
        limiter
            .check_policy(&policy, &Identity::new().with_account("ACC-2"), 1)
            .await
            .unwrap()
            .allowed()
    );
    store.set(T0 + 200_000);
    assert!(
        limiter
            .check_policy(&policy, &acct, 1)
            .await
            .unwrap()
            .allowed()
    );
    assert!(
        !limiter
            .check_policy(&policy, &acct, 1)
            .await
            .unwrap()
            .allowed()
    );
}

#[tokio::test]
async fn order_to_trade_ratio() {
    let store = AtTime::new(T0 - T0.rem_euclid(60_000_000));
    let start = T0 - T0.rem_euclid(60_000_000);
    let otr = OrderToTradeRatio::new(
        store.clone(),
        OrderToTradeConfig::new(Duration::from_secs(60), n(4), 10),
    )
    .unwrap();
    // Up to the minimum, orders pass without fills.
    for i in 0..10 {
        let c = otr.try_order("A").await.unwrap();
        assert!(c.allowed, "order {i}");
        assert_eq!(c.orders, i);
    }
    let c = otr.check_order("A").await.unwrap();
    assert!(!c.allowed);
    assert_eq!((c.orders, c.fills), (10, 0));
    // Three fills allow 4 × 3 = 12 orders.
    for _ in 0..3 {
        otr.record_fill("A").await.unwrap();
    }
    assert!(otr.try_order("A").await.unwrap().allowed);
    assert!(otr.try_order("A").await.unwrap().allowed);
    let c = otr.try_order("A").await.unwrap();
    assert!(!c.allowed);
    assert_eq!((c.orders, c.fills), (12, 3));
    // Checking counts nothing.
    assert_eq!(otr.check_order("A").await.unwrap().orders, 12);
    // Other accounts are independent.
    assert!(otr.check_order("B").await.unwrap().allowed);
    // Half-way through the next window half the old counts remain: 6 orders, 2 fills
    // (ceil of 1.5): 7 ≤ 10, allowed.
    store.set(start + 90_000_000);
    let c = otr.check_order("A").await.unwrap();
    assert_eq!((c.orders, c.fills), (6, 2));
    assert!(c.allowed);
    // Two windows later everything has left the count.
    store.set(start + 120_000_000);
    let c = otr.check_order("A").await.unwrap();
    assert_eq!((c.orders, c.fills), (0, 0));
    assert!(
        OrderToTradeRatio::new(
            store.clone(),
            OrderToTradeConfig {
                name: "a:b".into(),
                ..OrderToTradeConfig::new(Duration::from_secs(1), n(1), 0)
            }
        )
        .is_err()
    );
    assert!(otr.check_order("").await.is_err());
}

/// A real Redis store pointed at a closed port: every failure policy applies, and the failure
/// is reported.
#[cfg(feature = "redis")]
#[tokio::test]
async fn redis_at_a_closed_port_is_a_reported_backend_failure() {
    use finsec_ratelimit::RedisStore;
    use redis::aio::{ConnectionManager, ConnectionManagerConfig};

    let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
    let config = ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(Duration::from_millis(200)));
    let conn = ConnectionManager::new_lazy_with_config(client, config).unwrap();
    let store = RedisStore::new(conn, "finsec-test:closed:")
        .unwrap()
        .with_timeout(Duration::from_millis(500))
        .unwrap();
    let primary: Arc<dyn RateLimitStore> = Arc::new(store);
    let quotas = one_per_day("q");
    for (policy, allowed, source) in [
        (FailurePolicy::FailOpen, true, Source::FailOpen),
        (FailurePolicy::FailClosed, false, Source::FailClosed),
        (FailurePolicy::FallbackLocal, true, Source::Fallback),
    ] {
        let limiter = RateLimiter::new(primary.clone(), policy);
        let out = limiter.check(Check::new("k", &quotas)).await.unwrap();
        assert_eq!(out.allowed(), allowed, "{policy:?}");
        assert_eq!(out.source(), source, "{policy:?}");
        let err = out.backend_error().expect("the failure is reported");
        assert!(err.is_backend(), "{err}");
    }
}
