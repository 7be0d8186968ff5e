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
            assert_eq!(
                body["type"], "https://finsec.dev/problems/not-found",
                "{what}"
            );
            assert_eq!(body["status"], 404, "{what}");
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

/// Asserts `response` is a problem of `kind` (the last segment of its `type`) with `status`,
/// and returns its body.
async fn assert_problem(
    response: reqwest::Response,
    status: StatusCode,
    kind: &str,
    what: &str,
) -> serde_json::Value {
    assert_eq!(response.status(), status, "{what}");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    assert_security_headers(what, response.headers());
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["type"],
        format!("https://finsec.dev/problems/{kind}"),
        "{what}: {body}"
    );
    assert_eq!(body["status"], status.as_u16(), "{what}: {body}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{what}: {body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{what}: {body}"
    );
    body
}

#[tokio::test]
async fn every_kind_of_malformed_request_gets_a_problem() {
    let data = DataDir::new();
    // `api` at 1 request a minute per principal, so the rate-limited case is quick to reach.
    let limits = data.path().with_file_name("limits.toml");
    std::fs::write(
        &limits,
        "[[api]]\nper = \"key\"\nlimit = 1\nperiod = \"1m\"\n\
         [[global]]\nper = \"ip\"\nlimit = 100000\nperiod = \"1s\"\n\
         [[auth]]\nper = \"ip\"\nlimit = 100000\nperiod = \"1s\"\n",
    )
    .unwrap();
    let server = Launch::new()
        .args(["--rate-limits", limits.to_str().unwrap()])
        .start(&data);
    let client = server.client();
    let credentials =
        serde_json::json!({"username": "alice", "password": "correct horse battery staple 42"});
    let registered = client
        .post(server.url("/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let login: serde_json::Value = client
        .post(server.url("/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = format!("Bearer {}", login["access_token"].as_str().unwrap());

    let bad_json = client
        .post(server.url("/auth/login"))
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    assert_problem(bad_json, StatusCode::BAD_REQUEST, "bad-request", "bad JSON").await;

    let wrong_type = client
        .post(server.url("/auth/register"))
        .header("content-type", "text/plain")
        .body(credentials.to_string())
        .send()
        .await
        .unwrap();
    assert_problem(
        wrong_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "wrong content type",
    )
    .await;

    let missing_field = client
        .post(server.url("/auth/login"))
        .json(&serde_json::json!({"username": "alice"}))
        .send()
        .await
        .unwrap();
    assert_problem(
        missing_field,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "missing field",
    )
    .await;

    let unknown = client
        .get(server.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_problem(unknown, StatusCode::NOT_FOUND, "not-found", "unknown route").await;

    let wrong_method = client.delete(server.url("/health")).send().await.unwrap();
    assert!(
        wrong_method.headers().contains_key("allow"),
        "{:?}",
        wrong_method.headers()
    );
    assert_problem(
        wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "wrong method",
    )
    .await;

    let forged = client
        .get(server.url("/me"))
        .header("authorization", "Bearer eyJ.forged.token")
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.headers()["www-authenticate"],
        "Bearer realm=\"finsec\", error=\"invalid_token\""
    );
    assert_problem(
        forged,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "forged token",
    )
    .await;

    // alice's first API call: a bad path id.
    let bad_id = client
        .get(server.url("/orders/not-a-uuid"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_problem(
        bad_id,
        StatusCode::BAD_REQUEST,
        "bad-request",
        "bad path id",
    )
    .await;

    // alice's second API call in the minute.
    let limited = client
        .get(server.url("/me"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    let retry: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = assert_problem(
        limited,
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "rate limited",
    )
    .await;
    assert_eq!(body["retry_after"], retry, "{body}");

    // A body above the limit is answered 413 before it is read, so a client still sending
    // it may see its connection closed mid-write: that case is sent as raw bytes in
    // `hostile::an_oversized_body_is_refused_before_it_is_sent`.
}

#[tokio::test]
async fn openapi_says_every_error_is_a_problem() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let doc = server.get_json("/openapi.json", 200).await;
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for required in ["429", "500", "503"] {
                assert!(
                    responses.contains_key(required),
                    "{method} {path}: no {required}"
                );
            }
            if operation.get("requestBody").is_some() {
                for required in ["400", "413", "415", "422"] {
                    assert!(
                        responses.contains_key(required),
                        "{method} {path}: no {required}"
                    );
                }
            }
            if operation.get("security").is_some() {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
            }
            for (status, response) in responses {
                if status.parse::<u16>().unwrap() < 400 {
                    continue;
                }
                let content = response["content"].as_object().unwrap();
                assert_eq!(
                    content.keys().collect::<Vec<_>>(),
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem",
                    "{method} {path} {status}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} error responses");
    let orders = &doc["paths"]["/orders/{id}"]["get"]["responses"];
    for status in ["400", "401", "403", "404"] {
        assert!(orders[status].is_object(), "GET /orders/{{id}} {status}");
    }
}
