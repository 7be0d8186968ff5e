//! The behavioural suite every [`TransactionReportStore`] runs (feature `testing`), and
//! a sample report for tests and benches.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a conformance suite: it panics at the first behaviour that does not hold"
)]

use std::str::FromStr;

use finsec_validate::identifiers::{Country, Currency, Isin, Lei, Mic};
use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::macros::{date, datetime};
use uuid::Uuid;

use super::{RecordKeeping, ReportFilter, Submitted, TransactionReportStore};
use crate::error::Error;
use crate::mifid::clock::{Granularity, TradingTime};
use crate::mifid::concat::concat;
use crate::mifid::report::{
    AlgorithmId, Counterparty, Executor, FirmPerson, IdScheme, InvestmentDecision, Lineage,
    NaturalPerson, Party, PersonId, Price, Quantity, Report, ReportStatus, TradingCapacity,
    TransactionReference, TransactionReport, Transmission, VenueTransactionId,
};

/// The executing firm of [`sample_report`].
pub const FIRM_LEI: &str = "5493001KJTIIGC8Y1R12";
/// The broker on the other side of [`sample_report`]'s trades.
pub const BROKER_LEI: &str = "529900T8BM49AURSDO55";

fn parse<T: FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    match s.parse() {
        Ok(v) => v,
        Err(e) => unreachable!("constant {s} does not parse: {e:?}"),
    }
}

/// A valid equity report: a natural-person client (CONCAT) buys `quantity` shares of
/// `isin` at `price` EUR on XPAR, the firm acting as agent (`AOTC`), an algorithm
/// deciding and executing, numbered `n` (reference `T{n}`, venue id `V{n}`).
#[must_use]
pub fn sample_report(
    n: u64,
    isin: &str,
    quantity: Decimal,
    price: Decimal,
    at: OffsetDateTime,
) -> TransactionReport {
    let client_id = match concat(
        parse::<Country>("FR"),
        date!(1980 - 01 - 13),
        "Jean",
        "Dupont",
    ) {
        Ok(id) => id,
        Err(e) => unreachable!("constant CONCAT: {e}"),
    };
    let client = match NaturalPerson::new("Jean", "Dupont", date!(1980 - 01 - 13), client_id) {
        Ok(p) => p,
        Err(e) => unreachable!("constant person: {e}"),
    };
    let trader = match PersonId::new(IdScheme::NationalId, "FR1234567890") {
        Ok(p) => p,
        Err(e) => unreachable!("constant id: {e}"),
    };
    TransactionReport {
        reference: parse(&format!("T{n}")),
        venue_transaction_id: Some(parse::<VenueTransactionId>(&format!("V{n}"))),
        executing_entity: parse::<Lei>(FIRM_LEI),
        investment_firm: true,
        submitting_entity: parse::<Lei>(FIRM_LEI),
        buyer: Counterparty::single(Party::Person(client), Some(parse::<Country>("FR"))),
        seller: Counterparty::single(Party::Lei(parse::<Lei>(BROKER_LEI)), None),
        transmission: Transmission::default(),
        trading_time: TradingTime::new(at, Granularity::Millisecond),
        capacity: TradingCapacity::AnyOther,
        quantity: Quantity::Units(quantity),
        price: Price::Monetary {
            value: price,
            currency: parse::<Currency>("EUR"),
        },
        net_amount: None,
        venue: parse::<Mic>("XPAR"),
        branch_country: Some(parse::<Country>("FR")),
        instrument: parse::<Isin>(isin),
        investment_decision: Some(InvestmentDecision::Person(FirmPerson {
            branch_country: parse::<Country>("FR"),
            id: trader,
        })),
        executor: Executor::Algorithm(parse::<AlgorithmId>("ALGO1")),
        waivers: Vec::new(),
        short_selling: None,
        otc_post_trade: Vec::new(),
        commodity_derivative: None,
        securities_financing: false,
    }
}

/// ISINs the suite uses (check digits valid).
pub const ISINS: [&str; 2] = ["FR0000120271", "US0378331005"];

fn lineage() -> Lineage {
    Lineage {
        execution_event: Some(Uuid::from_u128(1)),
        report_event: Some(Uuid::from_u128(2)),
        clock: None,
    }
}

/// Runs every behaviour against `store`, which must be empty.
///
/// # Panics
///
/// On the first behaviour that does not hold.
pub async fn run_report_store_suite<S: TransactionReportStore + ?Sized>(store: &S) {
    idempotent_submit(store).await;
    cancel_and_amend(store).await;
    query_and_summary(store).await;
    retention(store).await;
    pseudonymisation(store).await;
}

/// Erasure of the client: their reports stay, with the client replaced by a pseudonym.
async fn pseudonymisation<S: TransactionReportStore + ?Sized>(store: &S) {
    let now = datetime!(2026-12-05 12:00 UTC);
    let mine = sample_report(700, ISINS[1], Decimal::from(3), Decimal::from(42), now);
    let other = sample_report(701, ISINS[1], Decimal::from(4), Decimal::from(42), now);
    for r in [&mine, &other] {
        store.submit(r, &lineage(), now).await.unwrap();
    }
    store
        .cancel(&mine.reference, &lineage(), now)
        .await
        .unwrap();
    let Party::Person(client) = &mine.buyer.owners[0].party else {
        panic!("the sample's buyer is a person");
    };
    let pseudonym = crate::gdpr::Pseudonymizer::new(&finsec_crypto::Key256::from_bytes([7; 32]))
        .unwrap()
        .pseudonym(&finsec_crypto::SubjectId::new("client:700").unwrap());
    // Only the listed references change, and only their new reports (not the
    // cancellation, which names no person).
    let changed = store
        .pseudonymise(
            std::slice::from_ref(&mine.reference),
            client.id(),
            &pseudonym,
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    let history = store.history(&mine.reference).await.unwrap();
    assert_eq!(history.len(), 2);
    let Report::New(kept) = &history[0].report else {
        panic!("the first record is the new report");
    };
    assert!(kept.is_pseudonymised());
    assert_eq!(
        kept.buyer.owners[0].party,
        Party::Pseudonymised(pseudonym.clone())
    );
    assert_eq!(kept.quantity, mine.quantity, "the trade itself is kept");
    assert!(!format!("{kept:?}").contains("DUPONT"));
    let untouched = store.history(&other.reference).await.unwrap();
    assert_eq!(untouched[0].report, Report::New(Box::new(other.clone())));
    // Again: nothing left to change.
    assert_eq!(
        store
            .pseudonymise(
                std::slice::from_ref(&mine.reference),
                client.id(),
                &pseudonym
            )
            .await
            .unwrap(),
        0
    );
}

/// Runs the concurrent behaviours: identical submits race to one record, cancels of one
/// report race to one cancellation. `store` must be shared by the racers (an `Arc`'d
/// store, or one pool).
///
/// # Panics
///
/// When more or fewer than one racer wins.
pub async fn run_report_store_race_suite<S: TransactionReportStore + ?Sized>(store: &S) {
    let now = datetime!(2026-12-03 12:00 UTC);
    let report = sample_report(900, ISINS[0], Decimal::from(10), Decimal::from(100), now);
    let none = Lineage::default();
    let submits = (0..16).map(|_| store.submit(&report, &none, now));
    let results = futures_util::future::join_all(submits).await;
    let created = results
        .iter()
        .filter(|r| matches!(r, Ok(Submitted::Created(_))))
        .count();
    let existing = results
        .iter()
        .filter(|r| matches!(r, Ok(Submitted::Existing(_))))
        .count();
    assert_eq!((created, existing), (1, 15), "{results:?}");
    let cancels = (0..8).map(|_| store.cancel(&report.reference, &none, now));
    let results = futures_util::future::join_all(cancels).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let not_live = results
        .iter()
        .filter(|r| matches!(r, Err(Error::NotLive { .. })))
        .count();
    assert_eq!((ok, not_live), (1, 7), "{results:?}");
    let history = store.history(&report.reference).await.unwrap();
    assert_eq!(history.len(), 2);
}

async fn idempotent_submit<S: TransactionReportStore + ?Sized>(store: &S) {
    let now = datetime!(2026-12-03 10:00 UTC);
    let report = sample_report(1, ISINS[0], Decimal::from(100), Decimal::new(5512, 2), now);
    let first = store.submit(&report, &lineage(), now).await.unwrap();
    let Submitted::Created(kept) = &first else {
        panic!("first submit: {first:?}")
    };
    assert_eq!(kept.version, 1);
    assert_eq!(kept.lineage, lineage());
    assert_eq!(kept.report, Report::New(Box::new(report.clone())));
    assert_eq!(kept.instrument, report.instrument);
    assert_eq!(kept.trading_time, report.trading_time);
    // Same content again: the record already kept.
    let again = store
        .submit(&report, &Lineage::default(), now)
        .await
        .unwrap();
    assert_eq!(again, Submitted::Existing(kept.clone()));
    // The same value written with another scale is the same content.
    let mut rescaled = report.clone();
    rescaled.price = Price::Monetary {
        value: Decimal::new(551_200, 4),
        currency: parse::<Currency>("EUR"),
    };
    assert!(matches!(
        store.submit(&rescaled, &lineage(), now).await.unwrap(),
        Submitted::Existing(_)
    ));
    // Other content under the same reference: refused.
    let mut other = report.clone();
    other.quantity = Quantity::Units(Decimal::from(101));
    let err = store.submit(&other, &lineage(), now).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict { reference } if reference == "T1"),
        "{err:?}"
    );
    assert_eq!(store.history(&report.reference).await.unwrap().len(), 1);
}

async fn cancel_and_amend<S: TransactionReportStore + ?Sized>(store: &S) {
    let now = datetime!(2026-12-03 11:00 UTC);
    let report = sample_report(2, ISINS[1], Decimal::from(7), Decimal::from(190), now);
    store.submit(&report, &lineage(), now).await.unwrap();
    let cancelled = store
        .cancel(&report.reference, &lineage(), now)
        .await
        .unwrap();
    assert_eq!(cancelled.version, 2);
    assert_eq!(cancelled.report.status(), ReportStatus::Cancel);
    assert_eq!(cancelled.trading_time, report.trading_time);
    assert_eq!(cancelled.instrument, report.instrument);
    // Cancelled already, or never reported: nothing live to cancel.
    for reference in [
        report.reference.clone(),
        parse::<TransactionReference>("NOSUCH"),
    ] {
        let err = store.cancel(&reference, &lineage(), now).await.unwrap_err();
        assert!(matches!(err, Error::NotLive { .. }), "{err:?}");
    }
    // Reported again after the cancellation: the next version.
    let again = store.submit(&report, &lineage(), now).await.unwrap();
    assert!(
        matches!(&again, Submitted::Created(r) if r.version == 3),
        "{again:?}"
    );
    // An amendment: a cancellation and the new content, together.
    let mut amended = report.clone();
    amended.price = Price::Monetary {
        value: Decimal::new(19_050, 2),
        currency: parse::<Currency>("EUR"),
    };
    let (c, n) = store.amend(&amended, &lineage(), now).await.unwrap();
    assert_eq!((c.version, n.version), (4, 5));
    assert_eq!(c.report.status(), ReportStatus::Cancel);
    assert_eq!(n.report, Report::New(Box::new(amended.clone())));
    let mut unknown = amended.clone();
    unknown.reference = parse("NEVERREPORTED");
    assert!(matches!(
        store.amend(&unknown, &lineage(), now).await.unwrap_err(),
        Error::NotLive { .. }
    ));
    let history = store.history(&report.reference).await.unwrap();
    let statuses: Vec<_> = history
        .iter()
        .map(|r| (r.version, r.report.status()))
        .collect();
    assert_eq!(
        statuses,
        [
            (1, ReportStatus::New),
            (2, ReportStatus::Cancel),
            (3, ReportStatus::New),
            (4, ReportStatus::Cancel),
            (5, ReportStatus::New),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(
        store
            .history(&parse("NEVERREPORTED"))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn query_and_summary<S: TransactionReportStore + ?Sized>(store: &S) {
    let day = datetime!(2026-11-02 00:00 UTC);
    // Twenty reports over two instruments, an hour apart; every fourth cancelled.
    for i in 0..20u64 {
        let at = day + time::Duration::hours(i64::try_from(i).unwrap());
        let isin = ISINS[usize::try_from(i % 2).unwrap()];
        let r = sample_report(
            100 + i,
            isin,
            Decimal::from(i + 1),
            Decimal::new(1025, 2),
            at,
        );
        store.submit(&r, &lineage(), at).await.unwrap();
        if i % 4 == 3 {
            store.cancel(&r.reference, &lineage(), at).await.unwrap();
        }
    }
    let period = ReportFilter {
        from: Some(day),
        to: Some(day + time::Duration::hours(10)),
        ..ReportFilter::default()
    };
    let all = store.query(&period, 0, 1000).await.unwrap();
    // Hours 0..10: ten new reports, cancellations of hours 3 and 7.
    assert_eq!(all.len(), 12);
    assert_eq!(store.count(&period).await.unwrap(), 12);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    // Keyset pages give the same records.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let page = store.query(&period, after, 5).await.unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        paged.extend(page);
    }
    assert_eq!(paged, all);
    let cancels = ReportFilter {
        status: Some(ReportStatus::Cancel),
        ..period.clone()
    };
    assert_eq!(store.query(&cancels, 0, 1000).await.unwrap().len(), 2);
    assert_eq!(store.count(&cancels).await.unwrap(), 2);
    let apple = ReportFilter {
        instrument: Some(parse(ISINS[1])),
        ..period.clone()
    };
    let apple = store.query(&apple, 0, 1000).await.unwrap();
    assert_eq!(apple.len(), 5 + 2);
    assert!(apple.iter().all(|r| r.instrument.as_str() == ISINS[1]));

    let summary = store
        .summary(day, day + time::Duration::days(1))
        .await
        .unwrap();
    // Twenty reports, five cancelled: fifteen live, quantities 1..=20 less 4, 8, 12, 16, 20.
    assert_eq!(summary.count, 15);
    assert_eq!(summary.unvalued, 0);
    let eur = &summary.by_currency["EUR"];
    let volume: u64 = (1..=20u64).filter(|q| q % 4 != 0).sum();
    assert_eq!(eur.count, 15);
    assert_eq!(eur.volume, Decimal::from(volume));
    assert_eq!(eur.value, Decimal::from(volume) * Decimal::new(1025, 2));
    let empty = store
        .summary(day - time::Duration::days(1), day)
        .await
        .unwrap();
    assert_eq!(empty.count, 0);
}

async fn retention<S: TransactionReportStore + ?Sized>(store: &S) {
    let now = datetime!(2026-12-03 12:00 UTC);
    let keeping = RecordKeeping::default();
    // Everything here is younger than seven years: nothing may go.
    let err = store.purge_before(now, now, keeping).await.unwrap_err();
    assert!(matches!(err, Error::Retained { years: 7, .. }), "{err:?}");
    let old_at = datetime!(2018-06-01 09:00 UTC);
    let old = sample_report(500, ISINS[0], Decimal::ONE, Decimal::ONE, old_at);
    store.submit(&old, &lineage(), old_at).await.unwrap();
    let before = store
        .query(&ReportFilter::default(), 0, 10_000)
        .await
        .unwrap()
        .len();
    // 2019-12-03 is the earliest that must be kept at `now`.
    assert!(
        store
            .purge_before(datetime!(2019-12-04 00:00 UTC), now, keeping)
            .await
            .is_err()
    );
    let deleted = store
        .purge_before(datetime!(2019-12-03 12:00 UTC), now, keeping)
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let after = store
        .query(&ReportFilter::default(), 0, 10_000)
        .await
        .unwrap()
        .len();
    assert_eq!(after, before - 1);
    assert!(store.history(&old.reference).await.unwrap().is_empty());
}
