//! Raw HKDF-SHA256, HMAC-SHA256 and PBKDF2-HMAC-SHA256.
//!
//! [`kdf`](crate::kdf) builds the safe forms on top of these (random salts, stored
//! parameters, minimum costs); these functions take every input from the caller.

use hkdf::Hkdf;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::error::{Error, Result};
use crate::secret::SecretBytes;

/// Output size of HMAC-SHA256 and SHA-256, in bytes.
pub const SHA256_LEN: usize = 32;

/// Longest HKDF-SHA256 output (RFC 5869: 255 × HashLen = 8160 bytes).
pub const HKDF_SHA256_MAX_LEN: usize = 255 * SHA256_LEN;

/// Shortest tag [`hmac_sha256_verify`] accepts (128 bits). Shorter tags are refused: they
/// make forgery by guessing too cheap.
pub const HMAC_SHA256_MIN_TAG_LEN: usize = 16;

/// Longest PBKDF2 output [`pbkdf2_hmac_sha256`] produces (1 MiB). PBKDF2 itself allows far
/// more, but no key needs it and the bound refuses absurd allocations.
pub const PBKDF2_MAX_LEN: usize = 1 << 20;

/// SHA-256 block size; HMAC keys are hashed (if longer) and zero-padded to it.
const SHA256_BLOCK_LEN: usize = 64;

/// An HMAC-SHA256 instance keyed with `key`, built without a fallible constructor: the key
/// is reduced to one block exactly as RFC 2104 does (hashed if longer than a block, then
/// zero-padded), so any key length is accepted.
fn hmac_with_key(key: &[u8]) -> Hmac<Sha256> {
    let mut block = [0u8; SHA256_BLOCK_LEN];
    if key.len() > SHA256_BLOCK_LEN {
        let mut digest = Sha256::digest(key);
        for (dst, src) in block.iter_mut().zip(digest.iter()) {
            *dst = *src;
        }
        digest.as_mut_slice().zeroize();
    } else {
        for (dst, src) in block.iter_mut().zip(key.iter()) {
            *dst = *src;
        }
    }
    let mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    mac
}

/// HKDF-SHA256 (RFC 5869): extract with `salt` (an empty salt means HashLen zero bytes),
/// then expand with `info` to `len` bytes.
///
/// # Errors
/// [`Error::InvalidParameter`] if `len` is 0 or more than [`HKDF_SHA256_MAX_LEN`] (8160).
pub fn hkdf_sha256(ikm: &[u8], salt: &[u8], info: &[u8], len: usize) -> Result<SecretBytes> {
    if len == 0 || len > HKDF_SHA256_MAX_LEN {
        return Err(Error::InvalidParameter {
            name: "hkdf output length",
            reason: format!("{len} is outside 1..={HKDF_SHA256_MAX_LEN}"),
        });
    }
    let mut okm = vec![0u8; len];
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(info, &mut okm)
        .map_err(|_| Error::InvalidParameter {
            name: "hkdf output length",
            reason: format!("{len} is outside 1..={HKDF_SHA256_MAX_LEN}"),
        })?;
    Ok(SecretBytes::new(okm))
}

/// HKDF-Extract with SHA-256 (RFC 5869 section 2.2): the 32-byte pseudorandom key (PRK).
pub fn hkdf_sha256_extract(salt: &[u8], ikm: &[u8]) -> SecretBytes {
    let (mut prk, _) = Hkdf::<Sha256>::extract(Some(salt), ikm);
    let out = SecretBytes::new(prk.to_vec());
    prk.as_mut_slice().zeroize();
    out
}

/// HMAC-SHA256 (RFC 2104) of `msg` under `key` (any key length).
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; SHA256_LEN] {
    let mut mac = hmac_with_key(key);
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// Verifies an HMAC-SHA256 tag in constant time. A tag of 16 to 31 bytes is a truncated
/// tag and is compared against the left-most bytes of the MAC.
///
/// # Errors
/// [`Error::InvalidLength`] if the tag is shorter than [`HMAC_SHA256_MIN_TAG_LEN`] (16) or
/// longer than 32 bytes; [`Error::Decryption`] if the tag does not match.
pub fn hmac_sha256_verify(key: &[u8], msg: &[u8], tag: &[u8]) -> Result<()> {
    if tag.len() < HMAC_SHA256_MIN_TAG_LEN || tag.len() > SHA256_LEN {
        return Err(Error::invalid_length(
            "hmac tag",
            format!("{HMAC_SHA256_MIN_TAG_LEN} to {SHA256_LEN}"),
            tag.len(),
        ));
    }
    let mut full = hmac_sha256(key, msg);
    let ok = full
        .get(..tag.len())
        .is_some_and(|prefix| bool::from(prefix.ct_eq(tag)));
    full.zeroize();
    if ok { Ok(()) } else { Err(Error::Decryption) }
}

/// PBKDF2 with HMAC-SHA256 (RFC 8018) producing `len` bytes.
///
/// # Errors
/// [`Error::InvalidParameter`] if `iterations` is 0, or `len` is 0 or more than
/// [`PBKDF2_MAX_LEN`].
pub fn pbkdf2_hmac_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    len: usize,
) -> Result<SecretBytes> {
    if iterations == 0 {
        return Err(Error::InvalidParameter {
            name: "pbkdf2 iterations",
            reason: "must be at least 1".into(),
        });
    }
    if len == 0 || len > PBKDF2_MAX_LEN {
        return Err(Error::InvalidParameter {
            name: "pbkdf2 output length",
            reason: format!("{len} is outside 1..={PBKDF2_MAX_LEN}"),
        });
    }
    let mut out = vec![0u8; len];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    Ok(SecretBytes::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_keys_of_every_length_match_the_fallible_constructor() {
        for len in [0usize, 1, 31, 32, 63, 64, 65, 100, 200] {
            let key = vec![0xa5u8; len];
            let mut reference = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
            reference.update(b"message");
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(hmac_sha256(&key, b"message"), expected, "key length {len}");
        }
    }

    #[test]
    fn parameter_bounds() {
        assert!(matches!(
            hkdf_sha256(b"k", b"", b"", 0),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            hkdf_sha256(b"k", b"", b"", HKDF_SHA256_MAX_LEN + 1),
            Err(Error::InvalidParameter { .. })
        ));
        assert_eq!(
            hkdf_sha256(b"k", b"", b"", HKDF_SHA256_MAX_LEN)
                .unwrap()
                .len(),
            HKDF_SHA256_MAX_LEN
        );
        assert!(matches!(
            pbkdf2_hmac_sha256(b"p", b"s", 0, 32),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            pbkdf2_hmac_sha256(b"p", b"s", 1, 0),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            pbkdf2_hmac_sha256(b"p", b"s", 1, PBKDF2_MAX_LEN + 1),
            Err(Error::InvalidParameter { .. })
        ));
        let tag = hmac_sha256(b"k", b"m");
        assert!(hmac_sha256_verify(b"k", b"m", &tag).is_ok());
        assert!(hmac_sha256_verify(b"k", b"m", &tag[..16]).is_ok());
        assert!(matches!(
            hmac_sha256_verify(b"k", b"m", &tag[..15]),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            hmac_sha256_verify(b"k", b"m", &[tag.as_slice(), &[0]].concat()),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            hmac_sha256_verify(b"k", b"x", &tag),
            Err(Error::Decryption)
        ));
    }
}
