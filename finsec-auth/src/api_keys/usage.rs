//! Batched last-used tracking: an in-memory accumulator flushed every N uses or after an
//! interval (see the [module docs](super#usage-tracking-batched)).

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use super::{ApiKeyId, UsageUpdate};

/// When pending usage counts are written to the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageConfig {
    /// Flush when this many verifications are pending.
    pub max_pending_uses: NonZeroU64,
    /// Flush at the first verification this long after the last flush.
    pub max_interval: Duration,
}

impl UsageConfig {
    /// Default [`max_pending_uses`](Self::max_pending_uses): 1000.
    pub const DEFAULT_MAX_PENDING_USES: NonZeroU64 = match NonZeroU64::new(1000) {
        Some(n) => n,
        None => NonZeroU64::MIN,
    };
    /// Default [`max_interval`](Self::max_interval): 60 s.
    pub const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(60);
}

impl Default for UsageConfig {
    fn default() -> Self {
        Self {
            max_pending_uses: Self::DEFAULT_MAX_PENDING_USES,
            max_interval: Self::DEFAULT_MAX_INTERVAL,
        }
    }
}

#[derive(Debug, Default)]
struct Pending {
    per_key: HashMap<ApiKeyId, (u64, OffsetDateTime)>,
    total: u64,
    last_flush: Option<OffsetDateTime>,
}

/// The in-memory accumulator of uses. Thread safe.
#[derive(Debug)]
pub struct UsageBatcher {
    config: UsageConfig,
    pending: Mutex<Pending>,
}

impl UsageBatcher {
    /// An empty accumulator.
    pub fn new(config: UsageConfig) -> Self {
        Self {
            config,
            pending: Mutex::new(Pending::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts one use of `id` at `now`. Returns the batch to write if a flush is due.
    pub fn record(&self, id: ApiKeyId, now: OffsetDateTime) -> Option<Vec<UsageUpdate>> {
        let mut p = self.lock();
        let last_flush = *p.last_flush.get_or_insert(now);
        let entry = p.per_key.entry(id).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        if entry.1 < now {
            entry.1 = now;
        }
        p.total = p.total.saturating_add(1);
        let interval_due = time::Duration::try_from(self.config.max_interval)
            .ok()
            .and_then(|d| last_flush.checked_add(d))
            .is_some_and(|due| now >= due);
        if p.total >= self.config.max_pending_uses.get() || interval_due {
            Some(drain(&mut p, now))
        } else {
            None
        }
    }

    /// Takes everything pending (for an explicit flush).
    pub fn take(&self, now: OffsetDateTime) -> Vec<UsageUpdate> {
        drain(&mut self.lock(), now)
    }

    /// Puts back a batch whose write failed, so its counts go out with the next flush.
    pub fn restore(&self, batch: Vec<UsageUpdate>) {
        let mut p = self.lock();
        for u in batch {
            let entry = p.per_key.entry(u.id).or_insert((0, u.last_used_at));
            entry.0 = entry.0.saturating_add(u.uses);
            if entry.1 < u.last_used_at {
                entry.1 = u.last_used_at;
            }
            p.total = p.total.saturating_add(u.uses);
        }
    }

    /// Uses counted and not yet flushed.
    pub fn pending_uses(&self) -> u64 {
        self.lock().total
    }
}

fn drain(p: &mut Pending, now: OffsetDateTime) -> Vec<UsageUpdate> {
    p.total = 0;
    p.last_flush = Some(now);
    let mut batch: Vec<UsageUpdate> = p
        .per_key
        .drain()
        .map(|(id, (uses, last_used_at))| UsageUpdate {
            id,
            uses,
            last_used_at,
        })
        .collect();
    batch.sort_by_key(|u| u.id);
    batch
}
