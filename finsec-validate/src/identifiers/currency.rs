//! ISO 4217 currency codes, from a table compiled into the crate.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use super::{IdKind, IdentifierError, Normalization, ascii_str, fixed_alnum, text_impls};

/// An active ISO 4217 currency code, with its numeric code, minor units and name.
///
/// The table is the ISO 4217 list of current codes as published by SIX (January 2026 data,
/// via `datasets/currency-codes`, 178 codes); the integration tests check it row by row
/// against `testdata/financial-ids/iso4217_active.csv`.
///
/// ```
/// use finsec_validate::identifiers::{Currency, CurrencyKind};
///
/// let jpy: Currency = "JPY".parse()?;
/// assert_eq!(jpy.minor_units(), Some(0));
/// assert_eq!(jpy.numeric(), 392);
/// assert_eq!(jpy.kind(), CurrencyKind::National);
/// assert!("DEM".parse::<Currency>().is_err()); // withdrawn in 2002
/// # Ok::<(), finsec_validate::identifiers::IdentifierError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Currency(&'static Info);

/// What a currency code stands for; lets a platform refuse codes it does not trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CurrencyKind {
    /// The currency of one or more countries (including currency unions such as `EUR`, `XOF`).
    National,
    /// A fund code (`BOV`, `CHE`, `CHW`, `CLF`, `COU`, `MXV`, `USN`, `UYI`, `UYW`).
    Fund,
    /// A precious metal (`XAU`, `XAG`, `XPD`, `XPT`).
    PreciousMetal,
    /// A supranational unit of account (`XDR`, `XSU`, `XUA`, `XAD`, `XBA`-`XBD`).
    Supranational,
    /// `XTS`, reserved for testing.
    Testing,
    /// `XXX`, transactions where no currency is involved.
    NoCurrency,
}

impl fmt::Display for CurrencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::National => "national currency",
            Self::Fund => "fund code",
            Self::PreciousMetal => "precious metal",
            Self::Supranational => "supranational unit",
            Self::Testing => "testing code",
            Self::NoCurrency => "no currency",
        })
    }
}

#[derive(Debug)]
struct Info {
    code: [u8; 3],
    numeric: u16,
    minor_units: Option<u8>,
    kind: CurrencyKind,
    name: &'static str,
}

impl Currency {
    /// Parses with explicit normalisation.
    ///
    /// # Errors
    ///
    /// [`IdentifierError`]: malformed, [`WithdrawnCurrency`](IdentifierError::WithdrawnCurrency)
    /// or [`UnknownCurrency`](IdentifierError::UnknownCurrency).
    pub fn parse_with(input: &str, norm: Normalization) -> Result<Self, IdentifierError> {
        let kind = IdKind::Currency;
        let code: [u8; 3] = fixed_alnum(input, kind, norm)?;
        if !code.iter().all(u8::is_ascii_uppercase) {
            return Err(IdentifierError::Format {
                kind,
                reason: "a currency code is three letters",
            });
        }
        if let Some(info) = ACTIVE
            .binary_search_by(|info| info.code.cmp(&code))
            .ok()
            .and_then(|i| ACTIVE.get(i))
        {
            return Ok(Self(info));
        }
        let code_text = ascii_str(&code).to_owned();
        if WITHDRAWN.binary_search(&code).is_ok() {
            Err(IdentifierError::WithdrawnCurrency { code: code_text })
        } else {
            Err(IdentifierError::UnknownCurrency { code: code_text })
        }
    }

    /// Parses after trimming surrounding ASCII whitespace and upper-casing ASCII letters.
    ///
    /// # Errors
    ///
    /// As [`Currency::parse_with`].
    pub fn parse_lenient(input: &str) -> Result<Self, IdentifierError> {
        Self::parse_with(input, Normalization::Lenient)
    }

    /// Strict parse that also requires the currency to be of one of the `allowed` kinds.
    ///
    /// ```
    /// use finsec_validate::identifiers::{Currency, CurrencyKind};
    ///
    /// assert!(Currency::parse_in("EUR", &[CurrencyKind::National]).is_ok());
    /// assert!(Currency::parse_in("XXX", &[CurrencyKind::National]).is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Currency::parse_with`], or [`IdentifierError::CurrencyNotAllowed`].
    pub fn parse_in(input: &str, allowed: &[CurrencyKind]) -> Result<Self, IdentifierError> {
        let currency: Self = input.parse()?;
        if allowed.contains(&currency.kind()) {
            Ok(currency)
        } else {
            Err(IdentifierError::CurrencyNotAllowed {
                code: currency.code().to_owned(),
                kind: currency.kind(),
            })
        }
    }

    /// The currency with ISO 4217 numeric code `numeric`, if it is active.
    #[must_use]
    pub fn from_numeric(numeric: u16) -> Option<Self> {
        ACTIVE.iter().find(|info| info.numeric == numeric).map(Self)
    }

    /// Every active currency, in code order.
    pub fn all() -> impl ExactSizeIterator<Item = Self> {
        ACTIVE.iter().map(Self)
    }

    /// The three-letter code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        ascii_str(&self.0.code)
    }

    /// Same as [`Currency::code`].
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        self.code()
    }

    /// The ISO 4217 numeric code.
    #[must_use]
    pub fn numeric(&self) -> u16 {
        self.0.numeric
    }

    /// Digits after the decimal point, or `None` where ISO 4217 says "N.A." (metals, units of
    /// account, `XTS`, `XXX`).
    #[must_use]
    pub fn minor_units(&self) -> Option<u8> {
        self.0.minor_units
    }

    /// The currency name as ISO 4217 gives it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.0.name
    }

    /// What the code stands for.
    #[must_use]
    pub fn kind(&self) -> CurrencyKind {
        self.0.kind
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.code())
    }
}

impl PartialEq for Currency {
    fn eq(&self, other: &Self) -> bool {
        self.0.code == other.0.code
    }
}

impl Eq for Currency {}

impl Hash for Currency {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.code.hash(state);
    }
}

impl PartialOrd for Currency {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Currency {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.code.cmp(&other.0.code)
    }
}

impl FromStr for Currency {
    type Err = IdentifierError;

    /// Strict parse.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, Normalization::Strict)
    }
}

text_impls!(Currency);

const fn cur(
    code: [u8; 3],
    numeric: u16,
    minor_units: Option<u8>,
    kind: CurrencyKind,
    name: &'static str,
) -> Info {
    Info {
        code,
        numeric,
        minor_units,
        kind,
        name,
    }
}

use CurrencyKind::{Fund, National, NoCurrency, PreciousMetal, Supranational, Testing};

/// Active ISO 4217 codes, sorted by code (binary search). Generated from
/// `iso4217_active.csv` and checked against it by `tests/financial_ids.rs`.
#[rustfmt::skip]
static ACTIVE: [Info; 178] = [
    cur(*b"AED", 784, Some(2), National, "UAE Dirham"),
    cur(*b"AFN", 971, Some(2), National, "Afghani"),
    cur(*b"ALL", 8, Some(2), National, "Lek"),
    cur(*b"AMD", 51, Some(2), National, "Armenian Dram"),
    cur(*b"AOA", 973, Some(2), National, "Kwanza"),
    cur(*b"ARS", 32, Some(2), National, "Argentine Peso"),
    cur(*b"AUD", 36, Some(2), National, "Australian Dollar"),
    cur(*b"AWG", 533, Some(2), National, "Aruban Florin"),
    cur(*b"AZN", 944, Some(2), National, "Azerbaijan Manat"),
    cur(*b"BAM", 977, Some(2), National, "Convertible Mark"),
    cur(*b"BBD", 52, Some(2), National, "Barbados Dollar"),
    cur(*b"BDT", 50, Some(2), National, "Taka"),
    cur(*b"BHD", 48, Some(3), National, "Bahraini Dinar"),
    cur(*b"BIF", 108, Some(0), National, "Burundi Franc"),
    cur(*b"BMD", 60, Some(2), National, "Bermudian Dollar"),
    cur(*b"BND", 96, Some(2), National, "Brunei Dollar"),
    cur(*b"BOB", 68, Some(2), National, "Boliviano"),
    cur(*b"BOV", 984, Some(2), Fund, "Mvdol"),
    cur(*b"BRL", 986, Some(2), National, "Brazilian Real"),
    cur(*b"BSD", 44, Some(2), National, "Bahamian Dollar"),
    cur(*b"BTN", 64, Some(2), National, "Ngultrum"),
    cur(*b"BWP", 72, Some(2), National, "Pula"),
    cur(*b"BYN", 933, Some(2), National, "Belarusian Ruble"),
    cur(*b"BZD", 84, Some(2), National, "Belize Dollar"),
    cur(*b"CAD", 124, Some(2), National, "Canadian Dollar"),
    cur(*b"CDF", 976, Some(2), National, "Congolese Franc"),
    cur(*b"CHE", 947, Some(2), Fund, "WIR Euro"),
    cur(*b"CHF", 756, Some(2), National, "Swiss Franc"),
    cur(*b"CHW", 948, Some(2), Fund, "WIR Franc"),
    cur(*b"CLF", 990, Some(4), Fund, "Unidad de Fomento"),
    cur(*b"CLP", 152, Some(0), National, "Chilean Peso"),
    cur(*b"CNY", 156, Some(2), National, "Yuan Renminbi"),
    cur(*b"COP", 170, Some(2), National, "Colombian Peso"),
    cur(*b"COU", 970, Some(2), Fund, "Unidad de Valor Real"),
    cur(*b"CRC", 188, Some(2), National, "Costa Rican Colon"),
    cur(*b"CUP", 192, Some(2), National, "Cuban Peso"),
    cur(*b"CVE", 132, Some(2), National, "Cabo Verde Escudo"),
    cur(*b"CZK", 203, Some(2), National, "Czech Koruna"),
    cur(*b"DJF", 262, Some(0), National, "Djibouti Franc"),
    cur(*b"DKK", 208, Some(2), National, "Danish Krone"),
    cur(*b"DOP", 214, Some(2), National, "Dominican Peso"),
    cur(*b"DZD", 12, Some(2), National, "Algerian Dinar"),
    cur(*b"EGP", 818, Some(2), National, "Egyptian Pound"),
    cur(*b"ERN", 232, Some(2), National, "Nakfa"),
    cur(*b"ETB", 230, Some(2), National, "Ethiopian Birr"),
    cur(*b"EUR", 978, Some(2), National, "Euro"),
    cur(*b"FJD", 242, Some(2), National, "Fiji Dollar"),
    cur(*b"FKP", 238, Some(2), National, "Falkland Islands Pound"),
    cur(*b"GBP", 826, Some(2), National, "Pound Sterling"),
    cur(*b"GEL", 981, Some(2), National, "Lari"),
    cur(*b"GHS", 936, Some(2), National, "Ghana Cedi"),
    cur(*b"GIP", 292, Some(2), National, "Gibraltar Pound"),
    cur(*b"GMD", 270, Some(2), National, "Dalasi"),
    cur(*b"GNF", 324, Some(0), National, "Guinean Franc"),
    cur(*b"GTQ", 320, Some(2), National, "Quetzal"),
    cur(*b"GYD", 328, Some(2), National, "Guyana Dollar"),
    cur(*b"HKD", 344, Some(2), National, "Hong Kong Dollar"),
    cur(*b"HNL", 340, Some(2), National, "Lempira"),
    cur(*b"HTG", 332, Some(2), National, "Gourde"),
    cur(*b"HUF", 348, Some(2), National, "Forint"),
    cur(*b"IDR", 360, Some(2), National, "Rupiah"),
    cur(*b"ILS", 376, Some(2), National, "New Israeli Sheqel"),
    cur(*b"INR", 356, Some(2), National, "Indian Rupee"),
    cur(*b"IQD", 368, Some(3), National, "Iraqi Dinar"),
    cur(*b"IRR", 364, Some(2), National, "Iranian Rial"),
    cur(*b"ISK", 352, Some(0), National, "Iceland Krona"),
    cur(*b"JMD", 388, Some(2), National, "Jamaican Dollar"),
    cur(*b"JOD", 400, Some(3), National, "Jordanian Dinar"),
    cur(*b"JPY", 392, Some(0), National, "Yen"),
    cur(*b"KES", 404, Some(2), National, "Kenyan Shilling"),
    cur(*b"KGS", 417, Some(2), National, "Som"),
    cur(*b"KHR", 116, Some(2), National, "Riel"),
    cur(*b"KMF", 174, Some(0), National, "Comorian Franc "),
    cur(*b"KPW", 408, Some(2), National, "North Korean Won"),
    cur(*b"KRW", 410, Some(0), National, "Won"),
    cur(*b"KWD", 414, Some(3), National, "Kuwaiti Dinar"),
    cur(*b"KYD", 136, Some(2), National, "Cayman Islands Dollar"),
    cur(*b"KZT", 398, Some(2), National, "Tenge"),
    cur(*b"LAK", 418, Some(2), National, "Lao Kip"),
    cur(*b"LBP", 422, Some(2), National, "Lebanese Pound"),
    cur(*b"LKR", 144, Some(2), National, "Sri Lanka Rupee"),
    cur(*b"LRD", 430, Some(2), National, "Liberian Dollar"),
    cur(*b"LSL", 426, Some(2), National, "Loti"),
    cur(*b"LYD", 434, Some(3), National, "Libyan Dinar"),
    cur(*b"MAD", 504, Some(2), National, "Moroccan Dirham"),
    cur(*b"MDL", 498, Some(2), National, "Moldovan Leu"),
    cur(*b"MGA", 969, Some(2), National, "Malagasy Ariary"),
    cur(*b"MKD", 807, Some(2), National, "Denar"),
    cur(*b"MMK", 104, Some(2), National, "Kyat"),
    cur(*b"MNT", 496, Some(2), National, "Tugrik"),
    cur(*b"MOP", 446, Some(2), National, "Pataca"),
    cur(*b"MRU", 929, Some(2), National, "Ouguiya"),
    cur(*b"MUR", 480, Some(2), National, "Mauritius Rupee"),
    cur(*b"MVR", 462, Some(2), National, "Rufiyaa"),
    cur(*b"MWK", 454, Some(2), National, "Malawi Kwacha"),
    cur(*b"MXN", 484, Some(2), National, "Mexican Peso"),
    cur(*b"MXV", 979, Some(2), Fund, "Mexican Unidad de Inversion (UDI)"),
    cur(*b"MYR", 458, Some(2), National, "Malaysian Ringgit"),
    cur(*b"MZN", 943, Some(2), National, "Mozambique Metical"),
    cur(*b"NAD", 516, Some(2), National, "Namibia Dollar"),
    cur(*b"NGN", 566, Some(2), National, "Naira"),
    cur(*b"NIO", 558, Some(2), National, "Cordoba Oro"),
    cur(*b"NOK", 578, Some(2), National, "Norwegian Krone"),
    cur(*b"NPR", 524, Some(2), National, "Nepalese Rupee"),
    cur(*b"NZD", 554, Some(2), National, "New Zealand Dollar"),
    cur(*b"OMR", 512, Some(3), National, "Rial Omani"),
    cur(*b"PAB", 590, Some(2), National, "Balboa"),
    cur(*b"PEN", 604, Some(2), National, "Sol"),
    cur(*b"PGK", 598, Some(2), National, "Kina"),
    cur(*b"PHP", 608, Some(2), National, "Philippine Peso"),
    cur(*b"PKR", 586, Some(2), National, "Pakistan Rupee"),
    cur(*b"PLN", 985, Some(2), National, "Zloty"),
    cur(*b"PYG", 600, Some(0), National, "Guarani"),
    cur(*b"QAR", 634, Some(2), National, "Qatari Rial"),
    cur(*b"RON", 946, Some(2), National, "Romanian Leu"),
    cur(*b"RSD", 941, Some(2), National, "Serbian Dinar"),
    cur(*b"RUB", 643, Some(2), National, "Russian Ruble"),
    cur(*b"RWF", 646, Some(0), National, "Rwanda Franc"),
    cur(*b"SAR", 682, Some(2), National, "Saudi Riyal"),
    cur(*b"SBD", 90, Some(2), National, "Solomon Islands Dollar"),
    cur(*b"SCR", 690, Some(2), National, "Seychelles Rupee"),
    cur(*b"SDG", 938, Some(2), National, "Sudanese Pound"),
    cur(*b"SEK", 752, Some(2), National, "Swedish Krona"),
    cur(*b"SGD", 702, Some(2), National, "Singapore Dollar"),
    cur(*b"SHP", 654, Some(2), National, "Saint Helena Pound"),
    cur(*b"SLE", 925, Some(2), National, "Leone"),
    cur(*b"SOS", 706, Some(2), National, "Somali Shilling"),
    cur(*b"SRD", 968, Some(2), National, "Surinam Dollar"),
    cur(*b"SSP", 728, Some(2), National, "South Sudanese Pound"),
    cur(*b"STN", 930, Some(2), National, "Dobra"),
    cur(*b"SVC", 222, Some(2), National, "El Salvador Colon"),
    cur(*b"SYP", 760, Some(2), National, "Syrian Pound"),
    cur(*b"SZL", 748, Some(2), National, "Lilangeni"),
    cur(*b"THB", 764, Some(2), National, "Baht"),
    cur(*b"TJS", 972, Some(2), National, "Somoni"),
    cur(*b"TMT", 934, Some(2), National, "Turkmenistan New Manat"),
    cur(*b"TND", 788, Some(3), National, "Tunisian Dinar"),
    cur(*b"TOP", 776, Some(2), National, "Pa’anga"),
    cur(*b"TRY", 949, Some(2), National, "Turkish Lira"),
    cur(*b"TTD", 780, Some(2), National, "Trinidad and Tobago Dollar"),
    cur(*b"TWD", 901, Some(2), National, "New Taiwan Dollar"),
    cur(*b"TZS", 834, Some(2), National, "Tanzanian Shilling"),
    cur(*b"UAH", 980, Some(2), National, "Hryvnia"),
    cur(*b"UGX", 800, Some(0), National, "Uganda Shilling"),
    cur(*b"USD", 840, Some(2), National, "US Dollar"),
    cur(*b"USN", 997, Some(2), Fund, "US Dollar (Next day)"),
    cur(*b"UYI", 940, Some(0), Fund, "Uruguay Peso en Unidades Indexadas (UI)"),
    cur(*b"UYU", 858, Some(2), National, "Peso Uruguayo"),
    cur(*b"UYW", 927, Some(4), Fund, "Unidad Previsional"),
    cur(*b"UZS", 860, Some(2), National, "Uzbekistan Sum"),
    cur(*b"VED", 926, Some(2), National, "Bolívar Soberano"),
    cur(*b"VES", 928, Some(2), National, "Bolívar Soberano"),
    cur(*b"VND", 704, Some(0), National, "Dong"),
    cur(*b"VUV", 548, Some(0), National, "Vatu"),
    cur(*b"WST", 882, Some(2), National, "Tala"),
    cur(*b"XAD", 396, Some(2), Supranational, "Arab Accounting Dinar"),
    cur(*b"XAF", 950, Some(0), National, "CFA Franc BEAC"),
    cur(*b"XAG", 961, None, PreciousMetal, "Silver"),
    cur(*b"XAU", 959, None, PreciousMetal, "Gold"),
    cur(*b"XBA", 955, None, Supranational, "Bond Markets Unit European Composite Unit (EURCO)"),
    cur(*b"XBB", 956, None, Supranational, "Bond Markets Unit European Monetary Unit (E.M.U.-6)"),
    cur(*b"XBC", 957, None, Supranational, "Bond Markets Unit European Unit of Account 9 (E.U.A.-9)"),
    cur(*b"XBD", 958, None, Supranational, "Bond Markets Unit European Unit of Account 17 (E.U.A.-17)"),
    cur(*b"XCD", 951, Some(2), National, "East Caribbean Dollar"),
    cur(*b"XCG", 532, Some(2), National, "Caribbean Guilder"),
    cur(*b"XDR", 960, None, Supranational, "SDR (Special Drawing Right)"),
    cur(*b"XOF", 952, Some(0), National, "CFA Franc BCEAO"),
    cur(*b"XPD", 964, None, PreciousMetal, "Palladium"),
    cur(*b"XPF", 953, Some(0), National, "CFP Franc"),
    cur(*b"XPT", 962, None, PreciousMetal, "Platinum"),
    cur(*b"XSU", 994, None, Supranational, "Sucre"),
    cur(*b"XTS", 963, None, Testing, "Codes specifically reserved for testing purposes"),
    cur(*b"XUA", 965, None, Supranational, "ADB Unit of Account"),
    cur(*b"XXX", 999, None, NoCurrency, "The codes assigned for transactions where no currency is involved"),
    cur(*b"YER", 886, Some(2), National, "Yemeni Rial"),
    cur(*b"ZAR", 710, Some(2), National, "Rand"),
    cur(*b"ZMW", 967, Some(2), National, "Zambian Kwacha"),
    cur(*b"ZWG", 924, Some(2), National, "Zimbabwe Gold"),
];

/// Codes withdrawn from ISO 4217 and not reused (from `iso4217_codes-all.csv`), sorted; used
/// only to give a precise error.
#[rustfmt::skip]
static WITHDRAWN: [[u8; 3]; 129] = [
    *b"ADP", *b"AFA", *b"ALK", *b"ANG", *b"AOK", *b"AON", *b"AOR", *b"ARA", *b"ARP", *b"ARY", *b"ATS", *b"AYM", *b"AZM", *b"BAD", *b"BEC", *b"BEF",
    *b"BEL", *b"BGJ", *b"BGK", *b"BGL", *b"BGN", *b"BOP", *b"BRB", *b"BRC", *b"BRE", *b"BRN", *b"BRR", *b"BUK", *b"BYB", *b"BYR", *b"CHC", *b"CSD",
    *b"CSJ", *b"CSK", *b"CUC", *b"CYP", *b"DDM", *b"DEM", *b"ECS", *b"ECV", *b"EEK", *b"ESA", *b"ESB", *b"ESP", *b"FIM", *b"FRF", *b"GEK", *b"GHC",
    *b"GHP", *b"GNE", *b"GNS", *b"GQE", *b"GRD", *b"GWE", *b"GWP", *b"HRD", *b"HRK", *b"IEP", *b"ILP", *b"ILR", *b"ISJ", *b"ITL", *b"LAJ", *b"LSM",
    *b"LTL", *b"LTT", *b"LUC", *b"LUF", *b"LUL", *b"LVL", *b"LVR", *b"MGF", *b"MLF", *b"MRO", *b"MTL", *b"MTP", *b"MVQ", *b"MXP", *b"MZE", *b"MZM",
    *b"NIC", *b"NLG", *b"PEH", *b"PEI", *b"PES", *b"PLZ", *b"PTE", *b"RHD", *b"ROK", *b"ROL", *b"RUR", *b"SDD", *b"SDP", *b"SIT", *b"SKK", *b"SLL",
    *b"SRG", *b"STD", *b"SUR", *b"TJR", *b"TMM", *b"TPE", *b"TRL", *b"UAK", *b"UGS", *b"UGW", *b"USS", *b"UYN", *b"UYP", *b"VEB", *b"VEF", *b"VNC",
    *b"XEU", *b"XFO", *b"XFU", *b"XRE", *b"YDD", *b"YUD", *b"YUM", *b"YUN", *b"ZAL", *b"ZMK", *b"ZRN", *b"ZRZ", *b"ZWC", *b"ZWD", *b"ZWL", *b"ZWN",
    *b"ZWR",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_unique() {
        assert!(ACTIVE.windows(2).all(|w| w[0].code < w[1].code));
        assert!(WITHDRAWN.windows(2).all(|w| w[0] < w[1]));
        assert!(
            WITHDRAWN
                .iter()
                .all(|w| ACTIVE.iter().all(|a| &a.code != w))
        );
    }
}
