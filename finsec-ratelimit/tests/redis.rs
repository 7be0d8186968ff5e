//! The Redis store against a real Redis (`FINSEC_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`). Every test uses its own key prefix; an unreachable server fails
//! the test.
#![cfg(test)]

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use finsec_ratelimit::algorithm::{QuotaState, evaluate};
use finsec_ratelimit::redis::{DEFAULT_PREFIX, DEFAULT_TIMEOUT, RedisStore};
use finsec_ratelimit::{Algorithm, Check, Decision, Error, Quota, RateLimitStore};
use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, Pipeline, RedisFuture, Value};

fn n(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap()
}

fn quota(limit: u32, period: Duration, algorithm: Algorithm) -> Quota {
    Quota::new(n(limit), period)
        .unwrap()
        .with_algorithm(algorithm)
        .unwrap()
}

fn store(t: &finsec_testkit::RedisTestPrefix) -> RedisStore {
    RedisStore::new(t.conn.clone(), &t.prefix).unwrap()
}

fn micros(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

async fn server_time(conn: &mut ConnectionManager) -> i64 {
    let (s, us): (i64, i64) = redis::cmd("TIME").query_async(conn).await.unwrap();
    s * 1_000_000 + us
}

/// Deterministic pseudo-random numbers (SplitMix64), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// Asserts a Redis decision equals what `evaluate` decides for the same states at the same
/// time, and advances the model's states the way a store must.
fn assert_agrees(
    quotas: &[Quota],
    states: &mut [Option<QuotaState>],
    now: i64,
    cost: u32,
    got: &Decision,
    step: usize,
) {
    let evaluations: Vec<_> = quotas
        .iter()
        .zip(states.iter())
        .map(|(q, s)| evaluate(q, *s, now, cost))
        .collect();
    let allowed = evaluations.iter().all(|e| e.allowed);
    assert_eq!(got.allowed(), allowed, "step {step} at {now}: allowed");
    assert_eq!(got.quotas().len(), quotas.len());
    for ((q, e), d) in quotas.iter().zip(&evaluations).zip(got.quotas()) {
        let remaining = if allowed {
            e.remaining_after
        } else {
            e.remaining_before
        };
        let what = format!("step {step} at {now}, cost {cost}, quota {q:?}");
        assert_eq!(d.quota(), q, "{what}");
        assert_eq!(d.allowed(), e.allowed, "{what}: allowed");
        assert_eq!(d.remaining(), remaining, "{what}: remaining");
        assert_eq!(
            d.retry_after(),
            Duration::from_micros(e.retry_after_us),
            "{what}: retry_after"
        );
        let reset = if allowed {
            e.reset_after_us
        } else {
            e.reset_before_us
        };
        assert_eq!(
            d.reset_after(),
            Duration::from_micros(reset),
            "{what}: reset_after"
        );
    }
    if allowed {
        for (s, e) in states.iter_mut().zip(&evaluations) {
            *s = Some(e.next);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Agreement with `algorithm::evaluate`
// ---------------------------------------------------------------------------------------

/// The script must decide exactly as `evaluate` does. Redis reads its own clock and no
/// client may choose the time (there is deliberately no way to pass one), so the test cannot
/// replay fixed times on Redis. Instead it replays Redis on the model: each decision reports
/// the `TIME` the script read, the model evaluates the same quotas at that exact microsecond
/// from the states it derived itself, and every figure (allowed, remaining, retry-after,
/// reset) must match. The periods are a few milliseconds, so during the run windows roll
/// over, GCRA refills, sliding windows weigh partly-elapsed previous windows and idle keys
/// expire; the costs vary, including 0.
#[tokio::test]
async fn decisions_agree_with_evaluate_at_the_server_time() {
    let t = finsec_testkit::redis().await;
    let store = store(&t);
    let ms = Duration::from_millis;
    let cases: Vec<(&str, Vec<Quota>)> = vec![
        (
            "gcra",
            vec![
                Quota::new(n(5), ms(10))
                    .unwrap()
                    .with_burst(n(4))
                    .unwrap()
                    .named("g")
                    .unwrap(),
            ],
        ),
        ("sliding", vec![quota(7, ms(9), Algorithm::SlidingWindow)]),
        ("fixed", vec![quota(6, ms(7), Algorithm::FixedWindow)]),
        (
            "sliding-uneven",
            vec![quota(
                13,
                Duration::from_micros(6_123),
                Algorithm::SlidingWindow,
            )],
        ),
        (
            "all-three",
            vec![
                Quota::new(n(9), ms(12))
                    .unwrap()
                    .with_burst(n(6))
                    .unwrap()
                    .named("g")
                    .unwrap(),
                quota(8, ms(5), Algorithm::SlidingWindow)
                    .named("s")
                    .unwrap(),
                quota(20, ms(11), Algorithm::FixedWindow)
                    .named("f")
                    .unwrap(),
            ],
        ),
    ];
    let mut rng = Rng(0x5EED);
    let mut checks = 0;
    let mut allowed = 0;
    let mut denied = 0;
    for (name, quotas) in &cases {
        let key = format!("agree:{name}");
        let mut states = vec![None; quotas.len()];
        let capacity = quotas.iter().map(Quota::capacity).min().unwrap();
        let longest = quotas.iter().map(Quota::period_micros).max().unwrap();
        let mut first = None;
        let mut last = 0;
        for step in 0..600 {
            let cost = u32::try_from(rng.below(capacity.min(3) + 1)).unwrap();
            let (decision, at) = store
                .check_with_server_time(Check::new(&key, quotas).with_cost(cost))
                .await
                .unwrap();
            assert_agrees(quotas, &mut states, micros(at), cost, &decision, step);
            first.get_or_insert(micros(at));
            last = micros(at);
            checks += 1;
            if decision.allowed() {
                allowed += 1;
            } else {
                denied += 1;
            }
        }
        // The run spanned several periods: windows rolled over and GCRA refilled.
        let span = last - first.unwrap();
        assert!(
            span > 3 * i64::try_from(longest).unwrap(),
            "{name}: {span} µs"
        );
    }
    assert_eq!(checks, 5 * 600);
    // Both branches were exercised plenty.
    assert!(
        allowed > 100 && denied > 100,
        "{allowed} allowed, {denied} denied"
    );
    t.cleanup().await;
}

/// Quotas at the edges of what `Quota` accepts: a GCRA tolerance near 2^53 µs (whose
/// theoretical arrival time passes 2^53, beyond exact doubles) and a sliding window whose
/// limit × period is 2^53-sized. Long periods, so every decision is at a known place.
#[tokio::test]
async fn extreme_quotas_agree_with_evaluate() {
    let t = finsec_testkit::redis().await;
    let store = store(&t);
    let day = Duration::from_secs(86_400);
    let quotas = [
        Quota::per_day(n(1))
            .with_burst(n(104_000))
            .unwrap()
            .named("g")
            .unwrap(),
        quota(104_000, day, Algorithm::SlidingWindow)
            .named("s")
            .unwrap(),
        Quota::new(n(u32::MAX), Duration::from_secs(366 * 86_400))
            .unwrap()
            .with_algorithm(Algorithm::FixedWindow)
            .unwrap()
            .named("f")
            .unwrap(),
    ];
    // All three together, then the GCRA quota alone: the script's one-GCRA-quota fast path
    // must hand a time past 2^53 to the general code and agree all the same.
    for (key, quotas) in [("edge", &quotas[..]), ("edge-gcra-alone", &quotas[..1])] {
        let mut states = vec![None; quotas.len()];
        // 1 + 50,000 + 53,998 + 0, then 2 is one too many, then 1 fills the 104,000 exactly.
        for (step, cost) in [1, 50_000, 53_998, 0, 2, 1].into_iter().enumerate() {
            let (d, at) = store
                .check_with_server_time(Check::new(key, quotas).with_cost(cost))
                .await
                .unwrap();
            assert_agrees(quotas, &mut states, micros(at), cost, &d, step);
        }
        // 104,000 consumed: the GCRA quota is now exhausted.
        let (d, at) = store
            .check_with_server_time(Check::new(key, quotas))
            .await
            .unwrap();
        assert!(!d.allowed(), "{key}");
        assert_agrees(quotas, &mut states, micros(at), 1, &d, 99);
    }
    t.cleanup().await;
}

/// The decision is made at the server's time: the reported time lies between two `TIME`
/// readings taken around the call. The client's clock is never sent (the script takes no
/// time argument), so application instances with skewed clocks agree by construction.
#[tokio::test]
async fn decisions_use_the_server_clock() {
    let t = finsec_testkit::redis().await;
    let store = store(&t);
    let mut conn = t.conn.clone();
    let quotas = [Quota::per_minute(n(10))];
    for _ in 0..20 {
        let before = server_time(&mut conn).await;
        let (_, at) = store
            .check_with_server_time(Check::new("clock", &quotas))
            .await
            .unwrap();
        let after = server_time(&mut conn).await;
        let at = micros(at);
        assert!(before <= at && at <= after, "{before} <= {at} <= {after}");
    }
    t.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// Exactness under concurrency
// ---------------------------------------------------------------------------------------

const TASKS: usize = 16;
const PER_TASK: usize = 50;
const DAILY: u32 = 300;

fn daily(algorithm: Algorithm) -> Vec<Quota> {
    vec![quota(DAILY, Duration::from_secs(86_400), algorithm)]
}

/// Hammers `key` from `TASKS` tasks spread over `stores`; returns how many were allowed.
async fn hammer(stores: &[RedisStore], key: &str, quotas: &[Quota]) -> usize {
    let mut handles = Vec::new();
    for i in 0..TASKS {
        let store = stores[i % stores.len()].clone();
        let key = key.to_owned();
        let quotas = quotas.to_vec();
        handles.push(tokio::spawn(async move {
            let mut allowed = 0;
            for _ in 0..PER_TASK {
                if store
                    .check(Check::new(&key, &quotas))
                    .await
                    .unwrap()
                    .allowed()
                {
                    allowed += 1;
                }
            }
            allowed
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    total
}

/// What a run between server times `from` and `to` may allow: exactly the quota, unless a
/// day boundary (UTC midnight) fell inside the run, which restarts the windows.
fn assert_exact(algorithm: Algorithm, allowed: usize, from: i64, to: i64) {
    let day = 86_400_000_000;
    let limit = usize::try_from(DAILY).unwrap();
    if algorithm == Algorithm::Gcra || from.div_euclid(day) == to.div_euclid(day) {
        // GCRA refills one request per 288 s: none during the run.
        assert_eq!(allowed, limit, "{algorithm}");
    } else {
        assert!(
            (limit..=2 * limit).contains(&allowed),
            "{algorithm}: {allowed}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_allow_exactly_the_quota() {
    let t = finsec_testkit::redis().await;
    let stores = [store(&t)];
    let mut conn = t.conn.clone();
    for algorithm in Algorithm::ALL {
        let from = server_time(&mut conn).await;
        let allowed = hammer(&stores, &format!("one:{algorithm}"), &daily(algorithm)).await;
        let to = server_time(&mut conn).await;
        assert_exact(algorithm, allowed, from, to);
    }
    t.cleanup().await;
}

/// Two application instances: two stores on two independent connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_connections_allow_exactly_the_quota() {
    let t = finsec_testkit::redis().await;
    let other = finsec_testkit::redis().await;
    let stores = [
        store(&t),
        RedisStore::new(other.conn.clone(), &t.prefix).unwrap(),
    ];
    let mut conn = t.conn.clone();
    for algorithm in Algorithm::ALL {
        let from = server_time(&mut conn).await;
        let allowed = hammer(&stores, &format!("two:{algorithm}"), &daily(algorithm)).await;
        let to = server_time(&mut conn).await;
        assert_exact(algorithm, allowed, from, to);
    }
    other.cleanup().await;
    t.cleanup().await;
}

const CHILD_PREFIX_VAR: &str = "FINSEC_RATELIMIT_TEST_CHILD_PREFIX";
const CHILD_ALGORITHM_VAR: &str = "FINSEC_RATELIMIT_TEST_CHILD_ALGORITHM";

/// Two operating-system processes: this test binary runs itself twice as workers (told by
/// environment variables), each with its own connection, and they hammer one key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_allow_exactly_the_quota() {
    if let Ok(prefix) = std::env::var(CHILD_PREFIX_VAR) {
        // Worker: report the number allowed on stdout.
        let algorithm = match std::env::var(CHILD_ALGORITHM_VAR).unwrap().as_str() {
            "gcra" => Algorithm::Gcra,
            "sliding_window" => Algorithm::SlidingWindow,
            "fixed_window" => Algorithm::FixedWindow,
            other => panic!("unknown algorithm {other}"),
        };
        let t = finsec_testkit::redis().await;
        let stores = [RedisStore::new(t.conn.clone(), &prefix).unwrap()];
        let allowed = hammer(&stores, "procs", &daily(algorithm)).await;
        eprintln!("allowed={allowed};");
        return;
    }
    let t = finsec_testkit::redis().await;
    let mut conn = t.conn.clone();
    let exe = std::env::current_exe().unwrap();
    for algorithm in Algorithm::ALL {
        let prefix = format!("{}{algorithm}:", t.prefix);
        let from = server_time(&mut conn).await;
        let children: Vec<_> = (0..2)
            .map(|_| {
                let mut cmd = std::process::Command::new(&exe);
                cmd.args([
                    "--exact",
                    "two_processes_allow_exactly_the_quota",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_PREFIX_VAR, &prefix)
                .env(CHILD_ALGORITHM_VAR, algorithm.as_str());
                tokio::task::spawn_blocking(move || cmd.output())
            })
            .collect();
        let mut allowed = 0;
        for child in children {
            let out = child.await.unwrap().unwrap();
            let stdout = String::from_utf8(out.stdout).unwrap();
            assert!(
                out.status.success(),
                "{stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let stderr = String::from_utf8(out.stderr).unwrap();
            let count = stderr
                .split_once("allowed=")
                .and_then(|(_, rest)| rest.split_once(';'))
                .map(|(count, _)| count)
                .unwrap_or_else(|| panic!("no count in {stderr:?}"));
            allowed += count.parse::<usize>().unwrap();
        }
        let to = server_time(&mut conn).await;
        // Two processes × TASKS × PER_TASK attempts.
        assert_exact(algorithm, allowed, from, to);
    }
    t.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_batch_is_decided_in_order_in_one_call() {
    let t = finsec_testkit::redis().await;
    let store = store(&t);
    let five = [quota(5, Duration::from_secs(3_600), Algorithm::FixedWindow)];
    let gcra = [Quota::per_hour(n(2))];
    let mut checks = Vec::new();
    for i in 0..8 {
        checks.push(Check::new("batch:a", &five));
        checks.push(Check::new("batch:b", &gcra));
        if i % 2 == 0 {
            checks.push(Check::new("batch:a", &five).with_cost(0));
        }
    }
    let decisions = store.check_batch(&checks).await.unwrap();
    assert_eq!(decisions.len(), checks.len());
    let mut a_allowed = 0;
    let mut b_allowed = 0;
    let mut a_remaining = Vec::new();
    for (c, d) in checks.iter().zip(&decisions) {
        match (c.key, c.cost) {
            ("batch:a", 1) => {
                a_allowed += usize::from(d.allowed());
                a_remaining.push(d.remaining());
            }
            ("batch:a", 0) => assert!(d.allowed()),
            ("batch:b", _) => b_allowed += usize::from(d.allowed()),
            _ => unreachable!(),
        }
    }
    assert_eq!((a_allowed, b_allowed), (5, 2));
    // In order: the first five are allowed, counting down; the rest denied with 0 left.
    assert_eq!(a_remaining, [4, 3, 2, 1, 0, 0, 0, 0]);
    assert!(decisions[0].allowed() && !decisions.last().unwrap().allowed());

    // One invalid check fails the whole batch before anything is counted.
    let fresh = [Check::new("batch:c", &five), Check::new("", &five)];
    assert!(matches!(
        store.check_batch(&fresh).await,
        Err(Error::InvalidKey { .. })
    ));
    let d = store.check(Check::new("batch:c", &five)).await.unwrap();
    assert_eq!(d.remaining(), 4);
    assert!(store.check_batch(&[]).await.unwrap().is_empty());
    t.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// Script loading
// ---------------------------------------------------------------------------------------

async fn script_loaded(conn: &mut ConnectionManager, sha: &str) -> bool {
    let exists: Vec<bool> = redis::cmd("SCRIPT")
        .arg("EXISTS")
        .arg(sha)
        .query_async(conn)
        .await
        .unwrap();
    exists == [true]
}

/// `SCRIPT FLUSH` (what a restart or failover does to the script cache) between calls: the
/// next check and the next batch reload the script and are each counted exactly once.
/// (Other tests may reload the script right after the flush; the tests with
/// `FlushingConnection` below make the `NOSCRIPT` certain.)
#[tokio::test]
async fn noscript_reloads_and_counts_once() {
    let t = finsec_testkit::redis().await;
    let store = store(&t);
    let mut conn = t.conn.clone();
    let sha = store.script_sha().to_owned();
    let quotas = [quota(
        100,
        Duration::from_secs(3_600),
        Algorithm::FixedWindow,
    )];

    store.load_script().await.unwrap();
    assert!(script_loaded(&mut conn, &sha).await);
    let d = store.check(Check::new("flush", &quotas)).await.unwrap();
    assert_eq!(d.remaining(), 99);

    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let d = store.check(Check::new("flush", &quotas)).await.unwrap();
    assert_eq!(d.remaining(), 98);
    assert!(script_loaded(&mut conn, &sha).await);

    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut conn)
        .await
        .unwrap();
    let batch = [Check::new("flush", &quotas); 3];
    let remaining: Vec<u64> = store
        .check_batch(&batch)
        .await
        .unwrap()
        .iter()
        .map(Decision::remaining)
        .collect();
    assert_eq!(remaining, [97, 96, 95]);
    assert!(script_loaded(&mut conn, &sha).await);
    t.cleanup().await;
}

/// A connection that, once armed, flushes the server's script cache halfway through the next
/// pipeline it carries (before the only command of a pipeline of one). The flush
/// and the commands go in one MULTI/EXEC, so no other client can reload the script in
/// between: what follows the flush is refused with `NOSCRIPT`, as after a restart landing
/// mid-batch. It counts the `NOSCRIPT` answers it passes on.
#[derive(Clone)]
struct FlushingConnection {
    inner: ConnectionManager,
    armed: Arc<AtomicBool>,
    noscripts: Arc<AtomicUsize>,
}

impl FlushingConnection {
    fn new(inner: ConnectionManager) -> Self {
        Self {
            inner,
            armed: Arc::new(AtomicBool::new(false)),
            noscripts: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `cmds` with a SCRIPT FLUSH before the one at `flush_at`, atomically; returns
    /// the answers to `cmds`.
    async fn flush_within(&mut self, cmds: Vec<&Cmd>, flush_at: usize) -> Vec<Value> {
        let mut multi = redis::pipe();
        multi.atomic().ignore_errors();
        for (i, cmd) in cmds.iter().enumerate() {
            if i == flush_at {
                multi.cmd("SCRIPT").arg("FLUSH").ignore();
            }
            multi.add_command((*cmd).clone());
        }
        let answers: Vec<Value> = multi.query_async(&mut self.inner).await.unwrap();
        assert_eq!(answers.len(), cmds.len());
        let refused = answers
            .iter()
            .filter(|v| matches!(v, Value::ServerError(e) if e.code() == "NOSCRIPT"))
            .count();
        assert_eq!(refused, cmds.len() - flush_at);
        self.noscripts.fetch_add(refused, Ordering::SeqCst);
        answers
    }
}

impl ConnectionLike for FlushingConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        // The store sends even a single check as a pipeline.
        self.inner.req_packed_command(cmd)
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        if !self.armed.swap(false, Ordering::SeqCst) {
            return self.inner.req_packed_commands(pipeline, offset, count);
        }
        assert!(!pipeline.is_transaction());
        Box::pin(async move {
            let cmds: Vec<&Cmd> = pipeline.cmd_iter().collect();
            let half = cmds.len() / 2;
            Ok(self.flush_within(cmds, half).await)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

/// A `NOSCRIPT` answer to a single check: the store loads the script and asks again, and
/// the check is counted once.
#[tokio::test]
async fn noscript_on_a_check_reloads_and_counts_once() {
    let t = finsec_testkit::redis().await;
    let conn = FlushingConnection::new(t.conn.clone());
    let store = RedisStore::new(conn.clone(), &t.prefix).unwrap();
    let quotas = [quota(
        100,
        Duration::from_secs(3_600),
        Algorithm::FixedWindow,
    )];
    for round in 0..3 {
        conn.armed.store(true, Ordering::SeqCst);
        let d = store.check(Check::new("single", &quotas)).await.unwrap();
        assert_eq!(d.remaining(), 99 - round);
        assert_eq!(
            conn.noscripts.load(Ordering::SeqCst),
            usize::try_from(round).unwrap() + 1
        );
    }
    t.cleanup().await;
}

/// Only the checks Redis refused with `NOSCRIPT` are sent again: the ones that ran are
/// not counted twice, and every check is answered in its place.
#[tokio::test]
async fn noscript_mid_batch_retries_only_the_refused_checks() {
    let t = finsec_testkit::redis().await;
    let conn = FlushingConnection::new(t.conn.clone());
    let store = RedisStore::new(conn.clone(), &t.prefix).unwrap();
    store.load_script().await.unwrap();
    let quotas = [quota(
        100,
        Duration::from_secs(3_600),
        Algorithm::FixedWindow,
    )];
    let batch = [Check::new("mid", &quotas); 10];
    conn.armed.store(true, Ordering::SeqCst);
    let decisions = store.check_batch(&batch).await.unwrap();
    // Five ran before the flush, five were refused and sent again.
    assert_eq!(conn.noscripts.load(Ordering::SeqCst), 5);
    let remaining: Vec<u64> = decisions.iter().map(Decision::remaining).collect();
    assert_eq!(remaining, [99, 98, 97, 96, 95, 94, 93, 92, 91, 90]);
    let d = store.check(Check::new("mid", &quotas)).await.unwrap();
    assert_eq!(d.remaining(), 89);
    t.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// Keys and expiry
// ---------------------------------------------------------------------------------------

async fn pttl(conn: &mut ConnectionManager, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

/// Each quota's key carries a PEXPIRE of the state's ttl: positive, and at most the ttl
/// rounded up to a millisecond plus the documented 1 ms margin. A denied check writes
/// nothing, and a key vanishes once its state is meaningless.
#[tokio::test]
async fn keys_expire_with_their_state() {
    let t = finsec_testkit::redis().await;
    let store = store(&t);
    let mut conn = t.conn.clone();
    let quotas = [
        Quota::per_minute(n(60)).named("g").unwrap(),
        quota(10, Duration::from_secs(60), Algorithm::SlidingWindow)
            .named("s")
            .unwrap(),
        quota(1, Duration::from_secs(3_600), Algorithm::FixedWindow)
            .named("f")
            .unwrap(),
    ];
    let d = store.check(Check::new("ttl", &quotas)).await.unwrap();
    assert!(d.allowed());
    // The ttl of each state: GCRA until its theoretical arrival time (= reset), the fixed
    // window until its end (= reset), the sliding window one period past its end.
    let ttls = [
        d.quotas()[0].reset_after(),
        d.quotas()[1].reset_after() + Duration::from_secs(60),
        d.quotas()[2].reset_after(),
    ];
    let mut before = Vec::new();
    for (q, ttl) in quotas.iter().zip(ttls) {
        let key = store.storage_key("ttl", q);
        assert!(key.starts_with(&format!("{}{{ttl}}:", t.prefix)), "{key}");
        let ms = pttl(&mut conn, &key).await;
        let bound = i64::try_from(ttl.as_micros().div_ceil(1000)).unwrap() + 1;
        assert!(ms > 0 && ms <= bound, "{key}: {ms} ms, ttl {ttl:?}");
        let state: String = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        before.push(state);
    }
    // The fixed window (1 per hour) now denies: nothing is written to any key.
    let d = store.check(Check::new("ttl", &quotas)).await.unwrap();
    assert!(!d.allowed());
    assert!(!d.quotas()[2].allowed() && d.quotas()[0].allowed());
    for (q, state) in quotas.iter().zip(&before) {
        let after: String = redis::cmd("GET")
            .arg(store.storage_key("ttl", q))
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(&after, state);
    }

    // A 5 ms quota's key is gone shortly after its state has lapsed (polled, not slept).
    let short = [Quota::new(n(1), Duration::from_millis(5)).unwrap()];
    store.check(Check::new("short", &short)).await.unwrap();
    let key = store.storage_key("short", &short[0]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while pttl(&mut conn, &key).await != -2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key} did not expire"
        );
        tokio::task::yield_now().await;
    }
    // A cost of 0 asks without writing.
    let probe = [Quota::per_hour(n(3))];
    let d = store
        .check(Check::new("probe", &probe).with_cost(0))
        .await
        .unwrap();
    assert!(d.allowed() && d.remaining() == 3);
    assert_eq!(
        pttl(&mut conn, &store.storage_key("probe", &probe[0])).await,
        -2
    );
    t.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// Configuration and failures
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn configuration_is_validated() {
    let t = finsec_testkit::redis().await;
    for bad in ["a{b", "a}b", "a\nb"] {
        assert!(matches!(
            RedisStore::new(t.conn.clone(), bad),
            Err(Error::Config { .. })
        ));
    }
    let s = RedisStore::new(t.conn.clone(), DEFAULT_PREFIX).unwrap();
    assert_eq!(s.timeout(), DEFAULT_TIMEOUT);
    assert_eq!(s.prefix(), DEFAULT_PREFIX);
    assert_eq!(s.backend(), "redis");
    assert!(s.clone().with_timeout(Duration::ZERO).is_err());
    assert!(s.clone().with_timeout(Duration::from_secs(61)).is_err());
    assert_eq!(
        s.with_timeout(Duration::from_millis(5)).unwrap().timeout(),
        Duration::from_millis(5)
    );
    // Invalid checks are refused before Redis is asked.
    let store = store(&t);
    let q = [Quota::per_second(n(2))];
    assert!(matches!(
        store.check(Check::new("k", &q).with_cost(3)).await,
        Err(Error::CostExceedsCapacity { .. })
    ));
    assert!(matches!(
        store.check(Check::new("k", &[])).await,
        Err(Error::NoQuotas)
    ));
    let twice = [q[0].clone(), q[0].clone()];
    assert!(matches!(
        store.check(Check::new("k", &twice)).await,
        Err(Error::DuplicateQuota { .. })
    ));
    assert_eq!(t.cleanup().await, 0);
}

/// State that is not the store's own: a key of another type is a backend error, a hash
/// with garbage in it a protocol error; neither panics, and no other key is written.
#[tokio::test]
async fn foreign_state_is_an_error() {
    let t = finsec_testkit::redis().await;
    let store = store(&t);
    let mut conn = t.conn.clone();
    let quotas = [
        Quota::per_minute(n(5)).named("a").unwrap(),
        quota(5, Duration::from_secs(60), Algorithm::SlidingWindow)
            .named("b")
            .unwrap(),
    ];
    let _: () = redis::cmd("HSET")
        .arg(store.storage_key("typed", &quotas[1]))
        .arg("a")
        .arg("b")
        .query_async(&mut conn)
        .await
        .unwrap();
    let e = store.check(Check::new("typed", &quotas)).await.unwrap_err();
    assert!(matches!(e, Error::Backend { .. }), "{e:?}");
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    assert_eq!(
        pttl(&mut conn, &store.storage_key("typed", &quotas[0])).await,
        -2
    );

    for value in ["12x:1:1", "99999999999999999:1:1", "1:1", "1:6:1", ""] {
        let key = store.storage_key("garbage", &quotas[1]);
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(value)
            .query_async(&mut conn)
            .await
            .unwrap();
        let e = store
            .check(Check::new("garbage", &quotas))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
        assert!(e.is_backend());
        assert!(e.to_string().contains("corrupt"), "{e}");
    }
    let key = store.storage_key("negative", &quotas[0]);
    let _: () = redis::cmd("SET")
        .arg(&key)
        .arg("-5")
        .query_async(&mut conn)
        .await
        .unwrap();
    let e = store
        .check(Check::new("negative", &quotas))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    t.cleanup().await;
}

/// A call that gets no answer in time is `Error::Timeout`. The connection is made busy by
/// a blocking `BLPOP` sent just before the check on the same multiplexed connection, which
/// Redis answers only after the BLPOP's own timeout.
#[tokio::test]
async fn a_slow_answer_is_a_timeout() {
    let t = finsec_testkit::redis().await;
    let client = redis::Client::open(finsec_testkit::redis_url()).unwrap();
    let mut dedicated = client.get_multiplexed_async_connection().await.unwrap();
    let store = RedisStore::new(dedicated.clone(), &t.prefix)
        .unwrap()
        .with_timeout(Duration::from_millis(100))
        .unwrap();
    let quotas = [Quota::per_minute(n(5))];
    let blocked = t.key("nothing-ever-arrives");
    let mut blpop = redis::cmd("BLPOP");
    // 0.3 s: below the connection's own response timeout (0.5 s by default).
    blpop.arg(&blocked).arg(0.3);
    let (popped, result) = tokio::join!(
        blpop.query_async::<Option<(String, String)>>(&mut dedicated),
        async {
            tokio::task::yield_now().await;
            store.check(Check::new("slow", &quotas)).await
        }
    );
    assert_eq!(popped.unwrap(), None);
    let e = result.unwrap_err();
    assert!(
        matches!(e, Error::Timeout { timeout, .. } if timeout == Duration::from_millis(100)),
        "{e:?}"
    );
    assert!(e.is_backend());
    t.cleanup().await;
}

/// The password of the connection never appears in the store's `Debug` nor in any error,
/// including when the server refuses the credentials on reconnect. Uses a throw-away ACL
/// user with a password, deleted at the end.
#[tokio::test]
async fn credentials_never_appear_in_errors() {
    let t = finsec_testkit::redis().await;
    let mut admin = t.conn.clone();
    let user = t.prefix.replace(':', "-").trim_end_matches('-').to_owned();
    let password = "s3cret-Pa55word-for-the-test";
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("on")
        .arg(format!(">{password}"))
        .arg(format!("~{}*", t.prefix))
        .arg("+@all")
        .query_async(&mut admin)
        .await
        .unwrap();

    let info =
        redis::IntoConnectionInfo::into_connection_info(finsec_testkit::redis_url()).unwrap();
    let settings = info
        .redis_settings()
        .clone()
        .set_username(&user)
        .set_password(password);
    let client = redis::Client::open(info.set_redis_settings(settings)).unwrap();
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(0)
        .set_connection_timeout(Some(Duration::from_secs(2)));
    let conn = client
        .get_connection_manager_with_config(config)
        .await
        .unwrap();
    let store = RedisStore::new(conn, &t.prefix)
        .unwrap()
        .with_timeout(Duration::from_secs(2))
        .unwrap();
    let quotas = [Quota::per_minute(n(5))];
    assert!(
        store
            .check(Check::new("acl", &quotas))
            .await
            .unwrap()
            .allowed()
    );

    let mut shown = vec![format!("{store:?}")];
    // A server error.
    let _: () = redis::cmd("HSET")
        .arg(store.storage_key("acl-typed", &quotas[0]))
        .arg("a")
        .arg("b")
        .query_async(&mut admin)
        .await
        .unwrap();
    let e = store
        .check(Check::new("acl-typed", &quotas))
        .await
        .unwrap_err();
    shown.push(format!("{e} {e:?}"));
    // The user is disabled and its connections closed: reconnecting fails.
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg(&user)
        .arg("off")
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .unwrap();
    let mut failures = 0;
    for _ in 0..3 {
        if let Err(e) = store.check(Check::new("acl", &quotas)).await {
            assert!(e.is_backend(), "{e:?}");
            shown.push(format!("{e} {e:?}"));
            failures += 1;
        }
    }
    assert!(failures > 0);
    let _: i64 = redis::cmd("ACL")
        .arg("DELUSER")
        .arg(&user)
        .query_async(&mut admin)
        .await
        .unwrap();
    // The reconnection with the (now refused) credentials was attempted and reported.
    assert!(
        shown.iter().any(|s| s.contains("authentication")),
        "{shown:?}"
    );
    for s in &shown {
        assert!(!s.contains(password), "{s}");
    }
    t.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// The conformance suite every store runs
// ---------------------------------------------------------------------------------------

mod conformance {
    use std::sync::Arc;

    use finsec_ratelimit::redis::RedisStore;
    use finsec_ratelimit::testing::Suite;

    /// The store, and a second store over another connection sharing its key prefix (a
    /// second application instance).
    async fn suite() -> Suite<RedisStore> {
        let t = finsec_testkit::redis().await;
        let other = finsec_testkit::redis().await;
        let store = Arc::new(RedisStore::new(t.conn.clone(), &t.prefix).unwrap());
        let second = Arc::new(RedisStore::new(other.conn.clone(), &t.prefix).unwrap());
        Suite::new(store, "conformance")
            .with_second_instance(second)
            .with_cleanup(move || async move {
                t.cleanup().await;
            })
    }

    finsec_ratelimit::rate_limit_store_tests!(suite());
}
