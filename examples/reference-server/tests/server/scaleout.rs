//! The scale-out configuration proven with two instances: two servers on one PostgreSQL
//! schema and one Redis prefix share the login limit, TOTP replay protection, token
//! revocation, orders and roles, so that whichever instance a request lands on answers the
//! same. Assertions are on status codes and data fields only.
#![cfg(test)]

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use finsec_auth::mfa::{Totp, TotpParams, TotpSecret};
use finsec_testkit::{PgTestDb, RedisTestPrefix};
use reqwest::StatusCode;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::backends::server_pg_url;
use crate::support::{DataDir, Launch, RELAXED_RATE_LIMITS, Server};

const PASSWORD: &str = "two instances, one database 8e3a";

/// Login attempts per account per minute in these tests (all other limits are relaxed).
const LOGIN_PER_ACCOUNT: usize = 4;

/// Two instances, A and B, on one PostgreSQL schema and one Redis prefix, with copies of
/// one keyring, master key and pepper (as two hosts given the same secrets would have).
struct Pair {
    a: Server,
    b: Server,
    launch: Launch,
    data_a: DataDir,
    _data_b: DataDir,
    _limits: tempfile::NamedTempFile,
    db: PgTestDb,
    redis: RedisTestPrefix,
}

impl Pair {
    /// Starts A and B with at most `login_per_account` login attempts per account and
    /// minute (every other limit relaxed).
    async fn start(login_per_account: usize) -> Self {
        Self::start_with(login_per_account, &[]).await
    }

    /// As [`start`](Self::start), with more command line arguments for both instances.
    async fn start_with(login_per_account: usize, extra: &[&str]) -> Self {
        let db = finsec_testkit::postgres().await;
        let redis = finsec_testkit::redis().await;
        let (url, _) = server_pg_url(&db);
        // The relaxed limits, except logins per account: few enough to exhaust in a test.
        let relaxed = fs::read_to_string(RELAXED_RATE_LIMITS).unwrap();
        let limits = tempfile::NamedTempFile::new().unwrap();
        let login_rule = "[[login]]\nper = \"account\"\nlimit = 100000\n";
        assert!(relaxed.contains(login_rule), "{relaxed}");
        let tight = relaxed.replace(
            login_rule,
            &format!("[[login]]\nper = \"account\"\nlimit = {login_per_account}\n"),
        );
        fs::write(limits.path(), tight).unwrap();
        let launch = Launch::new()
            .args([
                "--postgres-url",
                url.as_str(),
                "--redis-url",
                finsec_testkit::redis_url().as_str(),
                "--redis-prefix",
                redis.prefix.as_str(),
                "--rate-limits",
                limits.path().to_str().unwrap(),
            ])
            .args(extra.iter().copied());
        let data_a = DataDir::new();
        let a = launch.start(&data_a);
        let data_b = DataDir::new();
        copy_secrets(data_a.path(), data_b.path());
        let b = launch.start(&data_b);
        Self {
            a,
            b,
            launch,
            data_a,
            _data_b: data_b,
            _limits: limits,
            db,
            redis,
        }
    }

    /// Runs `roles ARGS` against the shared database (from A's data directory).
    fn roles(&self, args: &[&str]) -> String {
        self.launch.roles(&self.data_a, args).success()
    }

    fn accounts(&self, args: &[&str]) -> String {
        self.launch.accounts(&self.data_a, args).success()
    }

    async fn stop(self) {
        let (status_a, logs_a) = self.a.terminate();
        let (status_b, logs_b) = self.b.terminate();
        assert!(status_a.success(), "{logs_a}");
        assert!(status_b.success(), "{logs_b}");
        for logs in [&logs_a, &logs_b] {
            assert!(!logs.contains(PASSWORD), "a password is in the logs");
        }
        self.redis.cleanup().await;
        self.db.cleanup().await;
    }
}

/// Copies the keyring, master key, pepper and policy file of `from` into a new data
/// directory `to` (mode 0700, as the server makes it).
pub(crate) fn copy_secrets(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    fs::set_permissions(to, fs::Permissions::from_mode(0o700)).unwrap();
    let mut copied = 0;
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            copied += 1;
        }
    }
    assert!(to.join("keyring.sealed").exists(), "no keyring in {from:?}");
    assert!(copied >= 3, "only {copied} files in {from:?}");
}

/// Status and JSON body (`Null` when empty).
async fn send(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = server.client().request(method, server.url(path));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

async fn post(
    server: &Server,
    path: &str,
    bearer: Option<&str>,
    body: &Value,
) -> (StatusCode, Value) {
    send(server, reqwest::Method::POST, path, bearer, Some(body)).await
}

async fn get(server: &Server, path: &str, bearer: &str) -> (StatusCode, Value) {
    send(server, reqwest::Method::GET, path, Some(bearer), None).await
}

async fn register(server: &Server, username: &str) -> String {
    let (status, body) = post(
        server,
        "/auth/register",
        None,
        &json!({"username": username, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

async fn login(server: &Server, username: &str, password: &str) -> (StatusCode, Value) {
    post(
        server,
        "/auth/login",
        None,
        &json!({"username": username, "password": password}),
    )
    .await
}

async fn access_token(server: &Server, username: &str) -> String {
    let (status, body) = login(server, username, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

fn order(quantity: &str) -> Value {
    json!({
        "symbol": "MSFT", "side": "buy", "order_type": "limit", "quantity": quantity,
        "limit_price": "410.25", "account_id": "ACC-7",
    })
}

/// The code of `totp` `steps` time steps from now.
fn code(totp: &Totp, steps: i64) -> String {
    let at = OffsetDateTime::now_utc() + time::Duration::seconds(30 * steps);
    totp.code_at(at).unwrap().expose()
}

#[tokio::test]
async fn login_limit_is_shared() {
    let pair = Pair::start(LOGIN_PER_ACCOUNT).await;
    register(&pair.a, "erin").await;
    // Every attempt counts against the account, whichever instance takes it.
    for _ in 0..LOGIN_PER_ACCOUNT - 1 {
        let (status, _) = login(&pair.a, "erin", "not the password at all").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = login(&pair.a, "erin", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The budget spent on A is spent on B, the right password included.
    let (status, _) = login(&pair.b, "erin", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) = login(&pair.a, "erin", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another account still has its own budget, on either instance.
    register(&pair.b, "frank").await;
    let (status, body) = login(&pair.b, "frank", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    pair.stop().await;
}

#[tokio::test]
async fn totp_codes_logout_orders_and_roles_are_shared() {
    // Second-factor attempts count as logins: a budget this test does not reach.
    let pair = Pair::start(100).await;
    let (a, b) = (&pair.a, &pair.b);
    let id = register(a, "grace").await;

    // A token issued by A is accepted by B.
    let first = access_token(a, "grace").await;
    let (status, me) = get(b, "/me", &first).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], id.as_str());
    assert_eq!(me["username"], "grace");

    // A has read grace's row (and keeps it); her second factor, confirmed on B below,
    // shows on A at the next request.
    let (status, me) = get(a, "/me", &first).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["mfa_enabled"], false);

    // Second factor enrolled on B; a code accepted by A is refused by B.
    let (status, enrolled) = post(b, "/mfa/enroll", Some(&first), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{enrolled}");
    let uri = enrolled["otpauth_uri"].as_str().unwrap();
    let secret = uri
        .split_once('?')
        .unwrap()
        .1
        .split('&')
        .find_map(|p| p.strip_prefix("secret="))
        .unwrap();
    let totp = Totp::new(
        TotpSecret::from_base32(secret).unwrap(),
        TotpParams::default(),
    );
    let (status, confirmed) = post(
        b,
        "/mfa/confirm",
        Some(&first),
        &json!({"code": code(&totp, 0)}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{confirmed}");
    let (status, me) = get(a, "/me", &first).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(
        me["mfa_enabled"], true,
        "A served the row it read before the change"
    );
    let (status, on_a) = login(a, "grace", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{on_a}");
    assert_eq!(on_a["mfa_required"], true);
    let (status, on_b) = login(b, "grace", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{on_b}");
    let next = code(&totp, 1);
    let (status, session) = post(
        a,
        "/auth/mfa/verify",
        None,
        &json!({"mfa_token": on_a["mfa_token"], "code": next}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let (status, replayed) = post(
        b,
        "/auth/mfa/verify",
        None,
        &json!({"mfa_token": on_b["mfa_token"], "code": next}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{replayed}");
    assert!(replayed.get("access_token").is_none(), "{replayed}");
    let token = session["access_token"].as_str().unwrap().to_owned();

    // An order placed on A is read on B, once the trader role and the account are granted.
    let (status, _) = post(a, "/orders", Some(&token), &order("5")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "viewers do not trade");
    assert_eq!(
        pair.roles(&["grant", "grace", "trader"]).trim(),
        "granted trader to grace"
    );
    let (status, refused) = post(b, "/orders", Some(&token), &order("5")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["reason"], "account_not_entitled", "{refused}");
    assert_eq!(
        pair.accounts(&["grant", "grace", "ACC-7"]).trim(),
        "entitled grace to ACC-7"
    );
    let (status, placed) = post(a, "/orders", Some(&token), &order("5")).await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let order_id = placed["id"].as_str().unwrap();
    let (status, read) = get(b, &format!("/orders/{order_id}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["id"], order_id);
    assert_eq!(read["symbol"], "MSFT");
    assert_eq!(read["quantity"], placed["quantity"]);
    assert_eq!(read["status"], "accepted");
    let (status, listed) = get(b, "/orders", &token).await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed[0]["id"], order_id, "{listed}");

    // An entitlement revoked on A: B no longer shows or takes orders on the account.
    assert_eq!(
        pair.accounts(&["revoke", "grace", "ACC-7"]).trim(),
        "revoked grace's entitlement to ACC-7"
    );
    let (status, _) = get(b, &format!("/orders/{order_id}"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, listed) = get(b, "/orders", &token).await;
    assert_eq!((status, listed), (StatusCode::OK, json!([])));
    let (status, refused) = post(b, "/orders", Some(&token), &order("6")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["reason"], "account_not_entitled", "{refused}");
    pair.accounts(&["grant", "grace", "ACC-7"]);

    // A role revoked (on A's side) takes effect on B at the next request.
    let (status, _) = post(b, "/orders", Some(&token), &order("6")).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        pair.roles(&["revoke", "grace", "trader"]).trim(),
        "revoked trader from grace"
    );
    let (status, _) = post(b, "/orders", Some(&token), &order("7")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post(a, "/orders", Some(&token), &order("7")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A logout on A: B refuses the token at its next request (it accepted it just before),
    // while the other session stays valid on both.
    for server in [a, b] {
        let (status, _) = get(server, "/me", &token).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = post(a, "/auth/logout", Some(&token), &json!({})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    for server in [b, a] {
        let (status, _) = get(server, "/me", &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, me) = get(server, "/me", &first).await;
        assert_eq!(status, StatusCode::OK, "{me}");
    }
    pair.stop().await;
}

/// Both instances append to the one audit log in PostgreSQL, at once: one tree, every
/// event at one position, checkpoints from either verify with the other's key (they share
/// the sealed seed), and the log verifies.
#[tokio::test]
async fn both_instances_append_to_one_audit_log() {
    // Ten failures for one name from one address: the lockout's waits are off.
    let pair = Pair::start_with(100, &["--login-backoff-secs", "0"]).await;
    register(&pair.a, "audra").await;
    pair.roles(&["grant", "audra", "auditor"]);
    let token_a = access_token(&pair.a, "audra").await;
    let token_b = access_token(&pair.b, "audra").await;
    // Interleaved writes on both instances: failed logins and API keys.
    let guesses = |server| async move {
        let mut statuses = Vec::new();
        for i in 0..5 {
            statuses.push(login(server, "nobody", &format!("guess {i}")).await);
        }
        statuses
    };
    let (on_a, on_b) = tokio::join!(guesses(&pair.a), guesses(&pair.b));
    for (status, body) in on_a.into_iter().chain(on_b) {
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    // Each instance queues its own events: a read on each flushes its queue (an auditor
    // on A sees B's events once B has written them, within its group commit).
    for (server, token) in [(&pair.a, &token_a), (&pair.b, &token_b)] {
        let (status, _) = get(server, "/audit?limit=1", token).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, a) = get(
        &pair.a,
        "/audit?action=auth.login&outcome=failure",
        &token_a,
    )
    .await;
    let (_, b) = get(
        &pair.b,
        "/audit?action=auth.login&outcome=failure",
        &token_b,
    )
    .await;
    assert_eq!(a["events"].as_array().unwrap().len(), 10, "{a}");
    assert_eq!(a, b, "both instances read one log");
    let (status, cp_a) = get(&pair.a, "/audit/checkpoint", &token_a).await;
    assert_eq!(status, StatusCode::OK, "{cp_a}");
    let (_, cp_b) = get(&pair.b, "/audit/checkpoint", &token_b).await;
    assert_eq!(cp_a["verifier_key"], cp_b["verifier_key"]);
    let verifier =
        finsec_audit::NoteVerifier::from_vkey(cp_a["verifier_key"].as_str().unwrap()).unwrap();
    let pool = sqlx::PgPool::connect_with(pair.db.connect_options())
        .await
        .unwrap();
    let sink = finsec_audit::postgres::PgSink::new(pool.clone());
    let report = finsec_audit::LogVerifier::new(verifier, "finsec-reference-server/audit")
        .verify(&sink)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert!(report.checkpoints >= 1, "{report:?}");
    pool.close().await;
    pair.stop().await;
}
