//! Authentication over real HTTP against the real binary: registration, login, the TOTP
//! second factor and backup codes, refresh rotation and reuse detection, logout, API keys,
//! the uniform 401, and the same core flow on PostgreSQL + Redis with two instances.
#![cfg(test)]

use base64::Engine as _;
use finsec_auth::mfa::{Totp, TotpParams, TotpSecret};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::backends::server_pg_url;
use crate::support::{DataDir, Launch, Server};

const PASSWORD: &str = "correct horse battery staple 42";

/// A response's status, headers and JSON body (`Null` when empty).
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    auth: Option<(&str, &str)>,
    body: Option<Value>,
) -> Reply {
    let mut request = server.client().request(method, server.url(path));
    if let Some((name, value)) = auth {
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn post(server: &Server, path: &str, bearer: Option<&str>, body: Value) -> Reply {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    send(
        server,
        reqwest::Method::POST,
        path,
        auth.as_deref().map(|a| ("authorization", a)),
        Some(body),
    )
    .await
}

async fn get_with(server: &Server, path: &str, header: Option<(&str, &str)>) -> Reply {
    send(server, reqwest::Method::GET, path, header, None).await
}

async fn me(server: &Server, bearer: &str) -> Reply {
    let value = format!("Bearer {bearer}");
    get_with(server, "/me", Some(("authorization", &value))).await
}

async fn register(server: &Server, username: &str) -> Value {
    let reply = post(
        server,
        "/auth/register",
        None,
        json!({"username": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.body
}

async fn login(server: &Server, username: &str, password: &str) -> Reply {
    post(
        server,
        "/auth/login",
        None,
        json!({"username": username, "password": password}),
    )
    .await
}

/// Logs in (no second factor) and returns the token response.
async fn login_tokens(server: &Server, username: &str) -> Value {
    let reply = login(server, username, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.headers["cache-control"], "no-store");
    reply.body
}

/// Logs in a user with a second factor and returns the `mfa_token`.
async fn login_mfa(server: &Server, username: &str) -> String {
    let reply = login(server, username, PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["mfa_required"], true, "{}", reply.body);
    assert!(reply.body.get("access_token").is_none());
    reply.body["mfa_token"].as_str().unwrap().to_owned()
}

/// Logs in with the password and then `code`; returns the access token.
async fn mfa_access(server: &Server, username: &str, code: &str) -> String {
    let mfa_token = login_mfa(server, username).await;
    let verified = verify(server, &mfa_token, code).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    // A complete login hands this device a remembered-device token.
    let device = verified.body["device_token"].as_str().unwrap();
    assert!(device.starts_with("fsd_"), "{device}");
    verified.body["access_token"].as_str().unwrap().to_owned()
}

async fn verify(server: &Server, mfa_token: &str, code: &str) -> Reply {
    post(
        server,
        "/auth/mfa/verify",
        None,
        json!({"mfa_token": mfa_token, "code": code}),
    )
    .await
}

/// The TOTP of an `otpauth://` URI.
fn totp_of(uri: &str) -> Totp {
    let query = uri.split_once('?').unwrap().1;
    let secret = query
        .split('&')
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap();
    Totp::new(
        TotpSecret::from_base32(secret).unwrap(),
        TotpParams::default(),
    )
}

/// The code for `offset_steps` time steps from now.
fn code(totp: &Totp, offset_steps: i64) -> String {
    let at = OffsetDateTime::now_utc() + time::Duration::seconds(30 * offset_steps);
    totp.code_at(at).unwrap().expose()
}

/// Enrolls and confirms TOTP for the session `access`; returns the TOTP and backup codes.
async fn enable_mfa(server: &Server, access: &str) -> (Totp, Vec<String>, String) {
    let enrolled = post(server, "/mfa/enroll", Some(access), json!({})).await;
    assert_eq!(enrolled.status, StatusCode::OK, "{}", enrolled.body);
    let uri = enrolled.body["otpauth_uri"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    let png = base64::engine::general_purpose::STANDARD
        .decode(enrolled.body["qr_png_base64"].as_str().unwrap())
        .unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    let totp = totp_of(&uri);
    let wrong = post(
        server,
        "/mfa/confirm",
        Some(access),
        json!({"code": "12345678"}),
    )
    .await;
    assert_eq!(
        wrong.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        wrong.body
    );
    let confirmed = post(
        server,
        "/mfa/confirm",
        Some(access),
        json!({"code": code(&totp, 0)}),
    )
    .await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    let backup: Vec<String> = confirmed.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(backup.len(), 10);
    let secret = uri
        .split_once("secret=")
        .unwrap()
        .1
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    (totp, backup, secret)
}

/// Asserts the uniform 401 of protected endpoints.
fn assert_unauthorized(reply: &Reply, presented: bool, what: &str) {
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "{what}: {}",
        reply.body
    );
    assert_eq!(
        reply.body,
        json!({
            "type": "https://finsec.dev/problems/unauthorized",
            "title": "Authentication required",
            "status": 401,
            "detail": "a valid bearer access token or API key is required",
        }),
        "{what}"
    );
    assert_eq!(
        reply.headers["content-type"], "application/problem+json",
        "{what}"
    );
    let expected = if presented {
        "Bearer realm=\"finsec\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"finsec\""
    };
    assert_eq!(reply.headers[WWW_AUTHENTICATE], expected, "{what}");
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn full_flow_on_sqlite() {
    let data = DataDir::new();
    let server = Launch::new().env("RUST_LOG", "debug").start(&data);
    let mut secrets: Vec<String> = vec![PASSWORD.to_owned()];

    // Registration rules.
    let alice = register(&server, "Alice.W").await;
    assert_eq!(alice["username"], "Alice.W");
    let taken = post(
        &server,
        "/auth/register",
        None,
        json!({"username": "alice.w", "password": PASSWORD}),
    )
    .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    let weak = post(
        &server,
        "/auth/register",
        None,
        json!({"username": "bob", "password": "short"}),
    )
    .await;
    assert_eq!(
        weak.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        weak.body
    );
    assert!(
        weak.body["detail"].as_str().unwrap().contains("12"),
        "{}",
        weak.body
    );
    let bad_name = post(
        &server,
        "/auth/register",
        None,
        json!({"username": "a b", "password": PASSWORD}),
    )
    .await;
    assert_eq!(bad_name.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Unknown user and wrong password look the same.
    let unknown = login(&server, "nobody", PASSWORD).await;
    let wrong = login(&server, "alice.w", "wrong password entirely").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(unknown.body, wrong.body);
    assert_eq!(
        unknown.headers[WWW_AUTHENTICATE],
        wrong.headers[WWW_AUTHENTICATE]
    );

    // Login (case-insensitive name) and /me.
    let tokens = login_tokens(&server, "ALICE.W").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    secrets.extend([access.clone(), refresh.clone()]);
    assert!(tokens["expires_in"].as_i64().unwrap() > 800);
    let who = me(&server, &access).await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.body);
    assert_eq!(who.body["id"], alice["id"]);
    assert_eq!(who.body["auth"], "bearer");
    assert_eq!(who.body["mfa_enabled"], false);

    // Refresh rotation and reuse detection.
    let rotated = post(
        &server,
        "/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let refresh2 = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    secrets.push(refresh2.clone());
    let reused = post(
        &server,
        "/auth/refresh",
        None,
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_unauthorized(&reused, true, "reused refresh token");
    let family_gone = post(
        &server,
        "/auth/refresh",
        None,
        json!({"refresh_token": refresh2}),
    )
    .await;
    assert_unauthorized(&family_gone, true, "refresh after reuse");
    // The reuse revoked the session's access tokens too, at their next request: the one
    // from the login and the one from the rotation.
    let rotated_access = rotated.body["access_token"].as_str().unwrap().to_owned();
    secrets.push(rotated_access.clone());
    for token in [&access, &rotated_access] {
        assert_unauthorized(
            &me(&server, token).await,
            true,
            "access token of a reused session",
        );
    }
    let tokens = login_tokens(&server, "alice.w").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    secrets.push(access.clone());

    // MFA enrollment.
    let (totp, backup, secret) = enable_mfa(&server, &access).await;
    secrets.push(secret);
    secrets.extend(backup.iter().cloned());
    assert_eq!(me(&server, &access).await.body["mfa_enabled"], true);

    // A password login now needs the second factor; the code confirming enrollment is spent.
    let mfa_token = login_mfa(&server, "alice.w").await;
    secrets.push(mfa_token.clone());
    let next = code(&totp, 1);
    let ok = verify(&server, &mfa_token, &next).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    let access2 = ok.body["access_token"].as_str().unwrap().to_owned();
    secrets.push(access2.clone());
    assert_eq!(me(&server, &access2).await.status, StatusCode::OK);
    // The token is used up, and the code cannot be replayed on a new login.
    assert_eq!(
        verify(&server, &mfa_token, &next).await.status,
        StatusCode::UNAUTHORIZED
    );
    let mfa_token2 = login_mfa(&server, "alice.w").await;
    let replay = verify(&server, &mfa_token2, &next).await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED, "{}", replay.body);
    assert_eq!(
        replay.body,
        json!({
            "type": "https://finsec.dev/problems/unauthorized",
            "title": "Authentication required",
            "status": 401,
            "detail": "the credentials are not valid",
        })
    );
    // A backup code works once.
    let backup_ok = verify(&server, &mfa_token2, &backup[0]).await;
    assert_eq!(backup_ok.status, StatusCode::OK, "{}", backup_ok.body);
    let mfa_token3 = login_mfa(&server, "alice.w").await;
    assert_eq!(
        verify(&server, &mfa_token3, &backup[0]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        verify(&server, &mfa_token3, &backup[1]).await.status,
        StatusCode::OK
    );
    // Five wrong codes end an mfa_token, even for a right code afterwards.
    let doomed = login_mfa(&server, "alice.w").await;
    for _ in 0..5 {
        assert_eq!(
            verify(&server, &doomed, "12345678").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        verify(&server, &doomed, &backup[2]).await.status,
        StatusCode::UNAUTHORIZED
    );
    // backup[2] was not spent by that refusal.
    let fresh = login_mfa(&server, "alice.w").await;
    assert_eq!(
        verify(&server, &fresh, &backup[2]).await.status,
        StatusCode::OK
    );

    // An mfa_token is not an access token, nor the reverse.
    assert_unauthorized(&me(&server, &mfa_token3).await, true, "mfa_token as access");
    assert_eq!(
        verify(&server, &access2, &backup[3]).await.status,
        StatusCode::UNAUTHORIZED
    );

    // API keys.
    let created = post(
        &server,
        "/api-keys",
        Some(&access2),
        json!({"name": "ci bot", "scopes": ["orders:read", "orders:*"], "expires_in_days": 30}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    secrets.push(key.clone());
    assert!(key.starts_with("fsk_"));
    let bad_scope = post(
        &server,
        "/api-keys",
        Some(&access2),
        json!({"name": "bad", "scopes": ["Not A Pattern!"]}),
    )
    .await;
    assert_eq!(
        bad_scope.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_scope.body
    );
    let listed = get_with(
        &server,
        "/api-keys",
        Some(("authorization", &format!("Bearer {access2}"))),
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.body["keys"].as_array().unwrap().len(),
        1,
        "{}",
        listed.body
    );
    assert_eq!(listed.body["keys"][0]["name"], "ci bot");
    assert!(!listed.body.to_string().contains(&key));
    let via_header = get_with(&server, "/me", Some(("x-api-key", &key))).await;
    assert_eq!(via_header.status, StatusCode::OK, "{}", via_header.body);
    assert_eq!(via_header.body["auth"], "api_key");
    assert_eq!(
        via_header.body["scopes"],
        json!(["orders:read", "orders:*"])
    );
    assert_eq!(me(&server, &key).await.body["auth"], "api_key");
    // An API key cannot mint API keys.
    let minted = post(
        &server,
        "/api-keys",
        Some(&key),
        json!({"name": "x", "scopes": ["a:b"]}),
    )
    .await;
    assert_eq!(minted.status, StatusCode::FORBIDDEN, "{}", minted.body);
    // Another user cannot delete it.
    register(&server, "mallory").await;
    let mallory = login_tokens(&server, "mallory").await;
    let mallory_access = mallory["access_token"].as_str().unwrap();
    let delete = |token: String| {
        let server = &server;
        let path = format!("/api-keys/{key_id}");
        async move {
            send(
                server,
                reqwest::Method::DELETE,
                &path,
                Some(("authorization", &format!("Bearer {token}"))),
                None,
            )
            .await
        }
    };
    assert_eq!(
        delete(mallory_access.to_owned()).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(delete(access2.clone()).await.status, StatusCode::NO_CONTENT);
    assert_unauthorized(
        &get_with(&server, "/me", Some(("x-api-key", &key))).await,
        true,
        "revoked api key",
    );

    // Logout revokes the access token and the refresh family.
    let session = login_mfa(&server, "alice.w").await;
    let pair = verify(&server, &session, &backup[4]).await.body;
    let (a3, r3) = (
        pair["access_token"].as_str().unwrap().to_owned(),
        pair["refresh_token"].as_str().unwrap().to_owned(),
    );
    let out = post(
        &server,
        "/auth/logout",
        Some(&a3),
        json!({"refresh_token": r3}),
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    assert_unauthorized(&me(&server, &a3).await, true, "after logout");
    assert_unauthorized(
        &post(&server, "/auth/refresh", None, json!({"refresh_token": r3})).await,
        true,
        "refresh after logout",
    );

    // Every bad credential gets the same answer.
    let no_auth = get_with(&server, "/me", None).await;
    assert_unauthorized(&no_auth, false, "no credential");
    let (header, payload, signature) = {
        let mut parts = access2.split('.');
        (
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
            parts.next().unwrap().to_owned(),
        )
    };
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&payload)
            .unwrap(),
    )
    .unwrap();
    let mut changed = claims.clone();
    changed["sub"] = json!("0190a000-0000-7000-8000-000000000000");
    let tampered = format!(
        "{header}.{}.{signature}",
        b64url(changed.to_string().as_bytes())
    );
    let alg_none = format!("{}.{payload}.", b64url(br#"{"alg":"none","typ":"JWT"}"#));
    let forged_key = finsec_auth::tokens::SigningKey::generate_ed25519(
        finsec_auth::tokens::Kid::new("ed25519-1").unwrap(),
    )
    .unwrap();
    let forged = finsec_auth::tokens::Signer::new(forged_key)
        .sign_payload(claims.to_string().as_bytes())
        .unwrap();
    let mut expired_claims = claims.clone();
    expired_claims["exp"] = json!(OffsetDateTime::now_utc().unix_timestamp() - 3600);
    let expired_forged = format!(
        "{header}.{}.{signature}",
        b64url(expired_claims.to_string().as_bytes())
    );
    for (what, token) in [
        ("tampered", tampered.as_str()),
        ("alg none", alg_none.as_str()),
        ("forged", forged.as_str()),
        ("expired", expired_forged.as_str()),
        ("garbage", "not-a-token"),
        ("mfa token", mfa_token.as_str()),
        ("bad api key", "fsk_0000000000000000_00"),
    ] {
        assert_unauthorized(&me(&server, token).await, true, what);
    }
    assert_unauthorized(
        &get_with(
            &server,
            "/me",
            Some(("authorization", "Basic YWxpY2U6eA==")),
        )
        .await,
        true,
        "basic auth",
    );

    // No secret reached the log, even at debug level.
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret is in the log output:\n{logs}"
        );
    }
}

#[tokio::test]
async fn pepper_file_permissions() {
    // A pepper file others may read is refused, like the master key file.
    let data = DataDir::new();
    std::fs::create_dir_all(data.path()).unwrap();
    let pepper = data.path().join("custom-pepper");
    std::fs::write(&pepper, [7u8; 32]).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    let launch = Launch::new().args(["--password-pepper-file", pepper.to_str().unwrap()]);
    let failure = launch.try_start(&data).unwrap_err();
    assert!(failure.output.contains("chmod 600"), "{}", failure.output);
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o600)).unwrap();
    let server = launch.start(&data);
    register(&server, "carol").await;
    login_tokens(&server, "carol").await;
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");

    // The generated default pepper is 0600.
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let mode = std::fs::metadata(data.path().join("pepper.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    server.terminate();
}

#[tokio::test]
async fn openapi_lists_every_auth_route_with_security_schemes() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let doc = server.get_json("/openapi.json", 200).await;
    for (path, method) in [
        ("/auth/register", "post"),
        ("/auth/login", "post"),
        ("/auth/mfa/verify", "post"),
        ("/auth/refresh", "post"),
        ("/auth/logout", "post"),
        ("/mfa/enroll", "post"),
        ("/mfa/confirm", "post"),
        ("/api-keys", "post"),
        ("/api-keys", "get"),
        ("/api-keys/{id}", "delete"),
        ("/me", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["api_key"]["in"], "header", "{schemes}");
    assert_eq!(
        doc["paths"]["/me"]["get"]["security"],
        json!([{"bearer": []}, {"api_key": []}])
    );
    server.terminate();
}

#[tokio::test]
async fn postgres_and_redis_shared_by_two_instances() {
    let db = finsec_testkit::postgres().await;
    let redis = finsec_testkit::redis().await;
    let (url, _) = server_pg_url(&db);
    let redis_url = finsec_testkit::redis_url();
    let launch = Launch::new().args([
        "--postgres-url",
        url.as_str(),
        "--redis-url",
        redis_url.as_str(),
        "--redis-prefix",
        redis.prefix.as_str(),
    ]);
    // Both instances open the same keyring (a copy of A's data directory) and database.
    let data_a = DataDir::new();
    let a = launch.start(&data_a);
    let data_b = DataDir::new();
    std::fs::create_dir_all(data_b.path()).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(data_b.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    for file in ["keyring.sealed", "master.key", "pepper.key"] {
        let from = data_a.path().join(file);
        if from.exists() {
            std::fs::copy(&from, data_b.path().join(file)).unwrap();
        }
    }
    for entry in std::fs::read_dir(data_a.path()).unwrap() {
        let entry = entry.unwrap();
        let to = data_b.path().join(entry.file_name());
        if entry.file_type().unwrap().is_file() && !to.exists() {
            std::fs::copy(entry.path(), &to).unwrap();
        }
    }
    let b = launch.start(&data_b);

    register(&a, "dave").await;
    let tokens = login_tokens(&b, "dave").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    // B's token verifies on A (same signing key from the database).
    assert_eq!(me(&a, &access).await.status, StatusCode::OK);
    let (totp, backup, _) = enable_mfa(&a, &access).await;

    // A TOTP code accepted on A is refused on B.
    let on_a = login_mfa(&a, "dave").await;
    let on_b = login_mfa(&b, "dave").await;
    let next = code(&totp, 1);
    let accepted = verify(&a, &on_a, &next).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    assert_eq!(
        verify(&b, &on_b, &next).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Wrong codes counted on B end the mfa_token on A too.
    for _ in 0..5 {
        assert_eq!(
            verify(&b, &on_b, "12345678").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        verify(&a, &on_b, &backup[0]).await.status,
        StatusCode::UNAUTHORIZED
    );

    // A token revoked on A is refused on B.
    let session = accepted.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&b, &session).await.status, StatusCode::OK);
    let out = post(&a, "/auth/logout", Some(&session), json!({})).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_unauthorized(
        &me(&b, &session).await,
        true,
        "revoked on the other instance",
    );
    // Logout without the refresh token revoked its family too.
    let logged_out = accepted.body["refresh_token"].as_str().unwrap().to_owned();
    assert_unauthorized(
        &post(
            &b,
            "/auth/refresh",
            None,
            json!({"refresh_token": logged_out}),
        )
        .await,
        true,
        "refresh of a logged-out session",
    );

    // Refresh reuse detected across instances.
    let again = login_mfa(&a, "dave").await;
    let accepted = verify(&a, &again, &backup[3]).await;
    assert_eq!(accepted.status, StatusCode::OK, "{}", accepted.body);
    let refresh = accepted.body["refresh_token"].as_str().unwrap().to_owned();
    let rotated = post(&b, "/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let rotated_access = rotated.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&a, &rotated_access).await.status, StatusCode::OK);
    let reused = post(&a, "/auth/refresh", None, json!({"refresh_token": refresh})).await;
    assert_unauthorized(&reused, true, "reuse on the other instance");
    // The session's access token, issued on B, is refused on both instances at once.
    for instance in [&a, &b] {
        assert_unauthorized(
            &me(instance, &rotated_access).await,
            true,
            "access token of a session revoked on the other instance",
        );
    }

    // API keys on PostgreSQL: created on A, used on B, revoked on B, refused on A.
    let fresh = login_mfa(&b, "dave").await;
    let pair = verify(&b, &fresh, &backup[1]).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    let session = pair.body["access_token"].as_str().unwrap().to_owned();
    let created = post(
        &a,
        "/api-keys",
        Some(&session),
        json!({"name": "pg key", "scopes": ["orders:read"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let key = created.body["key"].as_str().unwrap().to_owned();
    let on_b = get_with(&b, "/me", Some(("x-api-key", &key))).await;
    assert_eq!(on_b.status, StatusCode::OK, "{}", on_b.body);
    assert_eq!(on_b.body["scopes"], json!(["orders:read"]));
    let listed = get_with(
        &b,
        "/api-keys",
        Some(("authorization", &format!("Bearer {session}"))),
    )
    .await;
    assert_eq!(listed.body["keys"][0]["name"], "pg key", "{}", listed.body);
    let deleted = send(
        &b,
        reqwest::Method::DELETE,
        &format!("/api-keys/{}", created.body["id"].as_str().unwrap()),
        Some(("authorization", &format!("Bearer {session}"))),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_unauthorized(
        &get_with(&a, "/me", Some(("x-api-key", &key))).await,
        true,
        "api key revoked on the other instance",
    );

    // Sessions opened on one instance are listed and ended on the other.
    sessions_are_listed_and_ended_one_by_one(&a, &b, "erin").await;

    // Revocation state went to Redis under the prefix, not only to Postgres.
    let keys = redis.keys("*").await;
    assert!(!keys.is_empty(), "nothing under {} in redis", redis.prefix);

    let (status_a, logs_a) = a.terminate();
    let (status_b, logs_b) = b.terminate();
    assert!(status_a.success(), "{logs_a}");
    assert!(status_b.success(), "{logs_b}");
    redis.cleanup().await;
}

/// Signs an access token with the server's own key (read from its database and keyring,
/// as an attacker holding both could), valid from `iat` for `ttl`.
async fn sign_with_server_key(
    data: &DataDir,
    pool: &sqlx::SqlitePool,
    sub: &str,
    iat: OffsetDateTime,
    ttl: time::Duration,
) -> String {
    use clap::Parser as _;
    use finsec_crypto::envelope::aad_for;
    let cli = finsec_reference_server::Cli::parse_from([
        "finsec-reference-server",
        "--data-dir",
        data.path().to_str().unwrap(),
    ]);
    let keyring = finsec_reference_server::keys::KeyringFile::for_server(&cli.config)
        .unwrap()
        .load()
        .unwrap();
    let envelope = finsec_crypto::Envelope::new(
        std::sync::Arc::new(keyring),
        finsec_crypto::KeyName::new("server-secrets").unwrap(),
    );
    let (kid, sealed): (String, String) =
        sqlx::query_as("SELECT kid, seed FROM server_jwt_keys WHERE retired_at IS NULL")
            .fetch_one(pool)
            .await
            .unwrap();
    let seed: [u8; 32] = envelope
        .decrypt_str(&sealed, &aad_for("server_jwt_keys", "seed", &kid))
        .unwrap()
        .try_into()
        .unwrap();
    let key = finsec_auth::tokens::SigningKey::ed25519_from_seed(
        finsec_auth::tokens::Kid::new(&kid).unwrap(),
        &seed,
    );
    let claims = finsec_auth::Claims::new(
        "finsec-reference-server",
        sub,
        "finsec-api",
        iat,
        ttl,
        json!({"typ": "access"}),
    )
    .with_jti(uuid::Uuid::now_v7().to_string());
    finsec_auth::tokens::Signer::new(key).sign(&claims).unwrap()
}

#[tokio::test]
async fn expired_tokens_and_legacy_bcrypt_hashes() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    let erin = register(&server, "erin").await;
    let id = erin["id"].as_str().unwrap();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap();

    // A token signed with the real key is accepted while valid and refused once expired
    // (past the 30 s leeway), with the same 401 as any other bad credential.
    let now = OffsetDateTime::now_utc();
    let valid = sign_with_server_key(&data, &pool, id, now, time::Duration::minutes(5)).await;
    assert_eq!(me(&server, &valid).await.status, StatusCode::OK);
    let expired = sign_with_server_key(
        &data,
        &pool,
        id,
        now - time::Duration::hours(2),
        time::Duration::hours(1),
    )
    .await;
    assert_unauthorized(&me(&server, &expired).await, true, "expired");

    // An imported bcrypt hash verifies and is replaced by argon2id on login.
    let legacy = bcrypt::hash(PASSWORD, 4).unwrap();
    sqlx::query("UPDATE server_users SET password_hash = $1 WHERE id = $2")
        .bind(&legacy)
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        login(&server, "erin", "not the password at all")
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    login_tokens(&server, "erin").await;
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM server_users WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    // The pepper is not in the database.
    let pepper = std::fs::read(data.path().join("pepper.key")).unwrap();
    assert_eq!(pepper.len(), 32);
    login_tokens(&server, "erin").await;
    pool.close().await;
    server.terminate();
}

/// Creates an API key with `expires_in_days` (none: left out) and returns the reply.
async fn create_key(server: &Server, access: &str, days: Option<Value>) -> Reply {
    let mut body = json!({"name": "bot", "scopes": ["*"]});
    if let Some(days) = days {
        body["expires_in_days"] = days;
    }
    post(server, "/api-keys", Some(access), body).await
}

/// Days from now until a created key's `expires_at`, rounded to whole days.
fn days_left(reply: &Reply) -> Option<i64> {
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let at = reply.body["expires_at"].as_str()?;
    let at = OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    Some(((at - OffsetDateTime::now_utc()).as_seconds_f64() / 86_400.0).round() as i64)
}

/// A key without a lifetime used to live for ever (and outlive logout): every key now
/// expires, by default after 90 days, never later than the server allows, unless the
/// operator allows keys that never expire.
#[tokio::test]
async fn api_keys_expire_within_the_servers_limit() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    register(&server, "kira").await;
    let access = login_tokens(&server, "kira").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        days_left(&create_key(&server, &access, None).await),
        Some(90)
    );
    assert_eq!(
        days_left(&create_key(&server, &access, Some(Value::Null)).await),
        Some(90)
    );
    assert_eq!(
        days_left(&create_key(&server, &access, Some(json!(30))).await),
        Some(30)
    );
    let too_long = create_key(&server, &access, Some(json!(91))).await;
    assert_eq!(
        too_long.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_long.body
    );
    assert!(
        too_long.body["detail"]
            .as_str()
            .unwrap()
            .contains("1 to 90"),
        "{}",
        too_long.body
    );
    server.terminate();

    // An operator's shorter limit, and keys that never expire where allowed.
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--api-key-max-days", "7", "--api-key-allow-no-expiry"])
        .start(&data);
    register(&server, "kira").await;
    let access = login_tokens(&server, "kira").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(days_left(&create_key(&server, &access, None).await), None);
    assert_eq!(
        days_left(&create_key(&server, &access, Some(json!(7))).await),
        Some(7)
    );
    let too_long = create_key(&server, &access, Some(json!(8))).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    server.terminate();
}

/// A stolen or refreshed access token alone cannot mint an API key or change the second
/// factor: those need a login within 5 minutes, with the second factor once enrolled, and
/// are otherwise answered with an RFC 9470 step-up challenge.
#[tokio::test]
async fn lasting_access_needs_a_recent_login() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    register(&server, "sam").await;
    let key = json!({"name": "bot", "scopes": ["*"]});
    let assert_step_up = |reply: &Reply, what: &str| {
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{what}: {}",
            reply.body
        );
        let challenge = reply.headers[WWW_AUTHENTICATE].to_str().unwrap();
        assert!(
            challenge.contains("error=\"insufficient_user_authentication\"")
                && challenge.contains("max_age=300"),
            "{what}: {challenge}"
        );
        assert!(
            reply.body["detail"]
                .as_str()
                .unwrap()
                .contains("log in again"),
            "{what}: {}",
            reply.body
        );
    };

    // A token from a refresh proves nobody is there: it works, but not for these.
    let tokens = login_tokens(&server, "sam").await;
    let refreshed = post(
        &server,
        "/auth/refresh",
        None,
        json!({"refresh_token": tokens["refresh_token"]}),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let refreshed = refreshed.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(me(&server, &refreshed).await.status, StatusCode::OK);
    assert_step_up(
        &post(&server, "/api-keys", Some(&refreshed), key.clone()).await,
        "api key from a refreshed token",
    );
    assert_step_up(
        &post(&server, "/mfa/enroll", Some(&refreshed), json!({})).await,
        "mfa enrolment from a refreshed token",
    );

    // A fresh password login can; once MFA is on, a password-only token no longer can.
    let fresh = login_tokens(&server, "sam").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = post(&server, "/api-keys", Some(&fresh), key.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let (totp, _backup, _secret) = enable_mfa(&server, &fresh).await;
    assert_step_up(
        &post(&server, "/api-keys", Some(&fresh), key.clone()).await,
        "api key from a token without the second factor",
    );
    // A login with the second factor can.
    let strong = mfa_access(&server, "sam", &code(&totp, 1)).await;
    let created = post(&server, "/api-keys", Some(&strong), key).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    server.terminate();
}

/// A session refreshed again and again used to live for ever (each refresh token got a
/// fresh 30 days). Now it ends `--session-max-hours` after its login: every refresh token
/// of the family expires at the instant the first one did.
#[tokio::test]
async fn refreshing_never_extends_a_session() {
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--session-max-hours", "2"])
        .start(&data);
    register(&server, "rita").await;
    let tokens = login_tokens(&server, "rita").await;
    let first_left = tokens["refresh_expires_in"].as_i64().unwrap();
    assert!((7_190..=7_200).contains(&first_left), "{tokens}");
    let mut refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let rotated = post(
            &server,
            "/auth/refresh",
            None,
            json!({"refresh_token": refresh}),
        )
        .await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
        assert!(rotated.body["refresh_expires_in"].as_i64().unwrap() <= first_left);
        refresh = rotated.body["refresh_token"].as_str().unwrap().to_owned();
    }
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap();
    let expiries: Vec<(String, i64)> =
        sqlx::query_as("SELECT family, expires_at FROM finsec_refresh_tokens")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(expiries.len(), 4, "{expiries:?}");
    assert!(
        expiries.iter().all(|e| *e == expiries[0]),
        "one family, one expiry: {expiries:?}"
    );
    server.terminate();
}

/// A session that got no new token for longer than `--session-idle-minutes` is over: its
/// next refresh is refused and its tokens revoked. Time is not waited for: the session's
/// record is aged in the database.
#[tokio::test]
async fn an_idle_session_ends_at_its_next_refresh() {
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--session-idle-minutes", "30"])
        .start(&data);
    register(&server, "ida").await;
    let refresh_of = |tokens: &Value| tokens["refresh_token"].as_str().unwrap().to_owned();
    let idle = login_tokens(&server, "ida").await;
    let active = login_tokens(&server, "ida").await;
    // Both refresh while fresh.
    let mut pairs = Vec::new();
    for tokens in [&idle, &active] {
        let rotated = post(
            &server,
            "/auth/refresh",
            None,
            json!({"refresh_token": refresh_of(tokens)}),
        )
        .await;
        assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
        pairs.push(rotated.body);
    }
    // The first session's last token was issued two hours ago.
    let idle_access = pairs[0]["access_token"].as_str().unwrap().to_owned();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(idle_access.split('.').nth(1).unwrap())
            .unwrap(),
    )
    .unwrap();
    let family = claims["sid"].as_str().unwrap().to_owned();
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap();
    let aged =
        sqlx::query("UPDATE server_sessions SET expires_at = expires_at - 7200 WHERE family = $1")
            .bind(&family)
            .execute(&pool)
            .await
            .unwrap();
    assert_eq!(aged.rows_affected(), 2);
    pool.close().await;

    let refused = post(
        &server,
        "/auth/refresh",
        None,
        json!({"refresh_token": refresh_of(&pairs[0])}),
    )
    .await;
    assert_unauthorized(&refused, true, "refresh of an idle session");
    // The session is over: its access token too.
    assert_unauthorized(
        &me(&server, &idle_access).await,
        true,
        "token of an idle session",
    );
    // The active session goes on.
    let rotated = post(
        &server,
        "/auth/refresh",
        None,
        json!({"refresh_token": refresh_of(&pairs[1])}),
    )
    .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    server.terminate();
}

/// New backup codes replace the old ones, and only a recent login with the second factor
/// may ask for them.
#[tokio::test]
async fn backup_codes_are_regenerated_after_a_step_up() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    register(&server, "bea").await;
    let password_only = login_tokens(&server, "bea").await;
    let access = password_only["access_token"].as_str().unwrap().to_owned();
    // No second factor yet: nothing to regenerate.
    let none = post(&server, "/mfa/backup-codes", Some(&access), json!({})).await;
    assert_eq!(none.status, StatusCode::CONFLICT, "{}", none.body);
    let (totp, old_codes, _secret) = enable_mfa(&server, &access).await;
    // The password-only token no longer passes the step-up.
    let refused = post(&server, "/mfa/backup-codes", Some(&access), json!({})).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(
        refused.headers[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    let strong = mfa_access(&server, "bea", &code(&totp, 1)).await;
    let renewed = post(&server, "/mfa/backup-codes", Some(&strong), json!({})).await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    assert_eq!(renewed.headers["cache-control"], "no-store");
    let new_codes: Vec<String> = renewed.body["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !old_codes.contains(c)));
    // An old code is dead, a new one logs in.
    let mfa_token = login_mfa(&server, "bea").await;
    let stale = verify(&server, &mfa_token, &old_codes[0]).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.body);
    assert_eq!(stale.body["detail"], "the credentials are not valid");
    let mfa_token = login_mfa(&server, "bea").await;
    let fresh = verify(&server, &mfa_token, &new_codes[0]).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    server.terminate();
}

/// Turning the second factor off needs a recent login with it; afterwards a password
/// login gets tokens directly and the old codes are gone.
#[tokio::test]
async fn mfa_is_disabled_only_after_a_step_up_with_it() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    register(&server, "dina").await;
    let access = login_tokens(&server, "dina").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let disable = |token: String| {
        let server = &server;
        async move {
            let value = format!("Bearer {token}");
            send(
                server,
                reqwest::Method::DELETE,
                "/mfa",
                Some(("authorization", &value)),
                None,
            )
            .await
        }
    };
    assert_eq!(disable(access.clone()).await.status, StatusCode::CONFLICT);
    let (totp, backup, _secret) = enable_mfa(&server, &access).await;
    // The password-only token cannot turn it off.
    let refused = disable(access.clone()).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    assert!(
        refused.headers[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    let strong = mfa_access(&server, "dina", &code(&totp, 1)).await;
    let done = disable(strong.clone()).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);
    assert_eq!(me(&server, &strong).await.body["mfa_enabled"], false);
    // A password login is enough again, and there is nothing left to disable.
    let tokens = login_tokens(&server, "dina").await;
    assert!(tokens["access_token"].is_string());
    assert_eq!(disable(strong).await.status, StatusCode::CONFLICT);
    // The stored backup codes went with it: the table holds none for the user.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM finsec_mfa_backup_codes")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    assert_eq!(left, 0, "{} codes were issued", backup.len());
    server.terminate();
}

/// Enabling the second factor ends the sessions opened without it, except the one that
/// enabled it; logging out everywhere ends every session of the user.
#[tokio::test]
async fn enabling_mfa_and_logging_out_everywhere_end_other_sessions() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    register(&server, "omar").await;
    let token = |tokens: &Value, which: &str| tokens[which].as_str().unwrap().to_owned();
    let refresh = |refresh_token: String| {
        let server = &server;
        async move {
            post(
                server,
                "/auth/refresh",
                None,
                json!({"refresh_token": refresh_token}),
            )
            .await
        }
    };
    let a = login_tokens(&server, "omar").await;
    let b = login_tokens(&server, "omar").await;
    let (totp, backup, _secret) = enable_mfa(&server, &token(&b, "access_token")).await;
    // Session A, opened with the password alone, is over at once.
    assert_unauthorized(
        &me(&server, &token(&a, "access_token")).await,
        true,
        "a session opened before MFA",
    );
    assert_unauthorized(
        &refresh(token(&a, "refresh_token")).await,
        true,
        "refresh of a session opened before MFA",
    );
    // Session B, which enabled it, goes on.
    assert_eq!(
        me(&server, &token(&b, "access_token")).await.status,
        StatusCode::OK
    );

    // Log out everywhere, from a new session with the second factor: B and C end.
    let mfa_token = login_mfa(&server, "omar").await;
    let c = verify(&server, &mfa_token, &code(&totp, 1)).await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.body);
    let all = post(
        &server,
        "/auth/logout-all",
        Some(&token(&c.body, "access_token")),
        json!({}),
    )
    .await;
    assert_eq!(all.status, StatusCode::NO_CONTENT, "{}", all.body);
    for (session, what) in [(&b, "session b"), (&c.body, "session c")] {
        assert_unauthorized(
            &me(&server, &token(session, "access_token")).await,
            true,
            what,
        );
        assert_unauthorized(&refresh(token(session, "refresh_token")).await, true, what);
    }
    // A new login still works (a backup code: this step's TOTP code is spent).
    let mfa_token = login_mfa(&server, "omar").await;
    assert_eq!(
        verify(&server, &mfa_token, &backup[0]).await.status,
        StatusCode::OK
    );
    server.terminate();
}

/// A password change needs the current password and a recent login, ends the caller's
/// other sessions, and revokes their API keys when asked.
#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_keys_when_asked() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    register(&server, "pia").await;
    const NEW: &str = "a different passphrase entirely 77";
    let access = |tokens: &Value| tokens["access_token"].as_str().unwrap().to_owned();
    let a = login_tokens(&server, "pia").await;
    let b = login_tokens(&server, "pia").await;
    let key = post(
        &server,
        "/api-keys",
        Some(&access(&b)),
        json!({"name": "bot", "scopes": ["*"]}),
    )
    .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let key = key.body["key"].as_str().unwrap().to_owned();
    let change = |token: String, current: &'static str, new: &'static str| {
        let server = &server;
        async move {
            post(
                server,
                "/auth/password",
                Some(&token),
                json!({"current_password": current, "new_password": new, "revoke_api_keys": true}),
            )
            .await
        }
    };
    let wrong = change(access(&b), "not the password at all", NEW).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    let weak = change(access(&b), PASSWORD, "short").await;
    assert_eq!(
        weak.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        weak.body
    );
    let done = change(access(&b), PASSWORD, NEW).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.body);

    // The other session and the key are gone; this session goes on.
    assert_unauthorized(&me(&server, &access(&a)).await, true, "another session");
    assert_eq!(me(&server, &access(&b)).await.status, StatusCode::OK);
    let by_key = get_with(&server, "/me", Some(("x-api-key", &key))).await;
    assert_eq!(by_key.status, StatusCode::UNAUTHORIZED, "{}", by_key.body);
    // The old password no longer logs in, the new one does.
    assert_eq!(
        login(&server, "pia", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED
    );
    let fresh = login(&server, "pia", NEW).await;
    assert_eq!(fresh.status, StatusCode::OK, "{}", fresh.body);
    // A token from a refresh cannot change it.
    let refreshed = post(
        &server,
        "/auth/refresh",
        None,
        json!({"refresh_token": fresh.body["refresh_token"]}),
    )
    .await;
    let stale = change(access(&refreshed.body), NEW, PASSWORD).await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.body);
    assert!(
        stale.headers[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    server.terminate();
}

/// `GET /sessions` with the access token of `tokens`.
async fn sessions_of(server: &Server, tokens: &Value) -> Reply {
    let auth = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    send(
        server,
        reqwest::Method::GET,
        "/sessions",
        Some(("authorization", &auth)),
        None,
    )
    .await
}

/// `DELETE /sessions/{id}` with the access token of `tokens`.
async fn end_session(server: &Server, tokens: &Value, id: &str) -> Reply {
    let auth = format!("Bearer {}", tokens["access_token"].as_str().unwrap());
    send(
        server,
        reqwest::Method::DELETE,
        &format!("/sessions/{id}"),
        Some(("authorization", &auth)),
        None,
    )
    .await
}

/// Logs in as `name` with the given user agent; the tokens.
async fn login_from(server: &Server, name: &str, agent: &str) -> Value {
    let response = server
        .client()
        .post(server.url("/auth/login"))
        .header("user-agent", agent)
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `GET /sessions` lists the caller's live sessions (opened on either instance), marks the
/// current one, and shows the client; `DELETE /sessions/{id}` ends one of them (its access
/// and refresh tokens stop working, on every instance) and nothing else; another user's
/// session, an ended one and an unknown id are all 404; an API key cannot do either.
async fn sessions_are_listed_and_ended_one_by_one(a: &Server, b: &Server, name: &str) {
    register(a, name).await;
    let desk = login_from(a, name, "trading-desk/4.2").await;
    let phone = login_from(b, name, "phone\tapp/1.0").await;
    let access = |t: &Value| t["access_token"].as_str().unwrap().to_owned();
    let listed = sessions_of(a, &phone).await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let sessions = listed.body["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 2, "{}", listed.body);
    // The phone's own token sees its session as the current one (both logins may fall in
    // one second, so the order is not asserted).
    let by_agent = |list: &[Value], agent: &str| {
        list.iter()
            .find(|s| s["user_agent"] == agent)
            .unwrap_or_else(|| panic!("no session of {agent}: {list:?}"))
            .clone()
    };
    // Control characters are removed from the user agent.
    assert_eq!(by_agent(&sessions, "phoneapp/1.0")["current"], true);
    assert_eq!(by_agent(&sessions, "trading-desk/4.2")["current"], false);
    for s in &sessions {
        assert_eq!(s["client_ip"], "127.0.0.1", "{s}");
        assert!(s["created_at"].as_str().unwrap().ends_with('Z'), "{s}");
    }
    let desk_id = by_agent(&sessions, "trading-desk/4.2")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A refresh keeps the session (same id) and is its latest use.
    let refreshed = post(
        b,
        "/auth/refresh",
        None,
        json!({"refresh_token": desk["refresh_token"]}),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.body);
    let after = sessions_of(b, &refreshed.body).await.body["sessions"].clone();
    let after = after.as_array().unwrap();
    assert_eq!(after.len(), 2, "{after:?}");
    let desk_after = after
        .iter()
        .find(|s| s["id"] == desk_id.as_str())
        .unwrap_or_else(|| panic!("the desk's session is gone: {after:?}"));
    assert_eq!(desk_after["current"], true);
    // The refresh came with no user agent: the session shows its latest request's client.
    assert_eq!(desk_after["user_agent"], Value::Null);

    // Another user cannot see or end it.
    let other = format!("{name}.other");
    register(a, &other).await;
    let stranger = login_from(a, &other, "x").await;
    assert_eq!(
        sessions_of(a, &stranger).await.body["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        end_session(a, &stranger, &desk_id).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        end_session(a, &phone, "no-such-session").await.status,
        StatusCode::NOT_FOUND
    );

    // The phone ends the desk's session, on the other instance it was refreshed on.
    assert_eq!(
        end_session(a, &phone, &desk_id).await.status,
        StatusCode::NO_CONTENT
    );
    assert_unauthorized(
        &me(b, &access(&refreshed.body)).await,
        true,
        "ended session",
    );
    assert_unauthorized(
        &me(a, &access(&desk)).await,
        true,
        "ended session's first token",
    );
    assert_unauthorized(
        &post(
            a,
            "/auth/refresh",
            None,
            json!({"refresh_token": refreshed.body["refresh_token"]}),
        )
        .await,
        true,
        "ended session's refresh token",
    );
    assert_eq!(me(b, &access(&phone)).await.status, StatusCode::OK);
    let left = sessions_of(b, &phone).await.body["sessions"].clone();
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(
        end_session(a, &phone, &desk_id).await.status,
        StatusCode::NOT_FOUND
    );

    // API keys have no sessions.
    let key = post(
        a,
        "/api-keys",
        Some(&access(&phone)),
        json!({"name": "bot", "scopes": ["orders:read"]}),
    )
    .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let key = key.body["key"].as_str().unwrap();
    let by_key = get_with(a, "/sessions", Some(("x-api-key", key))).await;
    assert_eq!(by_key.status, StatusCode::FORBIDDEN, "{}", by_key.body);
}

#[tokio::test]
async fn sessions_are_listed_and_ended_on_sqlite() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    sessions_are_listed_and_ended_one_by_one(&server, &server, "fay").await;
    server.terminate();
}

/// Sends `n` wrong second-factor codes for `name`, logging in again every four (each
/// mfa_token takes five attempts; a new login does not start the count again).
async fn wrong_codes(server: &Server, name: &str, wrong: &str, n: usize) {
    let mut token = login_mfa(server, name).await;
    for i in 0..n {
        if i > 0 && i % 4 == 0 {
            token = login_mfa(server, name).await;
        }
        let reply = verify(server, &token, wrong).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "guess {i}: {}",
            reply.body
        );
    }
}

/// Wrong second-factor codes are counted per account, over any number of logins and across
/// a restart: the tenth locks the second factor (429 with `Retry-After`), after which even
/// the right code is refused until the lock is over. Before that, a right code clears the
/// count.
#[tokio::test]
async fn wrong_codes_lock_the_second_factor_across_logins_and_restarts() {
    let data = DataDir::new();
    let launch = Launch::new();
    let server = launch.start(&data);
    register(&server, "gus").await;
    let access = login_tokens(&server, "gus").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (totp, backup, _) = enable_mfa(&server, &access).await;
    let wrong = code(&totp, 20);
    // Nine wrong codes, then the right one: the count starts again.
    wrong_codes(&server, "gus", &wrong, 9).await;
    let token = login_mfa(&server, "gus").await;
    let ok = verify(&server, &token, &code(&totp, 1)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    // Nine wrong codes, a restart, and the tenth locks.
    wrong_codes(&server, "gus", &wrong, 9).await;
    server.terminate();
    let server = launch.start(&data);
    wrong_codes(&server, "gus", &wrong, 1).await;
    let token = login_mfa(&server, "gus").await;
    let locked = verify(&server, &token, &code(&totp, 0)).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    let retry: u64 = locked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((890..=900).contains(&retry), "Retry-After {retry}");
    assert!(
        locked.body["detail"]
            .as_str()
            .unwrap()
            .contains("second factor is locked"),
        "{}",
        locked.body
    );
    // The password alone still gets only an mfa_token; backup codes are locked out too.
    let token = login_mfa(&server, "gus").await;
    assert_eq!(
        verify(&server, &token, &backup[0]).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    server.terminate();
}

/// `GET /api-keys` shows when each key was last used and how often, this instance's
/// latest uses included.
#[tokio::test]
async fn api_keys_show_their_last_use() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    register(&server, "hal").await;
    let access = login_tokens(&server, "hal").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let used = create_key(&server, &access, Some(json!(7))).await;
    assert_eq!(used.status, StatusCode::CREATED, "{}", used.body);
    let idle = create_key(&server, &access, Some(json!(7))).await;
    assert_eq!(idle.body["last_used_at"], Value::Null);
    assert_eq!(idle.body["use_count"], 0);
    let key = used.body["key"].as_str().unwrap();
    for _ in 0..3 {
        let reply = get_with(&server, "/me", Some(("x-api-key", key))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }
    let listed = send(
        &server,
        reqwest::Method::GET,
        "/api-keys",
        Some(("authorization", &format!("Bearer {access}"))),
        None,
    )
    .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    let keys = listed.body["keys"].as_array().unwrap();
    let find = |id: &Value| keys.iter().find(|k| k["id"] == *id).unwrap().clone();
    let used_now = find(&used.body["id"]);
    assert_eq!(used_now["use_count"], 3, "{used_now}");
    assert!(
        used_now["last_used_at"].as_str().unwrap().ends_with('Z'),
        "{used_now}"
    );
    let idle_now = find(&idle.body["id"]);
    assert_eq!(idle_now["use_count"], 0);
    assert_eq!(idle_now["last_used_at"], Value::Null);
    server.terminate();
}

/// `POST /api-keys/{id}/rotate` with `access`.
async fn rotate_key(server: &Server, access: &str, id: &str, body: Value) -> Reply {
    post(
        server,
        &format!("/api-keys/{id}/rotate"),
        Some(access),
        body,
    )
    .await
}

/// `POST /api-keys/{id}/rotate`: a new key with the old one's name and scopes, the old one
/// working for the overlap (or not at all with 0); once rotated, a key cannot be rotated
/// again; the new key's lifetime follows the server's limit; a token from a refresh
/// cannot rotate (step-up).
#[tokio::test]
async fn api_keys_rotate_with_an_overlap() {
    let data = DataDir::new();
    let server = Launch::new().start(&data);
    register(&server, "ida").await;
    let tokens = login_tokens(&server, "ida").await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let created = create_key(&server, &access, Some(json!(7))).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let old_id = created.body["id"].as_str().unwrap().to_owned();
    let old_key = created.body["key"].as_str().unwrap().to_owned();

    let rotated = rotate_key(&server, &access, &old_id, json!({"overlap_minutes": 60})).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    assert_eq!(rotated.body["replaces"], old_id.as_str());
    assert_eq!(rotated.body["name"], "bot");
    assert_eq!(rotated.body["scopes"], json!(["*"]));
    assert_eq!(
        days_left(&rotated),
        Some(90),
        "the server's longest lifetime"
    );
    // When the old key stops, as the rotation stored it: the overlap from now.
    let old_ends = OffsetDateTime::parse(
        rotated.body["replaced_expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let overlap = old_ends - OffsetDateTime::now_utc();
    assert!(
        overlap > time::Duration::minutes(59) && overlap <= time::Duration::minutes(60),
        "{overlap}"
    );
    let new_id = rotated.body["id"].as_str().unwrap().to_owned();
    let new_key = rotated.body["key"].as_str().unwrap().to_owned();
    for key in [&old_key, &new_key] {
        let me = get_with(&server, "/me", Some(("x-api-key", key))).await;
        assert_eq!(me.status, StatusCode::OK, "{}", me.body);
    }
    // Rotated once: the chain goes on from the new key only.
    let again = rotate_key(&server, &access, &old_id, json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let too_long = rotate_key(&server, &access, &new_id, json!({"overlap_minutes": 10081})).await;
    assert_eq!(too_long.status, StatusCode::UNPROCESSABLE_ENTITY);
    let too_far = rotate_key(&server, &access, &new_id, json!({"expires_in_days": 91})).await;
    assert_eq!(too_far.status, StatusCode::UNPROCESSABLE_ENTITY);
    // The body is an object: an array of its fields in order is refused.
    let array = rotate_key(&server, &access, &new_id, json!([null, null])).await;
    assert_eq!(
        array.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        array.body
    );
    // No overlap: the replaced key stops at once.
    let cut = rotate_key(
        &server,
        &access,
        &new_id,
        json!({"overlap_minutes": 0, "expires_in_days": 3}),
    )
    .await;
    assert_eq!(cut.status, StatusCode::CREATED, "{}", cut.body);
    assert_eq!(days_left(&cut), Some(3));
    assert_unauthorized(
        &get_with(&server, "/me", Some(("x-api-key", &new_key))).await,
        true,
        "a key rotated without overlap",
    );
    let newest = cut.body["key"].as_str().unwrap();
    assert_eq!(
        get_with(&server, "/me", Some(("x-api-key", newest)))
            .await
            .status,
        StatusCode::OK
    );
    // An unknown id, and a token from a refresh (no recent login).
    let unknown = rotate_key(&server, &access, "0000000000000000", json!({})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let refreshed = post(
        &server,
        "/auth/refresh",
        None,
        json!({"refresh_token": tokens["refresh_token"]}),
    )
    .await;
    let stale = post(
        &server,
        &format!("/api-keys/{}/rotate", cut.body["id"].as_str().unwrap()),
        Some(refreshed.body["access_token"].as_str().unwrap()),
        json!({}),
    )
    .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED, "{}", stale.body);
    server.terminate();
}

/// `GET /me` with an API key, from `forwarded` (an `X-Forwarded-For`, read only from a
/// trusted proxy) or from the TCP peer.
async fn me_with_key(server: &Server, key: &str, forwarded: Option<&str>) -> StatusCode {
    let mut request = server
        .client()
        .get(server.url("/me"))
        .header("x-api-key", key);
    if let Some(address) = forwarded {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.unwrap().status()
}

/// A key limited to client networks works only from inside them: the address is the TCP
/// peer, or what a trusted proxy forwarded; a rotation keeps the networks; bad networks
/// are a 422.
#[tokio::test]
async fn api_keys_limited_to_client_networks() {
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--trusted-proxy", "127.0.0.1/32"])
        .start(&data);
    register(&server, "nia").await;
    let access = login_tokens(&server, "nia").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let create = |networks: Value| {
        let access = access.clone();
        let server = &server;
        async move {
            post(
                server,
                "/api-keys",
                Some(&access),
                json!({"name": "fenced", "scopes": ["*"], "allowed_networks": networks}),
            )
            .await
        }
    };
    let fenced = create(json!(["10.0.0.0/8", "2001:db8::/32", "10.1.2.3/16"])).await;
    assert_eq!(fenced.status, StatusCode::CREATED, "{}", fenced.body);
    assert_eq!(
        fenced.body["allowed_networks"],
        json!(["10.0.0.0/8", "10.1.0.0/16", "2001:db8::/32"])
    );
    let key = fenced.body["key"].as_str().unwrap().to_owned();
    // From the proxy itself (127.0.0.1), and from forwarded addresses outside: refused
    // with the uniform 401. From inside, through the trusted proxy: accepted.
    assert_eq!(
        me_with_key(&server, &key, None).await,
        StatusCode::UNAUTHORIZED
    );
    for outside in ["192.0.2.7", "11.0.0.1", "2001:db9::1"] {
        assert_eq!(
            me_with_key(&server, &key, Some(outside)).await,
            StatusCode::UNAUTHORIZED,
            "{outside}"
        );
    }
    for inside in ["10.200.0.1", "::ffff:10.0.0.9", "2001:db8:42::1"] {
        assert_eq!(
            me_with_key(&server, &key, Some(inside)).await,
            StatusCode::OK,
            "{inside}"
        );
    }
    // A single address is a /32 (or /128); a key for loopback works directly.
    let local = create(json!(["127.0.0.1"])).await;
    assert_eq!(local.status, StatusCode::CREATED, "{}", local.body);
    assert_eq!(local.body["allowed_networks"], json!(["127.0.0.1/32"]));
    let local_key = local.body["key"].as_str().unwrap();
    assert_eq!(me_with_key(&server, local_key, None).await, StatusCode::OK);
    // An open key works from anywhere, as before.
    let open = create(json!([])).await;
    assert_eq!(open.status, StatusCode::CREATED, "{}", open.body);
    assert_eq!(open.body["allowed_networks"], json!([]));
    let open_key = open.body["key"].as_str().unwrap();
    assert_eq!(me_with_key(&server, open_key, None).await, StatusCode::OK);

    // The list shows the networks; the rotated key keeps them.
    let listed = get_with(
        &server,
        "/api-keys",
        Some(("authorization", &format!("Bearer {access}"))),
    )
    .await;
    let shown = listed.body["keys"].as_array().unwrap();
    let id = fenced.body["id"].as_str().unwrap();
    let entry = shown.iter().find(|k| k["id"] == id).unwrap();
    assert_eq!(entry["allowed_networks"], fenced.body["allowed_networks"]);
    let rotated = rotate_key(&server, &access, id, json!({"overlap_minutes": 0})).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    assert_eq!(
        rotated.body["allowed_networks"],
        fenced.body["allowed_networks"]
    );
    let new_key = rotated.body["key"].as_str().unwrap();
    assert_eq!(
        me_with_key(&server, new_key, None).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        me_with_key(&server, new_key, Some("10.9.9.9")).await,
        StatusCode::OK
    );

    // Malformed networks and too many are refused, and nothing is created.
    for bad in [
        json!(["10.0.0.0/33"]),
        json!(["300.1.1.1"]),
        json!(["010.0.0.1"]),
        json!(["10.0.0.0/08"]),
        json!(["::ffff:10.0.0.1"]),
        json!(["fe80::1%eth0"]),
        json!(["example.com"]),
        json!(
            (0..33)
                .map(|i| format!("10.{i}.0.0/16"))
                .collect::<Vec<_>>()
        ),
    ] {
        let reply = create(bad.clone()).await;
        assert_eq!(
            reply.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            reply.body
        );
    }
    let listed = get_with(
        &server,
        "/api-keys",
        Some(("authorization", &format!("Bearer {access}"))),
    )
    .await;
    // The first key (stopped at its rotation, listed until revoked), its replacement, the
    // loopback key and the open one: no refused request created a key.
    assert_eq!(
        listed.body["keys"].as_array().unwrap().len(),
        4,
        "{}",
        listed.body
    );
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
}

/// An admin's password or second-factor reset of another user's account takes a second
/// admin; then the user's sessions, remembered devices and (if asked) API keys are gone, a
/// password reset makes the old password useless and hands over a single-use token, and a
/// second-factor reset turns TOTP off. Common passwords are refused on the way.
async fn account_resets_take_two_admins(launch: Launch) {
    let data = DataDir::new();
    let server = launch.start(&data);
    register(&server, "root").await;
    register(&server, "ada").await;
    let vera = register(&server, "vera").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for admin in ["root", "ada"] {
        let out = launch.roles(&data, &["grant", admin, "admin"]).success();
        assert_eq!(out.trim(), format!("granted admin to {admin}"));
    }
    let root = login_tokens(&server, "root").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ada = login_tokens(&server, "ada").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let session = login_tokens(&server, "vera").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = create_key(&server, &session, None).await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let api_key = key.body["key"].as_str().unwrap().to_owned();

    // Asked by root: nothing changes yet.
    let resets = format!("/admin/users/{vera}/resets");
    let asked = post(
        &server,
        &resets,
        Some(&root),
        json!({"kind": "password", "revoke_api_keys": true}),
    )
    .await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    assert_eq!(asked.body["status"], "pending");
    assert!(asked.body["reset_token"].is_null());
    assert_eq!(me(&server, &session).await.status, StatusCode::OK);
    let approve = format!(
        "/admin/resets/{}/approve",
        asked.body["id"].as_str().unwrap()
    );
    for (who, token) in [("root", &root), ("vera", &session)] {
        let refused = post(&server, &approve, Some(token), json!({})).await;
        assert_eq!(
            refused.status,
            StatusCode::FORBIDDEN,
            "{who}: {}",
            refused.body
        );
    }
    // An admin cannot ask for their own reset either.
    let own = post(
        &server,
        &format!(
            "/admin/users/{}/resets",
            me(&server, &root).await.body["id"].as_str().unwrap()
        ),
        Some(&root),
        json!({"kind": "mfa"}),
    )
    .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{}", own.body);
    assert_eq!(own.body["reason"], "self_approval");

    // Approved by ada: done.
    let done = post(&server, &approve, Some(&ada), json!({})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "done");
    let token = done.body["reset_token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("fsr_"), "{token}");
    let again = post(&server, &approve, Some(&ada), json!({})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert_eq!(me(&server, &session).await.status, StatusCode::UNAUTHORIZED);
    let with_key = get_with(&server, "/me", Some(("x-api-key", &api_key))).await;
    assert_eq!(with_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login(&server, "vera", PASSWORD).await.status,
        StatusCode::UNAUTHORIZED,
        "the old password stopped working"
    );

    // The user sets a new password with the token: a common one is refused without using it.
    let common = post(
        &server,
        "/auth/password/reset",
        None,
        json!({"reset_token": token, "new_password": "qwerty123456"}),
    )
    .await;
    assert_eq!(
        common.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        common.body
    );
    let fresh = "a fresh and long passphrase 9";
    let set = post(
        &server,
        "/auth/password/reset",
        None,
        json!({"reset_token": token, "new_password": fresh}),
    )
    .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.body);
    let reused = post(
        &server,
        "/auth/password/reset",
        None,
        json!({"reset_token": token, "new_password": "another long passphrase 1"}),
    )
    .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "single use");
    for forged in ["fsr_made-up", "not a token"] {
        let reply = post(
            &server,
            "/auth/password/reset",
            None,
            json!({"reset_token": forged, "new_password": "another long passphrase 1"}),
        )
        .await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{forged}");
    }
    let access = login(&server, "vera", fresh).await;
    assert_eq!(access.status, StatusCode::OK, "{}", access.body);
    let access = access.body["access_token"].as_str().unwrap().to_owned();

    // A second-factor reset: enrolled, then reset by two admins, then the password alone.
    enable_mfa(&server, &access).await;
    let reply = login(&server, "vera", fresh).await;
    assert_eq!(reply.body["mfa_required"], true, "{}", reply.body);
    let asked = post(&server, &resets, Some(&ada), json!({"kind": "mfa"})).await;
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{}", asked.body);
    let approve = format!(
        "/admin/resets/{}/approve",
        asked.body["id"].as_str().unwrap()
    );
    let done = post(&server, &approve, Some(&root), json!({})).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body["reset_token"].is_null());
    let reply = login(&server, "vera", fresh).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert!(reply.body["access_token"].is_string(), "{}", reply.body);
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains(&token), "a reset token in the logs");
}

#[tokio::test]
async fn account_resets_take_two_admins_on_sqlite() {
    account_resets_take_two_admins(Launch::new()).await;
}

#[tokio::test]
async fn account_resets_take_two_admins_on_postgres() {
    let db = finsec_testkit::postgres().await;
    let (url, _) = server_pg_url(&db);
    account_resets_take_two_admins(Launch::new().args(["--postgres-url", url.as_str()])).await;
    db.cleanup().await;
}

/// `--registration uniform` (the default) answers a taken name exactly as a free one;
/// `--registration closed` refuses everyone, and accounts come from the command line (the
/// first admin) and from admins over HTTP.
async fn registration_tells_nobody_which_names_exist(backend: &[&str]) {
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--registration", "uniform"])
        .args(backend.iter().copied())
        .start(&data);
    let credentials = json!({"username": "uma", "password": PASSWORD});
    let first = post(&server, "/auth/register", None, credentials.clone()).await;
    let taken = post(
        &server,
        "/auth/register",
        None,
        json!({"username": "UMA", "password": "another long passphrase 3"}),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!((taken.status, &taken.body), (first.status, &first.body));
    assert!(first.body.get("id").is_none(), "{}", first.body);
    assert_eq!(login(&server, "uma", PASSWORD).await.status, StatusCode::OK);
    assert_eq!(
        login(&server, "uma", "another long passphrase 3")
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "the taken name kept its password"
    );
    let common = post(
        &server,
        "/auth/register",
        None,
        json!({"username": "newbie", "password": "1qaz2wsx3edc"}),
    )
    .await;
    assert_eq!(
        common.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        common.body
    );
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");

    // The same data directory (and database), closed now.
    let launch = Launch::new()
        .args(["--registration", "closed"])
        .args(backend.iter().copied())
        .env("FINSEC_NEW_USER_PASSWORD", PASSWORD);
    let server = launch.start(&data);
    let closed = post(&server, "/auth/register", None, credentials).await;
    assert_eq!(closed.status, StatusCode::FORBIDDEN, "{}", closed.body);
    assert_eq!(closed.body["code"], "registration_closed");
    let out = launch.users(&data, &["create", "boss"]).success();
    assert!(out.starts_with("created boss ("), "{out}");
    assert!(
        !launch.users(&data, &["create", "BOSS"]).status.success(),
        "taken"
    );
    launch.roles(&data, &["grant", "boss", "admin"]).success();
    let boss = login_tokens(&server, "boss").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let created = post(
        &server,
        "/admin/users",
        Some(&boss),
        json!({"username": "ursula", "password": PASSWORD}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["username"], "ursula");
    let again = post(
        &server,
        "/admin/users",
        Some(&boss),
        json!({"username": "Ursula", "password": PASSWORD}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let ursula = login_tokens(&server, "ursula").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = post(
        &server,
        "/admin/users",
        Some(&ursula),
        json!({"username": "eve", "password": PASSWORD}),
    )
    .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "a viewer creates nobody"
    );
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains(PASSWORD), "a password in the logs");
}

#[tokio::test]
async fn registration_tells_nobody_which_names_exist_on_sqlite() {
    registration_tells_nobody_which_names_exist(&[]).await;
}

#[tokio::test]
async fn registration_tells_nobody_which_names_exist_on_postgres() {
    let db = finsec_testkit::postgres().await;
    let (url, _) = server_pg_url(&db);
    registration_tells_nobody_which_names_exist(&["--postgres-url", url.as_str()]).await;
    db.cleanup().await;
}
