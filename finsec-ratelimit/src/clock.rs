//! The in-memory store's clock: the system clock's time, read at the cost of a cycle counter.
//!
//! Reading the system clock costs a call into the kernel's vDSO on every check, a sizeable
//! share of an in-memory decision. This clock reads the CPU's cycle counter instead (through
//! `quanta`, which falls back to the OS monotonic clock where no invariant counter exists) and
//! adds an offset taken from the system clock. The offset is taken again once a second, so
//! the time never strays from the system clock by more than the counter drifts in a second
//! (parts per million), and a step of the system clock is followed within a second. Between
//! two readings of the offset the time moves with the counter alone, so it does not step;
//! when the offset is taken again it may step back by that drift, which every algorithm
//! tolerates (it decides as if no time had passed).

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How often, in counter microseconds, the offset is taken again from the system clock.
const REANCHOR_MICROS: i64 = 1_000_000;

/// Microseconds since the Unix epoch, from a cycle counter kept in step with the system clock.
pub(crate) struct Clock {
    counter: quanta::Clock,
    /// The counter's raw reading when the clock was made; the counter's time is counted from it.
    base: u64,
    /// The system clock's time minus the counter's, in microseconds.
    offset: AtomicI64,
    /// The counter's time (µs) from which the offset is due to be taken again.
    reanchor_at: AtomicI64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let counter = quanta::Clock::new();
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
    pub(crate) fn now_micros(&self) -> i64 {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        let clock = Clock::new();
        for _ in 0..5 {
            let before = system_micros();
            let now = clock.now_micros();
            let after = system_micros();
            // Within a millisecond of the system clock (the counter's drift over the test is
            // far smaller; the margin absorbs scheduling).
            assert!(
                now >= before - 1_000 && now <= after + 1_000,
                "{before} {now} {after}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn advances_with_time_and_takes_the_offset_again() {
        let clock = Clock::new();
        let first = clock.now_micros();
        let anchored = clock.reanchor_at.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(1_100));
        let later = clock.now_micros();
        assert!(later - first >= 1_000_000, "{first} {later}");
        assert!(later - first < 3_000_000, "{first} {later}");
        assert!(clock.reanchor_at.load(Ordering::Relaxed) > anchored);
    }
}
