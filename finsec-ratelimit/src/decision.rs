//! What a check answers: allowed or not, and for each quota how much is left and when.

use std::time::Duration;

use smallvec::SmallVec;

use crate::algorithm::Evaluation;
use crate::quota::Quota;

/// The answer for one quota of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDecision {
    quota: Quota,
    allowed: bool,
    remaining: u64,
    // Microseconds (kept as integers so a decision stays small to move).
    retry_after_us: u64,
    reset_after_us: u64,
}

impl QuotaDecision {
    /// Builds the answer for one quota from raw figures (microseconds), as a store reports
    /// them. `remaining` and `reset_after_us` are taken after this request if the whole check
    /// allowed it, otherwise without it.
    pub(crate) fn from_parts(
        quota: Quota,
        allowed: bool,
        remaining: u64,
        retry_after_us: u64,
        reset_after_us: u64,
    ) -> Self {
        Self {
            quota,
            allowed,
            remaining,
            retry_after_us,
            reset_after_us,
        }
    }

    /// The quota this answer is for.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Whether this quota alone would allow the request.
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// Requests of cost 1 this quota still allows.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// When this quota denies, how long until it would allow the request; zero otherwise.
    pub fn retry_after(&self) -> Duration {
        Duration::from_micros(self.retry_after_us)
    }

    /// How long until the quota is fully available again (GCRA) or its window ends; like
    /// [`remaining`](Self::remaining), counting this request only if the whole check allowed it.
    pub fn reset_after(&self) -> Duration {
        Duration::from_micros(self.reset_after_us)
    }
}

/// Per-quota answers: held inline for the usual one or two quotas, so a decision of that
/// size does not allocate.
type QuotaDecisions = SmallVec<[QuotaDecision; 2]>;

/// The answer of a rate-limit check over one or more quotas.
///
/// The request is allowed only if every quota allows it; a denied request consumed nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    allowed: bool,
    quotas: QuotaDecisions,
}

impl Decision {
    /// Builds a decision from per-quota answers: allowed if all are.
    pub(crate) fn from_quotas(quotas: Vec<QuotaDecision>) -> Self {
        let quotas: QuotaDecisions = quotas.into_iter().collect();
        let allowed = quotas.iter().all(QuotaDecision::allowed);
        Self { allowed, quotas }
    }

    /// Builds a decision from the evaluations of each quota (same order as `quotas`).
    ///
    /// Every figure is taken on the same footing: if the whole check is allowed, as after this
    /// request was consumed; otherwise (nothing was consumed), as before it, even for a quota
    /// that alone would have allowed it.
    pub(crate) fn from_evaluations(quotas: &[Quota], evaluations: &[Evaluation]) -> Self {
        let allowed = evaluations.iter().all(|e| e.allowed);
        let quotas = quotas
            .iter()
            .zip(evaluations)
            .map(|(q, e)| {
                let (remaining, reset_after_us) = if allowed {
                    (e.remaining_after, e.reset_after_us)
                } else {
                    (e.remaining_before, e.reset_before_us)
                };
                QuotaDecision::from_parts(
                    q.clone(),
                    e.allowed,
                    remaining,
                    e.retry_after_us,
                    reset_after_us,
                )
            })
            .collect();
        Self { allowed, quotas }
    }

    /// Whether the request is allowed (and was counted).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The answer for each quota, in the order the quotas were given.
    pub fn quotas(&self) -> &[QuotaDecision] {
        &self.quotas
    }

    /// When denied, how long until every quota would allow the request (the longest wait);
    /// `None` when allowed. Round it up to whole seconds for `Retry-After`.
    pub fn retry_after(&self) -> Option<Duration> {
        if self.allowed {
            return None;
        }
        self.quotas.iter().map(QuotaDecision::retry_after).max()
    }

    /// The quota with the fewest remaining requests (the one a client should watch): its
    /// figures go into the `RateLimit` header.
    pub fn tightest(&self) -> Option<&QuotaDecision> {
        self.quotas.iter().min_by(|a, b| {
            a.allowed
                .cmp(&b.allowed)
                .then(a.remaining.cmp(&b.remaining))
                .then(b.retry_after_us.cmp(&a.retry_after_us))
        })
    }

    /// The fewest requests any quota still allows.
    pub fn remaining(&self) -> u64 {
        self.quotas
            .iter()
            .map(QuotaDecision::remaining)
            .min()
            .unwrap_or(0)
    }
}
