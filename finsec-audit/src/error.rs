//! The crate's error type.

use crate::checkpoint::CheckpointError;
use crate::event::EventError;
use crate::merkle::ProofError;

/// What went wrong in the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An event could not be built, encoded or parsed.
    #[error(transparent)]
    Event(#[from] EventError),
    /// A proof could not be made, or was refused.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// A checkpoint or note could not be made, or was refused.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// No event has this id.
    #[error("no event with id {0}")]
    UnknownEvent(uuid::Uuid),
    /// A tree size beyond the log was asked for.
    #[error("the log has {size} events; size {asked} was asked for")]
    BeyondLog {
        /// Events in the log.
        size: u64,
        /// The size asked for.
        asked: u64,
    },
    /// An event with this id is already in the log.
    #[error("an event with id {0} is already in the log")]
    DuplicateEvent(uuid::Uuid),
    /// The store's own contents contradict themselves (a missing node, a corrupt row):
    /// run `verify`.
    #[error("the stored log is inconsistent: {0}")]
    Corrupt(String),
    /// A monitor rule cannot work (or its TOML does not parse).
    #[error("invalid monitor rule: {0}")]
    InvalidRule(String),
    /// A query was refused (a page size out of range, an empty time range).
    #[error("invalid audit query: {0}")]
    InvalidQuery(String),
    /// The writer's queue is full; nothing was queued. Try again, or wait with `record`.
    #[error("the audit writer's queue is full")]
    QueueFull,
    /// The writer has shut down.
    #[error("the audit writer has stopped")]
    WriterStopped,
    /// The sink failed for longer than the retry bound; the events are durable in the
    /// local spool and will be appended, in order, when it returns.
    #[error("the audit store is failing ({0}); the events were written to the local spool")]
    Spooled(String),
    /// The backend failed. The source is kept.
    #[error("audit store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// A store failure from any error or message.
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(source.into())
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
