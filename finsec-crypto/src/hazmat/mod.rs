//! Low-level primitives without the safety rails of the envelope API.
//!
//! These functions exist for conformance tests (Wycheproof, RFC vectors) and for callers
//! who know what they are doing. They take raw byte slices and leave the hard parts to the
//! caller: choosing a nonce that is never reused under the same key, binding context into
//! the associated data, storing parameters beside the ciphertext, and rotating keys.
//! [`Envelope`](crate::Envelope) does all of that for you; prefer it.
//!
//! Every function checks its sizes and returns [`Error`](crate::Error) rather than
//! panicking on bad input.

mod aead;

pub use aead::{AES_GCM_KEY_LEN, AES_GCM_MAX_PLAINTEXT, AES_GCM_NONCE_LEN, AES_GCM_TAG_LEN};
pub use aead::{aes256gcm_open, aes256gcm_open_with, aes256gcm_seal, aes256gcm_seal_with};

mod kdf;

pub use kdf::{HKDF_SHA256_MAX_LEN, HMAC_SHA256_MIN_TAG_LEN, PBKDF2_MAX_LEN, SHA256_LEN};
pub use kdf::{
    hkdf_sha256, hkdf_sha256_extract, hmac_sha256, hmac_sha256_verify, pbkdf2_hmac_sha256,
};
