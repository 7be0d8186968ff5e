//! Password hashing and password rules: argon2id PHC strings, an optional pepper, legacy
//! bcrypt verification for migration, a dummy verification for unknown users and
//! NIST SP 800-63B length rules.
//!
//! # Use
//!
//! ```
//! use finsec_auth::outcome::CredentialOutcome;
//! use finsec_auth::passwords::{
//!     Argon2Params, Password, PasswordAccepted, PasswordHasher, PasswordPolicy, PasswordRejection,
//! };
//!
//! # fn main() -> Result<(), finsec_auth::passwords::PasswordError> {
//! // OWASP's parameters; stronger ones with `PasswordHasher::new(Argon2Params::new(..)?, pepper)`.
//! let hasher = PasswordHasher::new(Argon2Params::default(), None)?;
//! let policy = PasswordPolicy::default();
//!
//! // Registration: the policy turns a candidate into a `NewPassword`; only that can be hashed.
//! let new = policy.check(&Password::new("correct horse battery staple"))?;
//! let stored = hasher.hash(&new)?;
//!
//! // Login.
//! match hasher.verify(&Password::new("correct horse battery staple"), &stored)? {
//!     CredentialOutcome::Accepted(PasswordAccepted { needs_rehash }) => assert!(!needs_rehash),
//!     CredentialOutcome::Rejected(PasswordRejection::Mismatch) => unreachable!(),
//!     CredentialOutcome::Rejected(_) => unreachable!(),
//! }
//! // Or verify and get the replacement hash when the stored one is legacy or weaker.
//! let (outcome, replacement) =
//!     hasher.verify_and_rehash(&Password::new("correct horse battery staple"), &stored)?;
//! assert!(outcome.is_accepted() && replacement.is_none());
//! // Unknown user: spend the same time, always a mismatch.
//! assert_eq!(
//!     hasher.dummy_verify(&Password::new("guess")),
//!     CredentialOutcome::Rejected(PasswordRejection::Mismatch)
//! );
//! # Ok(())
//! # }
//! ```
//!
//! # Defaults and why
//!
//! | setting | default | why |
//! |---------|---------|-----|
//! | algorithm | argon2id v1.3 | RFC 9106's recommendation; memory-hard, resists GPU/ASIC and side channels |
//! | cost | m = 19,456 KiB (19 MiB), t = 2, p = 1 | OWASP Password Storage Cheat Sheet minimum; the same constants as [`finsec_crypto::kdf`], whose `MIN_*`/`MAX_*` bounds are reused |
//! | salt | 16 random bytes per hash | RFC 9106 recommends 128 bits |
//! | tag | 32 bytes | RFC 9106 |
//! | pepper | none (optional) | needs a secret store outside the database; see below |
//! | length | 12..=256 characters, counted as code points as typed (before NFKC) | SP 800-63B 5.1.1.2 requires a minimum of at least 8, allows at least 64 and counts each code point as one character; counting before normalisation makes the rule the one a client (or a JSON Schema `minLength`/`maxLength`) checks; 256 bounds the work an attacker can make us do |
//! | composition rules | none | SP 800-63B 5.1.1.2: verifiers SHALL NOT impose them |
//! | normalisation | NFKC, before the deny-list check and hashing | SP 800-63B 5.1.1.2 (the same password typed on different keyboards matches) |
//!
//! New hashes must meet the `MIN_*` parameters of [`finsec_crypto::kdf`]; stored hashes
//! are verified whatever their cost (up to the `MAX_*` bounds, so a crafted string cannot
//! ask for gigabytes of memory) and [`PasswordAccepted`] says `needs_rehash` when
//! they are weaker than (or otherwise differ from) the current parameters or pepper: hash the
//! password again and store the new string while you have it in hand.
//!
//! # Pepper
//!
//! A [`Pepper`] is passed to argon2 as its *secret* input (`K` in RFC 9106 section 3.1),
//! rather than as an HMAC of the password computed beforehand: argon2 was designed to take
//! it, no second primitive is involved, and the result stays a standard PHC string. The
//! pepper's id (1 to 8 bytes) is written into the PHC string as argon2's standard `keyid`
//! parameter, so several peppers can be configured at once for rotation: hashes made
//! under a retired pepper still verify, and report `needs_rehash`.
//!
//! # Legacy bcrypt
//!
//! With the `legacy-bcrypt` feature, `$2a$`, `$2b$` and `$2y$` hashes (as written by
//! Python's passlib) verify too, always with `needs_rehash: true`, so users of an existing
//! platform move to argon2id at their next successful login. See the `legacy` module for
//! the 72-byte limit.
//!
//! # Threat model
//!
//! Defends against: offline guessing after a database leak (memory-hard hashing, unique
//! salts; with a pepper, a leak of the database alone is not enough to test guesses at all);
//! account enumeration by timing ([`PasswordHasher::dummy_verify`] costs what a real
//! verification costs); distinguishing failure reasons (a wrong password is
//! [`PasswordRejection::Mismatch`], whatever the reason, and the variant carries nothing);
//! denial of service through long passwords or crafted stored hashes (length and
//! parameter bounds); passwords leaking through logs ([`Password`] is zeroized on drop and
//! prints `[REDACTED]`).
//!
//! Timing differences the hasher cannot remove alone (the caller's own user lookup, a
//! bcrypt or older-parameter hash against the current argon2id cost) are closed by
//! [`FailureFloor`]: time every check, and hold each refusal until it took as long as the
//! slowest recent one.
//!
//! Does not defend against: online guessing (rate-limit logins with `finsec-ratelimit`),
//! weak but policy-compliant passwords beyond what the deny-list catches, a compromised
//! server process that sees passwords as they arrive, or timing differences in a caller
//! that does not use [`FailureFloor`] (or an equivalent) around its lookup.

mod common;
mod error;
mod floor;
mod hasher;
#[cfg(feature = "legacy-bcrypt")]
#[cfg_attr(docsrs, doc(cfg(feature = "legacy-bcrypt")))]
pub mod legacy;
mod policy;

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::outcome::{CredentialOutcome, CredentialRejection};

pub use common::{COMMON_PASSWORDS_LEN, COMMON_PASSWORDS_TEXT, CommonPasswords};
pub use error::PasswordError;
pub use floor::FailureFloor;
pub use hasher::{Argon2Params, PasswordHasher, Pepper};
pub use policy::{
    DEFAULT_MAX_CHARS, DEFAULT_MIN_CHARS, DenyList, MAX_MAX_CHARS, MIN_MIN_CHARS, NewPassword,
    PasswordPolicy, SetDenyList,
};

/// A password as the user typed it. Zeroized on drop, `[REDACTED]` in `Debug`.
///
/// It is not checked: [`PasswordPolicy::check`] turns it into a [`NewPassword`] for
/// registration; [`PasswordHasher::verify`] takes it as is.
pub struct Password(SecretString);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(SecretString::from(password.into()))
    }

    /// The password as typed (not normalised).
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

/// What an accepted password established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PasswordAccepted {
    /// The stored hash uses weaker or different parameters, another pepper, or a legacy
    /// algorithm: hash the password again and replace the stored string.
    pub needs_rehash: bool,
}

/// Why a password was refused. There is one reason, and it carries nothing: callers cannot
/// tell (and so cannot reveal) which part of the check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PasswordRejection {
    /// The password does not match the stored hash (or the user does not exist, when the
    /// caller used [`PasswordHasher::dummy_verify`]).
    Mismatch,
}

impl fmt::Display for PasswordRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("password does not match")
    }
}

impl std::error::Error for PasswordRejection {}

impl CredentialRejection for PasswordRejection {
    fn code(&self) -> &'static str {
        match self {
            Self::Mismatch => "password.mismatch",
        }
    }
}

/// The outcome of verifying a password against a stored hash.
pub type PasswordOutcome = CredentialOutcome<PasswordAccepted, PasswordRejection>;
