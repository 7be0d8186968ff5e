//! Arbitrary bytes as a keyring document (plain JSON) and as a sealed keyring. Parsing must
//! refuse them with an error, never panic; a forged sealed document must never open.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use finsec_crypto::{Key256, Keyring, SealKey};
use libfuzzer_sys::fuzz_target;

// A master key, not a passphrase: a passphrase would run argon2id on every input.
static SEAL: LazyLock<SealKey> = LazyLock::new(|| SealKey::MasterKey(Key256::from_bytes([9; 32])));

fuzz_target!(|data: &[u8]| {
    if let Ok(keyring) = Keyring::from_json(data) {
        // Whatever parsed must serialise and parse back to the same key set.
        let again = Keyring::from_json(keyring.to_json().expect("serialise").expose_secret())
            .expect("reparse");
        assert_eq!(keyring.key_names(), again.key_names());
    }
    assert!(
        Keyring::open_sealed(data, &SEAL).is_err(),
        "forged sealed keyring opened"
    );
});
