//! Best execution: known answers for slippage with costs by side, the threshold, and the
//! per-class top five venues with shares, fill rate and speed.

#![cfg(test)]

use std::collections::HashMap;

use async_trait::async_trait;
use finsec_compliance::mifid::InstrumentClass;
use finsec_compliance::mifid::best_execution::{BestExecution, Execution, MarketDataSource, Side};
use finsec_compliance::mifid::store::testing::ISINS;
use finsec_compliance::{Error, Result};
use finsec_validate::identifiers::Isin;
use rust_decimal::Decimal;
use time::OffsetDateTime;
use time::macros::datetime;

#[derive(Debug)]
struct Prices(HashMap<Isin, Decimal>);

#[async_trait]
impl MarketDataSource for Prices {
    async fn price_at(&self, instrument: &Isin, _at: OffsetDateTime) -> Result<Option<Decimal>> {
        Ok(self.0.get(instrument).copied())
    }
}

#[derive(Debug)]
struct Down;

#[async_trait]
impl MarketDataSource for Down {
    async fn price_at(&self, _: &Isin, _: OffsetDateTime) -> Result<Option<Decimal>> {
        Err(Error::MarketData("feed unreachable".into()))
    }
}

fn exec(id: &str, venue: &str, side: Side, qty: i64, price: Decimal) -> Execution {
    let at = datetime!(2026-12-03 10:00 UTC);
    Execution {
        id: id.into(),
        order_id: format!("O-{id}"),
        instrument: ISINS[0].parse().unwrap(),
        class: InstrumentClass::Equity,
        venue: venue.parse().unwrap(),
        side,
        quantity: Decimal::from(qty),
        price,
        currency: "EUR".parse().unwrap(),
        costs: Decimal::ZERO,
        order_quantity: Decimal::from(qty),
        ordered_at: at,
        executed_at: at + time::Duration::milliseconds(12),
        arrival_price: None,
    }
}

#[test]
fn slippage_is_signed_by_side_and_includes_costs() {
    let check = BestExecution::default();
    assert_eq!(check.threshold_bps(), Decimal::from(50));
    let reference = Some(Decimal::from(100));
    // A buy at 100.50 against 100: 50 bps, at the threshold, not over it.
    let buy = exec("b", "XPAR", Side::Buy, 100, Decimal::new(10050, 2));
    let a = check.assess(&buy, reference).unwrap();
    assert_eq!(a.vs_reference_bps, Some(Decimal::from(50)));
    assert!(!a.breach);
    // With 10 of costs on 100 shares the effective price is 100.60: 60 bps, a breach.
    let costly = Execution {
        costs: Decimal::from(10),
        ..buy.clone()
    };
    let a = check.assess(&costly, reference).unwrap();
    assert_eq!(a.vs_reference_bps, Some(Decimal::from(60)));
    assert_eq!(a.costs_bps, Decimal::new(99_502_487_562, 10).round_dp(4));
    assert!(a.breach);
    // A sell below the reference is a cost, above it a gain.
    let sell = exec("s", "XPAR", Side::Sell, 10, Decimal::new(9940, 2));
    assert_eq!(
        check.assess(&sell, reference).unwrap().vs_reference_bps,
        Some(Decimal::from(60))
    );
    let better = exec("s2", "XPAR", Side::Sell, 10, Decimal::new(10010, 2));
    assert_eq!(
        check.assess(&better, reference).unwrap().vs_reference_bps,
        Some(Decimal::from(-10))
    );
    // Against the arrival price too; either breaching is a breach.
    let arrival = Execution {
        arrival_price: Some(Decimal::from(99)),
        ..buy
    };
    let a = check.assess(&arrival, reference).unwrap();
    assert_eq!(a.vs_arrival_bps, Some(Decimal::new(1_515_152, 4)));
    assert!(a.breach);
    // A tighter threshold, and refusals.
    let tight = BestExecution::with_threshold_bps(Decimal::from(5)).unwrap();
    assert!(
        tight
            .assess(&sell, Some(Decimal::new(9990, 2)))
            .unwrap()
            .breach
    );
    assert!(
        !tight
            .assess(&better, Some(Decimal::new(9990, 2)))
            .unwrap()
            .breach
    );
    assert!(BestExecution::with_threshold_bps(Decimal::ZERO).is_err());
    assert!(
        check
            .assess(&exec("z", "XPAR", Side::Buy, 0, Decimal::ONE), reference)
            .is_err()
    );
    assert!(
        check
            .assess(&exec("z", "XPAR", Side::Buy, 1, Decimal::ZERO), reference)
            .is_err()
    );
}

#[tokio::test]
async fn review_ranks_five_venues_per_class() {
    let mut executions = Vec::new();
    // Seven venues; venue k gets k+1 executions of 10 shares at 100 + k/100.
    let venues = ["XPAR", "XAMS", "XETR", "XLON", "XMIL", "XMAD", "XBRU"];
    for (k, v) in venues.iter().enumerate() {
        for j in 0..=k {
            let price = Decimal::from(100) + Decimal::new(i64::try_from(k).unwrap(), 2);
            let mut e = exec(&format!("{v}-{j}"), v, Side::Buy, 10, price);
            // Every order is for 20 shares: half filled.
            e.order_quantity = Decimal::from(20);
            executions.push(e);
        }
    }
    // One bond execution without a reference price.
    let mut bond = exec("bond", "XPAR", Side::Sell, 1000, Decimal::from(99));
    bond.class = InstrumentClass::Bond;
    bond.instrument = ISINS[1].parse().unwrap();
    executions.push(bond);
    let prices = Prices(HashMap::from([(
        ISINS[0].parse().unwrap(),
        Decimal::from(100),
    )]));
    let review = BestExecution::with_threshold_bps(Decimal::from(4))
        .unwrap()
        .review(executions, &prices)
        .await
        .unwrap();
    assert_eq!(review.assessed, 29);
    assert_eq!(review.unbenchmarked, 1);
    // Slippage k bps: venues with k > 4 breach (XMAD: 6 executions, XBRU: 7).
    assert_eq!(review.breaches.len(), 6 + 7);
    assert_eq!(review.classes.len(), 2);
    let bond = &review.classes[0];
    assert_eq!((bond.class.as_str(), bond.executions), ("bond", 1));
    assert_eq!(bond.top_venues[0].average_slippage_bps, None);
    let eq = &review.classes[1];
    assert_eq!(eq.class, "equity");
    assert_eq!(eq.executions, 28);
    assert_eq!(eq.volume, Decimal::from(280));
    let top: Vec<&str> = eq.top_venues.iter().map(|v| v.venue.as_str()).collect();
    assert_eq!(top, ["XBRU", "XMAD", "XMIL", "XLON", "XETR"]);
    let first = &eq.top_venues[0];
    assert_eq!(first.executions, 7);
    assert_eq!(first.volume, Decimal::from(70));
    assert_eq!(first.volume_share, Decimal::new(25, 2));
    assert_eq!(first.execution_share, Decimal::new(25, 2));
    assert_eq!(first.average_slippage_bps, Some(Decimal::from(6)));
    assert_eq!(first.fill_rate, Decimal::new(5, 1));
    assert_eq!(first.average_speed_ms, Decimal::from(12));
    // A failing market data source fails the review.
    let err = BestExecution::default()
        .review(vec![exec("x", "XPAR", Side::Buy, 1, Decimal::ONE)], &Down)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MarketData(_)));
}
