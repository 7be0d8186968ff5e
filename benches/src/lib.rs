//! Criterion benchmarks for finsec live in `benches/`; this library holds the helpers they
//! share. It also compiles the examples of the workspace README as doc tests, so they
//! cannot go stale.
#![forbid(unsafe_code)]

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

/// Runs `iters` sequential calls of `one` (given the iteration number) inside `rt` and
/// returns the time they took: the body of a criterion `iter_custom` for async calls.
pub fn timed<F, Fut>(rt: &Runtime, iters: u64, mut one: F) -> Duration
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            one(i).await;
        }
        start.elapsed()
    })
}

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;
