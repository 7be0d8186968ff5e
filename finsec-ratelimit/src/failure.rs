//! What to do when the backend cannot decide, and the [`RateLimiter`] front that does it.
//!
//! A shared backend (Redis) can be unreachable, slow or answer nonsense. The
//! [`FailurePolicy`] says what a check answers then:
//!
//! - [`FailOpen`](FailurePolicy::FailOpen): allow. Availability first; nothing is limited
//!   while the backend is down, which an attacker who can take the backend down will enjoy.
//! - [`FailClosed`](FailurePolicy::FailClosed): deny, with a configurable `retry_after`
//!   (1 s by default). Protection first; every request fails while the backend is down.
//! - [`FallbackLocal`](FailurePolicy::FallbackLocal) (the default): decide with a local
//!   in-memory store. Limits keep holding, per instance: with `n` instances a client may get
//!   up to `n` times its quota while the backend is down. If the local store fails too, the
//!   request is denied as under `FailClosed`.
//!
//! Whatever the policy, the failure is **reported, never swallowed**: the [`Outcome`] carries
//! the backend's error next to the decision, so the caller can log, audit and meter it. Only
//! backend errors ([`Error::is_backend`]) are subject to the policy; a configuration mistake or
//! a bad key is returned as `Err`, since no backend could answer it differently.
//!
//! # Policies of several keys
//!
//! [`RateLimiter::check_policy`] checks a named [`RateLimitPolicy`]: the rules sharing a key kind are one
//! key, decided atomically by the store (all of its quotas or none). Different kinds are
//! different keys, and no store decides several keys atomically, so the keys are checked **one
//! at a time, in the policy's order, stopping at the first denial**. A request denied by a
//! later key has therefore consumed from the earlier keys (their consumption stands; the stores
//! have no refund). This is the simplest rule that never lets a request through that some key
//! denies, and the order puts the choice in the policy's hands: list first the key an attacker
//! exhausts cheaply (per IP) and last the one that protects a victim (per account), so a client
//! over its own limit is stopped before it spends anyone else's budget. `check_batch` would save
//! round trips but consume every key even after a denial. Every check is validated before
//! anything is consumed, so a configuration mistake consumes nothing.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::decision::{Decision, QuotaDecision};
use crate::error::{Error, Result};
use crate::memory::MemoryStore;
use crate::policy::{Identity, KeyKind, RateLimitPolicy};
use crate::quota::Quota;
use crate::store::{Check, RateLimitStore};

/// The `retry_after` of a fail-closed denial unless configured otherwise.
pub const DEFAULT_FAIL_CLOSED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a check answers when the backend fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FailurePolicy {
    /// Allow the request.
    FailOpen,
    /// Deny the request, with the limiter's fail-closed `retry_after`.
    FailClosed,
    /// Decide with a local in-memory store (per instance).
    #[default]
    FallbackLocal,
}

/// Who decided a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// The primary store.
    Primary,
    /// Nobody: the primary failed and the request was allowed unchecked.
    FailOpen,
    /// Nobody: the primary (and the fallback, if any) failed and the request was denied.
    FailClosed,
    /// The local fallback store, after the primary failed.
    Fallback,
}

/// The answer of a [`RateLimiter`] check: the decision, who made it, and any backend failure.
///
/// A fail-open decision allows and names no quota (nothing is known about the remaining
/// quota, so the `RateLimit` header is left out); a fail-closed decision denies every quota
/// with the configured `retry_after`.
///
/// Like its [`Decision`], it borrows the check's quotas (`'q`).
#[derive(Debug)]
pub struct Outcome<'q> {
    decision: Decision<'q>,
    source: Source,
    backend_error: Option<Error>,
    fallback_error: Option<Error>,
}

impl<'q> Outcome<'q> {
    /// The decision to act on.
    pub fn decision(&self) -> &Decision<'q> {
        &self.decision
    }

    /// The decision, consuming the outcome.
    pub fn into_decision(self) -> Decision<'q> {
        self.decision
    }

    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        self.decision.allowed()
    }

    /// Who decided.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The primary store's failure, if it failed.
    pub fn backend_error(&self) -> Option<&Error> {
        self.backend_error.as_ref()
    }

    /// The fallback store's failure, if it was asked and failed too.
    pub fn fallback_error(&self) -> Option<&Error> {
        self.fallback_error.as_ref()
    }

    /// Whether a backend failed, so the decision was not made by the primary store.
    pub fn is_degraded(&self) -> bool {
        self.source != Source::Primary
    }
}

/// The outcome of one key of a policy.
#[derive(Debug)]
pub struct KeyOutcome<'q> {
    kind: KeyKind,
    key: String,
    outcome: Outcome<'q>,
}

impl<'q> KeyOutcome<'q> {
    /// What the key counts per.
    pub fn kind(&self) -> &KeyKind {
        &self.kind
    }

    /// The storage key (`<policy>:<kind>:<identity>`).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The outcome for this key.
    pub fn outcome(&self) -> &Outcome<'q> {
        &self.outcome
    }
}

/// The answer of [`RateLimiter::check_policy`], borrowing the policy's quotas (`'q`).
#[derive(Debug)]
pub struct PolicyOutcome<'q> {
    decision: Decision<'q>,
    keys: Vec<KeyOutcome<'q>>,
}

impl<'q> PolicyOutcome<'q> {
    /// Whether every key checked allowed the request.
    pub fn allowed(&self) -> bool {
        self.decision.allowed()
    }

    /// One decision over every quota checked (the keys up to and including the first denial),
    /// for the response headers.
    pub fn decision(&self) -> &Decision<'q> {
        &self.decision
    }

    /// Each key checked, in order; checking stopped after the first denial.
    pub fn keys(&self) -> &[KeyOutcome<'q>] {
        &self.keys
    }

    /// The key kind that denied the request, if any.
    pub fn denied_by(&self) -> Option<&KeyKind> {
        self.keys
            .iter()
            .find(|k| !k.outcome.allowed())
            .map(|k| &k.kind)
    }

    /// Every backend failure met (primary and fallback), in order.
    pub fn backend_errors(&self) -> impl Iterator<Item = &Error> {
        self.keys.iter().flat_map(|k| {
            k.outcome
                .backend_error()
                .into_iter()
                .chain(k.outcome.fallback_error())
        })
    }

    /// Whether any key was decided other than by the primary store.
    pub fn is_degraded(&self) -> bool {
        self.keys.iter().any(|k| k.outcome.is_degraded())
    }
}

/// A rate limiter: a primary store and what to do when it fails.
///
/// Generic over its primary store, like every finsec service; the default is the
/// type-erased `Arc<dyn RateLimitStore>`, so `RateLimiter` alone names a limiter over any
/// store. Cloning is cheap when the store is (an `Arc`, or a Redis store's connection
/// handle). The local fallback is always an `Arc<dyn RateLimitStore>`: it is only used when
/// the primary fails.
#[derive(Clone)]
pub struct RateLimiter<S = Arc<dyn RateLimitStore>> {
    primary: S,
    fallback: Arc<dyn RateLimitStore>,
    policy: FailurePolicy,
    fail_closed_retry_after: Duration,
}

impl<S: RateLimitStore> fmt::Debug for RateLimiter<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("primary", &self.primary.backend())
            .field("fallback", &self.fallback.backend())
            .field("policy", &self.policy)
            .field("fail_closed_retry_after", &self.fail_closed_retry_after)
            .finish()
    }
}

impl<S: RateLimitStore> RateLimiter<S> {
    /// A limiter over `primary`, handling its failures with `policy`. The local fallback is
    /// a fresh [`MemoryStore`].
    pub fn new(primary: S, policy: FailurePolicy) -> Self {
        Self {
            primary,
            fallback: Arc::new(MemoryStore::new()),
            policy,
            fail_closed_retry_after: DEFAULT_FAIL_CLOSED_RETRY_AFTER,
        }
    }

    /// The same limiter with another local fallback store (used by
    /// [`FailurePolicy::FallbackLocal`]).
    pub fn with_fallback(mut self, fallback: Arc<dyn RateLimitStore>) -> Self {
        self.fallback = fallback;
        self
    }

    /// The same limiter with another `retry_after` for fail-closed denials (`Retry-After` is
    /// at least one second whatever this is).
    pub fn with_fail_closed_retry_after(mut self, retry_after: Duration) -> Self {
        self.fail_closed_retry_after = retry_after;
        self
    }

    /// The failure policy.
    pub fn failure_policy(&self) -> FailurePolicy {
        self.policy
    }

    /// The primary store.
    pub fn primary(&self) -> &S {
        &self.primary
    }

    /// Decides `check` with the primary store, applying the failure policy if it fails.
    ///
    /// # Errors
    /// A validation error ([`Check::validate`]) or any error of the primary store that is not
    /// a backend failure. Backend failures are not errors here: they are in the [`Outcome`].
    pub async fn check<'q>(&self, check: Check<'_, 'q>) -> Result<Outcome<'q>> {
        check.validate()?;
        self.decide(check).await
    }

    async fn decide<'q>(&self, check: Check<'_, 'q>) -> Result<Outcome<'q>> {
        let backend_error = match self.primary.check(check).await {
            Ok(decision) => {
                return Ok(Outcome {
                    decision,
                    source: Source::Primary,
                    backend_error: None,
                    fallback_error: None,
                });
            }
            Err(e) if e.is_backend() => e,
            Err(e) => return Err(e),
        };
        Ok(match self.policy {
            FailurePolicy::FailOpen => Outcome {
                decision: Decision::from_quotas(Vec::new()),
                source: Source::FailOpen,
                backend_error: Some(backend_error),
                fallback_error: None,
            },
            FailurePolicy::FailClosed => Outcome {
                decision: self.fail_closed(check.quotas),
                source: Source::FailClosed,
                backend_error: Some(backend_error),
                fallback_error: None,
            },
            FailurePolicy::FallbackLocal => match self.fallback.check(check).await {
                Ok(decision) => Outcome {
                    decision,
                    source: Source::Fallback,
                    backend_error: Some(backend_error),
                    fallback_error: None,
                },
                Err(e) if e.is_backend() => Outcome {
                    decision: self.fail_closed(check.quotas),
                    source: Source::FailClosed,
                    backend_error: Some(backend_error),
                    fallback_error: Some(e),
                },
                Err(e) => return Err(e),
            },
        })
    }

    fn fail_closed<'q>(&self, quotas: &'q [Quota]) -> Decision<'q> {
        let wait = u64::try_from(self.fail_closed_retry_after.as_micros()).unwrap_or(u64::MAX);
        Decision::from_quotas(
            quotas
                .iter()
                .map(|q| QuotaDecision::from_parts(q, false, 0, wait, wait))
                .collect(),
        )
    }

    /// Checks every rule of `policy` for `identity` at `cost`: one key per key kind, in the
    /// policy's order, stopping at the first denial (see the [module docs](self) for why and
    /// what it implies). Each key gets the failure policy on its own.
    ///
    /// # Errors
    /// [`Error::Config`] if `identity` lacks a kind the policy counts per; a validation error
    /// of any key (checked for all keys before anything is consumed); or a non-backend error
    /// of a store.
    pub async fn check_policy<'q>(
        &self,
        policy: &'q RateLimitPolicy,
        identity: &Identity,
        cost: u32,
    ) -> Result<PolicyOutcome<'q>> {
        let mut planned = Vec::with_capacity(policy.groups().len());
        for group in policy.groups() {
            let key = policy.key(group, identity)?;
            Check::new(&key, group.quotas())
                .with_cost(cost)
                .validate()?;
            planned.push((group, key));
        }
        let mut keys = Vec::with_capacity(planned.len());
        let mut quotas = Vec::new();
        for (group, key) in planned {
            let outcome = self
                .decide(Check::new(&key, group.quotas()).with_cost(cost))
                .await?;
            quotas.extend(outcome.decision().quotas().iter().cloned());
            let allowed = outcome.allowed();
            keys.push(KeyOutcome {
                kind: group.kind().clone(),
                key,
                outcome,
            });
            if !allowed {
                break;
            }
        }
        Ok(PolicyOutcome {
            decision: Decision::from_quotas(quotas),
            keys,
        })
    }
}
