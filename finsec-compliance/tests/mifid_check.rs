//! The rules across fields: each broken alone is reported with its field and code, and
//! several broken together are all reported.

#![cfg(test)]

use finsec_compliance::Error;
use finsec_compliance::mifid::clock::{Granularity, TradingTime};
use finsec_compliance::mifid::concat::concat;
use finsec_compliance::mifid::store::testing::{BROKER_LEI, FIRM_LEI, ISINS, sample_report};
use finsec_compliance::mifid::{
    CheckContext, Counterparty, DecisionMaker, InstrumentClass, NaturalPerson, Party, Price,
    Quantity, TradingCapacity, TransactionReport, Waiver,
};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::macros::{date, datetime};

const NOW: OffsetDateTime = datetime!(2026-12-03 12:00 UTC);

fn base() -> TransactionReport {
    sample_report(
        1,
        ISINS[0],
        Decimal::from(10),
        Decimal::new(5512, 2),
        datetime!(2026-12-03 09:30 UTC),
    )
}

fn ctx() -> CheckContext {
    CheckContext::new(NOW, InstrumentClass::Equity)
}

/// The `(field, code)` of every issue, or an empty list when the report passes.
fn issues(r: &TransactionReport, ctx: &CheckContext) -> Vec<(&'static str, &'static str)> {
    match r.check(ctx) {
        Ok(()) => Vec::new(),
        Err(Error::Rejected(i)) => i.0.iter().map(|i| (i.field, i.code)).collect(),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fn person(first: &str) -> NaturalPerson {
    let id = concat(
        "DE".parse().unwrap(),
        date!(1960 - 02 - 01),
        first,
        "Schmidt",
    )
    .unwrap();
    NaturalPerson::new(first, "Schmidt", date!(1960 - 02 - 01), id).unwrap()
}

#[test]
fn the_sample_passes() {
    assert_eq!(issues(&base(), &ctx()), []);
}

#[test]
fn each_rule_names_its_field() {
    type Case = (
        &'static str,
        fn(&mut TransactionReport),
        (&'static str, &'static str),
    );
    let cases: Vec<Case> = vec![
        (
            "represented without decision maker",
            |r| r.buyer.represented = true,
            ("buyer.decision_makers", "missing"),
        ),
        (
            "decision maker without representation",
            |r| {
                r.seller.decision_makers = vec![DecisionMaker::Lei(BROKER_LEI.parse().unwrap())];
            },
            ("seller.decision_makers", "unexpected"),
        ),
        (
            "own decision maker",
            |r| {
                let Party::Person(p) = r.buyer.owners[0].party.clone() else {
                    unreachable!()
                };
                r.buyer = r
                    .buyer
                    .clone()
                    .represented_by(vec![DecisionMaker::Person(p)]);
            },
            ("buyer.decision_makers", "self_represented"),
        ),
        (
            "venue trade without venue id",
            |r| r.venue_transaction_id = None,
            ("venue_transaction_id", "missing"),
        ),
        (
            "off venue with a venue id",
            |r| r.venue = "XOFF".parse().unwrap(),
            ("venue_transaction_id", "unexpected"),
        ),
        (
            "dealing without being a party",
            |r| r.capacity = TradingCapacity::Deal,
            ("capacity", "deal_not_party"),
        ),
        (
            "agency as a party",
            |r| {
                r.seller = Counterparty::single(Party::Lei(FIRM_LEI.parse().unwrap()), None);
            },
            ("capacity", "party_not_deal"),
        ),
        (
            "percentage price for a share",
            |r| r.price = Price::Percentage(Decimal::from(99)),
            ("price", "type"),
        ),
        (
            "nominal quantity for a share",
            |r| {
                r.quantity = Quantity::Nominal {
                    value: Decimal::from(1000),
                    currency: "EUR".parse().unwrap(),
                };
            },
            ("quantity", "type"),
        ),
        (
            "zero quantity",
            |r| r.quantity = Quantity::Units(Decimal::ZERO),
            ("quantity", "not_positive"),
        ),
        (
            "too many price decimals",
            |r| {
                r.price = Price::Monetary {
                    value: Decimal::new(1, 14),
                    currency: "EUR".parse().unwrap(),
                };
            },
            ("price", "digits"),
        ),
        (
            "net amount for a share",
            |r| r.net_amount = Some(Decimal::from(551)),
            ("net_amount", "not_debt"),
        ),
        (
            "future trade",
            |r| {
                r.trading_time =
                    TradingTime::new(datetime!(2026-12-03 12:00:01 UTC), Granularity::Millisecond);
            },
            ("trading_time", "future"),
        ),
        (
            "voice granularity for electronic trading",
            |r| {
                r.trading_time =
                    TradingTime::new(datetime!(2026-12-03 09:30 UTC), Granularity::Second);
            },
            ("trading_time", "granularity"),
        ),
        (
            "transmitting firm without transmission",
            |r| {
                r.transmission.transmitting_seller = Some(BROKER_LEI.parse().unwrap());
            },
            ("transmission", "not_transmitted"),
        ),
        (
            "same buyer and seller",
            |r| r.seller = r.buyer.clone(),
            ("seller", "same_party"),
        ),
        (
            "waiver off venue",
            |r| {
                r.venue = "XOFF".parse().unwrap();
                r.venue_transaction_id = None;
                r.waivers = vec![Waiver::Size];
            },
            ("waivers", "off_venue"),
        ),
        (
            "INTC with another owner",
            |r| {
                r.buyer.owners.push(r.buyer.owners[0].clone());
                r.buyer.owners[0].party = Party::Internal;
            },
            ("buyer.owners", "internal_not_alone"),
        ),
        (
            "no owner",
            |r| r.seller.owners.clear(),
            ("seller.owners", "missing"),
        ),
        (
            "commodity flag on a share",
            |r| r.commodity_derivative = Some(true),
            ("commodity_derivative", "not_a_commodity_derivative"),
        ),
    ];
    let mut ran = 0;
    for (what, break_it, expected) in cases {
        let mut r = base();
        break_it(&mut r);
        assert_eq!(issues(&r, &ctx()), [expected], "{what}");
        ran += 1;
    }
    assert_eq!(ran, 20);
}

#[test]
fn every_problem_is_collected() {
    let mut r = base();
    r.venue_transaction_id = None;
    r.capacity = TradingCapacity::Deal;
    r.price = Price::Yield(Decimal::ONE);
    r.buyer.represented = true;
    let found = issues(&r, &ctx());
    assert_eq!(
        found,
        [
            ("buyer.decision_makers", "missing"),
            ("capacity", "deal_not_party"),
            ("price", "type"),
            ("venue_transaction_id", "missing"),
        ]
    );
    let err = r.check(&ctx()).unwrap_err();
    assert!(
        err.to_string().starts_with("the report breaks 4 rule(s): "),
        "{err}"
    );
    assert!(!err.to_string().contains("Jean"));
}

#[test]
fn representation_and_bonds_pass_when_consistent() {
    let mut r = base();
    r.buyer = r
        .buyer
        .clone()
        .represented_by(vec![DecisionMaker::Person(person("Klaus"))]);
    assert_eq!(issues(&r, &ctx()), []);
    r.quantity = Quantity::Nominal {
        value: Decimal::from(10_000),
        currency: "EUR".parse().unwrap(),
    };
    r.price = Price::Percentage(Decimal::new(10_125, 2));
    r.net_amount = Some(Decimal::new(1_012_500, 2));
    assert_eq!(
        issues(&r, &CheckContext::new(NOW, InstrumentClass::Bond)),
        []
    );
    // Microsecond stamps satisfy a millisecond requirement; the other way round does not.
    let mut hft = base();
    hft.trading_time = TradingTime::new(
        datetime!(2026-12-03 09:30:00.000123 UTC),
        Granularity::Microsecond,
    );
    assert_eq!(issues(&hft, &ctx()), []);
    let strict = ctx().with_granularity(Granularity::Microsecond);
    assert_eq!(issues(&base(), &strict), [("trading_time", "granularity")]);
    // A trade within the clock's allowed divergence of now is not in the future.
    let mut edge = base();
    edge.trading_time = TradingTime::new(
        NOW + time::Duration::microseconds(900),
        Granularity::Millisecond,
    );
    assert_eq!(issues(&edge, &ctx()), []);
}
