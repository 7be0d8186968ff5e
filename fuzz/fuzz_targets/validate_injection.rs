//! Arbitrary bytes through the SQL injection detector: it must never panic.
#![no_main]
#![forbid(unsafe_code)]

use finsec_validate::SqlInjectionDetector;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let detector = SqlInjectionDetector::default();
    let bytes = detector.analyze_bytes(data);
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(detector.analyze(text).is_sql_like(), bytes.is_sql_like());
    }
});
