//! Behavioural conformance suites for the MFA storage traits (feature `testing`).
//!
//! Every [`TotpReplayStore`] and [`BackupCodeStore`] implementation, in this crate or
//! elsewhere, runs these from its tests so all of them behave the same:
//!
//! ```
//! # async fn example() {
//! use finsec_auth::mfa::{MemoryBackupCodeStore, MemoryTotpReplayStore};
//! use finsec_auth::mfa::testing::{backup_code_store_conformance, totp_replay_store_conformance};
//!
//! totp_replay_store_conformance(&MemoryTotpReplayStore::new()).await;
//! backup_code_store_conformance(&MemoryBackupCodeStore::new()).await;
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example());
//! ```
//!
//! A suite panics (fails the test) at the first deviation, naming the check. It only
//! uses user ids under a fresh random prefix, so it can share a store with other tests
//! and run several times against one store.

use std::future::Future;
use std::pin::Pin;

use futures_util::future::join_all;

use super::backup::BackupCodeHash;
use super::error::Result;
use super::store::{BackupCodeStore, MfaUserId, TotpReplayStore};

/// How many concurrent requests race in the concurrency checks.
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

struct Ids {
    prefix: String,
}

impl Ids {
    fn new() -> Self {
        let mut random = [0u8; 6];
        ok(
            "random prefix",
            finsec_crypto::fill_random(&mut random).map_err(|_| super::MfaError::Random),
        );
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        Self {
            prefix: format!("conformance-{hex}-"),
        }
    }

    fn user(&self, name: &str) -> MfaUserId {
        ok("user id", MfaUserId::new(format!("{}{name}", self.prefix)))
    }
}

/// Runs the whole [`TotpReplayStore`] conformance suite against `store`.
///
/// Checks: an unknown user has no step; the first step is accepted, the same or an
/// earlier step is refused, a later one accepted; users are independent; `forget`
/// resets a user; steps `0` and `i64::MAX` work and larger steps are an error; and
/// [`RACERS`] concurrent `try_advance` calls with one step accept exactly one.
///
/// # Panics
/// At the first behaviour that differs from the contract, or on any store error.
pub async fn totp_replay_store_conformance<S: TotpReplayStore + ?Sized>(store: &S) {
    let ids = Ids::new();
    let alice = ids.user("alice");
    let bob = ids.user("bob");

    check(
        "unknown user has no step",
        ok("last_step", store.last_step(&alice).await).is_none(),
    );
    check(
        "first step accepted",
        ok("try_advance", store.try_advance(&alice, 1000).await),
    );
    check(
        "same step refused",
        !ok("try_advance", store.try_advance(&alice, 1000).await),
    );
    check(
        "earlier step refused",
        !ok("try_advance", store.try_advance(&alice, 999).await),
    );
    check(
        "refusals do not move the step",
        ok("last_step", store.last_step(&alice).await) == Some(1000),
    );
    check(
        "later step accepted",
        ok("try_advance", store.try_advance(&alice, 1002).await),
    );
    check(
        "last step is the latest accepted",
        ok("last_step", store.last_step(&alice).await) == Some(1002),
    );
    check(
        "users are independent",
        ok("try_advance", store.try_advance(&bob, 1000).await),
    );
    check(
        "other user untouched",
        ok("last_step", store.last_step(&alice).await) == Some(1002),
    );

    ok("forget", store.forget(&alice).await);
    check(
        "forget clears the step",
        ok("last_step", store.last_step(&alice).await).is_none(),
    );
    check(
        "after forget an earlier step is accepted",
        ok("try_advance", store.try_advance(&alice, 5).await),
    );
    check(
        "forget left other users alone",
        ok("last_step", store.last_step(&bob).await) == Some(1000),
    );
    ok("forget unknown", store.forget(&ids.user("nobody")).await);

    let zero = ids.user("zero");
    check(
        "step 0 accepted for a new user",
        ok("try_advance", store.try_advance(&zero, 0).await),
    );
    check(
        "step 0 then refused",
        !ok("try_advance", store.try_advance(&zero, 0).await),
    );
    let max = i64::MAX.unsigned_abs();
    check(
        "step i64::MAX accepted",
        ok("try_advance", store.try_advance(&zero, max).await),
    );
    check(
        "step i64::MAX stored",
        ok("last_step", store.last_step(&zero).await) == Some(max),
    );
    check(
        "step above i64::MAX is an error",
        store.try_advance(&zero, max + 1).await.is_err(),
    );
    let big = ids.user("big");
    check(
        "step 2^53 accepted",
        ok("try_advance", store.try_advance(&big, 1 << 53).await),
    );
    check(
        "step 2^53 + 1 accepted after 2^53 (no floating-point comparison)",
        ok("try_advance", store.try_advance(&big, (1 << 53) + 1).await),
    );
    let long = ok(
        "long id",
        MfaUserId::new(format!("{}{}", ids.prefix, "é".repeat(100))),
    );
    check(
        "255-byte ids with non-ASCII work",
        ok("try_advance", store.try_advance(&long, 7).await),
    );

    let racer = ids.user("racer");
    let futures: Vec<Pin<Box<dyn Future<Output = Result<bool>> + Send + '_>>> = (0..RACERS)
        .map(|_| {
            let racer = &racer;
            Box::pin(async move { store.try_advance(racer, 4242).await })
                as Pin<Box<dyn Future<Output = Result<bool>> + Send + '_>>
        })
        .collect();
    let results = join_all(futures).await;
    let accepted = results
        .into_iter()
        .map(|r| ok("concurrent try_advance", r))
        .filter(|&a| a)
        .count();
    check(
        "exactly one of the concurrent try_advance calls wins",
        accepted == 1,
    );
}

fn hash(n: u8) -> BackupCodeHash {
    BackupCodeHash::from_bytes([n; 32])
}

/// Runs the whole [`BackupCodeStore`] conformance suite against `store`.
///
/// Checks: an unknown user has no codes; a stored code is consumed once; unknown hashes
/// and other users' hashes are refused; `replace` discards the old set; and [`RACERS`]
/// concurrent `consume` calls for one code accept exactly one.
///
/// # Panics
/// At the first behaviour that differs from the contract, or on any store error.
pub async fn backup_code_store_conformance<S: BackupCodeStore + ?Sized>(store: &S) {
    let ids = Ids::new();
    let alice = ids.user("alice");
    let bob = ids.user("bob");

    check(
        "unknown user has no codes",
        ok("remaining", store.remaining(&alice).await) == 0,
    );
    check(
        "consume on unknown user refused",
        !ok("consume", store.consume(&alice, &hash(1)).await),
    );
    ok(
        "replace",
        store.replace(&alice, (1..=10).map(hash).collect()).await,
    );
    check(
        "ten codes stored",
        ok("remaining", store.remaining(&alice).await) == 10,
    );
    check(
        "other user's code refused",
        !ok("consume", store.consume(&bob, &hash(1)).await),
    );
    check(
        "code consumed",
        ok("consume", store.consume(&alice, &hash(1)).await),
    );
    check(
        "code consumed only once",
        !ok("consume", store.consume(&alice, &hash(1)).await),
    );
    check(
        "unknown code refused",
        !ok("consume", store.consume(&alice, &hash(99)).await),
    );
    check(
        "nine left",
        ok("remaining", store.remaining(&alice).await) == 9,
    );
    ok(
        "replace again",
        store.replace(&alice, vec![hash(50), hash(51)]).await,
    );
    check(
        "replace discards the old set",
        !ok("consume", store.consume(&alice, &hash(2)).await),
    );
    check(
        "new set has two",
        ok("remaining", store.remaining(&alice).await) == 2,
    );
    ok("replace bob", store.replace(&bob, vec![hash(50)]).await);
    check(
        "same hash for two users is independent",
        ok("consume", store.consume(&bob, &hash(50)).await)
            && ok("consume", store.consume(&alice, &hash(50)).await),
    );
    ok("replace empty", store.replace(&alice, Vec::new()).await);
    check(
        "empty set",
        ok("remaining", store.remaining(&alice).await) == 0,
    );

    let racer = ids.user("racer");
    ok("replace racer", store.replace(&racer, vec![hash(7)]).await);
    let target = hash(7);
    let futures: Vec<Pin<Box<dyn Future<Output = Result<bool>> + Send + '_>>> = (0..RACERS)
        .map(|_| {
            let racer = &racer;
            let target = &target;
            Box::pin(async move { store.consume(racer, target).await })
                as Pin<Box<dyn Future<Output = Result<bool>> + Send + '_>>
        })
        .collect();
    let accepted = join_all(futures)
        .await
        .into_iter()
        .map(|r| ok("concurrent consume", r))
        .filter(|&a| a)
        .count();
    check(
        "exactly one of the concurrent consume calls wins",
        accepted == 1,
    );
}

/// The cross-instance race checks of both MFA stores: `a` and `b` are two instances of one
/// store (two servers on one database or one Redis). For a single store, pass it twice.
///
/// Checks that [`RACERS`] concurrent `try_advance` calls with one step, alternating
/// between the instances, accept exactly one (a TOTP code is used once across servers);
/// that a step accepted on one instance is refused on the other afterwards; and that
/// [`RACERS`] concurrent `consume` calls of one backup code, alternating between the
/// instances, accept exactly one.
///
/// # Panics
/// At the first behaviour that differs from the contract, or on any store error.
pub async fn mfa_stores_two_instances<A, B>(totp_a: &A, totp_b: &A, backup_a: &B, backup_b: &B)
where
    A: TotpReplayStore + ?Sized,
    B: BackupCodeStore + ?Sized,
{
    let ids = Ids::new();

    let user = ids.user("totp-two-instances");
    let attempts: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = if i % 2 == 0 { totp_a } else { totp_b };
            store.try_advance(&user, 1_000)
        })
        .collect();
    let accepted = join_all(attempts)
        .await
        .into_iter()
        .map(|r| ok("racing try_advance", r))
        .filter(|accepted| *accepted)
        .count();
    check(
        "one step raced across two instances is accepted exactly once",
        accepted == 1,
    );
    check(
        "a step accepted on one instance is refused on the other",
        !ok("try_advance again", totp_b.try_advance(&user, 1_000).await)
            && !ok("try_advance again", totp_a.try_advance(&user, 1_000).await),
    );
    check(
        "both instances see the accepted step",
        ok("last_step", totp_a.last_step(&user).await) == Some(1_000)
            && ok("last_step", totp_b.last_step(&user).await) == Some(1_000),
    );

    let user = ids.user("backup-two-instances");
    ok(
        "replace codes",
        backup_a.replace(&user, vec![hash(1), hash(2)]).await,
    );
    let code = hash(1);
    let attempts: Vec<_> = (0..RACERS)
        .map(|i| {
            let store = if i % 2 == 0 { backup_a } else { backup_b };
            store.consume(&user, &code)
        })
        .collect();
    let consumed = join_all(attempts)
        .await
        .into_iter()
        .map(|r| ok("racing consume", r))
        .filter(|consumed| *consumed)
        .count();
    check(
        "one backup code raced across two instances is accepted exactly once",
        consumed == 1,
    );
    check(
        "the other code is untouched on both instances",
        ok("remaining", backup_a.remaining(&user).await) == 1
            && ok("remaining", backup_b.remaining(&user).await) == 1,
    );
}
