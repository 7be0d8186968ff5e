//! A policy that can be replaced while checks run.
//!
//! [`SharedPolicy`] holds the current [`Policy`] behind an [`ArcSwap`]. A check loads the
//! current pointer once and decides against that one policy from start to finish; a swap
//! publishes a completely built, validated policy in one atomic pointer store. No check can
//! see a half-loaded policy, and a policy that fails to load never replaces the current one.

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::decision::AccessDecision;
use crate::error::Result;
use crate::policy::Policy;
use crate::request::Request;

/// A hot-swappable [`Policy`].
#[derive(Debug)]
pub struct SharedPolicy {
    current: ArcSwap<Policy>,
}

impl SharedPolicy {
    /// Starts with `policy`.
    pub fn new(policy: Policy) -> Self {
        Self {
            current: ArcSwap::from_pointee(policy),
        }
    }

    /// Decides `request` against the current policy.
    pub fn check(&self, request: &Request<'_>) -> AccessDecision {
        self.current.load().check(request)
    }

    /// The current policy (a snapshot: later swaps do not change it).
    pub fn load(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Replaces the policy; returns the previous one.
    pub fn swap(&self, policy: Policy) -> Arc<Policy> {
        self.current.swap(Arc::new(policy))
    }

    /// Builds a policy with `load` and swaps it in only if it loaded. On error the current
    /// policy stays.
    ///
    /// # Errors
    /// Whatever `load` returns.
    pub fn reload(&self, load: impl FnOnce() -> Result<Policy>) -> Result<Arc<Policy>> {
        let policy = load()?;
        Ok(self.swap(policy))
    }
}
