#![cfg(test)]
//! `AuditWriter`: back-pressure, group commit, flush and shutdown, periodic checkpoints,
//! retries, and the spool through an outage (a sink switched off, and a PostgreSQL cluster
//! of the test's own stopped and started again).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use finsec_audit::{
    Appended, AuditEvent, AuditLog, AuditSink, AuditWriter, EncodedEvent, Error, EventTime, Hash,
    LogVerifier, MemorySink, NodeId, NoteSigner, Outcome, Precision, Result, Spool, StoredEvent,
    WriterOptions,
};
use finsec_crypto::Key256;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use uuid::Uuid;

const ORIGIN: &str = "audit.example.com/writer";

fn signer() -> NoteSigner {
    NoteSigner::from_seed(ORIGIN, Key256::from_bytes([4; 32])).unwrap()
}

fn event(i: usize) -> AuditEvent {
    let t = EventTime::new(OffsetDateTime::now_utc(), Precision::Microsecond, "system").unwrap();
    AuditEvent::new("order.place", Outcome::Success, t)
        .unwrap()
        .with_resource("order", &format!("w-{i}"))
        .unwrap()
}

/// A sink in front of another that can be held shut (appends wait for a permit) or
/// switched off (appends fail).
struct Gate<S> {
    inner: S,
    permits: Semaphore,
    down: AtomicBool,
}

impl<S> Gate<S> {
    fn open(inner: S) -> Self {
        Self {
            inner,
            permits: Semaphore::new(1_000_000),
            down: AtomicBool::new(false),
        }
    }
}

#[async_trait]
impl<S: AuditSink> AuditSink for Gate<S> {
    async fn append(&self, events: &[EncodedEvent]) -> Result<Appended> {
        let _permit = self.permits.acquire().await.unwrap();
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("switched off"));
        }
        self.inner.append(events).await
    }
    async fn size(&self) -> Result<u64> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("switched off"));
        }
        self.inner.size().await
    }
    async fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.inner.read(from, limit).await
    }
    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        self.inner.nodes(ids).await
    }
    async fn position(&self, id: Uuid) -> Result<Option<u64>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::store("switched off"));
        }
        self.inner.position(id).await
    }
    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        self.inner.put_checkpoint(size, note).await
    }
    async fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>> {
        self.inner.checkpoints(from, to).await
    }
}

fn log<S: AuditSink>(sink: S) -> AuditLog<S> {
    AuditLog::new(sink, ORIGIN, signer()).unwrap()
}

async fn verify<S: AuditSink + ?Sized>(sink: &S) -> u64 {
    let report = LogVerifier::new(signer().verifier(), ORIGIN)
        .verify(sink)
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
    report.events
}

#[tokio::test]
async fn appends_return_positions_and_shutdown_writes_everything_accepted() {
    let sink = Arc::new(MemorySink::new());
    let writer = AuditWriter::spawn(log(sink.clone()), WriterOptions::default(), None);
    assert_eq!(writer.append(&event(0)).await.unwrap(), 0);
    assert_eq!(writer.append(&event(1)).await.unwrap(), 1);
    for i in 2..1_002 {
        writer.record(&event(i)).await.unwrap();
    }
    let last = writer.shutdown().await.unwrap().unwrap();
    assert_eq!(last.checkpoint().size(), 1_002);
    assert_eq!(sink.size().await.unwrap(), 1_002);
    assert!(matches!(
        writer.record(&event(9)).await,
        Err(Error::WriterStopped)
    ));
    assert!(writer.stats().batches < 1_002, "{:?}", writer.stats());
    assert_eq!(verify(&*sink).await, 1_002);
}

#[tokio::test]
async fn the_same_event_twice_has_one_position() {
    let sink = Arc::new(MemorySink::new());
    let writer = AuditWriter::spawn(log(sink.clone()), WriterOptions::default(), None);
    let e = event(0);
    writer.append(&event(1)).await.unwrap();
    let pos = writer.append(&e).await.unwrap();
    assert_eq!(writer.append(&e).await.unwrap(), pos);
    writer.flush().await.unwrap();
    assert_eq!(sink.size().await.unwrap(), 2);
}

#[tokio::test]
async fn a_full_queue_pushes_back_and_drops_nothing() {
    let gate = Arc::new(Gate::open(MemorySink::new()));
    let options = WriterOptions {
        capacity: 4,
        max_batch: 1,
        ..WriterOptions::default()
    };
    let writer = AuditWriter::spawn(log(gate.clone()), options, None);
    // Hold the sink shut; the writer takes one event and waits in append.
    let held = gate.permits.acquire_many(1_000_000).await.unwrap();
    writer.try_record(&event(0)).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut queued = 1;
    let full = loop {
        match writer.try_record(&event(queued)) {
            Ok(()) => queued += 1,
            Err(e) => break e,
        }
        assert!(queued < 100, "the queue never filled");
    };
    assert!(matches!(full, Error::QueueFull), "{full}");
    assert_eq!(queued, 5, "one in the writer, four in the queue");
    // `record` waits for room instead.
    let waiting = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.record(&event(99)).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        !waiting.is_finished(),
        "record must wait while the queue is full"
    );
    drop(held);
    waiting.await.unwrap().unwrap();
    writer.flush().await.unwrap();
    assert_eq!(gate.size().await.unwrap(), 6);
}

#[tokio::test(start_paused = true)]
async fn checkpoints_every_n_events_and_every_interval() {
    let sink = Arc::new(MemorySink::new());
    let options = WriterOptions {
        checkpoint_every: 10,
        checkpoint_interval: Duration::from_secs(30),
        max_batch: 5,
        ..WriterOptions::default()
    };
    let writer = AuditWriter::spawn(log(sink.clone()), options, None);
    for i in 0..20 {
        writer.record(&event(i)).await.unwrap();
    }
    writer.flush().await.unwrap();
    let sizes: Vec<u64> = sink
        .checkpoints(0, u64::MAX)
        .await
        .unwrap()
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert_eq!(sizes, vec![10, 20]);
    // Three more events, then time passes: a checkpoint without the tenth event.
    for i in 20..23 {
        writer.record(&event(i)).await.unwrap();
    }
    writer.flush().await.unwrap();
    tokio::time::sleep(Duration::from_secs(31)).await;
    writer.flush().await.unwrap();
    let last = sink.checkpoints(21, u64::MAX).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].0, 23);
    // Nothing new: no checkpoint however long it waits.
    tokio::time::sleep(Duration::from_secs(300)).await;
    writer.flush().await.unwrap();
    assert_eq!(sink.checkpoints(0, u64::MAX).await.unwrap().len(), 3);
    assert_eq!(writer.stats().checkpoints, 3);
}

#[tokio::test]
async fn without_a_spool_the_writer_waits_for_the_sink() {
    let gate = Arc::new(Gate::open(MemorySink::new()));
    let writer = AuditWriter::spawn(log(gate.clone()), WriterOptions::default(), None);
    gate.down.store(true, Ordering::SeqCst);
    let pending = {
        let writer = writer.clone();
        tokio::spawn(async move { writer.append(&event(0)).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished());
    assert!(writer.stats().last_error.unwrap().contains("switched off"));
    gate.down.store(false, Ordering::SeqCst);
    assert_eq!(pending.await.unwrap().unwrap(), 0);
    assert_eq!(writer.stats().last_error, None);
}

#[tokio::test]
async fn an_outage_spills_to_the_spool_and_replays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Gate::open(MemorySink::new()));
    let options = WriterOptions {
        retry_for: Duration::from_millis(200),
        ..WriterOptions::default()
    };
    let spool_path = dir.path().join("audit.spool");
    let writer = AuditWriter::spawn(
        log(gate.clone()),
        options.clone(),
        Some(Spool::open(&spool_path).unwrap()),
    );
    let events: Vec<AuditEvent> = (0..6).map(event).collect();
    assert_eq!(writer.append(&events[0]).await.unwrap(), 0);
    gate.down.store(true, Ordering::SeqCst);
    // The caller learns of the failure; the event is durable in the spool.
    assert!(matches!(
        writer.append(&events[1]).await,
        Err(Error::Spooled(_))
    ));
    // Later events go behind it, without waiting for the retry bound again... in order.
    writer.record(&events[2]).await.unwrap();
    assert!(matches!(writer.flush().await, Err(Error::Spooled(_))));
    assert_eq!(writer.stats().spooled, 2);
    assert_eq!(Spool::open(&spool_path).unwrap().events().unwrap().len(), 2);
    gate.down.store(false, Ordering::SeqCst);
    // The next batch replays the spool first.
    assert_eq!(writer.append(&events[3]).await.unwrap(), 3);
    assert_eq!(writer.stats().spooled, 0);
    let order: Vec<Uuid> = gate
        .read(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|e| AuditEvent::from_canonical(&e.bytes).unwrap().id())
        .collect();
    let expected: Vec<Uuid> = events[..4].iter().map(AuditEvent::id).collect();
    assert_eq!(order, expected);
    assert!(
        Spool::open(&spool_path)
            .unwrap()
            .events()
            .unwrap()
            .is_empty()
    );

    // A spool left by a process that stopped during an outage is replayed at start.
    gate.down.store(true, Ordering::SeqCst);
    assert!(matches!(
        writer.append(&events[4]).await,
        Err(Error::Spooled(_))
    ));
    assert!(matches!(writer.shutdown().await, Err(Error::Spooled(_))));
    gate.down.store(false, Ordering::SeqCst);
    let writer = AuditWriter::spawn(
        log(gate.clone()),
        options,
        Some(Spool::open(&spool_path).unwrap()),
    );
    assert_eq!(writer.append(&events[5]).await.unwrap(), 5);
    assert_eq!(gate.position(events[4].id()).await.unwrap(), Some(4));
    writer.shutdown().await.unwrap();
    assert_eq!(verify(&*gate).await, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_loses_nothing() {
    use finsec_audit::postgres::{PgSink, migrate};
    let mut cluster = finsec_testkit::PgCluster::start(None);
    let options = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1));
    let pool = options.connect(&cluster.url()).await.unwrap();
    migrate(&pool).await.unwrap();
    let sink = Arc::new(PgSink::new(pool));
    let dir = tempfile::tempdir().unwrap();
    let writer = AuditWriter::spawn(
        log(sink.clone()),
        WriterOptions {
            retry_for: Duration::from_millis(500),
            ..WriterOptions::default()
        },
        Some(Spool::open(dir.path().join("pg.spool")).unwrap()),
    );
    let events: Vec<AuditEvent> = (0..300).map(event).collect();
    for e in &events[..100] {
        writer.record(e).await.unwrap();
    }
    writer.flush().await.unwrap();

    cluster.stop();
    for e in &events[100..200] {
        writer.record(e).await.unwrap();
    }
    assert!(matches!(writer.flush().await, Err(Error::Spooled(_))));
    assert_eq!(writer.stats().spooled, 100);

    cluster.start_again();
    for e in &events[200..] {
        writer.record(e).await.unwrap();
    }
    // The pool reconnects within the retry bound; the spool goes in first.
    let mut flushed = writer.flush().await;
    for _ in 0..20 {
        if flushed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        flushed = writer.flush().await;
    }
    flushed.unwrap();
    writer.shutdown().await.unwrap();
    assert_eq!(writer.stats().spooled, 0);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            sink.position(e.id()).await.unwrap(),
            Some(i as u64),
            "event {i}"
        );
    }
    assert_eq!(verify(&*sink).await, 300);
}
