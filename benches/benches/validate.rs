//! finsec-validate: parsed identifiers and composite request validation.
//!
//! - `identifiers`: strict `FromStr` of `Symbol` (default rules), `Isin` (shape, Luhn check
//!   digit, country-prefix lookup), `Lei` (shape, ISO 7064 MOD 97-10), `Mic` (shape),
//!   `Currency` (binary search in the compiled ISO 4217 table) and `Cfi` (table lookup), each
//!   in ns/op; `price` (`Price::parse` under tick-size rules) next to the raw
//!   `rust_decimal::Decimal::from_str_exact` it wraps.
//! - `request`: `OrderRequest::validate` for a valid limit order (every field parsed, the
//!   `ValidatedOrder` built) and for an order with five bad fields (every error collected
//!   with its path, code and message).
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use finsec_validate::identifiers::{Cfi, Currency, Isin, Lei, Mic, Symbol};
use finsec_validate::numbers::{Price, PriceRules};
use finsec_validate::request::{OrderRequest, OrderRules};
use rust_decimal::Decimal;

fn bench_identifiers(c: &mut Criterion) {
    let mut g = c.benchmark_group("identifiers");
    g.bench_function("symbol", |b| {
        b.iter(|| black_box("BRK.B").parse::<Symbol>().unwrap())
    });
    g.bench_function("isin", |b| {
        b.iter(|| black_box("US0378331005").parse::<Isin>().unwrap())
    });
    g.bench_function("lei", |b| {
        b.iter(|| black_box("5493001KJTIIGC8Y1R12").parse::<Lei>().unwrap())
    });
    g.bench_function("mic", |b| {
        b.iter(|| black_box("XNYS").parse::<Mic>().unwrap())
    });
    g.bench_function("currency", |b| {
        b.iter(|| black_box("EUR").parse::<Currency>().unwrap())
    });
    g.bench_function("cfi", |b| {
        b.iter(|| black_box("ESVUFR").parse::<Cfi>().unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("price");
    let rules = PriceRules::new(Some(Decimal::new(5, 2)), 2).unwrap();
    g.bench_function("finsec_price_parse", |b| {
        b.iter(|| Price::parse(black_box("101.25"), &rules).unwrap())
    });
    g.bench_function("raw_decimal_from_str_exact", |b| {
        b.iter(|| Decimal::from_str_exact(black_box("101.25")).unwrap())
    });
    g.finish();
}

fn bench_request(c: &mut Criterion) {
    let mut g = c.benchmark_group("request");
    let rules = OrderRules::default();
    let valid = OrderRequest {
        symbol: "BRK.B".into(),
        side: "buy".into(),
        order_type: "limit".into(),
        quantity: "100".into(),
        limit_price: Some("412.50".into()),
        account_id: "ACC-001".into(),
    };
    g.bench_function("order_valid", |b| {
        b.iter(|| black_box(&valid).validate(&rules).unwrap())
    });
    let invalid = OrderRequest {
        symbol: "brk.b".into(),
        side: "BUY".into(),
        order_type: "limit".into(),
        quantity: "-5".into(),
        limit_price: Some("1e3".into()),
        account_id: "acc 001".into(),
    };
    g.bench_function("order_five_errors", |b| {
        b.iter(|| black_box(&invalid).validate(&rules).unwrap_err())
    });
    g.finish();
}

criterion_group!(benches, bench_identifiers, bench_request);
criterion_main!(benches);
