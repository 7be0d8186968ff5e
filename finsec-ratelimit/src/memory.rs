//! The in-memory store: one process, sharded, no global lock, expired keys swept.
//!
//! # Layout
//!
//! A [`MemoryStore`] is a fixed array of shards, each a reader-writer lock around a hash table
//! of entries. A key is hashed once with a randomly keyed SipHash (keys are chosen by clients,
//! so the hash must resist collision flooding); the hash picks the shard and indexes that
//! shard's table, and the table is searched by `&str`, so a check of a known key allocates
//! nothing (its [`Decision`] borrows the check's quotas). The default shard count is the next
//! power of two at or above four times the available cores, and at least
//! [`MIN_DEFAULT_SHARDS`]. More shards than that would spread the keys over more memory, so
//! fewer of the lines a check touches would be found in the CPU's caches.
//!
//! An entry holds one [`QuotaState`] per quota that has counted against the key, identified by
//! the quota's full parameters (name, algorithm, limit, period, burst: exactly what
//! [`Quota::storage_id`] spells out), so a changed quota starts from fresh state. Each shard
//! keeps the distinct quotas it has seen once, and a state names its quota by its index there:
//! a check compares its quotas with that short list, then finds each state by an integer.
//!
//! # Concurrency
//!
//! A check of one quota (the usual case) of a key that already holds a state for it takes the
//! shard's lock *shared*, so checks of one shard, even of one key, run side by side. The state
//! itself is held in atomics: GCRA's is one word (the theoretical arrival time), replaced by a
//! compare-and-swap; a window's is two or three words behind a sequence number, read as a whole
//! between two equal even readings of the number and replaced by whoever first moves the
//! number from the even value it read to odd. Either way a check evaluates the state it read
//! with [`evaluate`] and writes only if that state is still the stored one, deciding again
//! otherwise; so concurrent checks of one key count exactly as if made one after the other. A
//! denied request (or a request of cost 0) writes nothing and takes effect as read.
//!
//! The other checks take the lock *exclusively*: those that store a state the key has no
//! place for yet (a new key, or a quota new to the key), and checks of several quotas, which
//! evaluate every quota and write the new states only if all allow, so they are atomic. Sweeps
//! take it exclusively too.
//!
//! # Expiry and sweeping
//!
//! A state stays meaningful until an instant it determines with its quota: the end of the
//! fixed window, the end of the window after the current sliding window, or GCRA's theoretical
//! arrival time. Past that instant it equals no state at all, and once every state of an entry
//! has reached it the entry can be dropped without changing any decision. Entries are removed
//! by sweeps:
//!
//! - **Incrementally, as checks are made.** The store keeps a schedule by the checks' own
//!   clock: one shard, the next in round-robin order, is due every `SWEEP_INTERVAL / shards`
//!   ([`SWEEP_INTERVAL`]), so every shard once per interval. Every check, allowed or denied,
//!   compares its time with the next visit's (one load of a value written only at each visit)
//!   and, once its own shard's lock is released, makes the visit if it is due: every expired
//!   entry of that shard is removed, and if the table is then less than a quarter full it is
//!   shrunk to twice its length, so the memory goes back to the allocator; the quotas no state
//!   names any more are dropped from the shard's list. Of several checks that find a visit
//!   due, one makes it. After a pause in checks the schedule resumes at most one interval
//!   behind, so the visits missed are made once: the next `shards` checks sweep every shard.
//!   A check more than an interval before the schedule (the clock stepped back) starts it again
//!   from its own time.
//! - **On demand**, with [`MemoryStore::sweep_at`] / [`MemoryStore::sweep`], which sweep and
//!   shrink every shard at once (for example from a periodic task when traffic may stop
//!   entirely).
//!
//! # Memory bound
//!
//! While checks keep arriving, each shard is swept once per [`SWEEP_INTERVAL`], so an entry is
//! removed at most one interval after it expired, and a sweep of one shard holds up only the
//! checks of that shard. The store therefore holds at most the keys whose state is still
//! meaningful plus those that expired within the last interval: under a flood of `F` new keys
//! per second whose longest quota state lasts `τ`, about `F × (τ + 1 s)` entries. When checks
//! stop, nothing is swept until they resume or [`sweep`](MemoryStore::sweep) is called.
//!
//! Each entry costs its table slot (64 bytes, holding one quota's state and, inline, a key of
//! up to 22 bytes; a longer key adds its own allocation, each further quota of the key 32
//! bytes on the heap; the tables keep at least an eighth of their slots free and are shrunk
//! when less than a quarter full): measured, one million keys of one quota take about 135 MiB
//! at their peak, under 145 bytes per key.
//!
//! Nothing bounds the number of *live* keys other than the quotas' lengths: a quota of one
//! request per day keeps a state for a day. Keys are per client (IP address, account), so
//! this is the number of distinct clients seen in the quota's period.
//!
//! # Time
//!
//! [`RateLimitStore::check`], [`MemoryStore::check_now`] and [`MemoryStore::sweep`] read the
//! store's [`Clock`], a type parameter. The default, [`SystemClock`], is the system clock's
//! time in microseconds, read from the CPU's cycle counter (through `quanta`; the OS
//! monotonic clock where no invariant counter exists) plus an offset that is taken from the
//! system clock again every second. It costs a few nanoseconds where the system clock costs a
//! call into the kernel's vDSO, stays within the counter's drift over one second (parts per
//! million) of the system clock, and follows a step of the system clock within a second.
//! [`MemoryStore::with_clock`] sets another clock, such as a
//! [`ManualClock`](crate::ManualClock) that a test moves on instead of sleeping.
//! [`MemoryStore::check_at`] (a [`SystemTime`]) and
//! [`MemoryStore::check_at_micros`] (microseconds since the Unix epoch) take the time as a
//! parameter; all of these are synchronous, so they can be called without an async runtime.
//! Times before the epoch or after [`MAX_TIME_MICROS`] are refused with
//! [`Error::InvalidTime`]. The store tolerates a clock that steps backwards: every algorithm
//! then decides as if no time had passed since the latest state.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hashbrown::HashTable;
use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use smallvec::SmallVec;

use crate::algorithm::{Evaluation, QuotaState, evaluate, expires_at};
use crate::clock::{Clock, SystemClock};
use crate::decision::Decision;
use crate::error::{Error, Result};
use crate::quota::{Algorithm, Quota};
use crate::store::{Check, RateLimitStore};

/// The latest time the store accepts, in microseconds since the Unix epoch (2^62 µs, about
/// the year 148,000). It leaves room for every span a quota may add (at most 2^53 µs) without
/// overflow.
pub const MAX_TIME_MICROS: i64 = 1 << 62;

/// The incremental sweep visits every shard once in this time, by the checks' clock (one shard
/// every `SWEEP_INTERVAL / shards`).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The fewest shards [`MemoryStore::new`] makes, whatever the number of cores.
pub const MIN_DEFAULT_SHARDS: usize = 16;

/// The most shards a store may have.
pub const MAX_SHARDS: usize = 1 << 16;

/// Tables at or below this capacity are never shrunk (shrinking them would free nothing
/// worth the reallocation).
const MIN_SHRINK_CAPACITY: usize = 64;

const SWEEP_INTERVAL_MICROS: i64 = 1_000_000;

/// The state of one quota of one key, held so that checks sharing the shard's lock can read
/// and replace it: GCRA's state is one word, replaced by compare-and-swap
/// ([`Slot::decide_gcra`]); a window's is two or three, behind a sequence number
/// ([`Slot::read`] and [`Slot::replace`]).
struct Slot {
    /// The quota's index in the shard's [`Registry`] (changed only under the exclusive lock).
    quota: u32,
    /// Even while `words` hold a complete state, odd while a check is writing them.
    seq: AtomicU32,
    /// The state, as [`encode`] lays it out for the quota's algorithm.
    words: [AtomicU64; 3],
}

/// A [`QuotaState`] as three words; which algorithm's it is comes from the slot's quota.
type Words = [u64; 3];

fn encode(state: QuotaState) -> Words {
    match state {
        QuotaState::Gcra { tat } => [tat.cast_unsigned(), 0, 0],
        QuotaState::FixedWindow { start, count } => [start.cast_unsigned(), count, 0],
        QuotaState::SlidingWindow {
            start,
            previous,
            current,
        } => [start.cast_unsigned(), previous, current],
    }
}

fn decode(algorithm: Algorithm, [first, second, third]: Words) -> QuotaState {
    let start = first.cast_signed();
    match algorithm {
        Algorithm::Gcra => QuotaState::Gcra { tat: start },
        Algorithm::FixedWindow => QuotaState::FixedWindow {
            start,
            count: second,
        },
        Algorithm::SlidingWindow => QuotaState::SlidingWindow {
            start,
            previous: second,
            current: third,
        },
    }
}

/// Spins this many times waiting for a slot being written before yielding the thread (a
/// write takes a few nanoseconds, unless its thread was preempted in the middle of it).
const SPINS_BEFORE_YIELD: u32 = 64;

impl Slot {
    fn new(quota: u32, state: QuotaState) -> Self {
        Self {
            quota,
            seq: AtomicU32::new(0),
            words: encode(state).map(AtomicU64::new),
        }
    }

    /// The state, read by a check that holds the shard's lock exclusively (so no other check
    /// is writing it).
    fn state(&self, algorithm: Algorithm) -> QuotaState {
        decode(
            algorithm,
            self.words.each_ref().map(|w| w.load(Ordering::Relaxed)),
        )
    }

    /// Stores `state`, by a check that holds the shard's lock exclusively.
    fn set(&mut self, state: QuotaState) {
        for (word, value) in self.words.iter_mut().zip(encode(state)) {
            *word.get_mut() = value;
        }
    }

    /// A check of the GCRA quota `quota`, whose state this is, under the shared lock. The
    /// state is one word (the theoretical arrival time), replaced by compare-and-swap; as every
    /// allowed request of positive cost moves it forward, a swap that succeeds replaced
    /// exactly the state the decision was made from.
    fn decide_gcra(&self, quota: &Quota, now: i64, cost: u32) -> Evaluation {
        let [tat, ..] = &self.words;
        let mut seen = tat.load(Ordering::Acquire);
        loop {
            let state = QuotaState::Gcra {
                tat: seen.cast_signed(),
            };
            let evaluation = evaluate(quota, Some(state), now, cost);
            if cost == 0 || !evaluation.allowed {
                return evaluation;
            }
            let [next, ..] = encode(evaluation.next);
            match tat.compare_exchange_weak(seen, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return evaluation,
                Err(current) => seen = current,
            }
        }
    }

    /// A complete state and the sequence number it was read at, under the shared lock: the
    /// words are read between two readings of an even, unchanged sequence number, so they
    /// come from one write.
    fn read(&self) -> (u32, Words) {
        let mut spins = 0;
        loop {
            let seq = self.seq.load(Ordering::Acquire);
            if seq & 1 == 0 {
                let words = self.words.each_ref().map(|w| w.load(Ordering::Relaxed));
                // Orders the loads above before the second reading: if one of them saw a
                // write, that reading sees the odd number the write began with.
                fence(Ordering::Acquire);
                if self.seq.load(Ordering::Relaxed) == seq {
                    return (seq, words);
                }
            }
            if spins < SPINS_BEFORE_YIELD {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }

    /// Replaces the state `seen`, read at `seq`, with `next`, under the shared lock; false,
    /// writing nothing, if another check has written the slot since (the caller then reads
    /// and decides again). The decision made from `seen` thus takes effect only if `seen`
    /// is still the state, which is what makes concurrent checks of one key exact.
    fn replace(&self, seq: u32, seen: &Words, next: &Words) -> bool {
        if self
            .seq
            .compare_exchange(
                seq,
                seq.wrapping_add(1),
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            return false;
        }
        // The slot is now this check's to write. Its words are `seen` unless 2^31 writes
        // brought the sequence number back round to `seq` in between; compare, to be exact
        // even then.
        let unchanged = self.words.each_ref().map(|w| w.load(Ordering::Relaxed)) == *seen;
        if unchanged {
            // Keeps the odd number ahead of the new words for readers (see `read`).
            fence(Ordering::Release);
            for (word, &value) in self.words.iter().zip(next) {
                word.store(value, Ordering::Relaxed);
            }
        }
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
        unchanged
    }
}

/// Everything stored for one key: 64 bytes in the table, plus the key's own allocation if it
/// is longer than [`INLINE_KEY`] bytes. Aligned so each entry has a cache line of its own:
/// checks of two keys whose entries lie side by side never contend for one line.
#[repr(align(64))]
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
/// stored state costs 32 bytes instead of a copy of its quota, and finding a check's quota in an
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
    #[inline]
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
        self.get(slot.quota).map_or(i64::MIN, |quota| {
            expires_at(quota, slot.state(quota.algorithm()))
        })
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
}

/// One shard, aligned so two shards never share a cache line.
#[repr(align(128))]
struct Shard {
    map: RwLock<ShardMap>,
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
pub struct MemoryStore<C = SystemClock> {
    shards: Box<[Shard]>,
    /// `shards.len() - 1` (the length is a power of two).
    mask: usize,
    hasher: RandomState,
    /// The next shard the incremental sweep visits.
    cursor: AtomicUsize,
    /// When (µs since the epoch, by the checks' clock) the incremental sweep next visits a
    /// shard. Every check reads it; it is written once per visit.
    sweep_due: AtomicI64,
    /// `SWEEP_INTERVAL / shards`, in µs (at least 1).
    sweep_step: i64,
    clock: C,
}

impl<C> fmt::Debug for MemoryStore<C> {
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
                map: RwLock::new(ShardMap {
                    table: HashTable::new(),
                    registry: Registry::default(),
                }),
            })
            .collect::<Box<[Shard]>>();
        Self {
            shards,
            mask: count - 1,
            hasher: RandomState::new(),
            cursor: AtomicUsize::new(0),
            sweep_due: AtomicI64::new(i64::MIN),
            sweep_step: (SWEEP_INTERVAL_MICROS / i64::try_from(count).unwrap_or(i64::MAX)).max(1),
            clock: SystemClock::new(),
        }
    }
}

impl<C: Clock> MemoryStore<C> {
    /// The same store, reading the time from `clock` (for example a
    /// [`ManualClock`](crate::ManualClock) in a test) instead of its current clock.
    pub fn with_clock<D: Clock>(self, clock: D) -> MemoryStore<D> {
        MemoryStore {
            shards: self.shards,
            mask: self.mask,
            hasher: self.hasher,
            cursor: self.cursor,
            sweep_due: self.sweep_due,
            sweep_step: self.sweep_step,
            clock,
        }
    }

    /// The clock checks without a time of their own are decided at.
    pub fn clock(&self) -> &C {
        &self.clock
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
            // One quota, the usual case: decided under the shared lock unless a new state
            // must be stored, and with no list of evaluations to gather.
            let shared = shared(&shard.map).decide_shared(&self.hasher, hash, &check, quota, now);
            let evaluation = match shared {
                Some(evaluation) => evaluation,
                None => exclusive(&shard.map).decide_one(&self.hasher, hash, &check, quota, now),
            };
            self.sweep_if_due(now);
            return Ok(Decision::from_evaluation(quota, &evaluation));
        }
        let mut evaluations = Evaluations::new();
        exclusive(&shard.map).decide(&self.hasher, hash, &check, now, &mut evaluations);
        self.sweep_if_due(now);
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
            .map(|shard| exclusive(&shard.map).sweep(now, &self.hasher))
            .sum()
    }

    /// [`sweep_at`](Self::sweep_at) the store clock's current time.
    pub fn sweep(&self) -> usize {
        self.sweep_at_micros(self.clock.now_micros().clamp(0, MAX_TIME_MICROS))
    }

    /// The number of keys held, expired or not (each shard is locked in turn, so under
    /// concurrent checks the figure is approximate).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| shared(&s.map).table.len()).sum()
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
            .map(|s| shared(&s.map).table.capacity())
            .sum()
    }

    /// The bytes allocated by the shards' tables (not counting the keys' own bytes).
    pub fn table_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| shared(&s.map).table.allocation_size())
            .sum()
    }

    fn shard_index(&self, hash: u64) -> usize {
        // The table uses the low bits (bucket) and the top seven bits (tag) of the hash;
        // the shard takes bits from the middle so neither loses entropy within a shard.
        (hash >> 32) as usize & self.mask
    }

    /// The incremental sweep, made by the checks themselves (after releasing their shard's
    /// lock): if a visit is due at `now`, visits the next shard.
    fn sweep_if_due(&self, now: i64) {
        let due = self.sweep_due.load(Ordering::Relaxed);
        // A schedule more than an interval ahead of this check means the clock stepped back
        // (or the caller's times did): it is started again from `now`.
        if now >= due || due.saturating_sub(now) > SWEEP_INTERVAL_MICROS {
            self.sweep_next(due, now);
        }
    }

    /// Moves the schedule on by one step and sweeps the next shard in round-robin order.
    /// After a pause the schedule resumes at most one interval behind `now`, so the missed
    /// visits are made once (the next `shards` checks sweep every shard), not repeatedly.
    #[cold]
    fn sweep_next(&self, due: i64, now: i64) {
        let from = if due > now {
            now
        } else {
            due.max(now.saturating_sub(SWEEP_INTERVAL_MICROS))
        };
        let next = from.saturating_add(self.sweep_step);
        // Of several checks that find the same visit due, one makes it.
        if self
            .sweep_due
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let index = self.cursor.fetch_add(1, Ordering::Relaxed) & self.mask;
        if let Some(shard) = self.shards.get(index) {
            exclusive(&shard.map).sweep(now, &self.hasher);
        }
    }
}

impl ShardMap {
    /// A check of the single quota `quota`, under the shared lock: its evaluation, or `None`
    /// if the check would store a state the key has no slot for yet (a new key, or a quota
    /// new to the key), which needs the lock exclusively ([`decide_one`](Self::decide_one)).
    fn decide_shared(
        &self,
        hasher: &RandomState,
        hash: u64,
        check: &Check<'_, '_>,
        quota: &Quota,
        now: i64,
    ) -> Option<Evaluation> {
        let key = check.key.as_bytes();
        let cost = check.cost;
        let slot = self
            .table
            .find(hash, |e| e.key.as_bytes() == key)
            .and_then(|entry| {
                let id = self.registry.find(quota, hasher)?;
                entry.slots.iter().find(|s| s.quota == id)
            });
        let Some(slot) = slot else {
            let evaluation = evaluate(quota, None, now, cost);
            return (cost == 0 || !evaluation.allowed).then_some(evaluation);
        };
        let algorithm = quota.algorithm();
        if algorithm == Algorithm::Gcra {
            return Some(slot.decide_gcra(quota, now, cost));
        }
        loop {
            let (seq, words) = slot.read();
            let evaluation = evaluate(quota, Some(decode(algorithm, words)), now, cost);
            // A denial (or a request of cost 0) writes nothing, so it takes effect as read.
            if cost == 0
                || !evaluation.allowed
                || slot.replace(seq, &words, &encode(evaluation.next))
            {
                return Some(evaluation);
            }
        }
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
                let state = slot.as_ref().map(|s| s.state(quota.algorithm()));
                let evaluation = evaluate(quota, state, now, cost);
                if cost > 0 && evaluation.allowed {
                    match slot {
                        // The entry holds no other quota's state to drop when expired.
                        Some(slot) if only => slot.set(evaluation.next),
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
                        .map(|slot| slot.state(quota.algorithm()));
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
                Some(slot) => slot.set(evaluation.next),
                None => {
                    let quota = match id {
                        Some(id) => id,
                        // Not registered when the check began (no earlier quota of this check
                        // can have registered it: a check's quotas are distinct).
                        None => registry
                            .find(quota, hasher)
                            .unwrap_or_else(|| registry.insert(quota, hasher)),
                    };
                    self.slots.push(Slot::new(quota, evaluation.next));
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

// A panic while a lock is held cannot leave a shard half-written: states are written only
// after every evaluation, by assignments that cannot panic. So the lock (which does not
// poison) is simply released by the unwinding guard.

/// The shard's lock, shared: checks of states the shard already holds.
fn shared(map: &RwLock<ShardMap>) -> RwLockReadGuard<'_, ShardMap> {
    map.read()
}

/// The shard's lock, exclusive: checks that add a key or a state, checks of several quotas,
/// and sweeps.
fn exclusive(map: &RwLock<ShardMap>) -> RwLockWriteGuard<'_, ShardMap> {
    map.write()
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
impl<C: Clock> RateLimitStore for MemoryStore<C> {
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
    fn an_entry_of_one_quota_fits_a_cache_line() {
        assert_eq!(size_of::<Slot>(), 32);
        assert_eq!(size_of::<Entry>(), 64);
    }

    /// Runs `requests` checks of `key` on each of `times.len()` threads at once, thread `t`
    /// at `times[t]`, request `i` costing `cost(i)`; the total cost allowed.
    fn hammer(
        store: &MemoryStore,
        quotas: &[Quota],
        times: &[i64],
        requests: u32,
        cost: fn(u32) -> u32,
    ) -> u64 {
        let barrier = std::sync::Barrier::new(times.len());
        std::thread::scope(|s| {
            let threads: Vec<_> = times
                .iter()
                .map(|&now| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        (0..requests)
                            .map(|i| {
                                let check = Check::new("k", quotas).with_cost(cost(i));
                                let d = store.check_at_micros(check, now).unwrap();
                                if d.allowed() { u64::from(cost(i)) } else { 0 }
                            })
                            .sum::<u64>()
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        })
    }

    /// What is left of key "k"'s quotas at `now` (a check of cost 0 counts nothing).
    fn remaining_at(store: &MemoryStore, quotas: &[Quota], now: i64) -> u64 {
        let check = Check::new("k", quotas).with_cost(0);
        store.check_at_micros(check, now).unwrap().remaining()
    }

    /// Threads checking one key at one instant, through the shared lock (the key's state
    /// exists before they start), with costs of 1 and 2 mixed: the costs allowed add up to
    /// exactly the quota, for every algorithm.
    #[test]
    fn threads_on_one_key_count_exactly() {
        for alg in Algorithm::ALL {
            let quotas = [Quota::per_minute(n(10_001)).with_algorithm(alg).unwrap()];
            let store = MemoryStore::with_shards(1);
            let first = store.check_at_micros(Check::new("k", &quotas), T0).unwrap();
            assert!(first.allowed());
            let allowed = 1 + hammer(&store, &quotas, &[T0; 4], 20_000, |i| 1 + i % 2);
            assert_eq!(allowed, 10_001, "{alg}");
            assert_eq!(remaining_at(&store, &quotas, T0), 0, "{alg}");
        }
    }

    /// Threads checking one key on both sides of a window boundary, 1 µs apart: the later
    /// window's count is never reset by a check that read the earlier time, so no more is
    /// allowed than the two windows (fixed), or the one sliding window, hold.
    #[test]
    fn threads_straddling_a_window_boundary_count_exactly() {
        // T0 is a whole second, so a window boundary of every one-second quota.
        let times = [T0 - 1, T0, T0 - 1, T0];
        for alg in Algorithm::ALL {
            let quotas = [Quota::per_second(n(500)).with_algorithm(alg).unwrap()];
            let store = MemoryStore::with_shards(1);
            let allowed = hammer(&store, &quotas, &times, 5_000, |_| 1);
            match alg {
                Algorithm::FixedWindow => {
                    assert!((500..=1_000).contains(&allowed), "{alg}: {allowed}");
                }
                _ => assert_eq!(allowed, 500, "{alg}"),
            }
            assert_eq!(remaining_at(&store, &quotas, T0), 0, "{alg}");
        }
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
        for alg in Algorithm::ALL {
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
    fn incremental_sweep_catches_up_after_a_pause_then_keeps_pace() {
        let store = MemoryStore::with_shards(8);
        let step = SWEEP_INTERVAL_MICROS / 8;
        assert_eq!(store.sweep_step, step);
        let q = [Quota::per_second(n(1))];
        let fill = |now: i64| {
            for i in 0..1_000 {
                let d = store
                    .check_at_micros(Check::new(&format!("k{i}"), &q), now)
                    .unwrap();
                assert!(d.allowed());
            }
        };
        fill(T0);
        assert_eq!(store.len(), 1_000);
        // After a pause, the next eight checks (of one key, as many shards) sweep everything
        // that expired meanwhile.
        let later = T0 + 10_000_000;
        for _ in 0..8 {
            store
                .check_at_micros(Check::new("busy", &q), later)
                .unwrap();
        }
        assert_eq!(store.len(), 1);
        // Then one shard per step: with checks at a steady pace (mostly denied: they drive the
        // sweep too), keys that expire are all gone one interval after they expired, and not
        // before.
        fill(later);
        assert_eq!(store.len(), 1_001);
        let mut now = later;
        let mut denied = 0;
        while now < later + 2 * SWEEP_INTERVAL_MICROS {
            now += step;
            let d = store.check_at_micros(Check::new("busy", &q), now).unwrap();
            denied += usize::from(!d.allowed());
            if now < later + SWEEP_INTERVAL_MICROS {
                assert_eq!(store.len(), 1_001, "swept before expiry at {now}");
            }
        }
        assert!(denied > 8, "{denied}");
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_clock_stepped_back_does_not_stop_the_sweep() {
        let store = MemoryStore::with_shards(1);
        let q = [Quota::per_second(n(1))];
        let hour = 3_600_000_000;
        store
            .check_at_micros(Check::new("ahead", &q), T0 + hour)
            .unwrap();
        // The clock steps back an hour; the sweep schedule follows it.
        store.check_at_micros(Check::new("k", &q), T0).unwrap();
        assert_eq!(store.len(), 2);
        store
            .check_at_micros(Check::new("busy", &q), T0 + 2_000_000)
            .unwrap();
        // "k" expired at T0 + 1 s and is gone; "ahead" lasts until an hour later.
        assert_eq!(store.len(), 2);
        assert_eq!(
            store
                .check_at_micros(Check::new("k", &q), T0 + 2_000_000)
                .unwrap()
                .remaining(),
            0
        );
        assert_eq!(store.len(), 3);
        assert!(
            !store
                .check_at_micros(Check::new("ahead", &q), T0 + hour)
                .unwrap()
                .allowed()
        );
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
        assert_eq!(shared(&store.shards[0].map).registry.quotas.len(), count);
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
        assert_eq!(
            shared(&store.shards[0].map).registry.quotas.len(),
            count / 2
        );
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
    fn a_manual_clock_drives_checks_batches_and_the_sweep() {
        use std::sync::Arc;
        use std::time::Duration;

        use crate::clock::ManualClock;

        let clock = Arc::new(ManualClock::new(T0));
        let store = MemoryStore::with_shards(1).with_clock(Arc::clone(&clock));
        let quotas = [Quota::per_second(n(2))];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let check = || rt.block_on(store.check(Check::new("k", &quotas))).unwrap();
        assert!(check().allowed());
        assert!(check().allowed());
        assert!(!check().allowed(), "the burst of 2 is spent at one instant");
        clock.advance(Duration::from_millis(500));
        assert!(check().allowed(), "half a second refills one");
        assert!(!check().allowed());
        let batch = [Check::new("k", &quotas), Check::new("other", &quotas)];
        let decisions = rt.block_on(store.check_batch(&batch)).unwrap();
        assert!(!decisions[0].allowed() && decisions[1].allowed());

        assert_eq!(store.len(), 2);
        assert_eq!(store.sweep(), 0, "nothing has expired yet");
        clock.advance(Duration::from_secs(5));
        assert_eq!(
            store.sweep(),
            2,
            "the clock, not the system time, decides expiry"
        );
        assert!(store.is_empty());
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
