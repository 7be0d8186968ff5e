//! Incident controls over real HTTP: suspending a user, blocking networks and halting
//! trading, lifted by admins (a global halt by two), on SQLite; reaching a second instance
//! within a second on PostgreSQL + Redis; and set by the audit monitor's responses.
#![cfg(test)]

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backends::server_pg_url;
use crate::support::{DataDir, Launch, Server};

const PASSWORD: &str = "correct horse battery staple 42";

/// Sends `method path` with an optional bearer, JSON body and `X-Forwarded-For`.
async fn call(
    server: &Server,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
    from: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = server.client().request(method, server.url(path));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(from) = from {
        request = request.header("x-forwarded-for", from);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Registers `name` and logs in; returns (user id, access token).
async fn user(server: &Server, name: &str) -> (String, String) {
    let creds = json!({"username": name, "password": PASSWORD});
    let (status, registered) = call(
        server,
        Method::POST,
        "/auth/register",
        None,
        Some(creds.clone()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let (status, tokens) = call(server, Method::POST, "/auth/login", None, Some(creds), None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    (
        registered["id"].as_str().unwrap().to_owned(),
        tokens["access_token"].as_str().unwrap().to_owned(),
    )
}

async fn login(server: &Server, name: &str, password: &str) -> (StatusCode, Value) {
    let creds = json!({"username": name, "password": password});
    call(server, Method::POST, "/auth/login", None, Some(creds), None).await
}

fn order(symbol: &str) -> Value {
    json!({
        "symbol": symbol, "side": "buy", "order_type": "limit", "quantity": "10",
        "limit_price": "101.50", "account_id": "ACC-1",
    })
}

async fn place(server: &Server, token: &str, symbol: &str) -> (StatusCode, Value) {
    call(
        server,
        Method::POST,
        "/orders",
        Some(token),
        Some(order(symbol)),
        None,
    )
    .await
}

fn assert_halted(reply: &(StatusCode, Value)) {
    assert_eq!(reply.0, StatusCode::FORBIDDEN, "{}", reply.1);
    assert_eq!(reply.1["reason"], "trading_halted", "{}", reply.1);
}

fn grant(launch: &Launch, data: &DataDir, user: &str, role: &str) {
    let out = launch.roles(data, &["grant", user, role]).success();
    assert_eq!(out.trim(), format!("granted {role} to {user}"));
}

#[tokio::test]
async fn incident_controls_over_http() {
    let data = DataDir::new();
    let launch = Launch::new().args(["--trusted-proxy", "127.0.0.1/32"]);
    let server = launch.start(&data);
    let (_, root) = user(&server, "root").await;
    let (_, ada) = user(&server, "ada").await;
    let (tina_id, tina) = user(&server, "tina").await;
    grant(&launch, &data, "root", "admin");
    grant(&launch, &data, "ada", "admin");
    grant(&launch, &data, "tina", "trader");
    let out = launch
        .accounts(&data, &["grant", "tina", "ACC-1"])
        .success();
    assert_eq!(out.trim(), "entitled tina to ACC-1");
    assert_eq!(place(&server, &tina, "ACME").await.0, StatusCode::CREATED);

    // Only incident admins, and changes only with a session.
    let (status, _) = call(
        &server,
        Method::GET,
        "/admin/controls",
        Some(&tina),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let halt = json!({"reason": "news pending"});
    let (status, _) = call(
        &server,
        Method::POST,
        "/admin/halts",
        Some(&tina),
        Some(halt.clone()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // An instrument, then an account.
    let (status, acme) = call(
        &server,
        Method::POST,
        "/admin/halts/instruments/ACME",
        Some(&root),
        Some(halt.clone()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{acme}");
    assert_eq!(acme["target"], "instrument:ACME");
    assert_halted(&place(&server, &tina, "ACME").await);
    assert_eq!(place(&server, &tina, "OTHER").await.0, StatusCode::CREATED);
    let (status, account) = call(
        &server,
        Method::POST,
        "/admin/halts/accounts/ACC-1",
        Some(&root),
        Some(json!({"reason": "margin call", "expires_in_minutes": 30})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{account}");
    assert!(account["expires_at"].is_string(), "{account}");
    assert_halted(&place(&server, &tina, "OTHER").await);
    for control in [&acme, &account] {
        let path = format!("/admin/controls/{}", control["id"]);
        let (status, body) = call(&server, Method::DELETE, &path, Some(&ada), None, None).await;
        assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
        let (status, _) = call(&server, Method::DELETE, &path, Some(&ada), None, None).await;
        assert_eq!(status, StatusCode::CONFLICT, "lifted once");
    }
    assert_eq!(place(&server, &tina, "ACME").await.0, StatusCode::CREATED);

    // A global halt: lifting it takes a second admin.
    let (status, global) = call(
        &server,
        Method::POST,
        "/admin/halts",
        Some(&root),
        Some(halt),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{global}");
    assert_halted(&place(&server, &tina, "ACME").await);
    let lift = format!("/admin/controls/{}", global["id"]);
    let (status, asked) = call(&server, Method::DELETE, &lift, Some(&root), None, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{asked}");
    assert_eq!(asked["active"], true);
    assert_halted(&place(&server, &tina, "ACME").await);
    let (status, body) = call(&server, Method::DELETE, &lift, Some(&root), None, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["reason"], "self_approval");
    let (status, _) = call(&server, Method::DELETE, &lift, Some(&ada), None, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(place(&server, &tina, "ACME").await.0, StatusCode::CREATED);

    // A blocked network: refused before anything else, /health included.
    let (status, block) = call(
        &server,
        Method::POST,
        "/admin/blocks",
        Some(&root),
        Some(json!({"network": "203.0.113.0/24", "reason": "credential stuffing"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{block}");
    for from in ["203.0.113.9", "::ffff:203.0.113.200"] {
        let (status, body) = call(&server, Method::GET, "/health", None, None, Some(from)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{from}: {body}");
        assert_eq!(body["code"], "address_blocked");
    }
    let (status, _) = call(
        &server,
        Method::GET,
        "/health",
        None,
        None,
        Some("203.0.114.1"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = call(
        &server,
        Method::POST,
        "/admin/blocks",
        Some(&root),
        Some(json!({"network": "203.0.113.0/33", "reason": "x"})),
        None,
    )
    .await;
    assert!(status.is_client_error(), "{body}");
    // Never the caller's own address (here the peer, 127.0.0.1), nor themselves.
    let (status, body) = call(
        &server,
        Method::POST,
        "/admin/blocks",
        Some(&root),
        Some(json!({"network": "0.0.0.0/0", "reason": "oops"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["reason"], "blocks_own_address");
    let (_, me) = call(&server, Method::GET, "/me", Some(&root), None, None).await;
    let (status, body) = call(
        &server,
        Method::POST,
        &format!("/admin/users/{}/suspension", me["id"].as_str().unwrap()),
        Some(&root),
        Some(json!({"reason": "oops"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["reason"], "self_suspension");
    let path = format!("/admin/controls/{}", block["id"]);
    assert_eq!(
        call(&server, Method::DELETE, &path, Some(&root), None, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, _) = call(
        &server,
        Method::GET,
        "/health",
        None,
        None,
        Some("203.0.113.9"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Suspending tina: her session and key stop working, her right password is a 403.
    let (status, key) = call(
        &server,
        Method::POST,
        "/api-keys",
        Some(&tina),
        Some(json!({"name": "bot", "scopes": ["orders:read"]})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let api_key = key["key"].as_str().unwrap().to_owned();
    let (status, suspended) = call(
        &server,
        Method::POST,
        &format!("/admin/users/{tina_id}/suspension"),
        Some(&root),
        Some(json!({"reason": "account takeover suspected", "revoke_api_keys": true})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{suspended}");
    assert_eq!(suspended["sessions_ended"], 1);
    assert_eq!(suspended["api_keys_revoked"], 1);
    assert_eq!(suspended["control"]["target"], tina_id.as_str());
    let (status, _) = call(&server, Method::GET, "/me", Some(&tina), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let with_key = server
        .client()
        .get(server.url("/me"))
        .header("x-api-key", &api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(with_key.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = login(&server, "tina", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "account_suspended");
    let (status, _) = login(&server, "tina", "not her password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "strangers learn nothing");
    let (status, _) = call(
        &server,
        Method::POST,
        &format!("/admin/users/{tina_id}/suspension"),
        Some(&root),
        Some(json!({"reason": "again"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, active) = call(
        &server,
        Method::GET,
        "/admin/controls",
        Some(&ada),
        None,
        None,
    )
    .await;
    let ids: Vec<&Value> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, [&suspended["control"]["id"]], "{active}");
    let path = format!("/admin/controls/{}", suspended["control"]["id"]);
    assert_eq!(
        call(&server, Method::DELETE, &path, Some(&ada), None, None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = login(&server, "tina", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = call(&server, Method::GET, "/me", Some(&tina), None, None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the old session stays ended"
    );

    // The history keeps every control with who set and lifted it.
    let (_, history) = call(
        &server,
        Method::GET,
        "/admin/controls/history",
        Some(&root),
        None,
        None,
    )
    .await;
    let history = history.as_array().unwrap();
    assert_eq!(history.len(), 5);
    assert!(
        history
            .iter()
            .all(|c| c["active"] == false && c["lifted_by"].is_string())
    );
    assert_eq!(history[0]["kind"], "suspension");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
}

/// Polls `check` until it holds; returns how long that took (at most `limit`).
async fn within<F, Fut>(limit: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn controls_reach_a_second_instance_within_a_second() {
    let db = finsec_testkit::postgres().await;
    let redis = finsec_testkit::redis().await;
    let (url, _) = server_pg_url(&db);
    let launch = Launch::new().args([
        "--postgres-url",
        url.as_str(),
        "--redis-url",
        finsec_testkit::redis_url().as_str(),
        "--redis-prefix",
        redis.prefix.as_str(),
        "--trusted-proxy",
        "127.0.0.1/32",
    ]);
    let data_a = DataDir::new();
    let a = launch.start(&data_a);
    let data_b = DataDir::new();
    crate::scaleout::copy_secrets(data_a.path(), data_b.path());
    let b = launch.start(&data_b);
    let (_, root) = user(&a, "root").await;
    let (tina_id, _) = user(&a, "tina").await;
    grant(&launch, &data_a, "root", "admin");
    grant(&launch, &data_a, "tina", "trader");
    launch
        .accounts(&data_a, &["grant", "tina", "ACC-1"])
        .success();
    let (status, body) = login(&b, "tina", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tina_on_b = body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(place(&b, &tina_on_b, "ACME").await.0, StatusCode::CREATED);

    // A halt set on A refuses orders on B.
    let (status, halt) = call(
        &a,
        Method::POST,
        "/admin/halts/instruments/ACME",
        Some(&root),
        Some(json!({"reason": "two instances"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{halt}");
    let took = within(Duration::from_secs(1), || async {
        place(&b, &tina_on_b, "ACME").await.0 == StatusCode::FORBIDDEN
    })
    .await;
    println!("halt on A refused on B after {took:?}");

    // A block set on A refuses on B.
    call(
        &a,
        Method::POST,
        "/admin/blocks",
        Some(&root),
        Some(json!({"network": "198.51.100.0/24", "reason": "two instances"})),
        None,
    )
    .await;
    let took = within(Duration::from_secs(1), || async {
        call(&b, Method::GET, "/health", None, None, Some("198.51.100.4"))
            .await
            .0
            == StatusCode::FORBIDDEN
    })
    .await;
    println!("block on A refused on B after {took:?}");

    // A suspension set on A refuses tina's session on B.
    let (status, body) = call(
        &a,
        Method::POST,
        &format!("/admin/users/{tina_id}/suspension"),
        Some(&root),
        Some(json!({"reason": "two instances"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let took = within(Duration::from_secs(1), || async {
        call(&b, Method::GET, "/me", Some(&tina_on_b), None, None)
            .await
            .0
            == StatusCode::UNAUTHORIZED
    })
    .await;
    println!("suspension on A: session refused on B after {took:?}");
    let took = within(Duration::from_secs(1), || async {
        login(&b, "tina", PASSWORD).await.0 == StatusCode::FORBIDDEN
    })
    .await;
    println!("suspension on A: login refused on B after {took:?}");

    let (_, logs) = a.terminate();
    assert!(!logs.contains("panicked"), "{logs}");
    let (_, logs) = b.terminate();
    assert!(!logs.contains("panicked"), "{logs}");
    redis.cleanup().await;
    db.cleanup().await;
}

/// A monitor rule with `response = "block_ip"` blocks the address that tripped it.
#[tokio::test]
async fn the_monitor_blocks_an_address_that_trips_a_rule() {
    let data = DataDir::new();
    let rules = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        rules.path(),
        "[[rule]]\nname = \"spray\"\ndescription = \"failed logins from one address\"\n\
         severity = \"high\"\nactions = [\"auth.login\"]\noutcomes = [\"failure\"]\n\
         per = [\"ip\"]\nthreshold = 3\nwindow_secs = 300\nresponse = \"block_ip\"\n",
    )
    .unwrap();
    let server = Launch::new()
        .args(["--trusted-proxy", "127.0.0.1/32", "--audit-rules"])
        .args([rules.path().to_str().unwrap()])
        .start(&data);
    let from = "192.0.2.77";
    for i in 0..4 {
        let creds = json!({"username": format!("victim{i}"), "password": "guess"});
        let (status, body) = call(
            &server,
            Method::POST,
            "/auth/login",
            None,
            Some(creds),
            Some(from),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{i}: {body}");
    }
    let (status, body) = call(&server, Method::GET, "/health", None, None, Some(from)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "address_blocked");
    let (status, _) = call(
        &server,
        Method::GET,
        "/health",
        None,
        None,
        Some("192.0.2.78"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(
        logs.contains("incident control set by the monitor"),
        "{logs}"
    );
}
