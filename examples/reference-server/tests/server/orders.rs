//! Order entry over HTTP against the real binary: users registered and logged in through
//! `/auth`, roles granted with the `roles` subcommand (while the server runs), orders
//! placed, read and approved; the policy file's life cycle; the OpenAPI document.
#![cfg(test)]

use std::fs;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{DataDir, Launch, Server};

pub(crate) const PASSWORD: &str = "order entry passphrase 5c2e91";

/// A logged-in user: id and access token.
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) token: String,
}

pub(crate) async fn register_and_login(server: &Server, name: &str) -> User {
    let credentials = json!({ "username": name, "password": PASSWORD });
    let response = server
        .client()
        .post(server.url("/auth/register"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "register {name}");
    let registered: Value = response.json().await.unwrap();
    let response = server
        .client()
        .post(server.url("/auth/login"))
        .json(&credentials)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "login {name}");
    let tokens: Value = response.json().await.unwrap();
    User {
        id: registered["id"].as_str().unwrap().to_owned(),
        token: tokens["access_token"].as_str().unwrap().to_owned(),
    }
}

/// Sends `method path` with `token` and an optional JSON body; returns status and JSON.
pub(crate) async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    auth: (&str, &str),
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .client()
        .request(method, server.url(path))
        .header(auth.0, auth.1);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

pub(crate) fn bearer(user: &User) -> (&'static str, String) {
    ("authorization", format!("Bearer {}", user.token))
}

pub(crate) async fn post(
    server: &Server,
    user: &User,
    path: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let (name, value) = bearer(user);
    call(
        server,
        reqwest::Method::POST,
        path,
        (name, &value),
        Some(body),
    )
    .await
}

pub(crate) async fn get(server: &Server, user: &User, path: &str) -> (StatusCode, Value) {
    let (name, value) = bearer(user);
    call(server, reqwest::Method::GET, path, (name, &value), None).await
}

fn limit(quantity: &str, price: &str) -> Value {
    json!({
        "symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": quantity,
        "limit_price": price, "account_id": "ACC-1",
    })
}

pub(crate) fn grant(launch: &Launch, data: &DataDir, user: &str, role: &str) {
    let out = launch.roles(data, &["grant", user, role]).success();
    assert_eq!(out.trim(), format!("granted {role} to {user}"));
}

/// Entitles `user` to trading account `account` with the `accounts` subcommand.
pub(crate) fn entitle(launch: &Launch, data: &DataDir, user: &str, account: &str) {
    let out = launch.accounts(data, &["grant", user, account]).success();
    assert_eq!(out.trim(), format!("entitled {user} to {account}"));
}

/// Asserts `body` is the 403 problem for a denial with `reason`.
fn assert_forbidden(body: &Value, reason: &str) {
    assert_eq!(
        body["type"], "https://finsec.dev/problems/forbidden",
        "{body}"
    );
    assert_eq!(body["status"], 403, "{body}");
    assert_eq!(body["reason"], reason, "{body}");
}

/// `(path, code)` of every error in a 400/415/422 body.
fn error_codes(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|e| {
            assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
            (
                e["path"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn order_entry_over_http() {
    let data = DataDir::new();
    let launch = Launch::new();
    let server = launch.start(&data);
    let alice = register_and_login(&server, "alice").await;
    let bob = register_and_login(&server, "bob").await;
    let vera = register_and_login(&server, "vera").await;
    let root = register_and_login(&server, "root").await;

    // New users are viewers; a viewer may not trade.
    let listed = launch.roles(&data, &["list", "vera"]).success();
    assert_eq!(listed.trim(), "viewer");
    let (status, body) = post(&server, &vera, "/orders", &limit("1", "1.00")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_forbidden(&body, "no_rule_matched");

    // Grants made while the server runs apply to the next request.
    grant(&launch, &data, "alice", "trader");
    grant(&launch, &data, "bob", "trader");
    grant(&launch, &data, "root", "admin");
    // The policy says who may trade, the entitlements on which accounts: a trader with no
    // account places nothing.
    let (status, body) = post(&server, &alice, "/orders", &limit("100", "187.25")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_forbidden(&body, "account_not_entitled");
    entitle(&launch, &data, "alice", "ACC-1");
    entitle(&launch, &data, "bob", "ACC-1");
    let mut elsewhere = limit("1", "1.00");
    elsewhere["account_id"] = json!("ACC-2");
    let (status, body) = post(&server, &alice, "/orders", &elsewhere).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_forbidden(&body, "account_not_entitled");
    let (status, body) = post(&server, &alice, "/orders", &limit("100", "187.25")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "accepted");
    assert_eq!(body["owner"], alice.id.as_str());
    assert_eq!(body["symbol"], "AAPL");
    assert_eq!(body["quantity"], "100");
    assert_eq!(body["limit_price"], "187.25");
    let small_id = body["id"].as_str().unwrap().to_owned();

    // Every field error at once.
    let bad = json!({
        "symbol": "aapl$", "side": "hold", "order_type": "limit", "quantity": "-5",
        "limit_price": "10.005", "account_id": "ACC-1",
    });
    let (status, body) = post(&server, &alice, "/orders", &bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let codes = error_codes(&body);
    let expected: Vec<(String, String)> = [
        ("symbol", "lowercase"),
        ("side", "unknown_side"),
        ("quantity", "not_positive"),
        ("limit_price", "tick_size"),
    ]
    .iter()
    .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(codes, expected, "{body}");
    // Wrong JSON types and unknown fields are field errors too; text that is not JSON is
    // a 400; a body not declared as JSON is a 415.
    let (status, body) = post(
        &server,
        &alice,
        "/orders",
        &json!({"symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": 5,
                "limit_price": "1.00", "account_id": "A", "price": "1"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        error_codes(&body),
        [
            ("quantity".to_owned(), "type".to_owned()),
            ("price".to_owned(), "unknown_field".to_owned())
        ]
    );
    let response = server
        .client()
        .post(server.url("/orders"))
        .header("authorization", format!("Bearer {}", alice.token))
        .header("content-type", "application/json")
        .body("{\"symbol\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        error_codes(&body),
        [(String::new(), "malformed_json".to_owned())]
    );
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{body}"
    );
    let response = server
        .client()
        .post(server.url("/orders"))
        .header("authorization", format!("Bearer {}", alice.token))
        .body(limit("1", "1.00").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let mut huge = limit("1", "1.00");
    huge["notes"] = json!("x".repeat(70 * 1024));
    let (status, body) = post(&server, &alice, "/orders", &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(
        error_codes(&body),
        [(String::new(), "too_large".to_owned())]
    );

    // Notes are sanitised before they are stored.
    let mut with_notes = limit("5", "10.00");
    with_notes["notes"] = json!(
        "<p onclick=\"steal()\">Hedge<script>alert(1)</script><img src=x onerror=alert(2)></p>"
    );
    let (status, body) = post(&server, &alice, "/orders", &with_notes).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["notes"], "<p>Hedge</p>");
    let notes_id = body["id"].as_str().unwrap().to_owned();
    let (status, body) = get(&server, &alice, &format!("/orders/{notes_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["notes"], "<p>Hedge</p>");

    // Someone else's order does not exist for bob; admin reads it.
    let (status, body) = get(&server, &bob, &format!("/orders/{small_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, unknown) = get(
        &server,
        &bob,
        "/orders/019abcde-0000-7000-8000-000000000000",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, unknown);
    let (status, body) = get(&server, &root, &format!("/orders/{small_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id"], small_id.as_str());
    let (status, body) = get(&server, &alice, "/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 2, "{body}");
    let (status, body) = get(&server, &bob, "/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!([]));

    // A large order waits for a second trader.
    let (status, body) = post(&server, &alice, "/orders", &limit("20000", "100.00")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending_approval");
    assert_eq!(body["approval_id"].as_str().unwrap().len(), 32);
    let large_id = body["id"].as_str().unwrap().to_owned();
    let approve = format!("/orders/{large_id}/approve");
    let (status, body) = post(&server, &alice, &approve, &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_forbidden(&body, "self_approval");
    let (status, body) = post(&server, &vera, &approve, &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Admin may approve by the policy, and read every account, but approves only on an
    // account it is entitled to.
    let (status, body) = post(&server, &root, &approve, &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_forbidden(&body, "account_not_entitled");
    let (status, body) = post(&server, &bob, &approve, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "accepted");
    assert_eq!(
        (body["approvals"].as_u64(), body["quorum"].as_u64()),
        (Some(1), Some(1))
    );
    let (status, body) = post(&server, &bob, &approve, &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "https://finsec.dev/problems/conflict");
    assert_eq!(body["code"], "not_pending");
    let (_, body) = get(&server, &alice, &format!("/orders/{large_id}")).await;
    assert_eq!(body["status"], "accepted");

    // An API key scoped to orders:read cannot trade, but reads.
    let (status, key) = post(
        &server,
        &alice,
        "/api-keys",
        &json!({"name": "reader", "scopes": ["orders:read"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &server,
        reqwest::Method::POST,
        "/orders",
        ("x-api-key", &key),
        Some(&limit("1", "1.00")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_forbidden(&body, "api_key_scope");
    let (status, body) = call(
        &server,
        reqwest::Method::GET,
        &format!("/orders/{small_id}"),
        ("x-api-key", &key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // No credential: 401 before anything else.
    let response = server
        .client()
        .post(server.url("/orders"))
        .json(&limit("1", "1.00"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A revoked entitlement applies at the next request: alice no longer sees or trades on
    // the account (with her session or her key); admin still reads it.
    let out = launch
        .accounts(&data, &["revoke", "alice", "ACC-1"])
        .success();
    assert_eq!(out.trim(), "revoked alice's entitlement to ACC-1");
    let (status, _) = get(&server, &alice, &format!("/orders/{small_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &server,
        reqwest::Method::GET,
        &format!("/orders/{small_id}"),
        ("x-api-key", &key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = get(&server, &alice, "/orders").await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    let (status, body) = post(&server, &alice, "/orders", &limit("1", "1.00")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_forbidden(&body, "account_not_entitled");
    let (status, _) = get(&server, &root, &format!("/orders/{small_id}")).await;
    assert_eq!(status, StatusCode::OK);
    entitle(&launch, &data, "alice", "ACC-1");
    let (status, body) = get(&server, &alice, "/orders").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 3, "{body}");

    // Revoking a role applies at once too.
    let out = launch
        .roles(&data, &["revoke", "alice", "trader"])
        .success();
    assert_eq!(out.trim(), "revoked trader from alice");
    let (status, _) = post(&server, &alice, "/orders", &limit("1", "1.00")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    // Decisions are logged with their explanation; credentials never are.
    assert!(logs.contains("authorization decision"), "{logs}");
    assert!(
        logs.contains("denied: no rule matched (default deny)"),
        "{logs}"
    );
    assert!(logs.contains("allowed by rule 0 of role"), "{logs}");
    for secret in [&alice.token, &bob.token, &key, &PASSWORD.to_owned()] {
        assert!(
            !logs.contains(secret.as_str()),
            "a credential is in the logs"
        );
    }
}

#[tokio::test]
async fn roles_subcommand_checks_users_and_the_policy() {
    let data = DataDir::new();
    let launch = Launch::new();

    // Before the first start there is no policy to check against.
    let early = launch.roles(&data, &["list", "alice"]);
    assert!(!early.status.success(), "{early:#?}");
    assert!(early.stderr.contains("no rbac policy at"), "{early:#?}");

    let server = launch.start(&data);
    register_and_login(&server, "alice").await;
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");

    let refused = launch.roles(&data, &["grant", "alice", "superuser"]);
    assert!(!refused.status.success(), "{refused:#?}");
    assert!(
        refused
            .stderr
            .contains("role superuser is not defined in the rbac policy"),
        "{refused:#?}"
    );
    let invalid = launch.roles(&data, &["grant", "alice", "Not A Role"]);
    assert!(!invalid.status.success(), "{invalid:#?}");
    let nobody = launch.roles(&data, &["grant", "nobody", "trader"]);
    assert!(!nobody.status.success(), "{nobody:#?}");
    assert!(
        nobody.stderr.contains("no user named \"nobody\""),
        "{nobody:#?}"
    );

    grant(&launch, &data, "alice", "trader");
    // Usernames are matched case-insensitively, as at login.
    let again = launch.roles(&data, &["grant", "ALICE", "trader"]).success();
    assert_eq!(again.trim(), "ALICE already has trader");
    let listed = launch.roles(&data, &["list", "alice"]).success();
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["trader", "viewer"]);
    launch
        .roles(&data, &["revoke", "alice", "viewer"])
        .success();
    let listed = launch.roles(&data, &["list", "alice"]).success();
    assert_eq!(listed.trim(), "trader");
    let absent = launch
        .roles(&data, &["revoke", "alice", "viewer"])
        .success();
    assert_eq!(absent.trim(), "alice does not have viewer");

    // A role the operator later removes from the policy is listed as denying everything.
    let policy = data.path().join("rbac.toml");
    let text = fs::read_to_string(&policy).unwrap();
    fs::write(&policy, text.replace("[roles.trader]", "[roles.dealer]")).unwrap();
    assert!(
        !fs::read_to_string(&policy)
            .unwrap()
            .contains("roles.trader")
    );
    let listed = launch.roles(&data, &["list", "alice"]).success();
    assert_eq!(
        listed.trim(),
        "trader (not defined in the policy: denies everything)"
    );
}

#[tokio::test]
async fn the_policy_file_is_generated_once_and_a_bad_one_stops_start_up() {
    let data = DataDir::new();
    let launch = Launch::new();
    let (status, _) = launch.start(&data).terminate();
    assert!(status.success());
    let path = data.path().join("rbac.toml");
    let generated = fs::read_to_string(&path).unwrap();
    assert!(generated.contains("orders:execute_large"), "{generated}");
    assert!(
        generated.contains("approver = \"orders:approve\""),
        "{generated}"
    );
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // A malformed permission: the loader's message names the role, rule and field.
    fs::write(
        &path,
        "[roles.viewer]\nrules = [{ effect = \"allow\", permissions = [\"orders*\"] }]\n",
    )
    .unwrap();
    let failure = launch.try_start(&data).unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(
        failure
            .output
            .contains("role \"viewer\" rule 0 field `permissions[0]`"),
        "{failure}"
    );
    assert!(failure.output.contains("rbac.toml"), "{failure}");
    // The file is not replaced by the preset.
    assert!(fs::read_to_string(&path).unwrap().contains("orders*"));

    // A syntax error names the line.
    fs::write(&path, "[roles.viewer\n").unwrap();
    let failure = launch.try_start(&data).unwrap_err();
    assert!(
        failure.output.contains("policy toml does not parse"),
        "{failure}"
    );
    assert!(failure.output.contains("line 1"), "{failure}");

    // A default role the policy lacks.
    fs::write(&path, "[roles.trader]\nrules = []\n").unwrap();
    let failure = launch.try_start(&data).unwrap_err();
    assert!(
        failure
            .output
            .contains("--default-role viewer is not defined"),
        "{failure}"
    );
    let started = Launch::new()
        .args(["--default-role", "trader"])
        .start(&data);
    let (status, _) = started.terminate();
    assert!(status.success());

    // A missing --rbac-policy file, and one others may write.
    let elsewhere = data.path().join("policies").join("site.yaml");
    let failure = Launch::new()
        .args(["--rbac-policy", elsewhere.to_str().unwrap()])
        .try_start(&data)
        .unwrap_err();
    assert!(failure.output.contains("does not exist"), "{failure}");
    fs::create_dir_all(elsewhere.parent().unwrap()).unwrap();
    fs::write(&elsewhere, "roles:\n  viewer:\n    rules: []\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o666)).unwrap();
    }
    let failure = Launch::new()
        .args(["--rbac-policy", elsewhere.to_str().unwrap()])
        .try_start(&data)
        .unwrap_err();
    assert!(failure.output.contains("chmod go-w"), "{failure}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&elsewhere, fs::Permissions::from_mode(0o644)).unwrap();
    }
    let started = Launch::new()
        .args(["--rbac-policy", elsewhere.to_str().unwrap()])
        .start(&data);
    let (status, logs) = started.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("loaded the rbac policy"), "{logs}");
}

#[tokio::test]
async fn openapi_lists_the_order_routes() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let doc = server.get_json("/openapi.json", 200).await;
    let paths = &doc["paths"];
    for (path, method) in [
        ("/orders", "post"),
        ("/orders", "get"),
        ("/orders/{id}", "get"),
        ("/orders/{id}/approve", "post"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
        assert_eq!(paths[path][method]["tags"][0], "orders");
    }
    let post = &paths["/orders"]["post"];
    for code in ["201", "202", "400", "401", "403", "413", "415", "422"] {
        assert!(post["responses"][code].is_object(), "POST /orders {code}");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "Order",
        "NewOrder",
        "OrderStatus",
        "Problem",
        "FieldError",
        "Approved",
    ] {
        assert!(schemas[schema].is_object(), "schema {schema} missing");
    }
    let statuses = &schemas["OrderStatus"]["enum"];
    assert_eq!(
        statuses,
        &json!(["accepted", "pending_approval", "rejected", "expired"])
    );
}

/// The PostgreSQL URL of the test server, bound to `db`'s schema.
fn pg_url(db: &finsec_testkit::PgTestDb) -> String {
    let base = finsec_testkit::postgres_url();
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}options[search_path]={}", db.schema())
}

#[tokio::test]
async fn maker_checker_on_postgres() {
    let db = finsec_testkit::postgres().await;
    let data = DataDir::new();
    let url = pg_url(&db);
    let launch = Launch::new().args(["--postgres-url", url.as_str()]);
    let server = launch.start(&data);
    let alice = register_and_login(&server, "alice").await;
    let bob = register_and_login(&server, "bob").await;
    grant(&launch, &data, "alice", "trader");
    grant(&launch, &data, "bob", "trader");
    entitle(&launch, &data, "alice", "ACC-1");
    entitle(&launch, &data, "bob", "ACC-1");

    let (status, body) = post(&server, &alice, "/orders", &limit("20000", "100.00")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let approve = format!("/orders/{id}/approve");
    let (status, _) = post(&server, &alice, &approve, &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = post(&server, &bob, &approve, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["order"]["status"], "accepted");
    let (status, _) = get(&server, &bob, &format!("/orders/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The rows are in the test schema, not in SQLite.
    let stored: Vec<(String, String)> =
        sqlx::query_as("SELECT id::text, status FROM server_orders")
            .fetch_all(db.pool())
            .await
            .unwrap();
    assert_eq!(stored, [(id, "accepted".to_owned())]);
    assert!(!data.path().join("finsec.db").exists());
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    db.cleanup().await;
}

/// Posts an order with an `Idempotency-Key`; returns the status, whether the answer was a
/// replay, and the body.
async fn post_keyed(
    server: &Server,
    user: &User,
    key: &str,
    body: &Value,
) -> (StatusCode, bool, Value) {
    let response = server
        .client()
        .post(server.url("/orders"))
        .header("authorization", format!("Bearer {}", user.token))
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let replayed = match response.headers().get("idempotent-replayed") {
        None => false,
        Some(v) => {
            assert_eq!(v, "true");
            true
        }
    };
    (status, replayed, response.json().await.unwrap())
}

/// A retried `POST /orders` with the same `Idempotency-Key` places one order, whatever
/// the timing; the key is per user and bound to its first body.
async fn idempotent_order_entry(server: &Server, launch: &Launch, data: &DataDir) {
    let tia = register_and_login(server, "tia").await;
    let uma = register_and_login(server, "uma").await;
    grant(launch, data, "tia", "trader");
    grant(launch, data, "uma", "trader");
    entitle(launch, data, "tia", "ACC-1");
    entitle(launch, data, "uma", "ACC-1");
    let small = limit("10", "101.50");

    let (status, replayed, first) = post_keyed(server, &tia, "order-0001", &small).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    let (status, replayed, again) = post_keyed(server, &tia, "order-0001", &small).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true), "{again}");
    assert_eq!(again, first);
    // The key quoted as a structured-field string is the same key.
    let (status, replayed, quoted) = post_keyed(server, &tia, "\"order-0001\"", &small).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(quoted["id"], first["id"]);

    // The same key with another body is refused and places nothing.
    let (status, _, body) = post_keyed(server, &tia, "order-0001", &limit("11", "101.50")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        error_codes(&body),
        [(
            "Idempotency-Key".to_owned(),
            "idempotency_key_reused".to_owned()
        )]
    );
    // Another user's key of the same text is theirs.
    let (status, replayed, umas) = post_keyed(server, &uma, "order-0001", &small).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false));
    assert_ne!(umas["id"], first["id"]);

    // Malformed keys are a 400 before anything is placed.
    for bad in ["", "has space", &"k".repeat(256), "\"\""] {
        let (status, _, body) = post_keyed(server, &tia, bad, &small).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad:?}: {body}");
        assert_eq!(
            error_codes(&body),
            [("Idempotency-Key".to_owned(), "idempotency_key".to_owned())]
        );
    }

    // Eight concurrent first tries with one key: one order, every answer names it.
    let before = get(server, &tia, "/orders")
        .await
        .1
        .as_array()
        .unwrap()
        .len();
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let request = server
            .client()
            .post(server.url("/orders"))
            .header("authorization", format!("Bearer {}", tia.token))
            .header("idempotency-key", "order-0003")
            .json(&small);
        racers.spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let replayed = response.headers().contains_key("idempotent-replayed");
            (status, replayed, response.json::<Value>().await.unwrap())
        });
    }
    let answers = racers.join_all().await;
    let ids: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|(status, _, body)| {
            assert_eq!(*status, StatusCode::CREATED, "{body}");
            body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1
    );
    let after = get(server, &tia, "/orders")
        .await
        .1
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, before + 1);
    // Without a key, a retry is a new order, as before.
    let (status, one) = post(server, &tia, "/orders", &small).await;
    let (_, two) = post(server, &tia, "/orders", &small).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_ne!(one["id"], two["id"]);

    // A pending order (last: it takes tia's day above the approval threshold, so her
    // later orders would wait too): its retry answers 202 with the order as it is now, also after
    // the approval.
    let large = limit("20000", "100.00");
    let (status, replayed, pending) = post_keyed(server, &tia, "order-0002", &large).await;
    assert_eq!(
        (status, replayed),
        (StatusCode::ACCEPTED, false),
        "{pending}"
    );
    let id = pending["id"].as_str().unwrap();
    let (status, body) = post(server, &uma, &format!("/orders/{id}/approve"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, replayed, after) = post_keyed(server, &tia, "order-0002", &large).await;
    assert_eq!((status, replayed), (StatusCode::ACCEPTED, true));
    assert_eq!(after["id"], pending["id"]);
    assert_eq!(after["status"], "accepted");

    // A replay is a read: once the account is taken away it answers 403, not the order.
    let out = launch.accounts(data, &["revoke", "tia", "ACC-1"]).success();
    assert_eq!(out.trim(), "revoked tia's entitlement to ACC-1");
    let (status, replayed, body) = post_keyed(server, &tia, "order-0001", &small).await;
    assert_eq!((status, replayed), (StatusCode::FORBIDDEN, false), "{body}");
    assert_forbidden(&body, "account_not_entitled");
}

#[tokio::test]
async fn idempotent_order_entry_on_sqlite() {
    let data = DataDir::new();
    let launch = Launch::new();
    let server = launch.start(&data);
    idempotent_order_entry(&server, &launch, &data).await;
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
}

#[tokio::test]
async fn idempotent_order_entry_on_postgres() {
    let db = finsec_testkit::postgres().await;
    let data = DataDir::new();
    let url = pg_url(&db);
    let launch = Launch::new().args(["--postgres-url", url.as_str()]);
    let server = launch.start(&data);
    idempotent_order_entry(&server, &launch, &data).await;
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    db.cleanup().await;
}

/// An IP condition sees the client behind a trusted proxy, whichever way the address is
/// written: a desk fenced off 10.9.0.0/16 cannot trade from there, also when the proxy
/// forwards the address as IPv4-mapped IPv6, and can from elsewhere.
#[tokio::test]
async fn ip_conditions_see_the_client_behind_a_trusted_proxy() {
    let data = DataDir::new();
    let launch = Launch::new().args(["--trusted-proxy", "127.0.0.1/32"]);
    let (status, _) = launch.start(&data).terminate();
    assert!(status.success());
    let path = data.path().join("rbac.toml");
    let mut policy = fs::read_to_string(&path).unwrap();
    policy.push_str(
        "\n[roles.fenced]\ninherits = [\"trader\"]\nrules = [\n    { effect = \"deny\", \
         permissions = [\"trade:*\"], conditions = [{ kind = \"ip\", networks = \
         [\"10.9.0.0/16\"] }] },\n]\n",
    );
    fs::write(&path, policy).unwrap();
    let server = launch.start(&data);
    let finn = register_and_login(&server, "finn").await;
    grant(&launch, &data, "finn", "fenced");
    entitle(&launch, &data, "finn", "ACC-1");
    let from = |forwarded: Option<&'static str>| {
        let mut request = server
            .client()
            .post(server.url("/orders"))
            .header("authorization", format!("Bearer {}", finn.token))
            .json(&limit("10", "101.50"));
        if let Some(address) = forwarded {
            request = request.header("x-forwarded-for", address);
        }
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    for fenced in [
        "10.9.1.1",
        "::ffff:10.9.1.1",
        "::ffff:a09:101",
        "203.0.113.5, 10.9.200.7",
    ] {
        let (status, body) = from(Some(fenced)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{fenced}: {body}");
        assert_forbidden(&body, "deny_rule");
    }
    for open in [
        None,
        Some("192.0.2.1"),
        Some("::ffff:192.0.2.1"),
        Some("10.9.1.1, 192.0.2.1"),
    ] {
        let (status, body) = from(open).await;
        assert_eq!(status, StatusCode::CREATED, "{open:?}: {body}");
    }
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
}

async fn send(
    server: &Server,
    method: reqwest::Method,
    user: &User,
    path: &str,
) -> (StatusCode, Value) {
    let (name, value) = bearer(user);
    call(server, method, path, (name, &value), None).await
}

/// The admin API grants and revokes entitlements (admin role, recent login, session only);
/// users see their own; the `accounts` subcommand does the same from the command line.
#[tokio::test]
async fn account_entitlements_over_http_and_the_command_line() {
    use reqwest::Method;
    let data = DataDir::new();
    let launch = Launch::new();
    let server = launch.start(&data);
    let alice = register_and_login(&server, "alice").await;
    let root = register_and_login(&server, "root").await;
    grant(&launch, &data, "alice", "trader");
    grant(&launch, &data, "root", "admin");
    let grant_path = |account: &str| format!("/admin/users/{}/accounts/{account}", alice.id);

    let (status, body) = get(&server, &alice, "/accounts").await;
    assert_eq!((status, body), (StatusCode::OK, json!([])));
    // A trader may not administer accounts, not even their own.
    for method in [Method::PUT, Method::DELETE] {
        let (status, body) = send(&server, method, &alice, &grant_path("ACC-7")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    let (status, _) = get(
        &server,
        &alice,
        &format!("/admin/users/{}/accounts", alice.id),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, body) = send(&server, Method::PUT, &root, &grant_path("ACC-7")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["account_id"], "ACC-7");
    assert_eq!(body["granted_by"], root.id.as_str());
    let granted_at = body["granted_at"].clone();
    let (status, again) = send(&server, Method::PUT, &root, &grant_path("ACC-7")).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        again["granted_at"], granted_at,
        "a second grant changes nothing"
    );
    let (status, mine) = get(&server, &alice, "/accounts").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine, json!([body]));
    let (status, listed) = get(
        &server,
        &root,
        &format!("/admin/users/{}/accounts", alice.id),
    )
    .await;
    assert_eq!((status, listed), (StatusCode::OK, json!([body])));
    let mut order = limit("1", "1.00");
    order["account_id"] = json!("ACC-7");
    let (status, placed) = post(&server, &alice, "/orders", &order).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");

    // Malformed ids are 400; an unknown user is 404.
    for bad in [
        "/admin/users/not-a-uuid/accounts/ACC-7".to_owned(),
        grant_path("ACC%207"),
        grant_path(&"A".repeat(65)),
    ] {
        let (status, body) = send(&server, Method::PUT, &root, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
    let nobody = "/admin/users/019abcde-0000-7000-8000-000000000000/accounts/ACC-7";
    let (status, body) = send(&server, Method::PUT, &root, nobody).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _) = get(
        &server,
        &root,
        "/admin/users/019abcde-0000-7000-8000-000000000000/accounts",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Granting needs a recent login: a refreshed token is asked to step up, and an API
    // key (even with every scope) is refused.
    let response = server
        .client()
        .post(server.url("/auth/login"))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let tokens: Value = response.json().await.unwrap();
    let response = server
        .client()
        .post(server.url("/auth/refresh"))
        .json(&json!({"refresh_token": tokens["refresh_token"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed: Value = response.json().await.unwrap();
    let stale = User {
        id: root.id.clone(),
        token: refreshed["access_token"].as_str().unwrap().to_owned(),
    };
    let (status, body) = send(&server, Method::PUT, &stale, &grant_path("ACC-8")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, key) = post(
        &server,
        &root,
        "/api-keys",
        &json!({"name": "everything", "scopes": ["*"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &server,
        Method::PUT,
        &grant_path("ACC-8"),
        ("x-api-key", &key),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = get(&server, &alice, "/accounts").await;
    assert_eq!(status, StatusCode::OK);
    let (_, mine) = get(&server, &alice, "/accounts").await;
    assert_eq!(
        mine.as_array().unwrap().len(),
        1,
        "nothing was granted: {mine}"
    );

    // The command line sees the same entitlements.
    let out = launch.accounts(&data, &["list", "alice"]).success();
    assert_eq!(out.trim(), "ACC-7");
    let out = launch
        .accounts(&data, &["grant", "alice", "ACC-1"])
        .success();
    assert_eq!(out.trim(), "entitled alice to ACC-1");
    let out = launch
        .accounts(&data, &["grant", "ALICE", "ACC-1"])
        .success();
    assert_eq!(out.trim(), "ALICE is entitled to ACC-1 already");
    let (_, mine) = get(&server, &alice, "/accounts").await;
    assert_eq!(mine[0]["account_id"], "ACC-1", "{mine}");
    assert!(
        mine[0].get("granted_by").is_none_or(Value::is_null),
        "{mine}"
    );
    let refused = launch.accounts(&data, &["grant", "alice", "ACC 1"]);
    assert!(!refused.status.success());
    let refused = launch.accounts(&data, &["grant", "nobody", "ACC-1"]);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("no user named"),
        "{}",
        refused.stderr
    );

    // Revoking: 204, then 404; the order on the account is no longer alice's to read.
    let (status, _) = send(&server, Method::DELETE, &root, &grant_path("ACC-7")).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&server, Method::DELETE, &root, &grant_path("ACC-7")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let order_id = placed["id"].as_str().unwrap();
    let (status, _) = get(&server, &alice, &format!("/orders/{order_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let out = launch
        .accounts(&data, &["revoke", "alice", "ACC-7"])
        .success();
    assert_eq!(out.trim(), "alice is not entitled to ACC-7");

    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("account entitlement granted"), "{logs}");
    assert!(logs.contains("account entitlement revoked"), "{logs}");
}

/// The four-eyes threshold cannot be dodged: orders are valued at least at the reference
/// price (a prices file), limits far from it are refused, sells and market orders without
/// one wait for approval, and a day's orders count together.
#[tokio::test]
async fn the_approval_threshold_values_orders_at_the_reference_and_counts_the_day() {
    let data = DataDir::new();
    let prices = data.path().join("prices.csv");
    fs::create_dir_all(data.path()).unwrap();
    fs::write(&prices, "# reference prices\nAAPL,100\nBRK.B,410.5\n").unwrap();
    let launch = Launch::new().args([
        "--reference-prices",
        prices.to_str().unwrap(),
        "--price-band-percent",
        "10",
    ]);
    let server = launch.start(&data);
    let alice = register_and_login(&server, "alice").await;
    grant(&launch, &data, "alice", "trader");
    entitle(&launch, &data, "alice", "ACC-1");
    entitle(&launch, &data, "alice", "ACC-2");
    let on = |account: &str, side: &str, symbol: &str, quantity: &str, price: &str| {
        json!({
            "symbol": symbol, "side": side, "order_type": "limit", "quantity": quantity,
            "limit_price": price, "account_id": account,
        })
    };

    // Selling 100,000,000 at 0.01 was "worth" 1,000,000 and passed without approval; with a
    // reference of 100 its limit is far outside the band, and it is refused.
    let dump = on("ACC-1", "sell", "AAPL", "100000000", "0.01");
    let (status, body) = post(&server, &alice, "/orders", &dump).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(
        error_codes(&body),
        [("limit_price".to_owned(), "price_band".to_owned())]
    );
    // Without a reference, the same sell waits for a second person.
    let unpriced = on("ACC-2", "sell", "MSFT", "100000000", "0.01");
    let (status, body) = post(&server, &alice, "/orders", &unpriced).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending_approval");

    // Many orders just under the threshold: the day's total decides.
    let slice = on("ACC-1", "buy", "AAPL", "4000", "100.00");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, body) = post(&server, &alice, "/orders", &slice).await;
        statuses.push((status, body["status"].as_str().unwrap().to_owned()));
    }
    assert_eq!(
        statuses,
        [
            (StatusCode::CREATED, "accepted".to_owned()),
            (StatusCode::CREATED, "accepted".to_owned()),
            (StatusCode::ACCEPTED, "pending_approval".to_owned()),
        ]
    );

    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("reference prices loaded"), "{logs}");

    // A prices file that does not parse stops start-up, naming the line.
    fs::write(&prices, "AAPL,100\nMSFT,-3\n").unwrap();
    let failure = launch.try_start(&data).unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(
        failure
            .output
            .contains("line 2: the price must be a positive decimal"),
        "{failure}"
    );
}

/// Roles over HTTP need four eyes: one admin asks, a second approves (never the asker or
/// the user receiving the role); revoking needs one admin; all of it a session with a
/// recent login.
async fn role_grants_over_http_need_a_second_admin(launch: Launch) {
    use reqwest::Method;
    let data = DataDir::new();
    let server = launch.start(&data);
    let alice = register_and_login(&server, "alice").await;
    let root = register_and_login(&server, "root").await;
    let ada = register_and_login(&server, "ada").await;
    grant(&launch, &data, "root", "admin");
    grant(&launch, &data, "ada", "admin");
    let roles_of = |user: &User| format!("/admin/users/{}/roles", user.id);

    let (status, body) = get(&server, &root, &roles_of(&alice)).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"roles": ["viewer"]}))
    );
    // A viewer may not ask, not even for herself.
    let ask = format!("{}/trader", roles_of(&alice));
    let (status, _) = send(&server, Method::POST, &alice, &ask).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(&server, &alice, &roles_of(&alice)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // root asks: nothing changes until a second admin approves.
    let (status, request) = send(&server, Method::POST, &root, &ask).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{request}");
    assert_eq!(request["status"], "pending");
    assert_eq!(request["requested_by"], root.id.as_str());
    let approve = format!(
        "/admin/role-grants/{}/approve",
        request["id"].as_str().unwrap()
    );
    let (_, body) = get(&server, &root, &roles_of(&alice)).await;
    assert_eq!(body, json!({"roles": ["viewer"]}));
    let (status, body) = send(&server, Method::POST, &root, &approve).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["reason"], "self_approval");
    let (status, _) = send(&server, Method::POST, &alice, &approve).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send(&server, Method::POST, &ada, &approve).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "granted");
    let (_, body) = get(&server, &root, &roles_of(&alice)).await;
    assert_eq!(body, json!({"roles": ["trader", "viewer"]}));
    let (status, _) = send(&server, Method::POST, &ada, &approve).await;
    assert_eq!(status, StatusCode::CONFLICT, "approved once only");
    let (status, _) = send(&server, Method::POST, &root, &ask).await;
    assert_eq!(status, StatusCode::CONFLICT, "she has it already");

    // The user receiving a role cannot approve it either: root asks admin for ada...
    let for_ada = format!("{}/auditor", roles_of(&ada));
    let (_, request) = send(&server, Method::POST, &root, &for_ada).await;
    let approve_ada = format!(
        "/admin/role-grants/{}/approve",
        request["id"].as_str().unwrap()
    );
    let (status, body) = send(&server, Method::POST, &ada, &approve_ada).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["reason"], "self_approval");

    // Unknown roles, users and requests; malformed ids.
    let (status, _) = send(
        &server,
        Method::POST,
        &root,
        &format!("{}/superuser", roles_of(&alice)),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = send(
        &server,
        Method::POST,
        &root,
        &format!("{}/Not%20A%20Role", roles_of(&alice)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(
        &server,
        Method::POST,
        &root,
        "/admin/users/019abcde-0000-7000-8000-000000000000/roles/trader",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(
        &server,
        Method::POST,
        &ada,
        "/admin/role-grants/019abcde-0000-7000-8000-000000000000/approve",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Revoking needs one admin; a second revocation finds nothing.
    let revoke = format!("{}/trader", roles_of(&alice));
    let (status, _) = send(&server, Method::DELETE, &root, &revoke).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = send(&server, Method::DELETE, &root, &revoke).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, body) = get(&server, &root, &roles_of(&alice)).await;
    assert_eq!(body, json!({"roles": ["viewer"]}));

    // An API key, even with every scope, changes no role.
    let (status, key) = post(
        &server,
        &root,
        "/api-keys",
        &json!({"name": "everything", "scopes": ["*"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    let (status, _) = call(&server, Method::POST, &ask, ("x-api-key", &key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("role grant requested"), "{logs}");
    assert!(logs.contains("role granted"), "{logs}");
}

#[tokio::test]
async fn role_grants_over_http_need_a_second_admin_on_sqlite() {
    role_grants_over_http_need_a_second_admin(Launch::new()).await;
}

#[tokio::test]
async fn role_grants_over_http_need_a_second_admin_on_postgres() {
    let db = finsec_testkit::postgres().await;
    let url = pg_url(&db);
    role_grants_over_http_need_a_second_admin(Launch::new().args(["--postgres-url", url.as_str()]))
        .await;
    db.cleanup().await;
}
