//! The [`ControlStore`] trait, the two-person lift, and the in-memory store.

use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::error::{ControlError, Result};
use super::{ControlRecord, NewControl};

/// Where controls live, shared by every instance that must enforce them.
///
/// The contract, checked by the conformance suite (`controls::testing`, feature
/// `testing`): ids ascend; [`version`](Self::version) changes with every insert and lift;
/// [`lift`](Self::lift) lifts a control once however many callers race, and lifts a
/// control that [needs a second person](super::Control::needs_second_person_to_lift) only
/// for someone other than the one recorded by [`request_lift`](Self::request_lift).
#[async_trait]
pub trait ControlStore: Send + Sync {
    /// Stores `new`, set at `now`; returns the record with its id.
    ///
    /// # Errors
    /// A storage failure.
    async fn insert(&self, new: &NewControl, now: OffsetDateTime) -> Result<ControlRecord>;

    /// The control with `id`, in any state.
    ///
    /// # Errors
    /// A storage failure, or a stored value out of range.
    async fn get(&self, id: i64) -> Result<Option<ControlRecord>>;

    /// The controls in force at `now`, by ascending id.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    async fn active(&self, now: OffsetDateTime) -> Result<Vec<ControlRecord>>;

    /// The newest `limit` controls in any state, newest first (the history).
    ///
    /// # Errors
    /// As [`get`](Self::get).
    async fn recent(&self, limit: u32) -> Result<Vec<ControlRecord>>;

    /// Records that `by` asks for control `id` to be lifted, if it is in force at `now` and
    /// no one asked yet. Returns whether it was recorded.
    ///
    /// # Errors
    /// A storage failure.
    async fn request_lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool>;

    /// Lifts control `id` at `now` for `by`, if it is in force and, when it needs a second
    /// person, a lift was asked for by someone else. Returns whether this call lifted it.
    ///
    /// # Errors
    /// A storage failure.
    async fn lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool>;

    /// A number that changes whenever a control is inserted or lifted.
    ///
    /// # Errors
    /// A storage failure.
    async fn version(&self) -> Result<i64>;
}

macro_rules! forward_store {
    ($($wrapper:ty),+) => {$(
        #[async_trait]
        impl<S: ControlStore + ?Sized> ControlStore for $wrapper {
            async fn insert(&self, new: &NewControl, now: OffsetDateTime) -> Result<ControlRecord> {
                (**self).insert(new, now).await
            }
            async fn get(&self, id: i64) -> Result<Option<ControlRecord>> {
                (**self).get(id).await
            }
            async fn active(&self, now: OffsetDateTime) -> Result<Vec<ControlRecord>> {
                (**self).active(now).await
            }
            async fn recent(&self, limit: u32) -> Result<Vec<ControlRecord>> {
                (**self).recent(limit).await
            }
            async fn request_lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool> {
                (**self).request_lift(id, by, now).await
            }
            async fn lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool> {
                (**self).lift(id, by, now).await
            }
            async fn version(&self) -> Result<i64> {
                (**self).version().await
            }
        }
    )+};
}

forward_store!(std::sync::Arc<S>, &S, Box<S>);

/// What [`lift`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lift {
    /// Lifted: the record as it was before.
    Lifted(ControlRecord),
    /// A control that needs a second person: the lift is asked for, and someone else must
    /// lift it.
    Requested(ControlRecord),
    /// Not in force (lifted before, expired, or lifted by someone else just now).
    NotActive(ControlRecord),
    /// No control has this id.
    NotFound,
}

/// Lifts control `id` for `by` at `now`, with the two-person rule: a control that needs a
/// second person is first asked for ([`Lift::Requested`]), then lifted by someone else.
///
/// # Errors
/// [`ControlError::SamePerson`] if `by` asked for the lift and now confirms it; a storage
/// failure.
pub async fn lift<S: ControlStore + ?Sized>(
    store: &S,
    id: i64,
    by: &str,
    now: OffsetDateTime,
) -> Result<Lift> {
    let Some(record) = store.get(id).await? else {
        return Ok(Lift::NotFound);
    };
    if !record.active_at(now) {
        return Ok(Lift::NotActive(record));
    }
    if record.control.needs_second_person_to_lift() {
        match record.lift_requested_by.as_deref() {
            None => {
                if store.request_lift(id, by, now).await? {
                    return Ok(Lift::Requested(record));
                }
                // Someone asked at the same moment: decide on what they recorded.
                return Box::pin(lift(store, id, by, now)).await;
            }
            Some(asker) if asker == by => return Err(ControlError::SamePerson),
            Some(_) => {}
        }
    }
    Ok(if store.lift(id, by, now).await? {
        Lift::Lifted(record)
    } else {
        Lift::NotActive(record)
    })
}

#[derive(Debug, Default)]
struct Rows {
    records: Vec<ControlRecord>,
    version: i64,
}

/// A [`ControlStore`] in process memory: for tests and single-instance deployments
/// (controls are lost on restart).
#[derive(Debug, Default)]
pub struct MemoryControlStore {
    rows: Mutex<Rows>,
}

impl MemoryControlStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Rows> {
        // Every update finishes before the guard drops: a poisoned store is consistent.
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl ControlStore for MemoryControlStore {
    async fn insert(&self, new: &NewControl, now: OffsetDateTime) -> Result<ControlRecord> {
        let mut rows = self.lock();
        let id = rows.records.last().map_or(1, |r| r.id + 1);
        let record = ControlRecord {
            id,
            control: new.control().clone(),
            reason: new.reason().to_owned(),
            set_by: new.set_by().to_owned(),
            set_at: truncate(now),
            expires_at: new.expires_at().map(truncate),
            lift_requested_by: None,
            lifted_by: None,
            lifted_at: None,
        };
        rows.records.push(record.clone());
        rows.version += 1;
        Ok(record)
    }

    async fn get(&self, id: i64) -> Result<Option<ControlRecord>> {
        Ok(self.lock().records.iter().find(|r| r.id == id).cloned())
    }

    async fn active(&self, now: OffsetDateTime) -> Result<Vec<ControlRecord>> {
        Ok(self
            .lock()
            .records
            .iter()
            .filter(|r| r.active_at(now))
            .cloned()
            .collect())
    }

    async fn recent(&self, limit: u32) -> Result<Vec<ControlRecord>> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok(self
            .lock()
            .records
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn request_lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool> {
        let mut rows = self.lock();
        let Some(record) = rows.records.iter_mut().find(|r| r.id == id) else {
            return Ok(false);
        };
        if !record.active_at(now) || record.lift_requested_by.is_some() {
            return Ok(false);
        }
        record.lift_requested_by = Some(by.to_owned());
        Ok(true)
    }

    async fn lift(&self, id: i64, by: &str, now: OffsetDateTime) -> Result<bool> {
        let mut rows = self.lock();
        let Some(record) = rows.records.iter_mut().find(|r| r.id == id) else {
            return Ok(false);
        };
        if !record.active_at(now) {
            return Ok(false);
        }
        if record.control.needs_second_person_to_lift()
            && record
                .lift_requested_by
                .as_deref()
                .is_none_or(|asker| asker == by)
        {
            return Ok(false);
        }
        record.lifted_by = Some(by.to_owned());
        record.lifted_at = Some(truncate(now));
        rows.version += 1;
        Ok(true)
    }

    async fn version(&self) -> Result<i64> {
        Ok(self.lock().version)
    }
}

/// `t` to the microsecond, as the SQL stores keep it.
pub(crate) fn truncate(t: OffsetDateTime) -> OffsetDateTime {
    let micros = t.unix_timestamp_nanos() / 1_000;
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).unwrap_or(t)
}
