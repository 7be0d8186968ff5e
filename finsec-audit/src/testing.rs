//! Conformance suites for [`AuditSink`] implementations, and the tampering suite for
//! [`LogVerifier`] (feature `testing`).
//!
//! Every sink, in this crate or elsewhere, runs [`audit_sink_conformance`] and
//! [`audit_sink_two_instances`] from its tests, and, if its storage can be written behind
//! its back, implements [`Tamper`] and runs [`tamper_conformance`]:
//!
//! ```
//! # async fn example() {
//! use finsec_audit::MemorySink;
//! use finsec_audit::testing::{audit_sink_conformance, audit_sink_two_instances, tamper_conformance};
//!
//! let sink = MemorySink::new();
//! audit_sink_conformance(&sink).await;
//! audit_sink_two_instances(&sink, &sink).await;
//! tamper_conformance(|| async { MemorySink::new() }).await;
//! # }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(example());
//! ```
//!
//! The suites panic (fail the test) at the first deviation, with a message that starts
//! with `conformance:` and names the check. The sink suites only append events with fresh
//! ids and only check positions relative to the size they find, so they can run several
//! times against one log, beside other writers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::future::join_all;
use time::OffsetDateTime;

use crate::checkpoint::{Checkpoint, NoteSigner};
use crate::error::{Error, Result};
use crate::event::{Actor, AuditEvent, EventTime, Outcome, Precision};
use crate::log::AuditLog;
use crate::merkle::{self, Frontier, Hash, NodeId};
use crate::query::{AuditQuery, Order, Query};
use crate::sink::{AuditSink, EncodedEvent};
use crate::verify::{LogVerifier, Problem};
use crate::witness::MemoryWitness;
use uuid::Uuid;

/// Write access to a sink's storage that bypasses the sink, as someone who can write to
/// the store directly has: what [`tamper_conformance`] uses to show [`LogVerifier`] finds
/// every change.
#[async_trait]
pub trait Tamper: AuditSink {
    /// Replaces the stored bytes of the event at `index`; with `leaf`, its stored leaf hash
    /// too.
    async fn set_event(&self, index: u64, bytes: &[u8], leaf: Option<Hash>) -> Result<()>;

    /// Removes the event at `index` and leaves the others where they are.
    async fn delete_event(&self, index: u64) -> Result<()>;

    /// Stores a new event at `index` and moves that event and every later one up by one
    /// position, as someone who wants the insertion to leave no gap would.
    async fn insert_event(&self, index: u64, bytes: &[u8], leaf: Hash) -> Result<()>;

    /// Stores a copy of the event at `index` right after it, under the same position.
    /// `Ok(false)` where the store's structure cannot hold two events at one position (a
    /// primary key on the position).
    async fn duplicate_position(&self, index: u64) -> Result<bool>;

    /// Replaces the stored hash of a tree node above the leaves.
    async fn set_node(&self, id: NodeId, hash: Hash) -> Result<()>;

    /// Removes the events from position `size` on, with their tree nodes and every
    /// checkpoint of a larger size: a clean rollback of the newest events.
    async fn truncate(&self, size: u64) -> Result<()>;

    /// Replaces the checkpoint notes stored at `size`.
    async fn set_checkpoints(&self, size: u64, notes: Vec<String>) -> Result<()>;
}

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
fn check(cond: bool, what: &str) {
    if !cond {
        panic!("conformance: {what}");
    }
}

#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn same<T: PartialEq + std::fmt::Debug>(got: T, expected: T, what: &str) {
    if got != expected {
        panic!("conformance: {what}: got {got:?}, expected {expected:?}");
    }
}

/// `items[i]`, or a conformance failure.
#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn nth<T: Clone>(items: &[T], i: u64, what: &str) -> T {
    match usize::try_from(i).ok().and_then(|i| items.get(i)) {
        Some(item) => item.clone(),
        None => panic!("conformance: {what}: no item {i} of {}", items.len()),
    }
}

/// The first `n` items, or a conformance failure.
#[expect(
    clippy::panic,
    reason = "a conformance suite fails the calling test by panicking"
)]
fn prefix<'a, T>(items: &'a [T], n: u64, what: &str) -> &'a [T] {
    match usize::try_from(n).ok().and_then(|n| items.get(..n)) {
        Some(p) => p,
        None => panic!("conformance: {what}: {n} items of {}", items.len()),
    }
}

/// An event with a fresh id whose resource id is `name`.
fn event(name: &str) -> EncodedEvent {
    let now = OffsetDateTime::now_utc();
    let time = ok(
        EventTime::new(now, Precision::Microsecond, "system").map_err(Error::from),
        "event time",
    );
    let e = ok(
        AuditEvent::new("conformance.test", Outcome::Success, time)
            .and_then(|e| e.with_resource("test", name))
            .map_err(Error::from),
        "build event",
    );
    ok(EncodedEvent::new(&e), "encode event")
}

fn events(prefix: &str, n: usize) -> Vec<EncodedEvent> {
    (0..n).map(|i| event(&format!("{prefix}-{i}"))).collect()
}

/// Every stored leaf from 0 to `size`.
async fn all_leaves<S: AuditSink + ?Sized>(sink: &S, size: u64) -> Vec<Hash> {
    let mut leaves = Vec::new();
    while (leaves.len() as u64) < size {
        let batch = ok(sink.read(leaves.len() as u64, 4096).await, "read the log");
        check(!batch.is_empty(), "read stops before the log's size");
        for e in batch {
            same(
                e.index,
                leaves.len() as u64,
                "read returns positions in order",
            );
            leaves.push(e.leaf);
        }
    }
    leaves.truncate(usize::try_from(size).unwrap_or(usize::MAX));
    leaves
}

/// The root of the log at `size` from the sink's stored nodes.
async fn stored_root<S: AuditSink + ?Sized>(sink: &S, size: u64) -> Hash {
    let nodes = ok(
        sink.nodes(&merkle::root_plan(size)).await,
        "read root nodes",
    );
    ok(
        merkle::root_from_nodes(size, &nodes).map_err(Error::from),
        "root from stored nodes",
    )
}

/// The whole behavioural contract of an [`AuditSink`]: appends in order, atomic batches,
/// duplicate ids refused, reads, positions, the tree's nodes and proofs made from them,
/// and checkpoints.
pub async fn audit_sink_conformance<S: AuditSink + ?Sized>(sink: &S) {
    let before = ok(sink.size().await, "size");

    // An empty append changes nothing and reports the current root.
    let empty = ok(sink.append(&[]).await, "append nothing");
    same(
        (empty.first, empty.size),
        (before, before),
        "an empty append",
    );
    same(
        empty.root,
        stored_root(sink, before).await,
        "an empty append's root",
    );

    // Three events.
    let three = events("three", 3);
    let done = ok(sink.append(&three).await, "append three events");
    same(done.first, before, "the first position of an append");
    same(done.size, before + 3, "the size after an append");
    same(
        ok(sink.size().await, "size"),
        before + 3,
        "size after append",
    );
    let read = ok(sink.read(before, 10).await, "read the new events");
    check(read.len() >= 3, "read returns the appended events");
    for (i, (stored, sent)) in read.iter().zip(&three).enumerate() {
        same(stored.index, before + i as u64, "a stored event's position");
        same(
            stored.bytes.as_slice(),
            sent.bytes(),
            "a stored event's bytes",
        );
        same(stored.leaf, sent.leaf(), "a stored event's leaf hash");
        same(
            ok(sink.position(sent.id()).await, "position"),
            Some(before + i as u64),
            "position of an appended id",
        );
    }
    same(
        ok(sink.read(before, 2).await, "read with a limit").len(),
        2,
        "read honours its limit",
    );
    same(
        ok(sink.position(event("unknown").id()).await, "position"),
        None,
        "position of an unknown id",
    );
    check(
        ok(sink.read(u64::MAX, 5).await, "read past the end").is_empty(),
        "reading past the end returns nothing",
    );
    check(
        ok(
            sink.nodes(&[NodeId::new(0, u64::MAX)]).await,
            "nodes past the end",
        )
        .is_empty(),
        "a node past the end is absent",
    );

    // The root the append reported is the root of every stored leaf, and of the stored
    // nodes.
    let size = before + 3;
    let leaves = all_leaves(sink, size).await;
    same(
        done.root,
        merkle::root_of_leaves(&leaves),
        "the append's root is the root of the stored leaves",
    );
    same(
        stored_root(sink, size).await,
        done.root,
        "the root from the stored nodes",
    );

    // Duplicates: nothing of the batch is appended.
    let fresh = event("fresh");
    let dup = nth(&three, 1, "the second event");
    match sink.append(&[fresh.clone(), dup.clone()]).await {
        Err(Error::DuplicateEvent(id)) => same(id, dup.id(), "the duplicate id reported"),
        other => check(
            false,
            &format!("an id already in the log must be refused, got {other:?}"),
        ),
    }
    match sink.append(&[fresh.clone(), fresh.clone()]).await {
        Err(Error::DuplicateEvent(id)) => same(id, fresh.id(), "the duplicate id reported"),
        other => check(
            false,
            &format!("an id twice in one batch must be refused, got {other:?}"),
        ),
    }
    same(
        ok(sink.size().await, "size"),
        size,
        "a refused batch appends nothing",
    );
    same(
        ok(sink.position(fresh.id()).await, "position"),
        None,
        "no event of a refused batch is stored",
    );

    // Appends of every shape; the tree stays right.
    let mut size = size;
    for (round, n) in [1usize, 2, 5, 1, 8, 13, 1, 1, 31].into_iter().enumerate() {
        let batch = events(&format!("round-{round}"), n);
        let done = ok(sink.append(&batch).await, "append a batch");
        same(done.first, size, "positions continue without a gap");
        size += n as u64;
        same(done.size, size, "the size after an append");
    }
    let big = events("big", 2_500);
    let done = ok(sink.append(&big).await, "append 2,500 events at once");
    same(done.first, size, "a large append's first position");
    size += 2_500;
    let leaves = all_leaves(sink, size).await;
    same(
        done.root,
        merkle::root_of_leaves(&leaves),
        "the root after many appends",
    );
    same(
        ok(
            sink.position(nth(&big, 2_499, "the last event").id()).await,
            "position",
        ),
        Some(size - 1),
        "the last event of a large append",
    );

    // Proofs from the stored nodes verify.
    for (index, at) in [(before, size), (size - 1, size), (before + 2, before + 3)] {
        let nodes = ok(
            sink.nodes(&ok(
                merkle::inclusion_plan(index, at).map_err(Error::from),
                "plan",
            ))
            .await,
            "read proof nodes",
        );
        let proof = ok(
            merkle::inclusion_proof(index, at, &nodes).map_err(Error::from),
            "inclusion proof from stored nodes",
        );
        let root = merkle::root_of_leaves(prefix(&leaves, at, "leaves"));
        let leaf = nth(&leaves, index, "leaves");
        ok(
            merkle::verify_inclusion(&leaf, index, at, &proof, &root).map_err(Error::from),
            "an inclusion proof from stored nodes verifies",
        );
    }
    if before > 0 {
        let nodes = ok(
            sink.nodes(&ok(
                merkle::consistency_plan(before, size).map_err(Error::from),
                "plan",
            ))
            .await,
            "read proof nodes",
        );
        let proof = ok(
            merkle::consistency_proof(before, size, &nodes).map_err(Error::from),
            "consistency proof from stored nodes",
        );
        let old = merkle::root_of_leaves(prefix(&leaves, before, "leaves"));
        ok(
            merkle::verify_consistency(before, size, &proof, &old, &done.root).map_err(Error::from),
            "a consistency proof from stored nodes verifies",
        );
    }

    // Checkpoints: kept once per distinct note, several per size, in a size range.
    let a = format!("conformance note a {}\n", fresh.id());
    let b = format!("conformance note b {}\n", fresh.id());
    ok(sink.put_checkpoint(size, &a).await, "put a checkpoint");
    ok(
        sink.put_checkpoint(size, &a).await,
        "put a checkpoint again",
    );
    ok(
        sink.put_checkpoint(size, &b).await,
        "put a second checkpoint",
    );
    let got = ok(sink.checkpoints(size, size).await, "read checkpoints");
    let mine: Vec<&(u64, String)> = got.iter().filter(|(_, n)| *n == a || *n == b).collect();
    same(mine.len(), 2, "each distinct note is kept once");
    check(
        mine.iter().all(|(s, _)| *s == size),
        "checkpoints come back with their size",
    );
    check(
        ok(
            sink.checkpoints(size + 1, size).await,
            "read an empty range",
        )
        .is_empty(),
        "an empty size range returns nothing",
    );
    let wide = ok(sink.checkpoints(0, u64::MAX).await, "read every checkpoint");
    check(
        wide.iter()
            .zip(wide.iter().skip(1))
            .all(|(x, y)| x.0 <= y.0),
        "checkpoints come back by size",
    );
    check(
        wide.iter().any(|(_, n)| *n == a),
        "the widest range holds the checkpoint",
    );
}

/// Two instances of one sink (two pools on one database, or one sink passed twice)
/// appending at once: every event gets one position, no position is taken twice, and the
/// tree both see is the tree of all the events.
pub async fn audit_sink_two_instances<A, B>(a: &A, b: &B)
where
    A: AuditSink + ?Sized,
    B: AuditSink + ?Sized,
{
    const ROUNDS: usize = 20;
    const BATCH: usize = 5;
    let before = ok(a.size().await, "size");
    let batches_a: Vec<Vec<EncodedEvent>> = (0..ROUNDS)
        .map(|r| events(&format!("a-{r}"), BATCH))
        .collect();
    let batches_b: Vec<Vec<EncodedEvent>> = (0..ROUNDS)
        .map(|r| events(&format!("b-{r}"), BATCH))
        .collect();
    let runs_a = join_all(batches_a.iter().map(|batch| a.append(batch)));
    let runs_b = join_all(batches_b.iter().map(|batch| b.append(batch)));
    let (done_a, done_b) = futures_util::future::join(runs_a, runs_b).await;
    let mut ranges: Vec<(u64, u64)> = done_a
        .into_iter()
        .chain(done_b)
        .map(|r| {
            let d = ok(r, "a concurrent append");
            same(d.size - d.first, BATCH as u64, "an append's range");
            (d.first, d.size)
        })
        .collect();
    ranges.sort_unstable();
    check(
        ranges
            .iter()
            .zip(ranges.iter().skip(1))
            .all(|(x, y)| x.1 <= y.0),
        "two appends were given overlapping positions",
    );
    let after = ok(b.size().await, "size");
    check(
        after >= before + (2 * ROUNDS * BATCH) as u64,
        "every concurrent append is counted in the size",
    );
    let mut positions: HashMap<u64, Uuid> = HashMap::new();
    for batch in batches_a.iter().chain(&batches_b) {
        for (i, e) in batch.iter().enumerate() {
            let pos = ok(a.position(e.id()).await, "position");
            let Some(pos) = pos else {
                check(false, "an appended event is missing");
                return;
            };
            check(
                positions.insert(pos, e.id()).is_none(),
                "two events share a position",
            );
            if i > 0 {
                let prev = ok(
                    a.position(nth(batch, i as u64 - 1, "batch").id()).await,
                    "position",
                );
                same(
                    prev.map(|p| p + 1),
                    Some(pos),
                    "a batch's events are consecutive",
                );
            }
        }
    }
    let leaves = all_leaves(b, after).await;
    let root = merkle::root_of_leaves(&leaves);
    same(stored_root(a, after).await, root, "instance a's tree");
    same(stored_root(b, after).await, root, "instance b's tree");
    let mut edge = Frontier::new();
    let mut completed = Vec::new();
    for leaf in &leaves {
        completed.extend(edge.push(*leaf).into_iter().skip(1));
    }
    let ids: Vec<NodeId> = completed.iter().map(|(id, _)| *id).collect();
    let stored = ok(a.nodes(&ids).await, "read every node");
    for (id, hash) in &completed {
        same(stored.get(id), Some(hash), "a stored tree node");
    }
}

const ORIGIN: &str = "conformance.finsec.dev/tamper";

fn signer() -> NoteSigner {
    ok(
        NoteSigner::from_seed(ORIGIN, finsec_crypto::Key256::from_bytes([7; 32]))
            .map_err(Error::from),
        "note signer",
    )
}

/// A log of 20 events with signed checkpoints at 8 and 20, the last also witnessed.
async fn tamper_fixture<S: AuditSink>(sink: S) -> (AuditLog<S>, Arc<MemoryWitness>) {
    let witness = Arc::new(MemoryWitness::new());
    let log = ok(AuditLog::new(sink, ORIGIN, signer()), "audit log");
    let log = log.with_witness(witness.clone());
    ok(log.sink().append(&events("tamper", 8)).await, "append");
    ok(log.checkpoint().await, "checkpoint at 8");
    ok(
        log.sink().append(&events("tamper-late", 12)).await,
        "append",
    );
    ok(log.checkpoint().await, "checkpoint at 20");
    (log, witness)
}

async fn problem<S: AuditSink>(log: &AuditLog<S>, witness: &Arc<MemoryWitness>) -> Option<Problem> {
    let report = ok(
        LogVerifier::new(signer().verifier(), ORIGIN)
            .with_witness(witness.clone())
            .verify(log.sink())
            .await,
        "verify",
    );
    report.problem
}

async fn stored_bytes<S: AuditSink>(log: &AuditLog<S>, index: u64) -> Vec<u8> {
    let read = ok(log.sink().read(index, 1).await, "read");
    match read.into_iter().next() {
        Some(e) if e.index == index => e.bytes,
        _ => {
            check(false, &format!("event {index} is missing before tampering"));
            Vec::new()
        }
    }
}

/// Tampers with fresh logs from `fresh` every way [`LogVerifier`] names and checks it
/// reports exactly that: an edited event, two swapped events, a deleted one, one inserted
/// with the rest moved up, a second event at one position (where the store can hold one),
/// a changed tree node, history rewritten and rehashed, the newest events rolled back (found
/// against the witness), a checkpoint with a bad signature and a second signed checkpoint
/// of one size (a split view). An untouched log must verify. Returns how many tamperings
/// ran.
pub async fn tamper_conformance<S, F, Fut>(mut fresh: F) -> usize
where
    S: Tamper + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    let mut ran = 0;

    let (log, w) = tamper_fixture(fresh().await).await;
    same(problem(&log, &w).await, None, "an untouched log verifies");

    // Edited: the bytes of event 5 changed, its stored leaf kept.
    let (log, w) = tamper_fixture(fresh().await).await;
    let mut bytes = stored_bytes(&log, 5).await;
    if let Some(b) = bytes.iter_mut().rev().find(|b| b.is_ascii_digit()) {
        *b = if *b == b'9' { b'0' } else { *b + 1 };
    }
    ok(log.sink().set_event(5, &bytes, None).await, "edit");
    same(
        problem(&log, &w).await,
        Some(Problem::Edited { index: 5 }),
        "an edited event",
    );
    ran += 1;

    // Reordered: the bytes of events 3 and 4 swapped, the leaves kept.
    let (log, w) = tamper_fixture(fresh().await).await;
    let three = stored_bytes(&log, 3).await;
    let four = stored_bytes(&log, 4).await;
    ok(log.sink().set_event(3, &four, None).await, "swap");
    ok(log.sink().set_event(4, &three, None).await, "swap");
    same(
        problem(&log, &w).await,
        Some(Problem::Reordered { index: 3, other: 4 }),
        "two swapped events",
    );
    ran += 1;

    // Deleted: event 7 removed.
    let (log, w) = tamper_fixture(fresh().await).await;
    ok(log.sink().delete_event(7).await, "delete");
    same(
        problem(&log, &w).await,
        Some(Problem::Deleted { index: 7 }),
        "a deleted event",
    );
    ran += 1;

    // Inserted, the later events moved up: the tree no longer matches the checkpoint at 8.
    let (log, w) = tamper_fixture(fresh().await).await;
    let forged = event("forged");
    ok(
        log.sink()
            .insert_event(3, forged.bytes(), forged.leaf())
            .await,
        "insert",
    );
    same(
        problem(&log, &w).await,
        Some(Problem::RootMismatch {
            source: "log".to_owned(),
            size: 8,
        }),
        "an event inserted with the later ones moved up",
    );
    ran += 1;

    // Inserted at a position already taken.
    let (log, w) = tamper_fixture(fresh().await).await;
    if ok(
        log.sink().duplicate_position(2).await,
        "duplicate a position",
    ) {
        same(
            problem(&log, &w).await,
            Some(Problem::Inserted { index: 2 }),
            "a second event at one position",
        );
        ran += 1;
    }

    // A stored tree node changed.
    let (log, w) = tamper_fixture(fresh().await).await;
    ok(
        log.sink()
            .set_node(NodeId::new(2, 1), Hash::leaf(b"forged"))
            .await,
        "set a node",
    );
    same(
        problem(&log, &w).await,
        Some(Problem::NodeMismatch { level: 2, index: 1 }),
        "a changed tree node",
    );
    ran += 1;

    // History rewritten and rehashed: event 1 and its leaf changed together.
    let (log, w) = tamper_fixture(fresh().await).await;
    let rewritten = event("rewritten");
    ok(
        log.sink()
            .set_event(1, rewritten.bytes(), Some(rewritten.leaf()))
            .await,
        "rewrite",
    );
    same(
        problem(&log, &w).await,
        Some(Problem::RootMismatch {
            source: "log".to_owned(),
            size: 8,
        }),
        "history rewritten and rehashed",
    );
    ran += 1;

    // Truncated: the newest five events and the checkpoint at 20 rolled back; the witness
    // still holds it.
    let (log, w) = tamper_fixture(fresh().await).await;
    ok(log.sink().truncate(15).await, "truncate");
    same(
        problem(&log, &w).await,
        Some(Problem::Truncated {
            source: "memory".to_owned(),
            checkpoint_size: 20,
            log_size: 15,
        }),
        "the newest events rolled back",
    );
    ran += 1;

    // A checkpoint whose note no longer matches its signature.
    let (log, w) = tamper_fixture(fresh().await).await;
    let notes = ok(log.sink().checkpoints(8, 8).await, "checkpoints");
    let forged: Vec<String> = notes
        .into_iter()
        .map(|(_, n)| n.replacen("\n8\n", "\n9\n", 1))
        .collect();
    ok(log.sink().set_checkpoints(8, forged).await, "forge");
    match problem(&log, &w).await {
        Some(Problem::BadCheckpoint { size: 8, .. }) => {}
        other => check(
            false,
            &format!("a forged checkpoint must be BadCheckpoint at 8, got {other:?}"),
        ),
    }
    ran += 1;

    // A split view: a second, validly signed checkpoint at 8 with another root.
    let (log, w) = tamper_fixture(fresh().await).await;
    let other = signer().sign(ok(
        Checkpoint::new(ORIGIN, 8, Hash::leaf(b"other")).map_err(Error::from),
        "checkpoint",
    ));
    let mut notes: Vec<String> = ok(log.sink().checkpoints(8, 8).await, "checkpoints")
        .into_iter()
        .map(|(_, n)| n)
        .collect();
    notes.push(other.note().to_owned());
    ok(
        log.sink().set_checkpoints(8, notes).await,
        "add a checkpoint",
    );
    same(
        problem(&log, &w).await,
        Some(Problem::SplitView { size: 8 }),
        "two checkpoints of one size with different roots",
    );
    ran += 1;

    ran
}

/// Every page of `query`, following the cursors; checks the pages' order and sizes.
async fn all_pages<S: AuditQuery + ?Sized>(sink: &S, query: &Query) -> Vec<(u64, Uuid)> {
    let mut out: Vec<(u64, Uuid)> = Vec::new();
    let mut q = query.clone();
    for _ in 0..1_000 {
        let page = ok(sink.query(&q).await, "query");
        check(
            page.events.len() <= q.limit,
            "a page holds at most `limit` events",
        );
        if page.next.is_some() {
            same(
                page.events.len(),
                q.limit,
                "a page with a next page is full",
            );
            same(
                page.next,
                page.events.last().map(|(p, _)| *p),
                "the cursor is the last position of the page",
            );
        }
        out.extend(page.events.iter().map(|(p, e)| (*p, e.id())));
        match page.next {
            Some(next) => q.after = Some(next),
            None => break,
        }
    }
    let ordered = match query.order {
        Order::NewestFirst => out.iter().zip(out.iter().skip(1)).all(|(a, b)| a.0 > b.0),
        Order::OldestFirst => out.iter().zip(out.iter().skip(1)).all(|(a, b)| a.0 < b.0),
    };
    check(ordered, "pages run in the query's order without repeats");
    out
}

/// The behaviour of an [`AuditQuery`] sink: every filter alone and together, time ranges,
/// keyset pagination both ways, refused page sizes, and values that look like SQL.
pub async fn audit_query_conformance<S>(sink: &S)
where
    S: AuditSink + AuditQuery + ?Sized,
{
    let tag = hex::encode(ok(
        finsec_crypto::random_array::<8>().map_err(Error::store),
        "random tag",
    ));
    let action = format!("conformance.query.{tag}");
    let base =
        OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let outcomes = [Outcome::Success, Outcome::Failure, Outcome::Denied];
    let mut made: Vec<AuditEvent> = Vec::new();
    for i in 0..25usize {
        let at = base + time::Duration::seconds(i as i64);
        let time = ok(
            EventTime::new(at, Precision::Microsecond, "system").map_err(Error::from),
            "event time",
        );
        let kind = if i % 3 == 1 { "trade" } else { "order" };
        let actor = Actor {
            user: Some(format!("u{}-{tag}", i % 2)),
            api_key: (i == 7).then(|| format!("k-{tag}")),
            ..Actor::default()
        };
        let outcome = outcomes.get(i % 3).copied().unwrap_or(Outcome::Success);
        let e = ok(
            AuditEvent::new(&action, outcome, time)
                .and_then(|e| e.with_actor(actor))
                .and_then(|e| e.with_resource(kind, &format!("r-{tag}-{i}")))
                .map_err(Error::from),
            "build event",
        );
        made.push(e);
    }
    let encoded: Vec<EncodedEvent> = made
        .iter()
        .map(|e| ok(EncodedEvent::new(e), "encode"))
        .collect();
    let done = ok(sink.append(&encoded).await, "append");
    let pos = |i: usize| done.first + i as u64;
    let mine = Query {
        action: Some(action.clone()),
        ..Query::default()
    };
    let expect = |pred: &dyn Fn(usize) -> bool, order: Order| -> Vec<(u64, Uuid)> {
        let mut v: Vec<(u64, Uuid)> = (0..25)
            .filter(|i| pred(*i))
            .map(|i| (pos(i), made.get(i).map_or(Uuid::nil(), AuditEvent::id)))
            .collect();
        if order == Order::NewestFirst {
            v.reverse();
        }
        v
    };

    let q = Query {
        limit: 10,
        ..mine.clone()
    };
    same(
        all_pages(sink, &q).await,
        expect(&|_| true, Order::NewestFirst),
        "newest first, pages of 10",
    );
    let q = Query {
        limit: 7,
        order: Order::OldestFirst,
        ..mine.clone()
    };
    same(
        all_pages(sink, &q).await,
        expect(&|_| true, Order::OldestFirst),
        "oldest first, pages of 7",
    );
    let q = Query {
        user: Some(format!("u0-{tag}")),
        limit: 4,
        ..mine.clone()
    };
    same(
        all_pages(sink, &q).await,
        expect(&|i| i % 2 == 0, Order::NewestFirst),
        "filter on the user",
    );
    let q = Query {
        outcome: Some(Outcome::Denied),
        ..mine.clone()
    };
    same(
        all_pages(sink, &q).await,
        expect(&|i| i % 3 == 2, Order::NewestFirst),
        "filter on the outcome",
    );
    let q = Query {
        resource_type: Some("trade".to_owned()),
        user: Some(format!("u1-{tag}")),
        ..mine.clone()
    };
    same(
        all_pages(sink, &q).await,
        expect(&|i| i % 3 == 1 && i % 2 == 1, Order::NewestFirst),
        "filters on the resource type and the user together",
    );
    let q = Query {
        resource_id: Some(format!("r-{tag}-13")),
        ..Query::default()
    };
    same(
        all_pages(sink, &q).await,
        expect(&|i| i == 13, Order::NewestFirst),
        "filter on the resource id alone",
    );
    let q = Query {
        api_key: Some(format!("k-{tag}")),
        ..Query::default()
    };
    same(
        all_pages(sink, &q).await,
        expect(&|i| i == 7, Order::NewestFirst),
        "filter on the API key",
    );
    let at = |s: i64| (base + time::Duration::seconds(s)).unix_timestamp() * 1_000_000;
    let q = Query {
        since_us: Some(at(5)),
        until_us: Some(at(10)),
        order: Order::OldestFirst,
        limit: 2,
        ..mine.clone()
    };
    same(
        all_pages(sink, &q).await,
        expect(&|i| (5..10).contains(&i), Order::OldestFirst),
        "a time range: since is inclusive, until exclusive",
    );
    // The cursor from a first page continues there, even after more events arrive.
    let first = ok(
        sink.query(&Query {
            limit: 5,
            ..mine.clone()
        })
        .await,
        "query",
    );
    ok(
        sink.append(&[event("after the first page")]).await,
        "append",
    );
    let second = ok(
        sink.query(&Query {
            limit: 5,
            after: first.next,
            ..mine.clone()
        })
        .await,
        "query",
    );
    same(
        second.events.first().map(|(p, _)| *p),
        Some(pos(19)),
        "the second page starts after the first",
    );
    // Values are data, never SQL.
    for hostile in ["x' OR '1'='1", "%", "_", "\\", "u0-%"] {
        let q = Query {
            user: Some(hostile.to_owned()),
            ..mine.clone()
        };
        check(
            ok(sink.query(&q).await, "query").events.is_empty(),
            &format!("the user filter {hostile:?} matches nothing"),
        );
    }
    for limit in [0, crate::query::MAX_PAGE + 1] {
        let q = Query {
            limit,
            ..mine.clone()
        };
        check(
            matches!(sink.query(&q).await, Err(Error::InvalidQuery(_))),
            &format!("a page of {limit} is refused"),
        );
    }
    let q = Query {
        since_us: Some(at(9)),
        until_us: Some(at(3)),
        ..mine.clone()
    };
    check(
        matches!(sink.query(&q).await, Err(Error::InvalidQuery(_))),
        "a time range that ends before it starts is refused",
    );
}
