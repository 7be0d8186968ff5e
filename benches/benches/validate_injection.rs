//! finsec-validate's SQL injection detector next to the original design's regex blacklist.
//!
//! - `sqli_detect`: `SqlInjectionDetector::analyze` (tokenize in three contexts, then the
//!   grammar rules) against the blacklist
//!   `(?i)\b(DELETE|DROP|EXEC(UTE)?|INSERT|SELECT|UNION|UPDATE)\b|--|#|/\*|\*/|\x00|\x1a`
//!   compiled once with the `regex` crate, on 32 B and 1 KiB inputs, benign (finance text,
//!   the common case) and attack (a `UNION SELECT` payload). Throughput is in bytes.
//!
//! The two do not answer the same question (the blacklist's false-positive rate on benign
//! finance text is 24%), so this measures what the better answer costs.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup: any failure must abort the run"
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use finsec_validate::injection::SqlInjectionDetector;
use regex::Regex;

const BENIGN: &str =
    "Siobhan O'Brien, Union Pacific -- fill or kill; ref #4432, limit 101.25 EUR. ";
const ATTACK: &str = "1' UNION ALL SELECT iban, pin FROM accounts WHERE '1'='1'-- ";

/// `unit` repeated and cut to exactly `len` bytes (the units are ASCII).
fn sized(unit: &str, len: usize) -> String {
    unit.repeat(len / unit.len() + 1)
        .get(..len)
        .unwrap()
        .to_owned()
}

fn blacklist() -> Regex {
    Regex::new(
        r"(?i)\b(DELETE|DROP|EXEC(UTE)?|INSERT|SELECT|UNION|UPDATE)\b|--|#|/\*|\*/|\x00|\x1a",
    )
    .unwrap()
}

fn bench_sqli(c: &mut Criterion) {
    let detector = SqlInjectionDetector::default();
    let re = blacklist();
    let mut group = c.benchmark_group("sqli_detect");
    group.measurement_time(Duration::from_secs(3));
    group.warm_up_time(Duration::from_secs(1));
    for (kind, unit) in [("benign", BENIGN), ("attack", ATTACK)] {
        for len in [32usize, 1024] {
            let input = sized(unit, len);
            group.throughput(Throughput::Bytes(len as u64));
            let label = format!("{kind}/{len}");
            group.bench_with_input(BenchmarkId::new("tokenizer", &label), &input, |b, s| {
                b.iter(|| black_box(detector.analyze(black_box(s)).is_sql_like()));
            });
            group.bench_with_input(
                BenchmarkId::new("regex_blacklist", &label),
                &input,
                |b, s| {
                    b.iter(|| black_box(re.is_match(black_box(s))));
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, bench_sqli);
criterion_main!(benches);
