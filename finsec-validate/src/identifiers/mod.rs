//! Parsed financial identifiers: [`Symbol`], [`Isin`], [`Lei`], [`Mic`], [`Currency`], [`Cfi`], [`Country`].
//!
//! Every type here is a value that has already been checked: if you hold an [`Isin`], its
//! check digit was verified. Each one implements `FromStr` (the strict parse), `Display`
//! (the canonical text, which parses back to the same value), `Serialize` (as that text) and
//! `Deserialize` (which runs the same strict parse, so a JSON body cannot smuggle in an
//! unchecked identifier). Errors are [`IdentifierError`] values with a stable
//! [`code`](IdentifierError::code) for machine consumers.
//!
//! # Policies
//!
//! The test corpus (`testdata/financial-ids`, see its `SOURCES.md`) marks the cases whose
//! answer depends on a policy. The choices made here:
//!
//! - **`case`**: strict by default. ISO 6166, 17442, 10383, 4217 and 10962 all define upper-case
//!   codes; `us0378331005` is refused with [`IdentifierError::Lowercase`]. Each type has an
//!   explicit `parse_lenient` (or takes a [`Normalization`]) that upper-cases ASCII letters first,
//!   for input typed by people. Non-ASCII is never folded (full-width `ＵＳ` stays invalid).
//! - **`whitespace`**: strict by default: leading or trailing whitespace is refused with
//!   [`IdentifierError::SurroundingWhitespace`] rather than silently trimmed, because a value
//!   that round-trips through storage must compare equal to what was checked. The lenient
//!   parse trims ASCII whitespace. Whitespace inside a code is refused in both modes.
//! - **`prefix`** (ISIN): checked by default ([`IsinPrefixPolicy::Registered`]). The first two
//!   letters must be an ISO 3166-1 alpha-2 code officially assigned (249 codes, taken from the
//!   Debian `iso-codes` 4.15 package `iso_3166-1.json`, cross-checked against the tz database
//!   `iso3166.tab`) or one of the non-country prefixes used by numbering agencies: `XS`
//!   (international securities, ICSDs Euroclear/Clearstream), `EU` (European Union issues),
//!   `XA`, `XB`, `XC`, `XD` (CUSIP Global Services, international securities), `EZ` (ANNA DSB,
//!   OTC derivatives) and `AN` (Netherlands Antilles, withdrawn from ISO 3166 but ISINs issued
//!   under it are still outstanding). User-assigned codes (`AA`, `QM`-`QZ`, `XE`-`XZ` other than
//!   the above, `ZZ`) are refused. [`IsinPrefixPolicy::AnyLetters`] turns the check off for
//!   data from a source that uses a prefix not listed here.
//! - **`status`**: expired MICs and withdrawn currencies are refused. A withdrawn currency code is
//!   recognised so the error says so ([`IdentifierError::WithdrawnCurrency`]), but there is no
//!   [`Currency`] value for it: historical records should keep such codes as text. For MICs the
//!   caller's [`MicList`] decides, and [`MicList::check_historical`] accepts expired codes.
//! - **`domain`**: every active ISO 4217 code parses, including fund codes, metals, `XTS` and
//!   `XXX`, because they are valid ISO codes (a settlement report may carry `XXX`). A platform
//!   that trades only national currencies restricts the set with [`Currency::parse_in`] and
//!   [`CurrencyKind`].
//!
//! # Threat model
//!
//! The parsers take untrusted text (HTTP bodies, files from counterparties). They never panic,
//! never allocate more than the input's length, and reject any non-ASCII or control character,
//! so a parsed identifier is safe to put in a log line, an SQL parameter, a file name or a
//! FIX message. Error messages never echo the raw input: they name the position and the
//! offending character (escaped with `{:?}`), or echo a code only after its shape was checked.
//! A check digit catches typos, not forgery: an ISIN or LEI that passes may still not exist.
//! Existence is a reference-data question (MIC: [`MicList`]; LEI: GLEIF; ISIN: an NNA feed).

mod cfi;
mod country;
mod currency;
mod isin;
mod lei;
mod mic;
mod symbol;

use std::fmt;

pub use cfi::Cfi;
pub use country::Country;
pub use currency::{Currency, CurrencyKind};
pub use isin::{Isin, IsinPrefixPolicy};
pub use lei::Lei;
pub use mic::{Mic, MicList, MicStatus};
pub use symbol::{CasePolicy, Symbol, SymbolRules};

/// Which identifier a value was being parsed as; named in every [`IdentifierError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// A ticker symbol ([`Symbol`]).
    Symbol,
    /// An ISIN ([`Isin`]).
    Isin,
    /// An LEI ([`Lei`]).
    Lei,
    /// A MIC ([`Mic`]).
    Mic,
    /// An ISO 4217 currency code ([`Currency`]).
    Currency,
    /// A CFI code ([`Cfi`]).
    Cfi,
    /// An ISO 3166-1 alpha-2 country code ([`Country`]).
    Country,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Symbol => "symbol",
            Self::Isin => "ISIN",
            Self::Lei => "LEI",
            Self::Mic => "MIC",
            Self::Currency => "currency code",
            Self::Cfi => "CFI code",
            Self::Country => "country code",
        })
    }
}

/// How input text is prepared before it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Normalization {
    /// Take the input exactly as given: surrounding whitespace and lower case are errors.
    #[default]
    Strict,
    /// Trim surrounding ASCII whitespace and upper-case ASCII letters first (for values typed
    /// by people). Non-ASCII characters are left alone and still refused.
    Lenient,
}

/// Why an identifier was refused.
///
/// Positions are 1-based character positions in the input (after lenient normalisation, if
/// any). Messages never contain the raw input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifierError {
    /// The input was empty.
    #[error("{kind} is empty")]
    Empty {
        /// What was being parsed.
        kind: IdKind,
    },
    /// The input starts or ends with whitespace (strict parsing does not trim).
    #[error("{kind} has leading or trailing whitespace")]
    SurroundingWhitespace {
        /// What was being parsed.
        kind: IdKind,
    },
    /// The input has the wrong number of characters.
    #[error("{kind} must be {expected} characters, got {actual}")]
    Length {
        /// What was being parsed.
        kind: IdKind,
        /// The required length.
        expected: usize,
        /// The length found, in characters.
        actual: usize,
    },
    /// The input is longer than the rules allow.
    #[error("{kind} is too long: at most {max} characters, got {actual}")]
    TooLong {
        /// What was being parsed.
        kind: IdKind,
        /// The maximum length.
        max: usize,
        /// The length found, in characters.
        actual: usize,
    },
    /// A lower-case letter where strict parsing requires upper case.
    #[error("{kind} must be upper case: lower-case letter at position {position}")]
    Lowercase {
        /// What was being parsed.
        kind: IdKind,
        /// 1-based position of the first lower-case letter.
        position: usize,
    },
    /// A character that is not allowed at all (non-ASCII, control, punctuation, space).
    #[error("invalid character {character:?} at position {position} in {kind}")]
    InvalidCharacter {
        /// What was being parsed.
        kind: IdKind,
        /// 1-based position of the character.
        position: usize,
        /// The character.
        character: char,
    },
    /// The characters are allowed but not in that place (a digit in the ISIN country prefix,
    /// a letter in the LEI check digits, two separators in a row in a symbol, ...).
    #[error("malformed {kind}: {reason}")]
    Format {
        /// What was being parsed.
        kind: IdKind,
        /// What is wrong.
        reason: &'static str,
    },
    /// The check digit(s) do not match the rest of the code.
    #[error("{kind} check digit does not match")]
    CheckDigit {
        /// What was being parsed.
        kind: IdKind,
    },
    /// The ISIN prefix is neither an assigned ISO 3166-1 country code nor a known special
    /// prefix (see the module docs).
    #[error("ISIN prefix {prefix} is not an assigned country code or known ISIN prefix")]
    UnknownIsinPrefix {
        /// The two-letter prefix.
        prefix: String,
    },
    /// The MIC is well formed but not in the caller's list.
    #[error("MIC {mic} is not in the MIC list")]
    UnknownMic {
        /// The MIC.
        mic: String,
    },
    /// The MIC is in the list but expired.
    #[error("MIC {mic} is expired")]
    ExpiredMic {
        /// The MIC.
        mic: String,
    },
    /// Three letters, but not an ISO 4217 code.
    #[error("{code} is not an ISO 4217 currency code")]
    UnknownCurrency {
        /// The code.
        code: String,
    },
    /// An ISO 4217 code that has been withdrawn from the list.
    #[error("currency {code} has been withdrawn from ISO 4217")]
    WithdrawnCurrency {
        /// The code.
        code: String,
    },
    /// A valid currency of a kind the caller does not accept (fund code, metal, XXX, ...).
    #[error("currency {code} ({kind}) is not accepted here")]
    CurrencyNotAllowed {
        /// The code.
        code: String,
        /// Its kind.
        kind: CurrencyKind,
    },
    /// The first letter of a CFI code is not a category.
    #[error("{letter:?} is not a CFI category")]
    CfiCategory {
        /// The letter found.
        letter: char,
    },
    /// The second letter of a CFI code is not a group of its category.
    #[error("{group:?} is not a group of CFI category {category:?}")]
    CfiGroup {
        /// The category letter.
        category: char,
        /// The group letter found.
        group: char,
    },
    /// An attribute letter (positions 3 to 6) is not allowed for the group.
    #[error("{letter:?} is not allowed at position {position} of CFI group {group}")]
    CfiAttribute {
        /// Category and group, e.g. `ES`.
        group: String,
        /// 1-based position (3 to 6).
        position: usize,
        /// The letter found.
        letter: char,
    },
    /// A CFI rule across positions fails.
    #[error("CFI code breaks a cross-position rule: {rule}")]
    CfiRule {
        /// The rule.
        rule: &'static str,
    },
    /// Two letters, but not an officially assigned ISO 3166-1 alpha-2 code.
    #[error("{code} is not an assigned ISO 3166-1 country code")]
    UnknownCountry {
        /// The code.
        code: String,
    },
    /// Rules given to a constructor (e.g. [`SymbolRules::new`]) are inconsistent.
    #[error("invalid rules: {reason}")]
    InvalidRules {
        /// What is wrong.
        reason: &'static str,
    },
}

impl IdentifierError {
    /// A stable, machine-readable code for this error (for API responses and metrics).
    ///
    /// Codes never change meaning; new variants get new codes.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty { .. } => "empty",
            Self::SurroundingWhitespace { .. } => "whitespace",
            Self::Length { .. } => "length",
            Self::TooLong { .. } => "too_long",
            Self::Lowercase { .. } => "lowercase",
            Self::InvalidCharacter { .. } => "invalid_character",
            Self::Format { .. } => "format",
            Self::CheckDigit { .. } => "check_digit",
            Self::UnknownIsinPrefix { .. } => "unknown_prefix",
            Self::UnknownMic { .. } => "unknown_mic",
            Self::ExpiredMic { .. } => "expired_mic",
            Self::UnknownCurrency { .. } => "unknown_currency",
            Self::WithdrawnCurrency { .. } => "withdrawn_currency",
            Self::CurrencyNotAllowed { .. } => "currency_not_allowed",
            Self::CfiCategory { .. } => "cfi_category",
            Self::CfiGroup { .. } => "cfi_group",
            Self::CfiAttribute { .. } => "cfi_attribute",
            Self::CfiRule { .. } => "cfi_rule",
            Self::UnknownCountry { .. } => "unknown_country",
            Self::InvalidRules { .. } => "invalid_rules",
        }
    }
}

/// Applies `norm` and the checks every fixed-shape code shares: not empty, no surrounding
/// whitespace (strict), upper-case ASCII letters and digits only (checked before the length,
/// so `US 0378331005` reports the space rather than the length), exactly `N` characters.
/// Returns the normalised bytes.
fn fixed_alnum<const N: usize>(
    input: &str,
    kind: IdKind,
    norm: Normalization,
) -> Result<[u8; N], IdentifierError> {
    let text = prepare(input, kind, norm)?;
    let mut out = [0u8; N];
    let mut actual = 0;
    for (c, position) in text.chars().zip(1..) {
        let c = match norm {
            Normalization::Strict => c,
            Normalization::Lenient => c.to_ascii_uppercase(),
        };
        if c.is_ascii_lowercase() {
            return Err(IdentifierError::Lowercase { kind, position });
        }
        let byte = u8::try_from(c)
            .ok()
            .filter(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        let Some(byte) = byte else {
            return Err(IdentifierError::InvalidCharacter {
                kind,
                position,
                character: c,
            });
        };
        if let Some(slot) = out.get_mut(actual) {
            *slot = byte;
        }
        actual = position;
    }
    if actual != N {
        return Err(IdentifierError::Length {
            kind,
            expected: N,
            actual,
        });
    }
    Ok(out)
}

/// Empty and surrounding-whitespace checks (strict), or trimming (lenient).
fn prepare(input: &str, kind: IdKind, norm: Normalization) -> Result<&str, IdentifierError> {
    let text = match norm {
        Normalization::Strict => input,
        Normalization::Lenient => input.trim_matches(|c: char| c.is_ascii_whitespace()),
    };
    if text.is_empty() {
        return Err(IdentifierError::Empty { kind });
    }
    let starts = text.chars().next().is_some_and(char::is_whitespace);
    let ends = text.chars().next_back().is_some_and(char::is_whitespace);
    if starts || ends {
        return Err(IdentifierError::SurroundingWhitespace { kind });
    }
    Ok(text)
}

/// Views bytes that a constructor has checked to be ASCII as `&str`.
fn ascii_str(bytes: &[u8]) -> &str {
    // Every constructor stores only ASCII letters and digits, so this never falls back.
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// Implements `Display`, `Serialize` and `Deserialize` (through `FromStr`) for a type with an
/// `as_str` method.
macro_rules! text_impls {
    ($ty:ty) => {
        impl ::std::fmt::Display for $ty {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(
                    deserializer,
                )?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = IdentifierError;

            fn try_from(value: String) -> Result<Self, Self::Error> {
                value.parse()
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = IdentifierError;

            fn try_from(value: &str) -> Result<Self, Self::Error> {
                value.parse()
            }
        }
    };
}
use text_impls;
