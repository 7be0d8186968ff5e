//! The log in append-only segment files, with group commit: [`FileSink`].
//!
//! # Layout
//!
//! ```text
//! <dir>/LOCK                              held while a process has the log open
//! <dir>/segments/<first>.events           the events from position <first> (20 digits)
//! <dir>/segments/<first>.offsets          closed segments: each event's byte offset (u64 LE)
//! <dir>/segments/<first>.ids              closed segments: (id, position) sorted by id
//! <dir>/tree/<level>.hashes               the tree's complete subtrees, 32 bytes each
//! <dir>/tree.synced                       the log size up to which tree/ was last fsynced
//! <dir>/checkpoints.jsonl                 signed checkpoint notes, one JSON line each
//! ```
//!
//! An event record is `len: u32 LE ‖ position: u64 LE ‖ leaf hash: 32 bytes ‖ canonical
//! bytes (len)`. Level 0 of the tree is the leaf hashes, so any node is one positional read
//! and a proof at any size reads `O(log n)` hashes.
//!
//! # Durability
//!
//! One writer thread takes every append waiting for it (up to
//! [`FileSinkOptions::max_group`] events), writes them with one `write`, makes them durable
//! with one `fdatasync` of the segment, and only then answers each caller: group commit. The
//! segment is the system of record; the offsets, ids and tree files are derived from it and
//! are fsynced at rotation, at [`FileSink::close`] and every
//! [`FileSinkOptions::tree_sync_every`] events. On open after a crash the sink cuts a torn
//! tail from the last segment (the bytes after the last whole, hash-valid record, which no
//! caller was told were stored; they are kept beside it in a `.torn-<offset>` file, never
//! deleted) and recomputes the tree from the last synced size on.
//!
//! A segment is closed when it reaches [`FileSinkOptions::segment_bytes`]; the tree runs on
//! across segments, which only split the event bytes.
//!
//! One process at a time: [`FileSink::open`] locks the directory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::blocking;
use crate::error::{Error, Result};
use crate::event::MAX_EVENT_LEN;
use crate::merkle::{Frontier, Hash, NodeId};
use crate::sink::{Appended, AuditSink, EncodedEvent, StoredEvent};

const HEADER: usize = 4 + 8 + 32;
const SEGMENTS: &str = "segments";
const TREE: &str = "tree";
const TREE_SYNCED: &str = "tree.synced";
const CHECKPOINTS: &str = "checkpoints.jsonl";

/// How a [`FileSink`] writes.
#[derive(Clone, Debug)]
pub struct FileSinkOptions {
    /// A segment is closed and a new one started once it holds this many bytes
    /// (default 64 MiB).
    pub segment_bytes: u64,
    /// The most events one group commit writes (default 65,536).
    pub max_group: usize,
    /// The tree files are fsynced at least every this many events (default 1,048,576),
    /// which bounds the work of recovery after a crash.
    pub tree_sync_every: u64,
}

impl Default for FileSinkOptions {
    fn default() -> Self {
        Self {
            segment_bytes: 64 << 20,
            max_group: 65_536,
            tree_sync_every: 1 << 20,
        }
    }
}

/// What [`FileSink::open`] repaired after an unclean stop.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bytes cut from the end of the last segment (a write no caller was told was
    /// stored), and the file they were moved to.
    pub torn: Option<(u64, PathBuf)>,
    /// Tree nodes recomputed from the events.
    pub tree_rebuilt_from: Option<u64>,
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |e| Error::store(format!("{context}: {e}"))
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(unix)]
fn write_all_at(file: &File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt as _;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(windows)]
fn write_all_at(file: &File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt as _;
    while !buf.is_empty() {
        let n = file.seek_write(buf, offset)?;
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("fsync {}", dir.display())))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io(format!("open {}", path.display())))
}

fn segment_name(first: u64, ext: &str) -> String {
    format!("{first:020}.{ext}")
}

/// One framed record as read, before any check of its hash.
#[derive(Clone, Debug)]
struct Record {
    offset: u64,
    index: u64,
    leaf: Hash,
    bytes: Vec<u8>,
}

impl Record {
    fn len(&self) -> u64 {
        (HEADER + self.bytes.len()) as u64
    }

    fn encode_into(index: u64, leaf: &Hash, bytes: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(&index.to_le_bytes());
        out.extend_from_slice(leaf.as_bytes());
        out.extend_from_slice(bytes);
    }
}

/// Reads the framed records of `buf` (a segment's bytes from offset `base`); stops at the
/// first frame that is incomplete or has an impossible length.
fn parse_records(buf: &[u8], base: u64, limit: usize) -> Vec<Record> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while out.len() < limit {
        let Some(head) = buf.get(at..at + HEADER) else {
            break;
        };
        let (len, rest) = head.split_at(4);
        let (index, leaf) = rest.split_at(8);
        let len = u32::from_le_bytes(len.try_into().unwrap_or([0; 4])) as usize;
        if len == 0 || len > MAX_EVENT_LEN {
            break;
        }
        let Some(bytes) = buf.get(at + HEADER..at + HEADER + len) else {
            break;
        };
        let Ok(leaf) = Hash::try_from_slice(leaf) else {
            break;
        };
        out.push(Record {
            offset: base + at as u64,
            index: u64::from_le_bytes(index.try_into().unwrap_or([0; 8])),
            leaf,
            bytes: bytes.to_vec(),
        });
        at += HEADER + len;
    }
    out
}

/// The top-level id of a canonical event, without parsing the rest.
fn event_id(bytes: &[u8]) -> Option<Uuid> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Uuid,
    }
    serde_json::from_slice::<IdOnly>(bytes).ok().map(|e| e.id)
}

#[derive(Debug)]
enum Offsets {
    /// The open segment's offsets.
    Memory(Vec<u64>),
    /// A closed segment's `.offsets` file and its count.
    File(File, u64),
}

impl Offsets {
    fn count(&self) -> u64 {
        match self {
            Self::Memory(v) => v.len() as u64,
            Self::File(_, n) => *n,
        }
    }

    fn get(&self, i: u64) -> Result<Option<u64>> {
        match self {
            Self::Memory(v) => Ok(usize::try_from(i).ok().and_then(|i| v.get(i)).copied()),
            Self::File(f, n) => {
                if i >= *n {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                read_exact_at(f, &mut b, i * 8).map_err(io("read offsets"))?;
                Ok(Some(u64::from_le_bytes(b)))
            }
        }
    }
}

/// A Bloom filter over a closed segment's ids, so checking a new id against the log
/// rarely reads an index file: about 10 bits and 7 probes per id, 1% false positives.
#[derive(Debug)]
struct IdFilter {
    bits: Vec<u64>,
    hasher: std::hash::RandomState,
}

impl IdFilter {
    const PROBES: u64 = 7;

    fn new(count: u64) -> Self {
        let words = usize::try_from(count.saturating_mul(10) / 64 + 1).unwrap_or(1);
        Self {
            bits: vec![0; words],
            hasher: std::hash::RandomState::new(),
        }
    }

    fn probes(&self, id: Uuid) -> impl Iterator<Item = (usize, u64)> + '_ {
        use std::hash::BuildHasher as _;
        let h = self.hasher.hash_one(id);
        let (a, b) = (h & 0xFFFF_FFFF, (h >> 32) | 1);
        let n = self.bits.len() as u64 * 64;
        (0..Self::PROBES).map(move |i| {
            let bit = a.wrapping_add(i.wrapping_mul(b)) % n;
            (usize::try_from(bit / 64).unwrap_or(0), 1u64 << (bit % 64))
        })
    }

    fn insert(&mut self, id: Uuid) {
        let probes: Vec<(usize, u64)> = self.probes(id).collect();
        for (word, mask) in probes {
            if let Some(w) = self.bits.get_mut(word) {
                *w |= mask;
            }
        }
    }

    fn may_contain(&self, id: Uuid) -> bool {
        self.probes(id)
            .all(|(word, mask)| self.bits.get(word).is_some_and(|w| w & mask != 0))
    }
}

/// A closed segment's sorted `(id, position)` index.
#[derive(Debug)]
struct ClosedIds {
    file: File,
    count: u64,
    min: Uuid,
    max: Uuid,
    filter: IdFilter,
}

impl ClosedIds {
    fn entry(&self, i: u64) -> Result<(Uuid, u64)> {
        let mut b = [0u8; 24];
        read_exact_at(&self.file, &mut b, i * 24).map_err(io("read ids"))?;
        let (id, pos) = b.split_at(16);
        Ok((
            Uuid::from_bytes(id.try_into().unwrap_or([0; 16])),
            u64::from_le_bytes(pos.try_into().unwrap_or([0; 8])),
        ))
    }

    /// Reads the whole index once to fill the filter.
    fn load_filter(&mut self) -> Result<()> {
        let mut filter = IdFilter::new(self.count);
        let len = usize::try_from(self.count * 24).unwrap_or(0);
        let mut buf = vec![0u8; len];
        read_exact_at(&self.file, &mut buf, 0).map_err(io("read ids"))?;
        for entry in buf.chunks_exact(24) {
            if let Some(id) = entry.get(..16).and_then(|b| <[u8; 16]>::try_from(b).ok()) {
                filter.insert(Uuid::from_bytes(id));
            }
        }
        self.filter = filter;
        Ok(())
    }

    fn find(&self, id: Uuid) -> Result<Option<u64>> {
        if id < self.min || id > self.max || !self.filter.may_contain(id) {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0u64, self.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (at, pos) = self.entry(mid)?;
            match at.cmp(&id) {
                std::cmp::Ordering::Equal => return Ok(Some(pos)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }
}

#[derive(Debug)]
struct Segment {
    first: u64,
    file: Arc<File>,
    /// Bytes of whole records.
    bytes: u64,
    offsets: Offsets,
    ids: Option<ClosedIds>,
}

/// What readers see: only what the writer has made durable.
#[derive(Debug)]
struct State {
    size: u64,
    segments: Vec<Segment>,
    levels: Vec<Arc<File>>,
    open_ids: HashMap<Uuid, u64>,
    poisoned: Option<String>,
    checkpoints: BTreeMap<u64, Vec<String>>,
}

impl State {
    fn segment_of(&self, index: u64) -> Option<usize> {
        let i = self.segments.partition_point(|s| s.first <= index);
        i.checked_sub(1)
    }

    fn position(&self, id: Uuid) -> Result<Option<u64>> {
        if let Some(p) = self.open_ids.get(&id) {
            return Ok(Some(*p));
        }
        for s in self.segments.iter().rev() {
            if let Some(ids) = &s.ids
                && let Some(p) = ids.find(id)?
            {
                return Ok(Some(p));
            }
        }
        Ok(None)
    }

    fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let mut out = Vec::new();
        let Some(mut seg) = self.segment_of(from) else {
            return Ok(out);
        };
        let Some(first) = self.segments.get(seg) else {
            return Ok(out);
        };
        let Some(mut offset) = first.offsets.get(from - first.first)? else {
            return Ok(out);
        };
        while out.len() < limit {
            let Some(s) = self.segments.get(seg) else {
                break;
            };
            if offset < s.bytes {
                // Read a window of the segment and parse whole records from it.
                let want = (limit - out.len()).min(4096);
                let window =
                    (s.bytes - offset).min((want * 512).max(HEADER + MAX_EVENT_LEN) as u64);
                let mut buf = vec![0u8; usize::try_from(window).unwrap_or(0)];
                read_exact_at(&s.file, &mut buf, offset).map_err(io("read segment"))?;
                let records = parse_records(&buf, offset, want);
                if records.is_empty() {
                    // A frame the writer never made: the rest of the segment is unreadable.
                    seg += 1;
                    offset = 0;
                    continue;
                }
                for r in records {
                    offset = r.offset + r.len();
                    out.push(StoredEvent {
                        index: r.index,
                        bytes: r.bytes,
                        leaf: r.leaf,
                    });
                }
            } else {
                seg += 1;
                offset = 0;
            }
        }
        Ok(out)
    }

    fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        let mut wanted: Vec<NodeId> = ids
            .iter()
            .copied()
            .filter(|id| {
                usize::from(id.level) < self.levels.len() && id.index < self.size >> id.level
            })
            .collect();
        wanted.sort_unstable_by_key(|id| (id.level, id.index));
        wanted.dedup();
        let mut out = HashMap::with_capacity(wanted.len());
        // One positional read per run of neighbouring nodes of a level: a verifier asks
        // for every node a batch completed, which are runs, and a proof for scattered ones.
        let mut rest = wanted.as_slice();
        let mut buf = Vec::new();
        while let Some(first) = rest.first() {
            let run = rest
                .iter()
                .enumerate()
                .take_while(|(k, id)| {
                    id.level == first.level && id.index == first.index + *k as u64
                })
                .count()
                .min(1 << 16);
            let Some(file) = self.levels.get(usize::from(first.level)) else {
                break;
            };
            buf.resize(run * 32, 0);
            read_exact_at(file, &mut buf, first.index * 32).map_err(io("read tree"))?;
            for (id, bytes) in rest.iter().zip(buf.chunks_exact(32)) {
                let mut b = [0u8; 32];
                b.copy_from_slice(bytes);
                out.insert(*id, Hash::from_bytes(b));
            }
            rest = rest.get(run..).unwrap_or_default();
        }
        Ok(out)
    }
}

struct Shared {
    dir: PathBuf,
    state: RwLock<State>,
    checkpoint_file: Mutex<File>,
    recovery: Mutex<Recovery>,
    /// The directory lock, released by `close`.
    lock: Mutex<Option<File>>,
}

struct Request {
    events: Vec<EncodedEvent>,
    reply: tokio::sync::oneshot::Sender<Result<Appended>>,
}

enum Command {
    Append(Request),
    Close(tokio::sync::oneshot::Sender<Result<()>>),
}

/// An [`AuditSink`] in append-only segment files. See the [module docs](self).
pub struct FileSink {
    shared: Arc<Shared>,
    commands: Mutex<Option<mpsc::Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for FileSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileSink")
            .field("dir", &self.shared.dir)
            .field("size", &self.shared.state.read().size)
            .finish_non_exhaustive()
    }
}

/// The writer thread's own state.
struct Writer {
    shared: Arc<Shared>,
    options: FileSinkOptions,
    edge: Frontier,
    /// The open segment's byte length.
    segment_len: u64,
    tree_synced: u64,
}

impl FileSink {
    /// Opens (or creates) the log in `dir` with default options.
    ///
    /// # Errors
    /// [`Error::Store`] if the directory cannot be used or another process holds it;
    /// [`Error::Corrupt`] if the stored tree cannot be rebuilt.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, FileSinkOptions::default())
    }

    /// Opens (or creates) the log in `dir`.
    ///
    /// # Errors
    /// As [`FileSink::open`].
    pub fn open_with(dir: impl AsRef<Path>, options: FileSinkOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let (shared, writer) = open_log(dir, options)?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("finsec-audit-file".to_owned())
            .spawn(move || writer.run(&rx))
            .map_err(io("start the writer thread"))?;
        Ok(Self {
            shared,
            commands: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// What opening repaired.
    pub fn recovery(&self) -> Recovery {
        self.shared.recovery.lock().clone()
    }

    /// Writes what is waiting, fsyncs the tree, stops the writer and releases the
    /// directory: the next open has nothing to repair. Appends after this fail; reads go
    /// on working.
    ///
    /// # Errors
    /// [`Error::Store`] if the final sync fails.
    pub async fn close(&self) -> Result<()> {
        let tx = self.commands.lock().take();
        let Some(tx) = tx else {
            return Ok(());
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        if tx.send(Command::Close(reply)).is_err() {
            return Err(Error::store("the file sink's writer has stopped"));
        }
        drop(tx);
        let result = answer
            .await
            .unwrap_or_else(|_| Err(Error::store("the file sink's writer has stopped")));
        if let Some(thread) = self.thread.lock().take() {
            let _joined = thread.join();
        }
        self.shared.lock.lock().take();
        result
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Closing the channel stops the writer after what it holds; no tree sync (the next
        // open recomputes what is missing). Waiting for it releases the directory lock
        // before the sink is gone, so the log can be opened again at once.
        self.commands.lock().take();
        if let Some(thread) = self.thread.lock().take() {
            let _joined = thread.join();
        }
    }
}

fn read_tree_synced(dir: &Path) -> u64 {
    fs::read_to_string(dir.join(TREE_SYNCED))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_tree_synced(dir: &Path, size: u64) -> Result<()> {
    let tmp = dir.join(format!("{TREE_SYNCED}.tmp"));
    let mut f = File::create(&tmp).map_err(io("write tree.synced"))?;
    f.write_all(size.to_string().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(io("write tree.synced"))?;
    fs::rename(&tmp, dir.join(TREE_SYNCED)).map_err(io("write tree.synced"))?;
    sync_dir(dir)
}

/// Scans a whole segment file: its framed records and byte length.
fn scan_segment(file: &File, first: u64) -> Result<(Vec<Record>, u64)> {
    let len = file.metadata().map_err(io("stat segment"))?.len();
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    read_exact_at(file, &mut buf, 0).map_err(io(format!("read segment {first}")))?;
    let records = parse_records(&buf, 0, usize::MAX);
    Ok((records, len))
}

/// Writes a closed segment's offsets and ids files and fsyncs them.
fn close_segment_files(
    dir: &Path,
    first: u64,
    records: &[(u64, Uuid, u64)],
) -> Result<(Offsets, ClosedIds)> {
    let seg = dir.join(SEGMENTS);
    let mut offsets = Vec::with_capacity(records.len() * 8);
    for (offset, _, _) in records {
        offsets.extend_from_slice(&offset.to_le_bytes());
    }
    let mut ids: Vec<(Uuid, u64)> = records.iter().map(|(_, id, pos)| (*id, *pos)).collect();
    ids.sort_unstable();
    let mut id_bytes = Vec::with_capacity(ids.len() * 24);
    for (id, pos) in &ids {
        id_bytes.extend_from_slice(id.as_bytes());
        id_bytes.extend_from_slice(&pos.to_le_bytes());
    }
    let write = |name: String, bytes: &[u8]| -> Result<File> {
        let path = seg.join(name);
        let f = open_rw(&path)?;
        f.set_len(0)
            .and_then(|()| write_all_at(&f, bytes, 0))
            .and_then(|()| f.sync_all())
            .map_err(io(format!("write {}", path.display())))?;
        Ok(f)
    };
    let off_file = write(segment_name(first, "offsets"), &offsets)?;
    let ids_file = write(segment_name(first, "ids"), &id_bytes)?;
    let n = records.len() as u64;
    let mut filter = IdFilter::new(n);
    for (id, _) in &ids {
        filter.insert(*id);
    }
    Ok((
        Offsets::File(off_file, n),
        ClosedIds {
            file: ids_file,
            count: n,
            min: ids.first().map_or(Uuid::max(), |e| e.0),
            max: ids.last().map_or(Uuid::nil(), |e| e.0),
            filter,
        },
    ))
}

fn open_log(dir: PathBuf, options: FileSinkOptions) -> Result<(Arc<Shared>, Writer)> {
    for sub in [SEGMENTS, TREE] {
        fs::create_dir_all(dir.join(sub)).map_err(io(format!("create {}", dir.display())))?;
    }
    let lock = open_rw(&dir.join("LOCK"))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            return Err(Error::store(format!(
                "{} is open in another process",
                dir.display()
            )));
        }
        Err(fs::TryLockError::Error(e)) => return Err(io("lock the log")(e)),
    }
    let seg_dir = dir.join(SEGMENTS);
    let mut firsts: Vec<u64> = fs::read_dir(&seg_dir)
        .map_err(io("list segments"))?
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".events")?.parse().ok()
        })
        .collect();
    firsts.sort_unstable();
    if firsts.is_empty() {
        open_rw(&seg_dir.join(segment_name(0, "events")))?;
        sync_dir(&seg_dir)?;
        firsts.push(0);
    }
    let mut recovery = Recovery::default();
    let mut segments = Vec::with_capacity(firsts.len());
    let mut open_ids = HashMap::new();
    let last = firsts.len() - 1;
    for (i, first) in firsts.iter().copied().enumerate() {
        let path = seg_dir.join(segment_name(first, "events"));
        let file = open_rw(&path)?;
        if i < last {
            // A closed segment: its offsets and ids were fsynced when it was closed; a
            // crash during closing left them missing or short, so rebuild them then.
            let len = file.metadata().map_err(io("stat segment"))?.len();
            let off_path = seg_dir.join(segment_name(first, "offsets"));
            let ids_path = seg_dir.join(segment_name(first, "ids"));
            let stored = |p: &Path, w: u64| fs::metadata(p).map(|m| m.len() / w).ok();
            let (n_off, n_ids) = (stored(&off_path, 8), stored(&ids_path, 24));
            let (offsets, ids) = match (n_off, n_ids) {
                (Some(a), Some(b)) if a == b && a > 0 => {
                    let ids_file = open_rw(&ids_path)?;
                    let mut ids = ClosedIds {
                        file: ids_file,
                        count: b,
                        min: Uuid::nil(),
                        max: Uuid::max(),
                        filter: IdFilter::new(0),
                    };
                    ids.min = ids.entry(0)?.0;
                    ids.max = ids.entry(b - 1)?.0;
                    ids.load_filter()?;
                    (Offsets::File(open_rw(&off_path)?, a), ids)
                }
                _ => {
                    let (records, _) = scan_segment(&file, first)?;
                    let rows: Vec<(u64, Uuid, u64)> = records
                        .iter()
                        .map(|r| (r.offset, event_id(&r.bytes).unwrap_or(Uuid::nil()), r.index))
                        .collect();
                    close_segment_files(&dir, first, &rows)?
                }
            };
            segments.push(Segment {
                first,
                file: Arc::new(file),
                bytes: len,
                offsets,
                ids: Some(ids),
            });
        } else {
            // The open segment: scan it, cut a torn tail, index it in memory.
            let (records, len) = scan_segment(&file, first)?;
            // Only the bytes after the last record whose leaf matches are a torn write: a
            // bad record before a good one was changed after it was written, and stays for
            // `verify` to report.
            let keep = records
                .iter()
                .rposition(|r| Hash::leaf(&r.bytes) == r.leaf)
                .map_or(0, |k| k + 1);
            let cut = records
                .get(..keep)
                .and_then(|r| r.last())
                .map_or(0, |r| r.offset + r.len());
            if cut < len {
                let torn = seg_dir.join(format!("{}.torn-{cut}", segment_name(first, "events")));
                let mut tail = vec![0u8; usize::try_from(len - cut).unwrap_or(0)];
                read_exact_at(&file, &mut tail, cut).map_err(io("read torn tail"))?;
                let mut t = File::create(&torn).map_err(io("save torn tail"))?;
                t.write_all(&tail)
                    .and_then(|()| t.sync_all())
                    .map_err(io("save torn tail"))?;
                file.set_len(cut)
                    .and_then(|()| file.sync_all())
                    .map_err(io("cut torn tail"))?;
                sync_dir(&seg_dir)?;
                recovery.torn = Some((len - cut, torn));
            }
            let mut offsets = Vec::with_capacity(keep);
            for r in records.iter().take(keep) {
                offsets.push(r.offset);
                if let Some(id) = event_id(&r.bytes) {
                    open_ids.insert(id, r.index);
                }
            }
            segments.push(Segment {
                first,
                file: Arc::new(file),
                bytes: cut,
                offsets: Offsets::Memory(offsets),
                ids: None,
            });
        }
    }
    let size = segments.last().map_or(0, |s| s.first + s.offsets.count());

    // The tree: trust it up to the last synced size, recompute the rest.
    let synced = read_tree_synced(&dir).min(size);
    let mut levels = Vec::new();
    for level in 0..64u8 {
        let path = dir.join(TREE).join(format!("{level:02}.hashes"));
        if level > 0 && size >> level == 0 && !path.exists() {
            break;
        }
        let f = open_rw(&path)?;
        f.set_len((synced >> level) * 32)
            .map_err(io(format!("trim {}", path.display())))?;
        levels.push(Arc::new(f));
        if size >> level == 0 {
            break;
        }
    }
    let checkpoints = read_checkpoints(&dir)?;
    let checkpoint_file = OpenOptions::new()
        .append(true)
        .create(true)
        .open(dir.join(CHECKPOINTS))
        .map_err(io("open checkpoints"))?;
    let state = State {
        size: synced,
        segments,
        levels,
        open_ids,
        poisoned: None,
        checkpoints,
    };
    // The edge at the synced size, from the tree files.
    let ids = Frontier::nodes_for(synced);
    let found = state.nodes(&ids)?;
    let hashes = ids
        .iter()
        .map(|id| {
            found.get(id).copied().ok_or_else(|| {
                Error::Corrupt(format!("tree node {}/{} is missing", id.level, id.index))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let edge = Frontier::from_nodes(synced, &hashes)?;
    let segment_len = state.segments.last().map_or(0, |s| s.bytes);
    let shared = Arc::new(Shared {
        dir,
        state: RwLock::new(state),
        checkpoint_file: Mutex::new(checkpoint_file),
        recovery: Mutex::new(Recovery::default()),
        lock: Mutex::new(Some(lock)),
    });
    let mut writer = Writer {
        shared,
        options,
        edge,
        segment_len,
        tree_synced: synced,
    };
    if synced < size {
        writer.rebuild_tree(synced, size)?;
        recovery.tree_rebuilt_from = Some(synced);
    }
    *writer.shared.recovery.lock() = recovery;
    Ok((writer.shared.clone(), writer))
}

#[derive(Serialize, Deserialize)]
struct CheckpointLine {
    size: u64,
    note: String,
}

fn read_checkpoints(dir: &Path) -> Result<BTreeMap<u64, Vec<String>>> {
    let path = dir.join(CHECKPOINTS);
    let mut out: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io("open checkpoints")(e)),
    };
    let mut good = 0u64;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(io("read checkpoints"))?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        let parsed: CheckpointLine = serde_json::from_str(&line)
            .map_err(|e| Error::Corrupt(format!("{} at byte {good}: {e}", path.display())))?;
        let notes = out.entry(parsed.size).or_default();
        if !notes.contains(&parsed.note) {
            notes.push(parsed.note);
        }
        good += n as u64;
    }
    // A line cut short by a crash was never acknowledged.
    let len = fs::metadata(&path).map_err(io("stat checkpoints"))?.len();
    if len > good {
        let f = open_rw(&path)?;
        f.set_len(good)
            .and_then(|()| f.sync_all())
            .map_err(io("cut checkpoints"))?;
    }
    Ok(out)
}

impl Writer {
    /// Recomputes the tree files for the events `from..to` from their stored leaves.
    fn rebuild_tree(&mut self, from: u64, to: u64) -> Result<()> {
        let mut next = from;
        while next < to {
            let batch = self.shared.state.read().read(next, 4096)?;
            if batch.is_empty() {
                return Err(Error::Corrupt(format!("event {next} cannot be read")));
            }
            let leaves: Vec<Hash> = batch.iter().map(|e| e.leaf).collect();
            self.write_tree(&leaves)?;
            next += leaves.len() as u64;
            self.shared.state.write().size = next;
        }
        self.sync_tree()
    }

    /// Appends leaves to the tree files (no fsync).
    fn write_tree(&mut self, leaves: &[Hash]) -> Result<()> {
        let mut by_level: BTreeMap<u8, (u64, Vec<u8>)> = BTreeMap::new();
        for leaf in leaves {
            for (id, hash) in self.edge.push(*leaf) {
                let entry = by_level
                    .entry(id.level)
                    .or_insert_with(|| (id.index, Vec::new()));
                entry.1.extend_from_slice(hash.as_bytes());
            }
        }
        let mut state = self.shared.state.write();
        for (level, (first, bytes)) in by_level {
            while state.levels.len() <= usize::from(level) {
                let path = self
                    .shared
                    .dir
                    .join(TREE)
                    .join(format!("{:02}.hashes", state.levels.len()));
                state.levels.push(Arc::new(open_rw(&path)?));
            }
            if let Some(f) = state.levels.get(usize::from(level)) {
                write_all_at(f, &bytes, first * 32).map_err(io("write tree"))?;
            }
        }
        Ok(())
    }

    fn sync_tree(&mut self) -> Result<()> {
        let (levels, size) = {
            let state = self.shared.state.read();
            (state.levels.clone(), state.size)
        };
        for f in &levels {
            f.sync_data().map_err(io("fsync tree"))?;
        }
        sync_dir(&self.shared.dir.join(TREE))?;
        write_tree_synced(&self.shared.dir, size)?;
        self.tree_synced = size;
        Ok(())
    }

    fn run(mut self, commands: &mpsc::Receiver<Command>) {
        while let Ok(first) = commands.recv() {
            let mut group = Vec::new();
            let mut close = None;
            let mut n = 0usize;
            let mut next = Some(first);
            while let Some(command) = next.take() {
                match command {
                    Command::Append(r) => {
                        n += r.events.len();
                        group.push(r);
                    }
                    Command::Close(reply) => {
                        close = Some(reply);
                        break;
                    }
                }
                if n < self.options.max_group {
                    next = commands.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit(group);
            }
            if let Some(reply) = close {
                let result = if self.shared.state.read().poisoned.is_some() {
                    Ok(())
                } else {
                    self.sync_tree()
                };
                let _sent = reply.send(result);
                return;
            }
        }
    }

    fn poison(&self, why: &str) -> Error {
        let mut state = self.shared.state.write();
        let message = format!(
            "the file log stopped accepting appends after a write failed ({why}); reopen it"
        );
        state.poisoned = Some(message.clone());
        Error::store(message)
    }

    fn commit(&mut self, group: Vec<Request>) {
        if let Some(p) = self.shared.state.read().poisoned.clone() {
            for r in group {
                let _sent = r.reply.send(Err(Error::store(p.clone())));
            }
            return;
        }
        // Refuse the requests that repeat an id; the others go in, in order.
        let mut accepted = Vec::with_capacity(group.len());
        {
            let state = self.shared.state.read();
            let mut seen = HashSet::new();
            for r in group {
                let mut dup = None;
                let mut mine = HashSet::with_capacity(r.events.len());
                for e in &r.events {
                    if !mine.insert(e.id()) || seen.contains(&e.id()) {
                        dup = Some(Ok(e.id()));
                        break;
                    }
                    match state.position(e.id()) {
                        Ok(Some(_)) => {
                            dup = Some(Ok(e.id()));
                            break;
                        }
                        Ok(None) => {}
                        Err(err) => {
                            dup = Some(Err(err));
                            break;
                        }
                    }
                }
                match dup {
                    Some(Ok(id)) => {
                        let _sent = r.reply.send(Err(Error::DuplicateEvent(id)));
                    }
                    Some(Err(err)) => {
                        let _sent = r.reply.send(Err(err));
                    }
                    None => {
                        seen.extend(mine);
                        accepted.push(r);
                    }
                }
            }
        }
        if accepted.is_empty() {
            return;
        }
        let start = self.edge.size();
        let mut buf = Vec::new();
        let mut offsets = Vec::new();
        let mut ids = Vec::new();
        let mut leaves = Vec::new();
        let mut index = start;
        for r in &accepted {
            for e in &r.events {
                offsets.push(self.segment_len + buf.len() as u64);
                Record::encode_into(index, &e.leaf(), e.bytes(), &mut buf);
                ids.push((e.id(), index));
                leaves.push(e.leaf());
                index += 1;
            }
        }
        let file = match self.shared.state.read().segments.last() {
            Some(s) => s.file.clone(),
            None => {
                let e = self.poison("no open segment");
                for r in accepted {
                    let _sent = r.reply.send(Err(Error::store(e.to_string())));
                }
                return;
            }
        };
        let written = write_all_at(&file, &buf, self.segment_len).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Undo what may have reached the file, then refuse everything after: an fsync
            // that failed leaves the page cache in an unknown state.
            let _cut = file.set_len(self.segment_len);
            let err = self.poison(&e.to_string());
            for r in accepted {
                let _sent = r.reply.send(Err(Error::store(err.to_string())));
            }
            return;
        }
        self.segment_len += buf.len() as u64;
        // The events are durable. Derive the tree, then publish.
        let mut answers = Vec::with_capacity(accepted.len());
        let mut first = start;
        let mut tree_error = None;
        for r in &accepted {
            let n = r.events.len();
            let slice = leaves
                .get(usize::try_from(first - start).unwrap_or(0)..)
                .and_then(|l| l.get(..n))
                .unwrap_or(&[]);
            if tree_error.is_none()
                && let Err(e) = self.write_tree(slice)
            {
                tree_error = Some(e.to_string());
            }
            answers.push(Appended {
                first,
                size: first + n as u64,
                root: self.edge.root(),
            });
            first += n as u64;
        }
        {
            let mut state = self.shared.state.write();
            state.size = first;
            if let Some(seg) = state.segments.last_mut() {
                seg.bytes = self.segment_len;
                if let Offsets::Memory(v) = &mut seg.offsets {
                    v.extend_from_slice(&offsets);
                }
            }
            state.open_ids.extend(ids);
        }
        if let Some(e) = tree_error {
            // The events are stored and the next open rebuilds the tree; until then no
            // proof can be trusted, so stop.
            let err = self.poison(&e);
            for r in accepted {
                let _sent = r.reply.send(Err(Error::store(err.to_string())));
            }
            return;
        }
        for (r, a) in accepted.into_iter().zip(answers) {
            let _sent = r.reply.send(Ok(a));
        }
        let rotate = self.segment_len >= self.options.segment_bytes;
        let result = if rotate {
            self.rotate()
        } else if self.edge.size() - self.tree_synced >= self.options.tree_sync_every {
            self.sync_tree()
        } else {
            Ok(())
        };
        if let Err(e) = result {
            self.poison(&e.to_string());
        }
    }

    /// Closes the open segment and starts a new one at the current size.
    fn rotate(&mut self) -> Result<()> {
        let size = self.edge.size();
        let (first, rows) = {
            let state = self.shared.state.read();
            let Some(seg) = state.segments.last() else {
                return Err(Error::Corrupt("no open segment".to_owned()));
            };
            let Offsets::Memory(offsets) = &seg.offsets else {
                return Err(Error::Corrupt("the open segment is closed".to_owned()));
            };
            let by_pos: HashMap<u64, Uuid> =
                state.open_ids.iter().map(|(id, pos)| (*pos, *id)).collect();
            let rows: Vec<(u64, Uuid, u64)> = offsets
                .iter()
                .enumerate()
                .map(|(k, off)| {
                    let pos = seg.first + k as u64;
                    (*off, by_pos.get(&pos).copied().unwrap_or(Uuid::nil()), pos)
                })
                .collect();
            (seg.first, rows)
        };
        let (offsets, ids) = close_segment_files(&self.shared.dir, first, &rows)?;
        self.sync_tree()?;
        let seg_dir = self.shared.dir.join(SEGMENTS);
        let file = open_rw(&seg_dir.join(segment_name(size, "events")))?;
        sync_dir(&seg_dir)?;
        let mut state = self.shared.state.write();
        if let Some(seg) = state.segments.last_mut() {
            seg.offsets = offsets;
            seg.ids = Some(ids);
        }
        state.open_ids.clear();
        state.segments.push(Segment {
            first: size,
            file: Arc::new(file),
            bytes: 0,
            offsets: Offsets::Memory(Vec::new()),
            ids: None,
        });
        self.segment_len = 0;
        Ok(())
    }
}

#[async_trait]
impl AuditSink for FileSink {
    async fn append(&self, events: &[EncodedEvent]) -> Result<Appended> {
        if events.is_empty() {
            let shared = self.shared.clone();
            return blocking::run(move || {
                let state = shared.state.read();
                let size = state.size;
                let nodes = state.nodes(&crate::merkle::root_plan(size))?;
                Ok(Appended {
                    first: size,
                    size,
                    root: crate::merkle::root_from_nodes(size, &nodes)?,
                })
            })
            .await;
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.commands.lock().as_ref().map(|tx| {
            tx.send(Command::Append(Request {
                events: events.to_vec(),
                reply,
            }))
        });
        match sent {
            Some(Ok(())) => {}
            _ => return Err(Error::store("the file sink is closed")),
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Error::store("the file sink's writer has stopped")))
    }

    async fn size(&self) -> Result<u64> {
        Ok(self.shared.state.read().size)
    }

    async fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let shared = self.shared.clone();
        blocking::run(move || shared.state.read().read(from, limit)).await
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        let shared = self.shared.clone();
        let ids = ids.to_vec();
        blocking::run(move || shared.state.read().nodes(&ids)).await
    }

    async fn position(&self, id: Uuid) -> Result<Option<u64>> {
        {
            // Events of the open segment are found in memory.
            let state = self.shared.state.read();
            if let Some(p) = state.open_ids.get(&id) {
                return Ok(Some(*p));
            }
        }
        let shared = self.shared.clone();
        blocking::run(move || shared.state.read().position(id)).await
    }

    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        let shared = self.shared.clone();
        let note = note.to_owned();
        blocking::run(move || {
            let mut file = shared.checkpoint_file.lock();
            {
                let state = shared.state.read();
                if state
                    .checkpoints
                    .get(&size)
                    .is_some_and(|n| n.contains(&note))
                {
                    return Ok(());
                }
            }
            let mut line = serde_json::to_string(&CheckpointLine {
                size,
                note: note.clone(),
            })
            .map_err(Error::store)?;
            line.push('\n');
            file.write_all(line.as_bytes())
                .and_then(|()| file.sync_data())
                .map_err(io("write checkpoint"))?;
            shared
                .state
                .write()
                .checkpoints
                .entry(size)
                .or_default()
                .push(note);
            Ok(())
        })
        .await
    }

    async fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>> {
        if from > to {
            return Ok(Vec::new());
        }
        let state = self.shared.state.read();
        Ok(state
            .checkpoints
            .range(from..=to)
            .flat_map(|(size, notes)| notes.iter().map(move |n| (*size, n.clone())))
            .collect())
    }
}

#[cfg(feature = "testing")]
impl FileSink {
    /// Rewrites the segment holding position `index` as `change` leaves its records:
    /// tampering behind the writer's back.
    fn rewrite_segment(
        &self,
        index: u64,
        change: impl FnOnce(&mut Vec<(u64, Hash, Vec<u8>)>),
    ) -> Result<()> {
        let mut state = self.shared.state.write();
        let Some(seg) = state
            .segment_of(index)
            .and_then(|i| state.segments.get_mut(i))
        else {
            return Err(Error::BeyondLog {
                size: 0,
                asked: index,
            });
        };
        let (records, _) = scan_segment(&seg.file, seg.first)?;
        let mut rows: Vec<(u64, Hash, Vec<u8>)> = records
            .into_iter()
            .map(|r| (r.index, r.leaf, r.bytes))
            .collect();
        change(&mut rows);
        let mut buf = Vec::new();
        let mut offsets = Vec::with_capacity(rows.len());
        for (index, leaf, bytes) in &rows {
            offsets.push(buf.len() as u64);
            Record::encode_into(*index, leaf, bytes, &mut buf);
        }
        seg.file
            .set_len(0)
            .and_then(|()| write_all_at(&seg.file, &buf, 0))
            .map_err(io("rewrite segment"))?;
        seg.bytes = buf.len() as u64;
        seg.offsets = Offsets::Memory(offsets);
        Ok(())
    }

    fn rewrite_checkpoints(
        &self,
        change: impl FnOnce(&mut BTreeMap<u64, Vec<String>>),
    ) -> Result<()> {
        let mut state = self.shared.state.write();
        change(&mut state.checkpoints);
        let mut text = String::new();
        for (size, notes) in &state.checkpoints {
            for note in notes {
                let line = serde_json::to_string(&CheckpointLine {
                    size: *size,
                    note: note.clone(),
                })
                .map_err(Error::store)?;
                text.push_str(&line);
                text.push('\n');
            }
        }
        let file = self.shared.checkpoint_file.lock();
        file.set_len(0)
            .and_then(|()| write_all_at(&file, text.as_bytes(), 0))
            .map_err(io("rewrite checkpoints"))
    }
}

#[cfg(feature = "testing")]
#[async_trait]
impl crate::testing::Tamper for FileSink {
    async fn set_event(&self, index: u64, bytes: &[u8], leaf: Option<Hash>) -> Result<()> {
        self.rewrite_segment(index, |rows| {
            for row in rows.iter_mut().filter(|r| r.0 == index) {
                row.2 = bytes.to_vec();
                if let Some(leaf) = leaf {
                    row.1 = leaf;
                }
            }
        })
    }

    async fn delete_event(&self, index: u64) -> Result<()> {
        self.rewrite_segment(index, |rows| rows.retain(|r| r.0 != index))
    }

    async fn insert_event(&self, index: u64, bytes: &[u8], leaf: Hash) -> Result<()> {
        self.rewrite_segment(index, |rows| {
            let at = rows.iter().position(|r| r.0 >= index).unwrap_or(rows.len());
            for row in rows.iter_mut().skip(at) {
                row.0 += 1;
            }
            rows.insert(at, (index, leaf, bytes.to_vec()));
        })
    }

    async fn duplicate_position(&self, index: u64) -> Result<bool> {
        self.rewrite_segment(index, |rows| {
            if let Some(at) = rows.iter().position(|r| r.0 == index) {
                let copy = rows.get(at).cloned();
                if let Some(copy) = copy {
                    rows.insert(at + 1, copy);
                }
            }
        })?;
        Ok(true)
    }

    async fn set_node(&self, id: NodeId, hash: Hash) -> Result<()> {
        let state = self.shared.state.read();
        let file = state
            .levels
            .get(usize::from(id.level))
            .ok_or(Error::BeyondLog {
                size: state.size,
                asked: id.index,
            })?;
        write_all_at(file, hash.as_bytes(), id.index * 32).map_err(io("write tree"))
    }

    async fn truncate(&self, size: u64) -> Result<()> {
        if size < self.shared.state.read().size {
            self.rewrite_segment(size, |rows| rows.retain(|r| r.0 < size))?;
        }
        {
            let mut state = self.shared.state.write();
            let first = state.segment_of(size).map_or(0, |i| i + 1);
            state.segments.truncate(first.max(1));
            for (level, f) in state.levels.iter().enumerate() {
                f.set_len((size >> level) * 32)
                    .map_err(io("truncate tree"))?;
            }
            state.size = size;
            state.open_ids.retain(|_, p| *p < size);
        }
        self.rewrite_checkpoints(|c| c.retain(|s, _| *s <= size))
    }

    async fn set_checkpoints(&self, size: u64, notes: Vec<String>) -> Result<()> {
        self.rewrite_checkpoints(|c| {
            c.insert(size, notes);
        })
    }
}
