//! The in-memory store: the whole conformance suite, and memory returning after a flood of
//! distinct keys expires.

#![cfg(test)]

use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::sync::Arc;

use finsec_ratelimit::memory::MemoryStore;
use finsec_ratelimit::testing::{
    Suite, rate_limit_store_conformance, rate_limit_store_two_instances,
};
use finsec_ratelimit::{Check, Quota, RateLimitStore};

/// A fresh store per case. The in-memory store lives in one process, so its "second
/// instance" is the same store shared (the default of [`Suite::new`]).
async fn suite() -> Suite<MemoryStore> {
    Suite::new(Arc::new(MemoryStore::new()), "memory")
}

finsec_ratelimit::rate_limit_store_tests!(suite());

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn whole_suite_twice_on_one_shared_store_behind_dyn() {
    let store: Arc<dyn RateLimitStore> = Arc::new(MemoryStore::with_shards(4));
    Suite::new(Arc::clone(&store), "first").run_all().await;
    rate_limit_store_conformance(Arc::clone(&store), "second").await;
    rate_limit_store_two_instances(Arc::clone(&store), Arc::clone(&store), "third").await;
    assert_eq!(store.backend(), "memory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exact_with_a_single_shard() {
    // Every key in one shard: the most contended layout.
    let suite = Suite::new(Arc::new(MemoryStore::with_shards(1)), "one-shard");
    suite.exact_under_concurrent_tasks().await;
    suite.exact_across_two_instances().await;
}

/// Resident set size of this process, in bytes (`/proc/self/statm`, second field, in pages).
fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

const MIB: usize = 1 << 20;
const KEYS: usize = 1_000_000;

/// One million distinct keys, each allowed once; once their state has expired, ordinary
/// checks of a single other key sweep them all within the bound the module documents (after a
/// pause, one check per shard), the tables shrink back to almost nothing, and the
/// process's resident memory returns to within 48 MiB of where it started (the peak is
/// about 135 MiB; what may stay is freed memory the allocator keeps for reuse).
#[test]
fn a_million_expired_keys_are_swept_and_memory_returns() {
    const T0: i64 = 1_700_000_000_000_000;
    let store = MemoryStore::new();
    let quotas = [Quota::per_minute(NonZeroU32::new(5).unwrap())];
    let rss_start = rss_bytes();
    let mut key = String::with_capacity(32);
    for i in 0..KEYS {
        key.clear();
        write!(key, "ip:10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255).unwrap();
        let d = store
            .check_at_micros(Check::new(&key, &quotas), T0 + i as i64)
            .unwrap();
        assert!(d.allowed());
    }
    assert_eq!(store.len(), KEYS);
    let peak_capacity = store.capacity();
    let peak_table_bytes = store.table_bytes();
    let rss_peak = rss_bytes();
    assert!(peak_capacity >= KEYS);
    assert!(
        rss_peak > rss_start + 100 * MIB,
        "the flood did not use memory?"
    );

    // Two minutes later every state has expired; one client keeps making requests.
    let later = T0 + 120_000_000;
    let busy = [Quota::per_second(NonZeroU32::new(1_000_000).unwrap())];
    let bound = store.shard_count();
    let mut calls = 0;
    while store.len() > 1 {
        assert!(
            calls <= bound,
            "{} keys left after {calls} calls",
            store.len()
        );
        store
            .check_at_micros(Check::new("busy", &busy), later + calls as i64)
            .unwrap();
        calls += 1;
    }
    assert_eq!(store.len(), 1);
    let capacity = store.capacity();
    let table_bytes = store.table_bytes();
    let rss_end = rss_bytes();
    eprintln!(
        "{KEYS} keys: capacity {peak_capacity} -> {capacity}, table bytes {} MiB -> {table_bytes}, \
         RSS {} -> {} -> {} MiB, swept after {calls} calls",
        peak_table_bytes / MIB,
        rss_start / MIB,
        rss_peak / MIB,
        rss_end / MIB,
    );
    assert!(capacity <= 64, "tables still hold {capacity} slots");
    assert!(
        table_bytes <= 64 * 1024,
        "tables still hold {table_bytes} bytes"
    );
    assert!(
        rss_end <= rss_start + 48 * MIB,
        "RSS {} MiB, started at {} MiB",
        rss_end / MIB,
        rss_start / MIB
    );

    // The keys are forgotten: each is allowed its full quota again.
    let d = store
        .check_at_micros(Check::new("ip:10.0.0.1", &quotas), later)
        .unwrap();
    assert_eq!(d.remaining(), 4);
    assert_eq!(store.sweep_at_micros(later + 60_000_001), 2);
    assert!(store.is_empty());
}
