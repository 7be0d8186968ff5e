//! ISIN, ISO 6166: two-letter prefix, nine-character NSIN, one check digit.

use std::str::FromStr;

use super::{IdKind, IdentifierError, Normalization, ascii_str, fixed_alnum, text_impls};

/// An International Securities Identification Number (ISO 6166), check digit verified.
///
/// ```
/// use finsec_validate::identifiers::Isin;
///
/// let isin: Isin = "US0378331005".parse()?;
/// assert_eq!(isin.prefix(), "US");
/// assert_eq!(isin.nsin(), "037833100");
/// assert!("US0378331006".parse::<Isin>().is_err());
/// # Ok::<(), finsec_validate::identifiers::IdentifierError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Isin([u8; Isin::LEN]);

/// Which ISIN prefixes are accepted (see the [module docs](super) for the list and its source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum IsinPrefixPolicy {
    /// An officially assigned ISO 3166-1 alpha-2 code or a known ISIN-specific prefix.
    #[default]
    Registered,
    /// Any two letters: only the shape and the check digit are verified.
    AnyLetters,
}

impl Isin {
    /// Length of an ISIN.
    pub const LEN: usize = 12;

    /// Parses with explicit normalisation and prefix policy.
    ///
    /// # Errors
    ///
    /// [`IdentifierError`] naming the first problem found: shape, check digit, then prefix.
    pub fn parse_with(
        input: &str,
        norm: Normalization,
        prefix: IsinPrefixPolicy,
    ) -> Result<Self, IdentifierError> {
        let kind = IdKind::Isin;
        let bytes: [u8; Self::LEN] = fixed_alnum(input, kind, norm)?;
        let [p0, p1, body @ .., check] = bytes;
        if !(p0.is_ascii_uppercase() && p1.is_ascii_uppercase()) {
            return Err(IdentifierError::Format {
                kind,
                reason: "the first two characters must be letters",
            });
        }
        if !check.is_ascii_digit() {
            return Err(IdentifierError::Format {
                kind,
                reason: "the check digit must be a digit",
            });
        }
        let mut payload = [0u8; Self::LEN - 1];
        payload[0] = p0;
        payload[1] = p1;
        for (slot, b) in payload.iter_mut().skip(2).zip(body) {
            *slot = b;
        }
        if check_digit(&payload) != check {
            return Err(IdentifierError::CheckDigit { kind });
        }
        if prefix == IsinPrefixPolicy::Registered && !is_registered_prefix([p0, p1]) {
            return Err(IdentifierError::UnknownIsinPrefix {
                prefix: ascii_str(&[p0, p1]).to_owned(),
            });
        }
        Ok(Self(bytes))
    }

    /// Parses after trimming surrounding ASCII whitespace and upper-casing ASCII letters.
    ///
    /// # Errors
    ///
    /// As [`Isin::parse_with`].
    pub fn parse_lenient(input: &str) -> Result<Self, IdentifierError> {
        Self::parse_with(input, Normalization::Lenient, IsinPrefixPolicy::Registered)
    }

    /// The ISIN as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }

    /// The two-letter prefix (usually the issuer's country).
    #[must_use]
    pub fn prefix(&self) -> &str {
        ascii_str(self.0.get(..2).unwrap_or_default())
    }

    /// The nine-character national securities identifying number.
    #[must_use]
    pub fn nsin(&self) -> &str {
        ascii_str(self.0.get(2..11).unwrap_or_default())
    }

    /// The check digit (0 to 9).
    #[must_use]
    pub fn check_digit(&self) -> u8 {
        let [.., check] = self.0;
        check - b'0'
    }
}

impl FromStr for Isin {
    type Err = IdentifierError;

    /// Strict parse with the prefix check.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, Normalization::Strict, IsinPrefixPolicy::Registered)
    }
}

text_impls!(Isin);

/// The ISO 6166 check digit (as an ASCII digit) of the first eleven characters: letters become
/// two digits (A=10 ... Z=35), then the Luhn algorithm runs over the digit string.
fn check_digit(payload: &[u8; Isin::LEN - 1]) -> u8 {
    // At most 22 digits; walk them from the right, doubling every other one starting with the
    // rightmost (the check digit will be appended to its right).
    let mut digits = [0u8; 22];
    let mut n = 0;
    for &b in payload {
        let v = if b.is_ascii_digit() {
            b - b'0'
        } else {
            b - b'A' + 10
        };
        if v >= 10 {
            if let Some(slot) = digits.get_mut(n) {
                *slot = v / 10;
            }
            n += 1;
        }
        if let Some(slot) = digits.get_mut(n) {
            *slot = v % 10;
        }
        n += 1;
    }
    let mut sum: u32 = 0;
    for (i, &d) in digits.iter().take(n).rev().enumerate() {
        let d = u32::from(d);
        sum += if i % 2 == 0 {
            let twice = d * 2;
            twice / 10 + twice % 10
        } else {
            d
        };
    }
    // `sum % 10` is below 10, so the cast cannot truncate.
    let check = ((10 - sum % 10) % 10) as u8;
    b'0' + check
}

fn is_registered_prefix(prefix: [u8; 2]) -> bool {
    SPECIAL_PREFIXES.contains(&prefix) || super::country::is_assigned(prefix)
}

/// Non-country ISIN prefixes (see the module docs).
const SPECIAL_PREFIXES: [[u8; 2]; 8] = [
    *b"XS", *b"EU", *b"XA", *b"XB", *b"XC", *b"XD", *b"EZ", *b"AN",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_check_digits() {
        assert_eq!(check_digit(b"US037833100"), b'5');
        assert_eq!(check_digit(b"US594918104"), b'5');
        assert_eq!(check_digit(b"IE00B296YR7"), b'7');
    }
}
