//! Copies of the log for live consumers: [`FanOut`] appends to a primary sink and then,
//! best effort, to [`Mirror`]s such as a Redis stream ([`RedisStream`], feature `redis`).
//!
//! The primary is the system of record: an append succeeds or fails with it, and reads,
//! nodes, proofs and checkpoints all come from it. A mirror that fails does not fail the
//! append; the failure is counted and kept in [`FanOut::mirror_errors`] for alerting, and
//! the mirror misses those events (a consumer that needs every event reads the primary from
//! the position it last saw; each mirrored event carries its position).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::merkle::{Hash, NodeId};
use crate::sink::{Appended, AuditSink, EncodedEvent, StoredEvent};

/// A best-effort copy of appended events.
#[async_trait]
pub trait Mirror: Send + Sync {
    /// The mirror's name in errors.
    fn name(&self) -> String;

    /// Publishes events the primary stored at positions `first`, `first + 1`, ...
    async fn publish(&self, first: u64, events: &[EncodedEvent]) -> Result<()>;
}

#[async_trait]
impl<M: Mirror + ?Sized> Mirror for Arc<M> {
    fn name(&self) -> String {
        (**self).name()
    }
    async fn publish(&self, first: u64, events: &[EncodedEvent]) -> Result<()> {
        (**self).publish(first, events).await
    }
}

/// A mirror that appends to another sink, when that sink is in step with the primary (its
/// size is the first position); otherwise the batch is refused as out of step.
#[derive(Debug)]
pub struct SinkMirror<S> {
    name: String,
    sink: S,
}

impl<S> SinkMirror<S> {
    /// A mirror named `name` onto `sink`.
    pub fn new(name: impl Into<String>, sink: S) -> Self {
        Self {
            name: name.into(),
            sink,
        }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }
}

#[async_trait]
impl<S: AuditSink> Mirror for SinkMirror<S> {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn publish(&self, first: u64, events: &[EncodedEvent]) -> Result<()> {
        let size = self.sink.size().await?;
        if size != first {
            return Err(Error::store(format!(
                "mirror {} holds {size} events, the batch starts at {first}",
                self.name
            )));
        }
        self.sink.append(events).await.map(|_| ())
    }
}

/// Mirror failures, by mirror name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorErrors {
    /// Failed publishes per mirror.
    pub failures: HashMap<String, u64>,
    /// The last failure's message per mirror.
    pub last: HashMap<String, String>,
}

/// A primary sink and best-effort mirrors. See the [module docs](self).
pub struct FanOut<S> {
    primary: S,
    mirrors: Vec<Arc<dyn Mirror>>,
    errors: Mutex<MirrorErrors>,
}

impl<S> std::fmt::Debug for FanOut<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field(
                "mirrors",
                &self.mirrors.iter().map(|m| m.name()).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<S> FanOut<S> {
    /// Fan-out over `primary`, with no mirror yet.
    pub fn new(primary: S) -> Self {
        Self {
            primary,
            mirrors: Vec::new(),
            errors: Mutex::new(MirrorErrors::default()),
        }
    }

    /// Adds a mirror.
    #[must_use]
    pub fn with_mirror(mut self, mirror: Arc<dyn Mirror>) -> Self {
        self.mirrors.push(mirror);
        self
    }

    /// The primary.
    pub fn primary(&self) -> &S {
        &self.primary
    }

    /// The mirrors' failures so far.
    pub fn mirror_errors(&self) -> MirrorErrors {
        self.errors.lock().clone()
    }
}

#[async_trait]
impl<S: AuditSink> AuditSink for FanOut<S> {
    async fn append(&self, events: &[EncodedEvent]) -> Result<Appended> {
        let done = self.primary.append(events).await?;
        if !events.is_empty() {
            for m in &self.mirrors {
                if let Err(e) = m.publish(done.first, events).await {
                    let mut errors = self.errors.lock();
                    *errors.failures.entry(m.name()).or_default() += 1;
                    errors.last.insert(m.name(), e.to_string());
                }
            }
        }
        Ok(done)
    }

    async fn size(&self) -> Result<u64> {
        self.primary.size().await
    }

    async fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        self.primary.read(from, limit).await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        self.primary.nodes(ids).await
    }

    async fn position(&self, id: Uuid) -> Result<Option<u64>> {
        self.primary.position(id).await
    }

    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        self.primary.put_checkpoint(size, note).await
    }

    async fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>> {
        self.primary.checkpoints(from, to).await
    }
}

#[cfg(feature = "redis")]
pub use self::redis_stream::RedisStream;

#[cfg(feature = "redis")]
mod redis_stream {
    use super::{Error, Mirror, Result, async_trait};
    use crate::sink::EncodedEvent;

    /// A Redis stream of appended events for live consumers (feature `redis`): one
    /// `XADD` per batch (pipelined), capped with `MAXLEN ~`. Not a system of record: Redis
    /// may drop what it holds (memory, restarts, the cap), so use it behind a [`FanOut`]
    /// over a durable primary.
    ///
    /// Each entry has the fields `pos` (the position in the log), `id`, `action`, `outcome`,
    /// `at_us` and `event` (the canonical bytes).
    ///
    /// [`FanOut`]: super::FanOut
    #[derive(Clone)]
    pub struct RedisStream {
        conn: redis::aio::ConnectionManager,
        key: String,
        cap: u64,
        exact: bool,
    }

    impl std::fmt::Debug for RedisStream {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisStream")
                .field("key", &self.key)
                .field("cap", &self.cap)
                .finish_non_exhaustive()
        }
    }

    impl RedisStream {
        /// A stream at `key` keeping about `cap` entries (`XADD ... MAXLEN ~ cap`: Redis
        /// trims whole nodes, so a few more may stay).
        pub fn new(conn: redis::aio::ConnectionManager, key: impl Into<String>, cap: u64) -> Self {
            Self {
                conn,
                key: key.into(),
                cap,
                exact: false,
            }
        }

        /// Trims to exactly `cap` entries (`MAXLEN = cap`; costlier for Redis).
        #[must_use]
        pub fn exact_cap(mut self) -> Self {
            self.exact = true;
            self
        }

        /// The stream key.
        pub fn key(&self) -> &str {
            &self.key
        }
    }

    #[async_trait]
    impl Mirror for RedisStream {
        fn name(&self) -> String {
            format!("redis stream {}", self.key)
        }

        async fn publish(&self, first: u64, events: &[EncodedEvent]) -> Result<()> {
            let mut pipe = redis::pipe();
            for (i, e) in events.iter().enumerate() {
                let s = e.summary();
                pipe.cmd("XADD")
                    .arg(&self.key)
                    .arg("MAXLEN")
                    .arg(if self.exact { "=" } else { "~" })
                    .arg(self.cap)
                    .arg("*")
                    .arg("pos")
                    .arg(first + i as u64)
                    .arg("id")
                    .arg(e.id().to_string())
                    .arg("action")
                    .arg(&s.action)
                    .arg("outcome")
                    .arg(s.outcome.as_str())
                    .arg("at_us")
                    .arg(s.at_us)
                    .arg("event")
                    .arg(e.bytes())
                    .ignore();
            }
            let mut conn = self.conn.clone();
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(|e| Error::store(format!("XADD {}: {e}", self.key)))
        }
    }
}
