//! [`AuditWriter`]: a bounded queue with group commit in front of any sink, periodic
//! signed checkpoints, and a local spool for when the sink is down.
//!
//! - **Back-pressure, never drops.** The queue holds at most
//!   [`WriterOptions::capacity`] events. [`AuditWriter::record`] waits for room;
//!   [`AuditWriter::try_record`] returns [`Error::QueueFull`] at once. Nothing accepted is
//!   ever thrown away.
//! - **Group commit.** One task takes everything waiting (up to
//!   [`WriterOptions::max_batch`] events) and appends it in one call: one transaction, or one
//!   fsync.
//! - **Durability on request.** [`AuditWriter::append`] returns the event's position once it
//!   is durable; [`AuditWriter::flush`] returns once everything accepted before it is;
//!   [`AuditWriter::shutdown`] writes everything accepted, signs a last checkpoint and stops.
//! - **Checkpoints** every [`WriterOptions::checkpoint_every`] events and every
//!   [`WriterOptions::checkpoint_interval`] (when something was appended), and at shutdown.
//! - **Outages.** A failed append is retried with backoff for
//!   [`WriterOptions::retry_for`]. Without a spool the writer keeps retrying (the queue fills
//!   and callers wait: back-pressure, not loss). With a [`Spool`], the batch is written to
//!   the local spool file (fsynced) and its waiting callers get [`Error::Spooled`]: they learn
//!   the store failed, and the events are durable. While the spool holds events, later
//!   batches go to it too, so order is kept; before each batch the writer tries to replay
//!   the spool into the sink, in order, and empties it when that worked.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::checkpoint::SignedCheckpoint;
use crate::error::{Error, Result};
use crate::event::{AuditEvent, MAX_EVENT_LEN};
use crate::log::AuditLog;
use crate::sink::{AuditSink, EncodedEvent};

/// How an [`AuditWriter`] batches, checkpoints and retries.
#[derive(Clone, Debug)]
pub struct WriterOptions {
    /// Events the queue holds at most (default 65,536).
    pub capacity: usize,
    /// Events one append carries at most (default 4,096).
    pub max_batch: usize,
    /// A checkpoint is signed after this many new events (default 10,000).
    pub checkpoint_every: u64,
    /// A checkpoint is signed this long after the last one, if events were appended since
    /// (default 60 s).
    pub checkpoint_interval: Duration,
    /// How long a failing append is retried before the batch goes to the spool (default
    /// 5 s).
    pub retry_for: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        Self {
            capacity: 65_536,
            max_batch: 4_096,
            checkpoint_every: 10_000,
            checkpoint_interval: Duration::from_secs(60),
            retry_for: Duration::from_secs(5),
        }
    }
}

/// A local file that holds events the sink could not take, in order, until they are
/// replayed. Each record is `len: u32 LE ‖ canonical bytes`, fsynced before the writer
/// answers.
#[derive(Debug)]
pub struct Spool {
    path: PathBuf,
    file: File,
}

impl Spool {
    /// Opens (or creates) the spool file at `path`. Events already in it are replayed
    /// first.
    ///
    /// # Errors
    /// [`Error::Store`] if the file cannot be opened.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(|e| Error::store(format!("open spool {}: {e}", path.display())))?;
        Ok(Self { path, file })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn push(&mut self, events: &[EncodedEvent]) -> Result<()> {
        let mut buf = Vec::new();
        for e in events {
            let len = u32::try_from(e.bytes().len()).unwrap_or(u32::MAX);
            buf.extend_from_slice(&len.to_le_bytes());
            buf.extend_from_slice(e.bytes());
        }
        self.file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data())
            .map_err(|e| Error::store(format!("write spool {}: {e}", self.path.display())))
    }

    /// Every event in the spool, in order. A record cut short by a crash (never
    /// acknowledged) ends the list.
    ///
    /// # Errors
    /// [`Error::Store`] if the file cannot be read; [`Error::Event`] if a whole record is
    /// not a canonical event.
    pub fn events(&self) -> Result<Vec<EncodedEvent>> {
        let mut bytes = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| Error::store(format!("read spool {}: {e}", self.path.display())))?;
        let mut out = Vec::new();
        let mut rest = bytes.as_slice();
        while let Some((len, tail)) = rest.split_first_chunk::<4>() {
            let len = u32::from_le_bytes(*len) as usize;
            if len == 0 || len > MAX_EVENT_LEN {
                break;
            }
            let Some((event, tail)) = tail.split_at_checked(len) else {
                break;
            };
            out.push(EncodedEvent::from_canonical(event)?);
            rest = tail;
        }
        Ok(out)
    }

    fn clear(&mut self) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| Error::store(format!("empty spool {}: {e}", self.path.display())))
    }
}

/// What the writer has done, for health checks and metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Events appended to the sink (including replayed ones).
    pub appended: u64,
    /// Appends (batches) made.
    pub batches: u64,
    /// Events in the spool now.
    pub spooled: u64,
    /// Checkpoints signed.
    pub checkpoints: u64,
    /// The last failure of the sink, a checkpoint or a witness, if the last attempt failed.
    pub last_error: Option<String>,
}

enum Msg {
    Event(Box<EncodedEvent>, Option<oneshot::Sender<Result<u64>>>),
    Flush(oneshot::Sender<Result<()>>),
    Shutdown(oneshot::Sender<Result<Option<SignedCheckpoint>>>),
}

/// The buffered writer. See the [module docs](self). Cheap to clone; clones share the queue.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Msg>,
    stats: Arc<Mutex<WriterStats>>,
}

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn spawn<S: AuditSink + 'static>(
        log: AuditLog<S>,
        options: WriterOptions,
        spool: Option<Spool>,
    ) -> Self {
        let (tx, rx) = mpsc::channel(options.capacity.max(1));
        let stats = Arc::new(Mutex::new(WriterStats::default()));
        let task = Task {
            log,
            options,
            spool,
            stats: stats.clone(),
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
        };
        tokio::spawn(task.run(rx));
        Self { tx, stats }
    }

    fn encode(event: &AuditEvent) -> Result<Box<EncodedEvent>> {
        Ok(Box::new(EncodedEvent::new(event)?))
    }

    /// Queues an event, waiting for room; returns once it is queued (not yet durable).
    ///
    /// # Errors
    /// [`Error::Event`] if the event cannot be encoded; [`Error::WriterStopped`] after
    /// shutdown.
    pub async fn record(&self, event: &AuditEvent) -> Result<()> {
        let msg = Msg::Event(Self::encode(event)?, None);
        self.tx.send(msg).await.map_err(|_| Error::WriterStopped)
    }

    /// Queues an event if there is room now.
    ///
    /// # Errors
    /// [`Error::QueueFull`] when the queue is full (nothing was queued);
    /// [`Error::Event`]; [`Error::WriterStopped`].
    pub fn try_record(&self, event: &AuditEvent) -> Result<()> {
        let msg = Msg::Event(Self::encode(event)?, None);
        self.tx.try_send(msg).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::QueueFull,
            mpsc::error::TrySendError::Closed(_) => Error::WriterStopped,
        })
    }

    /// Appends an event and returns its position once it is durable.
    ///
    /// # Errors
    /// [`Error::Spooled`] if the sink failed for longer than the retry bound and the event
    /// went to the spool (it is durable there and will be appended); [`Error::Event`];
    /// [`Error::DuplicateEvent`]; [`Error::WriterStopped`].
    pub async fn append(&self, event: &AuditEvent) -> Result<u64> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Event(Self::encode(event)?, Some(reply)))
            .await
            .map_err(|_| Error::WriterStopped)?;
        answer.await.map_err(|_| Error::WriterStopped)?
    }

    /// Returns once every event queued before it is durable (in the sink or the spool).
    ///
    /// # Errors
    /// [`Error::Spooled`] if some of them are in the spool; [`Error::WriterStopped`].
    pub async fn flush(&self) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Flush(reply))
            .await
            .map_err(|_| Error::WriterStopped)?;
        answer.await.map_err(|_| Error::WriterStopped)?
    }

    /// Writes everything queued, signs a last checkpoint (returned, if the log has events)
    /// and stops the writer. Other clones then fail with [`Error::WriterStopped`].
    ///
    /// # Errors
    /// [`Error::Spooled`] if events are left in the spool; the sink's error if the last
    /// checkpoint could not be signed; [`Error::WriterStopped`] if it had stopped already.
    pub async fn shutdown(&self) -> Result<Option<SignedCheckpoint>> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Shutdown(reply))
            .await
            .map_err(|_| Error::WriterStopped)?;
        answer.await.map_err(|_| Error::WriterStopped)?
    }

    /// What the writer has done so far.
    pub fn stats(&self) -> WriterStats {
        self.stats.lock().clone()
    }
}

struct Task<S> {
    log: AuditLog<S>,
    options: WriterOptions,
    spool: Option<Spool>,
    stats: Arc<Mutex<WriterStats>>,
    since_checkpoint: u64,
    last_checkpoint: Instant,
}

type Waiter = (usize, oneshot::Sender<Result<u64>>);

impl<S: AuditSink + 'static> Task<S> {
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        if let Some(spool) = &self.spool {
            let pending = spool.events().map(|e| e.len() as u64).unwrap_or(0);
            self.stats.lock().spooled = pending;
            if pending > 0
                && let Err(e) = self.replay().await
            {
                self.note_error(&e);
            }
        }
        let mut held: Option<Msg> = None;
        loop {
            let first = match held.take() {
                Some(m) => m,
                None => {
                    let deadline = self.last_checkpoint + self.options.checkpoint_interval;
                    tokio::select! {
                        m = rx.recv() => match m {
                            Some(m) => m,
                            // Every handle is gone: write what is left and stop.
                            None => {
                                let _last = self.checkpoint().await;
                                return;
                            }
                        },
                        () = tokio::time::sleep_until(deadline) => {
                            if self.since_checkpoint > 0 || self.stats.lock().spooled > 0 {
                                let _ = self.replay().await;
                                let _signed = self.checkpoint().await;
                            }
                            self.last_checkpoint = Instant::now();
                            continue;
                        }
                    }
                }
            };
            let mut batch: Vec<EncodedEvent> = Vec::new();
            let mut waiters: Vec<Waiter> = Vec::new();
            let mut control = None;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Event(e, reply) => {
                        if let Some(r) = reply {
                            waiters.push((batch.len(), r));
                        }
                        batch.push(*e);
                    }
                    other => {
                        control = Some(other);
                        break;
                    }
                }
                if batch.len() < self.options.max_batch {
                    next = rx.try_recv().ok();
                }
            }
            let mut spooled = self.write(batch, waiters).await;
            if spooled.is_ok() && matches!(control, Some(Msg::Flush(_) | Msg::Shutdown(_))) {
                spooled = self.drain_spool().await;
            }
            match control {
                Some(Msg::Flush(reply)) => {
                    let _sent = reply.send(spooled);
                }
                Some(Msg::Shutdown(reply)) => {
                    rx.close();
                    // Whatever was queued behind the shutdown is written too.
                    let mut rest = Vec::new();
                    let mut rest_waiters = Vec::new();
                    while let Ok(msg) = rx.try_recv() {
                        match msg {
                            Msg::Event(e, reply) => {
                                if let Some(r) = reply {
                                    rest_waiters.push((rest.len(), r));
                                }
                                rest.push(*e);
                            }
                            Msg::Flush(r) => {
                                let _sent = r.send(Err(Error::WriterStopped));
                            }
                            Msg::Shutdown(r) => {
                                let _sent = r.send(Err(Error::WriterStopped));
                            }
                        }
                    }
                    let mut tail = self.write(rest, rest_waiters).await;
                    if tail.is_ok() {
                        tail = self.drain_spool().await;
                    }
                    let result = match (spooled.and(tail), self.checkpoint().await) {
                        (Err(e), _) => Err(e),
                        (Ok(()), result) => result,
                    };
                    let _sent = reply.send(result);
                    return;
                }
                Some(Msg::Event(..)) | None => {}
            }
            if self.since_checkpoint >= self.options.checkpoint_every {
                let _signed = self.checkpoint().await;
            }
        }
    }

    fn note_error(&self, e: &Error) {
        self.stats.lock().last_error = Some(e.to_string());
    }

    /// Signs a checkpoint if events were appended since the last one.
    async fn checkpoint(&mut self) -> Result<Option<SignedCheckpoint>> {
        if self.since_checkpoint == 0 {
            return Ok(None);
        }
        match self.log.checkpoint().await {
            Ok((signed, failures)) => {
                self.since_checkpoint = 0;
                self.last_checkpoint = Instant::now();
                let mut stats = self.stats.lock();
                stats.checkpoints += 1;
                stats.last_error = failures
                    .0
                    .first()
                    .map(|(name, e)| format!("witness {name}: {e}"));
                Ok(Some(signed))
            }
            Err(e) => {
                self.note_error(&e);
                Err(e)
            }
        }
    }

    /// Replays the spool if it holds events; `Err(Spooled)` if some are left in it.
    async fn drain_spool(&mut self) -> Result<()> {
        if self.stats.lock().spooled == 0 {
            return Ok(());
        }
        if let Err(e) = self.replay().await {
            self.note_error(&e);
        }
        let stats = self.stats.lock();
        if stats.spooled == 0 {
            return Ok(());
        }
        Err(Error::Spooled(
            stats
                .last_error
                .clone()
                .unwrap_or_else(|| "the sink failed".to_owned()),
        ))
    }

    /// Appends the spool to the sink, if it holds anything. `Ok(true)` when it is empty
    /// afterwards.
    async fn replay(&mut self) -> Result<bool> {
        let Some(spool) = &self.spool else {
            return Ok(true);
        };
        let pending = spool.events()?;
        if pending.is_empty() {
            return Ok(true);
        }
        for chunk in pending.chunks(self.options.max_batch.max(1)) {
            // A batch the sink committed while its answer was lost is already there.
            let mut fresh = Vec::with_capacity(chunk.len());
            for e in chunk {
                if self.log.sink().position(e.id()).await?.is_none() {
                    fresh.push(e.clone());
                }
            }
            if !fresh.is_empty() {
                self.log.sink().append(&fresh).await?;
                self.since_checkpoint += fresh.len() as u64;
                self.stats.lock().appended += fresh.len() as u64;
            }
        }
        if let Some(spool) = &mut self.spool {
            spool.clear()?;
        }
        self.stats.lock().spooled = 0;
        Ok(true)
    }

    /// Writes a batch and answers its waiters. `Err(Spooled)` if it went to the spool.
    async fn write(&mut self, batch: Vec<EncodedEvent>, waiters: Vec<Waiter>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // Keep order: while the spool holds events, new ones go behind them.
        let spool_clear = if self.stats.lock().spooled == 0 {
            true
        } else {
            match self.replay().await {
                Ok(clear) => clear,
                Err(e) => {
                    self.note_error(&e);
                    false
                }
            }
        };
        if spool_clear {
            match self.append_with_retry(&batch).await {
                Ok(first) => {
                    self.since_checkpoint += batch.len() as u64;
                    {
                        let mut stats = self.stats.lock();
                        stats.appended += batch.len() as u64;
                        stats.batches += 1;
                    }
                    for (i, reply) in waiters {
                        let _sent = reply.send(Ok(first + i as u64));
                    }
                    return Ok(());
                }
                Err(Error::DuplicateEvent(_)) => {
                    // One event repeats an id: append the others one by one, so only its
                    // caller is refused.
                    return self.write_one_by_one(batch, waiters).await;
                }
                Err(e) if self.spool.is_none() => {
                    // Unreachable in practice: append_with_retry retries forever without
                    // a spool and only returns other errors as DuplicateEvent or Event.
                    for (_, reply) in waiters {
                        let _sent = reply.send(Err(Error::store(e.to_string())));
                    }
                    return Err(e);
                }
                Err(e) => self.note_error(&e),
            }
        }
        let spooled = match &mut self.spool {
            Some(spool) => spool.push(&batch),
            None => Err(Error::store("no spool")),
        };
        let reason = self
            .stats
            .lock()
            .last_error
            .clone()
            .unwrap_or_else(|| "the sink failed".to_owned());
        match spooled {
            Ok(()) => {
                self.stats.lock().spooled += batch.len() as u64;
                for (_, reply) in waiters {
                    let _sent = reply.send(Err(Error::Spooled(reason.clone())));
                }
                Err(Error::Spooled(reason))
            }
            Err(e) => {
                // Neither the sink nor the spool took the batch: keep it and try again
                // later rather than drop it.
                self.note_error(&e);
                Box::pin(self.retry_until_stored(batch, waiters)).await
            }
        }
    }

    async fn retry_until_stored(
        &mut self,
        batch: Vec<EncodedEvent>,
        waiters: Vec<Waiter>,
    ) -> Result<()> {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if let Ok(first) = self.log.sink().append(&batch).await {
                self.since_checkpoint += batch.len() as u64;
                self.stats.lock().appended += batch.len() as u64;
                for (i, reply) in waiters {
                    let _sent = reply.send(Ok(first.first + i as u64));
                }
                return Ok(());
            }
        }
    }

    async fn write_one_by_one(
        &mut self,
        batch: Vec<EncodedEvent>,
        waiters: Vec<Waiter>,
    ) -> Result<()> {
        let mut replies: Vec<Option<oneshot::Sender<Result<u64>>>> =
            (0..batch.len()).map(|_| None).collect();
        for (i, r) in waiters {
            if let Some(slot) = replies.get_mut(i) {
                *slot = Some(r);
            }
        }
        for (e, reply) in batch.into_iter().zip(replies) {
            let result = match self.append_with_retry(std::slice::from_ref(&e)).await {
                Ok(pos) => {
                    self.since_checkpoint += 1;
                    self.stats.lock().appended += 1;
                    Ok(pos)
                }
                // The same event again (a retried append whose answer was lost): its
                // position. Another event under a used id stays refused.
                Err(Error::DuplicateEvent(id)) => self
                    .already_stored(&e)
                    .await
                    .and_then(|p| p.ok_or(Error::DuplicateEvent(id))),
                Err(other) => Err(other),
            };
            if let Some(reply) = reply {
                let _sent = reply.send(result);
            }
        }
        Ok(())
    }

    /// The position of `e` if the log holds these very bytes under its id.
    async fn already_stored(&self, e: &EncodedEvent) -> Result<Option<u64>> {
        let Some(pos) = self.log.sink().position(e.id()).await? else {
            return Ok(None);
        };
        let stored = self.log.sink().read(pos, 1).await?;
        Ok(stored
            .first()
            .filter(|s| s.index == pos && s.bytes == e.bytes())
            .map(|_| pos))
    }

    /// Appends, retrying failures of the store with backoff: for `retry_for` when a spool
    /// can take the batch after, for ever when none can. Returns the first position.
    async fn append_with_retry(&mut self, batch: &[EncodedEvent]) -> Result<u64> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            match self.log.sink().append(batch).await {
                Ok(done) => {
                    if self.stats.lock().last_error.is_some() {
                        self.stats.lock().last_error = None;
                    }
                    return Ok(done.first);
                }
                Err(e @ (Error::DuplicateEvent(_) | Error::Event(_))) => return Err(e),
                Err(e) => {
                    self.note_error(&e);
                    if self.spool.is_some() && start.elapsed() >= self.options.retry_for {
                        return Err(e);
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
}
