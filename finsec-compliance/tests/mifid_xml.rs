//! auth.016 XML: every report shape round-trips through the writer and the reader, the
//! written files validate against ESMA's schemas with `xmllint`, and mutated files do not.
//!
//! The schemas are not in the repository (their notice forbids redistribution): they are
//! read from `FINSEC_MIFID_XSD_DIR` through `finsec_testkit::mifid::xsd_dir`: without them
//! the schema tests say on stderr that they did not run, and with `FINSEC_REQUIRE_XSD=1`
//! (CI) they fail.

#![cfg(test)]

use std::io::Cursor;
use std::path::Path;
use std::process::Command;

use finsec_compliance::Error;
use finsec_compliance::mifid::clock::{Granularity, TradingTime};
use finsec_compliance::mifid::concat::concat;
use finsec_compliance::mifid::store::testing::{BROKER_LEI, FIRM_LEI, ISINS, sample_report};
use finsec_compliance::mifid::xml::{AppHeader, XmlReportReader, XmlReportWriter};
use finsec_compliance::mifid::{
    AccountOwner, Counterparty, DecisionMaker, Executor, FirmPerson, IdScheme, NaturalPerson,
    OtcPostTrade, Party, PersonId, Price, Quantity, Report, ShortSelling, TradingCapacity,
    Transmission, Waiver,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use time::macros::{date, datetime};

fn header() -> AppHeader {
    AppHeader::new(
        FIRM_LEI.parse().unwrap(),
        "FR".parse().unwrap(),
        "FILE-2026-12-03-001",
        datetime!(2026-12-03 18:00 UTC),
    )
    .unwrap()
}

fn person(first: &str, last: &str) -> NaturalPerson {
    let id = concat("FR".parse().unwrap(), date!(1975 - 06 - 30), first, last).unwrap();
    NaturalPerson::new(first, last, date!(1975 - 06 - 30), id).unwrap()
}

/// One report of every shape the writer knows.
fn shapes() -> Vec<Report> {
    let at = datetime!(2026-12-03 09:30:15.123456 UTC);
    let base = sample_report(1, ISINS[0], Decimal::from(100), Decimal::new(5512, 2), at);
    let new = |r| Report::New(Box::new(r));
    let mut out = vec![new(base.clone())];

    // Dealing on own account against a venue, microseconds, a short sale with waivers.
    let mut deal = base.clone();
    deal.reference = "T2".parse().unwrap();
    deal.capacity = TradingCapacity::Deal;
    deal.buyer = Counterparty::single(Party::Mic("XPAR".parse().unwrap()), None);
    deal.seller = Counterparty::single(
        Party::Lei(FIRM_LEI.parse().unwrap()),
        Some("FR".parse().unwrap()),
    );
    deal.trading_time = TradingTime::new(at, Granularity::Microsecond);
    deal.short_selling = Some(ShortSelling::Sesh);
    deal.waivers = vec![Waiver::Size, Waiver::Rfpt];
    deal.investment_decision = None;
    out.push(new(deal));

    // Off venue, joint account, represented by a person and an entity, transmitted,
    // names that need escaping and non-Latin letters, price pending, seconds.
    let mut otc = base.clone();
    otc.reference = "T3".parse().unwrap();
    otc.venue = "XOFF".parse().unwrap();
    otc.venue_transaction_id = None;
    otc.branch_country = None;
    otc.trading_time = TradingTime::new(at, Granularity::Second);
    otc.buyer = Counterparty {
        owners: vec![
            AccountOwner {
                party: Party::Person(person("Zoë & <Léa>", "O'Brian \"Jr\"")),
                branch_country: None,
            },
            AccountOwner {
                party: Party::Person(person("Ødegård", "Иванов Müller")),
                branch_country: Some("DE".parse().unwrap()),
            },
        ],
        represented: false,
        decision_makers: Vec::new(),
    }
    .represented_by(vec![
        DecisionMaker::Person(person("Anne-Marie", "de la Tour")),
        DecisionMaker::Lei(BROKER_LEI.parse().unwrap()),
    ]);
    otc.transmission = Transmission {
        transmitted: true,
        transmitting_buyer: Some(BROKER_LEI.parse().unwrap()),
        transmitting_seller: None,
    };
    otc.price = Price::Pending {
        currency: Some("EUR".parse().unwrap()),
    };
    otc.otc_post_trade = vec![OtcPostTrade::Lrgs, OtcPostTrade::Benc];
    otc.executor = Executor::Person(FirmPerson {
        branch_country: "IE".parse().unwrap(),
        id: PersonId::new(IdScheme::Passport, "IEPA1234567").unwrap(),
    });
    out.push(new(otc));

    // A bond: nominal quantity, percentage price, net amount, client decided (NORE), the
    // aggregate client account.
    let mut bond = base.clone();
    bond.reference = "T4".parse().unwrap();
    bond.quantity = Quantity::Nominal {
        value: Decimal::from(250_000),
        currency: "EUR".parse().unwrap(),
    };
    bond.price = Price::Percentage(Decimal::new(99_875, 3));
    bond.net_amount = Some(Decimal::new(24_968_750, 2));
    bond.buyer = Counterparty::single(Party::Internal, None);
    bond.executor = Executor::Client;
    bond.investment_decision = None;
    bond.commodity_derivative = Some(false);
    bond.securities_financing = true;
    out.push(new(bond));

    // Negative monetary price, monetary quantity, yield and basis points, no price.
    for (i, price) in [
        Price::Monetary {
            value: Decimal::new(-125, 2),
            currency: "USD".parse().unwrap(),
        },
        Price::Yield(Decimal::new(-325, 3)),
        Price::BasisPoints(Decimal::new(1505, 1)),
        Price::NotApplicable { currency: None },
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = base.clone();
        r.reference = format!("P{i}").parse().unwrap();
        r.price = price;
        r.quantity = Quantity::Monetary {
            value: Decimal::new(1_000_005, 1),
            currency: "USD".parse().unwrap(),
        };
        out.push(new(r));
    }

    out.push(Report::Cancel(base.clone().into_cancel()));
    out
}

trait IntoCancel {
    fn into_cancel(self) -> finsec_compliance::mifid::Cancellation;
}

impl IntoCancel for finsec_compliance::mifid::TransactionReport {
    fn into_cancel(self) -> finsec_compliance::mifid::Cancellation {
        Report::New(Box::new(self)).cancellation()
    }
}

fn write(reports: &[Report]) -> Vec<u8> {
    let mut w = XmlReportWriter::new(Vec::new(), &header()).unwrap();
    for r in reports {
        w.write(r).unwrap();
    }
    assert_eq!(w.count(), u64::try_from(reports.len()).unwrap());
    w.finish().unwrap()
}

fn read(xml: &[u8]) -> (AppHeader, Vec<Report>) {
    let reader = XmlReportReader::new(Cursor::new(xml)).unwrap();
    let header = reader.header().clone();
    let reports = reader.collect::<Result<Vec<_>, _>>().unwrap();
    (header, reports)
}

#[test]
fn every_shape_round_trips_field_for_field() {
    let reports = shapes();
    assert_eq!(reports.len(), 9);
    let xml = write(&reports);
    let (h, back) = read(&xml);
    assert_eq!(h, header());
    assert_eq!(back.len(), reports.len());
    for (a, b) in reports.iter().zip(&back) {
        assert_eq!(a, b);
    }
    let text = String::from_utf8(xml).unwrap();
    assert!(text.contains("Zoë &amp; &lt;Léa&gt;"), "names are escaped");
    assert!(
        text.contains("<Sgn>false</Sgn>"),
        "a negative price carries its sign"
    );
}

/// Validates `xml` against head.003 + head.001 + auth.016 with xmllint; `Ok` or the
/// validator's complaint.
fn validate(dir: &Path, xml: &[u8]) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let schema = tmp.path().join("report.xsd");
    let import = |ns: &str, file: &str| {
        format!(
            "  <xs:import namespace=\"urn:iso:std:iso:20022:tech:xsd:{ns}\" schemaLocation=\"{}\"/>\n",
            dir.join(file).display()
        )
    };
    let wrapper = format!(
        "<xs:schema xmlns:xs=\"http://www.w3.org/2001/XMLSchema\">\n{}{}{}</xs:schema>\n",
        import("head.003.001.01", "head.003.001.01.xsd"),
        import("head.001.001.01", "head.001.001.01_ESMAUG_1.0.0.xsd"),
        import(
            "auth.016.001.01",
            "auth.016.001.01_ESMAUG_Reporting_1.1.0.xsd"
        ),
    );
    std::fs::write(&schema, wrapper).unwrap();
    let file = tmp.path().join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("xmllint runs (Debian libxml2-utils; .ci/run installs it)");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn written_reports_validate_against_the_esma_schemas() {
    let Some(dir) =
        finsec_testkit::mifid::xsd_dir("written_reports_validate_against_the_esma_schemas")
    else {
        return;
    };
    let reports = shapes();
    validate(&dir, &write(&reports)).unwrap();
    // Each record alone too (a file of one cancellation, of one bond, ...).
    for r in &reports {
        validate(&dir, &write(std::slice::from_ref(r))).unwrap_or_else(|e| panic!("{r:?}: {e}"));
    }
}

#[test]
fn mutated_reports_fail_validation() {
    let Some(dir) = finsec_testkit::mifid::xsd_dir("mutated_reports_fail_validation") else {
        return;
    };
    let xml = String::from_utf8(write(&shapes())).unwrap();
    validate(&dir, xml.as_bytes()).unwrap();
    let mutations: [(&str, &str, &str); 8] = [
        (
            "capacity code",
            "<TradgCpcty>AOTC</TradgCpcty>",
            "<TradgCpcty>XXXX</TradgCpcty>",
        ),
        (
            "LEI length",
            &format!("<ExctgPty>{FIRM_LEI}</ExctgPty>"),
            &format!("<ExctgPty>{FIRM_LEI}X</ExctgPty>"),
        ),
        (
            "missing indicator",
            "<InvstmtPtyInd>true</InvstmtPtyInd>",
            "",
        ),
        ("local time", ".123Z</TradDt>", ".123+01:00</TradDt>"),
        (
            "lower-case ISIN",
            "<Id>FR0000120271</Id>",
            "<Id>fr0000120271</Id>",
        ),
        ("negative units", "<Unit>100</Unit>", "<Unit>-100</Unit>"),
        ("wrong namespace", "auth.016.001.01\"", "auth.016.001.02\""),
        (
            "unknown element",
            "<SctiesFincgTxInd>",
            "<Extra>1</Extra><SctiesFincgTxInd>",
        ),
    ];
    let mut ran = 0;
    for (what, from, to) in mutations {
        assert!(xml.contains(from), "{what}: the file has {from}");
        let mutated = xml.replacen(from, to, 1);
        assert!(
            validate(&dir, mutated.as_bytes()).is_err(),
            "{what}: the mutated file validated"
        );
        ran += 1;
    }
    assert_eq!(ran, 8);
}

#[test]
fn amounts_the_schema_cannot_hold_are_refused_before_writing() {
    let at = datetime!(2026-12-03 09:30 UTC);
    let mut r = sample_report(9, ISINS[0], Decimal::from(1), Decimal::ONE, at);
    r.price = Price::Monetary {
        value: Decimal::new(1, 14),
        currency: "EUR".parse().unwrap(),
    };
    let mut w = XmlReportWriter::new(Vec::new(), &header()).unwrap();
    let err = w.write(&Report::New(Box::new(r.clone()))).unwrap_err();
    assert!(
        matches!(err, Error::Encode { field: "price", .. }),
        "{err:?}"
    );
    r.price = Price::Monetary {
        value: Decimal::ONE,
        currency: "EUR".parse().unwrap(),
    };
    r.quantity = Quantity::Units(Decimal::ZERO);
    assert!(w.write(&Report::New(Box::new(r))).is_err());
    assert_eq!(w.count(), 0);
    assert!(matches!(w.finish(), Err(Error::Encode { field: "Tx", .. })));
}

#[test]
fn hostile_or_broken_input_is_refused_with_a_position() {
    let xml = String::from_utf8(write(&shapes())).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("truncated", xml[..xml.len() / 2].to_owned()),
        (
            "doctype",
            xml.replacen(
                "<BizData",
                "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><BizData",
                1,
            ),
        ),
        (
            "entity",
            xml.replacen("<FrstNm>Jean</FrstNm>", "<FrstNm>&e;</FrstNm>", 1),
        ),
        (
            "foreign namespace",
            xml.replacen("<Tx><New>", "<Tx><New xmlns=\"urn:evil\">", 1),
        ),
        (
            "unknown element",
            xml.replacen("<SctiesFincgTxInd>", "<Extra/><SctiesFincgTxInd>", 1),
        ),
        ("bad LEI", xml.replacen(FIRM_LEI, "5493001KJTIIGC8Y1R13", 1)),
        (
            "two choices",
            xml.replacen("<Clnt>NORE</Clnt>", "<Clnt>NORE</Clnt><Algo>A</Algo>", 1),
        ),
        ("trailing content", format!("{xml}<More/>")),
        (
            "deep",
            xml.replacen(
                "<FrstNm>Jean</FrstNm>",
                &format!("<FrstNm>{}{}</FrstNm>", "<a>".repeat(40), "</a>".repeat(40)),
                1,
            ),
        ),
        (
            "long text",
            xml.replacen(
                "<FrstNm>Jean</FrstNm>",
                &format!("<FrstNm>{}</FrstNm>", "J".repeat(5000)),
                1,
            ),
        ),
        ("not xml", "hello".to_owned()),
    ];
    let mut ran = 0;
    for (what, input) in &cases {
        let result = XmlReportReader::new(Cursor::new(input.as_bytes()))
            .and_then(|r| r.collect::<Result<Vec<_>, _>>());
        let err = result.expect_err(what);
        assert!(matches!(err, Error::Parse { .. }), "{what}: {err:?}");
        ran += 1;
    }
    assert_eq!(ran, 11);
}

#[test]
fn debug_output_hides_personal_data() {
    let p = person("Jean", "Dupont");
    let shown = format!("{p:?} {:?}", p.id());
    assert!(!shown.contains("Jean") && !shown.contains("Dupont") && !shown.contains("1975"));
    assert!(!shown.contains(p.id().expose()));
    let report = sample_report(
        1,
        ISINS[0],
        Decimal::ONE,
        Decimal::ONE,
        datetime!(2026-12-03 09:30 UTC),
    );
    let shown = format!("{report:?}");
    assert!(!shown.contains("Jean") && !shown.contains("DUPON") && !shown.contains("FR1234567890"));
}

fn name() -> impl Strategy<Value = String> {
    // Letters, Latin-1 and beyond, and the XML specials, never empty or padded.
    "[A-Za-zÀ-ÿА-я&<>\"' -]{0,30}"
        .prop_map(|s| format!("A{}", s.trim()))
        .prop_filter("no trailing space", |s| s.trim() == s)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn generated_reports_round_trip(
        first in name(),
        last in name(),
        qty in 1u64..1_000_000_000,
        qty_scale in 0u32..6,
        price in 1i64..10_000_000_000,
        price_scale in 0u32..10,
        micros in 0i64..86_400_000_000,
        granularity in 0u8..3,
        deal in any::<bool>(),
    ) {
        let at = datetime!(2026-12-03 00:00 UTC) + time::Duration::microseconds(micros);
        let g = [Granularity::Microsecond, Granularity::Millisecond, Granularity::Second][usize::from(granularity)];
        let mut r = sample_report(7, ISINS[1], Decimal::new(i64::try_from(qty).unwrap(), qty_scale), Decimal::new(price, price_scale), at);
        r.trading_time = TradingTime::new(at, g);
        r.buyer = Counterparty::single(Party::Person(person(&first, &last)), None);
        if deal {
            r.capacity = TradingCapacity::Deal;
            r.seller = Counterparty::single(Party::Lei(FIRM_LEI.parse().unwrap()), None);
        }
        let reports = vec![Report::New(Box::new(r))];
        let (_, back) = read(&write(&reports));
        prop_assert_eq!(back, reports);
    }
}

#[test]
fn a_person_id_round_trips_each_scheme() {
    for (scheme, value) in [
        (IdScheme::NationalId, "FI010190-123A"),
        (IdScheme::Passport, "LV12-345"),
        (IdScheme::Concat, "FR19750630JEAN#DUPON"),
    ] {
        let id = PersonId::new(scheme, value).unwrap();
        let mut r = sample_report(
            5,
            ISINS[0],
            Decimal::ONE,
            Decimal::ONE,
            datetime!(2026-12-03 09:30 UTC),
        );
        r.executor = Executor::Person(FirmPerson {
            branch_country: "FI".parse().unwrap(),
            id,
        });
        let reports = vec![Report::New(Box::new(r))];
        let xml = write(&reports);
        assert_eq!(read(&xml).1, reports);
        if let Some(dir) = finsec_testkit::mifid::xsd_dir("a_person_id_round_trips_each_scheme") {
            validate(&dir, &xml).unwrap();
        }
    }
    for bad in [
        "XX123",
        "FR",
        "FR12345678901234567890123456789012345",
        "FRabc",
        "DE-1",
    ] {
        assert!(PersonId::new(IdScheme::NationalId, bad).is_err(), "{bad}");
    }
    assert!(PersonId::new(IdScheme::Concat, "FR19750630jean#DUPON").is_err());
    assert!(PersonId::new(IdScheme::Concat, "FR19750630#####DUPON").is_err());
}
