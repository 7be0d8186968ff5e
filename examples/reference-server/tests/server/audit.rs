//! The audit trail over HTTP against the real binary: failed logins recorded with the
//! attempted username's blind index only, the monitor's brute-force alert in the log and the
//! incident table, the auditor's routes (search, checkpoint, inclusion and consistency
//! proofs, checked here with finsec-audit alone), `audit:read` enforced, and the stopped
//! server's SQLite log verified against its witness file.
#![cfg(test)]

use std::sync::Arc;

use finsec_audit::merkle::{self, Hash};
use finsec_audit::{FileWitness, LogVerifier, NoteVerifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{DataDir, Launch, Server};

const PASSWORD: &str = "audit trail passphrase 7d1c55";

async fn register(server: &Server, name: &str) {
    let response = server
        .client()
        .post(server.url("/auth/register"))
        .json(&json!({ "username": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "register {name}");
}

async fn login(server: &Server, name: &str, password: &str) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(server.url("/auth/login"))
        .json(&json!({ "username": name, "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn token(server: &Server, name: &str) -> String {
    let (status, body) = login(server, name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

async fn get(server: &Server, token: &str, path: &str) -> (StatusCode, Value) {
    let response = server
        .client()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Events of a `/audit` page.
fn events(page: &Value) -> Vec<Value> {
    page["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_audit_trail_end_to_end_on_sqlite() {
    let data = DataDir::new();
    // Six failures from one address reach the password check only with more than the
    // default five allowed before the lockout's wait.
    let launch = Launch::new().args(["--login-failures-per-address", "10"]);
    let server = launch.start(&data);
    register(&server, "alice").await;
    register(&server, "bob").await;
    let out = launch.roles(&data, &["grant", "bob", "auditor"]).success();
    assert_eq!(out.trim(), "granted auditor to bob");

    // Six wrong passwords for alice: more than five in 300 s against one account.
    for _ in 0..6 {
        let (status, _) = login(&server, "alice", "not the password").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let alice = token(&server, "alice").await;
    let bob = token(&server, "bob").await;

    // An API key created and revoked.
    let response = server
        .client()
        .post(server.url("/api-keys"))
        .bearer_auth(&alice)
        .json(&json!({ "name": "ci", "scopes": ["orders:read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let key: Value = response.json().await.unwrap();
    let key_id = key["id"].as_str().unwrap().to_owned();
    let response = server
        .client()
        .delete(server.url(&format!("/api-keys/{key_id}")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    // A token from a refresh cannot mint a key: the denial names the step-up rule's code.
    let (_, tokens) = login(&server, "bob", PASSWORD).await;
    let response = server
        .client()
        .post(server.url("/auth/refresh"))
        .json(&json!({ "refresh_token": tokens["refresh_token"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed: Value = response.json().await.unwrap();
    let response = server
        .client()
        .post(server.url("/api-keys"))
        .bearer_auth(refreshed["access_token"].as_str().unwrap())
        .json(&json!({ "name": "late", "scopes": ["orders:read"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A wrong current password in a password change is that action's failure, not a login's.
    let response = server
        .client()
        .post(server.url("/auth/password"))
        .bearer_auth(&bob)
        .json(&json!({ "current_password": "not it at all", "new_password": "a brand new passphrase 99" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Only auditors read the log.
    let (status, _) = get(&server, &alice, "/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let status = server.get("/audit").await.status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The failed logins: six, one account's blind index, never the name.
    let (status, page) = get(&server, &bob, "/audit?action=auth.login&outcome=failure").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let failures = events(&page);
    assert_eq!(failures.len(), 6, "{page}");
    let target = failures[0]["event"]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for f in &failures {
        assert_eq!(f["event"]["resource"]["type"], "user");
        assert_eq!(f["event"]["resource"]["id"], target.as_str());
        assert_eq!(f["event"]["details"]["reason"], "password.mismatch", "{f}");
        assert!(f["event"]["actor"]["ip"].is_string(), "{f}");
    }
    assert!(!page.to_string().contains("alice"), "{page}");
    // The success is recorded with the user and the same blind index.
    let (_, page) = get(
        &server,
        &bob,
        "/audit?action=auth.login&outcome=success&limit=10",
    )
    .await;
    assert!(
        events(&page)
            .iter()
            .any(|e| e["event"]["resource"]["id"] == target.as_str()),
        "{page}"
    );
    let (_, page) = get(
        &server,
        &bob,
        "/audit?action=auth.password_change&outcome=failure",
    )
    .await;
    let wrong = events(&page);
    assert_eq!(wrong.len(), 1, "{page}");
    assert_eq!(wrong[0]["event"]["details"]["reason"], "password.mismatch");
    let (_, page) = get(&server, &bob, "/audit?action=api_key.create&outcome=denied").await;
    let denied = events(&page);
    assert_eq!(denied.len(), 1, "{page}");
    assert_eq!(denied[0]["event"]["details"]["reason"], "step_up_required");
    assert_eq!(denied[0]["event"]["details"]["code"], "step_up.no_login");
    // The API key's life.
    for action in ["api_key.create", "api_key.revoke"] {
        let (_, page) = get(
            &server,
            &bob,
            &format!("/audit?action={action}&outcome=success"),
        )
        .await;
        let found = events(&page);
        assert_eq!(found.len(), 1, "{action}: {page}");
        assert_eq!(found[0]["event"]["resource"]["id"], key_id.as_str());
    }
    // Filters that do not parse are problems.
    let (status, body) = get(&server, &bob, "/audit?outcome=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = get(&server, &bob, "/audit?limit=0").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = get(&server, &bob, "/audit?colour=red").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The monitor saw the brute force: an alert in the log and an incident.
    let (_, page) = get(&server, &bob, "/audit?action=security.alert").await;
    let alerts = events(&page);
    assert!(
        alerts
            .iter()
            .any(|a| a["event"]["resource"]["id"] == "brute_force"
                && a["event"]["details"]["key"] == target.as_str()),
        "{page}"
    );
    let (status, incidents) = get(&server, &bob, "/audit/incidents").await;
    assert_eq!(status, StatusCode::OK, "{incidents}");
    let list = incidents["incidents"].as_array().unwrap();
    assert!(
        list.iter()
            .any(|i| i["rule"] == "brute_force" && i["per"] == "target" && i["severity"] == "high"),
        "{incidents}"
    );

    // A checkpoint, and a proof that one failed login is in the log it signs.
    let (status, first) = get(&server, &bob, "/audit/checkpoint").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let verifier = NoteVerifier::from_vkey(first["verifier_key"].as_str().unwrap()).unwrap();
    let cp1 = verifier.verify(first["note"].as_str().unwrap()).unwrap();
    let event = &failures[0];
    let id = event["event"]["id"].as_str().unwrap();
    let (status, proof) = get(&server, &bob, &format!("/audit/proof/inclusion?id={id}")).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let signed = verifier
        .verify(proof["checkpoint"].as_str().unwrap())
        .unwrap();
    // The event as served is its canonical encoding: it hashes to the proof's leaf.
    let bytes = serde_json::to_vec(&event["event"]).unwrap();
    let leaf = Hash::from_base64(proof["leaf"].as_str().unwrap()).unwrap();
    assert_eq!(Hash::leaf(&bytes), leaf);
    let path: Vec<Hash> = proof["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect();
    merkle::verify_inclusion(
        &leaf,
        proof["index"].as_u64().unwrap(),
        proof["size"].as_u64().unwrap(),
        &path,
        signed.checkpoint().root(),
    )
    .unwrap();
    assert_eq!(
        proof["index"].as_u64().unwrap(),
        event["position"].as_u64().unwrap()
    );

    // More happens; the newer log is consistent with the older checkpoint.
    let (status, _) = login(&server, "alice", "wrong again").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, page) = get(&server, &bob, "/audit?limit=1").await;
    let newest = events(&page)[0]["event"]["id"].as_str().unwrap().to_owned();
    let (_, proof) = get(
        &server,
        &bob,
        &format!("/audit/proof/inclusion?id={newest}"),
    )
    .await;
    let cp2 = verifier
        .verify(proof["checkpoint"].as_str().unwrap())
        .unwrap();
    let (n1, n2) = (cp1.checkpoint().size(), cp2.checkpoint().size());
    assert!(n2 > n1, "{n1} {n2}");
    let (status, body) = get(
        &server,
        &bob,
        &format!("/audit/proof/consistency?from={n1}&to={n2}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hashes: Vec<Hash> = body["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| Hash::from_base64(h.as_str().unwrap()).unwrap())
        .collect();
    merkle::verify_consistency(
        n1,
        n2,
        &hashes,
        cp1.checkpoint().root(),
        cp2.checkpoint().root(),
    )
    .unwrap();
    let (status, _) = get(
        &server,
        &bob,
        &format!("/audit/proof/consistency?from={n2}&to={n1}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Stopped, the server checkpoints; the SQLite log verifies against the witness file.
    let (_, output) = server.terminate();
    assert!(output.contains("audit log checkpointed"), "{output}");
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.path().join("finsec.db"))
        .read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let sink = finsec_audit::sqlite::SqliteSink::new(pool);
    let report = LogVerifier::new(verifier, "finsec-reference-server/audit")
        .with_witness(Arc::new(FileWitness::new(
            data.path().join("audit-witness.jsonl"),
        )))
        .verify(&sink)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(report.events > 20, "{report:?}");
}

#[tokio::test]
async fn client_addresses_can_be_kept_as_a_keyed_index() {
    let data = DataDir::new();
    let launch = Launch::new().args(["--audit-client-ip", "keyed"]);
    let server = launch.start(&data);
    register(&server, "carol").await;
    launch
        .roles(&data, &["grant", "carol", "auditor"])
        .success();
    let (status, _) = login(&server, "carol", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let carol = token(&server, "carol").await;
    let (status, page) = get(&server, &carol, "/audit?action=auth.login").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let found = events(&page);
    assert_eq!(found.len(), 2, "{page}");
    // The refused attempt (anyone's address) as the keyed index; carol's own login sealed
    // under her subject key (erasing her makes it unreadable).
    let ip = |outcome: &str| {
        found
            .iter()
            .find(|e| e["event"]["outcome"] == outcome)
            .map(|e| e["event"]["actor"]["ip"].clone())
            .unwrap()
    };
    assert!(ip("failure")["$hmac"].is_string(), "{page}");
    assert!(
        ip("success")["$enc"]["subject"]
            .as_str()
            .unwrap()
            .starts_with("user:"),
        "{page}"
    );
    assert!(!page.to_string().contains("127.0.0.1"), "{page}");
}
