//! The behavioural conformance suite of [`ControlStore`] (feature `testing`).
//!
//! ```
//! # async fn example() {
//! use finsec_rbac::controls::MemoryControlStore;
//! use finsec_rbac::controls::testing::control_store_conformance;
//!
//! control_store_conformance(&MemoryControlStore::new()).await;
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example());
//! ```
//!
//! It panics at the first deviation, naming the check. It names its subjects, accounts and
//! instruments under a fresh random prefix and only looks at its own records, so it can share
//! a store with other tests and run several times against one store.

use futures_util::future::join_all;
use rand::RngCore as _;
use rand::rngs::OsRng;
use time::{Duration, OffsetDateTime};

use super::store::{Lift, lift, truncate};
use super::{Control, ControlError, ControlStore, HaltScope, NewControl, Result};

/// How many callers race in the concurrency checks.
pub const RACERS: usize = 8;

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

/// Runs the whole [`ControlStore`] conformance suite against `store`.
///
/// Checks: a control reads back as inserted (to the microsecond); ids ascend; the version
/// changes with every insert and lift and not with a refused one; `active` leaves out
/// lifted and expired controls; `recent` is newest first; a lift happens once, and racing
/// lifts lift once; a global halt is lifted only by someone other than the one who asked
/// for it (also under [`lift`]), and the asking is recorded once.
///
/// # Panics
/// At the first behaviour that differs from the contract, or on any store error.
pub async fn control_store_conformance<S: ControlStore + ?Sized>(store: &S) {
    let mut random = [0u8; 6];
    ok(
        "random prefix",
        OsRng
            .try_fill_bytes(&mut random)
            .map_err(ControlError::store),
    );
    let prefix = format!(
        "conformance-{}-",
        random
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let name = |n: &str| format!("{prefix}{n}");
    let now = truncate(OffsetDateTime::now_utc());
    let new = |control: Control| {
        ok(
            "new control",
            NewControl::new(control, "conformance", &name("admin")),
        )
    };

    let v0 = ok("version", store.version().await);
    let suspension = ok(
        "suspension",
        Control::suspension(&name("user")).map_err(|e| ControlError::store(e.to_string())),
    );
    let first = ok("insert", store.insert(&new(suspension.clone()), now).await);
    check("insert keeps the control", first.control == suspension);
    check("insert keeps the time", first.set_at == now);
    check("a new control is in force", first.active_at(now));
    let v1 = ok("version", store.version().await);
    check("an insert changes the version", v1 != v0);
    check(
        "get reads back what insert returned",
        ok("get", store.get(first.id).await).as_ref() == Some(&first),
    );
    let block_net = ipnet::IpNet::V4(
        ipnet::Ipv4Net::new(std::net::Ipv4Addr::new(203, 0, 113, 0), 24).unwrap_or_default(),
    );
    let expiring = ok(
        "insert",
        store
            .insert(
                &new(Control::block(block_net)).expiring_at(now + Duration::minutes(5)),
                now,
            )
            .await,
    );
    check("ids ascend", expiring.id > first.id);
    check(
        "expiry kept",
        expiring.expires_at == Some(now + Duration::minutes(5)),
    );
    let mine = |records: Vec<super::ControlRecord>| -> Vec<i64> {
        records
            .into_iter()
            .filter(|r| r.id == first.id || r.id == expiring.id)
            .map(|r| r.id)
            .collect()
    };
    check(
        "both in force now",
        mine(ok("active", store.active(now).await)) == [first.id, expiring.id],
    );
    check(
        "an expired control is not active",
        mine(ok("active", store.active(now + Duration::minutes(5)).await)) == [first.id],
    );
    let recent = ok("recent", store.recent(1_000).await);
    let positions: Vec<usize> = [expiring.id, first.id]
        .iter()
        .filter_map(|id| recent.iter().position(|r| r.id == *id))
        .collect();
    check(
        "recent lists newest first",
        matches!(positions.as_slice(), [newer, older] if newer < older),
    );

    // Lifting: once, and the version moves only when something was lifted.
    let v2 = ok("version", store.version().await);
    check(
        "lift",
        ok("lift", store.lift(first.id, &name("other"), now).await),
    );
    let lifted = ok("get", store.get(first.id).await);
    check(
        "lift records who and when",
        lifted.as_ref().and_then(|r| r.lifted_by.clone()) == Some(name("other"))
            && lifted.as_ref().and_then(|r| r.lifted_at) == Some(now),
    );
    let v3 = ok("version", store.version().await);
    check("a lift changes the version", v3 != v2);
    check(
        "a second lift does nothing",
        !ok("lift", store.lift(first.id, &name("other"), now).await),
    );
    check(
        "a refused lift leaves the version",
        ok("version", store.version().await) == v3,
    );
    check(
        "an expired control cannot be lifted",
        !ok(
            "lift",
            store
                .lift(expiring.id, &name("other"), now + Duration::hours(1))
                .await,
        ),
    );
    check(
        "unknown ids are not lifted",
        !ok("lift", store.lift(i64::MAX, "x", now).await),
    );
    check(
        "unknown ids read as none",
        ok("get", store.get(i64::MAX).await).is_none(),
    );

    // Racing lifts: exactly one wins.
    let account = ok(
        "halt",
        HaltScope::account(&name("ACC")).map_err(|e| ControlError::store(e.to_string())),
    );
    let raced = ok(
        "insert",
        store.insert(&new(Control::Halt(account)), now).await,
    );
    let lifts = (0..RACERS).map(|i| {
        let by = name(&format!("racer-{i}"));
        async move { store.lift(raced.id, &by, now).await }
    });
    let won = join_all(lifts)
        .await
        .into_iter()
        .map(|r| ok("racing lift", r))
        .filter(|w| *w)
        .count();
    check("racing lifts lift once", won == 1);

    // A global halt takes two people.
    let global = ok(
        "insert",
        store
            .insert(&new(Control::Halt(HaltScope::Global)), now)
            .await,
    );
    check(
        "a global halt is not lifted without a request",
        !ok("lift", store.lift(global.id, &name("alice"), now).await),
    );
    check(
        "request recorded",
        ok(
            "request",
            store.request_lift(global.id, &name("alice"), now).await,
        ),
    );
    check(
        "request recorded once",
        !ok(
            "request",
            store.request_lift(global.id, &name("bob"), now).await,
        ),
    );
    check(
        "the asker cannot lift it",
        !ok("lift", store.lift(global.id, &name("alice"), now).await),
    );
    let asked = ok("get", store.get(global.id).await);
    check(
        "still in force, with the asker recorded",
        asked.as_ref().is_some_and(|r| {
            r.active_at(now) && r.lift_requested_by.as_deref() == Some(name("alice").as_str())
        }),
    );
    check(
        "a second person lifts it",
        ok("lift", store.lift(global.id, &name("bob"), now).await),
    );
    // The same through `lift`: requested, refused for the same person, lifted by another.
    let global = ok(
        "insert",
        store
            .insert(&new(Control::Halt(HaltScope::Global)), now)
            .await,
    );
    check(
        "lift asks first",
        matches!(
            ok("lift", lift(store, global.id, &name("carol"), now).await),
            Lift::Requested(_)
        ),
    );
    check(
        "the asker confirming is refused",
        matches!(
            lift(store, global.id, &name("carol"), now).await,
            Err(ControlError::SamePerson)
        ),
    );
    check(
        "another person lifts",
        matches!(
            ok("lift", lift(store, global.id, &name("dan"), now).await),
            Lift::Lifted(_)
        ),
    );
    check(
        "then it is not active",
        matches!(
            ok("lift", lift(store, global.id, &name("erin"), now).await),
            Lift::NotActive(_)
        ),
    );
    check(
        "unknown ids are not found",
        ok("lift", lift(store, i64::MAX, "x", now).await) == Lift::NotFound,
    );
}
