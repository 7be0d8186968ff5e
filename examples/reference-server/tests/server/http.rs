//! The HTTP surface: `/health`, `/openapi.json`, the 404 fallback, security headers and
//! request ids, over real HTTP against the real binary.
#![cfg(test)]

use std::collections::{BTreeMap, BTreeSet};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use uuid::Uuid;

use crate::support::{DataDir, Launch};

#[tokio::test]
async fn health_is_json_and_ok() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let health = server.get_json("/health", 200).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"), "{health}");
    assert_eq!(health["storage"]["backend"], "sqlite", "{health}");
    assert_eq!(health["storage"]["ok"], true, "{health}");
    assert_eq!(health["redis"], "absent", "{health}");
    let keyring = health["keyring"].as_array().unwrap();
    assert_eq!(keyring.len(), 2, "{health}");
    assert_eq!(keyring[0]["name"], "pii");
    assert_eq!(keyring[0]["primary_version"], 1);
    assert_eq!(keyring[1]["name"], "server-secrets");
    assert_eq!(keyring[1]["primary_version"], 1);
    // No key material of any shape: each key shows its name and state only.
    for key in keyring {
        let fields: Vec<&str> = key
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            ["name", "primary_version", "rotation_due"],
            "{health}"
        );
    }
    let text = health.to_string().replace("\"server-secrets\"", "\"\"");
    for word in ["\"key\"", "secret", "material"] {
        assert!(!text.contains(word), "{text}");
    }
}

/// `(path, methods)` of an OpenAPI document.
fn operations(doc: &serde_json::Value) -> BTreeMap<String, BTreeSet<String>> {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| METHODS.contains(&k.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let served = server.get_json("/openapi.json", 200).await;

    let version = served["openapi"].as_str().unwrap();
    assert!(version.starts_with("3."), "openapi version {version}");
    assert!(served["info"]["title"].is_string());

    // The router is built from the same `api_router()` as this document, so its paths are
    // exactly the routes served.
    let expected = serde_json::to_value(finsec_reference_server::http::openapi()).unwrap();
    let served_ops = operations(&served);
    assert_eq!(served_ops, operations(&expected));
    assert!(served_ops.len() >= 2, "{served_ops:?}");
    assert_eq!(
        served_ops["/health"],
        BTreeSet::from(["get".to_owned()]),
        "{served_ops:?}"
    );
    assert_eq!(
        served_ops["/openapi.json"],
        BTreeSet::from(["get".to_owned()]),
        "{served_ops:?}"
    );

    // And every documented operation is really served (no 404 / 405).
    for (path, methods) in &served_ops {
        for method in methods {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = server
                .client()
                .request(method.clone(), server.url(path))
                .send()
                .await
                .unwrap();
            assert!(
                !matches!(
                    response.status(),
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                ),
                "{method} {path}: {}",
                response.status()
            );
        }
    }
}

fn assert_security_headers(what: &str, headers: &HeaderMap) {
    let get = |name: &str| -> String {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("{what}: no {name} header in {headers:?}"))
            .to_str()
            .unwrap()
            .to_owned()
    };
    let hsts = get("strict-transport-security");
    assert!(hsts.contains("max-age="), "{what}: {hsts}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    let csp = get("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-eval"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(!get("referrer-policy").is_empty(), "{what}");
    assert!(!get("permissions-policy").is_empty(), "{what}");
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    for (method, path, status) in [
        (Method::GET, "/health", StatusCode::OK),
        (Method::GET, "/openapi.json", StatusCode::OK),
        (Method::GET, "/no/such/path", StatusCode::NOT_FOUND),
        (Method::GET, "/health/", StatusCode::NOT_FOUND),
        (Method::POST, "/health", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let response = server
            .client()
            .request(method.clone(), server.url(path))
            .send()
            .await
            .unwrap();
        let what = format!("{method} {path}");
        assert_eq!(response.status(), status, "{what}");
        assert_security_headers(&what, response.headers());
        if status == StatusCode::NOT_FOUND {
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["error"], "not found", "{what}");
        }
    }
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id in {headers:?}"))
        .to_str()
        .unwrap()
        .to_owned()
}

fn assert_generated(id: &str, sent: &str) {
    assert_ne!(id, sent);
    let uuid = Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id:?} is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 7, "{id}");
}

#[tokio::test]
async fn request_ids_are_echoed_only_when_sane() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let send = |path: &'static str, id: Option<&str>| {
        let mut request = server.client().get(server.url(path));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };

    // A sane id is echoed, on a route and on the fallback.
    for (path, id) in [
        ("/health", "req-123_abc.DEF"),
        ("/nope", "0190b5b4-7c3e-7000-8000-000000000000"),
    ] {
        let response = send(path, Some(id)).await.unwrap();
        assert_eq!(request_id(response.headers()), id, "{path}");
    }

    // Absent: a fresh UUIDv7 each time.
    let a = request_id(send("/health", None).await.unwrap().headers());
    let b = request_id(send("/health", None).await.unwrap().headers());
    assert_generated(&a, "");
    assert_generated(&b, "");
    assert_ne!(a, b);

    // Anything else is replaced.
    let long = "x".repeat(200);
    let garbage: String = (0..200u32)
        .map(|i| char::from(b'!' + u8::try_from(i % 94).unwrap()))
        .collect();
    for bad in [
        long.as_str(),
        garbage.as_str(),
        "<script>alert(1)</script>",
        "a b",
        "../../etc/passwd",
        "id;rm -rf /",
        "\"quoted\"",
        "",
    ] {
        let response = send("/health", Some(bad)).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{bad:?}");
        assert_generated(&request_id(response.headers()), bad);
    }
    // 64 characters is the longest accepted; 65 is replaced.
    let max = "m".repeat(64);
    assert_eq!(
        request_id(send("/health", Some(&max)).await.unwrap().headers()),
        max
    );
    let over = "m".repeat(65);
    assert_generated(
        &request_id(send("/health", Some(&over)).await.unwrap().headers()),
        &over,
    );

    // The logs record the sane id and never the rejected ones.
    let logs = server.output();
    assert!(logs.contains("req-123_abc.DEF"), "{logs}");
    for bad in ["<script>", long.as_str(), "rm -rf"] {
        assert!(!logs.contains(bad), "{bad} in\n{logs}");
    }
}
