//! Arbitrary text as a printable API key: parsing never panics, and nothing that parses
//! differs from a well-formed key by its printed form.
#![no_main]
#![forbid(unsafe_code)]

use finsec_auth::api_keys::ParsedApiKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(parsed) = ParsedApiKey::parse(text) {
        // Whatever parses carries the fixed prefix and a well-formed id.
        assert!(text.starts_with("fsk_"), "{text:?} parsed without the prefix");
        let id = parsed.id().to_string();
        assert!(text.contains(&id), "{text:?} parsed to an id it does not contain");
    }
});
