//! finsec-ratelimit's in-memory store next to `governor`, with the same quotas and the same
//! threading, so the ratio is read from one run.
//!
//! - `single_key`: one key checked over and over. `governor_keyed` is the like-for-like
//!   comparison (governor's keyed limiter with that one key: a hash and a lookup per check, as
//!   finsec always does); `governor` is its direct limiter (no key at all), for reference.
//! - `keys_10k`: 10,000 keys checked round-robin (`governor`: its keyed limiter over
//!   `DashMap`, with `String` keys as finsec's are strings).
//! - `two_threads_*`: the same, with two threads hammering at once (`iter_custom`: each
//!   thread makes `iters` checks, the time reported is the wall time divided by `iters`). With
//!   one key, `governor_keyed` is again the like-for-like comparison and `governor` (direct)
//!   the reference.
//!
//! Each scenario runs with two quotas: `allowed`, so large that every check is allowed
//! (the writing path), and `api`, 10 per second with a burst of 20, so nearly every check is
//! denied (the reading path). Both limiters read their clock on every check: finsec the
//! system clock (`check_now`), governor its default `quanta` clock. `finsec_async` goes
//! through the async `RateLimitStore::check` (polled once: the memory store never waits).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;
use std::num::NonZeroU32;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use finsec_ratelimit::{Check, MemoryStore, Quota, RateLimitStore};
use governor::RateLimiter;

const KEYS: usize = 10_000;

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

/// The same quota for both crates: `(finsec, governor)`.
fn quotas(name: &str) -> (Quota, governor::Quota) {
    match name {
        // Never denies during a run: burst 2^32 − 1 at one per µs (finsec's floor) is over an
        // hour of headroom, and governor refills at 2^32 − 1 per second.
        "allowed" => (
            Quota::per_second(n(u32::MAX))
                .with_burst(n(u32::MAX))
                .unwrap(),
            governor::Quota::per_second(n(u32::MAX)).allow_burst(n(u32::MAX)),
        ),
        _ => (
            Quota::per_second(n(10)).with_burst(n(20)).unwrap(),
            governor::Quota::per_second(n(10)).allow_burst(n(20)),
        ),
    }
}

/// Polls the async check once: the memory store answers without waiting.
fn check_async(store: &MemoryStore, check: Check<'_, '_>) -> bool {
    let mut future = pin!(store.check(check));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(decision) => decision.unwrap().allowed(),
        Poll::Pending => panic!("the memory store never waits"),
    }
}

/// Runs `op(thread, i)` for `i` in `0..iters` on two threads at once; the wall time.
fn two_threads<F: Fn(usize, u64) + Sync>(iters: u64, op: &F) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..2 {
            s.spawn(move || {
                for i in 0..iters {
                    op(t, i);
                }
            });
        }
    });
    start.elapsed()
}

fn scenario(group: &mut BenchmarkGroup<'_, WallTime>, quota_name: &str) {
    let (quota, gquota) = quotas(quota_name);
    let quotas = [quota];
    let keys: Vec<String> = (0..KEYS)
        .map(|i| format!("ip:10.0.{}.{}", i / 256, i % 256))
        .collect();

    // Single key.
    let store = MemoryStore::new();
    group.bench_function(format!("{quota_name}/single_key/finsec"), |b| {
        b.iter(|| {
            black_box(
                store
                    .check_now(Check::new(black_box("ip:203.0.113.9"), &quotas))
                    .unwrap(),
            )
        });
    });
    group.bench_function(format!("{quota_name}/single_key/finsec_async"), |b| {
        b.iter(|| {
            black_box(check_async(
                &store,
                Check::new(black_box("ip:203.0.113.9"), &quotas),
            ))
        });
    });
    let direct = RateLimiter::direct(gquota);
    group.bench_function(format!("{quota_name}/single_key/governor"), |b| {
        b.iter(|| black_box(direct.check().is_ok()));
    });
    let keyed = RateLimiter::keyed(gquota);
    let key = "ip:203.0.113.9".to_owned();
    group.bench_function(format!("{quota_name}/single_key/governor_keyed"), |b| {
        b.iter(|| black_box(keyed.check_key(black_box(&key)).is_ok()));
    });

    // 10,000 keys, round-robin.
    let store = MemoryStore::new();
    let mut i = 0;
    group.bench_function(format!("{quota_name}/keys_10k/finsec"), |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(store.check_now(Check::new(&keys[i], &quotas)).unwrap())
        });
    });
    let keyed = RateLimiter::keyed(gquota);
    let mut i = 0;
    group.bench_function(format!("{quota_name}/keys_10k/governor"), |b| {
        b.iter(|| {
            i = (i + 1) % KEYS;
            black_box(keyed.check_key(&keys[i]).is_ok())
        });
    });

    // Two threads, one key.
    let store = Arc::new(MemoryStore::new());
    group.bench_function(format!("{quota_name}/two_threads_single_key/finsec"), |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|_, _| {
                black_box(
                    store
                        .check_now(Check::new("ip:203.0.113.9", &quotas))
                        .unwrap(),
                );
            })
        });
    });
    let keyed = RateLimiter::keyed(gquota);
    group.bench_function(
        format!("{quota_name}/two_threads_single_key/governor_keyed"),
        |b| {
            b.iter_custom(|iters| {
                two_threads(iters, &|_, _| {
                    black_box(keyed.check_key(&key).is_ok());
                })
            });
        },
    );
    let direct = RateLimiter::direct(gquota);
    group.bench_function(
        format!("{quota_name}/two_threads_single_key/governor"),
        |b| {
            b.iter_custom(|iters| {
                two_threads(iters, &|_, _| {
                    black_box(direct.check().is_ok());
                })
            });
        },
    );

    // Two threads, 10,000 keys (each thread walks them from its own offset).
    let store = MemoryStore::new();
    group.bench_function(format!("{quota_name}/two_threads_keys_10k/finsec"), |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|t, i| {
                let key = &keys[(t * KEYS / 2 + i as usize) % KEYS];
                black_box(store.check_now(Check::new(key, &quotas)).unwrap());
            })
        });
    });
    let keyed = RateLimiter::keyed(gquota);
    group.bench_function(format!("{quota_name}/two_threads_keys_10k/governor"), |b| {
        b.iter_custom(|iters| {
            two_threads(iters, &|t, i| {
                let key = &keys[(t * KEYS / 2 + i as usize) % KEYS];
                black_box(keyed.check_key(key).is_ok());
            })
        });
    });
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ratelimit");
    group
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    scenario(&mut group, "allowed");
    scenario(&mut group, "api");
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
