//! The three algorithms as pure functions of (quota, stored state, now, cost).
//!
//! Every store applies exactly these rules: the in-memory store calls [`evaluate`] directly,
//! and the Redis script is a line-by-line transcription of it (all integers, every value below
//! [`MAX_SPAN_MICROS`](crate::quota::MAX_SPAN_MICROS) so Lua's doubles are exact). Times are
//! microseconds since the Unix epoch; windows are aligned to the epoch.
//!
//! A check of several quotas evaluates each, and writes the new states only if every quota
//! allowed the request: a denied request consumes nothing.

use crate::quota::{Algorithm, Quota};

/// What a store keeps for one quota of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaState {
    /// GCRA: the theoretical arrival time of the next request.
    Gcra {
        /// Microseconds since the Unix epoch.
        tat: i64,
    },
    /// A fixed window and its count.
    FixedWindow {
        /// Start of the window, microseconds since the Unix epoch (a multiple of the period).
        start: i64,
        /// Cost consumed in that window.
        count: u64,
    },
    /// The current window's count and the previous window's count.
    SlidingWindow {
        /// Start of the current window, microseconds since the Unix epoch.
        start: i64,
        /// Cost consumed in the window before `start`.
        previous: u64,
        /// Cost consumed since `start`.
        current: u64,
    },
}

/// The result of evaluating one quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluation {
    /// Whether this quota allows the request.
    pub allowed: bool,
    /// The state to store if every quota of the check allows the request.
    pub next: QuotaState,
    /// Requests of cost 1 still allowed right now without consuming this request.
    pub remaining_before: u64,
    /// Requests of cost 1 still allowed after this request is consumed (equal to
    /// `remaining_before` when this quota denies).
    pub remaining_after: u64,
    /// When denied, how long until this request would be allowed; 0 when allowed.
    pub retry_after_us: u64,
    /// How long until the quota is fully available again (GCRA) or the current window ends
    /// (windows), without consuming this request (the figure to report when the check is
    /// denied, by this quota or another).
    pub reset_before_us: u64,
    /// The same after this request is consumed (equal to `reset_before_us` when this quota
    /// denies, and for the window algorithms, whose windows end when they end).
    pub reset_after_us: u64,
    /// How long the stored state stays meaningful; after that it equals no state at all and
    /// can be dropped (the memory sweep and Redis `PEXPIRE` use it).
    pub ttl_us: u64,
}

/// Evaluates `quota` for a request of `cost` at `now` (µs since the epoch), given the stored
/// `state` (`None`, or a state of another algorithm, counts as a fresh key).
///
/// The caller has checked `0 < cost <= quota.capacity()`; a cost of 0 is allowed and changes
/// nothing.
#[inline]
pub fn evaluate(quota: &Quota, state: Option<QuotaState>, now: i64, cost: u32) -> Evaluation {
    match quota.algorithm() {
        Algorithm::Gcra => gcra(quota, state, now, cost),
        Algorithm::FixedWindow => fixed(quota, state, now, cost),
        Algorithm::SlidingWindow => sliding(quota, state, now, cost),
    }
}

/// The instant (µs since the Unix epoch) from which `state`, stored for `quota`, equals no state
/// at all, so a store may drop it without changing any decision: GCRA's theoretical arrival
/// time, the end of the fixed window, or the end of the window after the sliding window's
/// current one. It is what an allowed evaluation's `ttl_us` adds to the time it was made at.
pub(crate) fn expires_at(quota: &Quota, state: QuotaState) -> i64 {
    let period = span(quota.period_micros());
    match state {
        QuotaState::Gcra { tat } => tat,
        QuotaState::FixedWindow { start, .. } => start.saturating_add(period),
        QuotaState::SlidingWindow { start, .. } => start.saturating_add(period.saturating_mul(2)),
    }
}

fn span(us: u64) -> i64 {
    // Spans are bounded by MAX_SPAN_MICROS (2^53) at quota construction.
    i64::try_from(us).unwrap_or(i64::MAX)
}

fn nonneg(us: i64) -> u64 {
    u64::try_from(us).unwrap_or(0)
}

#[inline]
fn gcra(quota: &Quota, state: Option<QuotaState>, now: i64, cost: u32) -> Evaluation {
    let t = span(quota.emission_interval_micros());
    let tau = span(quota.tolerance_micros());
    let stored = match state {
        Some(QuotaState::Gcra { tat }) => tat,
        _ => now,
    };
    let tat = stored.max(now);
    let new_tat = tat + t * i64::from(cost);
    let allow_at = new_tat - tau;
    let remaining = |from: i64| nonneg(tau - (from - now)) / nonneg(t);
    if allow_at > now {
        Evaluation {
            allowed: false,
            next: QuotaState::Gcra { tat },
            remaining_before: remaining(tat),
            remaining_after: remaining(tat),
            retry_after_us: nonneg(allow_at - now),
            reset_before_us: nonneg(tat - now),
            reset_after_us: nonneg(tat - now),
            ttl_us: nonneg(tat - now),
        }
    } else {
        Evaluation {
            allowed: true,
            next: QuotaState::Gcra { tat: new_tat },
            remaining_before: remaining(tat),
            remaining_after: remaining(new_tat),
            retry_after_us: 0,
            reset_before_us: nonneg(tat - now),
            reset_after_us: nonneg(new_tat - now),
            ttl_us: nonneg(new_tat - now),
        }
    }
}

fn window_start(now: i64, period: i64) -> i64 {
    now - now.rem_euclid(period)
}

fn fixed(quota: &Quota, state: Option<QuotaState>, now: i64, cost: u32) -> Evaluation {
    let period = span(quota.period_micros());
    let limit = u64::from(quota.limit());
    // A state of a window later than `now`'s (the clock stepped back, or a concurrent check
    // read it later) is still the current window: counts are never forgotten by going back.
    let (start, count) = match state {
        Some(QuotaState::FixedWindow { start: s, count }) if s >= window_start(now, period) => {
            (s, count)
        }
        _ => (window_start(now, period), 0),
    };
    let reset = nonneg(start + period - now);
    let before = limit.saturating_sub(count);
    if count + u64::from(cost) > limit {
        Evaluation {
            allowed: false,
            next: QuotaState::FixedWindow { start, count },
            remaining_before: before,
            remaining_after: before,
            retry_after_us: reset,
            reset_before_us: reset,
            reset_after_us: reset,
            ttl_us: reset,
        }
    } else {
        let count = count + u64::from(cost);
        Evaluation {
            allowed: true,
            next: QuotaState::FixedWindow { start, count },
            remaining_before: before,
            remaining_after: limit - count,
            retry_after_us: 0,
            reset_before_us: reset,
            reset_after_us: reset,
            ttl_us: reset,
        }
    }
}

/// `ceil(a * b / c)` for the sliding window's weight, exact (all operands below 2^53 and
/// `a * b <= limit * period <= 2^53`).
fn mul_div_ceil(a: u64, b: u64, c: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    let c = u128::from(c.max(1));
    u64::try_from(product.div_ceil(c)).unwrap_or(u64::MAX)
}

/// The smallest elapsed time `e` in `0..=period` at which `ceil(count * (period - e) / period)
/// <= room`, that is `e >= period - floor(room * period / count)`.
fn elapsed_needed(count: u64, room: u64, period: u64) -> u64 {
    if count <= room {
        return 0;
    }
    let fits = u128::from(room) * u128::from(period) / u128::from(count);
    period - u64::try_from(fits).unwrap_or(period).min(period)
}

fn sliding(quota: &Quota, state: Option<QuotaState>, now: i64, cost: u32) -> Evaluation {
    let period_us = quota.period_micros();
    let period = span(period_us);
    let limit = u64::from(quota.limit());
    let cost = u64::from(cost);
    let now_start = window_start(now, period);
    // As for the fixed window, a state of a later window than `now`'s is the current one (and
    // `now` counts as its start: its previous window weighs in fully).
    let (start, previous, current) = match state {
        Some(QuotaState::SlidingWindow {
            start: s,
            previous,
            current,
        }) if s >= now_start => (s, previous, current),
        Some(QuotaState::SlidingWindow {
            start: s, current, ..
        }) if s == now_start - period => (now_start, current, 0),
        _ => (now_start, 0, 0),
    };
    let elapsed = nonneg(now - start);
    let weighted = mul_div_ceil(previous, period_us - elapsed, period_us);
    let used = weighted + current;
    let window_end = nonneg(start + period - now);
    let before = limit.saturating_sub(used);
    if used + cost > limit {
        // Either later in this window, once the previous window's weight has decayed enough…
        let retry = match limit.checked_sub(current + cost) {
            Some(room) => {
                let e = elapsed_needed(previous, room, period_us);
                if e < period_us {
                    e.saturating_sub(elapsed)
                } else {
                    window_end
                }
            }
            // …or in the next window, where this window's count becomes the previous one.
            None => window_end + elapsed_needed(current, limit - cost, period_us),
        };
        Evaluation {
            allowed: false,
            next: QuotaState::SlidingWindow {
                start,
                previous,
                current,
            },
            remaining_before: before,
            remaining_after: before,
            retry_after_us: retry.max(1),
            reset_before_us: window_end,
            reset_after_us: window_end,
            ttl_us: window_end + period_us,
        }
    } else {
        let current = current + cost;
        Evaluation {
            allowed: true,
            next: QuotaState::SlidingWindow {
                start,
                previous,
                current,
            },
            remaining_before: before,
            remaining_after: limit - (weighted + current),
            retry_after_us: 0,
            reset_before_us: window_end,
            reset_after_us: window_end,
            ttl_us: window_end + period_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn n(v: u32) -> NonZeroU32 {
        NonZeroU32::new(v).unwrap()
    }

    /// Drives one quota through `times` (µs), returning which requests were allowed.
    fn run(quota: &Quota, times: &[(i64, u32)]) -> Vec<bool> {
        let mut state = None;
        times
            .iter()
            .map(|&(t, cost)| {
                let e = evaluate(quota, state, t, cost);
                if e.allowed {
                    state = Some(e.next);
                }
                e.allowed
            })
            .collect()
    }

    const T0: i64 = 1_700_000_000_000_000;

    /// A check made with an earlier time than the stored state's (the clock stepped back, or
    /// a concurrent check read the clock later and wrote first) never forgets what was counted:
    /// for every algorithm it is decided as if no time had passed since the state, and the
    /// durations it reports are measured from its own time.
    #[test]
    fn an_earlier_time_than_the_state_forgets_nothing() {
        for alg in Algorithm::ALL {
            let q = Quota::per_second(n(2)).with_algorithm(alg).unwrap();
            // Fill the window that starts at T0 + 1 s, then check 100 ms before it, in the
            // window before.
            let later = T0 + 1_000_000;
            let first = evaluate(&q, None, later, 1);
            let second = evaluate(&q, Some(first.next), later, 1);
            assert!(first.allowed && second.allowed, "{alg}");
            let earlier = later - 100_000;
            let e = evaluate(&q, Some(second.next), earlier, 1);
            assert!(!e.allowed, "{alg}: allowed after stepping back");
            assert_eq!(e.remaining_before, 0, "{alg}");
            assert_eq!(e.next, second.next, "{alg}: a denial changes nothing");
            // Retrying when told, by the earlier clock, is allowed.
            let retry = i64::try_from(e.retry_after_us).unwrap();
            let d = evaluate(&q, Some(second.next), earlier + retry, 1);
            assert!(d.allowed, "{alg}: retry after {retry} µs still denied");
            assert_eq!(
                expires_at(&q, second.next),
                earlier + i64::try_from(e.ttl_us).unwrap(),
                "{alg}: ttl"
            );
        }
    }

    #[test]
    fn gcra_burst_then_rate() {
        let q = Quota::per_second(n(10)).with_burst(n(3)).unwrap();
        let at = |ms: i64| (T0 + ms * 1000, 1);
        let got = run(&q, &[at(0), at(0), at(0), at(0), at(100), at(150), at(200)]);
        assert_eq!(got, [true, true, true, false, true, false, true]);
    }

    #[test]
    fn gcra_retry_after_is_exact() {
        let q = Quota::per_second(n(10)).with_burst(n(1)).unwrap();
        let first = evaluate(&q, None, T0, 1);
        assert!(first.allowed);
        let denied = evaluate(&q, Some(first.next), T0 + 30_000, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.retry_after_us, 70_000);
        let retried = evaluate(&q, Some(first.next), T0 + 100_000, 1);
        assert!(retried.allowed);
        let early = evaluate(&q, Some(first.next), T0 + 99_999, 1);
        assert!(!early.allowed);
        assert_eq!(early.retry_after_us, 1);
    }

    #[test]
    fn gcra_remaining() {
        let q = Quota::per_minute(n(60));
        let e = evaluate(&q, None, T0, 1);
        assert_eq!((e.remaining_before, e.remaining_after), (60, 59));
        assert_eq!((e.reset_before_us, e.reset_after_us), (0, 1_000_000));
        let e = evaluate(&q, Some(e.next), T0, 59);
        assert!(e.allowed);
        assert_eq!(e.remaining_after, 0);
        assert_eq!(
            (e.reset_before_us, e.reset_after_us),
            (1_000_000, 60_000_000)
        );
        let denied = evaluate(&q, Some(e.next), T0, 1);
        assert!(!denied.allowed);
        assert_eq!(denied.reset_before_us, 60_000_000);
        assert_eq!(denied.reset_after_us, 60_000_000);
    }

    #[test]
    fn fixed_window_resets_on_boundary() {
        let q = Quota::per_minute(n(2))
            .with_algorithm(Algorithm::FixedWindow)
            .unwrap();
        let start = T0 - T0.rem_euclid(60_000_000);
        let got = run(
            &q,
            &[
                (start + 1, 1),
                (start + 2, 1),
                (start + 59_999_999, 1),
                (start + 60_000_000, 1),
            ],
        );
        assert_eq!(got, [true, true, false, true]);
        let e = evaluate(
            &q,
            Some(QuotaState::FixedWindow { start, count: 2 }),
            start + 10_000_000,
            1,
        );
        assert_eq!(e.retry_after_us, 50_000_000);
    }

    #[test]
    fn sliding_window_weights_previous() {
        let q = Quota::per_minute(n(10))
            .with_algorithm(Algorithm::SlidingWindow)
            .unwrap();
        let start = T0 - T0.rem_euclid(60_000_000);
        let prev = QuotaState::SlidingWindow {
            start: start - 60_000_000,
            previous: 0,
            current: 10,
        };
        // A quarter into the new window, 7.5 → 8 of the previous 10 still count.
        let e = evaluate(&q, Some(prev), start + 15_000_000, 1);
        assert!(e.allowed);
        assert_eq!(e.remaining_before, 2);
        assert_eq!(e.remaining_after, 1);
        let state = e.next;
        let e = evaluate(&q, Some(state), start + 15_000_000, 1);
        assert!(e.allowed);
        let state = e.next;
        let denied = evaluate(&q, Some(state), start + 15_000_000, 1);
        assert!(!denied.allowed);
        // Room for 1 more once ceil(10 × (60 − e) / 60) ≤ 7, i.e. e ≥ 18 s.
        assert_eq!(denied.retry_after_us, 3_000_000);
        assert!(evaluate(&q, Some(state), start + 18_000_000, 1).allowed);
        assert!(!evaluate(&q, Some(state), start + 17_999_999, 1).allowed);
    }

    #[test]
    fn sliding_window_retry_into_next_window() {
        let q = Quota::per_minute(n(4))
            .with_algorithm(Algorithm::SlidingWindow)
            .unwrap();
        let start = T0 - T0.rem_euclid(60_000_000);
        let full = QuotaState::SlidingWindow {
            start,
            previous: 0,
            current: 4,
        };
        let denied = evaluate(&q, Some(full), start + 30_000_000, 1);
        assert!(!denied.allowed);
        // Next window: need ceil(4 × (60 − e) / 60) ≤ 3 → e ≥ 15 s.
        assert_eq!(denied.retry_after_us, 30_000_000 + 15_000_000);
        let later = start + 75_000_000;
        assert!(evaluate(&q, Some(full), later, 1).allowed);
        assert!(!evaluate(&q, Some(full), later - 1, 1).allowed);
    }

    #[test]
    fn denied_changes_nothing() {
        for alg in Algorithm::ALL {
            let q = Quota::per_minute(n(1)).with_algorithm(alg).unwrap();
            let first = evaluate(&q, None, T0, 1);
            assert!(first.allowed, "{alg}");
            let second = evaluate(&q, Some(first.next), T0 + 1, 1);
            assert!(!second.allowed, "{alg}");
            let third = evaluate(&q, Some(second.next), T0 + 2, 1);
            assert_eq!(second.next, third.next, "{alg}");
        }
    }

    #[test]
    fn retry_after_is_when_it_becomes_allowed() {
        // For every algorithm, at now + retry_after the request is allowed and one µs earlier
        // it is not.
        for alg in Algorithm::ALL {
            let q = Quota::per_second(n(5)).with_algorithm(alg).unwrap();
            let mut state = None;
            let mut now = T0 + 123_457;
            for step in 0..200 {
                let e = evaluate(&q, state, now, 1 + (step % 3));
                if e.allowed {
                    state = Some(e.next);
                    now += 7_001;
                } else {
                    let r = i64::try_from(e.retry_after_us).unwrap();
                    assert!(r > 0, "{alg}");
                    assert!(
                        evaluate(&q, state, now + r, 1 + (step % 3)).allowed,
                        "{alg} step {step}"
                    );
                    assert!(
                        !evaluate(&q, state, now + r - 1, 1 + (step % 3)).allowed,
                        "{alg} step {step}"
                    );
                    now += r / 2 + 1;
                }
            }
        }
    }

    #[test]
    fn a_stored_state_expires_when_its_ttl_says() {
        let mut runs = 0;
        for alg in Algorithm::ALL {
            let quota = Quota::per_second(n(4))
                .with_burst(n(6))
                .unwrap()
                .with_algorithm(alg)
                .unwrap();
            let mut state = None;
            let mut now: i64 = 1_700_000_000_123_456;
            for step in 0..500_i64 {
                let e = evaluate(&quota, state, now, 1);
                if e.allowed {
                    let ttl = i64::try_from(e.ttl_us).unwrap();
                    assert_eq!(expires_at(&quota, e.next), now + ttl, "{alg} step {step}");
                    state = Some(e.next);
                    runs += 1;
                }
                now += (step * 7_919) % 400_000;
            }
        }
        assert!(runs > 300, "{runs}");
    }
}
