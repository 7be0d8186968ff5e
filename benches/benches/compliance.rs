//! finsec-compliance: one transaction report, and one best-execution assessment.
//!
//! - `mifid_xml`: `XmlReportWriter::write` of one equity report (typed values formatted,
//!   amounts checked against the schema's digits, every text escaped) next to raw
//!   `quick_xml::Writer` writing the very same events, prepared beforehand: the floor for
//!   those bytes with that crate. Both into a reused in-memory buffer.
//! - `mifid_read`: `XmlReportReader` reading that record back into a `Report` next to raw
//!   `quick_xml::Reader` walking the same record's events without building anything.
//! - `mifid_build`: a report built from its parts (LEIs, ISIN, MIC, currency parsed, the
//!   client's CONCAT computed) and then `check`ed, and `concat` alone.
//! - `best_execution`: `BestExecution::assess` of one execution (effective price with
//!   costs, slippage against arrival and reference, breach) next to the same arithmetic in
//!   raw `rust_decimal`.
#![expect(
    clippy::unwrap_used,
    reason = "benchmark setup and measured calls: any failure must abort the run"
)]

use std::hint::black_box;
use std::io::Cursor;

use criterion::{Criterion, criterion_group, criterion_main};
use finsec_compliance::mifid::best_execution::{BestExecution, Execution, Side};
use finsec_compliance::mifid::concat::concat;
use finsec_compliance::mifid::store::testing::{FIRM_LEI, ISINS, sample_report};
use finsec_compliance::mifid::xml::{AppHeader, XmlReportReader, XmlReportWriter};
use finsec_compliance::mifid::{CheckContext, InstrumentClass, Report};
use quick_xml::events::Event;
use rust_decimal::Decimal;
use time::macros::{date, datetime};

fn header() -> AppHeader {
    AppHeader::new(
        FIRM_LEI.parse().unwrap(),
        "FR".parse().unwrap(),
        "BENCH",
        datetime!(2026-12-03 18:00 UTC),
    )
    .unwrap()
}

fn report() -> Report {
    let at = datetime!(2026-12-03 09:30:15.123 UTC);
    Report::New(Box::new(sample_report(
        1,
        ISINS[0],
        Decimal::from(100),
        Decimal::new(5512, 2),
        at,
    )))
}

/// The events of one `Tx` as the writer writes it, owned.
fn tx_events(report: &Report) -> Vec<Event<'static>> {
    let mut w = XmlReportWriter::new(Vec::new(), &header()).unwrap();
    w.write(report).unwrap();
    let xml = String::from_utf8(w.finish().unwrap()).unwrap();
    let start = xml.find("<Tx>").unwrap();
    let end = xml.rfind("</Tx>").unwrap() + "</Tx>".len();
    let mut reader = quick_xml::Reader::from_str(&xml[start..end]);
    let mut events = Vec::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            e => events.push(e.into_owned()),
        }
    }
    events
}

fn bench_xml(c: &mut Criterion) {
    let report = report();
    let events = tx_events(&report);
    let mut g = c.benchmark_group("mifid_xml");
    g.bench_function("finsec_write_record", |b| {
        let mut w = XmlReportWriter::new(Vec::with_capacity(1 << 20), &header()).unwrap();
        let mut n = 0u32;
        b.iter(|| {
            w.write(black_box(&report)).unwrap();
            n += 1;
            if n == 1000 {
                // Keep the buffer from growing without bound: start a new file.
                w = XmlReportWriter::new(Vec::with_capacity(1 << 20), &header()).unwrap();
                n = 0;
            }
        });
    });
    g.bench_function("raw_quick_xml_same_events", |b| {
        let mut w = quick_xml::Writer::new(Vec::with_capacity(1 << 20));
        let mut n = 0u32;
        b.iter(|| {
            for e in black_box(&events) {
                w.write_event(e.borrow()).unwrap();
            }
            n += 1;
            if n == 1000 {
                w = quick_xml::Writer::new(Vec::with_capacity(1 << 20));
                n = 0;
            }
        });
    });
    g.finish();

    let mut w = XmlReportWriter::new(Vec::new(), &header()).unwrap();
    w.write(&report).unwrap();
    let file = w.finish().unwrap();
    let tx_start = std::str::from_utf8(&file).unwrap().find("<Tx>").unwrap();
    let mut g = c.benchmark_group("mifid_read");
    g.bench_function("finsec_read_file_of_one", |b| {
        b.iter(|| {
            let mut r = XmlReportReader::new(Cursor::new(black_box(&file))).unwrap();
            r.next().unwrap().unwrap()
        });
    });
    g.bench_function("raw_quick_xml_walk_record", |b| {
        let tx = file.get(tx_start..).unwrap();
        b.iter(|| {
            let mut reader = quick_xml::NsReader::from_reader(black_box(tx));
            let mut buf = Vec::new();
            let mut n = 0u32;
            loop {
                match reader.read_resolved_event_into(&mut buf).unwrap() {
                    (_, Event::End(e)) if e.local_name().as_ref() == b"Tx" && n > 0 => break,
                    (_, Event::Eof) => break,
                    _ => n += 1,
                }
                buf.clear();
            }
            n
        });
    });
    g.finish();
}

fn bench_build(c: &mut Criterion) {
    let now = datetime!(2026-12-03 18:00 UTC);
    let ctx = CheckContext::new(now, InstrumentClass::Equity);
    let mut g = c.benchmark_group("mifid_build");
    let mut i = 0u64;
    g.bench_function("build_and_check", |b| {
        b.iter(|| {
            i += 1;
            let r = sample_report(
                black_box(i),
                ISINS[0],
                Decimal::from(100),
                Decimal::new(5512, 2),
                datetime!(2026-12-03 09:30:15.123 UTC),
            );
            r.check(&ctx).unwrap();
            r
        });
    });
    g.bench_function("concat", |b| {
        let country = "DE".parse().unwrap();
        b.iter(|| {
            concat(
                country,
                date!(1980 - 07 - 15),
                black_box("Dr. Günter"),
                black_box("von der Voẞ"),
            )
            .unwrap()
        });
    });
    g.finish();
}

fn bench_best_execution(c: &mut Criterion) {
    let at = datetime!(2026-12-03 10:00 UTC);
    let e = Execution {
        id: "E1".into(),
        order_id: "O1".into(),
        instrument: ISINS[0].parse().unwrap(),
        class: InstrumentClass::Equity,
        venue: "XPAR".parse().unwrap(),
        side: Side::Buy,
        quantity: Decimal::from(100),
        price: Decimal::new(10050, 2),
        currency: "EUR".parse().unwrap(),
        costs: Decimal::from(10),
        order_quantity: Decimal::from(100),
        ordered_at: at,
        executed_at: at,
        arrival_price: Some(Decimal::new(10010, 2)),
    };
    let check = BestExecution::default();
    let reference = Some(Decimal::from(100));
    let mut g = c.benchmark_group("best_execution");
    g.bench_function("finsec_assess", |b| {
        b.iter(|| check.assess(black_box(&e), black_box(reference)).unwrap())
    });
    g.bench_function("raw_decimal_same_arithmetic", |b| {
        let bps = Decimal::from(10_000);
        let threshold = Decimal::from(50);
        b.iter(|| {
            let e = black_box(&e);
            let per_unit = e.costs / e.quantity;
            let eff = e.price + per_unit;
            let arrival = e.arrival_price.unwrap();
            let reference = black_box(reference).unwrap();
            let s1 = ((eff - arrival) * bps / arrival).round_dp(4);
            let s2 = ((eff - reference) * bps / reference).round_dp(4);
            let costs = (per_unit * bps / e.price).round_dp(4);
            (s1, s2, costs, s1 > threshold || s2 > threshold)
        });
    });
    g.finish();
}

criterion_group!(benches, bench_xml, bench_build, bench_best_execution);
criterion_main!(benches);
