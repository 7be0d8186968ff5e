//! Prices and quantities on [`rust_decimal::Decimal`], checked against venue rules.
//!
//! A [`Price`] or [`Quantity`] is a decimal that satisfied a [`PriceRules`] or
//! [`QuantityRules`]: bounds, tick or lot size, and maximum number of decimals. Floats never
//! appear: text is parsed straight to `Decimal`, and serde reads and writes the decimal as a
//! JSON string (`"101.25"`), never a JSON number, because a JSON number passes through `f64`
//! in most clients.
//!
//! # Policies
//!
//! - **Syntax is strict**: `-?[0-9]+(\.[0-9]+)?`, at most 64 characters. No `+`, exponent,
//!   underscores, thousands separators, surrounding spaces, `NaN` or `inf` (all of which some
//!   decimal parsers accept). A value with more digits than `Decimal` holds is refused, never
//!   rounded.
//! - **Positive by default**: a price or quantity must be above zero unless the rules set a
//!   lower bound explicitly ([`PriceRules::with_bounds`]), which is how a venue with negative
//!   prices (spreads, some futures) opts in.
//! - **Decimals are counted without trailing zeros** (`1.500` has one decimal), and the value
//!   keeps the scale it was written with, so `Display` gives back the input text.
//! - **Defaults** ([`PriceRules::default`], [`QuantityRules::default`], used by `FromStr` and
//!   `Deserialize`): positive, at most 8 decimals, no tick/lot size, no upper bound. Venues
//!   should build their own rules; the defaults only keep out nonsense.
//!
//! # Threat model
//!
//! Guards against fat-finger and crafted values (negative, zero, absurdly precise, out of
//! range, off-tick) and against parser differentials between the client and this service. It
//! does not know market prices: price bands and collars belong to the risk engine.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;

/// Longest decimal text accepted.
pub const MAX_DECIMAL_TEXT_LEN: usize = 64;

/// Why a number or a number rule was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberError {
    /// The text was empty.
    #[error("number is empty")]
    Empty,
    /// The text is longer than [`MAX_DECIMAL_TEXT_LEN`].
    #[error("number is too long: at most {max} characters")]
    TooLong {
        /// The limit.
        max: usize,
    },
    /// The text is not a plain decimal.
    #[error("not a decimal number: {reason}")]
    Syntax {
        /// What is wrong.
        reason: &'static str,
    },
    /// The value does not fit in a `Decimal` without rounding.
    #[error("number is out of the representable range or too precise")]
    Unrepresentable,
    /// Zero or negative where a positive value is required.
    #[error("{what} must be greater than zero")]
    NotPositive {
        /// `price` or `quantity`.
        what: &'static str,
    },
    /// More decimals than allowed.
    #[error("{what} has {actual} decimals, at most {max} allowed")]
    TooManyDecimals {
        /// `price` or `quantity`.
        what: &'static str,
        /// The limit.
        max: u32,
        /// Decimals found (trailing zeros not counted).
        actual: u32,
    },
    /// Below the lower bound.
    #[error("{what} is below the minimum {min}")]
    BelowMinimum {
        /// `price` or `quantity`.
        what: &'static str,
        /// The bound.
        min: Decimal,
    },
    /// Above the upper bound.
    #[error("{what} is above the maximum {max}")]
    AboveMaximum {
        /// `price` or `quantity`.
        what: &'static str,
        /// The bound.
        max: Decimal,
    },
    /// A price that is not a multiple of the tick size.
    #[error("price is not a multiple of the tick size {tick}")]
    OffTick {
        /// The tick size.
        tick: Decimal,
    },
    /// A quantity that is not a multiple of the lot size.
    #[error("quantity is not a multiple of the lot size {lot}")]
    OddLot {
        /// The lot size.
        lot: Decimal,
    },
    /// Rules given to a constructor are inconsistent.
    #[error("invalid rules: {reason}")]
    InvalidRules {
        /// What is wrong.
        reason: &'static str,
    },
}

impl NumberError {
    /// A stable, machine-readable code for this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::TooLong { .. } => "too_long",
            Self::Syntax { .. } => "syntax",
            Self::Unrepresentable => "unrepresentable",
            Self::NotPositive { .. } => "not_positive",
            Self::TooManyDecimals { .. } => "too_many_decimals",
            Self::BelowMinimum { .. } => "below_minimum",
            Self::AboveMaximum { .. } => "above_maximum",
            Self::OffTick { .. } => "tick_size",
            Self::OddLot { .. } => "lot_size",
            Self::InvalidRules { .. } => "invalid_rules",
        }
    }
}

/// Parses strict decimal text (`-?[0-9]+(\.[0-9]+)?`) without rounding. Leading zeros are
/// accepted (`007.5` is 7.5, as in FIX `float` fields) and not kept: the value displays as
/// `7.5`.
///
/// # Errors
///
/// [`NumberError::Empty`], [`NumberError::TooLong`], [`NumberError::Syntax`] or
/// [`NumberError::Unrepresentable`].
pub fn parse_decimal(input: &str) -> Result<Decimal, NumberError> {
    if input.is_empty() {
        return Err(NumberError::Empty);
    }
    if input.len() > MAX_DECIMAL_TEXT_LEN {
        return Err(NumberError::TooLong {
            max: MAX_DECIMAL_TEXT_LEN,
        });
    }
    let unsigned = input.strip_prefix('-').unwrap_or(input);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) {
        return Err(NumberError::Syntax {
            reason: "expected digits before any decimal point",
        });
    }
    if frac.is_some_and(|f| !digits(f)) {
        return Err(NumberError::Syntax {
            reason: "expected digits after the decimal point",
        });
    }
    Decimal::from_str_exact(input).map_err(|_| NumberError::Unrepresentable)
}

/// Decimals of `value` not counting trailing zeros.
fn significant_decimals(value: Decimal) -> u32 {
    value.normalize().scale()
}

/// The checks prices and quantities share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Limits {
    /// `None`: the value must be above zero.
    min: Option<Decimal>,
    max: Option<Decimal>,
    /// Tick or lot size; always positive.
    step: Option<Decimal>,
    max_decimals: u32,
}

impl Limits {
    const DEFAULT: Self = Self {
        min: None,
        max: None,
        step: None,
        max_decimals: 8,
    };

    fn new(step: Option<Decimal>, max_decimals: u32) -> Result<Self, NumberError> {
        if max_decimals > Decimal::MAX_SCALE {
            return Err(NumberError::InvalidRules {
                reason: "maximum decimals cannot exceed 28",
            });
        }
        if let Some(step) = step {
            if step <= Decimal::ZERO {
                return Err(NumberError::InvalidRules {
                    reason: "tick and lot sizes must be greater than zero",
                });
            }
            if significant_decimals(step) > max_decimals {
                return Err(NumberError::InvalidRules {
                    reason: "tick or lot size has more decimals than the maximum",
                });
            }
        }
        Ok(Self {
            step,
            max_decimals,
            ..Self::DEFAULT
        })
    }

    fn with_bounds(self, min: Decimal, max: Decimal) -> Result<Self, NumberError> {
        if min > max {
            return Err(NumberError::InvalidRules {
                reason: "minimum is above maximum",
            });
        }
        Ok(Self {
            min: Some(min),
            max: Some(max),
            ..self
        })
    }

    fn with_max(self, max: Decimal) -> Result<Self, NumberError> {
        if max <= Decimal::ZERO || self.min.is_some_and(|min| min > max) {
            return Err(NumberError::InvalidRules {
                reason: "maximum must be positive and not below the minimum",
            });
        }
        Ok(Self {
            max: Some(max),
            ..self
        })
    }

    /// Checks everything except the step (whose error differs between price and quantity).
    fn check(&self, value: Decimal, what: &'static str) -> Result<(), NumberError> {
        match self.min {
            None if value <= Decimal::ZERO => return Err(NumberError::NotPositive { what }),
            Some(min) if value < min => return Err(NumberError::BelowMinimum { what, min }),
            _ => {}
        }
        if let Some(max) = self.max
            && value > max
        {
            return Err(NumberError::AboveMaximum { what, max });
        }
        let actual = significant_decimals(value);
        if actual > self.max_decimals {
            return Err(NumberError::TooManyDecimals {
                what,
                max: self.max_decimals,
                actual,
            });
        }
        Ok(())
    }

    fn on_step(&self, value: Decimal) -> bool {
        match self.step {
            None => true,
            Some(step) => value.checked_rem(step).is_some_and(|r| r.is_zero()),
        }
    }
}

/// Venue rules for prices: tick size, maximum decimals, bounds. Validated at construction.
///
/// ```
/// use finsec_validate::numbers::{Price, PriceRules};
/// use rust_decimal::Decimal;
///
/// let rules = PriceRules::new(Some(Decimal::new(5, 2)), 2)?; // tick 0.05
/// assert!(Price::parse("101.25", &rules).is_ok());
/// assert!(Price::parse("101.26", &rules).is_err()); // off tick
/// assert!(Price::parse("0", &rules).is_err()); // not positive
/// # Ok::<(), finsec_validate::numbers::NumberError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PriceRules(Limits);

impl PriceRules {
    /// Positive prices with an optional tick size and at most `max_decimals` decimals.
    ///
    /// # Errors
    ///
    /// [`NumberError::InvalidRules`] if the tick is not positive, has more decimals than
    /// `max_decimals`, or `max_decimals` exceeds 28.
    pub fn new(tick_size: Option<Decimal>, max_decimals: u32) -> Result<Self, NumberError> {
        Limits::new(tick_size, max_decimals).map(Self)
    }

    /// The same rules with inclusive bounds `min..=max`. A `min` of zero or below allows
    /// non-positive prices.
    ///
    /// # Errors
    ///
    /// [`NumberError::InvalidRules`] if `min > max`.
    pub fn with_bounds(self, min: Decimal, max: Decimal) -> Result<Self, NumberError> {
        self.0.with_bounds(min, max).map(Self)
    }

    /// The same rules with an inclusive upper bound (prices stay positive unless bounds were
    /// set).
    ///
    /// # Errors
    ///
    /// [`NumberError::InvalidRules`] if `max` is not positive or is below the minimum.
    pub fn with_max(self, max: Decimal) -> Result<Self, NumberError> {
        self.0.with_max(max).map(Self)
    }

    /// The tick size, if any.
    #[must_use]
    pub fn tick_size(&self) -> Option<Decimal> {
        self.0.step
    }

    /// The maximum number of decimals.
    #[must_use]
    pub fn max_decimals(&self) -> u32 {
        self.0.max_decimals
    }
}

impl Default for PriceRules {
    /// Positive, at most 8 decimals, no tick size, no upper bound.
    fn default() -> Self {
        Self(Limits::DEFAULT)
    }
}

/// Venue rules for quantities: lot size, maximum decimals, bounds. Validated at construction.
///
/// ```
/// use finsec_validate::numbers::{Quantity, QuantityRules};
/// use rust_decimal::Decimal;
///
/// let rules = QuantityRules::new(Some(Decimal::from(100)), 0)?; // round lots of 100
/// assert!(Quantity::parse("300", &rules).is_ok());
/// assert!(Quantity::parse("250", &rules).is_err());
/// # Ok::<(), finsec_validate::numbers::NumberError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QuantityRules(Limits);

impl QuantityRules {
    /// Positive quantities with an optional lot size and at most `max_decimals` decimals.
    ///
    /// # Errors
    ///
    /// [`NumberError::InvalidRules`] if the lot is not positive, has more decimals than
    /// `max_decimals`, or `max_decimals` exceeds 28.
    pub fn new(lot_size: Option<Decimal>, max_decimals: u32) -> Result<Self, NumberError> {
        Limits::new(lot_size, max_decimals).map(Self)
    }

    /// The same rules with inclusive bounds `min..=max`.
    ///
    /// # Errors
    ///
    /// [`NumberError::InvalidRules`] if `min > max` or `min` is not positive (a quantity is
    /// always positive; the side says buy or sell).
    pub fn with_bounds(self, min: Decimal, max: Decimal) -> Result<Self, NumberError> {
        if min <= Decimal::ZERO {
            return Err(NumberError::InvalidRules {
                reason: "minimum quantity must be greater than zero",
            });
        }
        self.0.with_bounds(min, max).map(Self)
    }

    /// The same rules with an inclusive upper bound.
    ///
    /// # Errors
    ///
    /// [`NumberError::InvalidRules`] if `max` is not positive or is below the minimum.
    pub fn with_max(self, max: Decimal) -> Result<Self, NumberError> {
        self.0.with_max(max).map(Self)
    }

    /// The lot size, if any.
    #[must_use]
    pub fn lot_size(&self) -> Option<Decimal> {
        self.0.step
    }

    /// The maximum number of decimals.
    #[must_use]
    pub fn max_decimals(&self) -> u32 {
        self.0.max_decimals
    }
}

impl Default for QuantityRules {
    /// Positive, at most 8 decimals, no lot size, no upper bound.
    fn default() -> Self {
        Self(Limits::DEFAULT)
    }
}

/// A price that satisfied a [`PriceRules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Price(Decimal);

impl Price {
    /// Checks `value` against `rules`.
    ///
    /// # Errors
    ///
    /// [`NumberError`] for a value outside the rules.
    pub fn new(value: Decimal, rules: &PriceRules) -> Result<Self, NumberError> {
        rules.0.check(value, "price")?;
        if !rules.0.on_step(value) {
            return Err(NumberError::OffTick {
                tick: rules.0.step.unwrap_or_default(),
            });
        }
        Ok(Self(value))
    }

    /// Parses strict decimal text and checks it against `rules`.
    ///
    /// # Errors
    ///
    /// [`NumberError`] for bad syntax or a value outside the rules.
    pub fn parse(input: &str, rules: &PriceRules) -> Result<Self, NumberError> {
        Self::new(parse_decimal(input)?, rules)
    }

    /// The price.
    #[must_use]
    pub fn value(&self) -> Decimal {
        self.0
    }
}

/// A quantity that satisfied a [`QuantityRules`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity(Decimal);

impl Quantity {
    /// Checks `value` against `rules`.
    ///
    /// # Errors
    ///
    /// [`NumberError`] for a value outside the rules.
    pub fn new(value: Decimal, rules: &QuantityRules) -> Result<Self, NumberError> {
        rules.0.check(value, "quantity")?;
        if !rules.0.on_step(value) {
            return Err(NumberError::OddLot {
                lot: rules.0.step.unwrap_or_default(),
            });
        }
        Ok(Self(value))
    }

    /// Parses strict decimal text and checks it against `rules`.
    ///
    /// # Errors
    ///
    /// [`NumberError`] for bad syntax or a value outside the rules.
    pub fn parse(input: &str, rules: &QuantityRules) -> Result<Self, NumberError> {
        Self::new(parse_decimal(input)?, rules)
    }

    /// The quantity.
    #[must_use]
    pub fn value(&self) -> Decimal {
        self.0
    }
}

macro_rules! decimal_text_impls {
    ($ty:ident, $rules:ident) => {
        impl FromStr for $ty {
            type Err = NumberError;

            /// Strict parse under the default rules.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s, &$rules::default())
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl From<$ty> for Decimal {
            fn from(value: $ty) -> Self {
                value.0
            }
        }

        impl serde::Serialize for $ty {
            /// As a JSON string, never a number.
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            /// From a string, under the default rules.
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text =
                    <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = NumberError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }
    };
}

decimal_text_impls!(Price, PriceRules);
decimal_text_impls!(Quantity, QuantityRules);
