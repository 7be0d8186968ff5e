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
    SPECIAL_PREFIXES.contains(&prefix) || ISO_3166_ALPHA2.binary_search(&prefix).is_ok()
}

/// Non-country ISIN prefixes (see the module docs).
const SPECIAL_PREFIXES: [[u8; 2]; 8] = [
    *b"XS", *b"EU", *b"XA", *b"XB", *b"XC", *b"XD", *b"EZ", *b"AN",
];

/// ISO 3166-1 alpha-2, officially assigned codes (249), sorted. Source: Debian `iso-codes`
/// 4.15.0 `iso_3166-1.json`, identical to the tz database's `iso3166.tab`.
#[rustfmt::skip]
const ISO_3166_ALPHA2: [[u8; 2]; 249] = [
    *b"AD", *b"AE", *b"AF", *b"AG", *b"AI", *b"AL", *b"AM", *b"AO", *b"AQ", *b"AR", *b"AS", *b"AT", *b"AU", *b"AW", *b"AX", *b"AZ", *b"BA", *b"BB", *b"BD", *b"BE",
    *b"BF", *b"BG", *b"BH", *b"BI", *b"BJ", *b"BL", *b"BM", *b"BN", *b"BO", *b"BQ", *b"BR", *b"BS", *b"BT", *b"BV", *b"BW", *b"BY", *b"BZ", *b"CA", *b"CC", *b"CD",
    *b"CF", *b"CG", *b"CH", *b"CI", *b"CK", *b"CL", *b"CM", *b"CN", *b"CO", *b"CR", *b"CU", *b"CV", *b"CW", *b"CX", *b"CY", *b"CZ", *b"DE", *b"DJ", *b"DK", *b"DM",
    *b"DO", *b"DZ", *b"EC", *b"EE", *b"EG", *b"EH", *b"ER", *b"ES", *b"ET", *b"FI", *b"FJ", *b"FK", *b"FM", *b"FO", *b"FR", *b"GA", *b"GB", *b"GD", *b"GE", *b"GF",
    *b"GG", *b"GH", *b"GI", *b"GL", *b"GM", *b"GN", *b"GP", *b"GQ", *b"GR", *b"GS", *b"GT", *b"GU", *b"GW", *b"GY", *b"HK", *b"HM", *b"HN", *b"HR", *b"HT", *b"HU",
    *b"ID", *b"IE", *b"IL", *b"IM", *b"IN", *b"IO", *b"IQ", *b"IR", *b"IS", *b"IT", *b"JE", *b"JM", *b"JO", *b"JP", *b"KE", *b"KG", *b"KH", *b"KI", *b"KM", *b"KN",
    *b"KP", *b"KR", *b"KW", *b"KY", *b"KZ", *b"LA", *b"LB", *b"LC", *b"LI", *b"LK", *b"LR", *b"LS", *b"LT", *b"LU", *b"LV", *b"LY", *b"MA", *b"MC", *b"MD", *b"ME",
    *b"MF", *b"MG", *b"MH", *b"MK", *b"ML", *b"MM", *b"MN", *b"MO", *b"MP", *b"MQ", *b"MR", *b"MS", *b"MT", *b"MU", *b"MV", *b"MW", *b"MX", *b"MY", *b"MZ", *b"NA",
    *b"NC", *b"NE", *b"NF", *b"NG", *b"NI", *b"NL", *b"NO", *b"NP", *b"NR", *b"NU", *b"NZ", *b"OM", *b"PA", *b"PE", *b"PF", *b"PG", *b"PH", *b"PK", *b"PL", *b"PM",
    *b"PN", *b"PR", *b"PS", *b"PT", *b"PW", *b"PY", *b"QA", *b"RE", *b"RO", *b"RS", *b"RU", *b"RW", *b"SA", *b"SB", *b"SC", *b"SD", *b"SE", *b"SG", *b"SH", *b"SI",
    *b"SJ", *b"SK", *b"SL", *b"SM", *b"SN", *b"SO", *b"SR", *b"SS", *b"ST", *b"SV", *b"SX", *b"SY", *b"SZ", *b"TC", *b"TD", *b"TF", *b"TG", *b"TH", *b"TJ", *b"TK",
    *b"TL", *b"TM", *b"TN", *b"TO", *b"TR", *b"TT", *b"TV", *b"TW", *b"TZ", *b"UA", *b"UG", *b"UM", *b"US", *b"UY", *b"UZ", *b"VA", *b"VC", *b"VE", *b"VG", *b"VI",
    *b"VN", *b"VU", *b"WF", *b"WS", *b"YE", *b"YT", *b"ZA", *b"ZM", *b"ZW",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn country_table_is_sorted_and_unique() {
        assert!(ISO_3166_ALPHA2.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn known_check_digits() {
        assert_eq!(check_digit(b"US037833100"), b'5');
        assert_eq!(check_digit(b"US594918104"), b'5');
        assert_eq!(check_digit(b"IE00B296YR7"), b'7');
    }
}
