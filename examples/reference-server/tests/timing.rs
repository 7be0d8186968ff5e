//! Timing of refused logins, in a test binary of its own: cargo runs test binaries one
//! after another, so no other test of the server competes for the cores while this one
//! measures (in the `server` binary eighty tests run at once on this machine's two cores).
#![cfg(test)]
#![cfg(unix)]

#[path = "server/support.rs"]
#[allow(
    dead_code,
    reason = "the servers' shared harness; this binary uses part of it"
)]
mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use support::{DataDir, Launch, Server};

const PASSWORD: &str = "correct horse battery staple 42";

async fn post(server: &Server, path: &str, body: Value) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn login(server: &Server, username: &str, password: &str) -> (StatusCode, Value) {
    post(
        server,
        "/auth/login",
        json!({"username": username, "password": password}),
    )
    .await
}

/// A refusal's timing does not tell whether the account exists: existing users with an
/// argon2id hash, existing users with a cheap legacy bcrypt hash and unknown names, with
/// short and long passwords, all answer 401 in about the same time. A password longer than
/// any policy allows is refused before the lookup, with one answer for every name.
#[tokio::test]
async fn refused_logins_take_the_same_time_whoever_they_name() {
    let data = DataDir::new();
    // Thirty-two failures per account from one address: the lockout's waits (which answer
    // before any lookup, alike for every name) are off, so every attempt reaches the check.
    let server = Launch::new()
        .args(["--login-backoff-secs", "0"])
        .start(&data);
    for name in ["tina", "bert"] {
        let (status, body) = post(
            &server,
            "/auth/register",
            json!({"username": name, "password": PASSWORD}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if name == "bert" {
            // bcrypt at cost 4 checks in about a millisecond, far quicker than argon2id.
            let pool = sqlx::SqlitePool::connect(&format!(
                "sqlite://{}",
                data.path().join("finsec.db").display()
            ))
            .await
            .unwrap();
            sqlx::query("UPDATE server_users SET password_hash = $1 WHERE id = $2")
                .bind(bcrypt::hash(PASSWORD, 4).unwrap())
                .bind(body["id"].as_str().unwrap())
                .execute(&pool)
                .await
                .unwrap();
            pool.close().await;
        }
    }

    let long = "long password ".repeat(70); // 980 characters
    let cases: [(&str, &str); 6] = [
        ("tina", "a wrong password"),
        ("tina", &long),
        ("bert", "a wrong password"),
        ("bert", &long),
        ("nobody.here", "a wrong password"),
        ("nobody.here", &long),
    ];
    // One round unmeasured, then interleaved rounds, so drift on a busy machine hits
    // every case alike.
    let rounds = 15;
    let mut times = vec![Vec::new(); cases.len()];
    for round in 0..=rounds {
        for (k, (name, password)) in cases.iter().enumerate() {
            let started = Instant::now();
            let (status, body) = login(&server, name, password).await;
            let took = started.elapsed();
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
            if round > 0 {
                times[k].push(took);
            }
        }
    }
    let medians: Vec<Duration> = times
        .iter_mut()
        .map(|t| {
            t.sort();
            t[rounds / 2]
        })
        .collect();
    let slowest = medians.iter().max().unwrap().as_secs_f64();
    let quickest = medians.iter().min().unwrap().as_secs_f64();
    assert!(
        slowest <= quickest * 1.2,
        "medians differ by more than 20%: {:?}",
        cases
            .iter()
            .map(|(n, p)| (n, p.len()))
            .zip(&medians)
            .collect::<Vec<_>>()
    );

    // Too long for any policy: 422 before the lookup, the same for a user and a stranger.
    let too_long = "x".repeat(1025);
    let (known_status, known) = login(&server, "tina", &too_long).await;
    let (unknown_status, unknown) = login(&server, "nobody.here", &too_long).await;
    assert_eq!(known_status, StatusCode::UNPROCESSABLE_ENTITY, "{known}");
    assert_eq!(unknown_status, known_status);
    assert_eq!(known["detail"], unknown["detail"]);
    assert!(
        known["detail"]
            .as_str()
            .unwrap()
            .contains("longer than 1024"),
        "{known}"
    );
    // The right password still works after all that.
    let (status, body) = login(&server, "tina", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.terminate();
}
