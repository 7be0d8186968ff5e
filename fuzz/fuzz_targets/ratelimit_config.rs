//! Arbitrary text as a rate-limit configuration in TOML and JSON: loading never panics, and
//! every policy that loads has only valid quotas.
#![no_main]
#![forbid(unsafe_code)]

use finsec_ratelimit::policy::{Policies, PoliciesConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let configs = [
        toml::from_str::<PoliciesConfig>(text).ok(),
        serde_json::from_str::<PoliciesConfig>(text).ok(),
    ];
    for config in configs.into_iter().flatten() {
        if let Ok(policies) = Policies::from_config(&config) {
            for policy in policies.iter() {
                for quota in policy.quotas() {
                    assert!(quota.emission_interval_micros() >= 1);
                    assert!(quota.capacity() >= 1);
                }
            }
        }
    }
});
