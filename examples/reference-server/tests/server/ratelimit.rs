//! Rate limits over real HTTP against the real binary: the `login` limit per account (with
//! its 429 and headers), per-address limits behind a trusted proxy and without one, the `api`
//! limit per principal, one login limit shared by two instances through Redis, a bad
//! `--rate-limits` file, and JSON answers for bodies that cannot be used.
#![cfg(test)]

use std::path::PathBuf;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::{DataDir, Launch, Server};

const PASSWORD: &str = "correct horse battery staple 42";

/// Limits far above what a test sends, for the policies a test does not exercise.
const RELAXED: [(&str, &str); 4] = [
    ("global", "per = \"ip\"\nlimit = 100000\nperiod = \"1s\"\n"),
    ("auth", "per = \"ip\"\nlimit = 100000\nperiod = \"1s\"\n"),
    ("login", "per = \"ip\"\nlimit = 100000\nperiod = \"1m\"\n"),
    ("api", "per = \"key\"\nlimit = 100000\nperiod = \"1s\"\n"),
];

/// A `--rate-limits` file in `data`'s parent: `policies` as given (name, TOML rule bodies),
/// every other policy relaxed.
fn limits_file(data: &DataDir, policies: &[(&str, &[&str])]) -> PathBuf {
    let mut text = String::new();
    for (name, relaxed) in RELAXED {
        match policies.iter().find(|(n, _)| *n == name) {
            Some((_, rules)) => {
                for rule in *rules {
                    text.push_str(&format!("[[{name}]]\n{rule}\n"));
                }
            }
            None => text.push_str(&format!("[[{name}]]\n{relaxed}\n")),
        }
    }
    let path = data.path().with_file_name("rate-limits.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn launch_with(file: &std::path::Path) -> Launch {
    Launch::new().args(["--rate-limits", file.to_str().unwrap()])
}

/// A response's status, headers and body (JSON, `Null` when empty).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn post(server: &Server, path: &str, body: Value) -> Reply {
    send(server.client().post(server.url(path)).json(&body)).await
}

async fn login(server: &Server, username: &str, password: &str) -> Reply {
    post(
        server,
        "/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

async fn register(server: &Server, username: &str) {
    let reply = post(
        server,
        "/auth/register",
        json!({"username": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

async fn access_token(server: &Server, username: &str) -> String {
    let reply = login(server, username, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply.body["access_token"].as_str().unwrap().to_owned()
}

/// Asserts `reply` is the 429 of a quota named `quota`, and returns its `Retry-After`.
fn assert_limited(reply: &Reply, quota: &str, max_wait: u64) -> u64 {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    let retry: u64 = reply.header("retry-after").parse().unwrap();
    assert!((1..=max_wait).contains(&retry), "Retry-After {retry}");
    assert_eq!(
        reply.body,
        json!({
            "type": "https://finsec.dev/problems/rate-limited",
            "title": "Too many requests",
            "status": 429,
            "detail": format!("rate limit exhausted; retry in {retry} s"),
            "retry_after": retry,
        })
    );
    assert_eq!(reply.header("content-type"), "application/problem+json");
    assert!(
        reply
            .header("ratelimit-policy")
            .starts_with(&format!("\"{quota}\";")),
        "{:?}",
        reply.headers
    );
    assert_eq!(
        reply.header("ratelimit"),
        format!("\"{quota}\";r=0;t={retry}")
    );
    // The security headers are still there.
    assert_eq!(reply.header("x-content-type-options"), "nosniff");
    retry
}

#[tokio::test]
async fn login_attempts_per_account_are_limited_with_headers() {
    let data = DataDir::new();
    let file = limits_file(
        &data,
        &[(
            "login",
            &[
                "per = \"ip\"\nlimit = 100\nperiod = \"1m\"\n",
                "per = \"account\"\nlimit = 3\nperiod = \"1m\"\n",
            ],
        )],
    );
    let server = launch_with(&file).start(&data);
    register(&server, "alice").await;

    // Three attempts for one account, whatever the case and whether the password is right.
    let wrong = login(&server, "alice", "not the password at all").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.header("ratelimit-policy"),
        "\"login.account\";q=3;w=60"
    );
    assert!(
        wrong
            .header("ratelimit")
            .starts_with("\"login.account\";r=2;t="),
        "{}",
        wrong.header("ratelimit")
    );
    assert!(wrong.headers.get("retry-after").is_none());
    let right = login(&server, "ALICE", PASSWORD).await;
    assert_eq!(right.status, StatusCode::OK, "{}", right.body);
    assert!(
        right
            .header("ratelimit")
            .starts_with("\"login.account\";r=1;")
    );
    assert_eq!(
        login(&server, "Alice", "wrong again, wrong again")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // The fourth is refused before the password is looked at, even the right one. GCRA at
    // 3 a minute frees one attempt every 20 seconds.
    let limited = login(&server, "alice", PASSWORD).await;
    assert_limited(&limited, "login.account", 20);

    // An unknown name is limited the same way, so a 429 says nothing about who exists.
    for _ in 0..3 {
        assert_eq!(
            login(&server, "nobody-here", PASSWORD).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let unknown = login(&server, "NOBODY-HERE", PASSWORD).await;
    assert_limited(&unknown, "login.account", 20);

    // Another account from the same address is not affected.
    register(&server, "bob").await;
    assert_eq!(login(&server, "bob", PASSWORD).await.status, StatusCode::OK);
    let (status, _) = server.terminate();
    assert!(status.success());
}

async fn health_from(server: &Server, forwarded_for: &str) -> Reply {
    send(
        server
            .client()
            .get(server.url("/health"))
            .header("x-forwarded-for", forwarded_for),
    )
    .await
}

#[tokio::test]
async fn clients_behind_a_trusted_proxy_are_limited_apart() {
    let data = DataDir::new();
    let file = limits_file(
        &data,
        &[("global", &["per = \"ip\"\nlimit = 3\nperiod = \"1m\"\n"])],
    );
    let server = launch_with(&file)
        .args(["--trusted-proxy", "127.0.0.1/32"])
        .start(&data);
    for i in 0..3 {
        let reply = health_from(&server, "203.0.113.1").await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply
                .header("ratelimit")
                .starts_with(&format!("\"global.ip\";r={};", 2 - i))
        );
    }
    assert_limited(&health_from(&server, "203.0.113.1").await, "global.ip", 20);
    // Another client behind the same proxy has its own budget; a left-most entry the client
    // wrote itself does not count, the proxy's (right-most) entry does.
    assert_eq!(
        health_from(&server, "203.0.113.2").await.status,
        StatusCode::OK
    );
    assert_limited(
        &health_from(&server, "198.51.100.7, 203.0.113.1").await,
        "global.ip",
        20,
    );
    // 404s are limited too.
    let missing = send(
        server
            .client()
            .get(server.url("/no-such-route"))
            .header("x-forwarded-for", "203.0.113.1"),
    )
    .await;
    assert_limited(&missing, "global.ip", 20);
}

#[tokio::test]
async fn forwarded_for_from_an_untrusted_peer_is_ignored() {
    let data = DataDir::new();
    let file = limits_file(
        &data,
        &[("global", &["per = \"ip\"\nlimit = 3\nperiod = \"1m\"\n"])],
    );
    let server = launch_with(&file).start(&data);
    for i in 0..3 {
        let spoofed = format!("203.0.113.{i}");
        assert_eq!(health_from(&server, &spoofed).await.status, StatusCode::OK);
    }
    assert_limited(&health_from(&server, "203.0.113.99").await, "global.ip", 20);
    assert_limited(&server_get(&server, "/health").await, "global.ip", 20);
}

async fn server_get(server: &Server, path: &str) -> Reply {
    send(server.client().get(server.url(path))).await
}

async fn me(server: &Server, credential: (&str, &str)) -> Reply {
    send(
        server
            .client()
            .get(server.url("/me"))
            .header(credential.0, credential.1),
    )
    .await
}

#[tokio::test]
async fn api_calls_are_limited_per_principal() {
    let data = DataDir::new();
    let file = limits_file(
        &data,
        &[("api", &["per = \"key\"\nlimit = 3\nperiod = \"1m\"\n"])],
    );
    let server = launch_with(&file).start(&data);
    register(&server, "alice").await;
    register(&server, "bob").await;
    let alice = format!("Bearer {}", access_token(&server, "alice").await);
    let bob = format!("Bearer {}", access_token(&server, "bob").await);

    // An API key of alice's is a principal of its own (created before her session's budget
    // is spent: creating it is an API call too).
    let created = send(
        server
            .client()
            .post(server.url("/api-keys"))
            .header("authorization", &alice)
            .json(&json!({"name": "bot", "scopes": ["orders:read"]})),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();

    for remaining in [1, 0] {
        let reply = me(&server, ("authorization", &alice)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(reply.header("ratelimit-policy"), "\"api.key\";q=3;w=60");
        assert!(
            reply
                .header("ratelimit")
                .starts_with(&format!("\"api.key\";r={remaining};"))
        );
    }
    assert_limited(&me(&server, ("authorization", &alice)).await, "api.key", 20);

    assert_eq!(
        me(&server, ("authorization", &bob)).await.status,
        StatusCode::OK
    );
    let via_key = me(&server, ("x-api-key", &key)).await;
    assert_eq!(via_key.status, StatusCode::OK, "{}", via_key.body);
    assert!(via_key.header("ratelimit").starts_with("\"api.key\";r=2;"));

    // A refused credential names nobody: the answer is the uniform 401, not a 429.
    let forged = me(&server, ("authorization", "Bearer not-a-token")).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    // Routes without a credential are not charged to any principal.
    assert_eq!(server_get(&server, "/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn two_instances_share_one_login_limit_in_redis() {
    let redis = finsec_testkit::redis().await;
    let redis_url = finsec_testkit::redis_url();
    let (data_a, data_b) = (DataDir::new(), DataDir::new());
    let file = limits_file(
        &data_a,
        &[(
            "login",
            &[
                "per = \"ip\"\nlimit = 100\nperiod = \"1m\"\n",
                "per = \"account\"\nlimit = 3\nperiod = \"1m\"\n",
            ],
        )],
    );
    let launch = launch_with(&file).args([
        "--redis-url",
        redis_url.as_str(),
        "--redis-prefix",
        redis.prefix.as_str(),
    ]);
    let a = launch.start(&data_a);
    let b = launch.start(&data_b);
    // Nobody is registered: unknown accounts are limited like known ones.
    for server in [&a, &b, &a] {
        assert_eq!(
            login(server, "carol", PASSWORD).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_limited(&login(&b, "carol", PASSWORD).await, "login.account", 20);
    assert_limited(&login(&a, "Carol", PASSWORD).await, "login.account", 20);

    let keys = redis.keys("rl:*").await;
    assert!(
        keys.iter().any(|k| k.contains("login:account:")),
        "{keys:?}"
    );
    // The account is stored hashed, never as the name.
    assert!(!keys.iter().any(|k| k.contains("carol")), "{keys:?}");
    drop((a, b));
    redis.cleanup().await;
}

#[tokio::test]
async fn a_bad_rate_limit_file_stops_start_up() {
    let data = DataDir::new();
    let path = data.path().with_file_name("limits.toml");
    std::fs::write(
        &path,
        "[[login]]\nper = \"account\"\nlimit = 3\nperiod = \"3 minutes\"\n",
    )
    .unwrap();
    let failure = launch_with(&path).try_start(&data).unwrap_err();
    assert!(!failure.status.unwrap().success());
    assert!(failure.output.contains("limits.toml"), "{}", failure.output);
    assert!(
        failure.output.contains("policies.login[0].period"),
        "{}",
        failure.output
    );

    std::fs::write(
        &path,
        "[[global]]\nper = \"account\"\nlimit = 3\nperiod = \"1m\"\n",
    )
    .unwrap();
    let failure = launch_with(&path).try_start(&data).unwrap_err();
    assert!(
        failure.output.contains("policies.global[0].per"),
        "{}",
        failure.output
    );

    let failure = Launch::new()
        .args(["--trusted-proxy", "10.0.0.0/99"])
        .try_start(&data)
        .unwrap_err();
    assert!(!failure.status.unwrap().success());
    assert!(
        failure.output.contains("--trusted-proxy"),
        "{}",
        failure.output
    );
}

#[tokio::test]
async fn unusable_bodies_get_problems() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let raw = |content_type: &'static str, body: &'static str| {
        server
            .client()
            .post(server.url("/auth/login"))
            .header("content-type", content_type)
            .body(body)
    };
    for (request, status) in [
        (
            raw("application/json", "{\"username\": "),
            StatusCode::BAD_REQUEST,
        ),
        (
            raw("text/plain", "{\"username\":\"a\",\"password\":\"b\"}"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            raw("application/json", "{\"username\":\"alice\"}"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            raw(
                "application/json",
                "{\"username\":\"alice\",\"password\":7}",
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let reply = send(request).await;
        assert_eq!(reply.status, status, "{}", reply.body);
        assert_eq!(reply.body["status"], status.as_u16(), "{}", reply.body);
        assert!(
            reply.body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("https://finsec.dev/problems/"))
        );
        assert!(reply.body["detail"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(reply.header("content-type"), "application/problem+json");
    }
    // Other routes too.
    let register = send(
        server
            .client()
            .post(server.url("/auth/register"))
            .header("content-type", "application/json")
            .body("{\"username\": \"alice\", "),
    )
    .await;
    assert_eq!(register.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        register.body["type"],
        "https://finsec.dev/problems/bad-request"
    );
}

#[tokio::test]
async fn openapi_documents_the_429() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let doc = server.get_json("/openapi.json", 200).await;
    let login = &doc["paths"]["/auth/login"]["post"]["responses"]["429"];
    assert!(login["headers"]["Retry-After"].is_object(), "{login}");
    let me = &doc["paths"]["/me"]["get"]["responses"]["429"];
    for header in ["Retry-After", "RateLimit-Policy", "RateLimit"] {
        assert!(me["headers"][header].is_object(), "{header}: {me}");
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert_eq!(
        me["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
}

/// Enrolls and confirms TOTP for the session `bearer`; returns the TOTP.
async fn enable_mfa(server: &Server, bearer: &str) -> finsec_auth::mfa::Totp {
    use finsec_auth::mfa::{Totp, TotpParams, TotpSecret};

    let authed = |path: &str, body: Value| {
        server
            .client()
            .post(server.url(path))
            .header("authorization", bearer)
            .json(&body)
    };
    let enrolled = send(authed("/mfa/enroll", json!({}))).await;
    assert_eq!(enrolled.status, StatusCode::OK, "{}", enrolled.body);
    let uri = enrolled.body["otpauth_uri"].as_str().unwrap();
    let secret = uri
        .split_once("secret=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap();
    let totp = Totp::new(
        TotpSecret::from_base32(secret).unwrap(),
        TotpParams::default(),
    );
    let code = totp
        .code_at(time::OffsetDateTime::now_utc())
        .unwrap()
        .expose();
    let confirmed = send(authed("/mfa/confirm", json!({"code": code}))).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    totp
}

#[tokio::test]
async fn second_factor_attempts_share_the_accounts_login_limit() {
    let data = DataDir::new();
    let file = limits_file(
        &data,
        &[(
            "login",
            &[
                "per = \"ip\"\nlimit = 100\nperiod = \"1m\"\n",
                "per = \"account\"\nlimit = 4\nperiod = \"1m\"\n",
            ],
        )],
    );
    let server = launch_with(&file).start(&data);
    register(&server, "dave").await;
    // Attempt 1: a password login.
    let bearer = format!("Bearer {}", access_token(&server, "dave").await);
    let totp = enable_mfa(&server, &bearer).await;
    // Attempt 2: the password, answered with an mfa_token.
    let reply = login(&server, "Dave", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let mfa_token = reply.body["mfa_token"].as_str().unwrap().to_owned();
    let verify = |code: String| {
        post(
            &server,
            "/auth/mfa/verify",
            json!({"mfa_token": mfa_token, "code": code}),
        )
    };
    // Attempts 3 and 4: wrong codes, each charged to dave's account.
    for left in [1, 0] {
        let wrong = verify("ZZZZ-ZZZZ-ZZZZ".to_owned()).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
        assert!(
            wrong
                .header("ratelimit")
                .starts_with(&format!("\"login.account\";r={left};")),
            "{}",
            wrong.header("ratelimit")
        );
    }
    // Attempt 5 is refused before the code is looked at (a 429, not the 401 of a wrong or
    // replayed code).
    let right = totp
        .code_at(time::OffsetDateTime::now_utc())
        .unwrap()
        .expose();
    assert_limited(&verify(right).await, "login.account", 15);
    // And the account's password logins are limited as well.
    assert_limited(&login(&server, "dave", PASSWORD).await, "login.account", 15);
    // A forged mfa_token names no account and is refused as before.
    let forged = post(
        &server,
        "/auth/mfa/verify",
        json!({"mfa_token": "eyJ.forged.token", "code": "123456"}),
    )
    .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
}
