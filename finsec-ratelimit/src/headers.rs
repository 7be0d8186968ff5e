//! Header values for a [`Decision`]: `Retry-After` and the IETF `RateLimit-Policy` and
//! `RateLimit` fields.
//!
//! The fields follow draft-ietf-httpapi-ratelimit-headers-11 (May 2026), the latest draft:
//! both are Structured Field Lists (RFC 9651) whose items are Strings naming a quota policy,
//! here the quota's [name](crate::Quota::name):
//!
//! - `RateLimit-Policy: "api.key";q=10;w=1;finsec-burst=20` — `q` is the quota (the quota's
//!   limit), `w` the window in whole seconds (the quota's period). The draft has no
//!   sub-second windows, so `w` is left out for a period that is not a whole number of seconds.
//!   A GCRA quota whose burst differs from its limit also carries the vendor parameter
//!   `finsec-burst` (the draft asks for a vendor prefix on implementation-specific
//!   parameters), since a client may then briefly use more than `q`.
//! - `RateLimit: "api.key";r=19;t=1` — `r` is what is left (requests of cost 1), `t` the
//!   effective window in seconds, rounded up: when the quota denied, the time until it would
//!   allow the request; otherwise the time until it is fully available again (GCRA) or its
//!   window ends. Every quota of the decision is listed, so a client sees each limit it may hit.
//! - `Retry-After` (RFC 9110 §10.2.3): delta-seconds, rounded **up** so a client that waits
//!   exactly that long is allowed, and at least 1 when denied. Since `t` of a denying quota is
//!   at most the decision's longest wait, `Retry-After` never points earlier than the end of an
//!   effective window, as the draft requires.
//!
//! These are pure functions returning `String`s, so the core needs no HTTP crate; the `tower`
//! feature puts them on responses.
//!
//! ```
//! use std::num::NonZeroU32;
//! use finsec_ratelimit::{headers, Quota};
//!
//! let minute = Quota::per_minute(NonZeroU32::new(60).unwrap()).named("minute")?;
//! let hour = Quota::per_hour(NonZeroU32::new(1000).unwrap()).named("hour")?;
//! assert_eq!(
//!     headers::rate_limit_policy(&[minute, hour]).as_deref(),
//!     Some(r#""minute";q=60;w=60, "hour";q=1000;w=3600"#)
//! );
//! # Ok::<(), finsec_ratelimit::Error>(())
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use crate::decision::{Decision, QuotaDecision};
use crate::quota::{Algorithm, Quota};

/// The `RateLimit-Policy` header's name.
pub const RATE_LIMIT_POLICY: &str = "ratelimit-policy";
/// The `RateLimit` header's name.
pub const RATE_LIMIT: &str = "ratelimit";
/// The `Retry-After` header's name.
pub const RETRY_AFTER: &str = "retry-after";

/// Every header value for one decision.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RateLimitHeaders {
    /// `RateLimit-Policy`, `None` when the decision names no quota.
    pub policy: Option<String>,
    /// `RateLimit`, `None` when the decision names no quota.
    pub rate_limit: Option<String>,
    /// `Retry-After`, only when denied.
    pub retry_after: Option<String>,
}

impl RateLimitHeaders {
    /// The header values for `decision`.
    pub fn from_decision(decision: &Decision<'_>) -> Self {
        Self {
            policy: policy_of(decision.quotas().iter().map(QuotaDecision::quota)),
            rate_limit: rate_limit(decision),
            retry_after: retry_after(decision),
        }
    }

    /// The present headers as `(lowercase name, value)` pairs.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (RATE_LIMIT_POLICY, self.policy.as_deref()),
            (RATE_LIMIT, self.rate_limit.as_deref()),
            (RETRY_AFTER, self.retry_after.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
    }
}

/// The `RateLimit-Policy` value describing `quotas`; `None` for no quotas (the field is a
/// non-empty list).
pub fn rate_limit_policy(quotas: &[Quota]) -> Option<String> {
    policy_of(quotas.iter())
}

fn policy_of<'a>(quotas: impl Iterator<Item = &'a Quota>) -> Option<String> {
    let mut out = String::new();
    for quota in quotas {
        if !out.is_empty() {
            out.push_str(", ");
        }
        push_sf_string(&mut out, quota.name());
        let _ = write!(out, ";q={}", quota.limit());
        let period = quota.period_micros();
        if period.is_multiple_of(1_000_000) {
            let _ = write!(out, ";w={}", period / 1_000_000);
        }
        if quota.algorithm() == Algorithm::Gcra && quota.burst() != quota.limit() {
            let _ = write!(out, ";finsec-burst={}", quota.burst());
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The `RateLimit` value for `decision`: one item per quota; `None` if it has no quota (for
/// example a fail-open decision, which has no figures to report).
pub fn rate_limit(decision: &Decision<'_>) -> Option<String> {
    let mut out = String::new();
    for q in decision.quotas() {
        if !out.is_empty() {
            out.push_str(", ");
        }
        push_sf_string(&mut out, q.quota().name());
        let _ = write!(out, ";r={};t={}", q.remaining(), effective_window(q));
    }
    (!out.is_empty()).then_some(out)
}

/// The `RateLimit` value for the [tightest](Decision::tightest) quota alone, for responses
/// that should stay small.
pub fn rate_limit_tightest(decision: &Decision<'_>) -> Option<String> {
    let q = decision.tightest()?;
    let mut out = String::new();
    push_sf_string(&mut out, q.quota().name());
    let _ = write!(out, ";r={};t={}", q.remaining(), effective_window(q));
    Some(out)
}

/// The `Retry-After` value (delta-seconds) when `decision` denies; `None` when it allows.
pub fn retry_after(decision: &Decision<'_>) -> Option<String> {
    if decision.allowed() {
        return None;
    }
    let wait = decision.retry_after().unwrap_or(Duration::ZERO);
    Some(retry_after_secs(wait).to_string())
}

/// Whole seconds to wait for `wait`: rounded up, and at least 1 (a denied client must not be
/// told to retry immediately).
pub fn retry_after_secs(wait: Duration) -> u64 {
    ceil_secs(wait).max(1)
}

/// `t` for one quota: seconds (rounded up) until it allows the request if it denied, or until
/// it is fully available again / its window ends if it allowed.
fn effective_window(q: &QuotaDecision<'_>) -> u64 {
    if q.allowed() {
        ceil_secs(q.reset_after())
    } else {
        retry_after_secs(q.retry_after())
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Appends `s` as a Structured Field String: quoted, with `"` and `\` escaped. Characters a
/// String cannot hold (outside printable ASCII) are replaced by `?`; quota names never contain
/// them.
fn push_sf_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sf_strings_are_escaped() {
        let mut out = String::new();
        push_sf_string(&mut out, "a\"b\\c\u{7f}é");
        assert_eq!(out, r#""a\"b\\c??""#);
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_secs(Duration::ZERO), 0);
        assert_eq!(ceil_secs(Duration::from_nanos(1)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1000)), 1);
        assert_eq!(ceil_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_micros(2_000_001)), 3);
    }
}
