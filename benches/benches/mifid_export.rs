//! Whole MiFIR exports and a best-execution review, for throughput and peak memory.
//!
//! `cargo bench -p finsec-benches --bench mifid_export` runs each case in a child process of
//! its own (this binary again, told which case by `FINSEC_BENCH_CASE`), so the peak RSS
//! reported (the kernel's `VmHWM`) is that case's alone:
//!
//! - `export N` for N = 100,000 and 1,000,000: N reports built from their parts (identifiers
//!   parsed, the client's CONCAT computed) and checked, then written as one auth.016 file
//!   through a `BufWriter` to a temporary file; then the file is read back with
//!   `XmlReportReader`, every record counted. Rates are per phase: build + check, XML write,
//!   read back.
//! - `review 1000000`: `BestExecution::review` of 1,000,000 executions over 7 venues and two
//!   classes against an in-memory market data source, generated on the fly.
//!
//! Memory must not grow with N: the writer and the reader hold one record at a time.
#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::indexing_slicing,
    reason = "a benchmark program: it prints its figures and aborts on any failure"
)]

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::process::Command;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use finsec_compliance::mifid::best_execution::{BestExecution, Execution, MarketDataSource, Side};
use finsec_compliance::mifid::store::testing::{FIRM_LEI, ISINS, sample_report};
use finsec_compliance::mifid::xml::{AppHeader, XmlReportReader, XmlReportWriter};
use finsec_compliance::mifid::{CheckContext, InstrumentClass, Report};
use finsec_validate::identifiers::Isin;
use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::macros::datetime;

const CASE: &str = "FINSEC_BENCH_CASE";

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib / 1024.0
}

fn rate(n: u64, d: Duration) -> String {
    #[expect(clippy::cast_precision_loss, reason = "a rate for display")]
    let r = n as f64 / d.as_secs_f64();
    format!("{:.0}", r)
}

fn export(n: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.xml");
    let header = AppHeader::new(
        FIRM_LEI.parse().unwrap(),
        "FR".parse().unwrap(),
        "BENCH-EXPORT",
        datetime!(2026-12-03 18:00 UTC),
    )
    .unwrap();
    let ctx = CheckContext::new(datetime!(2026-12-04 00:00 UTC), InstrumentClass::Equity);
    let day = datetime!(2026-12-03 08:00 UTC);
    let mut out =
        XmlReportWriter::new(BufWriter::new(File::create(&path).unwrap()), &header).unwrap();
    let (mut build, mut write) = (Duration::ZERO, Duration::ZERO);
    for i in 0..n {
        let t0 = Instant::now();
        let at = day + time::Duration::milliseconds(i64::try_from(i % 30_000_000).unwrap());
        let qty = Decimal::from(1 + i % 1000);
        let price = Decimal::new(5000 + i64::try_from(i % 997).unwrap(), 2);
        let isin = ISINS[usize::try_from(i % 2).unwrap()];
        let r = sample_report(i, isin, qty, price, at);
        r.check(&ctx).unwrap();
        let report = Report::New(Box::new(r));
        let t1 = Instant::now();
        out.write(&report).unwrap();
        let t2 = Instant::now();
        build += t1 - t0;
        write += t2 - t1;
    }
    let t = Instant::now();
    out.finish().unwrap();
    write += t.elapsed();
    let bytes = std::fs::metadata(&path).unwrap().len();
    let t = Instant::now();
    let reader = XmlReportReader::new(BufReader::new(File::open(&path).unwrap())).unwrap();
    let mut read = 0u64;
    for r in reader {
        r.unwrap();
        read += 1;
    }
    let read_time = t.elapsed();
    assert_eq!(read, n);
    println!(
        "export {n}: build+check {} tx/s, XML write {} tx/s, read back {} tx/s, file {} MiB, peak RSS {:.1} MiB",
        rate(n, build),
        rate(n, write),
        rate(n, read_time),
        bytes / (1 << 20),
        peak_rss_mib()
    );
}

#[derive(Debug)]
struct Prices(HashMap<Isin, Decimal>);

#[async_trait]
impl MarketDataSource for Prices {
    async fn price_at(
        &self,
        instrument: &Isin,
        _at: OffsetDateTime,
    ) -> finsec_compliance::Result<Option<Decimal>> {
        Ok(self.0.get(instrument).copied())
    }
}

fn review(n: u64) {
    const VENUES: [&str; 7] = ["XPAR", "XAMS", "XETR", "XLON", "XMIL", "XMAD", "XBRU"];
    let venues: Vec<_> = VENUES.iter().map(|v| v.parse().unwrap()).collect();
    let isins: Vec<Isin> = ISINS.iter().map(|i| i.parse().unwrap()).collect();
    let eur = "EUR".parse().unwrap();
    let at = datetime!(2026-12-03 09:00 UTC);
    let executions = (0..n).map(move |i| {
        let k = usize::try_from(i % 7).unwrap();
        let bond = i % 5 == 0;
        Execution {
            id: format!("E{i}"),
            order_id: format!("O{}", i / 3),
            instrument: isins[usize::from(bond)],
            class: if bond {
                InstrumentClass::Bond
            } else {
                InstrumentClass::Equity
            },
            venue: venues[k],
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
            quantity: Decimal::from(1 + i % 500),
            price: Decimal::new(10_000 + i64::try_from(i % 113).unwrap() - 56, 2),
            currency: eur,
            costs: Decimal::new(i64::try_from(i % 3).unwrap(), 0),
            order_quantity: Decimal::from(1500),
            ordered_at: at,
            executed_at: at + time::Duration::microseconds(i64::try_from(i % 50_000).unwrap()),
            arrival_price: Some(Decimal::from(100)),
        }
    });
    let prices = Prices(
        ISINS
            .iter()
            .map(|i| (i.parse().unwrap(), Decimal::from(100)))
            .collect(),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let t = Instant::now();
    let review = rt
        .block_on(BestExecution::default().review(executions, &prices))
        .unwrap();
    let took = t.elapsed();
    assert_eq!(review.assessed, n);
    println!(
        "review {n}: {} executions/s, {} breaches, {} classes, peak RSS {:.1} MiB",
        rate(n, took),
        review.breaches.len(),
        review.classes.len(),
        peak_rss_mib()
    );
}

fn main() {
    if let Ok(case) = std::env::var(CASE) {
        let (what, n) = case.split_once(' ').unwrap();
        let n: u64 = n.parse().unwrap();
        match what {
            "export" => export(n),
            "review" => review(n),
            _ => unreachable!("unknown case {case}"),
        }
        return;
    }
    // `cargo test --benches` runs bench binaries with `--bench` absent: keep that quick.
    let full = std::env::args().any(|a| a == "--bench");
    let cases: &[&str] = if full {
        &["export 100000", "export 1000000", "review 1000000"]
    } else {
        &["export 1000", "review 1000"]
    };
    let me = std::env::current_exe().unwrap();
    for case in cases {
        let out = Command::new(&me).env(CASE, case).output().unwrap();
        assert!(
            out.status.success(),
            "{case}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
}
