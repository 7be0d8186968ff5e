//! Arbitrary text through the blind index normalisers and value parsers.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use finsec_crypto::Key256;
use finsec_crypto::blind_index::{BlindIndex, BlindIndexValue, Normalizer};
use libfuzzer_sys::fuzz_target;

static INDEXES: LazyLock<Vec<BlindIndex>> = LazyLock::new(|| {
    let master = Key256::from_bytes([3; 32]);
    [
        Normalizer::Exact,
        Normalizer::Trimmed,
        Normalizer::CaseInsensitive,
        Normalizer::Email,
    ]
    .into_iter()
    .map(|n| BlindIndex::new(&master, "fuzz.column", n, 16).expect("valid parameters"))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let _ = BlindIndexValue::from_bytes(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = BlindIndexValue::from_hex(text);
    let _ = BlindIndexValue::from_base64url(text);
    for index in INDEXES.iter() {
        if let Ok(value) = index.compute(text) {
            // Normalisation is idempotent: the normalised text indexes the same.
            let normal = index.normalizer().apply(text).expect("normalised once");
            assert_eq!(index.compute(&normal).expect("normalised twice"), value);
        }
    }
});
