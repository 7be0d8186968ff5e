//! The behavioural conformance suite every [`RateLimitStore`] runs (feature `testing`).
//!
//! A [`Suite`] holds the store under test, a second instance of it standing for another
//! application instance (for Redis, a store over another connection sharing the same key
//! prefix; for the in-memory store, which lives in one process, the same store shared), and a
//! key namespace: every case uses keys of the form `<namespace>:<case>:<part>`, so cases never
//! see each other's state and a store can be reused across suites with distinct namespaces.
//!
//! Each case is an async method that panics (fails the test) on a violation. Cases use real
//! time through [`RateLimitStore::check`], so they only assert what cannot depend on how long
//! the test takes: quotas span up to 366 days, during which a test's own duration refills
//! nothing, and fixed windows are chosen so no window boundary falls within the test.
//!
//! [`rate_limit_store_tests!`](crate::rate_limit_store_tests) writes one `#[tokio::test]` per
//! case:
//!
//! ```no_run
//! use std::sync::Arc;
//! use finsec_ratelimit::{MemoryStore, testing::Suite};
//!
//! async fn suite() -> Suite<MemoryStore> {
//!     Suite::new(Arc::new(MemoryStore::new()), "memory")
//! }
//!
//! finsec_ratelimit::rate_limit_store_tests!(suite());
//! ```
//!
//! The test crate needs `tokio` with the `macros` and `rt-multi-thread` features.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test support: a violated expectation must fail the test with a message"
)]

use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::decision::Decision;
use crate::error::Error;
use crate::quota::{Algorithm, MAX_PERIOD, Quota};
use crate::store::{Check, MAX_KEY_LEN, RateLimitStore};

/// The longest namespace a [`Suite`] accepts, in bytes (keys stay well below
/// [`MAX_KEY_LEN`]).
pub const MAX_NAMESPACE_LEN: usize = 160;

/// Every algorithm, in a fixed order ([`Algorithm::ALL`]).
pub const ALGORITHMS: [Algorithm; 3] = Algorithm::ALL;

/// The names of every case, in the order [`Suite::run_all`] runs them (each is a method of
/// [`Suite`] and a test written by [`rate_limit_store_tests!`](crate::rate_limit_store_tests)).
pub const CASES: [&str; 12] = [
    "gcra_single_quota",
    "fixed_window_single_quota",
    "sliding_window_single_quota",
    "multi_quota_denial_consumes_nothing",
    "cost_above_one",
    "cost_zero_consumes_nothing",
    "validation_errors_pass_through",
    "batch_equals_sequential_checks",
    "invalid_batch_counts_nothing",
    "exact_under_concurrent_tasks",
    "exact_with_costs_under_concurrent_tasks",
    "exact_across_two_instances",
];

/// Concurrent tasks in the exactness cases.
pub const TASKS: usize = 16;
/// Requests per task in the exactness cases.
pub const REQUESTS_PER_TASK: usize = 50;
/// The quota the exactness cases hammer: this many per 366 days (refill during a test is
/// impossible), far below `TASKS × REQUESTS_PER_TASK`.
pub const EXACT_QUOTA: u32 = 100;

type CleanupFn = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The store under test, a second instance of it, and a key namespace. See the
/// [module documentation](self).
pub struct Suite<S: ?Sized> {
    store: Arc<S>,
    second: Arc<S>,
    namespace: String,
    cleanup: Option<CleanupFn>,
}

impl<S: ?Sized + fmt::Debug> fmt::Debug for Suite<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suite")
            .field("store", &self.store)
            .field("second", &self.second)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl<S: RateLimitStore + ?Sized + 'static> Suite<S> {
    /// A suite over `store`, whose second instance is the same store, with every key under
    /// `namespace`.
    ///
    /// # Panics
    /// If the namespace is empty, longer than [`MAX_NAMESPACE_LEN`] or has a control character.
    pub fn new(store: Arc<S>, namespace: impl Into<String>) -> Self {
        let namespace = namespace.into();
        assert!(
            !namespace.is_empty()
                && namespace.len() <= MAX_NAMESPACE_LEN
                && !namespace.chars().any(char::is_control),
            "the namespace must be 1 to {MAX_NAMESPACE_LEN} bytes without control characters"
        );
        Self {
            second: Arc::clone(&store),
            store,
            namespace,
            cleanup: None,
        }
    }

    /// The same suite with another instance of the store (for example over another connection
    /// pool to the same server) that must share every limit with the first.
    pub fn with_second_instance(mut self, second: Arc<S>) -> Self {
        self.second = second;
        self
    }

    /// The same suite with an async clean-up (for example deleting the test's Redis keys) that
    /// [`finish`](Self::finish) runs.
    pub fn with_cleanup<F, Fut>(mut self, cleanup: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.cleanup = Some(Box::new(move || Box::pin(cleanup())));
        self
    }

    /// The store under test.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// Runs the clean-up, if any.
    pub async fn finish(self) {
        if let Some(cleanup) = self.cleanup {
            cleanup().await;
        }
    }

    /// Runs every case, in the order of [`CASES`].
    pub async fn run_all(&self) {
        self.gcra_single_quota().await;
        self.fixed_window_single_quota().await;
        self.sliding_window_single_quota().await;
        self.multi_quota_denial_consumes_nothing().await;
        self.cost_above_one().await;
        self.cost_zero_consumes_nothing().await;
        self.validation_errors_pass_through().await;
        self.batch_equals_sequential_checks().await;
        self.invalid_batch_counts_nothing().await;
        self.exact_under_concurrent_tasks().await;
        self.exact_with_costs_under_concurrent_tasks().await;
        self.exact_across_two_instances().await;
    }

    fn key(&self, case: &str, part: &str) -> String {
        let key = format!("{}:{case}:{part}", self.namespace);
        assert!(key.len() <= MAX_KEY_LEN, "key {key:?} is too long");
        key
    }

    async fn check<'q>(&self, key: &str, quotas: &'q [Quota], cost: u32) -> Decision<'q> {
        self.store
            .check(Check::new(key, quotas).with_cost(cost))
            .await
            .unwrap_or_else(|e| panic!("check of {key:?} cost {cost} failed: {e}"))
    }

    /// A window period for which no window boundary falls within the next hour, by the
    /// store's own clock (366 days, or 365 days in the hour before a 366-day boundary: the two
    /// sets of boundaries are weeks apart).
    async fn window_period(&self, case: &str) -> Duration {
        let probe = quota(Algorithm::FixedWindow, 1, 1, MAX_PERIOD, "probe");
        let key = self.key(case, "probe");
        let d = self.check(&key, std::slice::from_ref(&probe), 0).await;
        if d.quotas()[0].reset_after() > Duration::from_secs(3600) {
            MAX_PERIOD
        } else {
            MAX_PERIOD - Duration::from_secs(86_400)
        }
    }

    async fn long_quota(&self, case: &str, alg: Algorithm, limit: u32, name: &str) -> Quota {
        let period = match alg {
            Algorithm::FixedWindow | Algorithm::SlidingWindow => self.window_period(case).await,
            _ => MAX_PERIOD,
        };
        quota(alg, limit, limit, period, name)
    }

    /// GCRA with burst equal to the limit and with a smaller burst: remaining counts down,
    /// the request after the burst is denied, and `retry_after`/`reset_after` are one
    /// emission interval per request consumed.
    pub async fn gcra_single_quota(&self) {
        let q = quota(Algorithm::Gcra, 5, 5, MAX_PERIOD, "g");
        let t = Duration::from_micros(q.emission_interval_micros());
        let key = self.key("gcra_single_quota", "full");
        for (i, expected) in [4, 3, 2, 1, 0].into_iter().enumerate() {
            let d = self.check(&key, std::slice::from_ref(&q), 1).await;
            assert!(d.allowed(), "request {i} must be allowed");
            assert_eq!(d.remaining(), expected, "remaining after request {i}");
            assert_eq!(d.retry_after(), None);
            let reset = d.quotas()[0].reset_after();
            let consumed = u32::try_from(i + 1).unwrap();
            assert!(
                reset <= t * consumed && reset + HOUR >= t * consumed,
                "{reset:?}"
            );
        }
        let denied = self.check(&key, std::slice::from_ref(&q), 1).await;
        assert!(
            !denied.allowed(),
            "the request after the burst must be denied"
        );
        assert_eq!(denied.remaining(), 0);
        let retry = denied.retry_after().unwrap();
        assert!(
            retry <= t && retry + HOUR >= t,
            "retry after {retry:?}, interval {t:?}"
        );

        let q = quota(Algorithm::Gcra, 100, 3, MAX_PERIOD, "g");
        let t = Duration::from_micros(q.emission_interval_micros());
        let key = self.key("gcra_single_quota", "burst");
        let remaining = [
            self.check(&key, std::slice::from_ref(&q), 1).await,
            self.check(&key, std::slice::from_ref(&q), 1).await,
            self.check(&key, std::slice::from_ref(&q), 1).await,
        ]
        .map(|d| {
            assert!(d.allowed());
            d.remaining()
        });
        assert_eq!(remaining, [2, 1, 0]);
        let denied = self.check(&key, std::slice::from_ref(&q), 1).await;
        assert!(!denied.allowed(), "a burst of 3 allows 3 at once");
        let retry = denied.retry_after().unwrap();
        assert!(
            retry <= t && retry + HOUR >= t,
            "retry after {retry:?}, interval {t:?}"
        );
    }

    /// A fixed window: `limit` requests, then denied until the window ends.
    pub async fn fixed_window_single_quota(&self) {
        let case = "fixed_window_single_quota";
        let q = self.long_quota(case, Algorithm::FixedWindow, 4, "f").await;
        let key = self.key(case, "k");
        let first = self.check(&key, std::slice::from_ref(&q), 1).await;
        assert!(first.allowed());
        assert_eq!(first.remaining(), 3);
        let window_end = first.quotas()[0].reset_after();
        assert!(window_end <= q.period() && window_end > HOUR);
        for expected in [2, 1, 0] {
            let d = self.check(&key, std::slice::from_ref(&q), 1).await;
            assert!(d.allowed());
            assert_eq!(d.remaining(), expected);
        }
        let denied = self.check(&key, std::slice::from_ref(&q), 1).await;
        assert!(!denied.allowed());
        assert_eq!(denied.remaining(), 0);
        let qd = &denied.quotas()[0];
        assert_eq!(
            qd.retry_after(),
            qd.reset_after(),
            "retry when the window ends"
        );
        assert!(qd.retry_after() <= window_end && qd.retry_after() + HOUR >= window_end);
    }

    /// A sliding window: `limit` requests, then denied; the retry lies in the next window,
    /// once the weight of this window's count has decayed enough.
    pub async fn sliding_window_single_quota(&self) {
        let case = "sliding_window_single_quota";
        let q = self
            .long_quota(case, Algorithm::SlidingWindow, 4, "s")
            .await;
        let key = self.key(case, "k");
        for expected in [3, 2, 1, 0] {
            let d = self.check(&key, std::slice::from_ref(&q), 1).await;
            assert!(d.allowed());
            assert_eq!(d.remaining(), expected);
            assert!(d.quotas()[0].reset_after() <= q.period());
        }
        let denied = self.check(&key, std::slice::from_ref(&q), 1).await;
        assert!(!denied.allowed());
        let qd = &denied.quotas()[0];
        // In the next window the 4 requests weigh ceil(4 × (P − e) / P); one more fits once
        // that is at most 3, i.e. e ≥ P − floor(3P / 4).
        let p = q.period_micros();
        let extra = Duration::from_micros(p - 3 * p / 4);
        assert_eq!(qd.retry_after(), qd.reset_after() + extra);
    }

    /// Several quotas of different algorithms: a request denied by one quota consumes nothing
    /// from the others, and each quota's answer is reported in order.
    pub async fn multi_quota_denial_consumes_nothing(&self) {
        let case = "multi_quota_denial_consumes_nothing";
        let a = self.long_quota(case, Algorithm::FixedWindow, 3, "a").await;
        let b = quota(Algorithm::Gcra, 5, 5, MAX_PERIOD, "b");
        let c = self
            .long_quota(case, Algorithm::SlidingWindow, 10, "c")
            .await;
        let all = [a.clone(), b.clone(), c.clone()];
        let key = self.key(case, "k");
        for _ in 0..3 {
            assert!(self.check(&key, &all, 1).await.allowed());
        }
        let denied = self.check(&key, &all, 1).await;
        assert!(!denied.allowed());
        let names: Vec<&str> = denied.quotas().iter().map(|q| q.quota().name()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        let per_quota: Vec<(bool, u64)> = denied
            .quotas()
            .iter()
            .map(|q| (q.allowed(), q.remaining()))
            .collect();
        assert_eq!(per_quota, [(false, 0), (true, 2), (true, 7)]);
        assert_eq!(denied.retry_after(), Some(denied.quotas()[0].retry_after()));
        assert_eq!(denied.tightest().unwrap().quota().name(), "a");
        // Repeated denials consume nothing either.
        for _ in 0..5 {
            assert!(!self.check(&key, &all, 1).await.allowed());
        }
        let b_alone = self.check(&key, std::slice::from_ref(&b), 1).await;
        assert!(b_alone.allowed());
        assert_eq!(
            b_alone.remaining(),
            1,
            "denied checks consumed from quota b"
        );
        let c_alone = self.check(&key, std::slice::from_ref(&c), 0).await;
        assert_eq!(
            c_alone.remaining(),
            7,
            "denied checks consumed from quota c"
        );

        // A cost one quota can take and another cannot.
        let x = quota(Algorithm::Gcra, 10, 10, MAX_PERIOD, "x");
        let y = self.long_quota(case, Algorithm::FixedWindow, 4, "y").await;
        let both = [x.clone(), y];
        let key = self.key(case, "cost");
        let d = self.check(&key, &both, 3).await;
        assert!(d.allowed());
        assert_eq!(d.quotas()[0].remaining(), 7);
        assert_eq!(d.quotas()[1].remaining(), 1);
        let d = self.check(&key, &both, 2).await;
        assert!(!d.allowed());
        assert!(d.quotas()[0].allowed() && !d.quotas()[1].allowed());
        assert_eq!(d.quotas()[0].remaining(), 7);
        let x_alone = self.check(&key, std::slice::from_ref(&x), 0).await;
        assert_eq!(
            x_alone.remaining(),
            7,
            "a denied cost-2 request consumed from x"
        );
    }

    /// Costs above one, for every algorithm: a cost that does not fit is denied without
    /// consuming, a smaller one that fits is then allowed.
    pub async fn cost_above_one(&self) {
        let case = "cost_above_one";
        for alg in ALGORITHMS {
            let q = self.long_quota(case, alg, 10, "q").await;
            let key = self.key(case, alg.as_str());
            let qs = std::slice::from_ref(&q);
            let steps = [
                (4, true, 6),
                (4, true, 2),
                (3, false, 2),
                (2, true, 0),
                (1, false, 0),
            ];
            for (i, (cost, allowed, remaining)) in steps.into_iter().enumerate() {
                let d = self.check(&key, qs, cost).await;
                assert_eq!(d.allowed(), allowed, "{alg} step {i}");
                assert_eq!(d.remaining(), remaining, "{alg} step {i}");
            }
            // A request of the whole capacity is allowed on a fresh key.
            let key = self.key(case, &format!("{alg}-whole"));
            let d = self.check(&key, qs, 10).await;
            assert!(d.allowed(), "{alg}");
            assert_eq!(d.remaining(), 0);
        }
    }

    /// A cost of 0 is always allowed, reports what is left, and consumes nothing, even when
    /// the quota is exhausted.
    pub async fn cost_zero_consumes_nothing(&self) {
        let case = "cost_zero_consumes_nothing";
        for alg in ALGORITHMS {
            let q = self.long_quota(case, alg, 3, "q").await;
            let qs = std::slice::from_ref(&q);
            let key = self.key(case, alg.as_str());
            for _ in 0..5 {
                let d = self.check(&key, qs, 0).await;
                assert!(d.allowed(), "{alg}");
                assert_eq!(d.remaining(), 3, "{alg}");
            }
            let d = self.check(&key, qs, 3).await;
            assert!(d.allowed(), "{alg}: cost-0 checks consumed something");
            for _ in 0..3 {
                let d = self.check(&key, qs, 0).await;
                assert!(d.allowed(), "{alg}");
                assert_eq!(d.remaining(), 0, "{alg}");
            }
            assert!(!self.check(&key, qs, 1).await.allowed(), "{alg}");
        }
    }

    /// Invalid checks fail with exactly the error [`Check::validate`] gives (not a backend
    /// error), in `check` and in `check_batch`, and count nothing.
    pub async fn validation_errors_pass_through(&self) {
        let case = "validation_errors_pass_through";
        let q = quota(Algorithm::Gcra, 5, 5, MAX_PERIOD, "q");
        let small = quota(Algorithm::Gcra, 5, 2, MAX_PERIOD, "small");
        let same_name = quota(Algorithm::Gcra, 7, 7, MAX_PERIOD, "q");
        let key = self.key(case, "k");
        let long_key = "k".repeat(MAX_KEY_LEN + 1);
        let control_key = format!("{key}\n");
        let one = [q.clone()];
        let dup = [q.clone(), same_name];
        let big = [q.clone(), small];
        let invalid: [(Check<'_, '_>, ErrorKind); 6] = [
            (Check::new("", &one), |e| {
                matches!(e, Error::InvalidKey { .. })
            }),
            (Check::new(&control_key, &one), |e| {
                matches!(e, Error::InvalidKey { .. })
            }),
            (Check::new(&long_key, &one), |e| {
                matches!(e, Error::InvalidKey { .. })
            }),
            (Check::new(&key, &[]), |e| matches!(e, Error::NoQuotas)),
            (
                Check::new(&key, &dup),
                |e| matches!(e, Error::DuplicateQuota { name } if name == "q"),
            ),
            (Check::new(&key, &big).with_cost(3), |e| {
                matches!(
                    e,
                    Error::CostExceedsCapacity { quota, cost: 3, capacity: 2 } if quota == "small"
                )
            }),
        ];
        for (i, (check, is_expected)) in invalid.iter().enumerate() {
            let expected = check.validate().expect_err("the check is invalid");
            assert!(
                is_expected(&expected),
                "case {i}: validate gave {expected:?}"
            );
            let got = self
                .store
                .check(*check)
                .await
                .expect_err("an invalid check must fail");
            assert!(is_expected(&got), "case {i}: check gave {got:?}");
            assert_eq!(got.to_string(), expected.to_string(), "case {i}");
            assert!(!got.is_backend(), "case {i}");
            let got = self
                .store
                .check_batch(&[Check::new(&key, &one), *check])
                .await
                .expect_err("a batch with an invalid check must fail");
            assert_eq!(got.to_string(), expected.to_string(), "batch case {i}");
        }
        let d = self.check(&key, &one, 0).await;
        assert_eq!(
            d.remaining(),
            5,
            "an invalid check or batch counted something"
        );
    }

    /// `check_batch` decides in order, exactly as the same checks made one by one.
    pub async fn batch_equals_sequential_checks(&self) {
        let case = "batch_equals_sequential_checks";
        let g = quota(Algorithm::Gcra, 3, 3, MAX_PERIOD, "g");
        let f = self.long_quota(case, Algorithm::FixedWindow, 4, "f").await;
        let s = self
            .long_quota(case, Algorithm::SlidingWindow, 5, "s")
            .await;
        let gs = [g.clone()];
        let fs = [f.clone()];
        let all = [g, f, s];
        // (key part, quotas, cost, expected allowed)
        let plan: [(&str, &[Quota], u32, bool); 12] = [
            ("k1", &gs, 2, true),
            ("k1", &gs, 2, false),
            ("k1", &gs, 1, true),
            ("k1", &gs, 1, false),
            ("k2", &fs, 4, true),
            ("k2", &fs, 0, true),
            ("k2", &fs, 1, false),
            ("k3", &all, 3, true),
            ("k3", &all, 1, false),
            ("k3", &all, 0, true),
            ("k4", &all, 1, true),
            ("k1", &gs, 0, true),
        ];
        let keys = |side: &str| -> Vec<String> {
            plan.iter()
                .map(|(part, ..)| self.key(case, &format!("{side}-{part}")))
                .collect()
        };
        let batch_keys = keys("batch");
        let batch: Vec<Check<'_, '_>> = plan
            .iter()
            .zip(&batch_keys)
            .map(|((_, quotas, cost, _), key)| Check::new(key, quotas).with_cost(*cost))
            .collect();
        let batched = self.store.check_batch(&batch).await.expect("valid batch");
        assert_eq!(batched.len(), plan.len());
        let seq_keys = keys("seq");
        let mut sequential = Vec::new();
        for ((_, quotas, cost, _), key) in plan.iter().zip(&seq_keys) {
            sequential.push(self.check(key, quotas, *cost).await);
        }
        for (i, ((b, s), (.., expected))) in batched.iter().zip(&sequential).zip(&plan).enumerate()
        {
            assert_eq!(b.allowed(), *expected, "batch step {i}");
            assert_eq!(s.allowed(), *expected, "sequential step {i}");
            let figures = |d: &Decision<'_>| -> Vec<(String, bool, u64)> {
                d.quotas()
                    .iter()
                    .map(|q| (q.quota().name().to_owned(), q.allowed(), q.remaining()))
                    .collect()
            };
            assert_eq!(figures(b), figures(s), "step {i}");
        }
        let empty = self.store.check_batch(&[]).await.expect("empty batch");
        assert!(empty.is_empty());
    }

    /// A batch with one invalid check fails as a whole before anything is counted.
    pub async fn invalid_batch_counts_nothing(&self) {
        let case = "invalid_batch_counts_nothing";
        let q = quota(Algorithm::Gcra, 2, 2, MAX_PERIOD, "q");
        let qs = [q];
        let key = self.key(case, "k");
        let batch = [
            Check::new(&key, &qs),
            Check::new(&key, &qs),
            Check::new("", &qs),
        ];
        let err = self.store.check_batch(&batch).await.expect_err("invalid");
        assert!(matches!(err, Error::InvalidKey { .. }), "{err:?}");
        let d = self.check(&key, &qs, 0).await;
        assert_eq!(
            d.remaining(),
            2,
            "the valid checks of a failed batch were counted"
        );
    }

    /// [`TASKS`] tasks × [`REQUESTS_PER_TASK`] requests against one key with
    /// [`EXACT_QUOTA`] per 366 days: exactly the quota is allowed, for every algorithm.
    pub async fn exact_under_concurrent_tasks(&self) {
        self.exact("exact_under_concurrent_tasks", 1, false).await;
    }

    /// As [`exact_under_concurrent_tasks`](Self::exact_under_concurrent_tasks) with each
    /// request costing 3: exactly `floor(quota / 3)` requests are allowed.
    pub async fn exact_with_costs_under_concurrent_tasks(&self) {
        self.exact("exact_with_costs_under_concurrent_tasks", 3, false)
            .await;
    }

    /// As [`exact_under_concurrent_tasks`](Self::exact_under_concurrent_tasks), half of the
    /// tasks going through the second instance: the instances share one limit exactly.
    pub async fn exact_across_two_instances(&self) {
        self.exact("exact_across_two_instances", 1, true).await;
    }

    async fn exact(&self, case: &str, cost: u32, two_instances: bool) {
        for alg in ALGORITHMS {
            let q = self.long_quota(case, alg, EXACT_QUOTA, "exact").await;
            let quotas: Arc<[Quota]> = Arc::from([q]);
            let key: Arc<str> = Arc::from(self.key(case, alg.as_str()));
            let barrier = Arc::new(tokio::sync::Barrier::new(TASKS));
            let tasks: Vec<_> = (0..TASKS)
                .map(|i| {
                    let store = if two_instances && i % 2 == 1 {
                        Arc::clone(&self.second)
                    } else {
                        Arc::clone(&self.store)
                    };
                    let (quotas, key, barrier) =
                        (Arc::clone(&quotas), Arc::clone(&key), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let mut allowed = 0_u64;
                        for _ in 0..REQUESTS_PER_TASK {
                            let check = Check::new(&key, &quotas).with_cost(cost);
                            match store.check(check).await {
                                Ok(d) if d.allowed() => allowed += 1,
                                Ok(_) => {}
                                Err(e) => panic!("check failed: {e}"),
                            }
                        }
                        allowed
                    })
                })
                .collect();
            let mut allowed = 0;
            for task in tasks {
                allowed += task.await.expect("task panicked");
            }
            let expected = u64::from(EXACT_QUOTA / cost);
            assert_eq!(
                allowed, expected,
                "{alg}: allowed {allowed}, quota {expected}"
            );
            let left = self.check(&key, &quotas, 0).await.remaining();
            assert_eq!(left, u64::from(EXACT_QUOTA % cost), "{alg}: remaining");
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);

/// Recognises the error an invalid check must give.
type ErrorKind = fn(&Error) -> bool;

/// A quota for the suite: `limit` per `period` (burst `burst` for GCRA) named `name`.
///
/// # Panics
/// If the parameters are invalid (the suite only uses valid ones).
pub fn quota(alg: Algorithm, limit: u32, burst: u32, period: Duration, name: &str) -> Quota {
    let n = |v: u32| NonZeroU32::new(v).expect("non-zero");
    Quota::new(n(limit), period)
        .and_then(|q| q.with_burst(n(burst)))
        .and_then(|q| q.with_algorithm(alg))
        .and_then(|q| q.named(name))
        .expect("valid quota")
}

/// Writes one `#[tokio::test]` per case of the [conformance suite](crate::testing) (named as in
/// [`CASES`](crate::testing::CASES)), each building its [`Suite`](crate::testing::Suite) with
/// `$setup.await`, running the case, then [`finish`](crate::testing::Suite::finish)ing.
///
/// The tests run on a multi-threaded runtime with four worker threads, so the exactness cases
/// race for real.
#[macro_export]
macro_rules! rate_limit_store_tests {
    (@cases $setup:expr; $($case:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let suite = $setup.await;
                suite.$case().await;
                suite.finish().await;
            }
        )*
    };
    ($setup:expr) => {
        $crate::rate_limit_store_tests!(@cases $setup;
            gcra_single_quota,
            fixed_window_single_quota,
            sliding_window_single_quota,
            multi_quota_denial_consumes_nothing,
            cost_above_one,
            cost_zero_consumes_nothing,
            validation_errors_pass_through,
            batch_equals_sequential_checks,
            invalid_batch_counts_nothing,
            exact_under_concurrent_tasks,
            exact_with_costs_under_concurrent_tasks,
            exact_across_two_instances,
        );
    };
}

/// Runs the whole [`RateLimitStore`] conformance suite against `store`, its keys under
/// `namespace`: the same as `Suite::new(store, namespace).run_all()`, in the shape every
/// finsec crate gives its suites (`<trait>_conformance`, then `<trait>_two_instances`).
///
/// The store is taken in an [`Arc`] because the concurrency checks race it from spawned
/// tasks (a multi-threaded tokio runtime).
///
/// # Panics
/// At the first behaviour that differs from the contract, on any store error, or if the
/// namespace is empty, longer than 64 bytes or holds a control character.
pub async fn rate_limit_store_conformance<S>(store: Arc<S>, namespace: &str)
where
    S: RateLimitStore + ?Sized + 'static,
{
    Suite::new(store, namespace).run_all().await;
}

/// The cross-instance race check alone: `a` and `b` are two instances of one store (two
/// servers on one Redis), raced from spawned tasks; no quota lets more through across
/// them than it allows ([`Suite::exact_across_two_instances`]).
///
/// # Panics
/// As [`rate_limit_store_conformance`].
pub async fn rate_limit_store_two_instances<S>(a: Arc<S>, b: Arc<S>, namespace: &str)
where
    S: RateLimitStore + ?Sized + 'static,
{
    Suite::new(a, namespace)
        .with_second_instance(b)
        .exact_across_two_instances()
        .await;
}
