//! The behavioural suite every [`RetentionStateStore`] runs, and an in-memory source,
//! archive and auditor for tests and benchmarks (feature `testing`).
//!
//! The suite names its record classes under a fresh prefix per run, so it can share a
//! store with other tests and run several times against one store.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a conformance suite: it panics at the first behaviour that does not hold"
)]

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use finsec_audit::AuditEvent;
use finsec_crypto::SubjectId;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{
    Archive, ArchiveBatch, BatchCounts, ExpiredRecord, RetentionPeriod, RetentionPolicies,
    RetentionRun, RetentionSource, RetentionStateStore,
};
use crate::error::{Error, Result};
use crate::gdpr::hold::{HoldStore, MemoryHoldStore, NewHold};
use crate::gdpr::{Auditor, RecordClass};

/// Records of one class in memory; can be told to fail a `delete` call, as a crash would.
#[derive(Debug)]
pub struct MemorySource {
    class: RecordClass,
    records: Mutex<BTreeMap<String, ExpiredRecord>>,
    fail_delete_at: AtomicU64,
    deletes: AtomicU64,
}

impl MemorySource {
    /// An empty source of `class`.
    #[must_use]
    pub fn new(class: RecordClass) -> Self {
        Self {
            class,
            records: Mutex::new(BTreeMap::new()),
            fail_delete_at: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
        }
    }

    /// Adds a record.
    pub fn insert(&self, record: ExpiredRecord) {
        self.records
            .lock()
            .unwrap()
            .insert(record.key.clone(), record);
    }

    /// Adds `n` records keyed `r0000000`..., one a minute back from `newest`, about
    /// `subjects` in turn (none when empty), each with a 64-byte content.
    pub fn fill(&self, n: u32, newest: OffsetDateTime, subjects: &[SubjectId]) {
        let mut records = self.records.lock().unwrap();
        for i in 0..n {
            let key = format!("r{i:09}");
            let subject = (!subjects.is_empty())
                .then(|| subjects[usize::try_from(i).unwrap() % subjects.len()].clone());
            records.insert(
                key.clone(),
                ExpiredRecord {
                    key,
                    subject,
                    created: newest - Duration::minutes(i64::from(i)),
                    content: vec![b'x'; 64],
                },
            );
        }
    }

    /// How many records it holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    /// Whether it holds none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether it holds `key`.
    #[must_use]
    pub fn contains(&self, key: &str) -> bool {
        self.records.lock().unwrap().contains_key(key)
    }

    /// Makes the `n`-th `delete` call from now fail (0: none).
    pub fn fail_delete_at(&self, n: u64) {
        self.deletes.store(0, Ordering::SeqCst);
        self.fail_delete_at.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl RetentionSource for MemorySource {
    fn class(&self) -> &RecordClass {
        &self.class
    }

    async fn expired(
        &self,
        cutoff: OffsetDateTime,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<ExpiredRecord>> {
        let records = self.records.lock().unwrap();
        let range = match after {
            Some(after) => records
                .range::<str, _>((std::ops::Bound::Excluded(after), std::ops::Bound::Unbounded)),
            None => records.range::<str, _>(..),
        };
        Ok(range
            .map(|(_, r)| r)
            .filter(|r| r.created < cutoff)
            .take(usize::try_from(limit).unwrap())
            .cloned()
            .collect())
    }

    async fn delete(&self, keys: &[String]) -> Result<u64> {
        let call = self.deletes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.fail_delete_at.load(Ordering::SeqCst) == call {
            return Err(Error::store("the source went away mid-run"));
        }
        let mut records = self.records.lock().unwrap();
        Ok(crate::gdpr::count(
            keys.iter().filter(|k| records.remove(*k).is_some()).count(),
        ))
    }
}

/// Batches in memory, by run and first key.
#[derive(Debug, Default)]
pub struct MemoryArchive {
    batches: Mutex<BTreeMap<(Uuid, String), Vec<String>>>,
}

impl MemoryArchive {
    /// An empty archive.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every archived key, sorted.
    #[must_use]
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .batches
            .lock()
            .unwrap()
            .values()
            .flatten()
            .cloned()
            .collect();
        keys.sort();
        keys
    }

    /// How many batches it holds.
    #[must_use]
    pub fn batches(&self) -> usize {
        self.batches.lock().unwrap().len()
    }
}

#[async_trait]
impl Archive for MemoryArchive {
    async fn store(&self, batch: &ArchiveBatch<'_>) -> Result<()> {
        self.batches.lock().unwrap().insert(
            (batch.run, batch.first_key.to_owned()),
            batch.records.iter().map(|r| r.key.clone()).collect(),
        );
        Ok(())
    }
}

/// Keeps every audited event in memory.
#[derive(Debug, Default)]
pub struct MemoryAuditor {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditor {
    /// No events.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event so far.
    #[must_use]
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().unwrap().clone()
    }
}

#[async_trait]
impl Auditor for MemoryAuditor {
    async fn audit(&self, event: &AuditEvent) -> Result<()> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// Runs every behaviour of the state store, and of a retention run on it, against `store`.
///
/// # Panics
///
/// On the first behaviour that does not hold.
pub async fn run_retention_state_store_suite<S: RetentionStateStore>(store: &S) {
    let tag = Uuid::now_v7().simple().to_string();
    let class = RecordClass::new(format!("logs-{tag}")).unwrap();
    let other = RecordClass::new(format!("temp-{tag}")).unwrap();
    let at = datetime!(2026-12-07 03:00:00.123456789 UTC);

    // Begin, and begin again while unfinished: the same run, cut-off unchanged.
    let run = store
        .begin(&class, at - Duration::days(90), at)
        .await
        .unwrap();
    assert_eq!(run.batches, 0);
    assert_eq!(run.cursor, None);
    assert_eq!(run.cutoff.nanosecond(), 123_456_000);
    let again = store
        .begin(&class, at - Duration::days(1), at + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(again, run);
    let other_run = store.begin(&other, at, at).await.unwrap();
    assert_ne!(other_run.id, run.id);

    // Advance is a compare-and-set on the batch count.
    let counts = BatchCounts {
        archived: 9,
        deleted: 9,
        held: 1,
    };
    let one = store.advance(run.id, 0, "k010", counts).await.unwrap();
    assert_eq!(
        (one.batches, one.cursor.as_deref(), one.deleted, one.held),
        (1, Some("k010"), 9, 1)
    );
    match store.advance(run.id, 0, "k020", counts).await {
        Err(Error::State(_)) => {}
        other => panic!("advanced a moved run: {other:?}"),
    }
    let two = store.advance(run.id, 1, "k020", counts).await.unwrap();
    assert_eq!((two.batches, two.archived, two.deleted), (2, 18, 18));
    assert_eq!(store.get(run.id).await.unwrap(), Some(two.clone()));
    match store.advance(Uuid::now_v7(), 0, "k", counts).await {
        Err(Error::NotFound { .. }) => {}
        other => panic!("advanced an unknown run: {other:?}"),
    }

    // Finished: once; a new begin starts a new run.
    let done = store.finish(run.id, at + Duration::hours(2)).await.unwrap();
    assert!(done.finished_at.is_some());
    match store.finish(run.id, at).await {
        Err(Error::State(_)) => {}
        other => panic!("finished twice: {other:?}"),
    }
    match store.advance(run.id, 2, "k030", counts).await {
        Err(Error::State(_)) => {}
        other => panic!("advanced a finished run: {other:?}"),
    }
    let next = store
        .begin(&class, at, at + Duration::days(1))
        .await
        .unwrap();
    assert_ne!(next.id, run.id);
    assert_eq!(
        store.recent(&class, 10).await.unwrap(),
        [next.clone(), done.clone()]
    );
    assert_eq!(
        store.recent(&class, 1).await.unwrap(),
        std::slice::from_ref(&next)
    );
    store.finish(next.id, at).await.unwrap();
    store.finish(other_run.id, at).await.unwrap();

    run_retention(store, &tag).await;
}

/// A retention run over a memory source on `store`: holds, archive before delete, audit,
/// a crash mid-run and the resume.
async fn run_retention<S: RetentionStateStore>(store: &S, tag: &str) {
    let class = RecordClass::new(format!("trades-{tag}")).unwrap();
    let now = datetime!(2033-12-07 12:00 UTC);
    let mut policies = RetentionPolicies::empty();
    policies.set(class.clone(), RetentionPeriod::Years(7));
    let alice = SubjectId::new(format!("user:{tag}:alice")).unwrap();
    let bob = SubjectId::new(format!("user:{tag}:bob")).unwrap();

    // 250 records from 2026-12-07 12:00 back, a minute apart, alternately alice's and
    // bob's; 10 more that are young.
    let source = MemorySource::new(class.clone());
    source.fill(
        250,
        datetime!(2026-12-07 11:59 UTC),
        &[alice.clone(), bob.clone()],
    );
    for i in 0..10 {
        source.insert(ExpiredRecord {
            key: format!("young{i}"),
            subject: None,
            created: datetime!(2026-12-08 00:00 UTC),
            content: b"young".to_vec(),
        });
    }
    let holds = MemoryHoldStore::new();
    let hold = holds
        .place(&NewHold {
            case: format!("LIT-{tag}"),
            subject: Some(bob.clone()),
            class: Some(class.clone()),
            placed_by: "legal".to_owned(),
            reason: "bob's claim".to_owned(),
            at: now,
        })
        .await
        .unwrap();
    let archive = MemoryArchive::new();
    let auditor = MemoryAuditor::new();
    let runner = RetentionRun::new(&policies, &holds, store, &archive, &auditor)
        .with_batch(40)
        .with_actor("retention-job");

    // The dry run lists, changes nothing.
    let dry = runner.dry_run(&source, now, 3).await.unwrap();
    assert_eq!((dry.would_delete, dry.held), (125, 125));
    assert_eq!(dry.deleted.len(), 3);
    assert_eq!(dry.deleted[0].key, "r000000000");
    assert!(
        dry.deleted[0].reason.contains("kept 7y"),
        "{}",
        dry.deleted[0].reason
    );
    assert!(dry.kept[0].reason.contains(&hold.id.to_string()));
    assert_eq!(source.len(), 260);
    assert_eq!(archive.batches(), 0);

    // The source fails on the third delete: two batches are gone, the third is archived
    // but not deleted, and the run stops.
    source.fail_delete_at(3);
    match runner.run(&source, now).await {
        Err(Error::Store(_)) => {}
        other => panic!("the run went on past a failed delete: {other:?}"),
    }
    assert_eq!(source.len(), 260 - 40);
    assert_eq!(archive.batches(), 3);
    let stopped = store.recent(&class, 1).await.unwrap().remove(0);
    assert_eq!((stopped.batches, stopped.deleted), (2, 40));
    assert!(stopped.finished_at.is_none());

    // Resumed: the same run, to the end; every deleted record was archived first.
    let done = runner.run(&source, now + Duration::days(1)).await.unwrap();
    assert_eq!(done.id, stopped.id);
    assert_eq!(done.cutoff, stopped.cutoff);
    assert_eq!((done.deleted, done.archived, done.held), (125, 125, 125));
    assert_eq!(done.batches, 7);
    assert_eq!(source.len(), 135);
    assert!(source.contains("r000000001"), "bob's, held");
    assert!(!source.contains("r000000000"), "alice's, deleted");
    assert!(source.contains("young0"));
    let archived = archive.keys();
    assert_eq!(archived.len(), 125);
    assert!(archived.iter().all(|k| !source.contains(k)));
    assert_eq!(
        archive.batches(),
        7,
        "the repeated batch replaced its first copy"
    );

    // Audited: start, every deleted key, finish, for both attempts.
    let events = auditor.events();
    let deleted_keys: usize = events
        .iter()
        .filter(|e| e.action() == "gdpr.retention.delete")
        .map(|e| match e.details().get("keys") {
            Some(finsec_audit::event::Detail::List(keys)) => keys.len(),
            other => panic!("no keys: {other:?}"),
        })
        .sum();
    assert_eq!(deleted_keys, 125);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action() == "gdpr.retention.run")
            .count(),
        2
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action() == "gdpr.retention.finish")
            .count(),
        1
    );

    // Released, the hold no longer keeps bob's records.
    holds
        .release(hold.id, "counsel", "settled", now)
        .await
        .unwrap();
    let last = runner.run(&source, now).await.unwrap();
    assert_ne!(last.id, done.id);
    assert_eq!((last.deleted, last.held), (125, 0));
    assert_eq!(source.len(), 10);

    // A class without a policy is refused.
    let unknown = MemorySource::new(RecordClass::new(format!("unknown-{tag}")).unwrap());
    match runner.dry_run(&unknown, now, 1).await {
        Err(Error::Invalid { .. }) => {}
        other => panic!("ran without a policy: {other:?}"),
    }
}
