//! GDPR against the real binary, on SQLite and on PostgreSQL: a user registers, consents,
//! trades as a natural-person client, asks for their data (the export holds every source),
//! then for erasure while a legal hold covers their trades (refused for those, with the
//! reason), and again once a second officer released the hold. Afterwards they cannot log
//! in; their profile, sessions, keys and consent are gone; their orders, fills and MiFIR
//! reports remain with their identity pseudonymised; the audit log verifies with proofs;
//! their key is destroyed, so the sealed details in the log no longer decrypt.

use std::sync::Arc;

use finsec_audit::merkle::{self, Hash};
use finsec_audit::{FileWitness, LogVerifier, NoteVerifier};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::backends::server_pg_url;
use crate::compliance::files;
use crate::orders::{PASSWORD, User, entitle, get, grant, post, register_and_login};
use crate::support::{DataDir, Launch, Server};

/// Raw reads of the server's database, to see what is at rest.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Every value of the first column `sql` returns, `bind` bound to `$1`.
    async fn column<T>(&self, sql: &str, bind: &str) -> Vec<T>
    where
        T: Send + Unpin,
        for<'r> T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
        for<'r> T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        match self {
            Self::Sqlite(p) => sqlx::query_scalar(sql)
                .bind(bind)
                .fetch_all(p)
                .await
                .unwrap(),
            Self::Postgres(p) => sqlx::query_scalar(sql)
                .bind(bind)
                .fetch_all(p)
                .await
                .unwrap(),
        }
    }

    async fn count(&self, sql: &str, bind: &str) -> i64 {
        self.column::<i64>(sql, bind).await[0]
    }

    async fn texts(&self, sql: &str, bind: &str) -> Vec<String> {
        self.column(sql, bind).await
    }

    /// The canonical JSON of every audit event `user` acted in.
    async fn audit_events_of(&self, user: &str) -> Vec<String> {
        self.column::<Vec<u8>>(
            "SELECT body FROM finsec_audit_events WHERE actor_user = $1",
            user,
        )
        .await
        .into_iter()
        .map(|b| String::from_utf8(b).unwrap())
        .collect()
    }
}

async fn login(server: &Server, name: &str) -> (StatusCode, Value) {
    let response = server
        .client()
        .post(server.url("/auth/login"))
        .json(&json!({ "username": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GET `path` as `user`, the body as text.
async fn text(server: &Server, user: &User, path: &str) -> (StatusCode, String, String) {
    let response = server
        .client()
        .get(server.url(path))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let disposition = response
        .headers()
        .get("content-disposition")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, disposition, response.text().await.unwrap())
}

fn sources(export: &Value) -> Vec<(String, u64)> {
    export["manifest"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["records"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn records(export: &Value, source: &str) -> u64 {
    sources(export)
        .into_iter()
        .find(|(name, _)| name == source)
        .map(|(_, n)| n)
        .unwrap()
}

/// The whole flow on one server; returns the audit log's verifier key.
async fn erasure_flow(launch: &Launch, data: &DataDir, db: &Db) -> NoteVerifier {
    let server = launch.start(data);
    let alice = register_and_login(&server, "alice").await;
    let carol = register_and_login(&server, "carol").await;
    let dave = register_and_login(&server, "dave").await;
    grant(launch, data, "alice", "trader");
    grant(launch, data, "carol", "compliance");
    grant(launch, data, "carol", "privacy");
    grant(launch, data, "carol", "auditor");
    grant(launch, data, "dave", "privacy");
    entitle(launch, data, "alice", "ACC-9");
    // The roles apply at the next login.
    let carol = User {
        token: login(&server, "carol").await.1["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..carol
    };
    let dave = User {
        token: login(&server, "dave").await.1["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..dave
    };

    // Names and session details are sealed at rest.
    let names = db
        .texts(
            "SELECT username FROM server_users WHERE CAST(id AS TEXT) = $1",
            &alice.id,
        )
        .await;
    assert!(names[0].starts_with("sealed:v1:"), "{names:?}");
    assert!(!names[0].contains("alice"));
    let addresses = db
        .texts(
            "SELECT client_ip FROM server_session_info WHERE user_id = $1",
            &alice.id,
        )
        .await;
    assert!(!addresses.is_empty());
    assert!(
        addresses.iter().all(|a| a.starts_with("sealed:v1:")),
        "{addresses:?}"
    );

    // Alice is a natural-person client of ACC-9; she consents, trades, keeps an API key.
    let person = json!({ "person": {
        "first_names": "Alice", "surnames": "Martin", "birth_date": "1990-04-12",
        "nationalities": ["FR"], "user_id": alice.id,
    }});
    let (status, body) = crate::orders::call(
        &server,
        reqwest::Method::PUT,
        "/admin/clients/ACC-9",
        ("authorization", &format!("Bearer {}", carol.token)),
        Some(&person),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = post(
        &server,
        &alice,
        "/gdpr/consent",
        &json!({"purpose": "marketing.email", "granted": true, "policy_version": 2}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["channel"], "api");
    for (symbol, limit) in [("AAPL", "101"), ("AIR", "151")] {
        let order = json!({
            "symbol": symbol, "side": "buy", "order_type": "limit", "quantity": "3",
            "limit_price": limit, "account_id": "ACC-9",
            "notes": "<p>call Alice on +33 6 12 34 56 78</p>",
        });
        let (status, body) = post(&server, &alice, "/orders", &order).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body) = post(
        &server,
        &alice,
        "/api-keys",
        &json!({"name": "alice laptop", "scopes": ["orders:read"]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let refs = db
        .texts(
            "SELECT report_ref FROM server_executions WHERE owner = $1 ORDER BY report_ref",
            &alice.id,
        )
        .await;
    assert_eq!(refs.len(), 2, "both orders filled");
    for _ in 0..100 {
        let n = db
            .count(
                "SELECT COUNT(*) FROM finsec_mifid_reports WHERE reference = $1",
                &refs[1],
            )
            .await;
        if n > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Access: the export holds every source, with its manifest.
    let (status, request) = post(
        &server,
        &alice,
        "/gdpr/requests",
        &json!({"kind": "access"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{request}");
    assert_eq!(request["status"], "open");
    assert_eq!(request["verification"]["method"], "session");
    let due = time::OffsetDateTime::parse(
        request["due"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let days = (due - time::OffsetDateTime::now_utc()).whole_days();
    assert!((27..=31).contains(&days), "due in a month: {days}");
    let link = request["export"].as_str().unwrap().to_owned();
    let (status, disposition, body) = text(&server, &alice, &link).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let export: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(export["format"], "finsec.gdpr.export/1");
    let names: Vec<String> = sources(&export).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "mifid_reports",
            "executions",
            "orders",
            "sessions",
            "api_keys",
            "mfa",
            "consent",
            "audit",
            "profile"
        ]
    );
    assert_eq!(export["sources"]["profile"][0]["username"], "alice");
    assert_eq!(records(&export, "orders"), 2);
    assert_eq!(records(&export, "executions"), 2);
    assert_eq!(records(&export, "consent"), 1);
    assert_eq!(records(&export, "api_keys"), 1);
    assert!(records(&export, "sessions") >= 1);
    assert!(records(&export, "audit") >= 5);
    assert_eq!(
        export["sources"]["mifid_reports"][0]["client"]["surnames"], "Martin",
        "{}",
        export["sources"]["mifid_reports"]
    );
    assert!(
        records(&export, "mifid_reports") >= 3,
        "the client and two reports"
    );
    assert_eq!(export["sources"]["sessions"][0]["client_ip"], "127.0.0.1");
    let audited = export["sources"]["audit"].as_array().unwrap();
    assert!(
        audited.iter().any(|e| e["client_ip"] == "127.0.0.1"),
        "the audit details decrypt for the export"
    );
    assert!(
        !body.contains("carol") && !body.contains("dave"),
        "only alice's data"
    );
    // The download closes the request (right after the last byte is sent).
    let path = format!("/gdpr/requests/{}", request["id"].as_str().unwrap());
    let mut request = request.clone();
    for _ in 0..100 {
        request = get(&server, &alice, &path).await.1;
        if request["status"] == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(request["status"], "completed", "{request}");
    assert_eq!(request["outcome"]["sources"], 9);
    // Nobody else reads it.
    let (status, _) = get(
        &server,
        &dave,
        &format!("/gdpr/requests/{}", request["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "a privacy officer does");
    let (status, _, _) = text(
        &server,
        &alice,
        "/gdpr/requests/00000000-0000-7000-8000-000000000000/export",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A legal hold on alice's trades; her erasure then keeps them, and says why.
    let (status, hold) = post(
        &server,
        &carol,
        "/gdpr/holds",
        &json!({"case": "LIT-2026-017", "user_id": alice.id, "class": "trades",
                "reason": "dispute over the AAPL fill"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let (status, body) = post(
        &server,
        &alice,
        "/gdpr/requests",
        &json!({"kind": "erasure"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "erasing oneself needs the password: {body}"
    );
    let (status, body) = post(
        &server,
        &alice,
        "/gdpr/requests",
        &json!({"kind": "erasure", "password": "not it at all, no"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, erased) = post(
        &server,
        &alice,
        "/gdpr/requests",
        &json!({"kind": "erasure", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{erased}");
    let report = &erased["outcome"];
    assert_eq!(report["key_shredded"], false, "{report}");
    assert_eq!(report["holds"][0], hold["id"]);
    let line = |name: &str| {
        report["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["source"] == name)
            .unwrap()
            .clone()
    };
    for held in ["mifid_reports", "executions"] {
        assert_eq!(line(held)["action"], "kept", "{report}");
        let reason = line(held)["reason"].as_str().unwrap().to_owned();
        assert!(
            reason.contains("Art. 17(3)(e)") && reason.contains("LIT-2026-017"),
            "{reason}"
        );
    }
    assert_eq!(line("profile")["action"], "deleted");
    assert_eq!(line("orders")["action"], "pseudonymised");
    assert!(
        line("orders")["reason"]
            .as_str()
            .unwrap()
            .contains("Art. 17(3)(b)")
    );
    assert!(line("orders")["kept_until"].is_string(), "{report}");
    assert_eq!(line("consent")["records"], 1);

    // She can no longer log in; the held fills still name her.
    let (status, _) = login(&server, "alice").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM server_executions WHERE owner = $1",
            &alice.id
        )
        .await,
        2
    );

    // The hold is released by a second officer, never by who placed it.
    let release = format!("/gdpr/holds/{}/release", hold["id"].as_str().unwrap());
    let (status, body) = post(&server, &carol, &release, &json!({"reason": "settled"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "same_person");
    let (status, body) = post(
        &server,
        &dave,
        &release,
        &json!({"reason": "claim settled"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The officer completes the erasure.
    let (status, erased) = post(
        &server,
        &dave,
        "/gdpr/requests",
        &json!({"kind": "erasure", "user_id": alice.id, "note": "completion after LIT-2026-017"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{erased}");
    let report = &erased["outcome"];
    assert_eq!(report["key_shredded"], true, "{report}");
    assert_eq!(erased["verification"]["method"], "officer");
    let pseudonym = report["pseudonym"].as_str().unwrap().to_owned();
    assert!(pseudonym.starts_with("psn-"));

    // At rest: the profile is a tombstone, sessions and consent are gone, keys revoked,
    // fills carry the pseudonym, orders are kept without their notes, the key is destroyed.
    let names = db
        .texts(
            "SELECT username FROM server_users WHERE CAST(id AS TEXT) = $1",
            &alice.id,
        )
        .await;
    assert_eq!(names, [format!("erased:{pseudonym}")]);
    for (sql, expected) in [
        (
            "SELECT COUNT(*) FROM server_session_info WHERE user_id = $1",
            0,
        ),
        ("SELECT COUNT(*) FROM server_sessions WHERE user_id = $1", 0),
        (
            "SELECT COUNT(*) FROM server_api_keys WHERE CAST(user_id AS TEXT) = $1",
            0,
        ),
        (
            "SELECT COUNT(*) FROM finsec_api_keys WHERE owner = $1 AND revoked_at IS NULL",
            0,
        ),
        (
            "SELECT COUNT(*) FROM server_user_roles WHERE CAST(user_id AS TEXT) = $1",
            0,
        ),
        ("SELECT COUNT(*) FROM server_executions WHERE owner = $1", 0),
        (
            "SELECT COUNT(*) FROM server_orders WHERE CAST(owner AS TEXT) = $1",
            2,
        ),
        (
            "SELECT COUNT(*) FROM server_orders WHERE CAST(owner AS TEXT) = $1 AND notes IS NOT NULL",
            0,
        ),
    ] {
        assert_eq!(db.count(sql, &alice.id).await, expected, "{sql}");
    }
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM finsec_consent_events WHERE subject = $1",
            &format!("user:{}", alice.id)
        )
        .await,
        0
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM server_executions WHERE owner = $1",
            &pseudonym
        )
        .await,
        2
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM finsec_subject_keys WHERE subject_id = $1 AND wrapped_key IS NULL AND destroyed_at IS NOT NULL",
            &format!("user:{}", alice.id)
        )
        .await,
        1,
        "the user's key is destroyed"
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM finsec_subject_keys WHERE subject_id = $1 AND wrapped_key IS NULL",
            "client:ACC-9"
        )
        .await,
        1,
        "the client record's key is destroyed"
    );
    assert_eq!(
        db.count(
            "SELECT COUNT(*) FROM server_clients WHERE account_id = $1",
            "ACC-9"
        )
        .await,
        0
    );

    // The reports remain, the person replaced by the pseudonym.
    for reference in &refs {
        let (status, body) = get(&server, &carol, &format!("/reports/mifid/{reference}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let bodies = db
            .texts(
                "SELECT body FROM finsec_mifid_reports WHERE reference = $1",
                reference,
            )
            .await;
        assert_eq!(bodies.len(), 1);
        assert!(bodies[0].contains(&pseudonym), "{}", bodies[0]);
        assert!(!bodies[0].contains("MARTIN") && !bodies[0].contains("Martin"));
        assert!(!bodies[0].contains("1990-04-12"), "no birth date");
    }

    // The audit log: alice's events are still there, their address and user agent sealed
    // under her destroyed key; an inclusion proof verifies against a signed checkpoint.
    let events = db.audit_events_of(&alice.id).await;
    assert!(events.len() >= 5, "{}", events.len());
    assert!(
        events.iter().any(|e| e.contains("\"$enc\"")),
        "sealed details"
    );
    assert!(
        events.iter().all(|e| !e.contains("\"ip\":\"127.0.0.1\"")),
        "no address of hers in clear"
    );
    let (status, page) = get(
        &server,
        &carol,
        &format!("/audit?user={}&limit=1", alice.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let event = page["events"][0].clone();
    let id = event["event"]["id"].as_str().unwrap();
    let (status, checkpoint) = get(&server, &carol, "/audit/checkpoint").await;
    assert_eq!(status, StatusCode::OK, "{checkpoint}");
    let verifier = NoteVerifier::from_vkey(checkpoint["verifier_key"].as_str().unwrap()).unwrap();
    let (status, proof) = get(&server, &carol, &format!("/audit/proof/inclusion?id={id}")).await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let signed = verifier
        .verify(proof["checkpoint"].as_str().unwrap())
        .unwrap();
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

    // The requests stay on record; the due list is the privacy officer's.
    let (status, due) = get(&server, &dave, "/gdpr/requests?due_by=2100-01-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::OK, "{due}");
    let (status, _) = get(&server, &carol, "/gdpr/requests").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = get(&server, &carol, "/gdpr/retention/orders").await;
    assert_eq!(status, StatusCode::OK);

    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    verifier
}

#[tokio::test]
async fn erasure_end_to_end_on_sqlite() {
    let data = DataDir::new();
    let (prices, firm) = files(&data);
    let launch = Launch::new().args(["--reference-prices", &prices, "--firm-config", &firm]);
    // The database file exists once the server started; the flow opens it after.
    let server = launch.start(&data);
    drop(server.terminate());
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap();
    let db = Db::Sqlite(pool.clone());
    let verifier = erasure_flow(&launch, &data, &db).await;
    // After the erasure, the whole log still verifies against the witness file.
    let sink = finsec_audit::sqlite::SqliteSink::new(pool);
    let report = LogVerifier::new(verifier, "finsec-reference-server/audit")
        .with_witness(Arc::new(FileWitness::new(
            data.path().join("audit-witness.jsonl"),
        )))
        .verify(&sink)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
}

#[tokio::test]
async fn erasure_end_to_end_on_postgres() {
    let pg = finsec_testkit::postgres().await;
    let (url, _) = server_pg_url(&pg);
    let data = DataDir::new();
    let (prices, firm) = files(&data);
    let launch = Launch::new().args([
        "--reference-prices",
        &prices,
        "--firm-config",
        &firm,
        "--postgres-url",
        &url,
    ]);
    let db = Db::Postgres(pg.pool().clone());
    let verifier = erasure_flow(&launch, &data, &db).await;
    let sink = finsec_audit::postgres::PgSink::new(pg.pool().clone());
    let report = LogVerifier::new(verifier, "finsec-reference-server/audit")
        .verify(&sink)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    pg.cleanup().await;
}

#[tokio::test]
async fn retention_archives_then_deletes_and_holds_keep() {
    let data = DataDir::new();
    let (prices, firm) = files(&data);
    let policies = data.path().join("retention.toml");
    std::fs::write(&policies, "orders = \"1h\"\n").unwrap();
    let launch = Launch::new().args([
        "--reference-prices",
        &prices,
        "--firm-config",
        &firm,
        "--retention-policies",
        policies.to_str().unwrap(),
    ]);
    let server = launch.start(&data);
    let erin = register_and_login(&server, "erin").await;
    let fred = register_and_login(&server, "fred").await;
    let olga = register_and_login(&server, "olga").await;
    for (user, role) in [("erin", "trader"), ("fred", "trader"), ("olga", "privacy")] {
        grant(&launch, &data, user, role);
    }
    entitle(&launch, &data, "erin", "ACC-5");
    entitle(&launch, &data, "fred", "ACC-6");
    let order = |account: &str| {
        json!({
            "symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": "1",
            "limit_price": "101", "account_id": account,
        })
    };
    for (user, account, n) in [(&erin, "ACC-5", 3), (&fred, "ACC-6", 2)] {
        for _ in 0..n {
            let (status, body) = post(&server, user, "/orders", &order(account)).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    // Fred's orders are under a legal hold.
    let olga = User {
        token: login(&server, "olga").await.1["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..olga
    };
    let (status, hold) = post(
        &server,
        &olga,
        "/gdpr/holds",
        &json!({"case": "INV-7", "user_id": fred.id, "class": "orders", "reason": "inquiry"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    drop(server.terminate());
    // Two hours pass for the orders: age them in the database.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE server_orders SET created_at = created_at - 7200000000")
        .execute(&pool)
        .await
        .unwrap();
    let dry = launch
        .retention(&data, &["dry-run", "--class", "orders"])
        .success();
    assert!(dry.contains("would delete 3 record(s); 2 held"), "{dry}");
    assert!(dry.contains("INV-7"), "the hold is named: {dry}");
    let run = launch
        .retention(&data, &["run", "--class", "orders", "--batch", "2"])
        .success();
    assert!(
        run.contains("3 batch(es), 3 archived, 3 deleted, 2 held"),
        "{run}"
    );
    let owners: Vec<String> = sqlx::query_scalar("SELECT owner FROM server_orders")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        owners,
        [fred.id.clone(), fred.id.clone()],
        "only the held orders are left"
    );
    let archived: Vec<_> = std::fs::read_dir(data.path().join("archive").join("orders"))
        .unwrap()
        .collect();
    assert_eq!(
        archived.len(),
        2,
        "one file per batch that deleted something"
    );
    let deletions: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM finsec_audit_events WHERE action = 'gdpr.retention.delete'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(deletions, 2, "every deletion audited");
    // Fills have no expired record (7 years): nothing to do.
    let run = launch
        .retention(&data, &["run", "--class", "trades"])
        .success();
    assert!(run.contains("0 batch(es)"), "{run}");
    let bad = launch.retention(&data, &["run", "--class", "sessions"]);
    assert!(!bad.status.success());
}

#[tokio::test]
async fn rectification_restriction_and_consent_over_http() {
    let data = DataDir::new();
    let launch = Launch::new();
    let server = launch.start(&data);
    let frank = register_and_login(&server, "frank").await;
    let gina = register_and_login(&server, "gina").await;
    grant(&launch, &data, "gina", "privacy");
    let gina = User {
        token: login(&server, "gina").await.1["access_token"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..gina
    };

    // Consent: granted, then withdrawn just as easily; the current state and the history.
    for granted in [true, false] {
        let (status, body) = post(
            &server,
            &frank,
            "/gdpr/consent",
            &json!({"purpose": "research", "granted": granted, "policy_version": 1}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, consent) = get(&server, &frank, "/gdpr/consent").await;
    assert_eq!(status, StatusCode::OK, "{consent}");
    assert_eq!(consent["current"]["research"], false);
    assert_eq!(consent["history"].as_array().unwrap().len(), 2);
    let (status, body) = post(
        &server,
        &frank,
        "/gdpr/consent",
        &json!({"purpose": "Not A Purpose", "granted": true, "policy_version": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Rectification of the name: with the password; the new name logs in, the old does not.
    let (status, body) = post(
        &server,
        &frank,
        "/gdpr/requests",
        &json!({"kind": "rectification", "username": "frank.b"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the password is needed: {body}"
    );
    let (status, body) = post(
        &server,
        &frank,
        "/gdpr/requests",
        &json!({"kind": "rectification", "username": "frank.b", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["outcome"]["changed"]["profile"][0], "username");
    assert_eq!(login(&server, "frank").await.0, StatusCode::UNAUTHORIZED);
    let (status, tokens) = login(&server, "frank.b").await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let frank = User {
        token: tokens["access_token"].as_str().unwrap().to_owned(),
        ..frank
    };

    // Restriction: the sessions end and logging in is refused until an officer lifts it.
    let (status, body) = post(
        &server,
        &frank,
        "/gdpr/requests",
        &json!({"kind": "restriction", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = get(&server, &frank, "/gdpr/consent").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the session ended: {body}"
    );
    let (status, body) = login(&server, "frank.b").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "processing_restricted");
    let (status, body) = post(
        &server,
        &gina,
        "/gdpr/requests",
        &json!({"kind": "restriction", "user_id": frank.id, "restricted": false}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(login(&server, "frank.b").await.0, StatusCode::OK);

    // Officers' lists and refusals.
    let (status, body) = get(&server, &frank, "/gdpr/requests").await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "frank's token was revoked: {body}"
    );
    let (status, plan) = get(
        &server,
        &gina,
        &format!("/gdpr/users/{}/erasure-plan", frank.id),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["key_shredded"], false);
    let (status, _) = get(&server, &gina, "/gdpr/users/not-a-uuid/erasure-plan").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = get(&server, &gina, "/gdpr/retention/sessions").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = post(
        &server,
        &gina,
        "/gdpr/requests",
        &json!({"kind": "delete-everything"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    drop(server.terminate());
}

#[tokio::test]
async fn plain_rows_from_before_are_sealed_at_start() {
    let data = DataDir::new();
    let launch = Launch::new();
    let server = launch.start(&data);
    let hank = register_and_login(&server, "Hank").await;
    drop(server.terminate());
    // As an older server left them: the name and its case-folded key in clear, a session
    // with its address and user agent in clear.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap();
    sqlx::query("UPDATE server_users SET username = 'Hank', username_key = 'hank' WHERE id = $1")
        .bind(&hank.id)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO server_session_info (family, user_id, created_at, last_used_at, client_ip, \
         user_agent) VALUES ('legacy-family', $1, CAST(strftime('%s', 'now') AS INTEGER), \
         CAST(strftime('%s', 'now') AS INTEGER), '192.0.2.7', 'LegacyBrowser/1.0')",
    )
    .bind(&hank.id)
    .execute(&pool)
    .await
    .unwrap();
    let server = launch.start(&data);
    let (name, key): (String, String) =
        sqlx::query_as("SELECT username, username_key FROM server_users WHERE id = $1")
            .bind(&hank.id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(name.starts_with("sealed:v1:"), "{name}");
    assert!(key.starts_with("k:") && !key.contains("hank"), "{key}");
    let (ip, agent): (String, String) = sqlx::query_as(
        "SELECT client_ip, user_agent FROM server_session_info WHERE family = 'legacy-family'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(ip.starts_with("sealed:v1:") && agent.starts_with("sealed:v1:"));
    // Still Hank, by any case of the name.
    let (status, body) = login(&server, "hank").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, tokens) = login(&server, "Hank").await;
    let hank = User {
        token: tokens["access_token"].as_str().unwrap().to_owned(),
        ..hank
    };
    let (status, body) = post(&server, &hank, "/gdpr/requests", &json!({"kind": "access"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (_, _, export) = text(&server, &hank, body["export"].as_str().unwrap()).await;
    assert!(
        export.contains("192.0.2.7"),
        "the export opens the sealed details"
    );
    assert!(export.contains("\"username\":\"Hank\""), "{export}");
    drop(server.terminate());
}
