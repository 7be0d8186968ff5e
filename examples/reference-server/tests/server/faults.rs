//! Faults under a running server: its PostgreSQL (a cluster of the test's own, never the
//! shared one) stops and starts again while orders are being placed. The server answers
//! every request during the outage promptly with a 5xx problem, serves again once the
//! database is back, and every order it acknowledged with 201 is there afterwards.
#![cfg(test)]

use std::time::{Duration, Instant};

use finsec_testkit::PgCluster;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{DataDir, Launch, Server};

const PASSWORD: &str = "the database goes away 5c1d";

/// How long any one request may take, outage or not.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

fn order(quantity: u32) -> Value {
    json!({
        "symbol": "AAPL", "side": "buy", "order_type": "limit",
        "quantity": quantity.to_string(), "limit_price": "190.5", "account_id": "ACC-9",
    })
}

/// Places an order: the status and, when acknowledged, its id. Fails the test if no
/// answer comes within [`ANSWER_WITHIN`].
async fn place(server: &Server, token: &str, quantity: u32) -> (StatusCode, Option<String>) {
    let started = Instant::now();
    let response = server
        .client()
        .post(server.url("/orders"))
        .bearer_auth(token)
        .json(&order(quantity))
        .timeout(ANSWER_WITHIN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("no answer after {:?}: {e}", started.elapsed()));
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    if status == StatusCode::CREATED {
        (status, Some(body["id"].as_str().unwrap().to_owned()))
    } else {
        assert!(
            status.is_server_error(),
            "{status} during a database fault: {body}"
        );
        assert!(body["type"].is_string(), "not a problem: {body}");
        (status, None)
    }
}

#[tokio::test]
async fn a_postgres_restart_mid_run_loses_no_acknowledged_order() {
    let mut cluster = PgCluster::start(None);
    let url = format!("{}?sslmode=disable", cluster.url());
    let launch = Launch::new().args(["--postgres-url", url.as_str()]);
    let data = DataDir::new();
    let server = launch.start(&data);
    let client = server.client();

    let response = client
        .post(server.url("/auth/register"))
        .json(&json!({"username": "ivan", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    launch.roles(&data, &["grant", "ivan", "trader"]).success();
    launch
        .accounts(&data, &["grant", "ivan", "ACC-9"])
        .success();
    let response = client
        .post(server.url("/auth/login"))
        .json(&json!({"username": "ivan", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let login: Value = response.json().await.unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();

    let mut acknowledged = Vec::new();
    let mut quantity = 1;
    for _ in 0..5 {
        let (status, id) = place(&server, &token, quantity).await;
        assert_eq!(status, StatusCode::CREATED);
        acknowledged.extend(id);
        quantity += 1;
    }

    // The database goes away: every request is refused promptly, none acknowledged.
    cluster.stop();
    let outage = Instant::now();
    let mut refused = 0;
    while outage.elapsed() < Duration::from_secs(2) {
        let (status, id) = place(&server, &token, quantity).await;
        assert!(
            id.is_none(),
            "acknowledged with the database down: {status}"
        );
        refused += 1;
        quantity += 1;
    }
    assert!(refused >= 2, "only {refused} requests in two seconds");

    // It comes back: within a bounded number of refusals (stale pooled connections fail
    // their first statement and are replaced), orders are acknowledged again.
    cluster.start_again();
    let back = Instant::now();
    let mut failures_after = 0;
    loop {
        let (status, id) = place(&server, &token, quantity).await;
        quantity += 1;
        if let Some(id) = id {
            acknowledged.push(id);
            break;
        }
        failures_after += 1;
        assert!(
            back.elapsed() < Duration::from_secs(30),
            "still {status} 30 s after the database came back ({failures_after} failures)"
        );
    }
    // Then it stays up: no request fails once one has succeeded on a fresh connection
    // (at most the pool's other stale connections fail once each).
    let mut later_failures = 0;
    for _ in 0..40 {
        let (_, id) = place(&server, &token, quantity).await;
        quantity += 1;
        match id {
            Some(id) => acknowledged.push(id),
            None => later_failures += 1,
        }
    }
    assert!(
        failures_after + later_failures <= 32,
        "{failures_after} + {later_failures} failures after the restart"
    );

    // Every acknowledged order is there.
    assert!(acknowledged.len() >= 5 + 1 + 40 - 32);
    for id in &acknowledged {
        let response = client
            .get(server.url(&format!("/orders/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "order {id}");
    }
    let (status, output) = server.terminate();
    assert!(status.success(), "{output}");
    assert!(!output.contains("panicked"), "{output}");
}
