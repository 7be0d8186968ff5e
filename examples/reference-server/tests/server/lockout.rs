//! Failed-login lockout over real HTTP: failures (not attempts) counted per account and per
//! account at one address, a remembered-device token exempting its device from the
//! per-account wait, recovery after failures in a row, and the admin and command-line ways
//! out; on SQLite, and shared by two instances on PostgreSQL + Redis.
#![cfg(test)]

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::backends::server_pg_url;
use crate::support::{DataDir, Launch, Server};

const PASSWORD: &str = "correct horse battery staple 42";

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

/// `POST /auth/login` as a client at `from` (an `X-Forwarded-For` read because the test
/// server trusts 127.0.0.1 as its proxy), with a remembered-device token if given.
async fn login_from(
    server: &Server,
    from: &str,
    username: &str,
    password: &str,
    device: Option<&str>,
) -> Reply {
    let mut body = json!({"username": username, "password": password});
    if let Some(device) = device {
        body["device_token"] = json!(device);
    }
    let response = server
        .client()
        .post(server.url("/auth/login"))
        .header("x-forwarded-for", from)
        .json(&body)
        .send()
        .await
        .unwrap();
    Reply {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.json().await.unwrap_or(Value::Null),
    }
}

async fn register(server: &Server, username: &str) -> String {
    let response = server
        .client()
        .post(server.url("/auth/register"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

fn assert_waits(reply: &Reply, scope_words: &str) {
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        reply.body
    );
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "Retry-After {retry}");
    assert_eq!(reply.body["retry_after"], retry);
    let detail = reply.body["detail"].as_str().unwrap();
    assert!(detail.contains(scope_words), "{detail}");
}

/// The attack of the issue: failed logins from rotating addresses used to spend the
/// account's attempt budget, so a stranger kept its owner out. Now the owner's remembered
/// device logs in whatever a stranger does, and only devices without one wait.
#[tokio::test]
async fn a_stranger_cannot_lock_out_a_user_with_a_remembered_device() {
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--trusted-proxy", "127.0.0.1/32"])
        .start(&data);
    register(&server, "olive").await;
    let home = "198.51.100.7";
    let first = login_from(&server, home, "olive", PASSWORD, None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let device = first.body["device_token"].as_str().unwrap().to_owned();
    assert!(device.starts_with("fsd_"), "{device}");
    // Sending it back: recognised, so no new one is handed out.
    let again = login_from(&server, home, "olive", PASSWORD, Some(&device)).await;
    assert_eq!(again.status, StatusCode::OK);
    assert!(again.body.get("device_token").is_none(), "{}", again.body);

    // A stranger fails ten times from ten addresses (each under its own per-address
    // count), then every device without a token waits.
    for i in 0..10 {
        let from = format!("203.0.113.{i}");
        let reply = login_from(&server, &from, "olive", "not her password", None).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "attempt {i}: {}",
            reply.body
        );
    }
    let stranger = login_from(&server, "203.0.113.99", "olive", "guess", None).await;
    assert_waits(&stranger, "failed logins of this account:");
    // The owner on a new device, with the right password, waits too (before: the same)...
    let new_device = login_from(&server, "192.0.2.50", "olive", PASSWORD, None).await;
    assert_waits(&new_device, "device_token");
    // ...but not on the remembered one; its success clears the count.
    let owner = login_from(&server, home, "olive", PASSWORD, Some(&device)).await;
    assert_eq!(owner.status, StatusCode::OK, "{}", owner.body);
    let reply = login_from(&server, "203.0.113.99", "olive", "guess", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);

    // Another account's token, or a made-up one, exempts nothing.
    register(&server, "pablo").await;
    for i in 0..10 {
        let from = format!("203.0.113.{}", 100 + i);
        let reply = login_from(&server, &from, "pablo", "nope", Some(&device)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    for token in [device.as_str(), "fsd_made-up", "not a token"] {
        let reply = login_from(&server, "192.0.2.60", "pablo", PASSWORD, Some(token)).await;
        assert_waits(&reply, "failed logins of this account:");
    }

    // A password change forgets the user's devices: the old token no longer exempts.
    let access = owner.body["access_token"].as_str().unwrap();
    let changed = server
        .client()
        .post(server.url("/auth/password"))
        .bearer_auth(access)
        .json(&json!({"current_password": PASSWORD, "new_password": "a brand new passphrase 7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    // One failure is counted already (the stranger's last guess): nine more make ten.
    for i in 0..9 {
        let from = format!("203.0.113.{}", 200 + i);
        let reply = login_from(&server, &from, "olive", "guess", None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    let old = login_from(
        &server,
        home,
        "olive",
        "a brand new passphrase 7",
        Some(&device),
    )
    .await;
    assert_waits(&old, "device_token");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains(&device), "a device token in the logs");
}

/// The defence: one address is slowed after five failures without touching others; the
/// same for a name nobody has (the answers do not tell which exist); and after the
/// configured failures in a row the account needs recovery, which an admin (over HTTP, with
/// a recent login) or an operator (`users unlock`) gives.
#[tokio::test]
async fn guessing_stops_and_an_admin_recovers_the_account() {
    let data = DataDir::new();
    let launch = Launch::new().args([
        "--trusted-proxy",
        "127.0.0.1/32",
        "--login-failures-per-account",
        "50",
        "--login-recovery-after",
        "12",
    ]);
    let server = launch.start(&data);
    let quinn = register(&server, "quinn").await;
    register(&server, "root").await;
    assert!(
        launch
            .roles(&data, &["grant", "root", "admin"])
            .status
            .success()
    );

    for name in ["quinn", "nobody.at.all"] {
        for i in 0..5 {
            let reply = login_from(&server, "203.0.113.1", name, "guess", None).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{name} {i}: {}",
                reply.body
            );
        }
        let slowed = login_from(&server, "203.0.113.1", name, "guess", None).await;
        assert_waits(&slowed, "from this address");
        assert_eq!(slowed.headers["retry-after"], "30", "{name}");
        // The right password from there waits too; from elsewhere it is checked.
        let elsewhere = login_from(&server, "203.0.113.2", name, "guess", None).await;
        assert_eq!(elsewhere.status, StatusCode::UNAUTHORIZED, "{name}");
    }

    // Six more failures from other addresses: twelve in a row, and the account (or the
    // name) refuses every device without a token, the right password included.
    for name in ["quinn", "nobody.at.all"] {
        for i in 0..6 {
            let from = format!("198.51.100.{i}");
            let reply = login_from(&server, &from, name, "guess", None).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{name} {i}: {}",
                reply.body
            );
        }
    }
    let locked = login_from(&server, "192.0.2.9", "quinn", PASSWORD, None).await;
    let stranger = login_from(&server, "192.0.2.9", "nobody.at.all", PASSWORD, None).await;
    for reply in [&locked, &stranger] {
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
        assert_eq!(reply.body["code"], "recovery_required");
    }
    assert_eq!(locked.body["detail"], stranger.body["detail"]);

    // root logs in from its own address and looks, then unlocks over HTTP.
    let admin = login_from(&server, "192.0.2.100", "root", PASSWORD, None).await;
    let admin_token = admin.body["access_token"].as_str().unwrap().to_owned();
    let path = format!("/admin/users/{quinn}/lockout");
    let state: Value = server
        .client()
        .get(server.url(&path))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["failures"], 12, "{state}");
    assert_eq!(state["recovery_required"], true);
    let unlocked = server
        .client()
        .delete(server.url(&path))
        .bearer_auth(&admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(unlocked.status(), StatusCode::NO_CONTENT);
    let back = login_from(&server, "192.0.2.9", "quinn", PASSWORD, None).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    // Quinn may not unlock herself (no `users:admin`).
    let quinn_token = back.body["access_token"].as_str().unwrap();
    let refused = server
        .client()
        .delete(server.url(&path))
        .bearer_auth(quinn_token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Locked again, then the operator's command line unlocks.
    for i in 0..12 {
        let from = format!("198.51.100.{}", 50 + i);
        let reply = login_from(&server, &from, "quinn", "guess", None).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{i}: {}",
            reply.body
        );
    }
    let out = launch.users(&data, &["lockout", "quinn"]).success();
    assert!(out.contains("12 failed logins in a row"), "{out}");
    assert!(out.contains("recovery required: true"), "{out}");
    let out = launch.users(&data, &["unlock", "quinn"]).success();
    assert_eq!(out.trim(), "unlocked quinn");
    let back = login_from(&server, "192.0.2.9", "quinn", PASSWORD, None).await;
    assert_eq!(back.status, StatusCode::OK, "{}", back.body);
    let failed = launch.users(&data, &["unlock", "nobody.at.all"]);
    assert!(!failed.status.success());

    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
}

/// Two instances on one PostgreSQL database (and one Redis) share the counts: failures on
/// A make B wait, and a success on B clears them for A.
#[tokio::test]
async fn two_instances_share_failed_login_counts_on_postgres() {
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
        "--login-failures-per-account",
        "3",
    ]);
    let data_a = DataDir::new();
    let a = launch.start(&data_a);
    let data_b = DataDir::new();
    crate::scaleout::copy_secrets(data_a.path(), data_b.path());
    let b = launch.start(&data_b);
    register(&a, "rosa").await;
    for server in [&a, &b, &a] {
        let reply = login_from(server, "192.0.2.1", "rosa", "guess", None).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
    }
    for server in [&b, &a] {
        let reply = login_from(server, "192.0.2.1", "rosa", PASSWORD, None).await;
        assert_waits(&reply, "failed logins of this account:");
    }
    let (_, logs) = a.terminate();
    assert!(!logs.contains("panicked"), "{logs}");
    let (_, logs) = b.terminate();
    assert!(!logs.contains("panicked"), "{logs}");
    redis.cleanup().await;
    db.cleanup().await;
}
