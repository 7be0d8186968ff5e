//! A tamper-evident audit trail for finsec: an RFC 6962 / RFC 9162 Merkle log of audit
//! events, with signed checkpoints, inclusion and consistency proofs, and witnesses.
//!
//! - [`AuditEvent`]: who did what to which resource, when (UTC microseconds with the
//!   clock's name and the MiFID II RTS 25 precision class) and how it ended, in a
//!   documented, versioned canonical encoding ([`event`]). Personal data goes in encrypted
//!   under the data subject's key or as a keyed hash ([`Personal`]), so crypto-shredding a
//!   subject leaves every proof valid.
//! - [`merkle`]: the tree. Leaves are `SHA-256(0x00 ‖ event)`, nodes
//!   `SHA-256(0x01 ‖ left ‖ right)`; stores keep every complete subtree's hash, so any
//!   proof for any size reads `O(log n)` hashes.
//! - [`checkpoint`]: C2SP `tlog-checkpoint` tree heads in C2SP `signed-note`s, Ed25519, with
//!   the signing key sealed by a finsec-crypto envelope.
//! - [`AuditSink`]: where the log is kept: [`MemorySink`]; [`FileSink`] (append-only
//!   segment files, one fdatasync per group of appends, size-based rotation, crash
//!   recovery); [`sqlite::SqliteSink`] and [`postgres::PgSink`] (features `sqlite`,
//!   `postgres`; several processes append to one log); [`fanout::FanOut`] to best-effort
//!   mirrors such as a capped Redis stream (feature `redis`).
//! - [`AuditWriter`]: a bounded queue with back-pressure and group commit in front of any
//!   sink, signing checkpoints every N events and T seconds and at shutdown, spilling to a
//!   local [`Spool`] while the sink is down.
//! - [`AuditQuery`]: filters and keyset pagination (memory and SQL sinks).
//! - [`Monitor`]: sliding-window rules over the live events (TOML), alerts to an
//!   [`IncidentHandler`].
//! - [`AuditLog`]: appends, signs checkpoints, writes them to [`Witness`]es, and answers
//!   with [`InclusionProof`]s and consistency proofs.
//! - [`LogVerifier`]: walks a store and reports the first [`Problem`]: an edited, deleted,
//!   inserted or moved event, a rewritten tree, a truncated log, a bad checkpoint or a
//!   split view.
//!
//! ```
//! use finsec_audit::{AuditEvent, AuditLog, EventTime, LogVerifier, MemorySink, NoteSigner};
//! use finsec_audit::{MemoryWitness, Outcome, Precision};
//! use std::sync::Arc;
//! use time::OffsetDateTime;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let signer = NoteSigner::generate("audit.example.com/trading")?;
//! let verifier = signer.verifier();
//! let witness = Arc::new(MemoryWitness::new());
//! let log = AuditLog::new(MemorySink::new(), "audit.example.com/trading", signer)?
//!     .with_witness(witness.clone());
//!
//! let now = OffsetDateTime::now_utc();
//! let event = AuditEvent::new(
//!     "order.place",
//!     Outcome::Success,
//!     EventTime::new(now, Precision::Millisecond, "system")?,
//! )?
//! .with_resource("order", "o-1")?;
//! log.append(&[event.clone()]).await?;
//! let (checkpoint, _) = log.checkpoint().await?;
//!
//! // An examiner, given the checkpoint note and the verifier key, checks one event.
//! let signed = verifier.verify(checkpoint.note())?;
//! let proof = log.inclusion_proof(event.id(), signed.checkpoint().size()).await?;
//! proof.verify(signed.checkpoint().root())?;
//!
//! // An auditor walks the whole log, against the witness's copy too.
//! let report = LogVerifier::new(verifier, "audit.example.com/trading")
//!     .with_witness(witness)
//!     .verify(log.sink())
//!     .await?;
//! assert!(report.is_ok());
//! # Ok(()) }
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(demo()).unwrap();
//! ```
//!
//! # Threat model
//!
//! - **Who it defends against**: anyone who can write to the log's store after the fact (a
//!   database administrator, an attacker with the app's credentials, a careless migration)
//!   and wants to change, remove, add or reorder records unnoticed. Every such change is
//!   found by [`LogVerifier`]: stored hashes no longer match the events, or a signed
//!   checkpoint no longer matches the tree.
//! - **Rewriting everything**: someone who rewrites events *and* recomputes the tree can
//!   only be caught by a checkpoint signed before the rewrite. Checkpoints are signed with a
//!   key kept sealed under finsec-crypto, and copied to [`Witness`]es the store's operator
//!   does not control alone: keep at least one witness off the database host.
//! - **Truncation**: removing the newest events and checkpoints is found against any
//!   witness that holds a later checkpoint. Events after the last witnessed checkpoint are
//!   protected only by the store itself until the next checkpoint: checkpoint often.
//! - **Key compromise**: whoever holds the note key can sign a rewritten history; two
//!   signed checkpoints of one size with different roots (a split view) then show it, if a
//!   witness kept the original.
//! - **Personal data**: events hold personal data only encrypted under the subject's key or
//!   as a keyed hash; details named like secrets (`password`, `secret`, `private_key`,
//!   `access_token`, `refresh_token`) are refused. `Debug` of a [`NoteSigner`] never shows
//!   the seed.
//! - **Loss**: `append` returns only when the events are durable (fsync or commit); a crash
//!   loses only appends that had not returned (tested by killing writers with SIGKILL); a
//!   torn tail of a segment file is moved aside, never deleted. The writer never drops an
//!   accepted event: a full queue pushes back, a failing store is retried and then spooled.
//! - **The monitor** trusts the event times it is given; its windows are per process (each
//!   instance of a scaled-out service counts what it sees). Responses are opt-in per rule,
//!   so tripping a rule in someone's name cannot lock them out by default.
//! - **Not covered**: events that were never appended (an application that skips the log);
//!   the availability of the store; a Redis mirror, which is not a system of record.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod blocking;
pub mod checkpoint;
pub mod error;
pub mod event;
pub mod fanout;
pub mod file;
pub mod log;
pub mod memory;
pub mod merkle;
pub mod monitor;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
pub mod query;
pub mod sink;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub mod sql;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod verify;
pub mod witness;
pub mod writer;

pub use checkpoint::{Checkpoint, CheckpointError, NoteSigner, NoteVerifier, SignedCheckpoint};
pub use error::{Error, Result};
pub use event::{
    Actor, AuditEvent, Detail, EventError, EventTime, Outcome, Personal, Precision, Resource, Text,
};
pub use file::{FileSink, FileSinkOptions, Recovery};
pub use log::{AuditLog, InclusionProof, WitnessFailures};
pub use memory::MemorySink;
pub use merkle::{Hash, NodeId, ProofError};
pub use monitor::{Alert, IncidentHandler, MemoryIncidents, Monitor, Per, Rule, Severity};
pub use query::{AuditQuery, Order, Page, Query};
pub use sink::{Appended, AuditSink, EncodedEvent, StoredEvent, Summary};
pub use verify::{LogVerifier, Problem, VerifyReport};
pub use witness::{FileWitness, MemoryWitness, SinkWitness, Witness};
pub use writer::{AuditWriter, Spool, WriterOptions, WriterStats};
