//! The behavioural suite every [`HoldStore`] runs (feature `testing`).
//!
//! It names its cases and subjects under a fresh prefix per run, so it can share a store
//! with other tests and run several times against one store.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a conformance suite: it panics at the first behaviour that does not hold"
)]

use finsec_crypto::SubjectId;
use time::macros::datetime;
use uuid::Uuid;

use super::{HoldStore, MAX_REASON, NewHold, covering};
use crate::error::Error;
use crate::gdpr::RecordClass;

/// Runs every behaviour against `store`.
///
/// # Panics
///
/// On the first behaviour that does not hold.
pub async fn run_hold_store_suite<S: HoldStore + ?Sized>(store: &S) {
    let run = Uuid::now_v7().simple().to_string();
    let case = format!("LIT-{run}");
    let alice = SubjectId::new(format!("user:{run}:alice")).unwrap();
    let bob = SubjectId::new(format!("user:{run}:bob")).unwrap();
    let trades = RecordClass::new("trades").unwrap();
    let logs = RecordClass::new("logs").unwrap();
    let new = |subject: Option<&SubjectId>, class: Option<&RecordClass>, minute: u8| NewHold {
        case: case.clone(),
        subject: subject.cloned(),
        class: class.cloned(),
        placed_by: format!("legal-{run}"),
        reason: "claim filed by the subject; preserve trading records".to_owned(),
        at: datetime!(2026-12-07 10:00:00.123456789 UTC)
            .replace_minute(minute)
            .unwrap(),
    };

    // Placed: a subject's trades, then all of bob's records.
    let alice_trades = store
        .place(&new(Some(&alice), Some(&trades), 1))
        .await
        .unwrap();
    assert!(alice_trades.is_active());
    assert_eq!(
        alice_trades.hold.at,
        datetime!(2026-12-07 10:01:00.123456 UTC),
        "times are kept to the microsecond"
    );
    let bob_all = store.place(&new(Some(&bob), None, 2)).await.unwrap();
    assert_eq!(
        store.get(alice_trades.id).await.unwrap(),
        Some(alice_trades.clone())
    );
    assert!(store.get(Uuid::now_v7()).await.unwrap().is_none());

    // What they cover.
    let active: Vec<_> = store
        .active()
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.hold.case == case)
        .collect();
    assert_eq!(active, [alice_trades.clone(), bob_all.clone()]);
    assert!(alice_trades.covers(Some(&alice), &trades));
    assert!(!alice_trades.covers(Some(&alice), &logs));
    assert!(!alice_trades.covers(Some(&bob), &trades));
    assert!(!alice_trades.covers(None, &trades));
    assert!(bob_all.covers(Some(&bob), &logs));
    assert_eq!(covering(&active, Some(&bob), &trades).count(), 1);
    assert_eq!(covering(&active, Some(&alice), &logs).count(), 0);
    assert!(alice_trades.explain().contains(&case));

    // A class-wide hold covers records about nobody in particular too.
    let all_logs = store.place(&new(None, Some(&logs), 3)).await.unwrap();
    assert!(all_logs.covers(None, &logs));
    assert!(all_logs.covers(Some(&alice), &logs));

    // Release needs a second person and a reason; it happens once.
    match store
        .release(
            alice_trades.id,
            &format!("legal-{run}"),
            "settled",
            datetime!(2026-12-08 09:00 UTC),
        )
        .await
    {
        Err(Error::SamePerson { id }) => assert_eq!(id, alice_trades.id.to_string()),
        other => panic!("released by who placed it: {other:?}"),
    }
    match store
        .release(
            alice_trades.id,
            "counsel",
            " ",
            datetime!(2026-12-08 09:00 UTC),
        )
        .await
    {
        Err(Error::Invalid {
            field: "reason", ..
        }) => {}
        other => panic!("released without a reason: {other:?}"),
    }
    match store
        .release(
            alice_trades.id,
            "counsel",
            &"x".repeat(MAX_REASON + 1),
            datetime!(2026-12-08 09:00 UTC),
        )
        .await
    {
        Err(Error::Invalid {
            field: "reason", ..
        }) => {}
        other => panic!("accepted an over-long reason: {other:?}"),
    }
    assert!(
        store
            .get(alice_trades.id)
            .await
            .unwrap()
            .unwrap()
            .is_active()
    );
    let released = store
        .release(
            alice_trades.id,
            "counsel",
            "claim settled",
            datetime!(2026-12-08 09:00 UTC),
        )
        .await
        .unwrap();
    assert!(!released.is_active());
    assert!(!released.covers(Some(&alice), &trades));
    let release = released.released.clone().unwrap();
    assert_eq!(
        (release.by.as_str(), release.reason.as_str()),
        ("counsel", "claim settled")
    );
    assert_eq!(
        store.get(alice_trades.id).await.unwrap(),
        Some(released.clone())
    );
    match store
        .release(
            alice_trades.id,
            "auditor",
            "again",
            datetime!(2026-12-09 09:00 UTC),
        )
        .await
    {
        Err(Error::State(_)) => {}
        other => panic!("released twice: {other:?}"),
    }
    match store
        .release(
            Uuid::now_v7(),
            "auditor",
            "unknown",
            datetime!(2026-12-09 09:00 UTC),
        )
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!("released an unknown hold: {other:?}"),
    }

    // Active lists no released hold; the case keeps all of them.
    let active: Vec<_> = store
        .active()
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.hold.case == case)
        .collect();
    assert_eq!(active, [bob_all.clone(), all_logs.clone()]);
    assert_eq!(
        store.case(&case).await.unwrap(),
        [released, bob_all, all_logs]
    );
    assert!(store.case("no-such-case").await.unwrap().is_empty());

    // Refused when placed: bad case, no reason, a reason with a control character.
    for bad in [
        NewHold {
            case: "LIT 17".into(),
            ..new(None, None, 4)
        },
        NewHold {
            reason: String::new(),
            ..new(None, None, 4)
        },
        NewHold {
            reason: "a\nb".into(),
            ..new(None, None, 4)
        },
        NewHold {
            placed_by: String::new(),
            ..new(None, None, 4)
        },
    ] {
        match store.place(&bad).await {
            Err(Error::Invalid { .. }) => {}
            other => panic!("placed a bad hold: {other:?}"),
        }
    }
    assert_eq!(store.case(&case).await.unwrap().len(), 3);
}
