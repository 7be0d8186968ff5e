//! Arbitrary text as a policy file in each format: loading must return a policy or an
//! error, never panic.
#![no_main]
#![forbid(unsafe_code)]

use finsec_rbac::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Policy::from_toml(text);
    let _ = Policy::from_yaml(text);
    let _ = Policy::from_json(text);
});
