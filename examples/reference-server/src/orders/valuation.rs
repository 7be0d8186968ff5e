//! What an order is worth to the four-eyes threshold, and the price bands.
//!
//! Valuing an order at quantity × limit price lets a trader dodge the threshold: a sell of
//! 100,000,000 at 0.01 is "worth" 1,000,000 while it would sell at the market. So an order
//! is valued with a reference price ([`ReferencePrices`]; the server reads a prices file,
//! [`PriceFile`]):
//!
//! | order | with a reference `r` | without one |
//! |---|---|---|
//! | limit buy at `p` | quantity × max(`p`, `r`) | quantity × `p` (a buy never pays more than its limit) |
//! | limit sell at `p` | quantity × max(`p`, `r`) | unknown: needs approval |
//! | market | quantity × `r` | unknown: needs approval |
//!
//! A limit order whose price is further from the reference than the price band (a
//! percentage of the reference) is refused outright (422, `price_band`): a fat finger or a
//! price meant to be valued low.
//!
//! Orders of the UTC day count together: every order whose value is known adds it to its
//! trader's and its account's totals for the day (kept in `server_notional_days`, updated
//! with compare-and-set, so concurrent orders are counted one after the other on every
//! instance), and an order needs approval when it takes either total above the threshold.
//! Splitting a large order into many small ones, or sending them at once, does not help.
//! An order that is not placed after all (refused, or a replay) is taken back out; one
//! placed and later rejected or expired still counts for its day, which only makes the
//! threshold stricter.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use finsec_validate::request::{Side, ValidatedOrder};
use rust_decimal::Decimal;

use crate::error::{Result, ServerError};

/// Reference prices by symbol: the price an order is valued at when its own price
/// understates it, and the centre of the price band.
pub trait ReferencePrices: fmt::Debug + Send + Sync + 'static {
    /// The reference price of `symbol` (as validated: upper case), if there is one.
    fn price(&self, symbol: &str) -> Option<Decimal>;
}

/// No reference prices: limit buys are valued at their limit, every other order needs
/// approval, and no band applies.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPrices;

impl ReferencePrices for NoPrices {
    fn price(&self, _symbol: &str) -> Option<Decimal> {
        None
    }
}

/// What an order is worth, or `None` when that is unknown (and the order needs approval):
/// see the [module docs](self). Overflow is unknown too.
pub fn value(order: &ValidatedOrder, reference: Option<Decimal>) -> Option<Decimal> {
    let quantity = order.quantity.value();
    let price = match (order.kind.limit_price(), reference) {
        (Some(limit), Some(r)) => limit.value().max(r),
        // A buy never pays more than its limit.
        (Some(limit), None) if order.side == Side::Buy => limit.value(),
        // A market order (no limit) at the reference.
        (None, Some(r)) => r,
        // A sell or a market order without a reference: unknown.
        _ => return None,
    };
    quantity.checked_mul(price)
}

/// Whether `limit` is further from `reference` than `band_percent` percent of it.
pub fn outside_band(limit: Decimal, reference: Decimal, band_percent: Decimal) -> bool {
    let Some(allowed) = reference
        .checked_mul(band_percent)
        .and_then(|x| x.checked_div(Decimal::ONE_HUNDRED))
    else {
        return true;
    };
    let distance = (limit - reference).abs();
    distance > allowed
}

/// The most lines a prices file may have.
pub const MAX_PRICES: usize = 100_000;

/// How often [`PriceFile`] looks at its file for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(5);

/// Reference prices read from a file of `SYMBOL,PRICE` lines (blank lines and lines
/// starting with `#` ignored; symbols as orders spell them, prices positive decimals). The
/// file is read at start (a bad file stops start-up, naming the line) and again whenever
/// its modification time changes, looked at every [`RELOAD_EVERY`]; a changed file that
/// does not parse is logged and the previous prices stay.
#[derive(Debug)]
pub struct PriceFile {
    path: PathBuf,
    current: RwLock<Snapshot>,
}

#[derive(Debug, Clone)]
struct Snapshot {
    prices: Arc<HashMap<String, Decimal>>,
    modified: Option<SystemTime>,
}

impl PriceFile {
    /// Reads `path`.
    ///
    /// # Errors
    /// [`ServerError::Config`] naming the file and the first bad line, or why it cannot be
    /// read.
    pub fn open(path: &Path) -> Result<Self> {
        let (prices, modified) = read(path)?;
        Ok(Self {
            path: path.to_owned(),
            current: RwLock::new(Snapshot {
                prices: Arc::new(prices),
                modified,
            }),
        })
    }

    /// How many symbols have a price.
    pub fn len(&self) -> usize {
        self.snapshot().prices.len()
    }

    /// Whether no symbol has a price.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Snapshot {
        match self.current.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reads the file again if its modification time changed: `Ok(true)` if new prices
    /// were loaded.
    ///
    /// # Errors
    /// As [`open`](Self::open); the previous prices stay.
    pub fn reload(&self) -> Result<bool> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        if modified.is_some() && modified == self.snapshot().modified {
            return Ok(false);
        }
        let (prices, modified) = read(&self.path)?;
        let mut current = match self.current.write() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *current = Snapshot {
            prices: Arc::new(prices),
            modified,
        };
        Ok(true)
    }

    /// Reloads the file every [`RELOAD_EVERY`] for as long as the runtime runs.
    pub fn watch(self: &Arc<Self>) {
        let file = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(RELOAD_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let reloaded = {
                    let file = Arc::clone(&file);
                    tokio::task::spawn_blocking(move || file.reload()).await
                };
                match reloaded {
                    Ok(Ok(true)) => tracing::info!(
                        path = %file.path.display(),
                        symbols = file.len(),
                        "reference prices reloaded"
                    ),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::error!(
                        error = %e,
                        "reference prices not reloaded; the previous ones stay"
                    ),
                    Err(e) => tracing::error!(error = %e, "reference price reload failed"),
                }
            }
        });
    }
}

impl ReferencePrices for PriceFile {
    fn price(&self, symbol: &str) -> Option<Decimal> {
        match self.current.read() {
            Ok(s) => s.prices.get(symbol).copied(),
            Err(poisoned) => poisoned.into_inner().prices.get(symbol).copied(),
        }
    }
}

type Prices = (HashMap<String, Decimal>, Option<SystemTime>);

fn read(path: &Path) -> Result<Prices> {
    let bad =
        |what: String| ServerError::Config(format!("reference prices {}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut prices = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let n = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((symbol, price)) = line.split_once(',') else {
            return Err(bad(format!("line {n}: expected SYMBOL,PRICE")));
        };
        let (symbol, price) = (symbol.trim(), price.trim());
        let valid_symbol = !symbol.is_empty()
            && symbol.len() <= 64
            && symbol
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid_symbol {
            return Err(bad(format!(
                "line {n}: the symbol must be 1 to 64 upper-case letters, digits, `.` or `-`"
            )));
        }
        let price = finsec_validate::numbers::parse_decimal(price)
            .ok()
            .filter(|p| *p > Decimal::ZERO)
            .ok_or_else(|| bad(format!("line {n}: the price must be a positive decimal")))?;
        if prices.insert(symbol.to_owned(), price).is_some() {
            return Err(bad(format!("line {n}: {symbol} has a price already")));
        }
        if prices.len() > MAX_PRICES {
            return Err(bad(format!("more than {MAX_PRICES} prices")));
        }
    }
    Ok((prices, modified))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use finsec_validate::request::{OrderRequest, OrderRules};

    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn order(side: &str, kind: &str, quantity: &str, price: Option<&str>) -> ValidatedOrder {
        OrderRequest {
            symbol: "AAPL".to_owned(),
            side: side.to_owned(),
            order_type: kind.to_owned(),
            quantity: quantity.to_owned(),
            limit_price: price.map(str::to_owned),
            account_id: "ACC-1".to_owned(),
        }
        .validate(&OrderRules::default())
        .unwrap()
    }

    #[test]
    fn orders_are_valued_at_the_larger_of_their_price_and_the_reference() {
        let cases = [
            ("buy", "limit", "100", Some("10.00"), None, Some("1000")),
            (
                "buy",
                "limit",
                "100",
                Some("10.00"),
                Some("12"),
                Some("1200"),
            ),
            (
                "buy",
                "limit",
                "100",
                Some("10.00"),
                Some("8"),
                Some("1000"),
            ),
            ("sell", "limit", "100000000", Some("0.01"), None, None),
            (
                "sell",
                "limit",
                "100000000",
                Some("0.01"),
                Some("100"),
                Some("10000000000"),
            ),
            (
                "sell",
                "limit",
                "100",
                Some("10.00"),
                Some("8"),
                Some("1000"),
            ),
            ("buy", "market", "100", None, None, None),
            ("sell", "market", "100", None, Some("8.5"), Some("850")),
        ];
        for (side, kind, quantity, price, reference, expected) in cases {
            let o = order(side, kind, quantity, price);
            assert_eq!(
                value(&o, reference.map(d)),
                expected.map(d),
                "{side} {kind} {quantity} @ {price:?} ref {reference:?}"
            );
        }
        assert_eq!(cases.len(), 8);
    }

    #[test]
    fn bands_are_a_percentage_either_side_of_the_reference() {
        let band = d("10");
        assert!(!outside_band(d("110"), d("100"), band));
        assert!(!outside_band(d("90"), d("100"), band));
        assert!(outside_band(d("110.01"), d("100"), band));
        assert!(outside_band(d("89.99"), d("100"), band));
        assert!(outside_band(d("0.01"), d("100"), band));
        assert!(!outside_band(d("0.01"), d("100"), d("100")));
    }

    #[test]
    fn price_files_are_read_strictly_and_reloaded_on_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.csv");
        std::fs::write(&path, "# symbol,price\nAAPL,187.25\n\n BRK.B , 410.5 \n").unwrap();
        let file = PriceFile::open(&path).unwrap();
        assert_eq!(file.price("AAPL"), Some(d("187.25")));
        assert_eq!(file.price("BRK.B"), Some(d("410.5")));
        assert_eq!(file.price("MSFT"), None);
        assert_eq!(file.len(), 2);
        assert!(!file.reload().unwrap(), "unchanged");

        for (text, problem) in [
            ("AAPL 187.25\n", "line 1: expected SYMBOL,PRICE"),
            ("aapl,1\n", "line 1: the symbol"),
            ("AAPL,0\n", "line 1: the price must be a positive decimal"),
            ("AAPL,-1\n", "line 1: the price"),
            ("AAPL,abc\n", "line 1: the price"),
            ("AAPL,1\nAAPL,2\n", "line 2: AAPL has a price already"),
        ] {
            let bad = dir.path().join("bad.csv");
            std::fs::write(&bad, text).unwrap();
            let e = PriceFile::open(&bad).unwrap_err().to_string();
            assert!(e.contains(problem), "{text:?}: {e}");
        }

        // A changed file is read again; a broken one leaves the old prices in place.
        std::fs::write(&path, "AAPL,190\n").unwrap();
        let later = SystemTime::now() + Duration::from_secs(2);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert!(file.reload().unwrap());
        assert_eq!(file.price("AAPL"), Some(d("190")));
        assert_eq!(file.price("BRK.B"), None);
        std::fs::write(&path, "AAPL,broken\n").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later + Duration::from_secs(2))
            .unwrap();
        assert!(file.reload().is_err());
        assert_eq!(file.price("AAPL"), Some(d("190")));
    }
}
