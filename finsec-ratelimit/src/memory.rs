//! The in-memory store: one process, sharded, no global lock, expired keys swept.
//!
//! # Layout
//!
//! A [`MemoryStore`] is a fixed array of shards, each a [`Mutex`] around a hash table of
//! entries. A key is hashed once with a randomly keyed SipHash (keys are chosen by clients, so
//! the hash must resist collision flooding); the hash picks the shard and indexes that shard's
//! table, and the table is searched by `&str`, so a check of a known key allocates nothing
//! (its [`Decision`] borrows the check's quotas). The default shard count is the next power of
//! two at or above four times the available cores, and at least [`MIN_DEFAULT_SHARDS`]; two
//! checks contend only when their keys fall in the same shard. More shards than that would
//! spread the keys over more memory, so fewer of the lines a check touches would be found in
//! the CPU's caches.
//!
//! An entry holds one [`QuotaState`] per quota that has counted against the key, identified by
//! the quota's full parameters (name, algorithm, limit, period, burst: exactly what
//! [`Quota::storage_id`] spells out), so a changed quota starts from fresh state. Each shard
//! keeps the distinct quotas it has seen once, and a state names its quota by its index there:
//! a check compares its quotas with that short list, then finds each state by an integer.
//! Every quota of a check is evaluated under the shard's lock with [`evaluate`], and the new
//! states are written only if all of them allow the request; a multi-quota check is therefore
//! atomic, and a denied request (or a request of cost 0) writes nothing.
//!
//! # Expiry and sweeping
//!
//! A state stays meaningful until an instant it determines with its quota: the end of the
//! fixed window, the end of the window after the current sliding window, or GCRA's theoretical
//! arrival time. Past that instant it equals no state at all, and once every state of an entry
//! has reached it the entry can be dropped without changing any decision. Entries are removed
//! by sweeps:
//!
//! - **Incrementally, as checks are made.** Every [`SWEEP_EVERY`]-th check landing in a
//!   shard looks at the next shard in a round-robin order shared by all shards; if that shard
//!   has not been swept for [`SWEEP_INTERVAL`] (by the checks' own clock), it is swept: every
//!   expired entry is removed, and if the table is then less than a quarter full it is shrunk to
//!   twice its length, so the memory goes back to the allocator; the quotas no state
//!   names any more are dropped from the shard's list. No lock is held while another
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
//! Each entry costs its table slot (72 bytes, holding one quota's state and, inline, a key of
//! up to 22 bytes; a longer key adds its own allocation, each further quota of the key 40
//! bytes on the heap; the tables keep at least an eighth of their slots free and are shrunk
//! when less than a quarter full): measured, one million keys of one quota take about 165 MiB
//! at their peak, under 175 bytes per key.
//!
//! Nothing bounds the number of *live* keys other than the quotas' lengths: a quota of one
//! request per day keeps a state for a day. Keys are per client (IP address, account), so
//! this is the number of distinct clients seen in the quota's period.
//!
//! # Time
//!
//! [`RateLimitStore::check`], [`MemoryStore::check_now`] and [`MemoryStore::sweep`] read the
//! store's clock: the system clock's time in microseconds, read from the CPU's cycle counter
//! (through `quanta`; the OS monotonic clock where no invariant counter exists) plus an offset
//! that is taken from the system clock again every second. It costs a few nanoseconds where
//! the system clock costs a call into the kernel's vDSO, stays within the counter's drift over
//! one second (parts per million) of the system clock, and follows a step of the system clock
//! within a second. [`MemoryStore::check_at`] (a [`SystemTime`]) and
//! [`MemoryStore::check_at_micros`] (microseconds since the Unix epoch) take the time as a
//! parameter; all of these are synchronous, so they can be called without an async runtime. Times before the epoch or after [`MAX_TIME_MICROS`] are refused with
//! [`Error::InvalidTime`]. The store tolerates a clock that steps backwards: every algorithm
//! then decides as if no time had passed since the latest state.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::algorithm::{Evaluation, QuotaState, evaluate, expires_at};
use crate::clock::Clock;
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
pub const MIN_DEFAULT_SHARDS: usize = 16;

/// The most shards a store may have.
pub const MAX_SHARDS: usize = 1 << 16;

/// Tables at or below this capacity are never shrunk (shrinking them would free nothing
/// worth the reallocation).
const MIN_SHRINK_CAPACITY: usize = 64;

const SWEEP_INTERVAL_MICROS: i64 = 1_000_000;

/// The state of one quota of one key.
#[derive(Clone, Copy)]
struct Slot {
    /// The quota's index in the shard's [`Registry`].
    quota: u32,
    state: QuotaState,
}

/// Everything stored for one key: 72 bytes in the table, plus the key's own allocation if it
/// is longer than [`INLINE_KEY`] bytes.
struct Entry {
    key: StoredKey,
    slots: SmallVec<[Slot; 1]>,
}

/// The longest key held inside its entry.
const INLINE_KEY: usize = 22;

/// A key as stored: inside the entry when short (an address or an account number behind a
/// short prefix), so finding it reads no second allocation; otherwise on the heap.
enum StoredKey {
    Inline { len: u8, bytes: [u8; INLINE_KEY] },
    Heap(Box<str>),
}

impl StoredKey {
    fn new(key: &str) -> Self {
        match u8::try_from(key.len()) {
            Ok(len) if key.len() <= INLINE_KEY => {
                let mut bytes = [0; INLINE_KEY];
                for (to, from) in bytes.iter_mut().zip(key.as_bytes()) {
                    *to = *from;
                }
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(Box::from(key)),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            Self::Heap(key) => key.as_bytes(),
        }
    }
}

/// The evaluations of one check's quotas (usually one to three).
type Evaluations = SmallVec<[Evaluation; 4]>;

/// Per quota of a check: its index in the registry and where its state is in the entry.
type Found = SmallVec<[(Option<u32>, Option<usize>); 4]>;

/// The distinct quotas whose states a shard holds. A slot names its quota by index here, so a
/// stored state costs 40 bytes instead of a copy of its quota, and finding a check's quota in an
/// entry compares two integers.
///
/// A registry of up to [`REGISTRY_SCAN`] quotas is searched by scanning it (the usual case: an
/// application has a handful of quotas); a larger one also keeps a hash index, so a store fed
/// many distinct quotas (per-tenant limits, say) still finds each in constant time. Quotas no
/// state refers to any more are dropped by the sweep.
#[derive(Default)]
struct Registry {
    quotas: Vec<Quota>,
    /// Indexes into `quotas` by the quota's hash; built once `quotas` outgrows [`REGISTRY_SCAN`].
    index: HashTable<u32>,
}

/// The most quotas a [`Registry`] holds before it keeps a hash index.
const REGISTRY_SCAN: usize = 16;

impl Registry {
    fn find(&self, quota: &Quota, hasher: &RandomState) -> Option<u32> {
        if self.quotas.len() <= REGISTRY_SCAN {
            let index = self.quotas.iter().position(|q| q == quota)?;
            return u32::try_from(index).ok();
        }
        self.index
            .find(hasher.hash_one(quota), |&i| self.get(i) == Some(quota))
            .copied()
    }

    fn get(&self, id: u32) -> Option<&Quota> {
        self.quotas.get(usize::try_from(id).ok()?)
    }

    /// Adds a quota not yet registered; its index.
    fn insert(&mut self, quota: &Quota, hasher: &RandomState) -> u32 {
        // A shard would need four billion distinct quotas to overflow, and each holds a state.
        let id = u32::try_from(self.quotas.len()).unwrap_or(u32::MAX);
        self.quotas.push(quota.clone());
        if self.quotas.len() > REGISTRY_SCAN {
            if self.index.is_empty() {
                self.rebuild_index(hasher);
            } else {
                let quotas = &self.quotas;
                self.index.insert_unique(hasher.hash_one(quota), id, |&i| {
                    index_hash(quotas, i, hasher)
                });
            }
        }
        id
    }

    fn rebuild_index(&mut self, hasher: &RandomState) {
        self.index.clear();
        if self.quotas.len() <= REGISTRY_SCAN {
            self.index.shrink_to(0, |_| 0);
            return;
        }
        let quotas = &self.quotas;
        for (i, quota) in quotas.iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            self.index.insert_unique(hasher.hash_one(quota), id, |&i| {
                index_hash(quotas, i, hasher)
            });
        }
    }

    /// From when the slot's state equals no state (`i64::MIN`, so at once, if the slot names
    /// no quota, which the store never lets happen).
    fn expires_at(&self, slot: &Slot) -> i64 {
        self.get(slot.quota)
            .map_or(i64::MIN, |quota| expires_at(quota, slot.state))
    }

    /// Drops the quotas no entry of `table` refers to any more, renumbering the slots.
    fn collect(&mut self, table: &mut HashTable<Entry>, hasher: &RandomState) {
        let mut used = vec![false; self.quotas.len()];
        for slot in table.iter().flat_map(|e| &e.slots) {
            if let Some(u) = usize::try_from(slot.quota)
                .ok()
                .and_then(|i| used.get_mut(i))
            {
                *u = true;
            }
        }
        if used.iter().all(|&u| u) {
            return;
        }
        // The new index of each quota that stays.
        let mut next = 0_u32;
        let renumber: Vec<u32> = used
            .iter()
            .map(|&u| {
                let id = next;
                next += u32::from(u);
                id
            })
            .collect();
        let mut used = used.into_iter();
        self.quotas.retain(|_| used.next().unwrap_or(false));
        for slot in table.iter_mut().flat_map(|e| &mut e.slots) {
            if let Some(&id) = usize::try_from(slot.quota)
                .ok()
                .and_then(|i| renumber.get(i))
            {
                slot.quota = id;
            }
        }
        self.quotas.shrink_to(self.quotas.len().max(4));
        self.rebuild_index(hasher);
    }
}

fn index_hash(quotas: &[Quota], id: u32, hasher: &RandomState) -> u64 {
    usize::try_from(id)
        .ok()
        .and_then(|i| quotas.get(i))
        .map_or(0, |q| hasher.hash_one(q))
}

/// A key hashed as its bytes alone, in one write (a `str`'s own `Hash` adds a terminator byte
/// in a second write, needed only when several values are hashed together).
struct KeyBytes<'a>(&'a [u8]);

impl Hash for KeyBytes<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(self.0);
    }
}

fn hash_key(hasher: &RandomState, key: &[u8]) -> u64 {
    hasher.hash_one(KeyBytes(key))
}

/// The hash of a stored entry's key, for the table to move it when it grows or shrinks.
fn hash_entry(hasher: &RandomState, entry: &Entry) -> u64 {
    hash_key(hasher, entry.key.as_bytes())
}

struct ShardMap {
    table: HashTable<Entry>,
    registry: Registry,
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
    clock: Clock,
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
                    registry: Registry::default(),
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
            clock: Clock::new(),
        }
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Decides `check` now, by the store's clock (the system clock's time, read from a cycle
    /// counter: see the [module documentation](self#time)).
    ///
    /// # Errors
    /// As [`check_at_micros`](Self::check_at_micros).
    pub fn check_now<'q>(&self, check: Check<'_, 'q>) -> Result<Decision<'q>> {
        self.check_at_micros(check, self.clock.now_micros())
    }

    /// Decides `check` at `now`.
    ///
    /// # Errors
    /// A validation error from [`Check::validate`], or [`Error::InvalidTime`] if `now` is
    /// before the Unix epoch or after [`MAX_TIME_MICROS`].
    pub fn check_at<'q>(&self, check: Check<'_, 'q>, now: SystemTime) -> Result<Decision<'q>> {
        self.check_at_micros(check, micros_since_epoch(now)?)
    }

    /// Decides `check` at `now`, in microseconds since the Unix epoch.
    ///
    /// # Errors
    /// A validation error from [`Check::validate`] (returned unchanged), or
    /// [`Error::InvalidTime`] if `now` is outside `0..=`[`MAX_TIME_MICROS`].
    pub fn check_at_micros<'q>(&self, check: Check<'_, 'q>, now: i64) -> Result<Decision<'q>> {
        check.validate()?;
        self.decide_valid(check, valid_time(now)?)
    }

    /// Decides a check already validated, at a time already in range.
    fn decide_valid<'q>(&self, check: Check<'_, 'q>, now: i64) -> Result<Decision<'q>> {
        let hash = hash_key(&self.hasher, check.key.as_bytes());
        let index = self.shard_index(hash);
        let Some(shard) = self.shards.get(index) else {
            // Unreachable: the index is masked to the number of shards.
            return Err(Error::InvalidKey {
                reason: "the key maps to no shard",
            });
        };
        if let [quota] = check.quotas {
            // One quota, the usual case: no list of evaluations to gather.
            let (evaluation, sweep_next) = {
                let mut map = lock(&shard.map);
                let evaluation = map.decide_one(&self.hasher, hash, &check, quota, now);
                (evaluation, map.count_check())
            };
            if sweep_next {
                self.sweep_next(now);
            }
            return Ok(Decision::from_evaluation(quota, &evaluation));
        }
        let mut evaluations = Evaluations::new();
        let sweep_next = {
            let mut map = lock(&shard.map);
            map.decide(&self.hasher, hash, &check, now, &mut evaluations);
            map.count_check()
        };
        if sweep_next {
            self.sweep_next(now);
        }
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
                let removed = lock(&shard.map).sweep(now, &self.hasher);
                shard.swept_at.fetch_max(now, Ordering::Relaxed);
                removed
            })
            .sum()
    }

    /// [`sweep_at`](Self::sweep_at) the store clock's current time.
    pub fn sweep(&self) -> usize {
        self.sweep_at_micros(self.clock.now_micros().clamp(0, MAX_TIME_MICROS))
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
        lock(&shard.map).sweep(now, &self.hasher);
        shard.swept_at.fetch_max(now, Ordering::Relaxed);
    }
}

impl ShardMap {
    /// Counts a check that landed here; whether the next shard is now due for a sweep.
    fn count_check(&mut self) -> bool {
        self.ops += 1;
        let due = self.ops >= SWEEP_EVERY;
        if due {
            self.ops = 0;
        }
        due
    }

    /// [`decide`](Self::decide) for a check of the single quota `quota`.
    fn decide_one(
        &mut self,
        hasher: &RandomState,
        hash: u64,
        check: &Check<'_, '_>,
        quota: &Quota,
        now: i64,
    ) -> Evaluation {
        let key = check.key;
        let cost = check.cost;
        let registry = &mut self.registry;
        match self
            .table
            .find_mut(hash, |e| e.key.as_bytes() == key.as_bytes())
        {
            Some(entry) => {
                let id = registry.find(quota, hasher);
                let index = id.and_then(|id| entry.slots.iter().position(|s| s.quota == id));
                let only = entry.slots.len() == 1;
                let slot = index.and_then(|i| entry.slots.get_mut(i));
                let evaluation = evaluate(quota, slot.as_ref().map(|s| s.state), now, cost);
                if cost > 0 && evaluation.allowed {
                    match slot {
                        // The entry holds no other quota's state to drop when expired.
                        Some(slot) if only => slot.state = evaluation.next,
                        _ => entry.write(
                            registry,
                            hasher,
                            std::slice::from_ref(quota),
                            std::slice::from_ref(&evaluation),
                            &[(id, index)],
                            now,
                        ),
                    }
                }
                evaluation
            }
            None => {
                let evaluation = evaluate(quota, None, now, cost);
                if cost > 0 && evaluation.allowed {
                    let entry = Entry::new(
                        registry,
                        hasher,
                        key,
                        std::slice::from_ref(quota),
                        std::slice::from_ref(&evaluation),
                        now,
                    );
                    self.table
                        .insert_unique(hash, entry, |e| hash_entry(hasher, e));
                }
                evaluation
            }
        }
    }

    /// Evaluates every quota of `check` for its key into `evaluations` and writes the new
    /// states if all allow.
    fn decide(
        &mut self,
        hasher: &RandomState,
        hash: u64,
        check: &Check<'_, '_>,
        now: i64,
        evaluations: &mut Evaluations,
    ) {
        let key = check.key;
        let quotas = check.quotas;
        let cost = check.cost;
        let registry = &mut self.registry;
        match self
            .table
            .find_mut(hash, |e| e.key.as_bytes() == key.as_bytes())
        {
            Some(entry) => {
                let mut found = Found::new();
                for quota in quotas {
                    let id = registry.find(quota, hasher);
                    let index = id.and_then(|id| entry.slots.iter().position(|s| s.quota == id));
                    let state = index
                        .and_then(|i| entry.slots.get(i))
                        .map(|slot| slot.state);
                    found.push((id, index));
                    evaluations.push(evaluate(quota, state, now, cost));
                }
                if cost > 0 && evaluations.iter().all(|e| e.allowed) {
                    entry.write(registry, hasher, quotas, evaluations, &found, now);
                }
            }
            None => {
                evaluations.extend(quotas.iter().map(|q| evaluate(q, None, now, cost)));
                if cost > 0 && evaluations.iter().all(|e| e.allowed) {
                    let entry = Entry::new(registry, hasher, key, quotas, evaluations, now);
                    self.table
                        .insert_unique(hash, entry, |e| hash_entry(hasher, e));
                }
            }
        }
    }

    /// Removes the entries expired at `now`, shrinks the table if it is mostly empty and drops
    /// the quotas no state refers to any more. Returns how many entries were removed.
    fn sweep(&mut self, now: i64, hasher: &RandomState) -> usize {
        let before = self.table.len();
        let registry = &self.registry;
        let mut states_dropped = false;
        // An entry goes when all its states have expired; one that stays loses its expired
        // states, so the quotas only they named can be dropped too.
        self.table.retain(|e| {
            let held = e.slots.len();
            e.slots.retain(|slot| registry.expires_at(slot) > now);
            states_dropped |= e.slots.len() < held;
            !e.slots.is_empty()
        });
        let len = self.table.len();
        let capacity = self.table.capacity();
        if capacity > MIN_SHRINK_CAPACITY && len < capacity / 4 {
            self.table
                .shrink_to(len.saturating_mul(2), |e| hash_entry(hasher, e));
        }
        if states_dropped {
            self.registry.collect(&mut self.table, hasher);
        }
        before - len
    }
}

impl Entry {
    /// A new key's entry holding the allowed evaluations' states.
    fn new(
        registry: &mut Registry,
        hasher: &RandomState,
        key: &str,
        quotas: &[Quota],
        evaluations: &[Evaluation],
        now: i64,
    ) -> Self {
        let mut entry = Self {
            key: StoredKey::new(key),
            slots: SmallVec::with_capacity(quotas.len()),
        };
        entry.write(registry, hasher, quotas, evaluations, &[], now);
        entry
    }

    /// Stores the allowed evaluations' states (`found[i]` is quota `i`'s registry index and
    /// the index of its slot in this entry, where known), and drops the states of other quotas
    /// that have expired.
    fn write(
        &mut self,
        registry: &mut Registry,
        hasher: &RandomState,
        quotas: &[Quota],
        evaluations: &[Evaluation],
        found: &[(Option<u32>, Option<usize>)],
        now: i64,
    ) {
        for (i, (quota, evaluation)) in quotas.iter().zip(evaluations).enumerate() {
            let (id, index) = found.get(i).copied().unwrap_or((None, None));
            match index.and_then(|index| self.slots.get_mut(index)) {
                Some(slot) => slot.state = evaluation.next,
                None => {
                    let quota = match id {
                        Some(id) => id,
                        // Not registered when the check began (no earlier quota of this check
                        // can have registered it: a check's quotas are distinct).
                        None => registry
                            .find(quota, hasher)
                            .unwrap_or_else(|| registry.insert(quota, hasher)),
                    };
                    self.slots.push(Slot {
                        quota,
                        state: evaluation.next,
                    });
                }
            }
        }
        if quotas.len() < self.slots.len() {
            // The entry also holds other quotas' states: drop those that have expired. Every
            // state just written lasts beyond `now` (an allowed request of positive cost
            // always has a positive ttl), so they stay.
            self.slots.retain(|s| registry.expires_at(s) > now);
        }
    }
}

fn lock(map: &Mutex<ShardMap>) -> MutexGuard<'_, ShardMap> {
    // A panic while the lock is held cannot leave a shard half-written: states are written
    // only after every evaluation, by plain assignments. So the lock (which does not poison)
    // is simply released by the unwinding guard.
    map.lock()
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
    async fn check<'q>(&self, check: Check<'_, 'q>) -> Result<Decision<'q>> {
        self.check_now(check)
    }

    /// Decides every check at one reading of the clock, in order.
    async fn check_batch<'q>(&self, checks: &[Check<'_, 'q>]) -> Result<Vec<Decision<'q>>> {
        for c in checks {
            c.validate()?;
        }
        let now = valid_time(self.clock.now_micros())?;
        checks.iter().map(|c| self.decide_valid(*c, now)).collect()
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
    fn many_distinct_quotas_are_found_by_index_and_dropped_when_unused() {
        let store = MemoryStore::with_shards(1);
        let count = 3 * REGISTRY_SCAN;
        // Quotas with different lengths, so each expires at its own time.
        let quotas: Vec<Quota> = (0..count)
            .map(|i| {
                Quota::new(n(1), Duration::from_secs(1 + i as u64))
                    .unwrap()
                    .named(&format!("q{i}"))
                    .unwrap()
            })
            .collect();
        for (i, quota) in quotas.iter().enumerate() {
            let one = std::slice::from_ref(quota);
            assert!(
                store
                    .check_at_micros(Check::new("shared", one), T0)
                    .unwrap()
                    .allowed()
            );
            assert!(
                store
                    .check_at_micros(Check::new(&format!("own{i}"), one), T0)
                    .unwrap()
                    .allowed()
            );
        }
        assert_eq!(lock(&store.shards[0].map).registry.quotas.len(), count);
        // Every state is found again: each quota (limit 1) now denies on both keys.
        for quota in &quotas {
            let one = std::slice::from_ref(quota);
            assert!(
                !store
                    .check_at_micros(Check::new("shared", one), T0)
                    .unwrap()
                    .allowed()
            );
        }
        // Past the first half's periods: their states go, and so do those quotas, and the
        // remaining states are renumbered without being mixed up.
        let later = T0 + (count as i64 / 2) * 1_000_000;
        let removed = store.sweep_at_micros(later);
        assert_eq!(removed, count / 2);
        assert_eq!(lock(&store.shards[0].map).registry.quotas.len(), count / 2);
        for (i, quota) in quotas.iter().enumerate() {
            let one = std::slice::from_ref(quota);
            let fresh = i < count / 2;
            let shared = store
                .check_at_micros(Check::new("shared", one), later)
                .unwrap();
            assert_eq!(shared.allowed(), fresh, "quota {i} on the shared key");
            let own = store
                .check_at_micros(Check::new(&format!("own{i}"), one), later)
                .unwrap();
            assert_eq!(own.allowed(), fresh, "quota {i} on its own key");
        }
    }

    #[test]
    fn short_and_long_keys_are_told_apart_by_every_byte() {
        let store = MemoryStore::with_shards(1);
        let q = [Quota::per_minute(n(1))];
        let keys = [
            "k".to_owned(),
            "a".repeat(INLINE_KEY - 1),
            "a".repeat(INLINE_KEY),
            "a".repeat(INLINE_KEY + 1),
            format!("{}b", "a".repeat(INLINE_KEY - 1)),
            format!("{}b", "a".repeat(INLINE_KEY)),
            format!("{}b", "a".repeat(200)),
            format!("{}c", "a".repeat(200)),
        ];
        for key in &keys {
            let first = store.check_at_micros(Check::new(key, &q), T0).unwrap();
            assert!(first.allowed(), "{key}");
        }
        assert_eq!(store.len(), keys.len());
        for key in &keys {
            let again = store.check_at_micros(Check::new(key, &q), T0).unwrap();
            assert!(!again.allowed(), "{key}");
        }
        // Growing the table rehashes the stored keys, inline or not.
        for i in 0..1_000 {
            store
                .check_at_micros(Check::new(&format!("filler{i}"), &q), T0)
                .unwrap();
        }
        for key in &keys {
            let again = store.check_at_micros(Check::new(key, &q), T0).unwrap();
            assert!(!again.allowed(), "{key}");
        }
    }

    #[test]
    fn a_decision_outlives_the_key_it_was_made_for() {
        let store = MemoryStore::new();
        let quotas = [Quota::per_second(n(2))];
        let decision = {
            let key = format!("ip:{}", "203.0.113.9");
            store
                .check_at_micros(Check::new(&key, &quotas), T0)
                .unwrap()
        };
        assert!(std::ptr::eq(decision.quotas()[0].quota(), &quotas[0]));
        assert_eq!(decision.remaining(), 1);
    }

    #[test]
    fn the_store_clock_is_the_system_time() {
        let store = MemoryStore::new();
        let quotas = [Quota::per_day(n(1))
            .with_algorithm(Algorithm::FixedWindow)
            .unwrap()];
        let before = SystemTime::now();
        let decision = store.check_now(Check::new("k", &quotas)).unwrap();
        // The fixed window ends at the next midnight UTC, by the system clock.
        let since = before.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let to_midnight = 86_400 - since % 86_400;
        let reset = decision.quotas()[0].reset_after().as_secs();
        assert!(reset.abs_diff(to_midnight) <= 2, "{reset} vs {to_midnight}");
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
