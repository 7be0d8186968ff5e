//! The one answer of every credential check: accepted or rejected.
//!
//! Passwords, TOTP codes, backup codes, API keys and tokens each answer with a
//! [`CredentialOutcome`]: [`Accepted`](CredentialOutcome::Accepted) with what the check
//! established, or [`Rejected`](CredentialOutcome::Rejected) with the module's reason. A
//! rejection is an expected answer, not an error: `Err` from a check means only that it
//! could not be carried out (a store failed, a stored hash is corrupt), and a check that
//! has no such failure returns the outcome without a `Result`.
//!
//! The reason is for the audit log. Every reason type implements [`CredentialRejection`],
//! whose [`code`](CredentialRejection::code) is a short, stable string such as
//! `"token.expired"`; the client should see one generic refusal whatever the reason, so
//! that it learns nothing about which part of the check failed.
//!
//! ```
//! use finsec_auth::outcome::{CredentialOutcome, CredentialRejection};
//! use finsec_auth::passwords::{Argon2Params, Password, PasswordHasher, PasswordPolicy};
//!
//! # fn main() -> Result<(), finsec_auth::Error> {
//! let hasher = PasswordHasher::new(Argon2Params::default(), None)?;
//! let new = PasswordPolicy::default().check(&Password::new("correct horse battery staple"))?;
//! let stored = hasher.hash(&new)?;
//! match hasher.verify(&Password::new("guess"), &stored)? {
//!     CredentialOutcome::Accepted(ok) => assert!(!ok.needs_rehash),
//!     CredentialOutcome::Rejected(why) => assert_eq!(why.code(), "password.mismatch"),
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;

/// The answer of a credential check: accepted with `T`, or rejected with the reason `R`.
///
/// `R` is the module's reason type ([`PasswordRejection`](crate::passwords::PasswordRejection),
/// [`TotpRejection`](crate::mfa::TotpRejection),
/// [`BackupCodeRejection`](crate::mfa::BackupCodeRejection),
/// [`ApiKeyRejection`](crate::api_keys::ApiKeyRejection),
/// [`TokenRejection`](crate::tokens::TokenRejection),
/// [`StepUpRejection`](crate::tokens::StepUpRejection)); each implements
/// [`CredentialRejection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "a credential check must be matched on: a rejection is not an Err"]
pub enum CredentialOutcome<T, R> {
    /// The credential was accepted; `T` is what the check established.
    Accepted(T),
    /// The credential was refused; `R` says why, for the audit log only.
    Rejected(R),
}

impl<T, R> CredentialOutcome<T, R> {
    /// `true` for [`Accepted`](Self::Accepted).
    pub const fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted(_))
    }

    /// `true` for [`Rejected`](Self::Rejected): count it as a failed attempt.
    pub const fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected(_))
    }

    /// What was established, if accepted.
    pub fn accepted(self) -> Option<T> {
        match self {
            Self::Accepted(t) => Some(t),
            Self::Rejected(_) => None,
        }
    }

    /// The reason, if rejected.
    pub const fn rejection(&self) -> Option<&R> {
        match self {
            Self::Accepted(_) => None,
            Self::Rejected(r) => Some(r),
        }
    }

    /// A reference to each side.
    pub const fn as_ref(&self) -> CredentialOutcome<&T, &R> {
        match self {
            Self::Accepted(t) => CredentialOutcome::Accepted(t),
            Self::Rejected(r) => CredentialOutcome::Rejected(r),
        }
    }

    /// Maps what was established, keeping a rejection as it is.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> CredentialOutcome<U, R> {
        match self {
            Self::Accepted(t) => CredentialOutcome::Accepted(f(t)),
            Self::Rejected(r) => CredentialOutcome::Rejected(r),
        }
    }

    /// The outcome as a `Result`, for callers that propagate a rejection with `?` (the
    /// rejection types implement `std::error::Error`).
    ///
    /// # Errors
    /// The rejection.
    pub fn into_result(self) -> Result<T, R> {
        match self {
            Self::Accepted(t) => Ok(t),
            Self::Rejected(r) => Err(r),
        }
    }
}

impl<T, R> From<Result<T, R>> for CredentialOutcome<T, R> {
    fn from(result: Result<T, R>) -> Self {
        match result {
            Ok(t) => Self::Accepted(t),
            Err(r) => Self::Rejected(r),
        }
    }
}

/// A reason why a credential was refused.
///
/// [`code`](Self::code) names the reason in a short, stable, machine-readable form for the
/// audit log and metrics: `"<module>.<reason>"`, lowercase, with `_` between words. Codes
/// are part of the API: a code is never reused for another reason, and renaming one is a
/// breaking change. `Display` is for operators' logs; neither is meant for the client.
pub trait CredentialRejection: fmt::Debug + fmt::Display + Send + Sync + 'static {
    /// The stable code of this reason, such as `"totp.replayed"`.
    fn code(&self) -> &'static str;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Nope;

    #[test]
    fn accessors_follow_the_variant() {
        let ok: CredentialOutcome<u8, Nope> = CredentialOutcome::Accepted(7);
        assert!(ok.is_accepted() && !ok.is_rejected());
        assert_eq!(ok.rejection(), None);
        assert_eq!(ok.as_ref().accepted(), Some(&7));
        assert_eq!(ok.map(u16::from).into_result(), Ok(7u16));

        let no: CredentialOutcome<u8, Nope> = CredentialOutcome::Rejected(Nope);
        assert!(no.is_rejected() && !no.is_accepted());
        assert_eq!(no.rejection(), Some(&Nope));
        assert_eq!(no.map(u16::from).accepted(), None);
        assert_eq!(
            CredentialOutcome::<u8, Nope>::from(Err(Nope)).into_result(),
            Err(Nope)
        );
    }
}
