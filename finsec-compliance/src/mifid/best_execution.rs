//! Best execution (MiFID II Art. 27, Delegated Regulation (EU) 2017/565 Art. 64–66): how
//! each execution compares with the price when the order arrived and with a reference
//! price at the execution time, and per instrument class the venues the firm's annual
//! review rests on.
//!
//! Slippage is in basis points, signed by side so that a positive number is always a cost
//! to the client: a buy filled above the benchmark, a sell filled below it. Costs and fees
//! given with an execution are added to a buy's price and taken from a sell's before the
//! comparison. An execution whose slippage exceeds the threshold (default 50 bps) is a
//! breach. (RTS 28's yearly top-five report was repealed; the per-venue figures here are
//! the data behind a firm's own review.)

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};

use async_trait::async_trait;
use finsec_validate::identifiers::{Currency, Isin, Mic};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::check::InstrumentClass;
use crate::error::{Error, Result};

/// Buy or sell, from the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The client bought.
    Buy,
    /// The client sold.
    Sell,
}

/// One execution of a client order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Execution {
    /// The execution's id.
    pub id: String,
    /// The order it fills.
    pub order_id: String,
    /// The instrument.
    pub instrument: Isin,
    /// The instrument's class.
    pub class: InstrumentClass,
    /// Where it was executed.
    pub venue: Mic,
    /// The client's side.
    pub side: Side,
    /// Quantity executed (above zero).
    pub quantity: Decimal,
    /// Price per unit (above zero).
    pub price: Decimal,
    /// The price's currency.
    pub currency: Currency,
    /// Explicit costs and fees charged for this execution, in `currency` (zero if none).
    pub costs: Decimal,
    /// The order's total quantity.
    pub order_quantity: Decimal,
    /// When the order arrived.
    pub ordered_at: OffsetDateTime,
    /// When it was executed.
    pub executed_at: OffsetDateTime,
    /// The market price when the order arrived, if recorded.
    pub arrival_price: Option<Decimal>,
}

/// Reference prices: the market price of an instrument at an instant (a consolidated tape,
/// the primary market's mid, ...).
#[async_trait]
pub trait MarketDataSource: Send + Sync + fmt::Debug {
    /// The reference price of `instrument` at `at`, `None` when there is none.
    ///
    /// # Errors
    ///
    /// [`Error::MarketData`] when the source fails.
    async fn price_at(&self, instrument: &Isin, at: OffsetDateTime) -> Result<Option<Decimal>>;
}

/// How one execution compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    /// The execution's id.
    pub execution_id: String,
    /// Slippage against the arrival price, bps (positive: a cost to the client).
    pub vs_arrival_bps: Option<Decimal>,
    /// Slippage against the reference price at execution, bps.
    pub vs_reference_bps: Option<Decimal>,
    /// The explicit costs as bps of the traded value.
    pub costs_bps: Decimal,
    /// Whether a slippage exceeds the threshold.
    pub breach: bool,
}

/// The best-execution check with its threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestExecution {
    threshold_bps: Decimal,
}

impl Default for BestExecution {
    fn default() -> Self {
        Self {
            threshold_bps: Decimal::from(Self::DEFAULT_THRESHOLD_BPS),
        }
    }
}

const BPS: Decimal = Decimal::from_parts(10_000, 0, 0, false, 0);

/// `(effective - benchmark) / benchmark` in bps, signed so a cost is positive.
fn slippage(side: Side, effective: Decimal, benchmark: Decimal) -> Option<Decimal> {
    if benchmark <= Decimal::ZERO {
        return None;
    }
    let diff = match side {
        Side::Buy => effective.checked_sub(benchmark)?,
        Side::Sell => benchmark.checked_sub(effective)?,
    };
    Some(diff.checked_mul(BPS)?.checked_div(benchmark)?.round_dp(4))
}

impl BestExecution {
    /// The default threshold: 50 bps (0.5 %).
    pub const DEFAULT_THRESHOLD_BPS: u32 = 50;

    /// A check with `threshold_bps` (above zero).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a threshold at or below zero.
    pub fn with_threshold_bps(threshold_bps: Decimal) -> Result<Self> {
        if threshold_bps <= Decimal::ZERO {
            return Err(Error::invalid("threshold_bps", "must be above zero"));
        }
        Ok(Self { threshold_bps })
    }

    /// The threshold in bps.
    #[must_use]
    pub fn threshold_bps(&self) -> Decimal {
        self.threshold_bps
    }

    /// Compares `e` with its arrival price and with `reference`.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for a quantity or price at or below zero, or negative costs.
    pub fn assess(&self, e: &Execution, reference: Option<Decimal>) -> Result<Assessment> {
        if e.quantity <= Decimal::ZERO {
            return Err(Error::invalid("quantity", "must be above zero"));
        }
        if e.price <= Decimal::ZERO {
            return Err(Error::invalid("price", "must be above zero"));
        }
        if e.costs < Decimal::ZERO {
            return Err(Error::invalid("costs", "must not be negative"));
        }
        let overflow = || Error::invalid("price", "out of range");
        let per_unit = e.costs.checked_div(e.quantity).ok_or_else(overflow)?;
        let effective = match e.side {
            Side::Buy => e.price.checked_add(per_unit),
            Side::Sell => e.price.checked_sub(per_unit),
        }
        .ok_or_else(overflow)?;
        let vs_arrival_bps = e.arrival_price.and_then(|a| slippage(e.side, effective, a));
        let vs_reference_bps = reference.and_then(|r| slippage(e.side, effective, r));
        let costs_bps = per_unit
            .checked_mul(BPS)
            .and_then(|c| c.checked_div(e.price))
            .ok_or_else(overflow)?
            .round_dp(4);
        let breach = [vs_arrival_bps, vs_reference_bps]
            .into_iter()
            .flatten()
            .any(|s| s > self.threshold_bps);
        Ok(Assessment {
            execution_id: e.id.clone(),
            vs_arrival_bps,
            vs_reference_bps,
            costs_bps,
            breach,
        })
    }

    /// Assesses every execution against `market` and summarises them.
    ///
    /// # Errors
    ///
    /// [`Error::MarketData`] from the source, [`Error::Invalid`] for a malformed execution.
    pub async fn review<I>(&self, executions: I, market: &dyn MarketDataSource) -> Result<Review>
    where
        I: IntoIterator<Item = Execution> + Send,
        I::IntoIter: Send,
    {
        let mut review = ReviewBuilder::new();
        for e in executions {
            let reference = market.price_at(&e.instrument, e.executed_at).await?;
            let a = self.assess(&e, reference)?;
            review.add(&e, a);
        }
        Ok(review.finish())
    }
}

/// One venue's figures within an instrument class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueStats {
    /// The venue.
    pub venue: Mic,
    /// Executions there.
    pub executions: u64,
    /// Quantity executed there.
    pub volume: Decimal,
    /// Its share of the class's executed quantity, 0 to 1 (4 decimals).
    pub volume_share: Decimal,
    /// Its share of the class's executions, 0 to 1 (4 decimals).
    pub execution_share: Decimal,
    /// Mean slippage against the reference price (against arrival where there is no
    /// reference), bps; `None` when no execution had either.
    pub average_slippage_bps: Option<Decimal>,
    /// Executed quantity over the quantity of the orders executed there, 0 to 1.
    pub fill_rate: Decimal,
    /// Mean time from order to execution, milliseconds (3 decimals).
    pub average_speed_ms: Decimal,
}

/// One instrument class's venues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassReview {
    /// The class (`equity`, `etf`, `bond`).
    pub class: String,
    /// Executions in the class.
    pub executions: u64,
    /// Quantity executed in the class.
    pub volume: Decimal,
    /// The five venues with the largest executed quantity, largest first.
    pub top_venues: Vec<VenueStats>,
}

/// The result of a review.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Executions assessed.
    pub assessed: u64,
    /// Executions with neither an arrival nor a reference price.
    pub unbenchmarked: u64,
    /// The breaches, in the order the executions came.
    pub breaches: Vec<Assessment>,
    /// Per class, by name.
    pub classes: Vec<ClassReview>,
}

#[derive(Debug, Default)]
struct VenueAcc {
    executions: u64,
    volume: Decimal,
    slippage_sum: Decimal,
    slippage_n: u64,
    ordered: Decimal,
    speed_us: i128,
}

/// Builds a [`Review`] one execution at a time (memory: one entry per venue and class,
/// plus eight bytes per distinct order).
#[derive(Debug, Default)]
pub struct ReviewBuilder {
    venues: HashMap<(InstrumentClass, Mic), VenueAcc>,
    orders: HashSet<u64>,
    review: Review,
}

impl ReviewBuilder {
    /// An empty review.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an execution and its assessment.
    pub fn add(&mut self, e: &Execution, a: Assessment) {
        self.review.assessed += 1;
        let acc = self.venues.entry((e.class, e.venue)).or_default();
        acc.executions += 1;
        acc.volume = acc.volume.saturating_add(e.quantity);
        match a.vs_reference_bps.or(a.vs_arrival_bps) {
            Some(s) => {
                acc.slippage_sum = acc.slippage_sum.saturating_add(s);
                acc.slippage_n += 1;
            }
            None => self.review.unbenchmarked += 1,
        }
        let mut h = DefaultHasher::new();
        (e.venue, &e.order_id).hash(&mut h);
        if self.orders.insert(h.finish()) {
            acc.ordered = acc.ordered.saturating_add(e.order_quantity);
        }
        acc.speed_us += (e.executed_at - e.ordered_at).whole_microseconds();
        if a.breach {
            self.review.breaches.push(a);
        }
    }

    /// The review.
    #[must_use]
    pub fn finish(mut self) -> Review {
        let mut by_class: HashMap<InstrumentClass, Vec<(Mic, VenueAcc)>> = HashMap::new();
        for ((class, venue), acc) in self.venues {
            by_class.entry(class).or_default().push((venue, acc));
        }
        let ratio = |a: Decimal, b: Decimal| {
            if b.is_zero() {
                Decimal::ZERO
            } else {
                a.checked_div(b).unwrap_or_default().round_dp(4)
            }
        };
        let mut classes: Vec<ClassReview> = by_class
            .into_iter()
            .map(|(class, mut venues)| {
                let volume = venues
                    .iter()
                    .fold(Decimal::ZERO, |s, (_, a)| s.saturating_add(a.volume));
                let executions: u64 = venues.iter().map(|(_, a)| a.executions).sum();
                venues.sort_by(|(va, a), (vb, b)| b.volume.cmp(&a.volume).then(va.cmp(vb)));
                let top_venues = venues
                    .into_iter()
                    .take(5)
                    .map(|(venue, a)| VenueStats {
                        venue,
                        executions: a.executions,
                        volume: a.volume,
                        volume_share: ratio(a.volume, volume),
                        execution_share: ratio(
                            Decimal::from(a.executions),
                            Decimal::from(executions),
                        ),
                        average_slippage_bps: (a.slippage_n > 0)
                            .then(|| ratio(a.slippage_sum, Decimal::from(a.slippage_n))),
                        fill_rate: ratio(a.volume, a.ordered),
                        average_speed_ms: Decimal::try_from_i128_with_scale(a.speed_us, 3)
                            .unwrap_or(Decimal::MAX)
                            .checked_div(Decimal::from(a.executions.max(1)))
                            .unwrap_or_default()
                            .round_dp(3),
                    })
                    .collect();
                ClassReview {
                    class: class.as_str().to_owned(),
                    executions,
                    volume,
                    top_venues,
                }
            })
            .collect();
        classes.sort_by(|a, b| a.class.cmp(&b.class));
        self.review.classes = classes;
        self.review
    }
}
