//! Where the in-memory store reads the time: the [`Clock`] trait, the default
//! [`SystemClock`], and [`ManualClock`] for tests and simulations.
//!
//! [`MemoryStore`](crate::MemoryStore) reads a clock on every check that does not carry its
//! own time ([`check_now`](crate::MemoryStore::check_now), [`RateLimitStore::check`],
//! [`sweep`](crate::MemoryStore::sweep)). The clock is a type parameter, as in `governor`:
//! `MemoryStore<SystemClock>` (the default) in production, `MemoryStore<ManualClock>` in a
//! test that moves time on by calling [`ManualClock::advance`] instead of sleeping.
//! The Redis store reads the Redis server's clock, so every instance agrees; it takes no
//! `Clock`.
//!
//! # `SystemClock`
//!
//! Reading the system clock costs a call into the kernel's vDSO on every check, a sizeable
//! share of an in-memory decision. [`SystemClock`] reads the CPU's cycle counter instead
//! (through `quanta`, which falls back to the OS monotonic clock where no invariant counter
//! exists) and adds an offset taken from the system clock. The offset is taken again once a
//! second, so the time never strays from the system clock by more than the counter drifts in
//! a second (parts per million), and a step of the system clock is followed within a second.
//! Between two readings of the offset the time moves with the counter alone, so it does not
//! step; when the offset is taken again it may step back by that drift, which every algorithm
//! tolerates (it decides as if no time had passed).
//!
//! [`RateLimitStore::check`]: crate::RateLimitStore::check

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often, in counter microseconds, the offset is taken again from the system clock.
const REANCHOR_MICROS: i64 = 1_000_000;

/// A source of the current time, in microseconds since the Unix epoch.
///
/// Implementations must be cheap (the in-memory store reads the clock on every check) and
/// may step backwards; the store decides as if no time had passed. Times outside
/// `0..=`[`MAX_TIME_MICROS`](crate::memory::MAX_TIME_MICROS) are refused by checks with
/// [`Error::InvalidTime`](crate::Error::InvalidTime).
pub trait Clock: Send + Sync {
    /// The current time, in microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;
}

/// Forwards [`Clock`] through each smart pointer or reference type given.
macro_rules! forward_clock {
    ($($ty:ty),*) => {$(
        impl<C: Clock + ?Sized> Clock for $ty {
            fn now_micros(&self) -> i64 {
                (**self).now_micros()
            }
        }
    )*};
}

forward_clock!(&C, Arc<C>, Box<C>);

/// The system clock's time, read from a cycle counter kept in step with it (see the
/// [module docs](self)). The default clock of [`MemoryStore`](crate::MemoryStore).
pub struct SystemClock {
    counter: quanta::Clock,
    /// The counter's raw reading when the clock was made; the counter's time is counted from it.
    base: u64,
    /// The system clock's time minus the counter's, in microseconds.
    offset: AtomicI64,
    /// The counter's time (µs) from which the offset is due to be taken again.
    reanchor_at: AtomicI64,
}

impl fmt::Debug for SystemClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemClock")
            .field("offset_micros", &self.offset.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        SystemClock::now_micros(self)
    }
}

impl SystemClock {
    /// A clock anchored to the system clock now.
    pub fn new() -> Self {
        Self::with_counter(quanta::Clock::new())
    }

    /// A clock counting with `counter` (a `quanta` mock in tests).
    fn with_counter(counter: quanta::Clock) -> Self {
        let base = counter.raw();
        let clock = Self {
            counter,
            base,
            offset: AtomicI64::new(0),
            reanchor_at: AtomicI64::new(0),
        };
        clock.anchor(0);
        clock
    }

    /// The current time, in microseconds since the Unix epoch.
    pub fn now_micros(&self) -> i64 {
        let counted = self.counted();
        if counted >= self.reanchor_at.load(Ordering::Relaxed) {
            self.anchor(counted);
        }
        counted.saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Microseconds the counter has advanced since the clock was made.
    fn counted(&self) -> i64 {
        let nanos = self.counter.delta_as_nanos(self.base, self.counter.raw());
        i64::try_from(nanos / 1_000).unwrap_or(i64::MAX)
    }

    /// Takes the offset from the system clock, `counted` being the counter's time now. Two
    /// threads may do it at once; either result is a correct offset.
    fn anchor(&self, counted: i64) {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
            });
        self.offset
            .store(system.saturating_sub(counted), Ordering::Relaxed);
        self.reanchor_at
            .store(counted.saturating_add(REANCHOR_MICROS), Ordering::Relaxed);
    }
}

/// A clock that moves only when told to: for tests and simulations, so that no test
/// sleeps to pass time. Shared by reference or in an [`Arc`] between the store and the
/// test.
///
/// ```
/// use std::num::NonZeroU32;
/// use std::sync::Arc;
/// use std::time::Duration;
/// use finsec_ratelimit::clock::ManualClock;
/// use finsec_ratelimit::{Check, MemoryStore, Quota};
///
/// let clock = Arc::new(ManualClock::new(1_700_000_000_000_000));
/// let store = MemoryStore::with_shards(1).with_clock(Arc::clone(&clock));
/// let quotas = [Quota::per_second(NonZeroU32::MIN)];
/// assert!(store.check_now(Check::new("k", &quotas))?.allowed());
/// assert!(!store.check_now(Check::new("k", &quotas))?.allowed());
/// clock.advance(Duration::from_secs(1));
/// assert!(store.check_now(Check::new("k", &quotas))?.allowed());
/// # Ok::<(), finsec_ratelimit::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct ManualClock {
    micros: AtomicI64,
}

impl ManualClock {
    /// A clock reading `micros` microseconds since the Unix epoch.
    pub fn new(micros: i64) -> Self {
        Self {
            micros: AtomicI64::new(micros),
        }
    }

    /// A clock reading `time`; times before the epoch read 0, times past `i64::MAX`
    /// microseconds read `i64::MAX`.
    pub fn at(time: SystemTime) -> Self {
        let micros = time.duration_since(UNIX_EPOCH).map_or(0, |since| {
            i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
        });
        Self::new(micros)
    }

    /// Sets the time to `micros`, forwards or backwards.
    pub fn set_micros(&self, micros: i64) {
        self.micros.store(micros, Ordering::Relaxed);
    }

    /// Moves the time on by `by` (saturating at `i64::MAX` microseconds).
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        // An `Err` cannot happen: the closure always returns `Some`.
        let _ = self
            .micros
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
                Some(m.saturating_add(by))
            });
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.micros.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system_micros() -> i64 {
        i64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_micros(),
        )
        .unwrap()
    }

    #[test]
    fn follows_the_system_clock() {
        let clock = SystemClock::new();
        for _ in 0..1_000 {
            let before = system_micros();
            let now = clock.now_micros();
            let after = system_micros();
            // Within a millisecond of the system clock (the counter's drift over the test is
            // far smaller; the margin absorbs scheduling).
            assert!(
                now >= before - 1_000 && now <= after + 1_000,
                "{before} {now} {after}"
            );
        }
    }

    #[test]
    fn advances_with_the_counter_and_takes_the_offset_again() {
        let (counter, mock) = quanta::Clock::mock();
        mock.increment(5_000_000_000u64);
        let clock = SystemClock::with_counter(counter);
        let first = clock.now_micros();
        let anchored = clock.reanchor_at.load(Ordering::Relaxed);

        // Within the second the time moves with the counter alone.
        mock.increment(Duration::from_millis(400));
        assert_eq!(clock.now_micros() - first, 400_000);
        assert_eq!(clock.reanchor_at.load(Ordering::Relaxed), anchored);

        // Past it, the offset is taken again from the system clock, which has hardly moved
        // while the counter ran 1.1 s ahead: the time comes back to the system clock's.
        mock.increment(Duration::from_millis(700));
        let before = system_micros();
        let later = clock.now_micros();
        let after = system_micros();
        assert!(clock.reanchor_at.load(Ordering::Relaxed) > anchored);
        assert!(
            later >= before - 1_000 && later <= after + 1_000,
            "{before} {later} {after}"
        );
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(10);
        assert_eq!(clock.now_micros(), 10);
        clock.advance(Duration::from_millis(2));
        assert_eq!(clock.now_micros(), 2_010);
        clock.set_micros(5);
        assert_eq!(clock.now_micros(), 5);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now_micros(), i64::MAX);
        assert_eq!(
            ManualClock::at(UNIX_EPOCH - Duration::from_secs(1)).now_micros(),
            0
        );
        let shared = Arc::new(ManualClock::new(1));
        let by_ref: &dyn Clock = &shared;
        assert_eq!(by_ref.now_micros(), 1);
        let boxed: Box<dyn Clock> = Box::new(ManualClock::new(3));
        assert_eq!(boxed.now_micros(), 3);
    }
}
