//! LEI, ISO 17442: eighteen alphanumerics and two check digits (ISO 7064 MOD 97-10).

use std::str::FromStr;

use super::{IdKind, IdentifierError, Normalization, ascii_str, fixed_alnum, text_impls};

/// A Legal Entity Identifier (ISO 17442), check digits verified.
///
/// Positions 5 and 6 are not required to be `00`: ISO 17442-1:2020 dropped that reservation.
///
/// ```
/// use finsec_validate::identifiers::Lei;
///
/// let lei: Lei = "5493001KJTIIGC8Y1R12".parse()?;
/// assert_eq!(lei.lou_prefix(), "5493");
/// assert!("5493001KJTIIGC8Y1R13".parse::<Lei>().is_err());
/// # Ok::<(), finsec_validate::identifiers::IdentifierError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lei([u8; Lei::LEN]);

impl Lei {
    /// Length of an LEI.
    pub const LEN: usize = 20;

    /// Parses with explicit normalisation.
    ///
    /// # Errors
    ///
    /// [`IdentifierError`] naming the first problem: shape, then check digits.
    pub fn parse_with(input: &str, norm: Normalization) -> Result<Self, IdentifierError> {
        let kind = IdKind::Lei;
        let bytes: [u8; Self::LEN] = fixed_alnum(input, kind, norm)?;
        let [.., c1, c2] = bytes;
        if !(c1.is_ascii_digit() && c2.is_ascii_digit()) {
            return Err(IdentifierError::Format {
                kind,
                reason: "the check digits (positions 19-20) must be digits",
            });
        }
        let check = (c1 - b'0') * 10 + (c2 - b'0');
        // MOD 97-10 check digits are 98 - (n * 100 mod 97): always 02..=98. 00, 01 and 99 are
        // congruent to 97, 98 and 02 and would pass the modulus test alone.
        if !(2..=98).contains(&check) || mod97(&bytes) != 1 {
            return Err(IdentifierError::CheckDigit { kind });
        }
        Ok(Self(bytes))
    }

    /// Parses after trimming surrounding ASCII whitespace and upper-casing ASCII letters.
    ///
    /// # Errors
    ///
    /// As [`Lei::parse_with`].
    pub fn parse_lenient(input: &str) -> Result<Self, IdentifierError> {
        Self::parse_with(input, Normalization::Lenient)
    }

    /// The LEI as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }

    /// The first four characters: the prefix of the LEI issuer (LOU) that allocated it.
    #[must_use]
    pub fn lou_prefix(&self) -> &str {
        ascii_str(self.0.get(..4).unwrap_or_default())
    }

    /// The two check digits.
    #[must_use]
    pub fn check_digits(&self) -> &str {
        ascii_str(self.0.get(18..).unwrap_or_default())
    }
}

impl FromStr for Lei {
    type Err = IdentifierError;

    /// Strict parse.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, Normalization::Strict)
    }
}

text_impls!(Lei);

/// The ISO 7064 MOD 97-10 remainder of upper-case alphanumerics (A=10 ... Z=35).
///
/// The running value is reduced only when it could overflow on the next step (below 10^16
/// it can take two more digits in a `u64`), which keeps one division per ~7 characters.
fn mod97(bytes: &[u8]) -> u64 {
    const REDUCE_AT: u64 = 10_000_000_000_000_000;
    let rem = bytes.iter().fold(0u64, |rem, &b| {
        let rem = if rem >= REDUCE_AT { rem % 97 } else { rem };
        if b.is_ascii_digit() {
            rem * 10 + u64::from(b - b'0')
        } else {
            rem * 100 + u64::from(b - b'A' + 10)
        }
    });
    rem % 97
}
