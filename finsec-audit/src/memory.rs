//! An in-memory [`AuditSink`], for tests and for a process that ships its log elsewhere.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::merkle::{Frontier, Hash, NodeId};
use crate::sink::{Appended, AuditSink, EncodedEvent, StoredEvent};

/// The log's contents, as the memory sink holds them.
#[derive(Debug, Default)]
pub struct RawLog {
    /// The events, by position: `(stored position, canonical bytes, stored leaf hash)`.
    pub events: Vec<(u64, Vec<u8>, Hash)>,
    /// The complete subtrees above the leaves: `levels[l - 1][i]` is node `l/i`.
    pub levels: Vec<Vec<Hash>>,
    /// Positions by event id.
    pub ids: HashMap<Uuid, u64>,
    /// Checkpoint notes by size (several per size are kept as given).
    pub checkpoints: BTreeMap<u64, Vec<String>>,
    frontier: Frontier,
}

/// An [`AuditSink`] in memory. Nothing survives the process.
#[derive(Debug, Default)]
pub struct MemorySink {
    inner: Mutex<RawLog>,
}

impl MemorySink {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes the stored log directly, as an attacker with write access to the store
    /// could: for tamper tests of [`crate::verify`].
    #[cfg(feature = "testing")]
    #[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
    pub fn tamper(&self, change: impl FnOnce(&mut RawLog)) {
        change(&mut self.inner.lock());
    }
}

#[async_trait]
impl AuditSink for MemorySink {
    async fn append(&self, events: &[EncodedEvent]) -> Result<Appended> {
        let mut raw = self.inner.lock();
        let first = raw.frontier.size();
        let mut seen = HashMap::new();
        for e in events {
            if raw.ids.contains_key(&e.id()) || seen.insert(e.id(), ()).is_some() {
                return Err(Error::DuplicateEvent(e.id()));
            }
        }
        for e in events {
            let index = raw.frontier.size();
            let done = raw.frontier.push(e.leaf());
            for (id, hash) in done.into_iter().skip(1) {
                let level = usize::from(id.level);
                while raw.levels.len() < level {
                    raw.levels.push(Vec::new());
                }
                if let Some(row) = raw.levels.get_mut(level - 1) {
                    row.push(hash);
                }
            }
            raw.events.push((index, e.bytes().to_vec(), e.leaf()));
            raw.ids.insert(e.id(), index);
        }
        Ok(Appended {
            first,
            size: raw.frontier.size(),
            root: raw.frontier.root(),
        })
    }

    async fn size(&self) -> Result<u64> {
        Ok(self.inner.lock().events.len() as u64)
    }

    async fn read(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>> {
        let raw = self.inner.lock();
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        Ok(raw
            .events
            .iter()
            .skip(from)
            .take(limit)
            .map(|(index, bytes, leaf)| StoredEvent {
                index: *index,
                bytes: bytes.clone(),
                leaf: *leaf,
            })
            .collect())
    }

    async fn nodes(&self, ids: &[NodeId]) -> Result<HashMap<NodeId, Hash>> {
        let raw = self.inner.lock();
        let mut out = HashMap::with_capacity(ids.len());
        for id in ids {
            let Ok(index) = usize::try_from(id.index) else {
                continue;
            };
            let hash = if id.level == 0 {
                raw.events.get(index).map(|(_, _, leaf)| *leaf)
            } else {
                raw.levels
                    .get(usize::from(id.level) - 1)
                    .and_then(|row| row.get(index))
                    .copied()
            };
            if let Some(hash) = hash {
                out.insert(*id, hash);
            }
        }
        Ok(out)
    }

    async fn position(&self, id: Uuid) -> Result<Option<u64>> {
        Ok(self.inner.lock().ids.get(&id).copied())
    }

    async fn put_checkpoint(&self, size: u64, note: &str) -> Result<()> {
        let mut raw = self.inner.lock();
        let notes = raw.checkpoints.entry(size).or_default();
        if !notes.iter().any(|n| n == note) {
            notes.push(note.to_owned());
        }
        Ok(())
    }

    async fn checkpoints(&self, from: u64, to: u64) -> Result<Vec<(u64, String)>> {
        if from > to {
            return Ok(Vec::new());
        }
        let raw = self.inner.lock();
        Ok(raw
            .checkpoints
            .range(from..=to)
            .flat_map(|(size, notes)| notes.iter().map(move |n| (*size, n.clone())))
            .collect())
    }
}

#[async_trait]
impl crate::query::AuditQuery for MemorySink {
    async fn query(&self, query: &crate::query::Query) -> Result<crate::query::Page> {
        use crate::query::Order;
        query.validate()?;
        let raw = self.inner.lock();
        let mut found = Vec::with_capacity(query.limit + 1);
        let mut consider = |(index, bytes, _): &(u64, Vec<u8>, Hash)| -> Result<bool> {
            let event = crate::event::AuditEvent::from_canonical(bytes)?;
            if query.matches(*index, &event) {
                found.push((*index, event));
            }
            Ok(found.len() > query.limit)
        };
        match query.order {
            Order::NewestFirst => {
                for e in raw.events.iter().rev() {
                    if consider(e)? {
                        break;
                    }
                }
            }
            Order::OldestFirst => {
                for e in &raw.events {
                    if consider(e)? {
                        break;
                    }
                }
            }
        }
        Ok(crate::query::page(found, query.limit))
    }
}

#[cfg(feature = "testing")]
#[async_trait]
impl crate::testing::Tamper for MemorySink {
    async fn set_event(&self, index: u64, bytes: &[u8], leaf: Option<Hash>) -> Result<()> {
        let mut raw = self.inner.lock();
        let e = raw
            .events
            .iter_mut()
            .find(|e| e.0 == index)
            .ok_or(Error::BeyondLog {
                size: 0,
                asked: index,
            })?;
        e.1 = bytes.to_vec();
        if let Some(leaf) = leaf {
            e.2 = leaf;
        }
        Ok(())
    }

    async fn delete_event(&self, index: u64) -> Result<()> {
        self.inner.lock().events.retain(|e| e.0 != index);
        Ok(())
    }

    async fn insert_event(&self, index: u64, bytes: &[u8], leaf: Hash) -> Result<()> {
        let mut raw = self.inner.lock();
        let at = raw
            .events
            .iter()
            .position(|e| e.0 >= index)
            .unwrap_or(raw.events.len());
        for e in raw.events.iter_mut().skip(at) {
            e.0 += 1;
        }
        raw.events.insert(at, (index, bytes.to_vec(), leaf));
        Ok(())
    }

    async fn duplicate_position(&self, index: u64) -> Result<bool> {
        let mut raw = self.inner.lock();
        let Some((at, copy)) = raw
            .events
            .iter()
            .enumerate()
            .find(|(_, e)| e.0 == index)
            .map(|(at, e)| (at, e.clone()))
        else {
            return Err(Error::BeyondLog {
                size: raw.events.len() as u64,
                asked: index,
            });
        };
        raw.events.insert(at + 1, copy);
        Ok(true)
    }

    async fn set_node(&self, id: NodeId, hash: Hash) -> Result<()> {
        let mut raw = self.inner.lock();
        let slot = usize::from(id.level)
            .checked_sub(1)
            .and_then(|l| raw.levels.get_mut(l))
            .and_then(|row| row.get_mut(usize::try_from(id.index).ok()?))
            .ok_or(Error::BeyondLog {
                size: 0,
                asked: id.index,
            })?;
        *slot = hash;
        Ok(())
    }

    async fn truncate(&self, size: u64) -> Result<()> {
        let mut raw = self.inner.lock();
        raw.events.retain(|e| e.0 < size);
        for (l, row) in raw.levels.iter_mut().enumerate() {
            row.truncate(usize::try_from(size >> (l + 1)).unwrap_or(usize::MAX));
        }
        raw.ids.retain(|_, pos| *pos < size);
        raw.checkpoints.retain(|s, _| *s <= size);
        // Keep appending possible: the edge of the shortened tree.
        let mut edge = Frontier::new();
        for leaf in raw.events.iter().map(|e| e.2).collect::<Vec<_>>() {
            edge.push(leaf);
        }
        raw.frontier = edge;
        Ok(())
    }

    async fn set_checkpoints(&self, size: u64, notes: Vec<String>) -> Result<()> {
        self.inner.lock().checkpoints.insert(size, notes);
        Ok(())
    }
}
