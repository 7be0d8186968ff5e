//! Country codes, ISO 3166-1 alpha-2: two upper-case letters, officially assigned.

use std::str::FromStr;

use super::{IdKind, IdentifierError, Normalization, ascii_str, fixed_alnum, text_impls};

/// An officially assigned ISO 3166-1 alpha-2 country code (`DE`, `IE`, `US`).
///
/// User-assigned and reserved codes (`XK`, `EU`, `UK`, ...) are refused: MiFIR reports,
/// national client identifiers and branch countries all take assigned codes only.
///
/// ```
/// use finsec_validate::identifiers::Country;
///
/// let de: Country = "DE".parse()?;
/// assert!(de.is_eea());
/// assert!(!"US".parse::<Country>()?.is_eea());
/// assert!("UK".parse::<Country>().is_err());
/// # Ok::<(), finsec_validate::identifiers::IdentifierError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; Country::LEN]);

impl Country {
    /// Length of an alpha-2 code.
    pub const LEN: usize = 2;

    /// Parses with explicit normalisation.
    ///
    /// # Errors
    ///
    /// [`IdentifierError`] for a malformed code, or [`IdentifierError::UnknownCountry`] for
    /// two letters that are not an assigned code.
    pub fn parse_with(input: &str, norm: Normalization) -> Result<Self, IdentifierError> {
        let kind = IdKind::Country;
        let bytes: [u8; Self::LEN] = fixed_alnum(input, kind, norm)?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(IdentifierError::Format {
                kind,
                reason: "a country code is two letters",
            });
        }
        if !is_assigned(bytes) {
            return Err(IdentifierError::UnknownCountry {
                code: ascii_str(&bytes).to_owned(),
            });
        }
        Ok(Self(bytes))
    }

    /// Parses after trimming surrounding ASCII whitespace and upper-casing ASCII letters.
    ///
    /// # Errors
    ///
    /// As [`Country::parse_with`].
    pub fn parse_lenient(input: &str) -> Result<Self, IdentifierError> {
        Self::parse_with(input, Normalization::Lenient)
    }

    /// The code as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }

    /// Whether the country is in the European Economic Area (the 27 EU member states,
    /// Iceland, Liechtenstein and Norway), the test MiFIR applies to nationalities.
    #[must_use]
    pub fn is_eea(&self) -> bool {
        EEA.contains(&self.0)
    }
}

impl FromStr for Country {
    type Err = IdentifierError;

    /// Strict parse.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, Normalization::Strict)
    }
}

text_impls!(Country);

/// Whether `code` is an officially assigned alpha-2 code.
pub(super) fn is_assigned(code: [u8; 2]) -> bool {
    ISO_3166_ALPHA2.binary_search(&code).is_ok()
}

/// The EEA: EU-27, then Iceland, Liechtenstein, Norway.
const EEA: [[u8; 2]; 30] = [
    *b"AT", *b"BE", *b"BG", *b"CY", *b"CZ", *b"DE", *b"DK", *b"EE", *b"ES", *b"FI", *b"FR", *b"GR",
    *b"HR", *b"HU", *b"IE", *b"IT", *b"LT", *b"LU", *b"LV", *b"MT", *b"NL", *b"PL", *b"PT", *b"RO",
    *b"SE", *b"SI", *b"SK", *b"IS", *b"LI", *b"NO",
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
    fn every_eea_state_is_assigned() {
        assert!(EEA.iter().all(|c| is_assigned(*c)));
    }

    #[test]
    fn refusals_are_specific() {
        assert!(matches!(
            "XK".parse::<Country>(),
            Err(IdentifierError::UnknownCountry { .. })
        ));
        assert!(matches!(
            "D1".parse::<Country>(),
            Err(IdentifierError::Format { .. })
        ));
        assert!(matches!(
            "de".parse::<Country>(),
            Err(IdentifierError::Lowercase { .. })
        ));
        assert_eq!(
            Country::parse_lenient(" ie ").map(|c| c.to_string()),
            Ok("IE".to_owned())
        );
    }
}
