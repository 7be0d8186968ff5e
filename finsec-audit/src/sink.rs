//! Where the log is kept: the [`AuditSink`] trait and what it stores.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

use crate::error::Result;
use crate::event::{AuditEvent, Outcome};
use crate::merkle::{Hash, NodeId};

/// An event ready to append: its id, canonical bytes and leaf hash, and the fields a
/// queryable store indexes. Only [`EncodedEvent::new`] makes one, so the bytes are always a
/// canonical encoding of the summary's event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedEvent {
    id: Uuid,
    bytes: Vec<u8>,
    leaf: Hash,
    summary: Summary,
}

/// The fields of an event a queryable store keeps in columns of their own, beside the
/// canonical bytes. None of them is personal data in protected form: a protected value is
/// never indexed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The event time, unix microseconds UTC.
    pub at_us: i64,
    /// The action.
    pub action: String,
    /// The outcome.
    pub outcome: Outcome,
    /// The acting user id.
    pub user: Option<String>,
    /// The acting API key id.
    pub api_key: Option<String>,
    /// The resource type.
    pub resource_type: Option<String>,
    /// The resource id.
    pub resource_id: Option<String>,
}

impl Summary {
    /// The summary of an event.
    pub fn of(event: &AuditEvent) -> Self {
        let actor = event.actor();
        Self {
            at_us: event.time().unix_micros(),
            action: event.action().to_owned(),
            outcome: event.outcome(),
            user: actor.user.clone(),
            api_key: actor.api_key.clone(),
            resource_type: event.resource().map(|r| r.kind.clone()),
            resource_id: event.resource().map(|r| r.id.clone()),
        }
    }
}

impl EncodedEvent {
    /// Encodes an event.
    pub fn new(event: &AuditEvent) -> Result<Self> {
        let bytes = event.to_canonical()?;
        let leaf = Hash::leaf(&bytes);
        Ok(Self {
            id: event.id(),
            bytes,
            leaf,
            summary: Summary::of(event),
        })
    }

    /// Parses stored canonical bytes back into an event ready to append (for copying a
    /// log, or replaying a spool).
    pub fn from_canonical(bytes: &[u8]) -> Result<Self> {
        let event = AuditEvent::from_canonical(bytes)?;
        Ok(Self {
            id: event.id(),
            bytes: bytes.to_vec(),
            leaf: Hash::leaf(bytes),
            summary: Summary::of(&event),
        })
    }

    /// The indexed fields.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The event id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The Merkle leaf hash of the bytes.
    pub fn leaf(&self) -> Hash {
        self.leaf
    }
}

/// An event as a store returns it: its position, the bytes stored and the leaf hash stored
/// beside them. [`crate::verify`] checks the two against each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The position in the log, from 0.
    pub index: u64,
    /// The stored canonical bytes.
    pub bytes: Vec<u8>,
    /// The stored leaf hash.
    pub leaf: Hash,
}

/// What an append did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// The position of the first event appended.
    pub first: u64,
    /// The log's size after the append.
    pub size: u64,
    /// The log's root at that size.
    pub root: Hash,
}

/// A store for the Merkle log: events, the hashes of the tree's complete subtrees, and
/// signed checkpoints.
///
/// Appends are in order and atomic per call: either every event of a call is stored, with
/// the tree nodes it completes, or none is. `append` returns only when the events are
/// durable (for a file, after fsync; for a database, after commit). Several writers may
/// share a store that says so; the store decides the order.
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Appends events at the end of the log, in the given order.
    ///
    /// # Errors
    /// [`crate::Error::DuplicateEvent`] when an id is already in the log (nothing is
    /// appended); [`crate::Error::Store`] when the backend fails (nothing acknowledged is
    /// lost).
    async fn append(&self, events: &[EncodedEvent]) -> Result<Appended>;

    /// The number of events in the log.
    async fn size(&self) -> Result<u64>;

    /// Up to `limit` events from position `from` on, in order.
    async fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>>;

    /// The stored hashes of the given complete subtrees; a node the store does not hold is
    /// absent from the map.
    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>>;

    /// The position of the event with this id.
    async fn position(&self, id: Uuid) -> Result<Option<u64>>;

    /// Keeps a signed checkpoint (its whole note).
    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<()>;

    /// The stored checkpoint notes with sizes in `from..=to`, by size, oldest first.
    async fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>>;
}

macro_rules! forward_sink {
    ($($ty:ty),+ $(,)?) => {$(
        #[async_trait]
        impl<S: AuditSink + ?Sized> AuditSink for $ty {
            async fn append(&self, events: &[EncodedEvent]) -> Result<Appended> {
                (**self).append(events).await
            }
            async fn size(&self) -> Result<u64> {
                (**self).size().await
            }
            async fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>> {
                (**self).read(from, limit).await
            }
            async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
                (**self).nodes(ids).await
            }
            async fn position(&self, id: Uuid) -> Result<Option<u64>> {
                (**self).position(id).await
            }
            async fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
                (**self).put_checkpoint(size, note).await
            }
            async fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>> {
                (**self).checkpoints(from, to).await
            }
        }
    )+};
}

forward_sink!(&S, Arc<S>, Box<S>);

const _: () = {
    const fn is_sink<S: AuditSink + ?Sized>() {}
    is_sink::<&dyn AuditSink>();
    is_sink::<Arc<dyn AuditSink>>();
    is_sink::<Box<dyn AuditSink>>();
};
