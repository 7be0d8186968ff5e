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

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use crate::checkpoint::NoteVerifier;
use crate::error::Result;
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

/// Each event's id, or why it is not a canonical event, in order. Large batches are parsed
/// on every core (scoped threads): parsing is most of a verification's cost.
fn parse_all(batch: &[StoredEvent]) -> Vec<std::result::Result<Uuid, String>> {
    let parse = |e: &StoredEvent| {
        AuditEvent::from_canonical(&e.bytes)
            .map(|event| event.id())
            .map_err(|err| err.to_string())
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(8);
    if threads < 2 || batch.len() < 512 {
        return batch.iter().map(parse).collect();
    }
    let chunk = batch.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let running: Vec<_> = batch
            .chunks(chunk)
            .map(|part| {
                (
                    part,
                    scope.spawn(move || part.iter().map(parse).collect::<Vec<_>>()),
                )
            })
            .collect();
        running
            .into_iter()
            .flat_map(|(part, handle)| {
                // A parse that panicked is done again here, so the result stays aligned.
                handle
                    .join()
                    .unwrap_or_else(|_| part.iter().map(parse).collect())
            })
            .collect()
    })
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
    /// (default on). Off, only the hashes are checked, several times faster.
    pub fn parse_events(mut self, on: bool) -> Self {
        self.parse_events = on;
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
    /// With [`parse_events`](Self::parse_events) on, each batch of events is parsed on
    /// every core with scoped threads, which holds the calling task for the batch: run a
    /// long verification on a blocking thread (`spawn_blocking`) inside a busy service.
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
        let mut ids: HashMap<Uuid, u64> = HashMap::new();
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
        loop {
            let batch = sink.read(next, self.batch).await?;
            if batch.is_empty() {
                break;
            }
            let mut completed: Vec<(NodeId, Hash)> = Vec::new();
            let parsed = if self.parse_events {
                parse_all(&batch)
            } else {
                Vec::new()
            };
            for (k, e) in batch.iter().enumerate() {
                if e.index > next {
                    report.problem = Some(Problem::Deleted { index: next });
                    return Ok(report);
                }
                if e.index < next {
                    report.problem = Some(Problem::Inserted { index: e.index });
                    return Ok(report);
                }
                let leaf = Hash::leaf(&e.bytes);
                if leaf != e.leaf {
                    // A move, if the bytes hash to another stored leaf of the batch.
                    let moved = batch.iter().find(|o| o.leaf == leaf && o.index != e.index);
                    report.problem = Some(match moved {
                        Some(o) => Problem::Reordered {
                            index: e.index,
                            other: o.index,
                        },
                        None => Problem::Edited { index: e.index },
                    });
                    return Ok(report);
                }
                if let Some(result) = parsed.get(k) {
                    match result {
                        Ok(id) => {
                            if ids.insert(*id, e.index).is_some() {
                                report.problem = Some(Problem::DuplicateId {
                                    index: e.index,
                                    id: *id,
                                });
                                return Ok(report);
                            }
                        }
                        Err(reason) => {
                            report.problem = Some(Problem::NotCanonical {
                                index: e.index,
                                reason: reason.clone(),
                            });
                            return Ok(report);
                        }
                    }
                }
                completed.extend(frontier.push(leaf).into_iter().skip(1));
                next += 1;
                report.events = next;
                if let Some((size, (root, source))) = pending.peek()
                    && **size == next
                {
                    if frontier.root() != *root {
                        report.problem = Some(Problem::RootMismatch {
                            source: source.clone(),
                            size: next,
                        });
                        return Ok(report);
                    }
                    pending.next();
                }
            }
            // The stored interior nodes must be the ones the events make.
            let wanted: Vec<NodeId> = completed.iter().map(|(id, _)| *id).collect();
            let stored = sink.nodes(&wanted).await?;
            for (id, hash) in &completed {
                if stored.get(id) != Some(hash) {
                    report.problem = Some(Problem::NodeMismatch {
                        level: id.level,
                        index: id.index,
                    });
                    return Ok(report);
                }
            }
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
