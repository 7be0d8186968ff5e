//! The behavioural suite every [`RequestStore`] runs (feature `testing`).
//!
//! It names its subjects under a fresh prefix per run, and its deadlines far from any
//! other run's (a random year), so it can share a store with other tests and run several
//! times against one store.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a conformance suite: it panics at the first behaviour that does not hold"
)]

use finsec_crypto::SubjectId;
use serde_json::json;
use time::macros::{datetime, time};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{NewRequest, RequestKind, RequestStatus, RequestStore, Verification, add_months};
use crate::error::Error;

/// Runs every behaviour against `store`.
///
/// # Panics
///
/// On the first behaviour that does not hold.
pub async fn run_request_store_suite<S: RequestStore + ?Sized>(store: &S) {
    let run = Uuid::now_v7();
    let tag = run.simple().to_string();
    // A year of this run's own (3000-9000), so `due` sees no other run's requests.
    let year = 3000 + i32::try_from(run.as_u128() % 6000).unwrap();
    let at = |month: u8, day: u8| {
        datetime!(2000-01-01 09:15:30.123456789 UTC)
            .replace_year(year)
            .unwrap()
            .replace_month(month.try_into().unwrap())
            .unwrap()
            .replace_day(day)
            .unwrap()
    };
    let alice = SubjectId::new(format!("user:{tag}:alice")).unwrap();
    let bob = SubjectId::new(format!("user:{tag}:bob")).unwrap();
    let ours = |requests: Vec<super::DataSubjectRequest>| -> Vec<super::DataSubjectRequest> {
        requests
            .into_iter()
            .filter(|r| r.request.subject.as_str().contains(&tag))
            .collect()
    };
    let new = |subject: &SubjectId, kind: RequestKind, received: OffsetDateTime| NewRequest {
        subject: subject.clone(),
        kind,
        received_at: received,
        filed_by: subject.as_str().to_owned(),
        verification: Verification {
            method: "session+mfa".to_owned(),
            by: subject.as_str().to_owned(),
            at: received,
        },
        note: String::new(),
    };

    // One month to answer; 31 January is due on the last day of February.
    let jan31 = store
        .create(&new(&alice, RequestKind::Access, at(1, 31)))
        .await
        .unwrap();
    assert_eq!(jan31.status, RequestStatus::Open);
    assert_eq!(
        jan31.request.received_at.nanosecond(),
        123_456_000,
        "times are kept to the microsecond"
    );
    let last_feb = if time::util::is_leap_year(year) {
        29
    } else {
        28
    };
    assert_eq!(jan31.due.date(), at(2, last_feb).date());
    assert_eq!(jan31.due.time(), time!(09:15:30.123456));
    assert_eq!(store.get(jan31.id).await.unwrap(), Some(jan31.clone()));
    assert!(store.get(Uuid::now_v7()).await.unwrap().is_none());

    let erasure = store
        .create(&NewRequest {
            filed_by: "privacy-officer".to_owned(),
            note: "filed by post, identity checked against the passport on file".to_owned(),
            verification: Verification {
                method: "id-document".to_owned(),
                by: "privacy-officer".to_owned(),
                at: at(3, 2),
            },
            ..new(&alice, RequestKind::Erasure, at(3, 1))
        })
        .await
        .unwrap();
    assert_eq!(erasure.due.date(), at(4, 1).date());
    let bobs = store
        .create(&new(&bob, RequestKind::Portability, at(2, 10)))
        .await
        .unwrap();

    // Due by a date, earliest first; the overdue ones are those due by now.
    let due = ours(store.due(at(3, 15), 100).await.unwrap());
    assert_eq!(due, [jan31.clone(), bobs.clone()]);
    assert!(jan31.is_overdue(at(3, 1)));
    assert!(!erasure.is_overdue(at(3, 1)));
    assert_eq!(store.due(at(12, 31), 1).await.unwrap().len(), 1);
    assert!(ours(store.due(at(1, 30), 100).await.unwrap()).is_empty());

    // Extended once, before the deadline, to three months after receipt, with a reason.
    match store
        .extend(bobs.id, "", "privacy-officer", at(2, 11))
        .await
    {
        Err(Error::Invalid {
            field: "reason", ..
        }) => {}
        other => panic!("extended without a reason: {other:?}"),
    }
    match store
        .extend(jan31.id, "complex", "privacy-officer", at(3, 1))
        .await
    {
        Err(Error::State(_)) => {}
        other => panic!("extended after the deadline: {other:?}"),
    }
    let extended = store
        .extend(
            bobs.id,
            "twelve sources to collect from",
            "privacy-officer",
            at(2, 20),
        )
        .await
        .unwrap();
    assert_eq!(extended.due, add_months(bobs.request.received_at, 3));
    assert_eq!(extended.due.date(), at(5, 10).date());
    let extension = extended.extension.clone().unwrap();
    assert_eq!(extension.reason, "twelve sources to collect from");
    assert_eq!(store.get(bobs.id).await.unwrap(), Some(extended.clone()));
    match store
        .extend(bobs.id, "again", "privacy-officer", at(2, 21))
        .await
    {
        Err(Error::State(_)) => {}
        other => panic!("extended twice: {other:?}"),
    }
    assert_eq!(
        ours(store.due(at(3, 15), 100).await.unwrap()),
        std::slice::from_ref(&jan31),
        "the extension moved bob's deadline"
    );

    // Closed once, as completed or refused, with an outcome.
    match store
        .close(jan31.id, RequestStatus::Open, &json!({}), at(2, 1))
        .await
    {
        Err(Error::State(_)) => {}
        other => panic!("closed as open: {other:?}"),
    }
    let outcome = json!({"export": {"sources": 8, "records": 1204}});
    let done = store
        .close(jan31.id, RequestStatus::Completed, &outcome, at(2, 1))
        .await
        .unwrap();
    assert_eq!(done.status, RequestStatus::Completed);
    assert_eq!(done.outcome, Some(outcome));
    assert_eq!(done.closed_at, Some(at(2, 1) - Duration::nanoseconds(789)));
    assert!(!done.is_overdue(at(12, 1)));
    match store
        .close(jan31.id, RequestStatus::Refused, &json!({}), at(2, 2))
        .await
    {
        Err(Error::State(_)) => {}
        other => panic!("closed twice: {other:?}"),
    }
    match store
        .extend(jan31.id, "late", "privacy-officer", at(2, 2))
        .await
    {
        Err(Error::State(_)) => {}
        other => panic!("extended a closed request: {other:?}"),
    }
    let refused = store
        .close(
            erasure.id,
            RequestStatus::Refused,
            &json!({"reason": "identity not verified"}),
            at(3, 20),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, RequestStatus::Refused);
    assert_eq!(
        ours(store.due(at(12, 31), 100).await.unwrap()),
        std::slice::from_ref(&extended)
    );
    match store
        .close(
            Uuid::now_v7(),
            RequestStatus::Completed,
            &json!({}),
            at(3, 20),
        )
        .await
    {
        Err(Error::NotFound { .. }) => {}
        other => panic!("closed an unknown request: {other:?}"),
    }

    // Per subject, oldest first, closed ones included.
    assert_eq!(store.for_subject(&alice).await.unwrap(), [done, refused]);
    assert_eq!(store.for_subject(&bob).await.unwrap(), [extended]);

    // Refused when recorded.
    for bad in [
        NewRequest {
            filed_by: String::new(),
            ..new(&bob, RequestKind::Access, at(6, 1))
        },
        NewRequest {
            verification: Verification {
                method: "a passport".to_owned(),
                by: "officer".to_owned(),
                at: at(6, 1),
            },
            ..new(&bob, RequestKind::Access, at(6, 1))
        },
        NewRequest {
            note: "line\nbreak".to_owned(),
            ..new(&bob, RequestKind::Access, at(6, 1))
        },
    ] {
        match store.create(&bad).await {
            Err(Error::Invalid { .. }) => {}
            other => panic!("recorded a bad request: {other:?}"),
        }
    }
    assert_eq!(store.for_subject(&bob).await.unwrap().len(), 1);
}
