//! The behavioural suite every [`ConsentStore`] runs (feature `testing`).
//!
//! It names its subjects under a fresh prefix per run, so it can share a store with other
//! tests and run several times against one store.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a conformance suite: it panics at the first behaviour that does not hold"
)]

use finsec_crypto::SubjectId;
use time::macros::datetime;

use super::{ConsentAction, ConsentEvent, ConsentStore, MAX_EVIDENCE, Purpose, is_consented};
use crate::error::Error;

fn event(subject: &SubjectId, purpose: &str, action: ConsentAction, version: u32) -> ConsentEvent {
    ConsentEvent {
        subject: subject.clone(),
        purpose: Purpose::new(purpose).unwrap(),
        action,
        policy_version: version,
        at: datetime!(2026-12-07 10:00 UTC),
        channel: "web".to_owned(),
        evidence: "form consent-v3, checkbox marketing".to_owned(),
    }
}

/// Runs every behaviour against `store`.
///
/// # Panics
///
/// On the first behaviour that does not hold.
pub async fn run_consent_store_suite<S: ConsentStore + ?Sized>(store: &S) {
    let run = uuid::Uuid::now_v7().simple().to_string();
    let alice = SubjectId::new(format!("user:{run}:alice")).unwrap();
    let bob = SubjectId::new(format!("user:{run}:bob")).unwrap();
    let purpose = format!("marketing.{run}");
    let marketing = Purpose::new(purpose.clone()).unwrap();
    let other = Purpose::new(format!("analytics.{run}")).unwrap();

    // Nothing recorded: no consent.
    assert!(store.current(&alice, &marketing).await.unwrap().is_none());
    assert!(!is_consented(store, &alice, &marketing).await.unwrap());

    // Granted, then withdrawn at the same instant: the later entry decides.
    let granted = store
        .record(&event(&alice, &purpose, ConsentAction::Granted, 2))
        .await
        .unwrap();
    assert!(is_consented(store, &alice, &marketing).await.unwrap());
    let withdrawn = store
        .record(&event(&alice, &purpose, ConsentAction::Withdrawn, 2))
        .await
        .unwrap();
    assert!(withdrawn.seq > granted.seq);
    assert!(!is_consented(store, &alice, &marketing).await.unwrap());
    assert_eq!(
        store.current(&alice, &marketing).await.unwrap(),
        Some(withdrawn.clone())
    );
    // Another purpose is independent.
    assert!(!is_consented(store, &alice, &other).await.unwrap());
    let analytics = store
        .record(&event(&alice, other.as_str(), ConsentAction::Granted, 1))
        .await
        .unwrap();
    assert!(is_consented(store, &alice, &other).await.unwrap());

    // The history keeps everything, in order, exactly as recorded.
    let history = store.history(&alice).await.unwrap();
    assert_eq!(history, [granted.clone(), withdrawn.clone(), analytics]);
    assert!(store.history(&bob).await.unwrap().is_empty());

    // Who to ask again after policy version 3: subjects whose current grant is older.
    let bob_grant = store
        .record(&event(&bob, &purpose, ConsentAction::Granted, 2))
        .await
        .unwrap();
    let carol = SubjectId::new(format!("user:{run}:carol")).unwrap();
    store
        .record(&event(&carol, &purpose, ConsentAction::Granted, 3))
        .await
        .unwrap();
    let stale = store.granted_before(&marketing, 3, 0, 100).await.unwrap();
    assert_eq!(
        stale,
        std::slice::from_ref(&bob_grant),
        "alice withdrew, carol is current"
    );
    assert!(
        store
            .granted_before(&marketing, 2, 0, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .granted_before(&marketing, 3, bob_grant.seq, 100)
            .await
            .unwrap()
            .is_empty()
    );
    // Alice grants again under version 1: she is stale too, after bob.
    let again = store
        .record(&event(&alice, &purpose, ConsentAction::Granted, 1))
        .await
        .unwrap();
    let stale = store.granted_before(&marketing, 3, 0, 100).await.unwrap();
    assert_eq!(stale, [bob_grant.clone(), again.clone()]);
    assert_eq!(
        store.granted_before(&marketing, 3, 0, 1).await.unwrap(),
        [bob_grant]
    );

    // Refused: a channel with a space, evidence with a control character or too long.
    for bad in [
        ConsentEvent {
            channel: "web form".into(),
            ..event(&bob, &purpose, ConsentAction::Granted, 1)
        },
        ConsentEvent {
            channel: String::new(),
            ..event(&bob, &purpose, ConsentAction::Granted, 1)
        },
        ConsentEvent {
            evidence: "a\u{0}b".into(),
            ..event(&bob, &purpose, ConsentAction::Granted, 1)
        },
        ConsentEvent {
            evidence: "x".repeat(MAX_EVIDENCE + 1),
            ..event(&bob, &purpose, ConsentAction::Granted, 1)
        },
    ] {
        match store.record(&bad).await {
            Err(Error::Invalid { .. }) => {}
            other => panic!("accepted a bad entry: {other:?}"),
        }
    }
    assert_eq!(store.history(&bob).await.unwrap().len(), 1);

    // Erasure removes every entry of the subject and nobody else's.
    assert_eq!(store.erase(&alice).await.unwrap(), 4);
    assert!(store.history(&alice).await.unwrap().is_empty());
    assert!(!is_consented(store, &alice, &marketing).await.unwrap());
    assert_eq!(store.history(&bob).await.unwrap().len(), 1);
    assert_eq!(store.erase(&alice).await.unwrap(), 0);
}
