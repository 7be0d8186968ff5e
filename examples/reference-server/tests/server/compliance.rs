//! MiFID II against the real binary: accepted orders fill at the reference price, each
//! fill is audited and reported, a compliance officer reads the period as auth.016 XML
//! (valid against ESMA's schemas) or CSV, cancels a report, reviews best execution, and
//! the `reports mifid` command writes the same file; on SQLite and on PostgreSQL.

use std::fs;
use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use finsec_compliance::mifid::xml::XmlReportReader;
use finsec_compliance::mifid::{IdScheme, Party, Price, Quantity, Report, TradingCapacity};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::backends::server_pg_url;
use crate::orders::{User, bearer, call, entitle, get, grant, post, register_and_login};
use crate::support::{DataDir, Launch, Server};

pub(crate) const FIRM: &str = r#"
lei = "5493001KJTIIGC8Y1R12"
branch_country = "FR"
authority = "FR"
algorithm = "FINSECFILL1"

[[instruments]]
symbol = "AAPL"
isin = "US0378331005"
class = "equity"
venue = "XNAS"
currency = "USD"

[[instruments]]
symbol = "AIR"
isin = "NL0000235190"
class = "equity"
venue = "XPAR"
currency = "EUR"

[[decision_makers]]
username = "bob"
branch_country = "FR"
scheme = "NIDN"
id = "FR1234567890"
"#;

const CLIENT_LEI: &str = "529900T8BM49AURSDO55";

pub(crate) fn files(data: &DataDir) -> (String, String) {
    fs::create_dir_all(data.path()).unwrap();
    let prices = data.path().join("prices.csv");
    fs::write(&prices, "AAPL,100\nAIR,150.25\nMSFT,300\n").unwrap();
    let firm = data.path().join("firm.toml");
    fs::write(&firm, FIRM).unwrap();
    (
        prices.to_str().unwrap().to_owned(),
        firm.to_str().unwrap().to_owned(),
    )
}

async fn put(server: &Server, user: &User, path: &str, body: &Value) -> (StatusCode, Value) {
    let (name, value) = bearer(user);
    call(server, Method::PUT, path, (name, &value), Some(body)).await
}

/// GET `path` as `user`: status, content type and body text.
async fn fetch(server: &Server, user: &User, path: &str) -> (StatusCode, String, String) {
    let response = server
        .client()
        .get(server.url(path))
        .bearer_auth(&user.token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

fn order(
    account: &str,
    symbol: &str,
    side: &str,
    kind: &str,
    quantity: &str,
    limit: Option<&str>,
) -> Value {
    let mut o = json!({
        "symbol": symbol, "side": side, "order_type": kind, "quantity": quantity,
        "account_id": account,
    });
    if let Some(limit) = limit {
        o["limit_price"] = json!(limit);
    }
    o
}

fn read(xml: &[u8]) -> Vec<Report> {
    XmlReportReader::new(Cursor::new(xml))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Validates with xmllint against the ESMA schemas, when they are available.
fn validate(xml: &[u8], test: &str) {
    let Some(dir) = finsec_testkit::mifid::xsd_dir(test) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let imports: String = [
        ("head.003.001.01", "head.003.001.01.xsd"),
        ("head.001.001.01", "head.001.001.01_ESMAUG_1.0.0.xsd"),
        (
            "auth.016.001.01",
            "auth.016.001.01_ESMAUG_Reporting_1.1.0.xsd",
        ),
    ]
    .iter()
    .map(|(ns, file)| {
        format!(
            "<xs:import namespace=\"urn:iso:std:iso:20022:tech:xsd:{ns}\" schemaLocation=\"{}\"/>",
            dir.join(file).display()
        )
    })
    .collect();
    let schema = tmp.path().join("s.xsd");
    fs::write(
        &schema,
        format!("<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">{imports}</xs:schema>"),
    )
    .unwrap();
    let file = tmp.path().join("r.xml");
    fs::write(&file, xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("xmllint runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The whole flow on one server; `launch` decides the database and the clock's declared
/// divergence (`divergence_flagged`: beyond RTS 25's 1 ms for millisecond stamps).
async fn fills_reports_and_reviews(
    launch: &Launch,
    data: &DataDir,
    divergence_flagged: bool,
) -> String {
    let server = launch.start(data);
    let bob = register_and_login(&server, "bob").await;
    let carol = register_and_login(&server, "carol").await;
    grant(launch, data, "bob", "trader");
    grant(launch, data, "carol", "compliance");
    for account in ["ACC-1", "ACC-2", "ACC-3"] {
        entitle(launch, data, "bob", account);
    }

    // Clients: a person (French: CONCAT) on ACC-1, an entity on ACC-2, none on ACC-3.
    let person = json!({ "person": {
        "first_names": "Jean-Luc", "surnames": "de la Tour", "birth_date": "1975-06-30",
        "nationalities": ["FR", "US"],
    }});
    let (status, body) = put(&server, &bob, "/admin/clients/ACC-1", &person).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "a trader sets no client: {body}"
    );
    let (status, body) = put(&server, &carol, "/admin/clients/ACC-1", &person).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["id_scheme"], "CONCAT");
    assert_eq!(body["id_country"], "FR");
    assert!(
        !body.to_string().contains("Tour"),
        "no personal data in the answer: {body}"
    );
    let (status, body) = put(
        &server,
        &carol,
        "/admin/clients/ACC-2",
        &json!({ "lei": CLIENT_LEI }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Spain has no CONCAT: without the tax number the client cannot be identified.
    let spanish = json!({ "person": {
        "first_names": "Ana", "surnames": "Garcia", "birth_date": "1980-01-01",
        "nationalities": ["ES"],
    }});
    let (status, body) = put(&server, &carol, "/admin/clients/ACC-3", &spanish).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["errors"][0]["code"], "missing_identifier", "{body}");

    let start = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    // Filled at 100 (limit above the reference), at 150.25 (market sell), not filled (limit
    // under the reference), filled but not reportable (no client for ACC-3), not filled
    // (no such instrument in the firm configuration).
    for (o, status) in [
        (
            order("ACC-1", "AAPL", "buy", "limit", "10", Some("101")),
            StatusCode::CREATED,
        ),
        (
            order("ACC-2", "AIR", "sell", "market", "5", None),
            StatusCode::CREATED,
        ),
        (
            order("ACC-1", "AAPL", "buy", "limit", "10", Some("99")),
            StatusCode::CREATED,
        ),
        (
            order("ACC-3", "AAPL", "buy", "limit", "1", Some("100")),
            StatusCode::CREATED,
        ),
        (
            order("ACC-1", "MSFT", "buy", "limit", "1", Some("300")),
            StatusCode::CREATED,
        ),
    ] {
        let (got, body) = post(&server, &bob, "/orders", &o).await;
        assert_eq!(got, status, "{o}: {body}");
    }
    let end = time::OffsetDateTime::now_utc() + time::Duration::minutes(1);
    let period = format!(
        "from={}&to={}",
        start
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        end.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    )
    .replace('+', "%2B")
    .replace(':', "%3A");

    // A trader reads no report.
    let (status, body) = get(&server, &bob, &format!("/reports/mifid?{period}")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, kind, xml) = fetch(&server, &carol, &format!("/reports/mifid?{period}")).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_eq!(kind, "application/xml");
    validate(xml.as_bytes(), "server_reports_validate");
    let reports = read(xml.as_bytes());
    assert_eq!(reports.len(), 2, "two fills reported: {xml}");
    let Report::New(aapl) = &reports[0] else {
        panic!("{reports:?}")
    };
    assert_eq!(aapl.instrument.as_str(), "US0378331005");
    assert_eq!(aapl.venue.as_str(), "XNAS");
    assert_eq!(aapl.capacity, TradingCapacity::AnyOther);
    assert_eq!(aapl.quantity, Quantity::Units(10.into()));
    assert!(
        matches!(&aapl.price, Price::Monetary { value, currency } if *value == 100.into() && currency.code() == "USD")
    );
    let Party::Person(client) = &aapl.buyer.owners[0].party else {
        panic!("{aapl:?}")
    };
    assert_eq!(client.id().scheme(), IdScheme::Concat);
    assert_eq!(client.id().expose(), "FR19750630JEANLTOUR#");
    assert_eq!(
        aapl.seller.owners[0].party,
        Party::Mic("XNAS".parse().unwrap())
    );
    assert!(
        matches!(
            &aapl.executor,
            finsec_compliance::mifid::Executor::Person(_)
        ),
        "bob is a configured decision maker"
    );
    let Report::New(air) = &reports[1] else {
        panic!("{reports:?}")
    };
    assert_eq!(
        air.seller.owners[0].party,
        Party::Lei(CLIENT_LEI.parse().unwrap())
    );
    assert!(matches!(&air.price, Price::Monetary { value, .. } if value.to_string() == "150.25"));

    // CSV: a header and the two rows.
    let (status, kind, csv) = fetch(
        &server,
        &carol,
        &format!("/reports/mifid?{period}&format=csv"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert_eq!(csv.lines().count(), 3, "{csv}");

    // Cancel the AAPL report: once, then it is no longer live.
    let path = format!("/reports/mifid/{}/cancel", aapl.reference);
    let (status, body) = post(&server, &bob, &path, &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = post(&server, &carol, &path, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "CANC");
    assert_eq!(body["version"], 2);
    let execution_event = body["execution_event"].as_str().unwrap().to_owned();
    assert!(body["report_event"].is_string(), "{body}");
    let (status, body) = post(&server, &carol, &path, &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = post(
        &server,
        &carol,
        "/reports/mifid/NOSUCHREF/cancel",
        &json!({}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, xml) = fetch(&server, &carol, &format!("/reports/mifid?{period}")).await;
    let reports = read(xml.as_bytes());
    assert_eq!(reports.len(), 3);
    assert!(matches!(&reports[2], Report::Cancel(c) if c.reference == aapl.reference));
    validate(xml.as_bytes(), "server_reports_validate");

    // The reference's records with their lineage; the period's totals (the cancelled AAPL
    // report no longer counts).
    let (status, body) = get(
        &server,
        &carol,
        &format!("/reports/mifid/{}", aapl.reference),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let statuses: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["NEWT", "CANC"]);
    assert_eq!(body[0]["execution_event"], body[1]["execution_event"]);
    if divergence_flagged {
        assert_eq!(
            body[0]["clock"],
            json!({ "divergence_us": 1500, "allowed_us": 1000 }),
            "{body}"
        );
    } else {
        assert!(body[0]["clock"].is_null(), "{body}");
    }
    let (status, _) = get(&server, &carol, "/reports/mifid/NOSUCHREF").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = get(&server, &carol, &format!("/reports/mifid/summary?{period}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["count"], 1, "{body}");
    assert_eq!(body["by_currency"]["EUR"]["value"], "751.25", "{body}");

    // The fill's audit event is in the log: an auditor proves it.
    grant(launch, data, "carol", "auditor");
    let (status, body) = get(
        &server,
        &carol,
        &format!("/audit/proof/inclusion?id={execution_event}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = get(&server, &carol, "/audit?action=mifid.report&order=oldest").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["success", "success", "failure"],
        "ACC-3 has no client: {body}"
    );

    // Best execution: three fills at the reference price.
    let (status, body) = get(&server, &carol, &format!("/best-execution?{period}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["threshold_bps"], "50");
    assert_eq!(body["review"]["assessed"], 3, "{body}");
    assert_eq!(body["review"]["breaches"].as_array().unwrap().len(), 0);
    let venues: Vec<&str> = body["review"]["classes"][0]["top_venues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["venue"].as_str().unwrap())
        .collect();
    assert_eq!(venues, ["XNAS", "XPAR"], "{body}");

    // Once ACC-3's client is identified (a Spanish national number), its fill is reported.
    let spanish = json!({ "person": {
        "first_names": "Ana", "surnames": "Garcia", "birth_date": "1980-01-01",
        "nationalities": ["ES"], "identifiers": [{ "kind": "national", "number": "12345678Z" }],
    }});
    let (status, body) = put(&server, &carol, "/admin/clients/ACC-3", &spanish).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["id_scheme"].as_str(), body["id_country"].as_str()),
        (Some("NIDN"), Some("ES"))
    );
    let (_, _, xml) = fetch(&server, &carol, &format!("/reports/mifid?{period}")).await;
    let reports = read(xml.as_bytes());
    assert_eq!(reports.len(), 4, "{xml}");
    let Report::New(late) = &reports[3] else {
        panic!("{reports:?}")
    };
    let Party::Person(ana) = &late.buyer.owners[0].party else {
        panic!("{late:?}")
    };
    assert_eq!(ana.id().expose(), "ES12345678Z");
    validate(xml.as_bytes(), "server_reports_validate");

    // Bad periods, an empty one.
    let (status, _) = get(&server, &carol, "/reports/mifid?from=yesterday&to=now").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = fetch(
        &server,
        &carol,
        "/reports/mifid?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z",
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("order filled"), "{logs}");
    assert!(
        !logs.contains("Tour") && !logs.contains("JEANL"),
        "no personal data in the logs"
    );

    // The command writes the same file.
    let out = data.path().join("period.xml");
    let from = start
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let to = end
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let said = launch
        .reports(
            data,
            &[
                "mifid",
                "--from",
                &from,
                "--to",
                &to,
                "--out",
                out.to_str().unwrap(),
            ],
        )
        .success();
    assert!(said.contains("wrote 4 report records"), "{said}");
    let written = fs::read(&out).unwrap();
    assert_eq!(read(&written).len(), 4);
    validate(&written, "server_reports_validate");
    assert!(!Path::new(&out.with_extension("partial")).exists());
    air.reference.to_string()
}

#[tokio::test]
async fn fills_are_reported_and_reviewed_on_sqlite() {
    let data = DataDir::new();
    let (prices, firm) = files(&data);
    // A clock the operator declares 1.5 ms from UTC: every fill's report is flagged.
    let launch = Launch::new().args([
        "--reference-prices",
        &prices,
        "--firm-config",
        &firm,
        "--clock-divergence-us",
        "1500",
    ]);
    let air = fills_reports_and_reviews(&launch, &data, true).await;

    // A crash between keeping a fill and keeping its report, simulated by deleting the
    // report: the next start reports the fill again.
    let db = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("finsec.db").display()
    ))
    .await
    .unwrap();
    let deleted = sqlx::query("DELETE FROM finsec_mifid_reports WHERE reference = $1")
        .bind(&air)
        .execute(&db)
        .await
        .unwrap();
    assert_eq!(deleted.rows_affected(), 1);
    db.close().await;
    let server = launch.start(&data);
    let response = server
        .client()
        .post(server.url("/auth/login"))
        .json(&json!({ "username": "carol", "password": crate::orders::PASSWORD }))
        .send()
        .await
        .unwrap();
    let token = response.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let carol = User {
        id: String::new(),
        token,
    };
    let mut found = StatusCode::NOT_FOUND;
    for _ in 0..100 {
        let (status, _) = get(&server, &carol, &format!("/reports/mifid/{air}")).await;
        found = status;
        if status == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        found,
        StatusCode::OK,
        "the lost report is made again at start"
    );
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(logs.contains("unreported fills reconciled"), "{logs}");
}

#[tokio::test]
async fn fills_are_reported_and_reviewed_on_postgres() {
    let db = finsec_testkit::postgres().await;
    let (url, _) = server_pg_url(&db);
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
    let _ = fills_reports_and_reviews(&launch, &data, false).await;
    db.cleanup().await;
}

#[tokio::test]
async fn a_firm_configuration_that_does_not_load_stops_start_up() {
    let data = DataDir::new();
    fs::create_dir_all(data.path()).unwrap();
    let firm = data.path().join("firm.toml");
    fs::write(
        &firm,
        FIRM.replace("5493001KJTIIGC8Y1R12", "5493001KJTIIGC8Y1R13"),
    )
    .unwrap();
    let launch = Launch::new().args(["--firm-config", firm.to_str().unwrap()]);
    let failure = launch.try_start(&data).unwrap_err();
    assert!(failure.to_string().contains("--firm-config"), "{failure}");
}
