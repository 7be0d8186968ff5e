//! Arbitrary bytes as an encrypted stream: the header parser and the chunk reader must
//! refuse them without panicking, and no chunk may ever authenticate.
#![no_main]
#![forbid(unsafe_code)]

use std::io::Read;
use std::sync::LazyLock;

use finsec_crypto::{KeyName, Keyring, StreamDecryptor};
use libfuzzer_sys::fuzz_target;

static KEYRING: LazyLock<Keyring> = LazyLock::new(|| {
    let keyring = Keyring::new();
    keyring
        .create_key(&KeyName::new("files").expect("valid key name"))
        .expect("new keyring");
    keyring
});

fuzz_target!(|data: &[u8]| {
    if let Ok(mut reader) = StreamDecryptor::new(&*KEYRING, b"aad", data) {
        let mut out = Vec::new();
        assert!(
            reader.read_to_end(&mut out).is_err(),
            "forged stream decrypted"
        );
    }
});
