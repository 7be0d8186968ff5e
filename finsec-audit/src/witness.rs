//! Witnesses: places outside the log's own store that keep a copy of every checkpoint.
//!
//! Whoever controls the log's store can truncate it and sign nothing new; a checkpoint the
//! log already gave a witness still names the size and root the log had. [`crate::verify`]
//! compares the store with the newest checkpoint each witness holds and reports a log that
//! is shorter than, or different from, what was witnessed.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::blocking;
use crate::error::{Error, Result};
use crate::sink::AuditSink;

/// Somewhere a checkpoint is copied to.
#[async_trait]
pub trait Witness: Send + Sync {
    /// A short name for reports (`file:/var/audit/witness.jsonl`, `sink:replica`).
    fn name(&self) -> String;

    /// Keeps a signed checkpoint of `size` events. Returns once it is durable.
    async fn witness(&self, size: u64, note: &str) -> Result<()>;

    /// The checkpoint of the largest size it holds.
    async fn latest(&self) -> Result<Option<(u64, String)>>;
}

macro_rules! forward_witness {
    ($($ty:ty),+ $(,)?) => {$(
        #[async_trait]
        impl<W: Witness + ?Sized> Witness for $ty {
            fn name(&self) -> String {
                (**self).name()
            }
            async fn witness(&self, size: u64, note: &str) -> Result<()> {
                (**self).witness(size, note).await
            }
            async fn latest(&self) -> Result<Option<(u64, String)>> {
                (**self).latest().await
            }
        }
    )+};
}

forward_witness!(&W, Arc<W>, Box<W>);

const _: () = {
    const fn is_witness<W: Witness + ?Sized>() {}
    is_witness::<&dyn Witness>();
    is_witness::<Arc<dyn Witness>>();
    is_witness::<Box<dyn Witness>>();
};

/// A witness in memory (tests, or a process that forwards checkpoints itself).
#[derive(Debug, Default)]
pub struct MemoryWitness {
    notes: Mutex<Vec<(u64, String)>>,
}

impl MemoryWitness {
    /// An empty witness.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every checkpoint it was given, in order.
    pub fn all(&self) -> Vec<(u64, String)> {
        self.notes.lock().clone()
    }
}

#[async_trait]
impl Witness for MemoryWitness {
    fn name(&self) -> String {
        "memory".to_owned()
    }

    async fn witness(&self, size: u64, note: &str) -> Result<()> {
        self.notes.lock().push((size, note.to_owned()));
        Ok(())
    }

    async fn latest(&self) -> Result<Option<(u64, String)>> {
        Ok(self
            .notes
            .lock()
            .iter()
            .max_by_key(|(size, _)| *size)
            .cloned())
    }
}

#[derive(Serialize, Deserialize)]
struct Line {
    size: u64,
    note: String,
}

/// A witness that appends each checkpoint as one JSON line (`{"size":…,"note":"…"}`) to a
/// file and fsyncs it: a file to ship to a place the log's operator does not control alone
/// (another host, write-once storage).
#[derive(Debug)]
pub struct FileWitness {
    path: PathBuf,
    lock: Arc<Mutex<()>>,
}

impl FileWitness {
    /// A witness writing to `path` (created when missing, appended to otherwise).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every checkpoint in a witness file, in order.
    pub fn read_all(path: &Path) -> Result<Vec<(u64, String)>> {
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::store(e)),
        };
        let mut out = Vec::new();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(Error::store)?;
            if line.is_empty() {
                continue;
            }
            let parsed: Line = serde_json::from_str(&line)
                .map_err(|e| Error::Corrupt(format!("witness file line {}: {e}", n + 1)))?;
            out.push((parsed.size, parsed.note));
        }
        Ok(out)
    }
}

#[async_trait]
impl Witness for FileWitness {
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }

    async fn witness(&self, size: u64, note: &str) -> Result<()> {
        let mut line = serde_json::to_vec(&Line {
            size,
            note: note.to_owned(),
        })
        .map_err(|e| Error::Corrupt(e.to_string()))?;
        line.push(b'\n');
        let (path, lock) = (self.path.clone(), self.lock.clone());
        blocking::run(move || {
            let _guard = lock.lock();
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(Error::store)?;
            file.write_all(&line).map_err(Error::store)?;
            file.sync_data().map_err(Error::store)
        })
        .await
    }

    async fn latest(&self) -> Result<Option<(u64, String)>> {
        let path = self.path.clone();
        let all = blocking::run(move || Self::read_all(&path)).await?;
        Ok(all.into_iter().max_by_key(|(size, _)| *size))
    }
}

/// A second [`AuditSink`] used as a witness: it keeps the checkpoints in its checkpoint
/// table.
#[derive(Debug)]
pub struct SinkWitness<S> {
    name: String,
    sink: S,
}

impl<S: AuditSink> SinkWitness<S> {
    /// Witnesses into `sink`, reported as `sink:<name>`.
    pub fn new(name: impl Into<String>, sink: S) -> Self {
        Self {
            name: name.into(),
            sink,
        }
    }
}

#[async_trait]
impl<S: AuditSink> Witness for SinkWitness<S> {
    fn name(&self) -> String {
        format!("sink:{}", self.name)
    }

    async fn witness(&self, size: u64, note: &str) -> Result<()> {
        self.sink.put_checkpoint(size, note).await
    }

    async fn latest(&self) -> Result<Option<(u64, String)>> {
        Ok(self.sink.checkpoints(0, u64::MAX).await?.into_iter().last())
    }
}
