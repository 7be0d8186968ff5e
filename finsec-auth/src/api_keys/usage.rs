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
    /// Keyed by verified ids only (a use is counted after the secret matched), which callers
    /// cannot choose: a fast hash is safe here.
    per_key: HashMap<ApiKeyId, (u64, OffsetDateTime), foldhash::fast::RandomState>,
    total: u64,
    /// When the interval since the last flush runs out; `None` before the first use.
    flush_due: Option<FlushDue>,
}

/// The end of the current flush interval, computed once per interval rather than per use.
#[derive(Debug, Clone, Copy)]
enum FlushDue {
    At(OffsetDateTime),
    /// The interval reaches past the largest representable time.
    Never,
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
        let due = *p
            .flush_due
            .get_or_insert_with(|| flush_due(self.config, now));
        let entry = p.per_key.entry(id).or_insert((0, now));
        entry.0 = entry.0.saturating_add(1);
        if entry.1 < now {
            entry.1 = now;
        }
        p.total = p.total.saturating_add(1);
        let interval_due = matches!(due, FlushDue::At(at) if now >= at);
        if p.total >= self.config.max_pending_uses.get() || interval_due {
            Some(drain(&mut p, self.config, now))
        } else {
            None
        }
    }

    /// Takes everything pending (for an explicit flush).
    pub fn take(&self, now: OffsetDateTime) -> Vec<UsageUpdate> {
        drain(&mut self.lock(), self.config, now)
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

/// The end of a flush interval that starts at `start`.
fn flush_due(config: UsageConfig, start: OffsetDateTime) -> FlushDue {
    time::Duration::try_from(config.max_interval)
        .ok()
        .and_then(|d| start.checked_add(d))
        .map_or(FlushDue::Never, FlushDue::At)
}

fn drain(p: &mut Pending, config: UsageConfig, now: OffsetDateTime) -> Vec<UsageUpdate> {
    p.total = 0;
    p.flush_due = Some(flush_due(config, now));
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
