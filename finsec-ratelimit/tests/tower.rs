//! The tower Layer: n requests pass with RateLimit headers, the next gets 429 with
//! Retry-After, RateLimit-Policy and RateLimit; backend failures reach the hook.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test loudly"
)]

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use finsec_ratelimit::failure::{FailurePolicy, RateLimiter};
use finsec_ratelimit::policy::{RateLimitPolicy, Rule};
use finsec_ratelimit::tower::{
    ClientIp, HeaderScope, PeerAddr, RateLimitLayer, RateLimitStatus, Refusal,
};
use finsec_ratelimit::{
    Check, Decision, Error, Identity, KeyKind, MemoryStore, Quota, RateLimitStore, Result,
    TrustedProxies,
};
use http::{Request, Response, StatusCode};
use tower::{Layer, ServiceExt, service_fn};

fn day_policy(limit: u32) -> RateLimitPolicy {
    let quota = Quota::per_day(std::num::NonZeroU32::new(limit).unwrap())
        .named("day")
        .unwrap();
    RateLimitPolicy::new("web", vec![Rule::new(KeyKind::Ip, quota)]).unwrap()
}

fn request(peer: &str, xff: Option<&str>) -> Request<String> {
    let mut b = Request::builder().uri("/orders");
    if let Some(xff) = xff {
        b = b.header("x-forwarded-for", xff);
    }
    let mut req = b.body(String::new()).unwrap();
    req.extensions_mut()
        .insert(PeerAddr(peer.parse::<IpAddr>().unwrap()));
    req
}

#[tokio::test]
async fn n_allowed_then_429_with_headers() {
    let calls = Arc::new(AtomicUsize::new(0));
    let inner = {
        let calls = calls.clone();
        service_fn(move |_req: Request<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, Infallible>(Response::new("ok".to_owned())) }
        })
    };
    let limiter = RateLimiter::new(Arc::new(MemoryStore::new()), FailurePolicy::FailClosed);
    let proxies = TrustedProxies::parse(["10.0.0.0/8"]).unwrap();
    let layer = RateLimitLayer::new(limiter, day_policy(3), ClientIp::new(proxies));
    let svc = layer.layer(inner);
    for i in 0..3u32 {
        let resp = svc
            .clone()
            .oneshot(request("10.0.0.1", Some("6.6.6.6, 203.0.113.9")))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["ratelimit-policy"], r#""day";q=3;w=86400"#);
        let rl = resp.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(rl.starts_with(&format!(r#""day";r={};t="#, 2 - i)), "{rl}");
        assert!(resp.headers().get("retry-after").is_none());
        assert_eq!(resp.body(), "ok");
    }
    let resp = svc
        .clone()
        .oneshot(request("10.0.0.1", Some("7.7.7.7, 203.0.113.9")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(resp.headers()["retry-after"], "28800");
    assert_eq!(resp.headers()["ratelimit"], r#""day";r=0;t=28800"#);
    assert_eq!(resp.headers()["ratelimit-policy"], r#""day";q=3;w=86400"#);
    assert!(resp.body().is_empty());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Another client behind the same proxy is not affected; a spoofed XFF from an untrusted
    // peer is ignored, so that peer is limited by its own address.
    let resp = svc
        .clone()
        .oneshot(request("10.0.0.1", Some("198.51.100.4")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = svc
        .clone()
        .oneshot(request("198.51.100.99", Some("203.0.113.9")))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn per_route_cost_and_custom_extractor() {
    let inner = service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    });
    let limiter = RateLimiter::new(Arc::new(MemoryStore::new()), FailurePolicy::FailClosed);
    let quota = Quota::per_day(std::num::NonZeroU32::new(5).unwrap())
        .named("subj")
        .unwrap();
    let policy = RateLimitPolicy::new("reports", vec![Rule::new(KeyKind::Subject, quota)]).unwrap();
    let layer = RateLimitLayer::new(limiter, policy, |req: &Request<String>| {
        req.headers()
            .get("x-subject")
            .and_then(|v| v.to_str().ok())
            .map(|s| Identity::new().with_subject(s))
    })
    .with_cost(|req: &Request<String>| if req.uri().path() == "/export" { 3 } else { 1 });
    let svc = layer.layer(inner);
    let req = |path: &str, subject: Option<&str>| {
        let mut b = Request::builder().uri(path);
        if let Some(s) = subject {
            b = b.header("x-subject", s);
        }
        b.body(String::new()).unwrap()
    };
    assert_eq!(
        svc.clone()
            .oneshot(req("/export", Some("u1")))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        svc.clone()
            .oneshot(req("/export", Some("u1")))
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let ok = svc.clone().oneshot(req("/list", Some("u1"))).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(
        ok.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with(r#""subj";r=1;"#)
    );
    // No identity: not limited, no headers.
    let free = svc.clone().oneshot(req("/export", None)).await.unwrap();
    assert_eq!(free.status(), StatusCode::OK);
    assert!(free.headers().get("ratelimit").is_none());
    // A cost above the capacity is a configuration error: 500.
    let layer = RateLimitLayer::new(
        RateLimiter::new(Arc::new(MemoryStore::new()), FailurePolicy::FailClosed),
        day_policy(2),
        ClientIp::new(TrustedProxies::none()),
    )
    .with_cost(|_: &Request<String>| 9);
    let svc = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let resp = svc.oneshot(request("192.0.2.1", None)).await.unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
}

#[derive(Debug)]
struct Down;

#[async_trait]
impl RateLimitStore for Down {
    async fn check<'q>(&self, check: Check<'_, 'q>) -> Result<Decision<'q>> {
        check.validate()?;
        Err(Error::Timeout {
            backend: "down",
            timeout: std::time::Duration::from_millis(50),
        })
    }
    fn backend(&self) -> &'static str {
        "down"
    }
}

#[tokio::test]
async fn backend_failures_reach_the_hook_and_follow_the_policy() {
    for (policy, status) in [
        (FailurePolicy::FailOpen, StatusCode::OK),
        (FailurePolicy::FailClosed, StatusCode::TOO_MANY_REQUESTS),
        (FailurePolicy::FallbackLocal, StatusCode::OK),
    ] {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook = {
            let seen = seen.clone();
            move |e: &Error| seen.lock().unwrap().push(e.to_string())
        };
        let layer = RateLimitLayer::new(
            RateLimiter::new(Arc::new(Down), policy),
            day_policy(2),
            ClientIp::new(TrustedProxies::none()),
        )
        .on_error(hook);
        let svc = layer.layer(service_fn(|_req: Request<String>| async {
            Ok::<_, Infallible>(Response::new(String::new()))
        }));
        let mut req = request("192.0.2.1", None);
        req.extensions_mut().remove::<PeerAddr>();
        req.extensions_mut()
            .insert("192.0.2.1:5000".parse::<SocketAddr>().unwrap());
        let resp = svc.oneshot(req).await.unwrap();
        assert_eq!(resp.status(), status, "{policy:?}");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "{policy:?}");
        assert!(seen[0].contains("did not answer"), "{}", seen[0]);
        if policy == FailurePolicy::FailClosed {
            assert_eq!(resp.headers()["retry-after"], "1");
        }
    }
}

fn ip_layer(policy: RateLimitPolicy) -> RateLimitLayer<ClientIp, String> {
    RateLimitLayer::new(
        RateLimiter::new(Arc::new(MemoryStore::new()), FailurePolicy::FailClosed),
        policy,
        ClientIp::new(TrustedProxies::none()),
    )
}

fn named_policy(name: &str, quota: &str, limit: u32) -> RateLimitPolicy {
    let quota = Quota::per_day(std::num::NonZeroU32::new(limit).unwrap())
        .named(quota)
        .unwrap();
    RateLimitPolicy::new(name, vec![Rule::new(KeyKind::Ip, quota)]).unwrap()
}

#[tokio::test]
async fn a_custom_response_answers_refusals_with_the_headers_added() {
    let layer = ip_layer(day_policy(1)).with_response(|refusal: Refusal<'_>| {
        let body = match refusal {
            Refusal::Denied {
                policy,
                retry_after,
            } => format!("denied by {policy}, wait {}s", retry_after.as_secs()),
            Refusal::Failed(error) => format!("failed: {error}"),
            _ => "other".to_owned(),
        };
        let mut response = Response::new(body);
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        response
    });
    let svc = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new("ok".to_owned()))
    }));
    let first = svc
        .clone()
        .oneshot(request("192.0.2.1", None))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.body(), "ok");
    let denied = svc
        .clone()
        .oneshot(request("192.0.2.1", None))
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        denied.body().starts_with("denied by web, wait "),
        "{}",
        denied.body()
    );
    assert!(denied.headers().contains_key("retry-after"));
    assert_eq!(denied.headers()["ratelimit-policy"], r#""day";q=1;w=86400"#);
    let status = denied.extensions().get::<RateLimitStatus>().unwrap();
    assert!(!status.allowed());
    assert_eq!(status.remaining(), 0);

    // A check that cannot be made reaches the same builder.
    let layer = ip_layer(day_policy(2))
        .with_cost(|_: &Request<String>| 9)
        .with_response(|refusal: Refusal<'_>| {
            let mut response = Response::new(matches!(refusal, Refusal::Failed(_)).to_string());
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            response
        });
    let svc = layer.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    }));
    let failed = svc.oneshot(request("192.0.2.1", None)).await.unwrap();
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.body(), "true");
}

#[tokio::test]
async fn stacked_layers_report_the_tightest_decision() {
    // Outer: 100 a day; inner: 2 a day, named apart. Both limit the same client.
    let outer =
        ip_layer(named_policy("global", "global.ip", 100)).with_header_scope(HeaderScope::Tightest);
    let inner = ip_layer(named_policy("api", "api.ip", 2)).with_header_scope(HeaderScope::Tightest);
    let svc = outer.layer(inner.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    })));
    let reply = svc
        .clone()
        .oneshot(request("192.0.2.1", None))
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.headers()["ratelimit-policy"],
        r#""api.ip";q=2;w=86400"#
    );
    assert!(
        reply.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with(r#""api.ip";r=1;"#)
    );
    svc.clone()
        .oneshot(request("192.0.2.1", None))
        .await
        .unwrap();
    let denied = svc
        .clone()
        .oneshot(request("192.0.2.1", None))
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::TOO_MANY_REQUESTS);
    // The inner denial stays: the outer layer allowed, with far more left.
    assert!(
        denied.headers()["ratelimit"]
            .to_str()
            .unwrap()
            .starts_with(r#""api.ip";r=0;"#)
    );
    assert!(denied.headers().contains_key("retry-after"));

    // The other way round: an outer layer that is tighter replaces the inner's headers.
    let outer =
        ip_layer(named_policy("global", "global.ip", 1)).with_header_scope(HeaderScope::Tightest);
    let inner =
        ip_layer(named_policy("api", "api.ip", 50)).with_header_scope(HeaderScope::Tightest);
    let svc = outer.layer(inner.layer(service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(Response::new(String::new()))
    })));
    let reply = svc.oneshot(request("192.0.2.1", None)).await.unwrap();
    assert_eq!(
        reply.headers()["ratelimit"].to_str().unwrap(),
        r#""global.ip";r=0;t=86400"#
    );
    assert_eq!(
        reply.headers()["ratelimit-policy"],
        r#""global.ip";q=1;w=86400"#
    );
}

#[test]
fn tightness_orders_denials_then_fewest_left() {
    let policy = named_policy("p", "q", 3);
    let store = MemoryStore::new();
    let limiter = RateLimiter::new(Arc::new(store), FailurePolicy::FailClosed);
    let identity = Identity::new().with_ip("192.0.2.9".parse().unwrap());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses: Vec<RateLimitStatus> = (0..4)
        .map(|_| {
            let outcome = runtime
                .block_on(limiter.check_policy(&policy, &identity, 1))
                .unwrap();
            RateLimitStatus::from_decision(outcome.decision(), HeaderScope::AllQuotas).unwrap()
        })
        .collect();
    for pair in statuses.windows(2) {
        assert!(pair[1].is_tighter_than(&pair[0]));
        assert!(!pair[0].is_tighter_than(&pair[1]));
    }
    assert!(!statuses[0].is_tighter_than(&statuses[0]));
    assert!(!statuses[3].allowed());
    assert!(statuses[3].headers().retry_after.is_some());
}

#[tokio::test]
async fn a_retry_after_of_the_service_survives_an_allowing_layer() {
    // The service answers 503 with its own Retry-After (an overloaded backend, say); the
    // layer allows the request and adds its headers, but must not drop the service's.
    let layer = ip_layer(named_policy("global", "global.ip", 100));
    let svc = layer.layer(service_fn(|_req: Request<String>| async {
        let mut response = Response::new(String::new());
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        response
            .headers_mut()
            .insert("retry-after", http::HeaderValue::from_static("7"));
        Ok::<_, Infallible>(response)
    }));
    let reply = svc.oneshot(request("192.0.2.1", None)).await.unwrap();
    assert_eq!(reply.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.headers()["retry-after"], "7");
    assert!(reply.headers().contains_key("ratelimit"));
}
