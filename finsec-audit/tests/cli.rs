#![cfg(test)]
//! The `finsec-audit` command on real file, SQLite and PostgreSQL logs: verify, witness,
//! prove and check-proof, and the exit status of each failure.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use finsec_audit::testing::Tamper as _;
use finsec_audit::{
    AuditEvent, AuditLog, AuditSink, EventTime, FileSink, FileWitness, NoteSigner, Outcome,
    Precision,
};
use finsec_crypto::Key256;
use time::OffsetDateTime;

const ORIGIN: &str = "audit.example.com/cli";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, Key256::from_bytes([6; 32])).unwrap()
}

fn vkey() -> String {
    signer().verifier().to_vkey()
}

fn events(n: usize) -> Vec<AuditEvent> {
    let t = EventTime::new(OffsetDateTime::now_utc(), Precision::Microsecond, "system").unwrap();
    (0..n)
        .map(|i| {
            AuditEvent::new("order.place", Outcome::Success, t.clone())
                .unwrap()
                .with_resource("order", &format!("o-{i}"))
                .unwrap()
        })
        .collect()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_finsec-audit"))
        .args(args)
        .env_remove("FINSEC_AUDIT_VKEY")
        .env_remove("FINSEC_AUDIT_POSTGRES_URL")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status(o: &Output) -> i32 {
    o.status.code().unwrap()
}

/// 50 events, checkpoints at 30 and 50, each given to a file witness.
async fn build<S: AuditSink + 'static>(sink: S, witness: &Path) -> (AuditLog<S>, Vec<AuditEvent>) {
    let log = AuditLog::new(sink, ORIGIN, signer())
        .unwrap()
        .with_witness(Arc::new(FileWitness::new(witness)));
    let evs = events(50);
    log.append(&evs[..30]).await.unwrap();
    log.checkpoint().await.unwrap();
    log.append(&evs[30..]).await.unwrap();
    log.checkpoint().await.unwrap();
    (log, evs)
}

#[tokio::test]
async fn a_file_log_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let witness = tmp.path().join("witness.jsonl");
    let (log, evs) = build(FileSink::open(&dir).unwrap(), &witness).await;
    log.sink().close().await.unwrap();
    drop(log);
    let d = dir.to_str().unwrap();
    let w = witness.to_str().unwrap();
    let key = vkey();

    let o = run(&[
        "verify",
        "--file",
        d,
        "--origin",
        ORIGIN,
        "--key",
        &key,
        "--witness",
        w,
    ]);
    assert_eq!(status(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("ok: 50 events"), "{}", text(&o));

    let o = run(&[
        "witness",
        "--file",
        d,
        "--origin",
        ORIGIN,
        "--key",
        &key,
        "--witness",
        w,
    ]);
    assert_eq!(status(&o), 0, "{}", text(&o));

    // A proof for event 7 at the newest checkpoint, checked on its own.
    let id = evs[7].id().to_string();
    let o = run(&["prove", "--file", d, "--id", &id]);
    assert_eq!(status(&o), 0, "{}", text(&o));
    let proof: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(proof["index"], 7);
    assert_eq!(proof["size"], 50);
    let proof_path = tmp.path().join("proof.json");
    std::fs::write(&proof_path, &o.stdout).unwrap();
    let note_path = tmp.path().join("checkpoint.txt");
    std::fs::write(&note_path, proof["checkpoint"].as_str().unwrap()).unwrap();
    let event_path = tmp.path().join("event.json");
    std::fs::write(&event_path, evs[7].to_canonical().unwrap()).unwrap();
    let (p, n, e) = (
        proof_path.to_str().unwrap(),
        note_path.to_str().unwrap(),
        event_path.to_str().unwrap(),
    );
    let key_file = tmp.path().join("vkey");
    std::fs::write(&key_file, &key).unwrap();
    let at_key = format!("@{}", key_file.display());
    let o = run(&[
        "check-proof",
        "--proof",
        p,
        "--checkpoint",
        n,
        "--origin",
        ORIGIN,
        "--key",
        &at_key,
        "--event",
        e,
    ]);
    assert_eq!(status(&o), 0, "{}", text(&o));
    // Another event with the same proof: refused.
    std::fs::write(&event_path, evs[8].to_canonical().unwrap()).unwrap();
    let o = run(&[
        "check-proof",
        "--proof",
        p,
        "--checkpoint",
        n,
        "--origin",
        ORIGIN,
        "--key",
        &key,
        "--event",
        e,
    ]);
    assert_eq!(status(&o), 1, "{}", text(&o));
    // A checkpoint signed by someone else: refused.
    let other = NoteSigner::from_seed(ORIGIN, Key256::from_bytes([9; 32])).unwrap();
    let o = run(&[
        "check-proof",
        "--proof",
        p,
        "--checkpoint",
        n,
        "--origin",
        ORIGIN,
        "--key",
        &other.verifier().to_vkey(),
    ]);
    assert_eq!(status(&o), 1, "{}", text(&o));
    // An unknown id.
    let o = run(&["prove", "--file", d, "--id", &uuid::Uuid::nil().to_string()]);
    assert_eq!(status(&o), 1, "{}", text(&o));

    // Edit an event: verify names it and fails.
    let sink = FileSink::open(&dir).unwrap();
    let mut bytes = sink.read(5, 1).await.unwrap().remove(0).bytes;
    let last = bytes.iter().rposition(u8::is_ascii_digit).unwrap();
    bytes[last] = if bytes[last] == b'9' {
        b'0'
    } else {
        bytes[last] + 1
    };
    sink.set_event(5, &bytes, None).await.unwrap();
    sink.close().await.unwrap();
    drop(sink);
    let o = run(&["verify", "--file", d, "--origin", ORIGIN, "--key", &key]);
    assert_eq!(status(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("event 5 was edited"), "{}", text(&o));
}

#[tokio::test]
async fn truncation_is_found_against_the_witness() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let witness = tmp.path().join("witness.jsonl");
    let (log, _) = build(FileSink::open(&dir).unwrap(), &witness).await;
    log.sink().truncate(40).await.unwrap();
    log.sink().close().await.unwrap();
    drop(log);
    let (d, w, key) = (dir.to_str().unwrap(), witness.to_str().unwrap(), vkey());
    let o = run(&[
        "witness",
        "--file",
        d,
        "--origin",
        ORIGIN,
        "--key",
        &key,
        "--witness",
        w,
    ]);
    assert_eq!(status(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("truncated"), "{}", text(&o));
    let o = run(&[
        "verify",
        "--file",
        d,
        "--origin",
        ORIGIN,
        "--key",
        &key,
        "--witness",
        w,
    ]);
    assert_eq!(status(&o), 1, "{}", text(&o));
}

#[tokio::test]
async fn sqlite_and_postgres_logs_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let witness = tmp.path().join("witness.jsonl");
    let lite = finsec_testkit::sqlite().await;
    finsec_audit::sqlite::migrate(lite.pool()).await.unwrap();
    build(
        finsec_audit::sqlite::SqliteSink::new(lite.pool().clone()),
        &witness,
    )
    .await;
    let key = vkey();
    let o = run(&[
        "verify",
        "--sqlite",
        lite.path().to_str().unwrap(),
        "--origin",
        ORIGIN,
        "--key",
        &key,
        "--witness",
        witness.to_str().unwrap(),
    ]);
    assert_eq!(status(&o), 0, "{}", text(&o));

    let pg = finsec_testkit::postgres().await;
    finsec_audit::postgres::migrate(pg.pool()).await.unwrap();
    let witness = tmp.path().join("pg-witness.jsonl");
    build(
        finsec_audit::postgres::PgSink::new(pg.pool().clone()),
        &witness,
    )
    .await;
    let url = finsec_testkit::postgres_url();
    let o = run(&[
        "verify",
        "--postgres",
        &url,
        "--schema",
        pg.schema(),
        "--origin",
        ORIGIN,
        "--key",
        &key,
        "--witness",
        witness.to_str().unwrap(),
    ]);
    assert_eq!(status(&o), 0, "{}", text(&o));
    pg.cleanup().await;
}

#[test]
fn bad_arguments_exit_with_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    // No store.
    assert_eq!(
        status(&run(&["verify", "--origin", ORIGIN, "--key", &vkey()])),
        2
    );
    // Not a log.
    let o = run(&["verify", "--file", d, "--origin", ORIGIN, "--key", &vkey()]);
    assert_eq!(status(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("not a file audit log"), "{}", text(&o));
    // A key that is not a key.
    let o = run(&[
        "verify", "--file", d, "--origin", ORIGIN, "--key", "garbage",
    ]);
    assert_eq!(status(&o), 2, "{}", text(&o));
}
