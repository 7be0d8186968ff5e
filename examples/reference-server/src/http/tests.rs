//! The pipeline in process: a layer added after authentication sees who made each request
//! (or why nobody did) without any handler knowing about it.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use clap::Parser as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::layers::authenticate::Authenticated;
use super::{app_routes, with_pipeline};
use crate::Cli;

/// What the recording layer saw: each request's path and authentication outcome.
type Seen = Arc<Mutex<Vec<(String, Option<Authenticated>)>>>;

const PASSWORD: &str = "correct horse battery staple 42";

async fn call(app: &axum::Router, request: Request) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, value)
}

fn post_json(path: &str, body: &Value) -> Request {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn get_me(authorization: &str) -> Request {
    Request::get("/me")
        .header(header::AUTHORIZATION, authorization)
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_layer_after_authentication_sees_every_outcome_without_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cli = Cli::try_parse_from([
        "finsec-reference-server",
        "--data-dir",
        data.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ])
    .unwrap();
    let server = crate::Server::bind(&cli.config).await.unwrap();
    let state = server.state().clone();

    // A tiny audit layer: the path and the authentication outcome of every request.
    let seen: Seen = Arc::default();
    let recorder = {
        let seen = Arc::clone(&seen);
        middleware::from_fn(move |request: Request, next: Next| {
            let seen = Arc::clone(&seen);
            async move {
                seen.lock().unwrap().push((
                    request.uri().path().to_owned(),
                    request.extensions().get::<Authenticated>().cloned(),
                ));
                next.run(request).await
            }
        })
    };
    let app = with_pipeline(app_routes(state.clone()).unwrap().layer(recorder), &state);

    let credentials = json!({"username": "alice", "password": PASSWORD});
    let (status, body) = call(&app, post_json("/auth/register", &credentials)).await;
    // `--registration uniform`, the default: the same 202 for a free and a taken name.
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = call(&app, post_json("/auth/login", &credentials)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = call(&app, get_me(&format!("Bearer {token}"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let forged = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJtYWxsb3J5In0.c2lnbmF0dXJl";
    let (status, body) = call(&app, get_me(&format!("Bearer {forged}"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["type"], "https://finsec.dev/problems/unauthorized");

    let seen = seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|(path, _)| path.as_str()).collect();
    assert_eq!(paths, ["/auth/register", "/auth/login", "/me", "/me"]);
    assert_eq!(seen[0].1, Some(Authenticated::Anonymous));
    match &seen[2].1 {
        Some(Authenticated::Principal(principal)) => {
            assert_eq!(principal.username, "alice");
            assert!(principal.is_bearer());
        }
        other => panic!("expected alice's principal, got {other:?}"),
    }
    match &seen[3].1 {
        Some(Authenticated::Refused { reason }) => {
            assert!(!reason.is_empty());
            assert!(!reason.contains(forged), "{reason}");
            assert!(!reason.contains("c2lnbmF0dXJl"), "{reason}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The principal's Debug shows no credential either.
    assert!(!format!("{:?}", seen[2].1).contains(&token));
    state.storage().close().await;
}
