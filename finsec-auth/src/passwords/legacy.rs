//! Verification of legacy bcrypt hashes, for migrating users to argon2id.
//!
//! [`PasswordHasher::verify`](super::PasswordHasher::verify) sends `$2a$`, `$2b$` and `$2y$`
//! strings here; a match is always `Verified { needs_rehash: true }`, so the caller stores
//! an argon2id hash of the password at once and the bcrypt hash disappears at the user's
//! next successful login. Hashes are never *created* with bcrypt.
//!
//! # Compatibility with passlib
//!
//! Python's passlib (`passlib.hash.bcrypt`, default ident `$2b$`) encodes the password as
//! UTF-8 without any normalisation, so this module verifies the password **as typed**
//! (not NFKC-normalised, unlike argon2id hashes).
//!
//! bcrypt reads at most 72 bytes of password. passlib's default (`truncate_error=False`)
//! silently truncated longer passwords to their first 72 bytes when hashing and when
//! verifying. This module does the same, **explicitly and on purpose**: refusing them would
//! lock out every user who chose a long passphrase on the old platform, and accepting the
//! truncated form grants nothing the old platform did not. The weakness ends at migration,
//! since the argon2id hash made on success covers the whole password. `$2x$` (the buggy
//! pre-2011 crypt_blowfish) and bare `$2$` are refused.
//!
//! Costs above [`MAX_BCRYPT_COST`] are refused (cost 31 would take hours: a crafted row
//! must not stall the server); passlib's default cost is 12.

use super::{Password, PasswordAccepted, PasswordError, PasswordOutcome, PasswordRejection};
use crate::outcome::CredentialOutcome;

/// The highest bcrypt cost accepted.
pub const MAX_BCRYPT_COST: u32 = 16;
/// bcrypt's password limit in bytes; longer passwords are truncated to it, as passlib did.
pub const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;

/// Verifies `password` (as typed, truncated to 72 bytes like passlib) against a bcrypt
/// `$2a$`/`$2b$`/`$2y$` hash. A match always needs a rehash.
///
/// # Errors
/// [`PasswordError::InvalidStoredHash`] if `stored` is not such a hash or its cost is
/// outside 4..=[`MAX_BCRYPT_COST`].
pub fn verify_bcrypt(password: &Password, stored: &str) -> Result<PasswordOutcome, PasswordError> {
    let invalid = |reason: String| PasswordError::InvalidStoredHash { reason };
    let rest = ["$2a$", "$2b$", "$2y$"]
        .iter()
        .find_map(|p| stored.strip_prefix(p))
        .ok_or_else(|| invalid("not a $2a$, $2b$ or $2y$ bcrypt hash".into()))?;
    let cost: u32 = rest
        .get(..2)
        .filter(|_| rest.as_bytes().get(2) == Some(&b'$'))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| invalid("bcrypt cost is not two digits".into()))?;
    if !(4..=MAX_BCRYPT_COST).contains(&cost) {
        return Err(invalid(format!(
            "bcrypt cost {cost} is outside 4..={MAX_BCRYPT_COST}"
        )));
    }
    let raw = password.expose_secret().as_bytes();
    let truncated = raw.get(..BCRYPT_MAX_PASSWORD_BYTES).unwrap_or(raw);
    match bcrypt::verify(truncated, stored) {
        Ok(true) => Ok(CredentialOutcome::Accepted(PasswordAccepted {
            needs_rehash: true,
        })),
        Ok(false) => Ok(CredentialOutcome::Rejected(PasswordRejection::Mismatch)),
        Err(e) => Err(invalid(format!("bcrypt: {e}"))),
    }
}
