//! What a check answers: allowed or not, and for each quota how much is left and when.
//!
//! A [`Decision`] borrows the quotas it reports on from the [`Check`](crate::Check) it answers
//! (hence its lifetime), so making one copies no quota: a decision over one or two quotas is
//! 96 bytes on the stack, and building it allocates nothing.

use std::time::Duration;

use smallvec::SmallVec;

use crate::algorithm::Evaluation;
use crate::quota::Quota;

/// The answer for one quota of a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDecision<'q> {
    quota: &'q Quota,
    allowed: bool,
    remaining: u64,
    // Microseconds (kept as integers so a decision stays small to move).
    retry_after_us: u64,
    reset_after_us: u64,
}

impl<'q> QuotaDecision<'q> {
    /// Builds the answer for one quota from raw figures (microseconds), as a store reports
    /// them. `remaining` and `reset_after_us` are taken after this request if the whole check
    /// allowed it, otherwise without it.
    pub(crate) fn from_parts(
        quota: &'q Quota,
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

    /// The answer for `quota` from its evaluation, `check_allowed` saying whether the whole
    /// check was allowed: if so the figures are taken after this request, otherwise before it.
    fn from_evaluation(quota: &'q Quota, e: &Evaluation, check_allowed: bool) -> Self {
        let (remaining, reset_after_us) = if check_allowed {
            (e.remaining_after, e.reset_after_us)
        } else {
            (e.remaining_before, e.reset_before_us)
        };
        Self::from_parts(
            quota,
            e.allowed,
            remaining,
            e.retry_after_us,
            reset_after_us,
        )
    }

    /// The quota this answer is for (the one the check was given).
    pub fn quota(&self) -> &'q Quota {
        self.quota
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
type QuotaDecisions<'q> = SmallVec<[QuotaDecision<'q>; 2]>;

/// The answer of a rate-limit check over one or more quotas.
///
/// The request is allowed only if every quota allows it; a denied request consumed nothing.
///
/// It borrows its quotas from the check (`'q`), so it lives as long as they do: usually they
/// belong to a long-lived [`RateLimitPolicy`](crate::RateLimitPolicy), and a decision is read while answering the
/// request it was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'q> {
    allowed: bool,
    quotas: QuotaDecisions<'q>,
}

impl<'q> Decision<'q> {
    /// Builds a decision from per-quota answers: allowed if all are.
    pub(crate) fn from_quotas(quotas: Vec<QuotaDecision<'q>>) -> Self {
        let quotas: QuotaDecisions<'q> = quotas.into_iter().collect();
        let allowed = quotas.iter().all(QuotaDecision::allowed);
        Self { allowed, quotas }
    }

    /// Builds a decision from the evaluations of each quota (same order as `quotas`).
    ///
    /// Every figure is taken on the same footing: if the whole check is allowed, as after this
    /// request was consumed; otherwise (nothing was consumed), as before it, even for a quota
    /// that alone would have allowed it.
    pub(crate) fn from_evaluations(quotas: &'q [Quota], evaluations: &[Evaluation]) -> Self {
        let allowed = evaluations.iter().all(|e| e.allowed);
        let quotas = quotas
            .iter()
            .zip(evaluations)
            .map(|(q, e)| QuotaDecision::from_evaluation(q, e, allowed))
            .collect();
        Self { allowed, quotas }
    }

    /// [`from_evaluations`](Self::from_evaluations) for a check of one quota.
    pub(crate) fn from_evaluation(quota: &'q Quota, evaluation: &Evaluation) -> Self {
        let mut quotas = QuotaDecisions::new();
        quotas.push(QuotaDecision::from_evaluation(
            quota,
            evaluation,
            evaluation.allowed,
        ));
        Self {
            allowed: evaluation.allowed,
            quotas,
        }
    }

    /// Whether the request is allowed (and was counted).
    pub fn allowed(&self) -> bool {
        self.allowed
    }

    /// The answer for each quota, in the order the quotas were given.
    pub fn quotas(&self) -> &[QuotaDecision<'q>] {
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
    pub fn tightest(&self) -> Option<&QuotaDecision<'q>> {
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
