//! Arbitrary bytes and text through every envelope entry point that reads a ciphertext:
//! header parsing, decryption (binary and base64url) and re-wrapping. None may panic;
//! random input must never decrypt.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use finsec_crypto::envelope::Header;
use finsec_crypto::{Envelope, KeyName, Keyring};
use libfuzzer_sys::fuzz_target;

static ENVELOPE: LazyLock<Envelope<Keyring>> = LazyLock::new(|| {
    let keyring = Keyring::new();
    let pii = KeyName::new("pii").expect("valid key name");
    keyring.create_key(&pii).expect("new keyring");
    keyring.rotate(&pii).expect("rotation");
    Envelope::new(keyring, pii)
});

fuzz_target!(|data: &[u8]| {
    let env = &*ENVELOPE;
    let _ = Header::parse(data);
    assert!(
        env.decrypt(data, b"aad").is_err(),
        "forged ciphertext decrypted"
    );
    let _ = env.rewrap(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(
            env.decrypt_str(text, b"aad").is_err(),
            "forged text decrypted"
        );
        let _ = env.rewrap_str(text);
    }
});
