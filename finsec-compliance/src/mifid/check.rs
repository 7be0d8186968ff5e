//! The rules across fields of a report, every failure collected.

use rust_decimal::Decimal;
use time::OffsetDateTime;

use super::clock::{Granularity, max_divergence};
use super::report::{
    Counterparty, DecisionMaker, Party, Price, Quantity, TradingCapacity, TransactionReport,
};
use crate::error::{Error, Issue, Issues, Result};

/// What kind of instrument a report is about, from the firm's reference data (the report
/// itself carries only the ISIN). It decides which price and quantity types fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum InstrumentClass {
    /// Shares and depositary receipts: a monetary price, a number of units.
    Equity,
    /// Exchange-traded funds: a monetary price, a number of units.
    Etf,
    /// Bonds: a percentage (or yield) price, a nominal quantity.
    Bond,
}

impl InstrumentClass {
    /// A short name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equity => "equity",
            Self::Etf => "etf",
            Self::Bond => "bond",
        }
    }
}

/// What [`TransactionReport::check`] checks against.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext {
    /// Now; a trading time after it (beyond the granularity's allowed clock divergence) is
    /// refused.
    pub now: OffsetDateTime,
    /// The instrument's class.
    pub class: InstrumentClass,
    /// The coarsest granularity RTS 25 allows for the trading activity behind the report
    /// (microseconds for high-frequency algorithmic trading, milliseconds for other
    /// electronic trading, seconds for voice).
    pub required_granularity: Granularity,
}

impl CheckContext {
    /// A context for an electronic (millisecond) equity trade checked at `now`.
    #[must_use]
    pub fn new(now: OffsetDateTime, class: InstrumentClass) -> Self {
        Self {
            now,
            class,
            required_granularity: Granularity::Millisecond,
        }
    }

    /// With another required granularity.
    #[must_use]
    pub fn with_granularity(mut self, granularity: Granularity) -> Self {
        self.required_granularity = granularity;
        self
    }
}

struct Collector(Vec<Issue>);

impl Collector {
    fn add(&mut self, field: &'static str, code: &'static str, message: impl Into<String>) {
        self.0.push(Issue {
            field,
            code,
            message: message.into(),
        });
    }
}

/// The venues that are not trading venues: `XOFF` (off venue) and `XXXX` (a non-EEA venue).
fn off_venue(mic: &str) -> bool {
    mic == "XOFF" || mic == "XXXX"
}

/// Digits before and after the point of `d`, once trailing zeros are dropped.
fn digits(d: Decimal) -> (u32, u32) {
    let n = d.normalize();
    let scale = n.scale();
    let mantissa = n.mantissa().unsigned_abs();
    let total = if mantissa == 0 {
        1
    } else {
        mantissa.ilog10() + 1
    };
    (total.saturating_sub(scale), scale)
}

/// Whether `d` fits `totalDigits`/`fractionDigits`.
pub(crate) fn fits(d: Decimal, total: u32, fraction: u32) -> bool {
    let (int, frac) = digits(d);
    frac <= fraction && int + frac <= total
}

fn granularity_rank(g: Granularity) -> u8 {
    match g {
        Granularity::Microsecond => 0,
        Granularity::Millisecond => 1,
        Granularity::Second => 2,
    }
}

impl TransactionReport {
    /// Applies the RTS 22 rules across fields and returns every problem found.
    ///
    /// - a represented buyer or seller names its decision makers, an unrepresented one
    ///   none, and a natural person is never their own decision maker;
    /// - on a trading venue the venue transaction id is given; off venue (`XOFF`, `XXXX`)
    ///   it is not;
    /// - dealing on own account (`DEAL`) makes the executing entity the buyer or seller;
    ///   matched principal and agency (`MTCH`, `AOTC`) do not;
    /// - the price and quantity types fit the instrument class, a monetary price is in
    ///   the quantity's currency where that has one, and amounts fit the schema's digits;
    /// - transmitting firms are named only when the order was transmitted;
    /// - the trading time is not after `now` (beyond the allowed clock divergence) and is
    ///   at least as fine as RTS 25 requires;
    /// - buyer and seller differ.
    ///
    /// Cancellations are checked by the store: a `CANC` must name a live report.
    ///
    /// # Errors
    ///
    /// [`Error::Rejected`] with every [`Issue`], in field order.
    pub fn check(&self, ctx: &CheckContext) -> Result<()> {
        let mut c = Collector(Vec::new());
        self.check_side(&mut c, "buyer", &self.buyer);
        self.check_side(&mut c, "seller", &self.seller);
        if self.buyer.owners == self.seller.owners && !self.buyer.owners.is_empty() {
            c.add(
                "seller",
                "same_party",
                "the buyer and the seller are the same",
            );
        }
        self.check_transmission(&mut c);
        self.check_time(&mut c, ctx);
        self.check_capacity(&mut c);
        self.check_amounts(&mut c, ctx);
        self.check_venue(&mut c);
        if self.commodity_derivative == Some(true) && ctx.class != InstrumentClass::Bond {
            c.add(
                "commodity_derivative",
                "not_a_commodity_derivative",
                "an equity or ETF transaction is not a commodity derivative",
            );
        }
        if c.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(Issues(c.0)))
        }
    }

    fn check_side(&self, c: &mut Collector, side: &'static str, party: &Counterparty) {
        let (owners, makers): (&'static str, &'static str) = if side == "buyer" {
            ("buyer.owners", "buyer.decision_makers")
        } else {
            ("seller.owners", "seller.decision_makers")
        };
        if party.owners.is_empty() {
            c.add(owners, "missing", "at least one account owner is needed");
        }
        if party.represented && party.decision_makers.is_empty() {
            c.add(
                makers,
                "missing",
                "a represented account owner needs the decision maker who acted for it",
            );
        }
        if !party.represented && !party.decision_makers.is_empty() {
            c.add(
                makers,
                "unexpected",
                "decision makers are reported only for a represented account owner",
            );
        }
        if party
            .owners
            .iter()
            .any(|o| matches!(o.party, Party::Pseudonymised(_)))
        {
            c.add(
                owners,
                "pseudonymised",
                "an owner was erased and replaced by a pseudonym: the report cannot be sent",
            );
        }
        if party
            .decision_makers
            .iter()
            .any(|m| matches!(m, DecisionMaker::Pseudonymised(_)))
        {
            c.add(
                makers,
                "pseudonymised",
                "a decision maker was erased and replaced by a pseudonym: the report cannot be sent",
            );
        }
        let executing = Party::Lei(self.executing_entity);
        if party.represented && party.owners.iter().any(|o| o.party == executing) {
            c.add(
                makers,
                "firm_represented",
                "the firm trading for itself is not represented by a decision maker",
            );
        }
        for maker in &party.decision_makers {
            if let DecisionMaker::Person(p) = maker
                && party
                    .owners
                    .iter()
                    .any(|o| matches!(&o.party, Party::Person(owner) if owner.id() == p.id()))
            {
                c.add(
                    makers,
                    "self_represented",
                    "an account owner is not their own decision maker",
                );
            }
        }
        if party
            .owners
            .iter()
            .any(|o| matches!(o.party, Party::Internal))
            && party.owners.len() > 1
        {
            c.add(
                owners,
                "internal_not_alone",
                "the aggregate client account (INTC) is the only owner of its side",
            );
        }
    }

    fn check_transmission(&self, c: &mut Collector) {
        let t = &self.transmission;
        if !t.transmitted && (t.transmitting_buyer.is_some() || t.transmitting_seller.is_some()) {
            c.add(
                "transmission",
                "not_transmitted",
                "transmitting firms are named only when the order was transmitted",
            );
        }
    }

    fn check_time(&self, c: &mut Collector, ctx: &CheckContext) {
        let g = self.trading_time.granularity();
        let slack = time::Duration::try_from(max_divergence(g)).unwrap_or(time::Duration::ZERO);
        if self.trading_time.at() > ctx.now + slack {
            c.add(
                "trading_time",
                "future",
                "the trading time is after the time of the check",
            );
        }
        if granularity_rank(g) > granularity_rank(ctx.required_granularity) {
            c.add(
                "trading_time",
                "granularity",
                format!(
                    "RTS 25 requires {} granularity for this trading activity",
                    match ctx.required_granularity {
                        Granularity::Microsecond => "microsecond",
                        Granularity::Millisecond => "millisecond",
                        Granularity::Second => "second",
                    }
                ),
            );
        }
    }

    fn check_capacity(&self, c: &mut Collector) {
        let firm = Party::Lei(self.executing_entity);
        let is_party = |side: &Counterparty| side.owners.iter().any(|o| o.party == firm);
        let firm_trades = is_party(&self.buyer) || is_party(&self.seller);
        match self.capacity {
            TradingCapacity::Deal if !firm_trades => c.add(
                "capacity",
                "deal_not_party",
                "dealing on own account makes the executing entity the buyer or the seller",
            ),
            TradingCapacity::Matched | TradingCapacity::AnyOther if firm_trades => c.add(
                "capacity",
                "party_not_deal",
                "the executing entity is the buyer or seller only when dealing on own account",
            ),
            _ => {}
        }
    }

    fn check_amounts(&self, c: &mut Collector, ctx: &CheckContext) {
        let units = matches!(ctx.class, InstrumentClass::Equity | InstrumentClass::Etf);
        match (&self.quantity, units) {
            (Quantity::Units(_), true)
            | (Quantity::Nominal { .. } | Quantity::Monetary { .. }, false) => {}
            (_, true) => c.add(
                "quantity",
                "type",
                "an equity or ETF quantity is a number of units",
            ),
            (_, false) => c.add(
                "quantity",
                "type",
                "a bond quantity is a nominal or monetary value",
            ),
        }
        let q = self.quantity.value();
        if q <= Decimal::ZERO {
            c.add(
                "quantity",
                "not_positive",
                "the quantity must be above zero",
            );
        } else if !fits(
            q,
            18,
            if matches!(self.quantity, Quantity::Units(_)) {
                17
            } else {
                5
            },
        ) {
            c.add(
                "quantity",
                "digits",
                "the quantity has more digits than the schema allows",
            );
        }
        match (&self.price, units) {
            (Price::Monetary { .. }, true)
            | (Price::Percentage(_) | Price::Yield(_), false)
            | (Price::Pending { .. } | Price::NotApplicable { .. }, _) => {}
            (_, true) => c.add("price", "type", "an equity or ETF price is monetary"),
            (_, false) => c.add("price", "type", "a bond price is a percentage or a yield"),
        }
        match &self.price {
            Price::Monetary { value, .. } if !fits(*value, 18, 13) => {
                c.add(
                    "price",
                    "digits",
                    "the price has more digits than the schema allows",
                );
            }
            Price::Percentage(v) | Price::Yield(v) if !fits(*v, 11, 10) => {
                c.add(
                    "price",
                    "digits",
                    "the rate has more digits than the schema allows",
                );
            }
            Price::BasisPoints(v) if !fits(*v, 18, 17) => {
                c.add(
                    "price",
                    "digits",
                    "the basis points have more digits than the schema allows",
                );
            }
            _ => {}
        }
        if let (
            Price::Monetary { currency, .. },
            Quantity::Monetary { currency: qc, .. } | Quantity::Nominal { currency: qc, .. },
        ) = (&self.price, &self.quantity)
            && currency != qc
        {
            c.add(
                "price",
                "currency",
                "a monetary price is in the quantity's currency",
            );
        }
        if let Some(net) = self.net_amount {
            if units {
                c.add(
                    "net_amount",
                    "not_debt",
                    "the net amount is reported for debt instruments only",
                );
            } else if net < Decimal::ZERO || !fits(net, 18, 5) {
                c.add(
                    "net_amount",
                    "digits",
                    "the net amount is not a non-negative amount with at most 5 decimals",
                );
            }
        }
    }

    fn check_venue(&self, c: &mut Collector) {
        let off = off_venue(self.venue.as_str());
        match (&self.venue_transaction_id, off) {
            (None, false) => c.add(
                "venue_transaction_id",
                "missing",
                "a trade on a trading venue needs the venue's transaction id",
            ),
            (Some(_), true) => c.add(
                "venue_transaction_id",
                "unexpected",
                "a trade off venue (XOFF, XXXX) has no venue transaction id",
            ),
            _ => {}
        }
        if off && !self.waivers.is_empty() {
            c.add(
                "waivers",
                "off_venue",
                "pre-trade waivers are reported for trades on a venue only",
            );
        }
    }
}
