//! finsec-validate HTML sanitising next to the ammonia call it wraps.
//!
//! - `html_notes_4k`: `HtmlSanitizer::sanitize` under the `notes` policy (per-process cached
//!   `ammonia::Builder`, input size check, wrapping in `SafeHtml`) against raw
//!   `ammonia::Builder::clean(..).to_string()` with a builder configured identically
//!   (`HtmlPolicy::Notes.ammonia_builder()`, built once outside the loop). Input: a ~4 KiB
//!   order note with paragraphs, lists, links, inline emphasis and some markup the policy
//!   removes (a script, event handlers, style attributes, an image). Throughput in bytes of
//!   input.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use finsec_validate::{HtmlPolicy, HtmlSanitizer};

/// A realistic order note of about 4 KiB.
fn note() -> String {
    let block = concat!(
        "<p>Client <b>ACME Capital</b> asked to <em>rebalance</em> the portfolio before the ",
        "quarterly review. See <a href=\"https://example.com/research/q1?ref=desk\">Q1 research</a> ",
        "and mail <a href=\"mailto:desk@example.com\">the desk</a> with questions.</p>\n",
        "<ul><li>Sell <strong>1,000</strong> XS0000000001 at limit 101.25</li>",
        "<li>Buy <i>500</i> US0378331005 <u>at market</u></li>",
        "<li onclick=\"steal()\">Hedge with <code>EURUSD</code> forward</li></ul>\n",
        "<ol><li>Check best execution</li><li>Report under MiFID II</li></ol>\n",
        "<p style=\"color:red\">Do not forget the <a href=\"javascript:alert(1)\">form</a>.",
        "<img src=x onerror=alert(1)><script>alert('x')</script><br></p>\n",
    );
    let mut note = String::new();
    while note.len() < 4096 - block.len() {
        note.push_str(block);
    }
    note
}

fn html_notes(c: &mut Criterion) {
    let note = note();
    let sanitizer = HtmlSanitizer::new(HtmlPolicy::Notes);
    let raw = HtmlPolicy::Notes.ammonia_builder();
    // Same configuration, same output.
    assert_eq!(
        sanitizer.sanitize(&note).unwrap().as_str(),
        raw.clean(&note).to_string()
    );

    let mut group = c.benchmark_group("html_notes_4k");
    group.throughput(Throughput::Bytes(note.len() as u64));
    group.bench_function("finsec_sanitize", |b| {
        b.iter(|| sanitizer.sanitize(black_box(&note)).unwrap());
    });
    group.bench_function("raw_ammonia_clean", |b| {
        b.iter(|| raw.clean(black_box(&note)).to_string());
    });
    group.finish();
}

criterion_group!(benches, html_notes);
criterion_main!(benches);
