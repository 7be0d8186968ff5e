//! The printable API key format.
//!
//! ```text
//! fsk_0123456789abcdef_<64 hex digits of secret><8 hex digits of CRC-32>
//! ```
//!
//! Byte by byte (all ASCII, 93 bytes in total):
//!
//! | bytes  | content                                                                   |
//! |--------|---------------------------------------------------------------------------|
//! | 0–3    | the fixed prefix `fsk_` ([`PREFIX`])                                      |
//! | 4–19   | the key id: 8 random bytes as 16 lowercase hex digits                     |
//! | 20     | `_`                                                                       |
//! | 21–84  | the secret: 32 random bytes (256 bits) as 64 lowercase hex digits         |
//! | 85–92  | CRC-32 (IEEE 802.3, the zlib/PNG one) of bytes 0–84, 8 lowercase hex digits, big-endian |
//!
//! Lowercase hex keeps the key one "word" for double-click selection, safe in URLs,
//! headers and shell lines, and free of look-alike characters. Uppercase digits are
//! refused so every key has exactly one spelling.
//!
//! Secret scanners (and the CRC check) can recognise a key with
//!
//! ```text
//! \bfsk_[0-9a-f]{16}_[0-9a-f]{72}\b
//! ```
//!
//! ([`SCANNER_REGEX`]); the CRC lets a scanner drop random matches offline. The checksum
//! is not a security control (anyone can compute it): it only rejects typos and truncated
//! keys before any store lookup.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::{ApiKeyError, ApiKeyRejection, RejectReason, Result};

/// The fixed prefix of every key.
pub const PREFIX: &str = "fsk_";
/// Length of a printable key in bytes.
pub const KEY_LEN: usize = PREFIX.len() + ID_HEX_LEN + 1 + SECRET_HEX_LEN + CRC_HEX_LEN;
/// A regular expression that matches printable keys, for secret scanners.
pub const SCANNER_REGEX: &str = r"\bfsk_[0-9a-f]{16}_[0-9a-f]{72}\b";
/// Bytes of a key id.
pub const ID_LEN: usize = 8;
/// Bytes of a secret (256 bits).
pub const SECRET_LEN: usize = 32;

const ID_HEX_LEN: usize = ID_LEN * 2;
const SECRET_HEX_LEN: usize = SECRET_LEN * 2;
const CRC_HEX_LEN: usize = 8;
/// Domain separation for the stored secret hash.
const HASH_DOMAIN: &[u8] = b"finsec-api-key-v1\0";

/// The public, non-secret identifier of an API key (8 random bytes).
///
/// Shown to users and written to logs; it is how a store finds the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyId([u8; ID_LEN]);

impl ApiKeyId {
    /// An id from its bytes.
    pub const fn from_bytes(bytes: [u8; ID_LEN]) -> Self {
        Self(bytes)
    }

    /// The id's bytes.
    pub const fn as_bytes(&self) -> &[u8; ID_LEN] {
        &self.0
    }

    /// A fresh random id.
    ///
    /// # Errors
    /// [`ApiKeyError::Random`] if the operating system's random source fails.
    pub fn random() -> Result<Self> {
        let mut bytes = [0u8; ID_LEN];
        finsec_crypto::fill_random(&mut bytes).map_err(|_| ApiKeyError::Random)?;
        Ok(Self(bytes))
    }
}

impl fmt::Debug for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyId({self})")
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl FromStr for ApiKeyId {
    type Err = ApiKeyError;

    /// Parses 16 lowercase hex digits.
    fn from_str(s: &str) -> Result<Self> {
        let bytes =
            decode_hex::<ID_LEN>(s.as_bytes()).ok_or(ApiKeyError::InvalidId { len: s.len() })?;
        Ok(Self(bytes))
    }
}

/// The SHA-256 hash of a key's secret, the only form in which a store keeps it.
///
/// `SHA-256("finsec-api-key-v1\0" || key id || secret)`. A fast hash is right here: the
/// secret is 256 uniformly random bits, so there is nothing to brute-force or look up in
/// a dictionary, and a slow password hash would only hand attackers a CPU-exhaustion lever
/// on every request. Binding the key id means a hash copied to another row does not verify.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// A hash from its stored bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The stored bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn compute(id: &ApiKeyId, secret: &[u8; SECRET_LEN]) -> Self {
        let mut h = Sha256::new();
        h.update(HASH_DOMAIN);
        h.update(id.as_bytes());
        h.update(secret);
        Self(h.finalize().into())
    }

    /// Constant-time equality, compared as four 64-bit words (`subtle` hides each word's
    /// comparison from the optimiser; byte by byte it costs as much as the rest of a lookup).
    pub(crate) fn ct_eq(&self, other: &Self) -> bool {
        let words = |h: &[u8; 32]| {
            let mut out = [0u64; 4];
            for (word, chunk) in out.iter_mut().zip(h.chunks_exact(8)) {
                let mut bytes = [0u8; 8];
                bytes.copy_from_slice(chunk);
                *word = u64::from_le_bytes(bytes);
            }
            out
        };
        let (a, b) = (words(&self.0), words(&other.0));
        a.iter()
            .zip(&b)
            .fold(subtle::Choice::from(1), |equal, (x, y)| equal & x.ct_eq(y))
            .into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// A freshly generated key: the printable form (shown to the user once) and its id and
/// hash (stored).
pub struct GeneratedKey {
    /// The id.
    pub id: ApiKeyId,
    /// The hash to store.
    pub hash: SecretHash,
    /// The printable key, to hand to the user once and never store.
    pub printable: SecretString,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl GeneratedKey {
    /// Generates a key with a fresh random id and secret.
    ///
    /// # Errors
    /// [`ApiKeyError::Random`] if the operating system's random source fails.
    pub fn generate() -> Result<Self> {
        let id = ApiKeyId::random()?;
        let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
        finsec_crypto::fill_random(secret.as_mut()).map_err(|_| ApiKeyError::Random)?;
        Ok(Self::from_parts(id, &secret))
    }

    /// The key with this id and secret (deterministic; for tests and vectors).
    pub fn from_parts(id: ApiKeyId, secret: &[u8; SECRET_LEN]) -> Self {
        let mut text = String::with_capacity(KEY_LEN);
        text.push_str(PREFIX);
        text.push_str(&id.to_string());
        text.push('_');
        for b in secret {
            // Writing to a String cannot fail.
            let _ = write!(text, "{b:02x}");
        }
        let crc = crc32(text.as_bytes());
        let _ = write!(text, "{crc:08x}");
        Self {
            id,
            hash: SecretHash::compute(&id, secret),
            printable: SecretString::from(text),
        }
    }
}

/// A key that passed the format and checksum checks: its id and the hash of its secret.
///
/// The secret itself is hashed during parsing and wiped; only the hash is kept.
#[derive(Clone)]
pub struct ParsedApiKey {
    id: ApiKeyId,
    hash: SecretHash,
}

impl fmt::Debug for ParsedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedApiKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl ParsedApiKey {
    /// Parses a printable key, checking length, prefix, alphabet and checksum, without any
    /// store lookup.
    ///
    /// # Errors
    /// An [`ApiKeyRejection`] with reason [`RejectReason::Malformed`] or
    /// [`RejectReason::BadChecksum`]. The message never contains the input.
    pub fn parse(input: &str) -> Result<Self, ApiKeyRejection> {
        let reject = |reason| ApiKeyRejection::new(reason, None);
        let bytes = input.as_bytes();
        if bytes.len() != KEY_LEN || !bytes.starts_with(PREFIX.as_bytes()) {
            return Err(reject(RejectReason::Malformed));
        }
        let rest = bytes.get(PREFIX.len()..).unwrap_or_default();
        let (id_hex, rest) = rest.split_at_checked(ID_HEX_LEN).unwrap_or_default();
        let (sep, rest) = rest.split_at_checked(1).unwrap_or_default();
        let (secret_hex, crc_hex) = rest.split_at_checked(SECRET_HEX_LEN).unwrap_or_default();
        if sep != b"_" {
            return Err(reject(RejectReason::Malformed));
        }
        let id = decode_hex::<ID_LEN>(id_hex).ok_or_else(|| reject(RejectReason::Malformed))?;
        let secret = Zeroizing::new(
            decode_hex::<SECRET_LEN>(secret_hex).ok_or_else(|| reject(RejectReason::Malformed))?,
        );
        let crc = decode_hex::<4>(crc_hex).ok_or_else(|| reject(RejectReason::Malformed))?;
        let body = bytes.get(..KEY_LEN - CRC_HEX_LEN).unwrap_or_default();
        if crc32(body) != u32::from_be_bytes(crc) {
            return Err(reject(RejectReason::BadChecksum));
        }
        let id = ApiKeyId(id);
        Ok(Self {
            id,
            hash: SecretHash::compute(&id, &secret),
        })
    }

    /// Parses a key held in a secret string.
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn parse_secret(input: &SecretString) -> Result<Self, ApiKeyRejection> {
        Self::parse(input.expose_secret())
    }

    /// The key id.
    pub fn id(&self) -> ApiKeyId {
        self.id
    }

    /// The hash of the presented secret.
    pub fn hash(&self) -> &SecretHash {
        &self.hash
    }
}

/// `N` bytes from exactly `2N` lowercase hex digits (uppercase is refused, so that every
/// key has one spelling).
fn decode_hex<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    const_hex::decode_to_slice(s, &mut out).ok()?;
    // Every byte is now a hex digit; refuse `A`-`F` (no early exit, so it vectorises).
    if s.iter()
        .fold(false, |upper, c| upper | c.is_ascii_uppercase())
    {
        return None;
    }
    Some(out)
}

/// CRC-32 (IEEE 802.3, the zlib/PNG one: reflected, polynomial 0xEDB88320), as the key's
/// checksum uses it.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn uppercase_hex_is_refused_even_with_a_matching_checksum() {
        let id = ApiKeyId::from_bytes([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        let key = GeneratedKey::from_parts(id, &[0xab; SECRET_LEN]);
        let text = key.printable.expose_secret();
        assert!(ParsedApiKey::parse(text).is_ok());
        // The same digits in uppercase, with the checksum recomputed over them: only the
        // alphabet is wrong.
        for (start, end) in [(4, 20), (21, 85)] {
            let mut body = text[..85].to_owned();
            body.replace_range(start..end, &text[start..end].to_ascii_uppercase());
            let forged = format!("{body}{:08x}", crc32(body.as_bytes()));
            match ParsedApiKey::parse(&forged) {
                Err(r) => {
                    assert_eq!(r.reason(), RejectReason::Malformed, "{start}..{end}");
                }
                other => panic!("{start}..{end}: {other:?}"),
            }
        }
    }

    #[test]
    fn known_key_layout() {
        let id = ApiKeyId::from_bytes([0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        let key = GeneratedKey::from_parts(id, &[0x11; SECRET_LEN]);
        let text = key.printable.expose_secret();
        assert_eq!(text.len(), KEY_LEN);
        assert_eq!(KEY_LEN, 93);
        assert!(text.starts_with("fsk_0123456789abcdef_1111"));
        let body = &text[..85];
        assert_eq!(&text[85..], format!("{:08x}", crc32(body.as_bytes())));
    }
}
