//! GDPR on the reference server's own code and database (SQLite, production settings), for
//! time and peak memory, each next to the raw sqlx work it amounts to.
//!
//! `cargo bench -p finsec-benches --bench gdpr` runs every case in a child process of its
//! own (this binary again, told which case by `FINSEC_BENCH_CASE`), so the peak RSS reported
//! (the kernel's `VmHWM`) is that case's alone:
//!
//! - `export`: a user with 100,000 orders (rows inserted with raw sqlx); the server's
//!   `DataSubjectRegistry::export` of that user (all nine sources; the orders source pages
//!   500 rows at a time) written to a file, next to `raw export`: one sqlx `fetch` stream of
//!   the same rows, each written as JSON with `serde_json` to a `BufWriter`. `idle` is the
//!   server opened and closed, the baseline of the peak.
//! - `erase`: that user's erasure through the server (every source, the key shredded), next
//!   to `raw erase`: the two statements it amounts to for the orders (notes emptied) and the
//!   user (tombstone), on a copy of the same database.
//! - `retention`: 1,000,000 orders past their period (owned by 10 users); a retention run
//!   through the server's `TableSource`, `FileArchive` (stream-encrypted files) and audit
//!   trail in batches of 1,000, next to `raw retention`: the same keyset pages read and
//!   deleted with sqlx, nothing archived or audited, on a copy.
#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    reason = "a benchmark program: it prints its figures and aborts on any failure"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use finsec_compliance::gdpr::retention::RetentionRun;
use finsec_reference_server::Server;
use finsec_reference_server::auth::users::Username;
use finsec_reference_server::config::Config;
use finsec_reference_server::gdpr::archive::FileArchive;
use finsec_reference_server::gdpr::retention::TableSource;
use finsec_reference_server::gdpr::sealing::user_subject;
use futures_util::TryStreamExt as _;
use sqlx::Row as _;
use time::OffsetDateTime;
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

const CASE: &str = "FINSEC_BENCH_CASE";
const DIR: &str = "FINSEC_BENCH_DIR";
const SIZES: &str = "FINSEC_BENCH_SIZES";

/// The subject's orders and the retained orders: 100,000 and 1,000,000 under `cargo bench`,
/// 1,000 and 5,000 under `cargo test --benches`.
fn sizes() -> (u64, u64) {
    let text = std::env::var(SIZES).unwrap();
    let (a, b) = text.split_once(' ').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib / 1024.0
}

fn rate(n: u64, d: Duration) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let r = n as f64 / d.as_secs_f64();
    format!("{r:.0}")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn open(dir: &Path) -> Server {
    Server::bind(&Config::with_data_dir(dir)).await.unwrap()
}

async fn close(server: Server) {
    server.state().audit().shutdown().await;
    server.state().storage().close().await;
}

async fn sqlite(dir: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("finsec.db"))
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full)
        .foreign_keys(true);
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

/// `n` orders of `owners` (round robin) created `age` ago, inserted 200 rows a statement.
async fn insert_orders(pool: &sqlx::SqlitePool, owners: &[Uuid], n: u64, age: time::Duration) {
    let created = OffsetDateTime::now_utc() - age;
    let mut tx = pool.begin().await.unwrap();
    let mut done = 0;
    while done < n {
        let rows = (n - done).min(200);
        let values: Vec<String> = (0..rows)
            .map(|_| {
                "(?, ?, 'ACC-1', 'AAPL', 'buy', 'limit', '10', '101.5', ?, 'accepted', ?, ?)"
                    .to_owned()
            })
            .collect();
        let sql = format!(
            "INSERT INTO server_orders (id, owner, account_id, symbol, side, order_type, \
             quantity, limit_price, notes, status, created_at, updated_at) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for i in 0..rows {
            let k = done + i;
            let at = (created + time::Duration::milliseconds(i64::try_from(k).unwrap()))
                .unix_timestamp_nanos()
                / 1000;
            let owner = owners[usize::try_from(k).unwrap() % owners.len()];
            query = query
                .bind(Uuid::now_v7().hyphenated().to_string())
                .bind(owner.hyphenated().to_string())
                .bind(format!("<p>order {k}</p>"))
                .bind(i64::try_from(at).unwrap())
                .bind(i64::try_from(at).unwrap());
        }
        query.execute(&mut *tx).await.unwrap();
        done += rows;
    }
    tx.commit().await.unwrap();
}

/// Registers `names` through the server's (sealed) user store; their ids.
async fn users(server: &Server, names: &[&str]) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for name in names {
        let id = Uuid::now_v7();
        let inserted = server
            .state()
            .auth()
            .users()
            .insert_user(
                id,
                &Username::parse(name).unwrap(),
                "$argon2id$bench",
                OffsetDateTime::now_utc(),
            )
            .await
            .unwrap();
        assert!(inserted);
        ids.push(id);
    }
    ids
}

fn subject_file(dir: &Path) -> PathBuf {
    dir.join("bench-subject")
}

/// The data directory of the export and erase cases: one user with 100,000 orders, and a
/// copy of its database for the raw erase.
async fn setup_export(dir: &Path) {
    let server = open(dir).await;
    let ids = users(&server, &["subject"]).await;
    close(server).await;
    let pool = sqlite(dir).await;
    insert_orders(&pool, &ids, sizes().0, time::Duration::days(1)).await;
    sqlx::query(&format!("VACUUM INTO '{}'", dir.join("copy.db").display()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    std::fs::write(subject_file(dir), ids[0].to_string()).unwrap();
}

fn subject(dir: &Path) -> Uuid {
    std::fs::read_to_string(subject_file(dir))
        .unwrap()
        .parse()
        .unwrap()
}

async fn idle(dir: &Path) {
    let server = open(dir).await;
    close(server).await;
    println!(
        "idle: server opened and closed, peak RSS {:.1} MiB",
        peak_rss_mib()
    );
}

async fn export(dir: &Path) {
    let user = subject(dir);
    let server = open(dir).await;
    let gdpr = Arc::clone(server.state().gdpr());
    let path = dir.join("export.json");
    let file = tokio::fs::File::create(&path).await.unwrap();
    let t = Instant::now();
    let manifest = gdpr
        .registry()
        .export(
            &user_subject(user),
            file,
            gdpr.policies(),
            gdpr.auditor(),
            "bench",
            OffsetDateTime::now_utc(),
        )
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(
        manifest
            .sources
            .iter()
            .find(|s| s.source.name == "orders")
            .unwrap()
            .records,
        sizes().0
    );
    let bytes = std::fs::metadata(&path).unwrap().len();
    close(server).await;
    println!(
        "export: {} records in {:.2} s ({} records/s), file {:.1} MiB, peak RSS {:.1} MiB",
        manifest.records(),
        took.as_secs_f64(),
        rate(manifest.records(), took),
        bytes as f64 / f64::from(1 << 20),
        peak_rss_mib()
    );
}

async fn raw_export(dir: &Path) {
    let user = subject(dir);
    let pool = sqlite(dir).await;
    let path = dir.join("raw-export.json");
    let file = tokio::fs::File::create(&path).await.unwrap();
    let mut out = tokio::io::BufWriter::with_capacity(64 * 1024, file);
    let t = Instant::now();
    let mut rows = sqlx::query(
        "SELECT id, account_id, symbol, side, order_type, quantity, limit_price, notes, \
         status, created_at, updated_at FROM server_orders WHERE owner = ? ORDER BY id",
    )
    .bind(user.hyphenated().to_string())
    .fetch(&pool);
    let mut n = 0u64;
    out.write_all(b"[").await.unwrap();
    while let Some(row) = rows.try_next().await.unwrap() {
        let record = serde_json::json!({
            "id": row.get::<String, _>(0),
            "account_id": row.get::<String, _>(1),
            "symbol": row.get::<String, _>(2),
            "side": row.get::<String, _>(3),
            "type": row.get::<String, _>(4),
            "quantity": row.get::<String, _>(5),
            "limit_price": row.get::<Option<String>, _>(6),
            "notes": row.get::<Option<String>, _>(7),
            "status": row.get::<String, _>(8),
            "created_at": row.get::<i64, _>(9),
            "updated_at": row.get::<i64, _>(10),
        });
        if n > 0 {
            out.write_all(b",\n").await.unwrap();
        }
        out.write_all(&serde_json::to_vec(&record).unwrap())
            .await
            .unwrap();
        n += 1;
    }
    out.write_all(b"]").await.unwrap();
    out.flush().await.unwrap();
    let took = t.elapsed();
    drop(rows);
    assert_eq!(n, sizes().0);
    println!(
        "raw export: {n} orders in {:.2} s ({} records/s), peak RSS {:.1} MiB",
        took.as_secs_f64(),
        rate(n, took),
        peak_rss_mib()
    );
}

async fn erase(dir: &Path) {
    let user = subject(dir);
    let server = open(dir).await;
    let gdpr = Arc::clone(server.state().gdpr());
    let t = Instant::now();
    let report = gdpr
        .erase(&user_subject(user), "bench", OffsetDateTime::now_utc())
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(report.key_shredded);
    let orders = report
        .sources
        .iter()
        .find(|s| s.source == "orders")
        .unwrap()
        .records;
    assert_eq!(orders, sizes().0);
    close(server).await;
    println!(
        "erase: {} sources, {orders} orders pseudonymised, key shredded, in {:.3} s, peak RSS {:.1} MiB",
        report.sources.len(),
        took.as_secs_f64(),
        peak_rss_mib()
    );
}

async fn raw_erase(dir: &Path) {
    let user = subject(dir).hyphenated().to_string();
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("copy.db"))
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let t = Instant::now();
    sqlx::query("UPDATE server_orders SET notes = NULL WHERE owner = ? AND notes IS NOT NULL")
        .bind(&user)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE server_users SET username = 'erased:x', username_key = 'erased:x', \
         password_hash = '!' WHERE id = ?",
    )
    .bind(&user)
    .execute(&pool)
    .await
    .unwrap();
    let took = t.elapsed();
    println!(
        "raw erase: orders' notes emptied and the user row replaced, in {:.3} s",
        took.as_secs_f64()
    );
}

/// The data directory of the retention cases: 1,000,000 orders eight years old, and a copy
/// of the database for the raw run.
async fn setup_retention(dir: &Path) {
    let server = open(dir).await;
    let names: Vec<String> = (0..10).map(|i| format!("owner{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ids = users(&server, &names).await;
    close(server).await;
    let pool = sqlite(dir).await;
    insert_orders(&pool, &ids, sizes().1, time::Duration::days(8 * 366)).await;
    sqlx::query(&format!("VACUUM INTO '{}'", dir.join("copy.db").display()))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn retention(dir: &Path) {
    let server = open(dir).await;
    let gdpr = Arc::clone(server.state().gdpr());
    let source = TableSource::new("orders", Arc::clone(&gdpr.env().store)).unwrap();
    let archive = FileArchive::new(
        dir.join("archive"),
        Arc::clone(gdpr.keyring()),
        finsec_reference_server::keys::pii_key_name().unwrap(),
    );
    let runner = RetentionRun::new(
        gdpr.policies(),
        &**gdpr.holds(),
        &**gdpr.runs(),
        &archive,
        gdpr.auditor(),
    )
    .with_batch(1000);
    let t = Instant::now();
    let state = runner
        .run(&source, OffsetDateTime::now_utc())
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(state.deleted, sizes().1);
    close(server).await;
    let archived: u64 = std::fs::read_dir(dir.join("archive").join("orders"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    println!(
        "retention: {} orders archived and deleted in {} batches, {:.1} s ({} records/s), \
         archive {:.1} MiB, peak RSS {:.1} MiB",
        state.deleted,
        state.batches,
        took.as_secs_f64(),
        rate(state.deleted, took),
        archived as f64 / f64::from(1 << 20),
        peak_rss_mib()
    );
}

async fn raw_retention(dir: &Path) {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("copy.db"))
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let cutoff =
        (OffsetDateTime::now_utc() - time::Duration::days(7 * 366)).unix_timestamp() * 1_000_000;
    let t = Instant::now();
    let mut after = String::new();
    let mut deleted = 0u64;
    loop {
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM server_orders WHERE created_at < ? AND id > ? ORDER BY id LIMIT 1000",
        )
        .bind(cutoff)
        .bind(&after)
        .fetch_all(&pool)
        .await
        .unwrap();
        let Some(last) = ids.last() else { break };
        after.clone_from(last);
        let sql = format!(
            "DELETE FROM server_orders WHERE id IN ({})",
            vec!["?"; ids.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for id in &ids {
            query = query.bind(id);
        }
        deleted += query.execute(&pool).await.unwrap().rows_affected();
    }
    let took = t.elapsed();
    assert_eq!(deleted, sizes().1);
    println!(
        "raw retention: {deleted} orders deleted in {:.1} s ({} records/s)",
        took.as_secs_f64(),
        rate(deleted, took)
    );
}

fn child(case: &str, dir: &Path, sizes: &str) {
    let status = Command::new(std::env::current_exe().unwrap())
        .env(CASE, case)
        .env(DIR, dir)
        .env(SIZES, sizes)
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success(), "{case} failed");
}

fn main() {
    if let (Ok(case), Ok(dir)) = (std::env::var(CASE), std::env::var(DIR)) {
        let dir = PathBuf::from(dir);
        let rt = runtime();
        match case.as_str() {
            "setup-export" => rt.block_on(setup_export(&dir)),
            "idle" => rt.block_on(idle(&dir)),
            "export" => rt.block_on(export(&dir)),
            "raw-export" => rt.block_on(raw_export(&dir)),
            "erase" => rt.block_on(erase(&dir)),
            "raw-erase" => rt.block_on(raw_erase(&dir)),
            "setup-retention" => rt.block_on(setup_retention(&dir)),
            "retention" => rt.block_on(retention(&dir)),
            "raw-retention" => rt.block_on(raw_retention(&dir)),
            other => unreachable!("unknown case {other}"),
        }
        return;
    }
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that quick.
    let sizes = if std::env::args().any(|a| a == "--bench") {
        "100000 1000000"
    } else {
        "1000 5000"
    };
    let export_dir = tempfile::tempdir().unwrap();
    for case in [
        "setup-export",
        "idle",
        "raw-export",
        "export",
        "raw-erase",
        "erase",
    ] {
        child(case, export_dir.path(), sizes);
    }
    let retention_dir = tempfile::tempdir().unwrap();
    for case in ["setup-retention", "raw-retention", "retention"] {
        child(case, retention_dir.path(), sizes);
    }
}
