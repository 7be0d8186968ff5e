//! Events the sink tests share.

use finsec_audit::{AuditEvent, EncodedEvent, EventTime, Outcome, Precision};
use time::OffsetDateTime;

/// `n` fresh `order.place` events, encoded, with resources `o-0`, `o-1`, ...
pub(crate) fn events(n: usize) -> Vec<EncodedEvent> {
    let t = EventTime::new(OffsetDateTime::now_utc(), Precision::Microsecond, "system").unwrap();
    (0..n)
        .map(|i| {
            let e = AuditEvent::new("order.place", Outcome::Success, t.clone())
                .unwrap()
                .with_resource("order", &format!("o-{i}"))
                .unwrap();
            EncodedEvent::new(&e).unwrap()
        })
        .collect()
}
