#![cfg(test)]
//! Tampering with a stored log, every way the verifier names, and crypto-shredding.

use std::sync::Arc;

use finsec_audit::{
    Actor, AuditEvent, AuditLog, Detail, EventTime, LogVerifier, MemorySink, MemoryWitness,
    NoteSigner, Outcome, Personal, Precision,
};
use finsec_audit::{Appended, AuditSink, EncodedEvent, Hash, NodeId, StoredEvent};
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
    let ran = finsec_audit::testing::tamper_conformance(|| async { MemorySink::new() }).await;
    assert_eq!(ran, 10);
}

#[tokio::test]
async fn the_memory_sink_conforms() {
    let sink = MemorySink::new();
    finsec_audit::testing::audit_sink_conformance(&sink).await;
    finsec_audit::testing::audit_sink_conformance(&sink).await;
    finsec_audit::testing::audit_sink_two_instances(&sink, &sink).await;
    finsec_audit::testing::audit_query_conformance(&sink).await;
    finsec_audit::testing::audit_query_conformance(&sink).await;
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

/// A sink that forgets to refuse an id it already holds: the suite must catch it.
struct Forgetful(MemorySink);

#[async_trait::async_trait]
impl AuditSink for Forgetful {
    async fn append(&self, events: &[EncodedEvent]) -> finsec_audit::Result<Appended> {
        // Drops the events it already holds instead of refusing the batch.
        let mut fresh = Vec::new();
        for e in events {
            if self.0.position(e.id()).await?.is_none() {
                fresh.push(e.clone());
            }
        }
        self.0.append(&fresh).await
    }
    async fn size(&self) -> finsec_audit::Result<u64> {
        self.0.size().await
    }
    async fn read(&self, from: u64, limit: usize) -> finsec_audit::Result<Vec<StoredEvent>> {
        self.0.read(from, limit).await
    }
    async fn nodes(
        &self,
        ids: &[NodeId],
    ) -> finsec_audit::Result<std::collections::HashMap<NodeId, Hash>> {
        self.0.nodes(ids).await
    }
    async fn position(&self, id: uuid::Uuid) -> finsec_audit::Result<Option<u64>> {
        self.0.position(id).await
    }
    async fn put_checkpoint(&self, size: u64, note: &str) -> finsec_audit::Result<()> {
        self.0.put_checkpoint(size, note).await
    }
    async fn checkpoints(&self, from: u64, to: u64) -> finsec_audit::Result<Vec<(u64, String)>> {
        self.0.checkpoints(from, to).await
    }
}

#[tokio::test]
#[should_panic(expected = "conformance: an id already in the log must be refused")]
async fn the_sink_suite_fails_a_sink_that_takes_duplicates() {
    finsec_audit::testing::audit_sink_conformance(&Forgetful(MemorySink::new())).await;
}

#[tokio::test]
async fn large_batches_are_parsed_in_parallel_and_still_name_the_first_bad_event() {
    use finsec_audit::testing::Tamper as _;
    let make = || async {
        let sink = MemorySink::new();
        let events: Vec<EncodedEvent> = (0..3_000u32)
            .map(|i| EncodedEvent::new(&event(i)).unwrap())
            .collect();
        sink.append(&events).await.unwrap();
        sink
    };
    let check = |sink: MemorySink| async move {
        LogVerifier::new(signer().verifier(), ORIGIN)
            .verify(&sink)
            .await
            .unwrap()
    };
    let report = check(make().await).await;
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.events, 3_000);

    // Not canonical (an extra space), rehashed so the leaf matches.
    let sink = make().await;
    let mut bytes = sink.read(2_500, 1).await.unwrap().remove(0).bytes;
    bytes.insert(1, b' ');
    let leaf = Hash::leaf(&bytes);
    sink.set_event(2_500, &bytes, Some(leaf)).await.unwrap();
    assert!(matches!(
        check(sink).await.problem,
        Some(finsec_audit::Problem::NotCanonical { index: 2_500, .. })
    ));

    // Event 1,700 made a copy of event 100, rehashed.
    let sink = make().await;
    let copy = sink.read(100, 1).await.unwrap().remove(0).bytes;
    let leaf = Hash::leaf(&copy);
    sink.set_event(1_700, &copy, Some(leaf)).await.unwrap();
    let report = check(sink).await;
    assert!(
        matches!(
            report.problem,
            Some(finsec_audit::Problem::DuplicateId { index: 1_700, .. })
        ),
        "{report:?}"
    );
}

/// A 50-event log read 4 events at a time: the verifier checks one batch while it reads
/// and parses the next, and must still name the first bad event, wherever it falls.
#[tokio::test]
async fn small_batches_still_name_the_first_bad_event() {
    use finsec_audit::testing::Tamper as _;
    use finsec_audit::verify::Problem;

    async fn fifty() -> AuditLog<MemorySink> {
        let log = AuditLog::new(MemorySink::new(), ORIGIN, signer()).unwrap();
        let events: Vec<_> = (0..50).map(event).collect();
        log.append(&events[..21]).await.unwrap();
        log.checkpoint().await.unwrap();
        log.append(&events[21..]).await.unwrap();
        log.checkpoint().await.unwrap();
        log
    }
    async fn check(log: &AuditLog<MemorySink>, parse: bool) -> finsec_audit::verify::VerifyReport {
        LogVerifier::new(signer().verifier(), ORIGIN)
            .batch_size(4)
            .parse_events(parse)
            .verify(log.sink())
            .await
            .unwrap()
    }

    let mut ran = 0;
    for parse in [true, false] {
        let log = fifty().await;
        let report = check(&log, parse).await;
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.events, 50);
        assert_eq!(report.root, log.root_at(50).await.unwrap());

        for index in [0u64, 3, 4, 17, 48, 49] {
            let log = fifty().await;
            let stored = log.sink().read(index, 1).await.unwrap().remove(0);
            let edited = String::from_utf8(stored.bytes)
                .unwrap()
                .replacen("\"o-", "\"x-", 1);
            log.sink()
                .set_event(index, edited.as_bytes(), None)
                .await
                .unwrap();
            let report = check(&log, parse).await;
            assert_eq!(report.problem, Some(Problem::Edited { index }), "{index}");
            assert_eq!(report.events, index, "events before the bad one");
            ran += 1;
        }

        let log = fifty().await;
        log.sink().delete_event(30).await.unwrap();
        let report = check(&log, parse).await;
        assert_eq!(report.problem, Some(Problem::Deleted { index: 30 }));
        ran += 1;

        // A stored interior node of a late batch replaced.
        let log = fifty().await;
        log.sink()
            .set_node(NodeId::new(2, 9), Hash::leaf(b"forged"))
            .await
            .unwrap();
        let report = check(&log, parse).await;
        assert_eq!(
            report.problem,
            Some(Problem::NodeMismatch { level: 2, index: 9 })
        );
        ran += 1;
    }
    assert_eq!(ran, 16);
}
