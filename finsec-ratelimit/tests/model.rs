//! Every algorithm, through the in-memory store, against a reference model written from the
//! definitions: GCRA as a token bucket holding a fractional number of tokens, the fixed window
//! as a counter per window, and the sliding window from the exact count of each window.
//!
//! Random quotas (one or two per check), request times (monotone, with gaps from nothing to
//! several periods, across window boundaries), costs (0 up to the capacity) and sweeps. The
//! store and the model must agree on every decision, every quota's `remaining` and
//! `reset_after` (both counting the request only when the whole check was allowed), and `retry_after`, which the model finds by searching for the earliest
//! instant at which it would allow the request.

#![cfg(test)]

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use finsec_ratelimit::memory::MemoryStore;
use finsec_ratelimit::{Algorithm, Check, Quota};
use proptest::prelude::*;

/// One quota's reference model. All arithmetic is exact (integers, u128 where products
/// could grow).
#[derive(Debug, Clone)]
enum Model {
    /// A bucket of `burst` tokens refilled at one token per `interval` µs. `credit` is the
    /// number of tokens times `interval` (so fractional tokens are exact); a fresh bucket is
    /// full.
    Bucket {
        interval: u128,
        burst: u128,
        credit: u128,
        at: Option<i64>,
    },
    /// A count per window index (`floor(t / period)`).
    Fixed {
        limit: u64,
        period: i64,
        counts: HashMap<i64, u64>,
    },
    /// A count per window index; the load at `t` is the previous window's count weighted by
    /// the part of it the sliding window `(t - period, t]` still covers, rounded up, plus
    /// the current window's count.
    Sliding {
        limit: u64,
        period: i64,
        counts: HashMap<i64, u64>,
    },
}

/// What the model answers for one quota at one instant.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    allowed: bool,
    remaining_before: u64,
    remaining_after: u64,
    /// µs until the bucket is full again (GCRA) or the window ends, without this request.
    reset_before: u64,
    /// The same if the request is consumed when allowed.
    reset_after: u64,
}

impl Model {
    fn new(q: &Quota) -> Self {
        let period = i64::try_from(q.period_micros()).unwrap();
        let limit = u64::from(q.limit());
        match q.algorithm() {
            Algorithm::Gcra => {
                // The rate is `limit / period`; the interval is rounded up to whole µs so the
                // rate enforced never exceeds it.
                let interval = u128::from(q.period_micros().div_ceil(limit));
                let burst = u128::from(q.burst());
                Self::Bucket {
                    interval,
                    burst,
                    credit: interval * burst,
                    at: None,
                }
            }
            Algorithm::FixedWindow => Self::Fixed {
                limit,
                period,
                counts: HashMap::new(),
            },
            Algorithm::SlidingWindow => Self::Sliding {
                limit,
                period,
                counts: HashMap::new(),
            },
            other => panic!("no model for {other}"),
        }
    }

    fn credit_at(interval: u128, burst: u128, credit: u128, at: Option<i64>, t: i64) -> u128 {
        let full = interval * burst;
        match at {
            None => full,
            Some(at) => {
                let elapsed = u128::try_from((t - at).max(0)).unwrap();
                (credit + elapsed).min(full)
            }
        }
    }

    fn sliding_load(period: i64, counts: &HashMap<i64, u64>, t: i64) -> u64 {
        let w = t.div_euclid(period);
        let previous = u128::from(counts.get(&(w - 1)).copied().unwrap_or(0));
        let current = counts.get(&w).copied().unwrap_or(0);
        let covered = u128::try_from((w + 1) * period - t).unwrap();
        let period = u128::try_from(period).unwrap();
        let weighted = (previous * covered).div_ceil(period);
        u64::try_from(weighted).unwrap() + current
    }

    /// The answer at `t` for `cost`, without changing the model.
    fn ask(&self, t: i64, cost: u32) -> Answer {
        let cost64 = u64::from(cost);
        match self {
            Self::Bucket {
                interval,
                burst,
                credit,
                at,
            } => {
                let c = Self::credit_at(*interval, *burst, *credit, *at, t);
                let need = u128::from(cost) * interval;
                let full = interval * burst;
                let allowed = c >= need;
                let after = if allowed { c - need } else { c };
                Answer {
                    allowed,
                    remaining_before: u64::try_from(c / interval).unwrap(),
                    remaining_after: u64::try_from(after / interval).unwrap(),
                    reset_before: u64::try_from(full - c).unwrap(),
                    reset_after: u64::try_from(full - after).unwrap(),
                }
            }
            Self::Fixed {
                limit,
                period,
                counts,
            } => {
                let w = t.div_euclid(*period);
                let count = counts.get(&w).copied().unwrap_or(0);
                let allowed = count + cost64 <= *limit;
                let before = limit - count;
                Answer {
                    allowed,
                    remaining_before: before,
                    remaining_after: if allowed { before - cost64 } else { before },
                    reset_before: u64::try_from((w + 1) * period - t).unwrap(),
                    reset_after: u64::try_from((w + 1) * period - t).unwrap(),
                }
            }
            Self::Sliding {
                limit,
                period,
                counts,
            } => {
                let load = Self::sliding_load(*period, counts, t);
                let allowed = load + cost64 <= *limit;
                let before = limit.saturating_sub(load);
                let w = t.div_euclid(*period);
                Answer {
                    allowed,
                    remaining_before: before,
                    remaining_after: if allowed { before - cost64 } else { before },
                    reset_before: u64::try_from((w + 1) * period - t).unwrap(),
                    reset_after: u64::try_from((w + 1) * period - t).unwrap(),
                }
            }
        }
    }

    /// Consumes `cost` at `t` (the caller has established that every quota allows it).
    fn consume(&mut self, t: i64, cost: u32) {
        match self {
            Self::Bucket {
                interval,
                burst,
                credit,
                at,
            } => {
                let c = Self::credit_at(*interval, *burst, *credit, *at, t);
                *credit = c - u128::from(cost) * *interval;
                *at = Some(t);
            }
            Self::Fixed { period, counts, .. } | Self::Sliding { period, counts, .. } => {
                *counts.entry(t.div_euclid(*period)).or_insert(0) += u64::from(cost);
            }
        }
    }

    /// The earliest `d >= 1` such that the model, left alone, allows `cost` at `t + d`: the
    /// answers only get better as time passes, so a binary search finds it.
    fn retry_after(&self, t: i64, cost: u32) -> u64 {
        let mut low = 1_i64; // not known to allow
        let mut high = 1_i64;
        while !self.ask(t + high, cost).allowed {
            low = high + 1;
            high *= 2;
        }
        while low < high {
            let mid = low + (high - low) / 2;
            if self.ask(t + mid, cost).allowed {
                high = mid;
            } else {
                low = mid + 1;
            }
        }
        u64::try_from(high).unwrap()
    }
}

#[derive(Debug, Clone)]
struct QuotaSpec {
    algorithm: Algorithm,
    limit: u32,
    period_us: u64,
    burst: u32,
}

impl QuotaSpec {
    fn build(&self, name: &str) -> Quota {
        Quota::new(
            NonZeroU32::new(self.limit).unwrap(),
            Duration::from_micros(self.period_us),
        )
        .unwrap()
        .with_burst(NonZeroU32::new(self.burst).unwrap())
        .unwrap()
        .with_algorithm(self.algorithm)
        .unwrap()
        .named(name)
        .unwrap()
    }
}

fn quota_spec() -> impl Strategy<Value = QuotaSpec> {
    (
        prop_oneof![
            Just(Algorithm::Gcra),
            Just(Algorithm::FixedWindow),
            Just(Algorithm::SlidingWindow)
        ],
        1_u32..=12,
        prop_oneof![
            Just(1_000_u64),
            Just(7_000),
            Just(1_000_000),
            Just(1_234_567),
            Just(60_000_000),
        ],
        1_u32..=15,
    )
        .prop_map(|(algorithm, limit, period_us, burst)| QuotaSpec {
            algorithm,
            limit,
            period_us,
            burst,
        })
}

/// One step: how far to move the clock (a kind and a raw number scaled to the quota), the
/// cost, and whether to sweep the store first.
#[derive(Debug, Clone)]
struct Step {
    gap_kind: u8,
    gap_raw: u64,
    cost_raw: u32,
    sweep: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0_u8..6,
        any::<u64>(),
        any::<u32>(),
        proptest::bool::weighted(0.1),
    )
        .prop_map(|(gap_kind, gap_raw, cost_raw, sweep)| Step {
            gap_kind,
            gap_raw,
            cost_raw,
            sweep,
        })
}

fn gap(step: &Step, quotas: &[Quota], now: i64) -> i64 {
    let q = &quotas[usize::from(step.gap_kind) % quotas.len()];
    let period = q.period_micros();
    let raw = step.gap_raw;
    let g = match step.gap_kind {
        0 => 0,
        1 => raw % 1_000,
        2 => raw % q.emission_interval_micros().max(1) * 2,
        3 => raw % period,
        4 => raw % (3 * period),
        // Just before or after the next window boundary.
        _ => {
            let p = i64::try_from(period).unwrap();
            let to_boundary = u64::try_from(p - now.rem_euclid(p)).unwrap();
            (to_boundary + raw % 5).saturating_sub(2)
        }
    };
    i64::try_from(g).unwrap()
}

fn run(specs: &[QuotaSpec], start_offset: u64, steps: &[Step]) -> Result<(), TestCaseError> {
    let names = ["a", "b"];
    let quotas: Vec<Quota> = specs.iter().zip(names).map(|(s, n)| s.build(n)).collect();
    let mut models: Vec<Model> = quotas.iter().map(Model::new).collect();
    let capacity = quotas.iter().map(Quota::capacity).min().unwrap();
    let store = MemoryStore::with_shards(2);
    let mut now = 1_700_000_000_000_000_i64 + i64::try_from(start_offset).unwrap();
    for (i, s) in steps.iter().enumerate() {
        now += gap(s, &quotas, now);
        let cost = if s.cost_raw % 4 == 0 {
            u32::try_from(u64::from(s.cost_raw / 4) % (capacity + 1)).unwrap()
        } else {
            1
        };
        if s.sweep {
            store.sweep_at_micros(now);
        }
        let decision = store
            .check_at_micros(Check::new("model", &quotas).with_cost(cost), now)
            .unwrap();
        let answers: Vec<Answer> = models.iter().map(|m| m.ask(now, cost)).collect();
        let allowed = answers.iter().all(|a| a.allowed);
        prop_assert_eq!(
            decision.allowed(),
            allowed,
            "step {} at {} cost {}",
            i,
            now,
            cost
        );
        let mut longest_retry = Duration::ZERO;
        for ((qd, a), m) in decision.quotas().iter().zip(&answers).zip(&models) {
            let name = qd.quota().name();
            prop_assert_eq!(qd.allowed(), a.allowed, "step {} quota {}", i, name);
            let remaining = if allowed {
                a.remaining_after
            } else {
                a.remaining_before
            };
            prop_assert_eq!(qd.remaining(), remaining, "step {} quota {}", i, name);
            if a.allowed {
                prop_assert_eq!(qd.retry_after(), Duration::ZERO, "step {} {}", i, name);
            } else {
                let retry = Duration::from_micros(m.retry_after(now, cost));
                prop_assert_eq!(qd.retry_after(), retry, "step {} quota {}", i, name);
                longest_retry = longest_retry.max(retry);
            }
            // On the same footing as `remaining`: after this request if the whole check was
            // allowed, without it otherwise (even when this quota alone would allow it).
            let reset = if allowed {
                a.reset_after
            } else {
                a.reset_before
            };
            prop_assert_eq!(
                qd.reset_after(),
                Duration::from_micros(reset),
                "step {} quota {}",
                i,
                name
            );
        }
        if allowed {
            prop_assert_eq!(decision.retry_after(), None);
            for m in &mut models {
                m.consume(now, cost);
            }
        } else {
            prop_assert_eq!(decision.retry_after(), Some(longest_retry));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_quota_matches_the_model(
        spec in quota_spec(),
        start in 0_u64..120_000_000,
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        run(&[spec], start, &steps)?;
    }

    #[test]
    fn two_quotas_match_the_models(
        a in quota_spec(),
        b in quota_spec(),
        start in 0_u64..120_000_000,
        steps in proptest::collection::vec(step(), 1..80),
    ) {
        run(&[a, b], start, &steps)?;
    }
}

/// The generators reach denials, window boundaries and every algorithm often enough for the
/// properties to mean something: a fixed, deterministic run through the same code.
#[test]
fn the_model_run_sees_denials_for_every_algorithm() {
    for algorithm in Algorithm::ALL {
        let spec = QuotaSpec {
            algorithm,
            limit: 3,
            period_us: 1_000_000,
            burst: 2,
        };
        let q = spec.build("a");
        let mut model = Model::new(&q);
        let store = MemoryStore::with_shards(1);
        let mut now = 1_700_000_000_000_000_i64;
        let (mut allowed, mut denied) = (0, 0);
        for i in 0..300_i64 {
            now += (i * 104_729) % 700_001;
            let d = store
                .check_at_micros(Check::new("k", std::slice::from_ref(&q)), now)
                .unwrap();
            let a = model.ask(now, 1);
            assert_eq!(d.allowed(), a.allowed, "{algorithm} step {i}");
            if a.allowed {
                model.consume(now, 1);
                allowed += 1;
            } else {
                assert_eq!(
                    d.retry_after(),
                    Some(Duration::from_micros(model.retry_after(now, 1)))
                );
                denied += 1;
            }
        }
        assert!(
            allowed > 30 && denied > 30,
            "{algorithm}: {allowed} allowed, {denied} denied"
        );
    }
}
