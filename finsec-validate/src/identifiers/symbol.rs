//! Ticker symbols, with rules that differ per venue.

use std::fmt;
use std::str::FromStr;

use super::{IdKind, IdentifierError, Normalization, prepare};

/// A ticker symbol (`AAPL`, `BRK.B`, `RDS-A`, `7203`) that satisfied a [`SymbolRules`].
///
/// `FromStr` and `Deserialize` use [`SymbolRules::default`]; venues with other conventions
/// parse with [`Symbol::parse`] and their own rules. A symbol contains only ASCII letters,
/// digits and the rules' separators, so it is safe in logs, file names and FIX messages.
///
/// ```
/// use finsec_validate::identifiers::{Symbol, SymbolRules};
///
/// let s: Symbol = "BRK.B".parse()?;
/// assert_eq!(s.as_str(), "BRK.B");
/// assert!("brk.b".parse::<Symbol>().is_err());
/// let slash = SymbolRules::new(12, "/")?;
/// assert!(Symbol::parse("BRK/B", &slash).is_ok());
/// # Ok::<(), finsec_validate::identifiers::IdentifierError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(Box<str>);

/// What to do with lower-case letters in a symbol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum CasePolicy {
    /// Refuse them (the default: most venues publish upper-case symbols).
    #[default]
    UpperOnly,
    /// Upper-case them before checking (the symbol is stored upper-cased).
    Uppercase,
    /// Accept and keep them (venues with case-significant symbols).
    Preserve,
}

/// The rules a venue's symbols follow: maximum length, separator characters, case policy.
///
/// Always: ASCII letters and digits plus the separators; the first and last characters are
/// letters or digits; no two separators in a row; no whitespace or control characters.
/// Validated at construction, so a `SymbolRules` value is always usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SymbolRules {
    max_len: usize,
    /// Bit `b` set: ASCII byte `b` is an allowed separator.
    separators: u128,
    case: CasePolicy,
}

impl SymbolRules {
    /// Default maximum length: 12 characters.
    pub const DEFAULT_MAX_LEN: usize = 12;
    /// Default separators: `.` and `-` (`BRK.B`, `RDS-A`).
    pub const DEFAULT_SEPARATORS: &'static str = ".-";
    /// Largest maximum length a rule may set.
    pub const MAX_MAX_LEN: usize = 64;

    /// Rules with the given maximum length and separators, upper case only.
    ///
    /// # Errors
    ///
    /// [`IdentifierError::InvalidRules`] if `max_len` is 0 or above [`Self::MAX_MAX_LEN`], or a
    /// separator is not ASCII punctuation.
    pub fn new(max_len: usize, separators: &str) -> Result<Self, IdentifierError> {
        if max_len == 0 || max_len > Self::MAX_MAX_LEN {
            return Err(IdentifierError::InvalidRules {
                reason: "symbol maximum length must be between 1 and 64",
            });
        }
        let mut mask = 0u128;
        for c in separators.chars() {
            if !c.is_ascii_punctuation() {
                return Err(IdentifierError::InvalidRules {
                    reason: "symbol separators must be ASCII punctuation",
                });
            }
            mask |= 1u128 << u32::from(c);
        }
        Ok(Self {
            max_len,
            separators: mask,
            case: CasePolicy::UpperOnly,
        })
    }

    /// The same rules with another case policy.
    #[must_use]
    pub fn with_case(mut self, case: CasePolicy) -> Self {
        self.case = case;
        self
    }

    /// The maximum length in characters.
    #[must_use]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The case policy.
    #[must_use]
    pub fn case(&self) -> CasePolicy {
        self.case
    }

    fn is_separator(&self, b: u8) -> bool {
        b < 128 && self.separators & (1u128 << b) != 0
    }
}

impl Default for SymbolRules {
    fn default() -> Self {
        Self {
            max_len: Self::DEFAULT_MAX_LEN,
            separators: (1u128 << b'.') | (1u128 << b'-'),
            case: CasePolicy::UpperOnly,
        }
    }
}

impl Symbol {
    /// Parses `input` under `rules`, strictly (no trimming).
    ///
    /// # Errors
    ///
    /// [`IdentifierError`] naming the first problem: empty, surrounding whitespace, too long,
    /// a character not allowed, lower case (under [`CasePolicy::UpperOnly`]), misplaced
    /// separator.
    pub fn parse(input: &str, rules: &SymbolRules) -> Result<Self, IdentifierError> {
        Self::parse_with(input, rules, Normalization::Strict)
    }

    /// Parses after trimming surrounding ASCII whitespace and upper-casing ASCII letters
    /// (whatever the rules' case policy).
    ///
    /// # Errors
    ///
    /// As [`Symbol::parse`].
    pub fn parse_lenient(input: &str, rules: &SymbolRules) -> Result<Self, IdentifierError> {
        Self::parse_with(input, rules, Normalization::Lenient)
    }

    fn parse_with(
        input: &str,
        rules: &SymbolRules,
        norm: Normalization,
    ) -> Result<Self, IdentifierError> {
        let kind = IdKind::Symbol;
        let text = prepare(input, kind, norm)?;
        // Bound the work before counting characters: a valid symbol is ASCII, one byte each.
        let too_long = |actual| IdentifierError::TooLong {
            kind,
            max: rules.max_len,
            actual,
        };
        if text.len() > rules.max_len * 4 {
            return Err(too_long(text.chars().take(rules.max_len * 4 + 1).count()));
        }
        let chars = text.chars().count();
        if chars > rules.max_len {
            return Err(too_long(chars));
        }
        let upper = norm == Normalization::Lenient || rules.case == CasePolicy::Uppercase;
        let mut out = String::with_capacity(text.len());
        let mut previous_separator = false;
        for (c, position) in text.chars().zip(1..) {
            let c = if upper { c.to_ascii_uppercase() } else { c };
            if c.is_ascii_lowercase() && rules.case == CasePolicy::UpperOnly {
                return Err(IdentifierError::Lowercase { kind, position });
            }
            let separator = u8::try_from(c).is_ok_and(|b| rules.is_separator(b));
            if !(c.is_ascii_alphanumeric() || separator) {
                return Err(IdentifierError::InvalidCharacter {
                    kind,
                    position,
                    character: c,
                });
            }
            if separator {
                if position == 1 || position == chars {
                    return Err(IdentifierError::Format {
                        kind,
                        reason: "a symbol cannot start or end with a separator",
                    });
                }
                if previous_separator {
                    return Err(IdentifierError::Format {
                        kind,
                        reason: "a symbol cannot have two separators in a row",
                    });
                }
            }
            previous_separator = separator;
            out.push(c);
        }
        Ok(Self(out.into_boxed_str()))
    }

    /// The symbol as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Symbol {
    type Err = IdentifierError;

    /// Strict parse under [`SymbolRules::default`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s, &SymbolRules::default())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl serde::Serialize for Symbol {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Symbol {
    /// Deserialises under [`SymbolRules::default`].
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl TryFrom<String> for Symbol {
    type Error = IdentifierError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl TryFrom<&str> for Symbol {
    type Error = IdentifierError;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        value.parse()
    }
}
