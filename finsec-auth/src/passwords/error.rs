//! The passwords module's error type.

/// What can go wrong when checking, hashing or verifying a password.
///
/// A wrong password is never an error: it is a [`PasswordRejection::Mismatch`](super::PasswordRejection) outcome.
/// Errors are about the request (a new password breaking the policy) or the deployment (bad
/// parameters, a stored hash that cannot be parsed, a pepper id that is not configured), and
/// never contain the password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// A new password is shorter than the policy's minimum (counted in the Unicode code
    /// points sent, before NFKC normalisation).
    #[error("password is too short: {actual} characters, at least {min} required")]
    TooShort {
        /// The policy's minimum.
        min: usize,
        /// The password's length.
        actual: usize,
    },
    /// A new password is longer than the policy's maximum.
    #[error("password is too long: {actual} characters, at most {max} allowed")]
    TooLong {
        /// The policy's maximum.
        max: usize,
        /// The password's length.
        actual: usize,
    },
    /// A new password is on the deny-list (commonly used, expected or compromised).
    #[error("password is on the deny-list of common or compromised passwords")]
    DenyListed,
    /// A configuration parameter is out of range.
    #[error("invalid password parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A stored hash could not be parsed or uses something this build does not support.
    #[error("stored password hash is not usable: {reason}")]
    InvalidStoredHash {
        /// What is wrong with it (never the hash itself).
        reason: String,
    },
    /// A stored hash names a pepper id that is not configured.
    #[error("stored password hash uses pepper id {id:?}, which is not configured")]
    UnknownPepper {
        /// The pepper id in the stored hash.
        id: String,
    },
    /// The operating system did not provide randomness for a salt.
    #[error("no randomness for a salt: {0}")]
    Random(#[source] finsec_crypto::Error),
    /// argon2 failed while hashing.
    #[error("argon2 hashing failed: {0}")]
    Hashing(String),
}
