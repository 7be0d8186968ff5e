#![cfg(test)]
//! A child process appends as fast as it can and is killed with SIGKILL; afterwards every
//! event whose `append` had returned is in the log, at the position it was given, and the
//! log verifies. Files, SQLite and PostgreSQL.
//!
//! The child is this test binary again (a `harness = false` target with its own `main`),
//! started with `FINSEC_AUDIT_CRASH_CHILD` naming the sink: then it appends until killed.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use finsec_audit::{
    AuditEvent, AuditSink, EncodedEvent, EventTime, FileSink, LogVerifier, NoteSigner, Outcome,
    Precision,
};
use finsec_crypto::Key256;
use time::OffsetDateTime;
use uuid::Uuid;

const CHILD_VAR: &str = "FINSEC_AUDIT_CRASH_CHILD";
const WRITERS: usize = 4;

fn batch(n: usize) -> Vec<EncodedEvent> {
    let t = EventTime::new(OffsetDateTime::now_utc(), Precision::Microsecond, "system").unwrap();
    (0..n)
        .map(|i| {
            let e = AuditEvent::new("order.place", Outcome::Success, t.clone())
                .unwrap()
                .with_resource("order", &format!("crash-{i}"))
                .unwrap()
                .with_detail("padding", "x".repeat(i * 13 % 200))
                .unwrap();
            EncodedEvent::new(&e).unwrap()
        })
        .collect()
}

/// Appends forever from several tasks; prints `ack <first> <id> <id> ...` after each
/// append returns.
async fn append_forever(sink: Arc<dyn AuditSink>) {
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let sink = sink.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = w;
            loop {
                n = (n * 7 + 3) % 1_000_003;
                let events = batch(1 + n % 40);
                let done = sink.append(&events).await.unwrap();
                let ids: Vec<String> = events.iter().map(|e| e.id().to_string()).collect();
                println!("ack {} {}", done.first, ids.join(" "));
            }
        }));
    }
    // The tasks never end; the first to fail ends the child with its panic.
    let (done, _, _) = futures_util::future::select_all(tasks).await;
    done.unwrap();
}

/// The child: opens the sink `spec` names and appends until it is killed.
async fn crash_child(spec: &str) {
    let (kind, place) = spec.split_once(':').unwrap();
    let sink: Arc<dyn AuditSink> = match kind {
        "file" => Arc::new(FileSink::open(place).unwrap()),
        "sqlite" => {
            let options = sqlx::sqlite::SqliteConnectOptions::new()
                .filename(place)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10));
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            Arc::new(finsec_audit::sqlite::SqliteSink::new(pool))
        }
        "postgres" => {
            let (schema, url) = place.split_once('@').unwrap();
            let options = sqlx::postgres::PgConnectOptions::from_str(url)
                .unwrap()
                .options([("search_path", schema)]);
            let pool = sqlx::PgPool::connect_with(options).await.unwrap();
            Arc::new(finsec_audit::postgres::PgSink::new(pool))
        }
        other => panic!("unknown sink {other}"),
    };
    append_forever(sink).await;
}

/// Runs the child on `spec` until it has acknowledged `acks` appends (or 20 s passed),
/// kills it, and returns every acknowledged `(position, id)`.
fn run_and_kill(spec: &str, acks: usize) -> Vec<(u64, Uuid)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_VAR, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // Whole lines only, newline included: the kill can cut the last one short, and a cut
    // line is no acknowledgement.
    let mut lines = std::iter::from_fn(move || {
        let mut line = String::new();
        match stdout.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line),
        }
    });
    let mut acked = Vec::new();
    let mut seen = 0;
    let start = Instant::now();
    while seen < acks && start.elapsed() < Duration::from_secs(20) {
        let Some(line) = lines.next() else { break };
        if parse_ack(&line, &mut acked) {
            seen += 1;
        }
    }
    // SIGKILL: no destructor, no flush, no close.
    child.kill().unwrap();
    // What the child printed before it died was acknowledged before it died.
    for line in lines {
        parse_ack(&line, &mut acked);
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
    assert!(seen >= 50, "the child acknowledged only {seen} appends");
    acked
}

/// Reads one `ack <first> <id>...` line; a line without its newline (cut by the kill) or
/// of another kind is skipped.
fn parse_ack(line: &str, acked: &mut Vec<(u64, Uuid)>) -> bool {
    let Some(rest) = line.strip_suffix('\n').and_then(|l| l.strip_prefix("ack ")) else {
        return false;
    };
    let mut parts = rest.split(' ');
    let first: u64 = parts.next().unwrap().parse().unwrap();
    for (i, id) in parts.enumerate() {
        acked.push((first + i as u64, Uuid::parse_str(id).unwrap()));
    }
    true
}

async fn check_after_crash(sink: &dyn AuditSink, acked: &[(u64, Uuid)]) {
    let size = sink.size().await.unwrap();
    for (pos, id) in acked {
        assert_eq!(
            sink.position(*id).await.unwrap(),
            Some(*pos),
            "acknowledged event {id} at {pos} (log size {size})"
        );
    }
    let signer =
        NoteSigner::from_seed("audit.example.com/crash", Key256::from_bytes([2; 32])).unwrap();
    let report = LogVerifier::new(signer.verifier(), "audit.example.com/crash")
        .verify(sink)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, size);
    // The log takes appends again, after what survived.
    let more = batch(3);
    assert_eq!(sink.append(&more).await.unwrap().first, size);
}

async fn file_log_survives_sigkill() {
    let dir = tempfile::Builder::new()
        .prefix("finsec-audit-crash-")
        .tempdir()
        .unwrap();
    let mut total = 0;
    // Kill it three times; each run continues the log the last one left.
    for _ in 0..3 {
        let acked = run_and_kill(&format!("file:{}", dir.path().display()), 400);
        let sink = FileSink::open(dir.path()).unwrap();
        check_after_crash(&sink, &acked).await;
        total += acked.len();
        sink.close().await.unwrap();
    }
    assert!(total > 1_000, "{total} events acknowledged");
}

async fn sqlite_log_survives_sigkill() {
    let db = finsec_testkit::sqlite().await;
    finsec_audit::sqlite::migrate(db.pool()).await.unwrap();
    db.pool().close().await;
    for _ in 0..2 {
        let acked = run_and_kill(&format!("sqlite:{}", db.path().display()), 200);
        let sink = finsec_audit::sqlite::SqliteSink::new(db.new_pool().await);
        check_after_crash(&sink, &acked).await;
        sink.pool().close().await;
    }
}

async fn postgres_log_survives_sigkill() {
    let db = finsec_testkit::postgres().await;
    finsec_audit::postgres::migrate(db.pool()).await.unwrap();
    let spec = format!(
        "postgres:{}@{}",
        db.schema(),
        finsec_testkit::postgres_url()
    );
    for _ in 0..2 {
        let acked = run_and_kill(&spec, 200);
        let sink = finsec_audit::postgres::PgSink::new(db.new_pool().await);
        check_after_crash(&sink, &acked).await;
        sink.pool().close().await;
    }
    db.cleanup().await;
}

/// Runs the three crash tests in turn (a failure panics: a non-zero exit), or, as the child,
/// appends until killed.
fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    if let Ok(spec) = std::env::var(CHILD_VAR) {
        runtime.block_on(crash_child(&spec));
        return;
    }
    // `cargo test -- --list` and filters: this target has three tests and no others.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for name in [
            "file_log_survives_sigkill",
            "sqlite_log_survives_sigkill",
            "postgres_log_survives_sigkill",
        ] {
            println!("{name}: test");
        }
        return;
    }
    let filter = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .cloned()
        .unwrap_or_default();
    let mut ran = 0;
    for (name, test) in [
        ("file_log_survives_sigkill", 0),
        ("sqlite_log_survives_sigkill", 1),
        ("postgres_log_survives_sigkill", 2),
    ] {
        if !name.contains(filter.as_str()) {
            continue;
        }
        runtime.block_on(async {
            match test {
                0 => file_log_survives_sigkill().await,
                1 => sqlite_log_survives_sigkill().await,
                _ => postgres_log_survives_sigkill().await,
            }
        });
        println!("test {name} ... ok");
        ran += 1;
    }
    println!("crash tests: {ran} passed");
}
