//! The in-memory store: one process, sharded, no global lock, expired keys swept.
//!
//! # Layout
//!
//! A [`MemoryStore`] is a fixed array of shards, each a [`Mutex`] around a hash table of
//! entries. A key is hashed once with a randomly keyed SipHash (keys are chosen by clients,
//! so the hash must resist collision flooding); the hash picks the shard and indexes that
//! shard's table, and the table is searched by `&str`, so a check of a known key allocates
//! nothing but its [`Decision`]. The default shard count is the next power of two at or above
//! four times the available cores, and at least [`MIN_DEFAULT_SHARDS`]; two checks contend only
//! when their keys fall in the same shard.
//!
//! An entry holds one [`QuotaState`] per quota that has counted against the key, identified by
//! the quota's full parameters (name, algorithm, limit, period, burst: exactly what
//! [`Quota::storage_id`] spells out), so a changed quota starts from fresh state. Every quota
//! of a check is evaluated under the shard's lock with [`evaluate`], and the new states are
//! written only if all of them allow the request; a multi-quota check is therefore atomic, and a
//! denied request (or a request of cost 0) writes nothing.
//!
//! # Expiry and sweeping
//!
//! Each evaluation says how long its state stays meaningful (`ttl_us`: the end of the fixed
//! window, the end of the window after the current sliding window, or GCRA's theoretical
//! arrival time). An entry remembers, for each quota and for itself, the instant its state
//! becomes equal to no state at all; past that instant the entry can be dropped without
//! changing any decision. Entries are removed by sweeps:
//!
//! - **Incrementally, as checks are made.** Every [`SWEEP_EVERY`]-th check landing in a
//!   shard looks at the next shard in a round-robin order shared by all shards; if that shard
//!   has not been swept for [`SWEEP_INTERVAL`] (by the checks' own clock), it is swept: every
//!   expired entry is removed, and if the table is then less than a quarter full it is shrunk to
//!   twice its length, so the memory goes back to the allocator. No lock is held while another
//!   shard is swept, so sweeping cannot deadlock, and the shared cursor is touched only on one
//!   check in [`SWEEP_EVERY`], so it is not a point of contention.
//! - **On demand**, with [`MemoryStore::sweep_at`] / [`MemoryStore::sweep`], which sweep and
//!   shrink every shard at once (for example from a periodic task when traffic may stop
//!   entirely).
//!
//! # Memory bound
//!
//! The incremental sweep sweeps a shard at most once per [`SWEEP_INTERVAL`], so its cost is
//! at most one visit per entry per interval, however the traffic is spread, and a sweep of one
//! shard holds up only the checks of that shard. The cursor moves one shard every
//! [`SWEEP_EVERY`] checks landing in any one shard, so a full round of the cursor takes at most
//! `2 × shards × SWEEP_EVERY` checks (the worst case being checks spread evenly over the
//! shards). An entry is therefore removed at most one [`SWEEP_INTERVAL`] plus two rounds after
//! it expired, and while checks keep arriving the store holds at most the keys whose state is
//! still meaningful plus the keys that expired within that time: under a flood of `F` new keys
//! per second whose longest quota state lasts `τ`, about `F × (τ + 1 s)` entries plus a few
//! thousand. When checks stop, nothing is swept until they resume or
//! [`sweep`](MemoryStore::sweep) is called.
//!
//! Each entry costs its table slot (about 150 bytes, holding one quota's state inline; each
//! further quota of the key adds about 80 bytes on the heap; the tables keep at
//! least an eighth of their slots free and are shrunk when less than a quarter full) plus the
//! key's own allocation: measured, one million keys of one quota take about 290 MiB at their
//! peak, under 300 bytes per key.
//!
//! Nothing bounds the number of *live* keys other than the quotas' lengths: a quota of one
//! request per day keeps a state for a day. Keys are per client (IP address, account), so
//! this is the number of distinct clients seen in the quota's period.
//!
//! # Time
//!
//! [`RateLimitStore::check`] reads the system clock. [`MemoryStore::check_at`] (a
//! [`SystemTime`]) and [`MemoryStore::check_at_micros`] (microseconds since the Unix epoch)
//! take the time as a parameter; both are synchronous, so they can be called without an async
//! runtime. Times before the epoch or after [`MAX_TIME_MICROS`] are refused with
//! [`Error::InvalidTime`]. The store tolerates a clock that steps backwards: every algorithm
//! then decides as if no time had passed since the latest state.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hashbrown::HashTable;
use smallvec::SmallVec;

use crate::algorithm::{Evaluation, QuotaState, evaluate};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::quota::Quota;
use crate::store::{Check, RateLimitStore};

/// The latest time the store accepts, in microseconds since the Unix epoch (2^62 µs, about
/// the year 148,000). It leaves room for every span a quota may add (at most 2^53 µs) without
/// overflow.
pub const MAX_TIME_MICROS: i64 = 1 << 62;

/// Every this many checks landing in a shard, the next shard in the round-robin order is
/// considered for sweeping.
pub const SWEEP_EVERY: u32 = 64;

/// The incremental sweep visits a shard at most this often (measured by the checks' clock).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The fewest shards [`MemoryStore::new`] makes, whatever the number of cores.
pub const MIN_DEFAULT_SHARDS: usize = 64;

/// The most shards a store may have.
pub const MAX_SHARDS: usize = 1 << 16;

/// Tables at or below this capacity are never shrunk (shrinking them would free nothing
/// worth the reallocation).
const MIN_SHRINK_CAPACITY: usize = 64;

const SWEEP_INTERVAL_MICROS: i64 = 1_000_000;

/// The state of one quota of one key.
struct Slot {
    quota: Quota,
    state: QuotaState,
    /// From this instant (µs since the epoch) the state equals no state.
    expires_at: i64,
}

/// Everything stored for one key.
struct Entry {
    /// The key's hash, kept so the table can grow and shrink without rehashing keys.
    hash: u64,
    key: Box<str>,
    /// The latest `expires_at` of the slots: from then on the entry can be dropped.
    expires_at: i64,
    slots: SmallVec<[Slot; 1]>,
}

/// The evaluations of one check's quotas (usually one to three).
type Evaluations = SmallVec<[Evaluation; 4]>;

struct ShardMap {
    table: HashTable<Entry>,
    /// Checks that landed in this shard, modulo [`SWEEP_EVERY`].
    ops: u32,
}

/// One shard, aligned so two shards never share a cache line.
#[repr(align(128))]
struct Shard {
    map: Mutex<ShardMap>,
    /// When this shard was last swept (µs since the epoch), readable without the lock.
    swept_at: AtomicI64,
}

/// A sharded in-memory [`RateLimitStore`] for a single process.
///
/// It decides exactly as [`evaluate`] does, atomically for all quotas of a check, and forgets
/// keys once their state has expired (see the [module documentation](self) for the sweep
/// strategy and the memory bound). Share one store between tasks and threads with an `Arc`.
///
/// ```
/// use std::num::NonZeroU32;
/// use finsec_ratelimit::{Check, Quota, memory::MemoryStore};
///
/// let store = MemoryStore::new();
/// let quotas = [Quota::per_minute(NonZeroU32::new(2).unwrap())];
/// let now = 1_700_000_000_000_000; // µs since the Unix epoch
/// assert!(store.check_at_micros(Check::new("ip:203.0.113.9", &quotas), now)?.allowed());
/// assert!(store.check_at_micros(Check::new("ip:203.0.113.9", &quotas), now)?.allowed());
/// let denied = store.check_at_micros(Check::new("ip:203.0.113.9", &quotas), now)?;
/// assert!(!denied.allowed());
/// assert_eq!(denied.retry_after().map(|d| d.as_secs()), Some(30));
/// # Ok::<(), finsec_ratelimit::Error>(())
/// ```
pub struct MemoryStore {
    shards: Box<[Shard]>,
    /// `shards.len() - 1` (the length is a power of two).
    mask: usize,
    hasher: RandomState,
    /// The next shard the incremental sweep considers.
    cursor: AtomicUsize,
}

impl fmt::Debug for MemoryStore {
    /// Shows the shape of the store, never its keys (they identify clients).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store with the default number of shards: the next power of two at or above four
    /// times the available cores, and at least [`MIN_DEFAULT_SHARDS`].
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self::with_shards(cores.saturating_mul(4).max(MIN_DEFAULT_SHARDS))
    }

    /// A store with `shards` shards, rounded up to a power of two and kept within
    /// `1..=`[`MAX_SHARDS`].
    pub fn with_shards(shards: usize) -> Self {
        let count = shards.clamp(1, MAX_SHARDS).next_power_of_two();
        let shards = (0..count)
            .map(|_| Shard {
                map: Mutex::new(ShardMap {
                    table: HashTable::new(),
                    ops: 0,
                }),
                swept_at: AtomicI64::new(i64::MIN),
            })
            .collect::<Box<[Shard]>>();
        Self {
            shards,
            mask: count - 1,
            hasher: RandomState::new(),
            cursor: AtomicUsize::new(0),
        }
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Decides `check` at the system clock's current time.
    ///
    /// # Errors
    /// As [`check_at_micros`](Self::check_at_micros).
    pub fn check_now(&self, check: Check<'_>) -> Result<Decision> {
        self.check_at(check, SystemTime::now())
    }

    /// Decides `check` at `now`.
    ///
    /// # Errors
    /// A validation error from [`Check::validate`], or [`Error::InvalidTime`] if `now` is
    /// before the Unix epoch or after [`MAX_TIME_MICROS`].
    pub fn check_at(&self, check: Check<'_>, now: SystemTime) -> Result<Decision> {
        self.check_at_micros(check, micros_since_epoch(now)?)
    }

    /// Decides `check` at `now`, in microseconds since the Unix epoch.
    ///
    /// # Errors
    /// A validation error from [`Check::validate`] (returned unchanged), or
    /// [`Error::InvalidTime`] if `now` is outside `0..=`[`MAX_TIME_MICROS`].
    pub fn check_at_micros(&self, check: Check<'_>, now: i64) -> Result<Decision> {
        check.validate()?;
        let now = valid_time(now)?;
        let hash = self.hasher.hash_one(check.key);
        let index = self.shard_index(hash);
        let Some(shard) = self.shards.get(index) else {
            // Unreachable: the index is masked to the number of shards.
            return Err(Error::InvalidKey {
                reason: "the key maps to no shard",
            });
        };
        let mut evaluations = Evaluations::new();
        let sweep_next = {
            let mut map = lock(&shard.map);
            map.decide(hash, &check, now, &mut evaluations);
            map.ops += 1;
            let sweep_next = map.ops >= SWEEP_EVERY;
            if sweep_next {
                map.ops = 0;
            }
            sweep_next
        };
        if sweep_next {
            self.sweep_next(now);
        }
        // Built after the lock is released: it allocates.
        Ok(Decision::from_evaluations(check.quotas, &evaluations))
    }

    /// Removes every entry expired at `now` from every shard and shrinks the tables that
    /// became mostly empty. Returns how many entries were removed. A `now` outside the
    /// supported range is brought within it (sweeping only compares times).
    pub fn sweep_at(&self, now: SystemTime) -> usize {
        let now = micros_since_epoch(now)
            .unwrap_or_else(|_| if now < UNIX_EPOCH { 0 } else { MAX_TIME_MICROS });
        self.sweep_at_micros(now)
    }

    /// [`sweep_at`](Self::sweep_at) with the time in microseconds since the Unix epoch.
    pub fn sweep_at_micros(&self, now: i64) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let removed = lock(&shard.map).sweep(now);
                shard.swept_at.fetch_max(now, Ordering::Relaxed);
                removed
            })
            .sum()
    }

    /// [`sweep_at`](Self::sweep_at) the system clock's current time.
    pub fn sweep(&self) -> usize {
        self.sweep_at(SystemTime::now())
    }

    /// The number of keys held, expired or not (each shard is locked in turn, so under
    /// concurrent checks the figure is approximate).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(&s.map).table.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of entries the shards' tables can hold without reallocating: a measure of
    /// the memory the tables hold, which shrinks again after a sweep.
    pub fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(&s.map).table.capacity())
            .sum()
    }

    /// The bytes allocated by the shards' tables (not counting the keys' own bytes).
    pub fn table_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| lock(&s.map).table.allocation_size())
            .sum()
    }

    fn shard_index(&self, hash: u64) -> usize {
        // The table uses the low bits (bucket) and the top seven bits (tag) of the hash;
        // the shard takes bits from the middle so neither loses entropy within a shard.
        (hash >> 32) as usize & self.mask
    }

    /// The incremental sweep: the next shard in round-robin order, if not swept recently.
    fn sweep_next(&self, now: i64) {
        let index = self.cursor.fetch_add(1, Ordering::Relaxed) & self.mask;
        let Some(shard) = self.shards.get(index) else {
            return;
        };
        let due = shard
            .swept_at
            .load(Ordering::Relaxed)
            .saturating_add(SWEEP_INTERVAL_MICROS);
        if now < due {
            return;
        }
        lock(&shard.map).sweep(now);
        shard.swept_at.fetch_max(now, Ordering::Relaxed);
    }
}

impl ShardMap {
    /// Evaluates every quota of `check` for its key into `evaluations` and writes the new
    /// states if all allow.
    fn decide(&mut self, hash: u64, check: &Check<'_>, now: i64, evaluations: &mut Evaluations) {
        let key = check.key;
        let quotas = check.quotas;
        let cost = check.cost;
        match self.table.find_mut(hash, |e| &*e.key == key) {
            Some(entry) => {
                // Where each quota's state is in the entry, found once.
                let mut found: SmallVec<[Option<usize>; 4]> = SmallVec::new();
                for quota in quotas {
                    let index = entry.slots.iter().position(|s| s.quota == *quota);
                    let state = index
                        .and_then(|i| entry.slots.get(i))
                        .map(|slot| slot.state);
                    found.push(index);
                    evaluations.push(evaluate(quota, state, now, cost));
                }
                if cost > 0 && evaluations.iter().all(|e| e.allowed) {
                    entry.write(quotas, evaluations, &found, now);
                }
            }
            None => {
                evaluations.extend(quotas.iter().map(|q| evaluate(q, None, now, cost)));
                if cost > 0 && evaluations.iter().all(|e| e.allowed) {
                    let mut entry = Entry {
                        hash,
                        key: Box::from(key),
                        expires_at: now,
                        slots: SmallVec::with_capacity(quotas.len()),
                    };
                    entry.write(quotas, evaluations, &[], now);
                    self.table.insert_unique(hash, entry, |e| e.hash);
                }
            }
        }
    }

    /// Removes the entries expired at `now`, then shrinks the table if it is mostly empty.
    fn sweep(&mut self, now: i64) -> usize {
        let before = self.table.len();
        self.table.retain(|e| e.expires_at > now);
        let len = self.table.len();
        let capacity = self.table.capacity();
        if capacity > MIN_SHRINK_CAPACITY && len < capacity / 4 {
            self.table.shrink_to(len.saturating_mul(2), |e| e.hash);
        }
        before - len
    }
}

impl Entry {
    /// Stores the allowed evaluations' states (`found[i]` is where quota `i`'s state already
    /// is, if anywhere), drops the states of other quotas that have expired, and moves the
    /// entry's expiry to its latest slot's.
    fn write(
        &mut self,
        quotas: &[Quota],
        evaluations: &[Evaluation],
        found: &[Option<usize>],
        now: i64,
    ) {
        for (i, (quota, evaluation)) in quotas.iter().zip(evaluations).enumerate() {
            let expires_at = now.saturating_add(i64::try_from(evaluation.ttl_us).unwrap_or(0));
            let slot = found
                .get(i)
                .copied()
                .flatten()
                .and_then(|index| self.slots.get_mut(index));
            match slot {
                Some(slot) => {
                    slot.state = evaluation.next;
                    slot.expires_at = expires_at;
                }
                None => self.slots.push(Slot {
                    quota: quota.clone(),
                    state: evaluation.next,
                    expires_at,
                }),
            }
        }
        if quotas.len() < self.slots.len() {
            // The entry also holds other quotas' states: drop those that have expired. Every
            // state just written lasts beyond `now` (an allowed request of positive cost
            // always has a positive ttl), so they stay.
            self.slots.retain(|s| s.expires_at > now);
        }
        self.expires_at = self.slots.iter().map(|s| s.expires_at).max().unwrap_or(now);
    }
}

fn lock(map: &Mutex<ShardMap>) -> MutexGuard<'_, ShardMap> {
    // A panic while the lock is held cannot leave a shard half-written: states are written
    // only after every evaluation, by plain assignments. So a poisoned lock is still usable.
    map.lock().unwrap_or_else(PoisonError::into_inner)
}

fn valid_time(now: i64) -> Result<i64> {
    if now < 0 {
        return Err(Error::InvalidTime {
            reason: "the time is before the Unix epoch",
        });
    }
    if now > MAX_TIME_MICROS {
        return Err(Error::InvalidTime {
            reason: "the time is more than 2^62 µs after the Unix epoch",
        });
    }
    Ok(now)
}

/// Microseconds since the Unix epoch, if within `0..=MAX_TIME_MICROS`.
fn micros_since_epoch(now: SystemTime) -> Result<i64> {
    let since = now
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::InvalidTime {
            reason: "the time is before the Unix epoch",
        })?;
    let micros = i64::try_from(since.as_micros()).unwrap_or(i64::MAX);
    valid_time(micros)
}

#[async_trait]
impl RateLimitStore for MemoryStore {
    async fn check(&self, check: Check<'_>) -> Result<Decision> {
        self.check_now(check)
    }

    /// Decides every check at one reading of the clock, in order.
    async fn check_batch(&self, checks: &[Check<'_>]) -> Result<Vec<Decision>> {
        for c in checks {
            c.validate()?;
        }
        let now = micros_since_epoch(SystemTime::now())?;
        checks
            .iter()
            .map(|c| self.check_at_micros(*c, now))
            .collect()
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::quota::Algorithm;

    const T0: i64 = 1_700_000_000_000_000;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    #[test]
    fn shard_counts_are_powers_of_two() {
        assert_eq!(MemoryStore::with_shards(0).shard_count(), 1);
        assert_eq!(MemoryStore::with_shards(5).shard_count(), 8);
        assert_eq!(
            MemoryStore::with_shards(usize::MAX).shard_count(),
            MAX_SHARDS
        );
        assert!(MemoryStore::new().shard_count() >= MIN_DEFAULT_SHARDS);
    }

    #[test]
    fn times_out_of_range_are_refused() {
        let store = MemoryStore::new();
        let quotas = [Quota::per_second(n(1))];
        let check = Check::new("k", &quotas);
        for bad in [-1, i64::MIN, MAX_TIME_MICROS + 1, i64::MAX] {
            assert!(matches!(
                store.check_at_micros(check, bad),
                Err(Error::InvalidTime { .. })
            ));
        }
        assert!(matches!(
            store.check_at(check, UNIX_EPOCH - Duration::from_secs(1)),
            Err(Error::InvalidTime { .. })
        ));
        assert!(store.check_at_micros(check, 0).unwrap().allowed());
        assert!(
            store
                .check_at_micros(check, MAX_TIME_MICROS)
                .unwrap()
                .allowed()
        );
        assert_eq!(store.sweep_at(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }

    #[test]
    fn cost_zero_and_denials_store_nothing() {
        let store = MemoryStore::with_shards(1);
        let quotas = [Quota::per_second(n(1))];
        let d = store
            .check_at_micros(Check::new("k", &quotas).with_cost(0), T0)
            .unwrap();
        assert!(d.allowed());
        assert_eq!(d.remaining(), 1);
        assert!(store.is_empty());
        assert!(
            store
                .check_at_micros(Check::new("k", &quotas), T0)
                .unwrap()
                .allowed()
        );
        assert_eq!(store.len(), 1);
        assert!(
            !store
                .check_at_micros(Check::new("k", &quotas), T0)
                .unwrap()
                .allowed()
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn changed_quota_starts_fresh_and_old_state_is_dropped_when_expired() {
        let store = MemoryStore::with_shards(1);
        let day = [Quota::per_day(n(1)).named("q").unwrap()];
        let second = [Quota::per_second(n(1)).named("q").unwrap()];
        assert!(
            store
                .check_at_micros(Check::new("k", &day), T0)
                .unwrap()
                .allowed()
        );
        // Same name, other parameters: its own state.
        assert!(
            store
                .check_at_micros(Check::new("k", &second), T0)
                .unwrap()
                .allowed()
        );
        assert!(
            !store
                .check_at_micros(Check::new("k", &day), T0)
                .unwrap()
                .allowed()
        );
        // The per-day state keeps the entry alive after the per-second one expired.
        assert_eq!(store.sweep_at_micros(T0 + 2_000_000), 0);
        assert!(
            !store
                .check_at_micros(Check::new("k", &day), T0 + 2_000_000)
                .unwrap()
                .allowed()
        );
        assert_eq!(store.sweep_at_micros(T0 + 86_400_000_000), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn sweeping_does_not_change_decisions() {
        for alg in [
            Algorithm::Gcra,
            Algorithm::FixedWindow,
            Algorithm::SlidingWindow,
        ] {
            let q = [Quota::per_second(n(3)).with_algorithm(alg).unwrap()];
            let swept = MemoryStore::with_shards(2);
            let kept = MemoryStore::with_shards(2);
            let mut now = T0 + 12_345;
            for step in 0..400_i64 {
                let a = swept.check_at_micros(Check::new("k", &q), now).unwrap();
                let b = kept.check_at_micros(Check::new("k", &q), now).unwrap();
                assert_eq!(a, b, "{alg} step {step}");
                swept.sweep_at_micros(now);
                now += (step * 7_919) % 1_300_000;
            }
        }
    }

    #[test]
    fn incremental_sweep_visits_every_shard() {
        let store = MemoryStore::with_shards(8);
        let q = [Quota::per_second(n(1))];
        for i in 0..1_000 {
            store
                .check_at_micros(Check::new(&format!("k{i}"), &q), T0)
                .unwrap();
        }
        assert_eq!(store.len(), 1_000);
        // Only one key keeps being checked after the others expired.
        let later = T0 + 10_000_000;
        for i in 0..(8 * SWEEP_EVERY as i64) {
            store
                .check_at_micros(Check::new("busy", &q), later + i * 1_000_000)
                .unwrap();
        }
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_denied_check_reports_every_quota_unconsumed() {
        let store = MemoryStore::with_shards(1);
        let quotas = [
            Quota::per_second(n(10)).named("loose").unwrap(),
            Quota::per_minute(n(1)).named("tight").unwrap(),
        ];
        let first = store.check_at_micros(Check::new("k", &quotas), T0).unwrap();
        assert!(first.allowed());
        let loose = &first.quotas()[0];
        assert_eq!(loose.remaining(), 9);
        assert_eq!(loose.reset_after(), Duration::from_millis(100));
        // `tight` denies, so nothing is consumed: `loose` reports its figures as they stand
        // (50 ms after the first request, 50 ms of its 100 ms are still to run), not as if
        // this request had been counted.
        let denied = store
            .check_at_micros(Check::new("k", &quotas), T0 + 50_000)
            .unwrap();
        assert!(!denied.allowed());
        let loose = &denied.quotas()[0];
        assert!(loose.allowed());
        assert_eq!(loose.remaining(), 9);
        assert_eq!(loose.reset_after(), Duration::from_millis(50));
        let tight = &denied.quotas()[1];
        assert!(!tight.allowed());
        assert_eq!(tight.remaining(), 0);
        assert_eq!(
            tight.reset_after(),
            Duration::from_micros(60_000_000 - 50_000)
        );
    }

    #[test]
    fn debug_does_not_show_keys() {
        let store = MemoryStore::new();
        let q = [Quota::per_second(n(1))];
        store
            .check_at_micros(Check::new("account:secret-client", &q), T0)
            .unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains("secret-client"), "{shown}");
        assert!(shown.contains("MemoryStore"));
    }
}
