//! Behavioural conformance suite for [`ApprovalStore`] implementations (feature `testing`).
//!
//! Every implementation, in this crate or elsewhere, runs [`approval_store_conformance`]
//! from its tests so all of them behave like [`MemoryApprovalStore`](crate::MemoryApprovalStore):
//!
//! ```
//! # async fn example() {
//! use finsec_rbac::MemoryApprovalStore;
//! use finsec_rbac::testing::approval_store_conformance;
//!
//! approval_store_conformance(&MemoryApprovalStore::new()).await;
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example());
//! ```
//!
//! The suite panics (fails the test) at the first deviation, naming the check. It only
//! creates requests with fresh random ids, so it can run several times against one store.

use futures_util::future::join_all;

use time::OffsetDateTime;
use time::macros::datetime;

use crate::approval::{ApprovalId, ApprovalRequest, ApprovalStore};
use crate::error::{Error, Result};
use crate::permission::Permission;

#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn ok<T>(result: Result<T>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("conformance: {what} failed: {e}"),
    }
}

#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn not_found<T: std::fmt::Debug>(result: Result<T>, what: &str) {
    match result {
        Err(Error::ApprovalNotFound { .. }) => {}
        other => panic!("conformance: {what} must be ApprovalNotFound, got {other:?}"),
    }
}

fn request(now: OffsetDateTime) -> ApprovalRequest {
    ApprovalRequest {
        id: ok(ApprovalId::random(), "random approval id"),
        initiator: "maker".to_owned(),
        action: ok(Permission::new("payments:release"), "parse action"),
        subject: "payment 42 (EUR 1,000,000.00) — ünïcode".to_owned(),
        approver: ok(Permission::new("payments:approve"), "parse approver"),
        quorum: 2,
        created_at: now,
        expires_at: now + time::Duration::hours(1),
    }
}

/// Runs the whole [`ApprovalStore`] conformance suite against `store`.
///
/// Checks, in order: unknown ids (`get` is `None`, `add_approval` and `consume` are
/// [`Error::ApprovalNotFound`]); a created request comes back unchanged (microsecond
/// timestamps, non-ASCII subject); creating an existing id fails; approvals are recorded
/// once per approver, in order; `consume` succeeds once; 16 concurrent `add_approval` calls
/// by one approver record it once; 16 concurrent `consume` calls succeed exactly once.
///
/// # Panics
/// At the first behaviour that differs from the [`ApprovalStore`] contract.
pub async fn approval_store_conformance<S: ApprovalStore + ?Sized>(store: &S) {
    let t0 = datetime!(2026-03-01 09:30:00.123456 UTC);

    let unknown = ok(ApprovalId::random(), "random approval id");
    assert!(ok(store.get(&unknown).await, "get unknown").is_none());
    not_found(
        store.add_approval(&unknown, "x", t0).await,
        "add_approval on unknown id",
    );
    not_found(store.consume(&unknown, t0).await, "consume of unknown id");

    let req = request(t0);
    ok(store.create(&req).await, "create");
    let got = ok(store.get(&req.id).await, "get").unwrap_or_else(missing);
    assert_eq!(got.request, req, "conformance: request must round-trip");
    assert!(got.approvals.is_empty(), "conformance: no approvals yet");
    assert_eq!(got.consumed_at, None, "conformance: not consumed yet");
    assert!(
        store.create(&req).await.is_err(),
        "conformance: creating an existing id must fail"
    );

    let t1 = t0 + time::Duration::seconds(10);
    let t2 = t0 + time::Duration::seconds(20);
    assert!(ok(
        store.add_approval(&req.id, "checker-a", t1).await,
        "approve a"
    ));
    assert!(
        !ok(
            store.add_approval(&req.id, "checker-a", t2).await,
            "approve a again"
        ),
        "conformance: a second approval by the same approver must not be recorded"
    );
    assert!(ok(
        store.add_approval(&req.id, "checker-b", t2).await,
        "approve b"
    ));
    let got = ok(store.get(&req.id).await, "get").unwrap_or_else(missing);
    assert_eq!(
        got.approvals,
        vec![("checker-a".to_owned(), t1), ("checker-b".to_owned(), t2)],
        "conformance: approvals in order, each approver once, first time kept"
    );

    assert!(ok(store.consume(&req.id, t2).await, "consume"));
    assert!(
        !ok(store.consume(&req.id, t2).await, "consume again"),
        "conformance: a request is consumed once"
    );
    let got = ok(store.get(&req.id).await, "get").unwrap_or_else(missing);
    assert_eq!(got.consumed_at, Some(t2));

    // Concurrency.
    let req = request(t0);
    ok(store.create(&req).await, "create");
    let adds = join_all((0..16).map(|_| store.add_approval(&req.id, "checker-c", t1))).await;
    let recorded = adds
        .into_iter()
        .map(|r| ok(r, "concurrent approve"))
        .filter(|new| *new)
        .count();
    assert_eq!(
        recorded, 1,
        "conformance: concurrent approvals by one approver count once"
    );
    let consumes = join_all((0..16).map(|_| store.consume(&req.id, t2))).await;
    let won = consumes
        .into_iter()
        .map(|r| ok(r, "concurrent consume"))
        .filter(|won| *won)
        .count();
    assert_eq!(
        won, 1,
        "conformance: exactly one concurrent consume succeeds"
    );
}

#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn missing<T>() -> T {
    panic!("conformance: a created request must be found")
}

/// The cross-instance race check: `a` and `b` are two instances of one store (two
/// processes on one database, say two pools). They race, at once, to record one approver
/// of one request (eight rounds, each instance first in turn) and then to consume it.
///
/// Checks that the request created on `a` is refused as a duplicate on `b`, that the
/// approver is recorded exactly once across both instances, and that exactly one of two
/// concurrent `consume` calls wins. For a single store, pass it twice.
///
/// # Panics
/// At the first behaviour that differs from the [`ApprovalStore`] contract, or on any
/// store error.
pub async fn approval_store_two_instances<A, B>(a: &A, b: &B)
where
    A: ApprovalStore + ?Sized,
    B: ApprovalStore + ?Sized,
{
    let now = datetime!(2024-06-30 12:00:00.123_456 UTC);
    let req = request(now);
    ok(a.create(&req).await, "create on the first instance");
    assert!(
        b.create(&req).await.is_err(),
        "conformance: a request created on one instance must be a duplicate on the other"
    );
    let mut wins = 0;
    for round in 0..8 {
        let (x, y) = if round % 2 == 0 {
            futures_util::future::join(
                a.add_approval(&req.id, "checker", now),
                b.add_approval(&req.id, "checker", now),
            )
            .await
        } else {
            let (y, x) = futures_util::future::join(
                b.add_approval(&req.id, "checker", now),
                a.add_approval(&req.id, "checker", now),
            )
            .await;
            (x, y)
        };
        wins +=
            usize::from(ok(x, "racing add_approval")) + usize::from(ok(y, "racing add_approval"));
    }
    assert_eq!(
        wins, 1,
        "conformance: one approver must be recorded once across instances"
    );
    let (x, y) = futures_util::future::join(a.consume(&req.id, now), b.consume(&req.id, now)).await;
    assert_eq!(
        usize::from(ok(x, "racing consume")) + usize::from(ok(y, "racing consume")),
        1,
        "conformance: exactly one of two concurrent consumes across instances must win"
    );
}
