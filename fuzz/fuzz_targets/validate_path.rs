//! Arbitrary text as a user path: no panic, and every accepted path stays under the base
//! with no `..`, root or prefix component.
#![no_main]
#![forbid(unsafe_code)]

use std::path::{Component, Path};

use finsec_validate::SafePath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let base = Path::new("/srv/finsec/reports");
    if let Ok(joined) = SafePath::join(base, text) {
        let path = joined.as_path();
        assert!(path.starts_with(base), "{path:?} left the base");
        let rest = path.strip_prefix(base).expect("under base");
        assert!(
            rest.components().all(|c| matches!(c, Component::Normal(_))),
            "{rest:?} has a non-normal component"
        );
    }
});
