//! finsec-audit: appends, proofs and verification, each next to the raw operation it wraps.
//!
//! Throughput is in events per second (`elem/s`). Every append is durable when it returns
//! (fdatasync for files, `COMMIT` with `synchronous = FULL` for SQLite, `COMMIT` for
//! PostgreSQL). Events are ~190-byte canonical encodings, built outside the timed part.
//!
//! - `audit_append/*`: one writer appending batches of 1,000 (`batch_1000`), two writers
//!   doing that at once (`2_writers`, two pools for the databases, one sink for files),
//!   and 32 callers each awaiting one event through the `AuditWriter` (`writer_32_callers`,
//!   group commit). `raw_*` rows do the same I/O without finsec: the same bytes written
//!   and fdatasynced, or a multi-row `INSERT` of `(idx, body)` in one transaction.
//! - `audit_proof/*`: an inclusion proof for a random event at 1M and 10M events (file
//!   sink: positional reads of the tree files; memory; PostgreSQL at 1M: one query), and
//!   checking a proof (`verify_inclusion`, hashing only).
//! - `audit_verify/*`: `LogVerifier` over a 1M-event file log, with and without parsing
//!   every event, next to raw SHA-256 leaf hashing of the same bytes and to
//!   `AuditEvent::from_canonical` over the same events on one core.
//!
//! - `audit_event/*`: `AuditEvent::from_canonical` (parse, validate, refuse any other
//!   spelling) on the bench's event and on an event shaped like the reference server's
//!   (actor, user agent, details), next to `serde_json` parsing the same bytes into a
//!   `serde_json::Value`.
//!
//! The 1M and 10M logs are built once under `target/finsec-audit-bench/` and reused.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use finsec_audit::{
    AuditEvent, AuditLog, AuditSink, AuditWriter, EncodedEvent, EventTime, FileSink, LogVerifier,
    MemorySink, NoteSigner, Outcome, Precision, WriterOptions, merkle,
};
use finsec_crypto::Key256;
use sha2::Digest as _;
use time::macros::datetime;

const ORIGIN: &str = "bench.finsec.dev/audit";
const BATCH: usize = 1_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn events(n: usize) -> Vec<EncodedEvent> {
    let t = EventTime::new(
        datetime!(2026-12-05 12:00 UTC),
        Precision::Microsecond,
        "system",
    )
    .unwrap();
    (0..n)
        .map(|i| {
            let e = AuditEvent::new("order.place", Outcome::Success, t.clone())
                .unwrap()
                .with_resource("order", &format!("o-{i}"))
                .unwrap()
                .with_request_id(&format!("req-{i:08}"))
                .unwrap();
            EncodedEvent::new(&e).unwrap()
        })
        .collect()
}

fn bench_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("../target"), PathBuf::from)
        .join("finsec-audit-bench")
        .join(name);
    std::fs::create_dir_all(&base).unwrap();
    base
}

fn fresh_dir(name: &str) -> PathBuf {
    let dir = bench_dir(name);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Times `iters` appends of fresh 1,000-event batches by `writers` concurrent writers
/// (each does `iters` batches; the throughput counts all of them).
fn time_batches<S: AuditSink + 'static>(
    rt: &tokio::runtime::Runtime,
    sinks: &[Arc<S>],
    iters: u64,
) -> Duration {
    let batches: Vec<Vec<Vec<EncodedEvent>>> = sinks
        .iter()
        .map(|_| (0..iters).map(|_| events(BATCH)).collect())
        .collect();
    rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = sinks
            .iter()
            .cloned()
            .zip(batches)
            .map(|(sink, batches)| {
                tokio::spawn(async move {
                    for b in batches {
                        sink.append(&b).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        start.elapsed()
    })
}

fn append(c: &mut Criterion) {
    let rt = rt();
    let mut g = c.benchmark_group("audit_append");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(BATCH as u64));

    let memory = Arc::new(MemorySink::new());
    g.bench_function("memory/batch_1000", |b| {
        b.iter_custom(|iters| time_batches(&rt, std::slice::from_ref(&memory), iters));
    });

    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("memory/2_writers", |b| {
        b.iter_custom(|iters| time_batches(&rt, &[memory.clone(), memory.clone()], iters));
    });
    g.throughput(Throughput::Elements(BATCH as u64));

    let file = Arc::new(FileSink::open(fresh_dir("append-file")).unwrap());
    g.bench_function("file/batch_1000", |b| {
        b.iter_custom(|iters| time_batches(&rt, std::slice::from_ref(&file), iters));
    });
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("file/2_writers", |b| {
        b.iter_custom(|iters| time_batches(&rt, &[file.clone(), file.clone()], iters));
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("raw_file_write_fdatasync/batch_1000", |b| {
        let path = fresh_dir("append-raw").join("raw.log");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        b.iter_custom(|iters| {
            let batches: Vec<Vec<u8>> = (0..iters)
                .map(|_| {
                    events(BATCH)
                        .iter()
                        .flat_map(|e| e.bytes().to_vec())
                        .collect()
                })
                .collect();
            let start = Instant::now();
            for buf in batches {
                f.write_all(&buf).unwrap();
                f.sync_data().unwrap();
            }
            start.elapsed()
        });
    });
    // 32 callers awaiting one event each, through the writer: group commit.
    {
        let sink = Arc::new(FileSink::open(fresh_dir("append-writer")).unwrap());
        let signer = NoteSigner::from_seed(ORIGIN, Key256::from_bytes([5; 32])).unwrap();
        let options = WriterOptions {
            checkpoint_every: u64::MAX,
            checkpoint_interval: Duration::from_secs(3_600),
            ..WriterOptions::default()
        };
        let writer = rt.block_on(async {
            AuditWriter::spawn(AuditLog::new(sink, ORIGIN, signer).unwrap(), options, None)
        });
        g.throughput(Throughput::Elements(32));
        g.bench_function("file/writer_32_callers", |b| {
            b.iter_custom(|iters| {
                let t = EventTime::new(
                    datetime!(2026-12-05 12:00 UTC),
                    Precision::Microsecond,
                    "system",
                )
                .unwrap();
                let per_caller: Vec<Vec<AuditEvent>> = (0..32)
                    .map(|_| {
                        (0..iters)
                            .map(|_| AuditEvent::new("login", Outcome::Failure, t.clone()).unwrap())
                            .collect()
                    })
                    .collect();
                rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = per_caller
                        .into_iter()
                        .map(|evs| {
                            let writer = writer.clone();
                            tokio::spawn(async move {
                                for e in evs {
                                    writer.append(&e).await.unwrap();
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                })
            });
        });
        g.throughput(Throughput::Elements(BATCH as u64));
    }

    // SQLite.
    let sqlite = rt.block_on(finsec_testkit::sqlite());
    rt.block_on(finsec_audit::sqlite::migrate(sqlite.pool()))
        .unwrap();
    let lite = Arc::new(finsec_audit::sqlite::SqliteSink::new(sqlite.pool().clone()));
    g.bench_function("sqlite/batch_1000", |b| {
        b.iter_custom(|iters| time_batches(&rt, std::slice::from_ref(&lite), iters));
    });
    let lite2 = Arc::new(finsec_audit::sqlite::SqliteSink::new(
        rt.block_on(sqlite.new_pool()),
    ));
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("sqlite/2_writers", |b| {
        b.iter_custom(|iters| time_batches(&rt, &[lite.clone(), lite2.clone()], iters));
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    rt.block_on(
        sqlx::query("CREATE TABLE raw_events (idx INTEGER PRIMARY KEY, body BLOB NOT NULL)")
            .execute(sqlite.pool()),
    )
    .unwrap();
    let mut next = 0i64;
    g.bench_function("raw_sqlite_insert/batch_1000", |b| {
        b.iter_custom(|iters| {
            let batches: Vec<Vec<EncodedEvent>> = (0..iters).map(|_| events(BATCH)).collect();
            rt.block_on(async {
                let start = Instant::now();
                for batch in batches {
                    let mut tx = sqlite.pool().begin().await.unwrap();
                    for chunk in batch.chunks(BATCH) {
                        let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                            "INSERT INTO raw_events (idx, body) ",
                        );
                        q.push_values(chunk, |mut row, e| {
                            row.push_bind(next).push_bind(e.bytes().to_vec());
                            next += 1;
                        });
                        q.build().execute(&mut *tx).await.unwrap();
                    }
                    tx.commit().await.unwrap();
                }
                start.elapsed()
            })
        });
    });

    // PostgreSQL.
    let pg = rt.block_on(finsec_testkit::postgres());
    rt.block_on(finsec_audit::postgres::migrate(pg.pool()))
        .unwrap();
    let pgs = Arc::new(finsec_audit::postgres::PgSink::new(pg.pool().clone()));
    g.bench_function("postgres/batch_1000", |b| {
        b.iter_custom(|iters| time_batches(&rt, std::slice::from_ref(&pgs), iters));
    });
    let pgs2 = Arc::new(finsec_audit::postgres::PgSink::new(
        rt.block_on(pg.new_pool()),
    ));
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("postgres/2_writers", |b| {
        b.iter_custom(|iters| time_batches(&rt, &[pgs.clone(), pgs2.clone()], iters));
    });
    g.throughput(Throughput::Elements(BATCH as u64));
    rt.block_on(
        sqlx::query("CREATE TABLE raw_events (idx BIGINT PRIMARY KEY, body BYTEA NOT NULL)")
            .execute(pg.pool()),
    )
    .unwrap();
    let mut next = 0i64;
    g.bench_function("raw_postgres_insert/batch_1000", |b| {
        b.iter_custom(|iters| {
            let batches: Vec<Vec<EncodedEvent>> = (0..iters).map(|_| events(BATCH)).collect();
            rt.block_on(async {
                let start = Instant::now();
                for batch in batches {
                    let mut tx = pg.pool().begin().await.unwrap();
                    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
                        "INSERT INTO raw_events (idx, body) ",
                    );
                    q.push_values(&batch, |mut row, e| {
                        row.push_bind(next).push_bind(e.bytes().to_vec());
                        next += 1;
                    });
                    q.build().execute(&mut *tx).await.unwrap();
                    tx.commit().await.unwrap();
                }
                start.elapsed()
            })
        });
    });
    g.finish();
    rt.block_on(pg.cleanup());
}

/// A file log of `n` events under `target/finsec-audit-bench/file-<n>`, built once.
fn file_log(rt: &tokio::runtime::Runtime, n: u64) -> FileSink {
    let dir = bench_dir(&format!("file-{n}"));
    let sink = FileSink::open(&dir).unwrap();
    let have = rt.block_on(sink.size()).unwrap();
    if have != n {
        drop(sink);
        let dir = fresh_dir(&format!("file-{n}"));
        let sink = FileSink::open(&dir).unwrap();
        eprintln!("building a {n}-event file log in {} ...", dir.display());
        let mut left = n;
        while left > 0 {
            let take = left.min(50_000);
            let batch = events(usize::try_from(take).unwrap());
            rt.block_on(sink.append(&batch)).unwrap();
            left -= take;
        }
        rt.block_on(sink.close()).unwrap();
        drop(sink);
        return FileSink::open(&dir).unwrap();
    }
    sink
}

fn time_proofs<S: AuditSink>(
    rt: &tokio::runtime::Runtime,
    log: &AuditLog<S>,
    size: u64,
    iters: u64,
) -> Duration {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            black_box(log.inclusion_proof_at(x % size, size).await.unwrap());
        }
        start.elapsed()
    })
}

fn proof(c: &mut Criterion) {
    let rt = rt();
    let signer = || NoteSigner::from_seed(ORIGIN, Key256::from_bytes([5; 32])).unwrap();
    let mut g = c.benchmark_group("audit_proof");
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    for n in [1_000_000u64, 10_000_000] {
        let log = AuditLog::new(file_log(&rt, n), ORIGIN, signer()).unwrap();
        g.bench_function(BenchmarkId::new("file_inclusion", n), |b| {
            b.iter_custom(|iters| time_proofs(&rt, &log, n, iters));
        });
        if n == 1_000_000 {
            // The same tree in memory.
            let memory = MemorySink::new();
            let mut next = 0;
            while next < n {
                let batch = rt.block_on(log.sink().read(next, 50_000)).unwrap();
                let encoded: Vec<EncodedEvent> = batch
                    .iter()
                    .map(|e| EncodedEvent::from_canonical(&e.bytes).unwrap())
                    .collect();
                rt.block_on(memory.append(&encoded)).unwrap();
                next += batch.len() as u64;
            }
            let mlog = AuditLog::new(memory, ORIGIN, signer()).unwrap();
            g.bench_function(BenchmarkId::new("memory_inclusion", n), |b| {
                b.iter_custom(|iters| time_proofs(&rt, &mlog, n, iters));
            });
            let p = rt.block_on(log.inclusion_proof_at(123_456, n)).unwrap();
            let root = rt.block_on(log.root_at(n)).unwrap();
            g.bench_function(BenchmarkId::new("verify_inclusion", n), |b| {
                b.iter(|| {
                    merkle::verify_inclusion(&p.leaf, p.index, p.size, &p.path, &root).unwrap();
                });
            });
            // PostgreSQL: the same events in a schema of its own.
            let pg = rt.block_on(finsec_testkit::postgres());
            rt.block_on(finsec_audit::postgres::migrate(pg.pool()))
                .unwrap();
            let sink = finsec_audit::postgres::PgSink::new(pg.pool().clone());
            let mut next = 0;
            while next < n {
                let batch = rt.block_on(log.sink().read(next, 5_000)).unwrap();
                let encoded: Vec<EncodedEvent> = batch
                    .iter()
                    .map(|e| EncodedEvent::from_canonical(&e.bytes).unwrap())
                    .collect();
                rt.block_on(sink.append(&encoded)).unwrap();
                next += batch.len() as u64;
            }
            let plog = AuditLog::new(sink, ORIGIN, signer()).unwrap();
            g.bench_function(BenchmarkId::new("postgres_inclusion", n), |b| {
                b.iter_custom(|iters| time_proofs(&rt, &plog, n, iters));
            });
            rt.block_on(pg.cleanup());
        }
    }
    g.finish();
}

fn verify(c: &mut Criterion) {
    let rt = rt();
    let n = 1_000_000u64;
    let sink = file_log(&rt, n);
    let verifier = || {
        NoteSigner::from_seed(ORIGIN, Key256::from_bytes([5; 32]))
            .unwrap()
            .verifier()
    };
    let mut g = c.benchmark_group("audit_verify");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(n));
    g.bench_function("file_1m/hashes_only", |b| {
        b.iter(|| {
            let report = rt
                .block_on(
                    LogVerifier::new(verifier(), ORIGIN)
                        .parse_events(false)
                        .verify(&sink),
                )
                .unwrap();
            assert!(report.is_ok() && report.events == n);
        });
    });
    g.bench_function("file_1m/parse_events", |b| {
        b.iter(|| {
            let report = rt
                .block_on(LogVerifier::new(verifier(), ORIGIN).verify(&sink))
                .unwrap();
            assert!(report.is_ok() && report.events == n);
        });
    });
    let bytes: Vec<Vec<u8>> = rt.block_on(async {
        let mut all = Vec::new();
        while (all.len() as u64) < n {
            let batch = sink.read(all.len() as u64, 50_000).await.unwrap();
            all.extend(batch.into_iter().map(|e| e.bytes));
        }
        all
    });
    g.bench_function("from_canonical_1m_one_core", |b| {
        b.iter(|| {
            for e in &bytes {
                black_box(AuditEvent::from_canonical(e).unwrap());
            }
        });
    });
    g.bench_function("canonical_id_1m_one_core", |b| {
        b.iter(|| {
            for e in &bytes {
                black_box(AuditEvent::canonical_id(e).unwrap());
            }
        });
    });
    g.bench_function("raw_sha256_leaves_1m", |b| {
        b.iter(|| {
            for e in &bytes {
                let mut h = sha2::Sha256::new();
                h.update([0u8]);
                h.update(e);
                black_box(h.finalize());
            }
        });
    });
    g.finish();
}

fn event_parse(c: &mut Criterion) {
    use finsec_audit::Actor;
    let t = EventTime::new(
        datetime!(2026-12-05 12:00 UTC),
        Precision::Microsecond,
        "system",
    )
    .unwrap();
    let server = AuditEvent::new("http.request", Outcome::Success, t)
        .unwrap()
        .with_actor(Actor {
            user: Some("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".into()),
            ip: Some("198.51.100.23".into()),
            user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) trading-desk/4.2".into()),
            ..Actor::default()
        })
        .unwrap()
        .with_resource("http", "POST /orders")
        .unwrap()
        .with_request_id("0193a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c")
        .unwrap()
        .with_duration_us(1_234)
        .with_detail("status", 201i64)
        .unwrap()
        .with_detail("bytes", 312i64)
        .unwrap();
    let shapes = [
        ("bench_event", events(1).remove(0).bytes().to_vec()),
        ("server_event", server.to_canonical().unwrap()),
    ];
    let mut g = c.benchmark_group("audit_event");
    for (name, bytes) in &shapes {
        g.bench_function(BenchmarkId::new("from_canonical", name), |b| {
            b.iter(|| AuditEvent::from_canonical(black_box(bytes)).unwrap());
        });
        g.bench_function(BenchmarkId::new("canonical_id", name), |b| {
            b.iter(|| AuditEvent::canonical_id(black_box(bytes)).unwrap());
        });
        g.bench_function(BenchmarkId::new("raw_serde_json_value", name), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(bytes)).unwrap());
        });
    }
    g.finish();
}

fn monitor(c: &mut Criterion) {
    use finsec_audit::{Actor, Monitor};
    let base = datetime!(2026-12-05 12:00 UTC);
    // A mix: 90% requests by 200 users from 200 addresses, 10% failed logins from 5,000
    // addresses against 1,000 accounts; 100 events per second of event time.
    let events: Vec<AuditEvent> = (0..100_000u32)
        .map(|i| {
            let t = EventTime::new(
                base + time::Duration::milliseconds(i64::from(i) * 10),
                Precision::Microsecond,
                "system",
            )
            .unwrap();
            if i % 10 == 0 {
                AuditEvent::new("auth.login", Outcome::Failure, t)
                    .unwrap()
                    .with_actor(Actor {
                        ip: Some(format!("203.0.{}.{}", (i / 10) % 20, i % 250).into()),
                        ..Actor::default()
                    })
                    .unwrap()
                    .with_resource("user", &format!("bidx-{}", i % 1_000))
                    .unwrap()
            } else {
                AuditEvent::new("http.request", Outcome::Success, t)
                    .unwrap()
                    .with_actor(Actor {
                        user: Some(format!("user-{}", i % 200)),
                        ip: Some(format!("198.51.100.{}", i % 200).into()),
                        ..Actor::default()
                    })
                    .unwrap()
                    .with_detail("bytes", 2_048i64)
                    .unwrap()
            }
        })
        .collect();
    let mut g = c.benchmark_group("audit_monitor");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.sample_size(20);
    g.bench_function("default_rules/100k_events", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let m = Monitor::with_default_rules().unwrap();
                let start = Instant::now();
                for e in &events {
                    black_box(m.observe(e));
                }
                total += start.elapsed();
            }
            total
        });
    });
    // The floor: one hash-map counter per (kind, key) the default rules touch.
    g.bench_function("raw_hashmap_counters/100k_events", |b| {
        b.iter(|| {
            let mut counts: std::collections::HashMap<(u8, String), u64> =
                std::collections::HashMap::new();
            for e in &events {
                let a = e.actor();
                for (k, key) in [
                    (0u8, a.user.clone()),
                    (
                        1,
                        a.ip.as_ref().and_then(|ip| match ip {
                            finsec_audit::Text::Plain(s) => Some(s.clone()),
                            finsec_audit::Text::Personal(_) => None,
                        }),
                    ),
                    (2, e.resource().map(|r| r.id.clone())),
                ] {
                    if let Some(key) = key {
                        *counts.entry((k, key)).or_default() += 1;
                    }
                }
            }
            black_box(counts.len())
        });
    });
    g.finish();
}

criterion_group!(benches, append, proof, verify, event_parse, monitor);
criterion_main!(benches);
