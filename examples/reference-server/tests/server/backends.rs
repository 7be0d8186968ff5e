//! PostgreSQL and Redis behind the real binary, and that their passwords stay out of
//! `Debug`, logs and error messages.
//!
//! PostgreSQL: each test gets a fresh schema from `finsec-testkit` and hands the server a
//! URL whose connections use it (`options[search_path]=<schema>`), so the server's
//! migrations and tables land there and the schema is dropped afterwards.
#![cfg(test)]

use clap::Parser as _;
use finsec_reference_server::Cli;
use finsec_testkit::PgTestDb;

use crate::support::{DataDir, Launch};

/// A password put into PostgreSQL URLs; the local test server trusts its users, so it is
/// never checked, but the server must never print it.
const PG_PASSWORD: &str = "pg-Pa55word-7c41";
const REDIS_PASSWORD: &str = "redis-Pa55word-0b9e";

/// The test server's URL with [`PG_PASSWORD`] added (unless it has a password already),
/// bound to `db`'s schema. Returns the URL and the password it holds.
pub(crate) fn server_pg_url(db: &PgTestDb) -> (String, String) {
    let base = finsec_testkit::postgres_url();
    let (scheme, rest) = base.split_once("://").unwrap();
    let (url, password) = match rest.split_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((_, password)) => (base.clone(), password.to_owned()),
            None => (
                format!("{scheme}://{userinfo}:{PG_PASSWORD}@{host}"),
                PG_PASSWORD.to_owned(),
            ),
        },
        None => (
            format!("{scheme}://postgres:{PG_PASSWORD}@{rest}"),
            PG_PASSWORD.to_owned(),
        ),
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    (
        format!("{url}{separator}options[search_path]={}", db.schema()),
        password,
    )
}

#[tokio::test]
async fn postgres_backend() {
    let db = finsec_testkit::postgres().await;
    let (url, password) = server_pg_url(&db);
    let data = DataDir::new();
    let launch = Launch::new().args(["--postgres-url", url.as_str()]);

    let server = launch.start(&data);
    let health = server.get_json("/health", 200).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["storage"]["backend"], "postgres", "{health}");
    assert_eq!(health["storage"]["ok"], true, "{health}");
    // The migrations ran in the test schema, and nothing was put in SQLite.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
    )
    .bind(db.schema())
    .fetch_all(db.pool())
    .await
    .unwrap();
    assert!(
        tables.iter().any(|t| t == "finsec_subject_keys"),
        "{tables:?}"
    );
    assert!(!data.path().join("finsec.db").exists());

    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    assert!(!logs.contains(&password), "password in the logs:\n{logs}");

    // The subcommands reach the same database.
    let rewrapped = launch.keys(&data, &["rewrap"]);
    assert!(!rewrapped.stdout.contains(&password) && !rewrapped.stderr.contains(&password));
    let rewrapped = rewrapped.success();
    assert!(rewrapped.contains("scanned:              0"), "{rewrapped}");

    db.cleanup().await;
}

#[tokio::test]
async fn postgres_failures_are_loud_and_redacted() {
    let data = DataDir::new();
    // Nothing listens on port 1: the server gives up after its connect timeout.
    let url = format!("postgres://finsec:{PG_PASSWORD}@127.0.0.1:1/finsec");
    let failure = Launch::new()
        .args(["--postgres-url", url.as_str()])
        .try_start(&data)
        .unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(
        failure
            .output
            .contains("postgres storage at postgres://finsec:***@127.0.0.1:1/finsec"),
        "{failure}"
    );
    assert!(!failure.output.contains(PG_PASSWORD), "{failure}");

    // A password with an unencoded '/' makes the URL unparsable; the message about it
    // must still hide the password.
    let url = format!("postgres://finsec:{PG_PASSWORD}/x@127.0.0.1:1/finsec");
    let failure = Launch::new()
        .args(["--postgres-url", url.as_str()])
        .try_start(&data)
        .unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(failure.output.contains("postgres storage at"), "{failure}");
    assert!(!failure.output.contains(PG_PASSWORD), "{failure}");
}

#[tokio::test]
async fn redis_backend() {
    // Fails with a message naming the URL and how to start Redis if it is down.
    let redis = finsec_testkit::redis().await;
    let data = DataDir::new();
    let url = finsec_testkit::redis_url();
    let server = Launch::new()
        .args(["--redis-url", url.as_str()])
        .start(&data);
    let health = server.get_json("/health", 200).await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["redis"], "ok", "{health}");
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    redis.cleanup().await;
}

#[tokio::test]
async fn unreachable_redis_fails_the_start() {
    let data = DataDir::new();
    let url = format!("redis://:{REDIS_PASSWORD}@127.0.0.1:1");
    let failure = Launch::new()
        .args(["--redis-url", url.as_str()])
        .try_start(&data)
        .unwrap_err();
    assert!(failure.status.is_some_and(|s| !s.success()), "{failure}");
    assert!(
        failure.output.contains("redis at redis://:***@127.0.0.1:1"),
        "{failure}"
    );
    assert!(!failure.output.contains(REDIS_PASSWORD), "{failure}");
}

#[test]
fn config_debug_hides_passwords() {
    let cli = Cli::try_parse_from([
        "finsec-reference-server",
        "--postgres-url",
        &format!("postgres://app:{PG_PASSWORD}@db:5432/finsec"),
        "--redis-url",
        &format!("redis://:{REDIS_PASSWORD}@cache:6379"),
    ])
    .unwrap();
    for debug in [
        format!("{:?}", cli.config),
        format!("{:#?}", cli.config),
        format!("{cli:?}"),
    ] {
        assert!(!debug.contains(PG_PASSWORD), "{debug}");
        assert!(!debug.contains(REDIS_PASSWORD), "{debug}");
        assert!(debug.contains("REDACTED"), "{debug}");
    }
}

#[tokio::test]
async fn json_logs_start_and_hide_passwords() {
    let db = finsec_testkit::postgres().await;
    let (url, password) = server_pg_url(&db);
    let data = DataDir::new();
    let server = Launch::new()
        .args(["--log-format", "json", "--postgres-url", url.as_str()])
        .start(&data);
    server.get_json("/health", 200).await;
    let (status, logs) = server.terminate();
    assert!(status.success(), "{logs}");
    for line in logs.lines() {
        let value: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(value["level"].is_string(), "{line}");
    }
    assert!(!logs.contains(&password), "{logs}");
    db.cleanup().await;
}
