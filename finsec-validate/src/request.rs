//! Composite validation: collect every field error of a request at once.
//!
//! A [`Validator`] runs the parsers of this crate (or any function returning an error with a
//! code) field by field, records each failure as a [`FieldError`] with a path, a stable code
//! and a message, and hands back either the typed value or every error together
//! ([`ValidationErrors`], which serialises to a JSON body suitable for an HTTP 422 response).
//! It is the derive-free counterpart of `validator`/`garde`: an application writes a small
//! function per request type, as [`OrderRequest::validate`] does for orders.
//!
//! ```
//! use finsec_validate::identifiers::{Isin, Symbol};
//! use finsec_validate::request::Validator;
//!
//! struct Watch { symbol: String, isin: String }
//! struct ValidWatch { symbol: Symbol, isin: Isin }
//!
//! fn validate(w: &Watch) -> Result<ValidWatch, finsec_validate::request::ValidationErrors> {
//!     let mut v = Validator::new();
//!     let symbol = v.field("symbol", w.symbol.parse::<Symbol>());
//!     let isin = v.field("isin", w.isin.parse::<Isin>());
//!     v.finish(|| Some(ValidWatch { symbol: symbol?, isin: isin? }))
//! }
//!
//! let errors = validate(&Watch { symbol: "aapl".into(), isin: "US0378331006".into() })
//!     .err()
//!     .unwrap();
//! let codes: Vec<_> = errors.iter().map(|e| (e.path.as_str(), e.code.as_ref())).collect();
//! assert_eq!(codes, [("symbol", "lowercase"), ("isin", "check_digit")]);
//! ```
//!
//! # Policies
//!
//! - Order fields arrive as strings ([`OrderRequest`]) so that one bad field does not stop
//!   serde before the others are checked; the JSON shape itself (unknown fields, wrong JSON
//!   types) is still refused by serde.
//! - A market order with a limit price is refused (`forbidden`), not silently stripped: the
//!   client may have meant a limit order.
//! - At most [`Validator::DEFAULT_MAX_ERRORS`] errors are collected, then a single
//!   `too_many_errors` entry ends the list, so a hostile request with thousands of bad items
//!   cannot make the error response larger than the request.
//!
//! # Threat model
//!
//! Field error messages come from this crate's error types, which never echo raw input, so an
//! error body cannot reflect script or control characters back to a client or into a log.
//! Paths are built by the application from its own field names.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::identifiers::{IdentifierError, Symbol, SymbolRules};
use crate::numbers::{NumberError, Price, PriceRules, Quantity, QuantityRules};

/// An error that has a stable machine-readable code; what [`Validator::field`] records.
pub trait ErrorCode: fmt::Display {
    /// The stable code.
    fn code(&self) -> &'static str;
}

impl ErrorCode for IdentifierError {
    fn code(&self) -> &'static str {
        IdentifierError::code(self)
    }
}

impl ErrorCode for NumberError {
    fn code(&self) -> &'static str {
        NumberError::code(self)
    }
}

impl ErrorCode for RequestError {
    fn code(&self) -> &'static str {
        RequestError::code(self)
    }
}

/// Why an order field of this module was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not `buy` or `sell`.
    #[error("side must be \"buy\" or \"sell\"")]
    UnknownSide,
    /// Not `market` or `limit`.
    #[error("order type must be \"market\" or \"limit\"")]
    UnknownOrderType,
    /// An account id that is empty, too long, or has characters other than ASCII letters,
    /// digits, `-` and `_`.
    #[error("account id must be 1 to {max} ASCII letters, digits, '-' or '_'")]
    AccountId {
        /// The maximum length.
        max: usize,
    },
    /// A required field is missing.
    #[error("{field} is required")]
    Required {
        /// The field.
        field: &'static str,
    },
    /// A field is present where it is not allowed.
    #[error("{field} is not allowed {when}")]
    Forbidden {
        /// The field.
        field: &'static str,
        /// The condition, e.g. `for market orders`.
        when: &'static str,
    },
}

impl RequestError {
    /// A stable, machine-readable code for this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownSide => "unknown_side",
            Self::UnknownOrderType => "unknown_order_type",
            Self::AccountId { .. } => "invalid_account_id",
            Self::Required { .. } => "required",
            Self::Forbidden { .. } => "forbidden",
        }
    }
}

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where: field names joined with `.`, list indices as `[i]` (`legs[0].price`).
    pub path: String,
    /// A stable machine-readable code (`lowercase`, `check_digit`, `required`, ...).
    pub code: Cow<'static, str>,
    /// A human-readable message (never containing the raw input).
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.path, self.message, self.code)
    }
}

/// Every field error of a request; serialises as `{"errors": [{"path", "code", "message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, thiserror::Error)]
pub struct ValidationErrors {
    /// The errors, in the order the fields were checked.
    pub errors: Vec<FieldError>,
}

impl ValidationErrors {
    /// Number of errors.
    #[must_use]
    pub fn len(&self) -> usize {
        self.errors.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.errors.iter()
    }

    /// The errors at exactly `path`.
    pub fn at<'a>(&'a self, path: &'a str) -> impl Iterator<Item = &'a FieldError> + 'a {
        self.errors.iter().filter(move |e| e.path == path)
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} field error(s)", self.errors.len())?;
        for (i, e) in self.errors.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            fmt::Display::fmt(e, f)?;
        }
        Ok(())
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.errors.iter()
    }
}

/// Collects field errors while a request is checked; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Validator {
    prefix: String,
    errors: Vec<FieldError>,
    max_errors: usize,
    truncated: bool,
}

impl Default for Validator {
    fn default() -> Self {
        Self::new()
    }
}

impl Validator {
    /// Default cap on collected errors.
    pub const DEFAULT_MAX_ERRORS: usize = 100;

    /// An empty validator with the default error cap.
    #[must_use]
    pub fn new() -> Self {
        Self::with_max_errors(Self::DEFAULT_MAX_ERRORS)
    }

    /// An empty validator that keeps at most `max_errors` errors (at least one).
    #[must_use]
    pub fn with_max_errors(max_errors: usize) -> Self {
        Self {
            prefix: String::new(),
            errors: Vec::new(),
            max_errors: max_errors.max(1),
            truncated: false,
        }
    }

    /// Records `result`'s error under `name` (relative to the current nesting) and returns
    /// the value, or `None` if it failed.
    pub fn field<T, E: ErrorCode>(&mut self, name: &str, result: Result<T, E>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.error(name, error.code(), error.to_string());
                None
            }
        }
    }

    /// Records an error with an application-defined code.
    pub fn error(&mut self, name: &str, code: &'static str, message: impl Into<String>) {
        if self.truncated {
            return;
        }
        if self.errors.len() >= self.max_errors {
            self.truncated = true;
            self.errors.push(FieldError {
                path: String::new(),
                code: Cow::Borrowed("too_many_errors"),
                message: format!(
                    "more than {} errors; the rest were not reported",
                    self.max_errors
                ),
            });
            return;
        }
        let path = self.path(name);
        self.errors.push(FieldError {
            path,
            code: Cow::Borrowed(code),
            message: message.into(),
        });
    }

    /// Runs `f` with `name` appended to the path (for nested objects).
    pub fn nested<R>(&mut self, name: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = self.prefix.len();
        self.prefix = self.path(name);
        let out = f(self);
        self.prefix.truncate(saved);
        out
    }

    /// Runs `f` with `[index]` appended to the path (for list items).
    pub fn item<R>(&mut self, index: usize, f: impl FnOnce(&mut Self) -> R) -> R {
        let saved = self.prefix.len();
        self.prefix.push_str(&format!("[{index}]"));
        let out = f(self);
        self.prefix.truncate(saved);
        out
    }

    /// Whether any error has been recorded.
    #[must_use]
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Ends validation: every error recorded, or the value `build` assembles from the parsed
    /// fields (it is called only when no error was recorded).
    ///
    /// # Errors
    ///
    /// [`ValidationErrors`] with every recorded error. If there were none but `build` returns
    /// `None` (a validator that forgot to record an error), one `incomplete` error: the
    /// validator fails closed.
    pub fn finish<T>(self, build: impl FnOnce() -> Option<T>) -> Result<T, ValidationErrors> {
        if !self.errors.is_empty() {
            return Err(ValidationErrors {
                errors: self.errors,
            });
        }
        build().ok_or_else(|| ValidationErrors {
            errors: vec![FieldError {
                path: self.prefix,
                code: Cow::Borrowed("incomplete"),
                message: "a field failed without an error being recorded".to_owned(),
            }],
        })
    }

    fn path(&self, name: &str) -> String {
        match (self.prefix.is_empty(), name.is_empty()) {
            (true, _) => name.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{name}", self.prefix),
        }
    }
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

impl Side {
    /// `buy` or `sell`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Buy => "buy",
            Self::Sell => "sell",
        }
    }
}

impl FromStr for Side {
    type Err = RequestError;

    /// Exactly `buy` or `sell` (strict: no other case, no spaces).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "buy" => Ok(Self::Buy),
            "sell" => Ok(Self::Sell),
            _ => Err(RequestError::UnknownSide),
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The order types [`OrderRequest`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum OrderType {
    /// Execute at the best available price; no limit price.
    Market,
    /// Execute at the limit price or better.
    Limit,
}

impl OrderType {
    /// `market` or `limit`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Market => "market",
            Self::Limit => "limit",
        }
    }
}

impl FromStr for OrderType {
    type Err = RequestError;

    /// Exactly `market` or `limit`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "market" => Ok(Self::Market),
            "limit" => Ok(Self::Limit),
            _ => Err(RequestError::UnknownOrderType),
        }
    }
}

impl fmt::Display for OrderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A trading account id: 1 to 64 ASCII letters, digits, `-` or `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountId(Box<str>);

impl AccountId {
    /// Maximum length.
    pub const MAX_LEN: usize = 64;

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = RequestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s.into()))
        } else {
            Err(RequestError::AccountId { max: Self::MAX_LEN })
        }
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <Cow<'de, str> as Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An order as received: every field is text so all of them can be checked and reported
/// together. Unknown JSON fields are refused.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    /// Ticker symbol.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `market` or `limit`.
    pub order_type: String,
    /// Decimal text.
    pub quantity: String,
    /// Decimal text; required for limit orders, forbidden for market orders.
    #[serde(default)]
    pub limit_price: Option<String>,
    /// Account id.
    pub account_id: String,
}

/// The venue rules an [`OrderRequest`] is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OrderRules {
    /// Symbol rules.
    pub symbol: SymbolRules,
    /// Quantity rules.
    pub quantity: QuantityRules,
    /// Price rules for the limit price.
    pub price: PriceRules,
}

/// Market or limit, with the limit price only where it belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "order_type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum OrderKind {
    /// A market order.
    Market,
    /// A limit order.
    Limit {
        /// The limit price.
        limit_price: Price,
    },
}

impl OrderKind {
    /// The order type.
    #[must_use]
    pub fn order_type(&self) -> OrderType {
        match self {
            Self::Market => OrderType::Market,
            Self::Limit { .. } => OrderType::Limit,
        }
    }

    /// The limit price, for a limit order.
    #[must_use]
    pub fn limit_price(&self) -> Option<Price> {
        match self {
            Self::Market => None,
            Self::Limit { limit_price } => Some(*limit_price),
        }
    }
}

/// An order whose every field was checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct ValidatedOrder {
    /// Ticker symbol.
    pub symbol: Symbol,
    /// Buy or sell.
    pub side: Side,
    /// Market or limit (with its price).
    #[serde(flatten)]
    pub kind: OrderKind,
    /// Quantity.
    pub quantity: Quantity,
    /// Account id.
    pub account_id: AccountId,
}

impl OrderRequest {
    /// Checks every field against `rules` and reports every failure at once.
    ///
    /// Paths are the JSON field names: `symbol`, `side`, `order_type`, `quantity`,
    /// `limit_price`, `account_id`.
    ///
    /// # Errors
    ///
    /// [`ValidationErrors`] listing each failing field.
    pub fn validate(&self, rules: &OrderRules) -> Result<ValidatedOrder, ValidationErrors> {
        let mut v = Validator::new();
        let order = self.validate_into(&mut v, rules);
        v.finish(|| order)
    }

    /// Checks every field, recording errors in `v` (under its current path, so an order can be
    /// one part of a larger request). Returns the order when every field passed.
    pub fn validate_into(&self, v: &mut Validator, rules: &OrderRules) -> Option<ValidatedOrder> {
        let symbol = v.field("symbol", Symbol::parse(&self.symbol, &rules.symbol));
        let side = v.field("side", self.side.parse::<Side>());
        let order_type = v.field("order_type", self.order_type.parse::<OrderType>());
        let quantity = v.field("quantity", Quantity::parse(&self.quantity, &rules.quantity));
        let account_id = v.field("account_id", self.account_id.parse::<AccountId>());
        let kind = match (order_type, self.limit_price.as_deref()) {
            (Some(OrderType::Market), None) => Some(OrderKind::Market),
            (Some(OrderType::Market), Some(_)) => {
                v.field::<(), _>(
                    "limit_price",
                    Err(RequestError::Forbidden {
                        field: "limit_price",
                        when: "for market orders",
                    }),
                );
                None
            }
            (Some(OrderType::Limit), None) => {
                v.field::<(), _>(
                    "limit_price",
                    Err(RequestError::Required {
                        field: "limit_price",
                    }),
                );
                None
            }
            (Some(OrderType::Limit), Some(text)) => v
                .field("limit_price", Price::parse(text, &rules.price))
                .map(|limit_price| OrderKind::Limit { limit_price }),
            // Unknown order type: still report a malformed price, if one was given.
            (None, price) => {
                if let Some(text) = price {
                    v.field("limit_price", Price::parse(text, &rules.price));
                }
                None
            }
        };
        Some(ValidatedOrder {
            symbol: symbol?,
            side: side?,
            kind: kind?,
            quantity: quantity?,
            account_id: account_id?,
        })
    }
}
