//! Walking a stored log and reporting the first thing wrong with it.
//!
//! [`LogVerifier::verify`] reads every event in order, recomputes every leaf and every
//! stored subtree hash, checks every stored checkpoint's signature and root, and compares
//! the log with the newest checkpoint each witness holds. It stops at the first problem and
//! says what it is:
//!
//! | tampering | reported as |
//! |---|---|
//! | an event's bytes changed | [`Problem::Edited`] |
//! | an event removed | [`Problem::Deleted`] (a gap in positions), or a root mismatch if the log was renumbered |
//! | an event added between others | [`Problem::Inserted`] (a position seen twice), or a root mismatch if renumbered |
//! | two events swapped | [`Problem::Reordered`] |
//! | the tree's stored hashes changed | [`Problem::NodeMismatch`] |
//! | history rewritten and rehashed | [`Problem::RootMismatch`] at the first checkpoint that covers it |
//! | the newest events removed | [`Problem::Truncated`] against a checkpoint or a witness |
//! | a forged or foreign checkpoint | [`Problem::BadCheckpoint`] |
//! | two signed checkpoints of one size with different roots | [`Problem::SplitView`] |

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use crate::checkpoint::NoteVerifier;
use crate::error::{Error, Result};
use crate::event::AuditEvent;
use crate::merkle::{Frontier, Hash, NodeId};
use crate::sink::{AuditSink, StoredEvent};
use crate::witness::Witness;

/// What is wrong with a log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// The event at `index` does not hash to the leaf stored for it.
    Edited {
        /// Its position.
        index: u64,
    },
    /// The event at `index` belongs at position `other` (its bytes hash to that leaf).
    Reordered {
        /// Where it is.
        index: u64,
        /// Where it belongs.
        other: u64,
    },
    /// No event is stored at `index`, and later ones are.
    Deleted {
        /// The first missing position.
        index: u64,
    },
    /// A second event is stored at a position already seen.
    Inserted {
        /// The position.
        index: u64,
    },
    /// The event at `index` is not a canonical event encoding.
    NotCanonical {
        /// Its position.
        index: u64,
        /// Why.
        reason: String,
    },
    /// The event at `index` repeats the id of an earlier one.
    DuplicateId {
        /// Its position.
        index: u64,
        /// The id.
        id: Uuid,
    },
    /// A stored subtree hash is wrong or missing.
    NodeMismatch {
        /// The node's level.
        level: u8,
        /// The node's index.
        index: u64,
    },
    /// A signed checkpoint's root is not the root of the stored events at its size.
    RootMismatch {
        /// Who held the checkpoint: `log` or a witness's name.
        source: String,
        /// The checkpoint's size.
        size: u64,
    },
    /// A signed checkpoint covers more events than the log holds.
    Truncated {
        /// Who held the checkpoint: `log` or a witness's name.
        source: String,
        /// The checkpoint's size.
        checkpoint_size: u64,
        /// The log's size.
        log_size: u64,
    },
    /// A stored checkpoint is not a valid signed checkpoint of this log.
    BadCheckpoint {
        /// Who held it: `log` or a witness's name.
        source: String,
        /// The size it was stored under.
        size: u64,
        /// Why.
        reason: String,
    },
    /// Two validly signed checkpoints of one size name different roots.
    SplitView {
        /// The size.
        size: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Edited { index } => write!(f, "event {index} was edited"),
            Self::Reordered { index, other } => {
                write!(f, "event {index} was moved: it is event {other}")
            }
            Self::Deleted { index } => write!(f, "event {index} was deleted"),
            Self::Inserted { index } => write!(f, "an event was inserted at {index}"),
            Self::NotCanonical { index, reason } => {
                write!(f, "event {index} is not a canonical event: {reason}")
            }
            Self::DuplicateId { index, id } => {
                write!(f, "event {index} repeats the id {id} of an earlier event")
            }
            Self::NodeMismatch { level, index } => {
                write!(
                    f,
                    "the stored tree node {level}/{index} is wrong or missing"
                )
            }
            Self::RootMismatch { source, size } => write!(
                f,
                "the events do not match the {source} checkpoint at size {size}: history was rewritten"
            ),
            Self::Truncated {
                source,
                checkpoint_size,
                log_size,
            } => write!(
                f,
                "the log holds {log_size} events, the {source} checkpoint covers {checkpoint_size}: it was truncated"
            ),
            Self::BadCheckpoint {
                source,
                size,
                reason,
            } => write!(
                f,
                "the {source} checkpoint at size {size} is invalid: {reason}"
            ),
            Self::SplitView { size } => write!(
                f,
                "two signed checkpoints at size {size} name different roots (a split view)"
            ),
        }
    }
}

/// What a verification found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Events read.
    pub events: u64,
    /// Signed checkpoints checked (the log's own and the witnesses').
    pub checkpoints: u64,
    /// The root of the events read.
    pub root: Hash,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl VerifyReport {
    /// Whether the log verified.
    pub fn is_ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// What the verifier learns of one stored event without looking at its neighbours.
struct Checked {
    /// The leaf hash of its bytes.
    leaf: Hash,
    /// Its id, or why it is not a canonical event (when events are parsed).
    parsed: Option<std::result::Result<Uuid, String>>,
}

/// Hashes (and parses, when `parse` is set) every event of a batch, in order. Large
/// batches are shared out over every core (scoped threads, this one included) in pieces
/// of 256 that each thread takes as it becomes free, so a thread slowed by other work on
/// its core leaves the rest to the others: hashing and parsing are most of a
/// verification's cost, and neither depends on another event.
fn check_all(batch: &[StoredEvent], parse: bool) -> Vec<Checked> {
    const PIECE: usize = 256;
    let check = |e: &StoredEvent| Checked {
        leaf: Hash::leaf(&e.bytes),
        parsed: parse.then(|| AuditEvent::canonical_id(&e.bytes).map_err(|err| err.to_string())),
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8);
    if threads < 2 || batch.len() < 2 * PIECE {
        return batch.iter().map(check).collect();
    }
    let pieces: Vec<&[StoredEvent]> = batch.chunks(PIECE).collect();
    let taken = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(piece) = pieces.get(i) else {
                return done;
            };
            done.push((i, piece.iter().map(check).collect::<Vec<_>>()));
        }
    };
    let mut results: Vec<Option<Vec<Checked>>> = Vec::new();
    results.resize_with(pieces.len(), || None);
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work).ok())
            .collect();
        let mine = work();
        // A helper that panicked loses the pieces it took; they are done again below.
        for (i, checked) in helpers
            .into_iter()
            .filter_map(|h| h.join().ok())
            .flatten()
            .chain(mine)
        {
            if let Some(slot) = results.get_mut(i) {
                *slot = Some(checked);
            }
        }
    });
    results
        .into_iter()
        .zip(&pieces)
        .flat_map(|(done, piece)| done.unwrap_or_else(|| piece.iter().map(check).collect()))
        .collect()
}

/// Checks a stored log. See the [module docs](self).
pub struct LogVerifier {
    verifier: NoteVerifier,
    origin: String,
    witnesses: Vec<Arc<dyn Witness>>,
    parse_events: bool,
    batch: usize,
    progress: Option<Box<dyn FnMut(u64, u64) + Send>>,
}

impl fmt::Debug for LogVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogVerifier")
            .field("verifier", &self.verifier)
            .field("origin", &self.origin)
            .field("witnesses", &self.witnesses.len())
            .field("parse_events", &self.parse_events)
            .finish_non_exhaustive()
    }
}

struct Checkpoints {
    /// Verified roots by size, from the log and the witnesses, with who held them.
    roots: BTreeMap<u64, (Hash, String)>,
    count: u64,
}

impl LogVerifier {
    /// Checks the log named `origin` whose checkpoints `verifier` signs.
    pub fn new(verifier: NoteVerifier, origin: impl Into<String>) -> Self {
        Self {
            verifier,
            origin: origin.into(),
            witnesses: Vec::new(),
            parse_events: true,
            batch: 4096,
            progress: None,
        }
    }

    /// Also compares the log with the newest checkpoint this witness holds.
    pub fn with_witness(mut self, witness: Arc<dyn Witness>) -> Self {
        self.witnesses.push(witness);
        self
    }

    /// Whether to parse every event as a canonical encoding and check ids are unique
    /// (default on). Off, only the hashes are checked (about one and a half times as fast).
    pub fn parse_events(mut self, on: bool) -> Self {
        self.parse_events = on;
        self
    }

    /// How many events to read from the store at a time (default 4,096; at least 1). Two
    /// batches are held at once: one being checked and the next being read and parsed.
    pub fn batch_size(mut self, events: usize) -> Self {
        self.batch = events.max(1);
        self
    }

    /// Calls `progress(events_read, log_size)` after each batch.
    pub fn on_progress(mut self, progress: impl FnMut(u64, u64) + Send + 'static) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    fn check_note(
        &self,
        source: &str,
        size: u64,
        note: &str,
    ) -> std::result::Result<Hash, Problem> {
        let bad = |reason: String| Problem::BadCheckpoint {
            source: source.to_owned(),
            size,
            reason,
        };
        let signed = self
            .verifier
            .verify_for(note, &self.origin)
            .map_err(|e| bad(e.to_string()))?;
        if signed.checkpoint().size() != size {
            return Err(bad(format!(
                "it was stored under size {size} and says {}",
                signed.checkpoint().size()
            )));
        }
        Ok(*signed.checkpoint().root())
    }

    async fn collect_checkpoints<S: AuditSink + ?Sized>(
        &self,
        sink: &S,
    ) -> Result<std::result::Result<Checkpoints, Problem>> {
        let mut found: Vec<(String, u64, String)> = sink
            .checkpoints(0, u64::MAX)
            .await?
            .into_iter()
            .map(|(size, note)| ("log".to_owned(), size, note))
            .collect();
        for w in &self.witnesses {
            if let Some((size, note)) = w.latest().await? {
                found.push((w.name(), size, note));
            }
        }
        let mut roots: BTreeMap<u64, (Hash, String)> = BTreeMap::new();
        let mut count = 0u64;
        for (source, size, note) in found {
            let root = match self.check_note(&source, size, &note) {
                Ok(root) => root,
                Err(problem) => return Ok(Err(problem)),
            };
            count += 1;
            match roots.get(&size) {
                Some((other, _)) if *other != root => return Ok(Err(Problem::SplitView { size })),
                Some(_) => {}
                None => {
                    roots.insert(size, (root, source));
                }
            }
        }
        Ok(Ok(Checkpoints { roots, count }))
    }

    /// Walks `sink` and reports the first problem. `Err` only when the store cannot be
    /// read.
    ///
    /// Each batch of events is read, hashed and (with [`parse_events`](Self::parse_events)
    /// on) parsed on the runtime's blocking pool, split over every core, while the batch
    /// before it is checked against the tree and the checkpoints on the calling task.
    /// Outside a Tokio runtime the same work runs on the calling thread.
    pub async fn verify<S: AuditSink + ?Sized>(&mut self, sink: &S) -> Result<VerifyReport> {
        let checkpoints = match self.collect_checkpoints(sink).await? {
            Ok(c) => c,
            Err(problem) => {
                return Ok(VerifyReport {
                    events: 0,
                    checkpoints: 0,
                    root: Hash::empty(),
                    problem: Some(problem),
                });
            }
        };
        let log_size = sink.size().await?;
        let mut frontier = Frontier::new();
        // Every id seen, to find a duplicate: a fast hash with a per-process random seed
        // (the ids come from the store under test, so they may be chosen to collide).
        let mut ids: HashSet<Uuid, foldhash::fast::RandomState> = if self.parse_events {
            HashSet::with_capacity_and_hasher(
                usize::try_from(log_size).unwrap_or(0).min(1 << 24),
                foldhash::fast::RandomState::default(),
            )
        } else {
            HashSet::default()
        };
        let mut next = 0u64;
        let mut pending = checkpoints.roots.iter().peekable();
        let mut report = VerifyReport {
            events: 0,
            checkpoints: checkpoints.count,
            root: Hash::empty(),
            problem: None,
        };
        // A checkpoint of the empty log.
        while let Some((size, (root, source))) = pending.peek() {
            if **size != 0 {
                break;
            }
            if *root != Hash::empty() {
                report.problem = Some(Problem::RootMismatch {
                    source: source.clone(),
                    size: 0,
                });
                return Ok(report);
            }
            pending.next();
        }
        let parse = self.parse_events;
        let size = self.batch;
        // Hashes (and parses) a batch's events on the blocking pool, split over every core.
        let check = |batch: Vec<StoredEvent>| {
            crate::blocking::run(move || {
                let checked = check_all(&batch, parse);
                Ok((batch, checked))
            })
        };
        let first = sink.read(0, size).await?;
        let mut upcoming = Vec::new();
        let mut current = None;
        if !first.is_empty() {
            upcoming = sink.read(first.len() as u64, size).await?;
            current = Some(check(first).await?);
        }
        while let Some((batch, checked)) = current.take() {
            let up = std::mem::take(&mut upcoming);
            let further_from = next
                .saturating_add(batch.len() as u64)
                .saturating_add(up.len() as u64);
            // The next batch is hashed and parsed on other threads, and the one after it
            // read, while this one's order, tree and checkpoints are checked here. The
            // check is started on the first poll, before this task turns to the batch.
            let ahead = async {
                if up.is_empty() {
                    return Ok((None, Vec::new()));
                }
                let (checked_up, further) = tokio::join!(check(up), sink.read(further_from, size));
                Ok::<_, Error>((Some(checked_up?), further?))
            };
            let step = async {
                let mut completed: Vec<(NodeId, Hash)> = Vec::with_capacity(batch.len());
                for (e, checked) in batch.iter().zip(checked) {
                    if e.index > next {
                        return Ok(Some(Problem::Deleted { index: next }));
                    }
                    if e.index < next {
                        return Ok(Some(Problem::Inserted { index: e.index }));
                    }
                    let leaf = checked.leaf;
                    if leaf != e.leaf {
                        // A move, if the bytes hash to another stored leaf of the batch.
                        let moved = batch.iter().find(|o| o.leaf == leaf && o.index != e.index);
                        return Ok(Some(match moved {
                            Some(o) => Problem::Reordered {
                                index: e.index,
                                other: o.index,
                            },
                            None => Problem::Edited { index: e.index },
                        }));
                    }
                    match checked.parsed {
                        Some(Ok(id)) if !ids.insert(id) => {
                            return Ok(Some(Problem::DuplicateId { index: e.index, id }));
                        }
                        Some(Err(reason)) => {
                            return Ok(Some(Problem::NotCanonical {
                                index: e.index,
                                reason,
                            }));
                        }
                        Some(Ok(_)) | None => {}
                    }
                    frontier.push_interior(leaf, &mut completed);
                    next += 1;
                    report.events = next;
                    if let Some((size, (root, source))) = pending.peek()
                        && **size == next
                    {
                        if frontier.root() != *root {
                            return Ok(Some(Problem::RootMismatch {
                                source: source.clone(),
                                size: next,
                            }));
                        }
                        pending.next();
                    }
                }
                // The stored interior nodes must be the ones the events make.
                let wanted: Vec<NodeId> = completed.iter().map(|(id, _)| *id).collect();
                let stored = sink.nodes(&wanted).await?;
                for (id, hash) in &completed {
                    if stored.get(id) != Some(hash) {
                        return Ok(Some(Problem::NodeMismatch {
                            level: id.level,
                            index: id.index,
                        }));
                    }
                }
                Ok::<_, Error>(None)
            };
            let (ahead, step) = tokio::join!(ahead, step);
            if let Some(problem) = step? {
                report.problem = Some(problem);
                return Ok(report);
            }
            (current, upcoming) = ahead?;
            if let Some(progress) = self.progress.as_mut() {
                progress(next, log_size);
            }
        }
        report.root = frontier.root();
        if let Some((size, (_, source))) = pending.next() {
            report.problem = Some(Problem::Truncated {
                source: source.clone(),
                checkpoint_size: *size,
                log_size: next,
            });
        }
        Ok(report)
    }
}
