#![cfg(test)]
//! Tampering with a stored log, every way the verifier names, and crypto-shredding.

use std::sync::Arc;

use finsec_audit::AuditSink;
use finsec_audit::merkle::Hash;
use finsec_audit::{
    Actor, AuditEvent, AuditLog, Checkpoint, Detail, EventTime, LogVerifier, MemorySink,
    MemoryWitness, NoteSigner, Outcome, Personal, Precision, Problem,
};
use finsec_crypto::{Key256, KeyName, Keyring, MemorySubjectKeyStore, SubjectId, SubjectKeys};
use time::macros::datetime;

const ORIGIN: &str = "audit.example.com/test";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, Key256::from_bytes([3; 32])).unwrap()
}

fn event(i: u32) -> AuditEvent {
    let t = EventTime::new(
        datetime!(2026-12-05 12:00 UTC),
        Precision::Microsecond,
        "system",
    )
    .unwrap();
    AuditEvent::new("order.place", Outcome::Success, t)
        .unwrap()
        .with_resource("order", &format!("o-{i}"))
        .unwrap()
}

/// A log of 20 events with checkpoints at 8 and 20, witnessed.
async fn fresh() -> (AuditLog<MemorySink>, Arc<MemoryWitness>) {
    let witness = Arc::new(MemoryWitness::new());
    let log = AuditLog::new(MemorySink::new(), ORIGIN, signer())
        .unwrap()
        .with_witness(witness.clone());
    let events: Vec<_> = (0..20).map(event).collect();
    log.append(&events[..8]).await.unwrap();
    log.checkpoint().await.unwrap();
    log.append(&events[8..]).await.unwrap();
    log.checkpoint().await.unwrap();
    (log, witness)
}

async fn check(log: &AuditLog<MemorySink>, witness: &Arc<MemoryWitness>) -> Option<Problem> {
    LogVerifier::new(signer().verifier(), ORIGIN)
        .with_witness(witness.clone())
        .verify(log.sink())
        .await
        .unwrap()
        .problem
}

#[tokio::test]
async fn an_untouched_log_verifies() {
    let (log, witness) = fresh().await;
    let report = LogVerifier::new(signer().verifier(), ORIGIN)
        .with_witness(witness.clone())
        .verify(log.sink())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 20);
    assert_eq!(report.checkpoints, 3);
    assert_eq!(report.root, log.root_at(20).await.unwrap());
}

#[tokio::test]
async fn every_kind_of_tampering_is_named() {
    let mut seen = 0;
    // Edited: bytes changed, stored leaf kept.
    let (log, w) = fresh().await;
    log.sink().tamper(|raw| {
        let e = &mut raw.events[5].1;
        let text = String::from_utf8(e.clone()).unwrap().replace("o-5", "o-6");
        *e = text.into_bytes();
    });
    assert_eq!(check(&log, &w).await, Some(Problem::Edited { index: 5 }));
    seen += 1;
    // Reordered: two events swapped with their leaves' bytes.
    let (log, w) = fresh().await;
    log.sink().tamper(|raw| {
        let a = raw.events[3].1.clone();
        raw.events[3].1 = raw.events[4].1.clone();
        raw.events[4].1 = a;
    });
    assert_eq!(
        check(&log, &w).await,
        Some(Problem::Reordered { index: 3, other: 4 })
    );
    seen += 1;
    // Deleted: a row removed.
    let (log, w) = fresh().await;
    log.sink().tamper(|raw| {
        raw.events.remove(7);
    });
    assert_eq!(check(&log, &w).await, Some(Problem::Deleted { index: 7 }));
    seen += 1;
    // Inserted: a second row at a position.
    let (log, w) = fresh().await;
    log.sink().tamper(|raw| {
        let copy = raw.events[2].clone();
        raw.events.insert(3, copy);
    });
    assert_eq!(check(&log, &w).await, Some(Problem::Inserted { index: 2 }));
    seen += 1;
    // A stored tree node changed.
    let (log, w) = fresh().await;
    log.sink()
        .tamper(|raw| raw.levels[1][1] = Hash::leaf(b"forged"));
    assert_eq!(
        check(&log, &w).await,
        Some(Problem::NodeMismatch { level: 2, index: 1 })
    );
    seen += 1;
    // History rewritten and rehashed: the event and its leaf changed consistently.
    let (log, w) = fresh().await;
    log.sink().tamper(|raw| {
        let text = String::from_utf8(raw.events[1].1.clone())
            .unwrap()
            .replace("o-1", "o-9");
        raw.events[1].1 = text.into_bytes();
        raw.events[1].2 = Hash::leaf(&raw.events[1].1);
    });
    assert_eq!(
        check(&log, &w).await,
        Some(Problem::RootMismatch {
            source: "log".to_owned(),
            size: 8
        })
    );
    seen += 1;
    // Truncated: the last events and the last checkpoint removed; the witness remembers.
    let (log, w) = fresh().await;
    log.sink().tamper(|raw| {
        raw.events.truncate(15);
        raw.checkpoints.remove(&20);
    });
    assert_eq!(
        check(&log, &w).await,
        Some(Problem::Truncated {
            source: "memory".to_owned(),
            checkpoint_size: 20,
            log_size: 15
        })
    );
    seen += 1;
    // A checkpoint with a bad signature.
    let (log, w) = fresh().await;
    log.sink().tamper(|raw| {
        let note = raw.checkpoints.get_mut(&8).unwrap();
        note[0] = note[0].replacen("\n8\n", "\n9\n", 1);
    });
    assert!(matches!(
        check(&log, &w).await,
        Some(Problem::BadCheckpoint { size: 8, .. })
    ));
    seen += 1;
    // A split view: a second validly signed checkpoint at size 8 with another root.
    let (log, w) = fresh().await;
    let other = signer().sign(Checkpoint::new(ORIGIN, 8, Hash::leaf(b"other")).unwrap());
    log.sink().tamper(|raw| {
        raw.checkpoints
            .get_mut(&8)
            .unwrap()
            .push(other.note().to_owned());
    });
    assert_eq!(check(&log, &w).await, Some(Problem::SplitView { size: 8 }));
    seen += 1;
    assert_eq!(seen, 9);
}

#[tokio::test]
async fn shredding_a_subject_keeps_the_log_valid_and_their_details_unreadable() {
    let keyring = Keyring::new();
    let kek = KeyName::new("audit-pii").unwrap();
    keyring.create_key(&kek).unwrap();
    let keys = SubjectKeys::new(MemorySubjectKeyStore::new(), keyring, kek);
    let alice = SubjectId::new("user-alice").unwrap();
    let now = datetime!(2026-12-05 12:00 UTC);
    let email = Personal::encrypt(&keys, &alice, "details.email", "alice@example.com", now)
        .await
        .unwrap();
    let ip = Personal::encrypt(&keys, &alice, "actor.ip", "203.0.113.7", now)
        .await
        .unwrap();
    let e = event(1)
        .with_actor(Actor {
            user: Some("user-alice".into()),
            ip: Some(ip.into()),
            ..Actor::default()
        })
        .unwrap()
        .with_detail("email", email.clone())
        .unwrap();
    let bytes = String::from_utf8(e.to_canonical().unwrap()).unwrap();
    assert!(!bytes.contains("alice@example.com") && !bytes.contains("203.0.113.7"));

    let witness = Arc::new(MemoryWitness::new());
    let log = AuditLog::new(MemorySink::new(), ORIGIN, signer())
        .unwrap()
        .with_witness(witness.clone());
    log.append(&[event(0), e.clone(), event(2)]).await.unwrap();
    let (cp, _) = log.checkpoint().await.unwrap();
    assert_eq!(
        email.decrypt(&keys, "details.email").await.unwrap(),
        "alice@example.com"
    );

    assert!(keys.shred(&alice).await.unwrap());

    let report = LogVerifier::new(signer().verifier(), ORIGIN)
        .with_witness(witness)
        .verify(log.sink())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    let proof = log.inclusion_proof(e.id(), 3).await.unwrap();
    proof.verify(cp.checkpoint().root()).unwrap();
    let stored = log.sink().read(1, 1).await.unwrap();
    let parsed = AuditEvent::from_canonical(&stored[0].bytes).unwrap();
    let Some(Detail::Personal(p)) = parsed.details().get("email") else {
        panic!("no email detail");
    };
    assert!(matches!(
        p.decrypt(&keys, "details.email").await,
        Err(finsec_audit::EventError::Crypto(
            finsec_crypto::Error::SubjectErased { .. }
        ))
    ));
}
