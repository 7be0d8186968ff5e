//! finsec-ratelimit's Redis store next to raw Redis commands, over one connection.
//!
//! Every figure is one client issuing calls one after another on one `ConnectionManager`
//! (same client, same connection, same run), so the time per call is dominated by round
//! trips; throughput is reported in decisions per second (`elem/s`).
//!
//! Round trips per decision in parentheses:
//!
//! - `check_1_quota` (1): `RedisStore::check` with one GCRA quota.
//! - `check_2_quotas` (1): `RedisStore::check`, per-minute GCRA + per-hour fixed window.
//! - `check_batch_100` (1/100): `RedisStore::check_batch` of 100 checks (2 quotas, 100
//!   keys); throughput counts the 100 decisions.
//! - `check_batch_100_1_quota` (1/100): the same with one GCRA quota per check.
//!
//! Around `check_1_quota` and `check_batch_100_1_quota` the bench reads Redis's
//! `INFO commandstats` and prints the server's CPU time per `EVALSHA` over every call the
//! benchmark made (warm-up included): the Redis CPU cost of one one-quota decision.
//! - `original_incr_expire_x2` (4): the original design, INCR + EXPIRE of a minute counter
//!   and INCR + EXPIRE of an hour counter, each awaited in turn.
//! - `raw_evalsha_same_script_1_quota` (1): the store's script for one quota as a bare
//!   `EVALSHA`; the difference to `check_1_quota` is the store's client-side work.
//! - `trivial_evalsha` (1): `EVALSHA` of `return 1`, the floor for any one-round-trip script.
//!
//! The quotas are large enough that every check is allowed, so every decision writes (the
//! costlier path). The original design is not atomic across its four commands and its
//! windows are fixed; it is here for the cost of its round trips. For the server-side
//! reference, run `redis-benchmark -q -n 100000 script load "return 1"` and then
//! `redis-benchmark -q -n 100000 EVALSHA <sha> 0` (50 parallel clients by default, so a
//! throughput ceiling rather than a latency figure).
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use finsec_benches::timed;
use finsec_ratelimit::redis::RedisStore;
use finsec_ratelimit::{Algorithm, Check, Quota, RateLimitStore};

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

/// `EVALSHA` calls and microseconds of CPU Redis has counted so far.
fn evalsha_stats(rt: &tokio::runtime::Runtime, conn: &redis::aio::ConnectionManager) -> (u64, u64) {
    let mut conn = conn.clone();
    let info: String = rt
        .block_on(
            redis::cmd("INFO")
                .arg("commandstats")
                .query_async(&mut conn),
        )
        .unwrap();
    let line = info
        .lines()
        .find(|l| l.starts_with("cmdstat_evalsha:"))
        .unwrap_or("cmdstat_evalsha:calls=0,usec=0");
    let field = |name: &str| -> u64 {
        line.split([':', ','])
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("calls"), field("usec"))
}

/// Prints the Redis CPU per `EVALSHA` between two `evalsha_stats` readings.
fn report_redis_cpu(what: &str, before: (u64, u64), after: (u64, u64)) {
    let calls = after.0.saturating_sub(before.0);
    let usec = after.1.saturating_sub(before.1);
    if calls > 0 {
        let per_call = usec as f64 / calls as f64;
        eprintln!("{what}: Redis CPU {per_call:.2} us per EVALSHA over {calls} calls");
    }
}

fn bench_redis(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = rt.block_on(finsec_testkit::redis());
    let store = RedisStore::new(t.conn.clone(), &t.prefix)
        .unwrap()
        .with_timeout(Duration::from_secs(5))
        .unwrap();
    rt.block_on(store.load_script()).unwrap();

    let one = [Quota::per_second(n(u32::MAX))];
    let two = [
        Quota::per_minute(n(u32::MAX)).named("minute").unwrap(),
        Quota::per_hour(n(u32::MAX))
            .with_algorithm(Algorithm::FixedWindow)
            .unwrap()
            .named("hour")
            .unwrap(),
    ];
    let keys: Vec<String> = (0..100).map(|i| format!("user:{i}")).collect();

    let mut group = c.benchmark_group("ratelimit_redis");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(4));

    group.throughput(Throughput::Elements(1));
    let before = evalsha_stats(&rt, &t.conn);
    group.bench_function("check_1_quota", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let d = store.check(Check::new("single", &one)).await.unwrap();
                assert!(black_box(d).allowed());
            })
        })
    });
    report_redis_cpu("check_1_quota", before, evalsha_stats(&rt, &t.conn));
    group.bench_function("check_2_quotas", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let d = store.check(Check::new("single", &two)).await.unwrap();
                assert!(black_box(d).allowed());
            })
        })
    });

    let mut conn = t.conn.clone();
    group.bench_function("original_incr_expire_x2", |b| {
        let minute = t.key("orig:user:42:minute");
        let hour = t.key("orig:user:42:hour");
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| {
                let mut conn = conn.clone();
                let (minute, hour) = (&minute, &hour);
                async move {
                    let m: u64 = redis::cmd("INCR")
                        .arg(minute)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    let _: bool = redis::cmd("EXPIRE")
                        .arg(minute)
                        .arg(60)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    let h: u64 = redis::cmd("INCR")
                        .arg(hour)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    let _: bool = redis::cmd("EXPIRE")
                        .arg(hour)
                        .arg(3_600)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    black_box(m <= u64::from(u32::MAX) && h <= u64::from(u32::MAX));
                }
            })
        })
    });

    // The same script and arguments as `check_1_quota`, sent as a bare EVALSHA: the
    // difference to `check_1_quota` is the store's own client-side work.
    let raw_key = store.storage_key("raw", &one[0]);
    group.bench_function("raw_evalsha_same_script_1_quota", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| {
                let mut conn = conn.clone();
                let (sha, key) = (store.script_sha(), &raw_key);
                let (t, tau) = (one[0].emission_interval_micros(), one[0].tolerance_micros());
                async move {
                    let reply: Vec<i64> = redis::cmd("EVALSHA")
                        .arg(sha)
                        .arg(1)
                        .arg(key)
                        .arg(1)
                        .arg("g")
                        .arg(t)
                        .arg(tau)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    assert_eq!(black_box(reply).get(2), Some(&1));
                }
            })
        })
    });

    let trivial = redis::Script::new("return 1");
    let _: String = rt
        .block_on(trivial.prepare_invoke().load_async(&mut conn))
        .unwrap();
    group.bench_function("trivial_evalsha", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| {
                let mut conn = conn.clone();
                let sha = trivial.get_hash();
                async move {
                    let one: i64 = redis::cmd("EVALSHA")
                        .arg(sha)
                        .arg(0)
                        .query_async(&mut conn)
                        .await
                        .unwrap();
                    assert_eq!(black_box(one), 1);
                }
            })
        })
    });

    group.throughput(Throughput::Elements(100));
    let batch: Vec<Check<'_, '_>> = keys.iter().map(|k| Check::new(k, &two)).collect();
    group.bench_function("check_batch_100", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let decisions = store.check_batch(&batch).await.unwrap();
                assert!(black_box(decisions).iter().all(|d| d.allowed()));
            })
        })
    });
    let batch_one: Vec<Check<'_, '_>> = keys.iter().map(|k| Check::new(k, &one)).collect();
    let before = evalsha_stats(&rt, &t.conn);
    group.bench_function("check_batch_100_1_quota", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, |_| async {
                let decisions = store.check_batch(&batch_one).await.unwrap();
                assert!(black_box(decisions).iter().all(|d| d.allowed()));
            })
        })
    });
    report_redis_cpu(
        "check_batch_100_1_quota",
        before,
        evalsha_stats(&rt, &t.conn),
    );
    group.finish();

    rt.block_on(t.cleanup());
}

criterion_group!(benches, bench_redis);
criterion_main!(benches);
