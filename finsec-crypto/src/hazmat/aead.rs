//! AES-256-GCM with an explicit, caller-chosen nonce.

use crate::backend::{AeadBackend, DataCipher};
use crate::error::{Error, Result};

/// AES-256 key length in bytes.
pub const AES_GCM_KEY_LEN: usize = 32;

/// The only nonce length accepted, in bytes (96 bits, the length GCM is designed for).
pub const AES_GCM_NONCE_LEN: usize = 12;

/// The only tag length produced and accepted, in bytes (128 bits).
pub const AES_GCM_TAG_LEN: usize = 16;

/// Largest plaintext one AES-GCM invocation may encrypt: 2^39 - 256 bits, that is
/// 2^36 - 32 bytes (NIST SP 800-38D, section 5.2.1.1).
pub const AES_GCM_MAX_PLAINTEXT: u64 = (1 << 36) - 32;

/// Largest associated data the AES-GCM implementation accepts, in bytes.
pub(crate) const AES_GCM_MAX_AAD: u64 = 1 << 36;

/// Checks the key and nonce lengths and expands the key for `backend`.
fn cipher(backend: AeadBackend, key: &[u8], nonce: &[u8]) -> Result<(DataCipher, [u8; 12])> {
    if key.len() != AES_GCM_KEY_LEN {
        return Err(Error::invalid_length("key", AES_GCM_KEY_LEN, key.len()));
    }
    let nonce: [u8; AES_GCM_NONCE_LEN] = nonce
        .try_into()
        .map_err(|_| Error::invalid_length("nonce", AES_GCM_NONCE_LEN, nonce.len()))?;
    Ok((DataCipher::from_slice(backend, key)?, nonce))
}

fn check_aad(aad: &[u8]) -> Result<()> {
    let size = aad.len() as u64;
    if size > AES_GCM_MAX_AAD {
        return Err(Error::TooLarge {
            size,
            limit: AES_GCM_MAX_AAD,
        });
    }
    Ok(())
}

/// Encrypts `plaintext` with AES-256-GCM under `key` and `nonce`, authenticating `aad`.
/// Returns the ciphertext followed by the 16-byte tag. Uses [`AeadBackend::default`].
///
/// The caller is responsible for never using the same nonce twice with the same key:
/// a repeated nonce reveals the XOR of the two plaintexts and lets an attacker forge tags.
///
/// # Errors
/// [`Error::InvalidLength`] (`what` = `"key"` or `"nonce"`) unless the key is 32 bytes and
/// the nonce 12 bytes; [`Error::TooLarge`] if the plaintext exceeds
/// [`AES_GCM_MAX_PLAINTEXT`] or the associated data exceeds the implementation's limit.
pub fn aes256gcm_seal(key: &[u8], nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    aes256gcm_seal_with(AeadBackend::default(), key, nonce, aad, plaintext)
}

/// [`aes256gcm_seal`] with the given backend; every backend gives the same bytes.
///
/// # Errors
/// As [`aes256gcm_seal`].
pub fn aes256gcm_seal_with(
    backend: AeadBackend,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let (cipher, nonce) = cipher(backend, key, nonce)?;
    let size = plaintext.len() as u64;
    if size > AES_GCM_MAX_PLAINTEXT {
        return Err(Error::TooLarge {
            size,
            limit: AES_GCM_MAX_PLAINTEXT,
        });
    }
    check_aad(aad)?;
    let mut out = Vec::with_capacity(plaintext.len() + AES_GCM_TAG_LEN);
    out.extend_from_slice(plaintext);
    let tag = cipher.seal_in_place(&nonce, aad, &mut out)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Decrypts and authenticates `ciphertext_and_tag` (ciphertext followed by a 16-byte tag)
/// with AES-256-GCM under `key` and `nonce`, with associated data `aad`. Uses
/// [`AeadBackend::default`].
///
/// Nothing is returned unless the tag verifies; the comparison is constant time.
///
/// # Errors
/// [`Error::InvalidLength`] (`what` = `"key"` or `"nonce"`) unless the key is 32 bytes and
/// the nonce 12 bytes; [`Error::Truncated`] if the input is shorter than the tag;
/// [`Error::TooLarge`] if the associated data exceeds the implementation's limit;
/// [`Error::Decryption`] if the tag does not verify.
pub fn aes256gcm_open(
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>> {
    aes256gcm_open_with(AeadBackend::default(), key, nonce, aad, ciphertext_and_tag)
}

/// [`aes256gcm_open`] with the given backend; every backend opens what any other sealed.
///
/// # Errors
/// As [`aes256gcm_open`].
pub fn aes256gcm_open_with(
    backend: AeadBackend,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<Vec<u8>> {
    let (cipher, nonce) = cipher(backend, key, nonce)?;
    let Some(split) = ciphertext_and_tag.len().checked_sub(AES_GCM_TAG_LEN) else {
        return Err(Error::Truncated {
            field: "tag",
            offset: 0,
            needed: AES_GCM_TAG_LEN,
            available: ciphertext_and_tag.len(),
        });
    };
    check_aad(aad)?;
    let (data, tag) = ciphertext_and_tag.split_at(split);
    let tag: &[u8; AES_GCM_TAG_LEN] = tag.try_into().map_err(|_| Error::Decryption)?;
    let mut out = data.to_vec();
    cipher.open_in_place(&nonce, aad, &mut out, tag)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test case 14.
    #[test]
    fn known_answer_test_case_14() {
        let key = [0u8; 32];
        let nonce = [0u8; 12];
        let pt = [0u8; 16];
        let out = aes256gcm_seal(&key, &nonce, &[], &pt).unwrap();
        assert_eq!(
            hex::encode(&out),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
        );
        assert_eq!(aes256gcm_open(&key, &nonce, &[], &out).unwrap(), pt);
    }

    #[test]
    fn refuses_wrong_sizes() {
        let k = [7u8; 32];
        let n = [1u8; 12];
        for bad in [0usize, 16, 24, 31, 33, 64] {
            let key = vec![0u8; bad];
            assert!(matches!(
                aes256gcm_seal(&key, &n, b"", b"x"),
                Err(Error::InvalidLength { what: "key", actual, .. }) if actual == bad
            ));
            assert!(matches!(
                aes256gcm_open(&key, &n, b"", &[0u8; 32]),
                Err(Error::InvalidLength { what: "key", .. })
            ));
        }
        for bad in [0usize, 8, 11, 13, 16, 128] {
            let nonce = vec![0u8; bad];
            assert!(matches!(
                aes256gcm_seal(&k, &nonce, b"", b"x"),
                Err(Error::InvalidLength { what: "nonce", actual, .. }) if actual == bad
            ));
            assert!(matches!(
                aes256gcm_open(&k, &nonce, b"", &[0u8; 32]),
                Err(Error::InvalidLength { what: "nonce", .. })
            ));
        }
        for short in 0..AES_GCM_TAG_LEN {
            assert!(matches!(
                aes256gcm_open(&k, &n, b"", &vec![0u8; short]),
                Err(Error::Truncated { field: "tag", available, .. }) if available == short
            ));
        }
    }

    #[test]
    fn tamper_and_wrong_aad_fail() {
        let k = [7u8; 32];
        let n = [1u8; 12];
        let ct = aes256gcm_seal(&k, &n, b"ctx", b"hello").unwrap();
        assert_eq!(ct.len(), 5 + AES_GCM_TAG_LEN);
        assert!(matches!(
            aes256gcm_open(&k, &n, b"other", &ct),
            Err(Error::Decryption)
        ));
        let mut bad = ct.clone();
        if let Some(b) = bad.first_mut() {
            *b ^= 1;
        }
        assert!(matches!(
            aes256gcm_open(&k, &n, b"ctx", &bad),
            Err(Error::Decryption)
        ));
        assert_eq!(aes256gcm_open(&k, &n, b"ctx", &ct).unwrap(), b"hello");
    }
}
