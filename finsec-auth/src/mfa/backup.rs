//! Single-use backup (recovery) codes, stored only as keyed hashes.
//!
//! # Policy
//!
//! - Ten codes per set ([`BACKUP_CODE_COUNT`]), each 12 characters from a 31-symbol
//!   alphabet without `0`, `O`, `1`, `I` and `L` (read aloud or copied from paper without
//!   ambiguity), printed as `XXXX-XXXX-XXXX`: about 59.4 bits of OS randomness per code.
//!   Input is case-insensitive, and `-` and spaces are ignored.
//! - Stored as HMAC-SHA-256 under a server key ([`BackupCodeKey`]) over a domain label,
//!   the user id and the code. A slow password hash is unnecessary: the codes are random
//!   with ~59 bits, not chosen by people, so even an unkeyed SHA-256 would need ~2^58
//!   guesses per code; the key adds that a copy of the database alone allows no offline
//!   guessing at all, and binding the user id makes a hash useless for any other account.
//!   Because the hash is keyed, looking it up by equality leaks nothing usable through
//!   timing.
//! - A code is consumed atomically by the store ([`BackupCodeStore::consume`]), so it
//!   works once even under concurrent requests; generating a new set replaces the old.

use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::error::{MfaError, Result};
use super::store::{BackupCodeStore, MfaUserId};
use crate::outcome::{CredentialOutcome, CredentialRejection};

/// How many codes a set has.
pub const BACKUP_CODE_COUNT: usize = 10;
/// Characters per code (without separators).
pub const BACKUP_CODE_LEN: usize = 12;
/// The code alphabet: digits and capital letters without `0`, `O`, `1`, `I`, `L`.
pub const BACKUP_CODE_ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

const DOMAIN: &[u8] = b"finsec-auth mfa backup code v1\0";

/// The server key for hashing backup codes: 32 bytes, zeroized on drop, `[REDACTED]` in
/// `Debug`. Keep it outside the database (a secret manager, an environment secret).
pub struct BackupCodeKey(finsec_crypto::Key256);

impl fmt::Debug for BackupCodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCodeKey([REDACTED])")
    }
}

impl BackupCodeKey {
    /// A key from 32 bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(finsec_crypto::Key256::from_bytes(bytes))
    }

    /// A fresh random key.
    ///
    /// # Errors
    /// [`MfaError::Random`] if the operating system refuses to provide randomness.
    pub fn generate() -> Result<Self> {
        Ok(Self(
            finsec_crypto::Key256::generate().map_err(|_| MfaError::Random)?,
        ))
    }

    fn hash(&self, user: &MfaUserId, normalized: &[u8]) -> Result<BackupCodeHash> {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .map_err(|_| MfaError::Corrupt("backup code key rejected by HMAC".to_owned()))?;
        mac.update(DOMAIN);
        mac.update(user.as_str().as_bytes());
        mac.update(b"\0");
        mac.update(normalized);
        Ok(BackupCodeHash(mac.finalize().into_bytes().into()))
    }
}

/// The stored form of a backup code: its 32-byte keyed hash.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BackupCodeHash([u8; 32]);

impl fmt::Debug for BackupCodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BackupCodeHash(..)")
    }
}

impl BackupCodeHash {
    /// The hash bytes, to store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A hash read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

/// A freshly generated set: the codes to show the user once, and the hashes to store.
pub struct BackupCodes {
    codes: Vec<SecretString>,
    hashes: Vec<BackupCodeHash>,
}

impl fmt::Debug for BackupCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackupCodes")
            .field("codes", &"[REDACTED]")
            .field("count", &self.codes.len())
            .finish()
    }
}

impl BackupCodes {
    /// Generates [`BACKUP_CODE_COUNT`] codes for `user`, hashed under `key`.
    ///
    /// # Errors
    /// [`MfaError::Random`] if the operating system refuses to provide randomness.
    pub fn generate(key: &BackupCodeKey, user: &MfaUserId) -> Result<Self> {
        let mut codes = Vec::with_capacity(BACKUP_CODE_COUNT);
        let mut hashes = Vec::with_capacity(BACKUP_CODE_COUNT);
        while codes.len() < BACKUP_CODE_COUNT {
            let raw = random_code()?;
            let hash = key.hash(user, raw.as_slice())?;
            if hashes.contains(&hash) {
                continue;
            }
            hashes.push(hash);
            codes.push(display(&raw));
        }
        Ok(Self { codes, hashes })
    }

    /// The codes as `XXXX-XXXX-XXXX`, to show the user once and never store.
    pub fn expose_codes(&self) -> Vec<&str> {
        self.codes.iter().map(|c| c.expose_secret()).collect()
    }

    /// The hashes to store (with [`BackupCodeStore::replace`]).
    pub fn hashes(&self) -> &[BackupCodeHash] {
        &self.hashes
    }

    /// Stores the hashes for `user`, replacing any earlier set, and returns the codes
    /// to show.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn store<S: BackupCodeStore + ?Sized>(
        self,
        user: &MfaUserId,
        store: &S,
    ) -> Result<Vec<SecretString>> {
        store.replace(user, self.hashes).await?;
        Ok(self.codes)
    }
}

fn random_code() -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(BACKUP_CODE_LEN));
    let mut buf = Zeroizing::new([0u8; 32]);
    while out.len() < BACKUP_CODE_LEN {
        finsec_crypto::fill_random(buf.as_mut_slice()).map_err(|_| MfaError::Random)?;
        // Rejection sampling: 248 = 8 * 31, so `b % 31` is uniform for b < 248.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == BACKUP_CODE_LEN {
                break;
            }
            if let Some(&c) = BACKUP_CODE_ALPHABET.get(usize::from(b % 31)) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

fn display(raw: &[u8]) -> SecretString {
    let mut s = String::with_capacity(BACKUP_CODE_LEN + 2);
    for (i, &c) in raw.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push('-');
        }
        s.push(char::from(c));
    }
    SecretString::from(s)
}

fn normalize(input: &str) -> Result<Zeroizing<Vec<u8>>> {
    let mut out = Zeroizing::new(Vec::with_capacity(BACKUP_CODE_LEN));
    for c in input.chars() {
        if c == '-' || c == ' ' {
            continue;
        }
        let upper = c.to_ascii_uppercase();
        let Ok(byte) = u8::try_from(upper) else {
            return Err(MfaError::MalformedCode {
                reason: "contains a character outside the backup code alphabet",
            });
        };
        if !BACKUP_CODE_ALPHABET.contains(&byte) {
            return Err(MfaError::MalformedCode {
                reason: "contains a character outside the backup code alphabet",
            });
        }
        if out.len() == BACKUP_CODE_LEN {
            return Err(MfaError::MalformedCode {
                reason: "too many characters",
            });
        }
        out.push(byte);
    }
    if out.len() != BACKUP_CODE_LEN {
        return Err(MfaError::MalformedCode {
            reason: "too few characters",
        });
    }
    Ok(out)
}

/// Why a backup code was refused. Every one is a failed MFA attempt to count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackupCodeRejection {
    /// The input was not a backup code of the right shape.
    Malformed,
    /// No unused code of the user matches (wrong, or already used).
    Invalid,
}

impl fmt::Display for BackupCodeRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "backup code is malformed",
            Self::Invalid => "backup code does not match an unused code",
        })
    }
}

impl std::error::Error for BackupCodeRejection {}

impl CredentialRejection for BackupCodeRejection {
    fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "backup_code.malformed",
            Self::Invalid => "backup_code.invalid",
        }
    }
}

/// The result of redeeming a backup code: accepted (the code is now used up), or
/// rejected.
pub type BackupCodeOutcome = CredentialOutcome<(), BackupCodeRejection>;

/// Redeems `input` as a backup code of `user`, consuming it atomically.
///
/// # Errors
/// A storage failure; treat it as a failed login (fail closed).
pub async fn redeem_backup_code<S: BackupCodeStore + ?Sized>(
    key: &BackupCodeKey,
    user: &MfaUserId,
    input: &str,
    store: &S,
) -> Result<BackupCodeOutcome> {
    let Ok(normalized) = normalize(input) else {
        return Ok(CredentialOutcome::Rejected(BackupCodeRejection::Malformed));
    };
    let hash = key.hash(user, normalized.as_slice())?;
    if store.consume(user, &hash).await? {
        Ok(CredentialOutcome::Accepted(()))
    } else {
        Ok(CredentialOutcome::Rejected(BackupCodeRejection::Invalid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization() {
        let a = normalize("abcd-efgh-jkmn").unwrap();
        assert_eq!(a.as_slice(), b"ABCDEFGHJKMN");
        assert!(normalize("ABCD-EFGH-JKM0").is_err());
        assert!(normalize("ABCD-EFGH-JKMO").is_err());
        assert!(normalize("ABCD-EFGH-JKMI").is_err());
        assert!(normalize("ABCD-EFGH-JKML").is_err());
        assert!(normalize("ABCD-EFGH-JKM1").is_err());
        assert!(normalize("ABCD-EFGH-JKM").is_err());
        assert!(normalize("ABCD-EFGH-JKMNP").is_err());
        assert!(normalize("ABCD-EFGH-JKMÄ").is_err());
    }

    #[test]
    fn alphabet_is_unambiguous() {
        for bad in b"0O1IL" {
            assert!(!BACKUP_CODE_ALPHABET.contains(bad));
        }
        let mut sorted = BACKUP_CODE_ALPHABET.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), 31);
    }

    #[test]
    fn debug_hides_key_and_codes() {
        let key = BackupCodeKey::new([7u8; 32]);
        assert_eq!(format!("{key:?}"), "BackupCodeKey([REDACTED])");
        let user = MfaUserId::new("u").unwrap();
        let codes = BackupCodes::generate(&key, &user).unwrap();
        let text = format!("{codes:?}");
        for c in codes.expose_codes() {
            assert!(!text.contains(c));
        }
    }
}
