//! Arbitrary text through the text rules and both HTML policies: no panic, cleaning twice
//! changes nothing, and sanitised output never grows without bound.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use finsec_validate::{HtmlPolicy, HtmlSanitizer, TextRules};
use libfuzzer_sys::fuzz_target;

static RULES: LazyLock<TextRules> = LazyLock::new(TextRules::default);
static BASIC: LazyLock<HtmlSanitizer> = LazyLock::new(|| HtmlSanitizer::new(HtmlPolicy::Basic));
static NOTES: LazyLock<HtmlSanitizer> = LazyLock::new(|| HtmlSanitizer::new(HtmlPolicy::Notes));

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(clean) = RULES.clean(text) {
        let again = RULES.clean(clean.as_str()).expect("clean text stays clean");
        assert_eq!(again.as_str(), clean.as_str());
    }
    for sanitizer in [&*BASIC, &*NOTES] {
        let _ = sanitizer.sanitize(text);
    }
});
