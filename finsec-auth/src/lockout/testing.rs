//! The behavioural conformance suite of [`FailureStore`] (feature `testing`).
//!
//! Every implementation, in this crate or elsewhere, runs it from its tests:
//!
//! ```
//! # async fn example() {
//! use finsec_auth::lockout::MemoryFailureStore;
//! use finsec_auth::lockout::testing::failure_store_conformance;
//!
//! failure_store_conformance(&MemoryFailureStore::new()).await;
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example());
//! ```
//!
//! It panics at the first deviation, naming the check. It uses account ids under a fresh
//! random prefix and times in 1990 for its purge checks, so it can share a store with other
//! tests and run several times against one store.

use std::net::IpAddr;

use futures_util::future::join_all;
use time::{Duration, OffsetDateTime};

use super::{
    Admission, Backoff, Device, FailureKey, FailureRecord, FailureStore, Lockout, LockoutPolicy,
    Result,
};

/// How many concurrent updates race in the concurrency checks.
pub const RACERS: usize = 16;

#[expect(
    clippy::panic,
    reason = "a conformance suite reports a deviation by failing the test"
)]
fn ok<T>(what: &str, r: Result<T>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: store error: {e}"),
    }
}

#[expect(
    clippy::panic,
    reason = "a conformance suite reports a deviation by failing the test"
)]
fn check(what: &str, condition: bool) {
    if !condition {
        panic!("conformance check failed: {what}");
    }
}

fn prefix() -> String {
    let mut random = [0u8; 6];
    ok(
        "random prefix",
        finsec_crypto::fill_random(&mut random)
            .map_err(|_| super::LockoutError::store("no randomness")),
    );
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("conformance-{hex}-")
}

fn at(unix: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Runs the whole [`FailureStore`] conformance suite against `store`.
///
/// Checks: an unknown key has no record; `replace` from "none" inserts once; a record reads
/// back equal, to the millisecond; `replace` succeeds only from the stored record, and a
/// stale expectation changes nothing; keys are independent; `clear` removes one key;
/// `purge` removes idle records and keeps recent, still-blocking and recovery-level ones;
/// [`RACERS`] concurrent compare-and-set increments of one key lose none; and, through
/// [`Lockout`], [`RACERS`] concurrent attempts on one account at one address admit exactly
/// the pair's free failures.
///
/// # Panics
/// At the first behaviour that differs from the contract, or on any store error.
pub async fn failure_store_conformance<S: FailureStore + ?Sized>(store: &S) {
    let prefix = prefix();
    let key = |name: &str| ok("key", FailureKey::account(&format!("{prefix}{name}")));
    let alice = key("alice");
    let bob = key("bob");
    let now = OffsetDateTime::now_utc();

    check(
        "unknown key has no record",
        ok("get", store.get(&alice).await).is_none(),
    );
    let one = FailureRecord::new(1, now, now + Duration::milliseconds(1500));
    check(
        "insert from none",
        ok("replace", store.replace(&alice, None, &one).await),
    );
    check(
        "record reads back equal",
        ok("get", store.get(&alice).await) == Some(one),
    );
    let two = FailureRecord::new(2, now + Duration::SECOND, now);
    check(
        "second insert from none refused",
        !ok("replace", store.replace(&alice, None, &two).await),
    );
    check(
        "a refused replace changes nothing",
        ok("get", store.get(&alice).await) == Some(one),
    );
    check(
        "replace from the stored record",
        ok("replace", store.replace(&alice, Some(&one), &two).await),
    );
    let three = FailureRecord::new(3, now, now);
    check(
        "replace from a stale record refused",
        !ok("replace", store.replace(&alice, Some(&one), &three).await),
    );
    let off_by_a_millisecond =
        FailureRecord::new(2, now + Duration::SECOND, now + Duration::MILLISECOND);
    check(
        "every field of the expected record is compared",
        !ok(
            "replace",
            store
                .replace(&alice, Some(&off_by_a_millisecond), &three)
                .await,
        ),
    );
    check(
        "stored record is the last successful one",
        ok("get", store.get(&alice).await) == Some(two),
    );
    let big = FailureRecord::new(u32::MAX, now, now);
    check(
        "keys are independent",
        ok("replace", store.replace(&bob, None, &big).await),
    );
    check(
        "u32::MAX failures read back",
        ok("get", store.get(&bob).await) == Some(big),
    );
    ok("clear", store.clear(&alice).await);
    check(
        "clear removes the record",
        ok("get", store.get(&alice).await).is_none(),
    );
    check(
        "clear leaves other keys",
        ok("get", store.get(&bob).await) == Some(big),
    );
    ok("clear unknown", store.clear(&key("nobody")).await);
    let address: IpAddr = "192.0.2.1".parse().unwrap_or(IpAddr::from([192, 0, 2, 1]));
    let pair = ok(
        "pair key",
        FailureKey::pair(&format!("{prefix}alice"), address),
    );
    check(
        "a pair key is not the account key",
        ok("replace", store.replace(&pair, None, &one).await)
            && ok("get", store.get(&alice).await).is_none(),
    );

    // Purge, with times in 1990 so other users of the store are not affected.
    let old = at(631_152_000); // 1990-01-01
    let cut = old + Duration::days(30);
    let idle = key("idle");
    let recent = key("recent");
    let blocking = key("blocking");
    let recovery = key("recovery");
    for (k, record) in [
        (&idle, FailureRecord::new(3, old, old)),
        (&recent, FailureRecord::new(3, cut + Duration::SECOND, old)),
        (
            &blocking,
            FailureRecord::new(3, old, cut + Duration::SECOND),
        ),
        (&recovery, FailureRecord::new(100, old, old)),
    ] {
        check(
            "purge fixture",
            ok("replace", store.replace(k, None, &record).await),
        );
    }
    let purged = ok("purge", store.purge(cut, 100).await);
    check("purge counts what it removed", purged >= 1);
    check(
        "purge removes idle records",
        ok("get", store.get(&idle).await).is_none(),
    );
    check(
        "purge keeps records with a recent failure",
        ok("get", store.get(&recent).await).is_some(),
    );
    check(
        "purge keeps records still blocking",
        ok("get", store.get(&blocking).await).is_some(),
    );
    check(
        "purge keeps accounts that need recovery",
        ok("get", store.get(&recovery).await).is_some(),
    );

    // Racing compare-and-set increments: none lost.
    let racer = key("racer");
    let rounds = 4;
    let increments = (0..RACERS).map(|_| async {
        for _ in 0..rounds {
            loop {
                let stored = ok("get", store.get(&racer).await);
                let next = FailureRecord::new(stored.map_or(0, |r| r.failures()) + 1, now, now);
                if ok(
                    "replace",
                    store.replace(&racer, stored.as_ref(), &next).await,
                ) {
                    break;
                }
            }
        }
    });
    join_all(increments).await;
    check(
        "concurrent compare-and-set increments lose none",
        ok("get", store.get(&racer).await).map(|r| r.failures())
            == Some(u32::try_from(RACERS * rounds).unwrap_or(u32::MAX)),
    );

    // Through the lockout: concurrent guesses cannot pass the pair gate together.
    let policy = ok(
        "policy",
        LockoutPolicy::new(
            ok(
                "pair",
                Backoff::new(5, Duration::hours(1), Duration::hours(1)),
            ),
            ok(
                "account",
                Backoff::new(1_000, Duration::hours(1), Duration::hours(1)),
            ),
            10_000,
            Duration::days(2),
        ),
    );
    let lockout = Lockout::new(store, policy);
    let account = format!("{prefix}guessed");
    let attempts = (0..RACERS).map(|_| lockout.admit(&account, address, Device::Unknown, now));
    let admitted = join_all(attempts)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok(admission) => Some(admission),
            // Contention is a refusal; it must not let an attempt through.
            Err(super::LockoutError::Contended) => None,
            Err(e) => {
                check(&format!("concurrent admit failed: {e}"), false);
                None
            }
        })
        .filter(|a| *a == Admission::Allowed)
        .count();
    check(
        "concurrent attempts admit exactly the pair's free failures",
        admitted == 5,
    );
}
