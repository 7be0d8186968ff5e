//! The in-memory subject key store.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    StoredSubjectKey, SubjectId, SubjectKeyState, SubjectKeyStore, check_limit, truncate_to_micros,
};
use crate::error::Result;
use crate::provider::{KekRef, WrappedDek};

/// A [`SubjectKeyStore`] in process memory, for tests and single-process tools.
///
/// Everything is lost when the process exits, so it is no place for keys that protect
/// stored data. Behaves exactly like the SQL stores (same conformance suite): tombstones,
/// microsecond timestamps, byte-ordered listing.
#[derive(Default)]
pub struct MemorySubjectKeyStore {
    rows: Mutex<BTreeMap<SubjectId, SubjectKeyState>>,
}

impl MemorySubjectKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subjects with a row (active keys and tombstones).
    pub fn len(&self) -> usize {
        self.rows().len()
    }

    /// Whether the store has no rows at all.
    pub fn is_empty(&self) -> bool {
        self.rows().is_empty()
    }

    fn rows(&self) -> MutexGuard<'_, BTreeMap<SubjectId, SubjectKeyState>> {
        // No method leaves the map half-updated, so a panic elsewhere while the lock was
        // held cannot have corrupted it.
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemorySubjectKeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySubjectKeyStore")
            .field("subjects", &self.len())
            .finish()
    }
}

#[async_trait]
impl SubjectKeyStore for MemorySubjectKeyStore {
    async fn insert_if_absent(&self, mut key: StoredSubjectKey) -> Result<SubjectKeyState> {
        key.created_at = truncate_to_micros(key.created_at);
        let mut rows = self.rows();
        let state = rows
            .entry(key.subject.clone())
            .or_insert(SubjectKeyState::Active(key));
        Ok(state.clone())
    }

    async fn get(&self, subject: &SubjectId) -> Result<SubjectKeyState> {
        Ok(self
            .rows()
            .get(subject)
            .cloned()
            .unwrap_or(SubjectKeyState::Absent))
    }

    async fn destroy(&self, subject: &SubjectId, at: OffsetDateTime) -> Result<bool> {
        let tombstone = SubjectKeyState::Destroyed {
            destroyed_at: truncate_to_micros(at),
        };
        let mut rows = self.rows();
        match rows.get_mut(subject) {
            Some(state @ SubjectKeyState::Active(_)) => {
                // Dropping the stored key here is the in-memory "overwrite with NULL".
                *state = tombstone;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                rows.insert(subject.clone(), tombstone);
                Ok(false)
            }
        }
    }

    async fn replace_wrapped(
        &self,
        subject: &SubjectId,
        old: &KekRef,
        new_kek: KekRef,
        new_wrapped: WrappedDek,
    ) -> Result<bool> {
        match self.rows().get_mut(subject) {
            Some(SubjectKeyState::Active(stored)) if stored.kek == *old => {
                stored.kek = new_kek;
                stored.wrapped = new_wrapped;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn list_active(
        &self,
        after: Option<&SubjectId>,
        limit: u32,
    ) -> Result<Vec<StoredSubjectKey>> {
        check_limit(limit)?;
        let lower = match after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .rows()
            .range::<SubjectId, _>((lower, Bound::Unbounded))
            .filter_map(|(_, state)| match state {
                SubjectKeyState::Active(stored) => Some(stored.clone()),
                _ => None,
            })
            .take(limit)
            .collect())
    }
}
