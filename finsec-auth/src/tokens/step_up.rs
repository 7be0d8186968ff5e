//! Step-up authentication (RFC 9470): whether the login behind a token is recent and strong
//! enough for a sensitive action.
//!
//! A valid access token proves that someone held it, not that the user was present lately:
//! it may come from a refresh hours after the login, or have leaked from a proxy log.
//! Actions that give lasting access (creating API keys, changing the password or the second
//! factor) should ask for more: a login at most `max_age` ago, with the second factor when the
//! user has one. The token says when and how the user logged in (OpenID Connect `auth_time`,
//! RFC 8176 `amr`); a token from a refresh carries neither and never passes.
//!
//! [`StepUp::check`] answers with a [`CredentialOutcome`]: the login's age, or a
//! [`StepUpRejection`] whose [`code`](CredentialRejection::code) goes to the audit log. The
//! client gets the RFC 9470 challenge of [`StepUp::challenge`], which names `max_age`, and
//! logs in again.
//!
//! ```
//! use finsec_auth::tokens::{StepUp, StepUpRejection};
//! use finsec_auth::CredentialRejection;
//! use time::{Duration, OffsetDateTime};
//!
//! let step_up = StepUp::new(Duration::minutes(5));
//! let now = OffsetDateTime::now_utc();
//! let login = now - Duration::minutes(2);
//! assert!(step_up.check(Some(login), &["pwd", "otp", "mfa"], true, now).is_accepted());
//! // Without the enrolled second factor, or from a refresh, it is refused.
//! let why = step_up.check(Some(login), &["pwd"], true, now).into_result().unwrap_err();
//! assert_eq!(why, StepUpRejection::SecondFactorMissing);
//! let why = step_up.check::<&str>(None, &[], false, now).into_result().unwrap_err();
//! assert_eq!(why.code(), "step_up.no_login");
//! assert_eq!(
//!     step_up.challenge("finsec").unwrap(),
//!     "Bearer realm=\"finsec\", error=\"insufficient_user_authentication\", \
//!      error_description=\"log in again to do this\", max_age=300"
//! );
//! ```
//!
//! # Threat model
//! - A stolen or long-refreshed token cannot do what needs a recent login: the login time
//!   is a signed claim, and a refresh never carries one forward.
//! - A login time in the future (beyond the verifier's clock-skew leeway) is refused, so a
//!   token minted with a future `auth_time` cannot stay "recent" for longer than `max_age`.
//! - The check trusts the token's claims; it is only as good as the signature check before
//!   it, and the `amr` the issuer wrote (`mfa` only after a second factor was verified).

use std::fmt;

use time::{Duration, OffsetDateTime};

use super::DEFAULT_LEEWAY;
use crate::outcome::{CredentialOutcome, CredentialRejection};

/// How long after a login a token may do sensitive actions unless configured otherwise.
pub const DEFAULT_STEP_UP_MAX_AGE: Duration = Duration::minutes(5);

/// The `amr` value (RFC 8176) that says a second factor was verified at the login.
pub const AMR_MFA: &str = "mfa";

/// Why a token's login is not enough for a sensitive action. For the audit log; the client
/// sees the challenge only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepUpRejection {
    /// The token carries no login time: it came from a refresh (or from an API key), which
    /// proves no presence.
    NoLogin,
    /// The login was longer ago than the maximum age.
    TooOld {
        /// How long ago.
        age: Duration,
        /// The maximum.
        max_age: Duration,
    },
    /// The login time is in the future, beyond the clock-skew leeway.
    InFuture,
    /// The user has a second factor and the login did not use it.
    SecondFactorMissing,
}

impl fmt::Display for StepUpRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoLogin => f.write_str("the token carries no login time"),
            Self::TooOld { age, max_age } => write!(
                f,
                "the login was {} s ago, more than {} s",
                age.whole_seconds(),
                max_age.whole_seconds()
            ),
            Self::InFuture => f.write_str("the login time is in the future"),
            Self::SecondFactorMissing => {
                f.write_str("the login did not use the enrolled second factor")
            }
        }
    }
}

impl std::error::Error for StepUpRejection {}

impl CredentialRejection for StepUpRejection {
    fn code(&self) -> &'static str {
        match self {
            Self::NoLogin => "step_up.no_login",
            Self::TooOld { .. } => "step_up.too_old",
            Self::InFuture => "step_up.in_future",
            Self::SecondFactorMissing => "step_up.second_factor_missing",
        }
    }
}

/// The rule a sensitive action applies to the login behind a token. See the
/// [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepUp {
    max_age: Duration,
    leeway: Duration,
}

impl Default for StepUp {
    fn default() -> Self {
        Self::new(DEFAULT_STEP_UP_MAX_AGE)
    }
}

impl StepUp {
    /// Logins at most `max_age` old (negative counts as zero), with the token verifier's
    /// default clock-skew leeway ([`DEFAULT_LEEWAY`]) for login times slightly ahead.
    pub const fn new(max_age: Duration) -> Self {
        Self {
            max_age: if max_age.is_negative() {
                Duration::ZERO
            } else {
                max_age
            },
            leeway: DEFAULT_LEEWAY,
        }
    }

    /// Sets the clock-skew leeway (negative counts as zero): use the verifier's.
    #[must_use]
    pub const fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = if leeway.is_negative() {
            Duration::ZERO
        } else {
            leeway
        };
        self
    }

    /// The maximum age of a login.
    pub const fn max_age(&self) -> Duration {
        self.max_age
    }

    /// Checks the login of a token that says it was made at `auth_time` by the methods
    /// `amr`, for a user who has a second factor enrolled when `second_factor_enrolled`.
    /// Accepted with the login's age.
    pub fn check<S: AsRef<str>>(
        &self,
        auth_time: Option<OffsetDateTime>,
        amr: &[S],
        second_factor_enrolled: bool,
        now: OffsetDateTime,
    ) -> CredentialOutcome<Duration, StepUpRejection> {
        let Some(at) = auth_time else {
            return CredentialOutcome::Rejected(StepUpRejection::NoLogin);
        };
        let age = now - at;
        if age < -self.leeway {
            return CredentialOutcome::Rejected(StepUpRejection::InFuture);
        }
        if age > self.max_age {
            return CredentialOutcome::Rejected(StepUpRejection::TooOld {
                age,
                max_age: self.max_age,
            });
        }
        if second_factor_enrolled && !amr.iter().any(|m| m.as_ref() == AMR_MFA) {
            return CredentialOutcome::Rejected(StepUpRejection::SecondFactorMissing);
        }
        CredentialOutcome::Accepted(age.max(Duration::ZERO))
    }

    /// The `WWW-Authenticate` value of a refusal (RFC 9470 section 3): the
    /// `insufficient_user_authentication` error with this rule's `max_age` in seconds.
    /// `None` when `realm` cannot be written as a quoted string (it holds `"`, `\` or a
    /// character outside printable ASCII).
    pub fn challenge(&self, realm: &str) -> Option<String> {
        if !realm
            .bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
        {
            return None;
        }
        Some(format!(
            "Bearer realm=\"{realm}\", error=\"insufficient_user_authentication\", \
             error_description=\"log in again to do this\", max_age={}",
            self.max_age.whole_seconds()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-06 12:00 UTC);

    fn check(
        rule: StepUp,
        ago: Duration,
        amr: &[&str],
        mfa: bool,
    ) -> Result<Duration, &'static str> {
        rule.check(Some(NOW - ago), amr, mfa, NOW)
            .into_result()
            .map_err(|r| r.code())
    }

    #[test]
    fn the_boundaries_of_age_leeway_and_second_factor() {
        let rule = StepUp::new(Duration::minutes(5));
        let min5 = Duration::minutes(5);
        let s = Duration::SECOND;
        assert_eq!(check(rule, min5, &["pwd"], false), Ok(min5));
        assert_eq!(
            check(rule, min5 + s, &["pwd"], false),
            Err("step_up.too_old")
        );
        assert_eq!(
            check(rule, -Duration::seconds(30), &["pwd"], false),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            check(rule, -Duration::seconds(31), &["pwd"], false),
            Err("step_up.in_future")
        );
        assert_eq!(
            check(rule.with_leeway(Duration::ZERO), -s, &["pwd"], false),
            Err("step_up.in_future")
        );
        assert_eq!(
            check(rule, s, &["pwd", "otp"], true),
            Err("step_up.second_factor_missing")
        );
        assert_eq!(check(rule, s, &["pwd", "otp", "mfa"], true), Ok(s));
        // An old login is refused as old even with the second factor.
        assert_eq!(
            check(rule, min5 * 2, &["mfa"], true),
            Err("step_up.too_old")
        );
        assert_eq!(
            rule.check::<&str>(None, &[], false, NOW).into_result(),
            Err(StepUpRejection::NoLogin)
        );
        // A negative maximum age admits only a login made now (within the leeway).
        let strict = StepUp::new(-min5);
        assert_eq!(strict.max_age(), Duration::ZERO);
        assert_eq!(
            check(strict, Duration::ZERO, &["pwd"], false),
            Ok(Duration::ZERO)
        );
        assert_eq!(check(strict, s, &["pwd"], false), Err("step_up.too_old"));
    }

    #[test]
    fn the_challenge_names_max_age_and_refuses_unquotable_realms() {
        let rule = StepUp::new(Duration::minutes(10));
        assert_eq!(
            rule.challenge("api").unwrap(),
            "Bearer realm=\"api\", error=\"insufficient_user_authentication\", \
             error_description=\"log in again to do this\", max_age=600"
        );
        for bad in ["a\"b", "a\\b", "a\nb", "é"] {
            assert_eq!(rule.challenge(bad), None, "{bad:?}");
        }
        assert_eq!(StepUp::default().max_age(), DEFAULT_STEP_UP_MAX_AGE);
    }

    #[test]
    fn every_rejection_has_its_own_code_and_message() {
        let all = [
            StepUpRejection::NoLogin,
            StepUpRejection::TooOld {
                age: Duration::minutes(6),
                max_age: Duration::minutes(5),
            },
            StepUpRejection::InFuture,
            StepUpRejection::SecondFactorMissing,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(|r| r.code()).collect();
        assert_eq!(codes.len(), all.len());
        assert_eq!(
            all[1].to_string(),
            "the login was 360 s ago, more than 300 s"
        );
    }
}
