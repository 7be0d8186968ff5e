//! The crate's error type.

use std::time::Duration;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when configuring or asking a rate limiter.
///
/// A *denied* request is not an error: it is a [`Decision`](crate::Decision) with
/// `allowed() == false`. Errors are configuration mistakes, unusable keys and backend failures.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A quota's parameters are out of range.
    #[error("invalid quota: {reason}")]
    InvalidQuota {
        /// What is wrong with it.
        reason: String,
    },
    /// A check named no quota at all.
    #[error("a rate-limit check needs at least one quota")]
    NoQuotas,
    /// Two quotas of one check share a name, so their state and headers would collide.
    #[error("quota name {name:?} appears twice in one check")]
    DuplicateQuota {
        /// The repeated name.
        name: String,
    },
    /// The key is empty, too long or contains a byte that is not allowed.
    #[error("invalid rate-limit key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request costs more than the quota could ever allow at once, so it would be
    /// denied forever; this is a configuration mistake, not a denial.
    #[error("cost {cost} exceeds the capacity {capacity} of quota {quota:?}")]
    CostExceedsCapacity {
        /// The quota's name.
        quota: String,
        /// The cost asked for.
        cost: u32,
        /// The most the quota allows at once.
        capacity: u64,
    },
    /// A time passed to an `*_at` function is outside the range the stores support
    /// (from the Unix epoch to 2^62 µs after it, about the year 148,000).
    #[error("invalid time: {reason}")]
    InvalidTime {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A named policy does not exist.
    #[error("unknown rate-limit policy {name:?}")]
    UnknownPolicy {
        /// The name asked for.
        name: String,
    },
    /// A policy configuration could not be read or is inconsistent.
    #[error("invalid rate-limit configuration at {path}: {reason}")]
    Config {
        /// Where in the configuration (policy and quota) the problem is.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The backend (for example Redis) failed or did not answer in time.
    #[error("rate-limit backend {backend} failed: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The underlying error (never contains credentials).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The backend did not answer within the configured time.
    #[error("rate-limit backend {backend} did not answer within {timeout:?}")]
    Timeout {
        /// Which backend.
        backend: &'static str,
        /// The time allowed.
        timeout: Duration,
    },
    /// The backend answered with something this crate did not expect.
    #[error("rate-limit backend {backend} answered unexpectedly: {reason}")]
    Protocol {
        /// Which backend.
        backend: &'static str,
        /// What was unexpected.
        reason: String,
    },
}

impl Error {
    /// Whether the error comes from the backend (unreachable, timed out, protocol error)
    /// rather than from the caller's configuration or key. Only backend errors are subject
    /// to a [failure policy](crate::FailurePolicy).
    pub fn is_backend(&self) -> bool {
        matches!(
            self,
            Self::Backend { .. } | Self::Timeout { .. } | Self::Protocol { .. }
        )
    }
}
