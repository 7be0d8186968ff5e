//! Bytes as a canonical audit event, raw and spliced into a valid encoding.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use finsec_audit::{Actor, AuditEvent, Detail, EventTime, Outcome, Precision};
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

/// A valid encoding with every kind of member, for the spliced half of the inputs.
static VALID: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let t = EventTime::new(
        datetime!(2026-12-06 10:00:00.5 UTC),
        Precision::Millisecond,
        "system",
    )
    .expect("valid time");
    AuditEvent::new("order.place", Outcome::Success, t)
        .and_then(|e| {
            e.with_actor(Actor {
                user: Some("u-1".into()),
                ip: Some("203.0.113.9".into()),
                ..Actor::default()
            })
        })
        .and_then(|e| e.with_resource("order", "o-9"))
        .and_then(|e| e.with_request_id("r-1"))
        .map(|e| e.with_duration_us(12))
        .and_then(|e| e.with_detail("legs", Detail::List(vec![Detail::Int(-1), Detail::Null])))
        .and_then(|e| e.with_detail("quantity", "100.5"))
        .and_then(|e| e.to_canonical())
        .expect("a valid event")
});

/// `canonical_id` (a one-pass recogniser with the full parse behind it) decides exactly
/// as `from_canonical` and names the same id.
fn agree(bytes: &[u8]) {
    let full = AuditEvent::from_canonical(bytes).ok().map(|e| e.id());
    assert_eq!(AuditEvent::canonical_id(bytes).ok(), full);
}

fuzz_target!(|data: &[u8]| {
    agree(data);
    // The first two bytes pick a place in the valid encoding; the rest replaces a byte
    // range there of the same length as the rest, or is inserted when the third is odd.
    if let [a, b, mode, rest @ ..] = data {
        let valid = &*VALID;
        let at = usize::from(u16::from_le_bytes([*a, *b])) % valid.len();
        let mut spliced = valid[..at].to_vec();
        spliced.extend_from_slice(rest);
        let skip = if mode % 2 == 0 { rest.len() } else { 0 };
        spliced.extend_from_slice(valid.get(at + skip..).unwrap_or_default());
        agree(&spliced);
    }
});
