//! CFI, ISO 10962:2021: category, group and four attribute letters.

use std::str::FromStr;

use super::{IdKind, IdentifierError, Normalization, ascii_str, fixed_alnum, text_impls};

/// A Classification of Financial Instruments code (ISO 10962:2021), checked against the
/// category, group and attribute tables.
///
/// The tables were transcribed from `cfi_iso10962_tables.json` (itself derived from the MIT
/// `svyatov/sec_id` tables); the integration tests check every group, position and letter
/// against that file. `X` ("not applicable/undefined") is accepted in every attribute
/// position. The one cross-position rule (depositary receipts on shares or limited
/// partnership units must have `N` or `X` in position 4) is enforced.
///
/// ```
/// use finsec_validate::identifiers::Cfi;
///
/// let cfi: Cfi = "ESVUFR".parse()?;
/// assert_eq!(cfi.category(), 'E');
/// assert_eq!(cfi.category_label(), "Equities");
/// assert_eq!(cfi.group_label(), "Common/Ordinary shares");
/// assert!("ESZZZZ".parse::<Cfi>().is_err());
/// # Ok::<(), finsec_validate::identifiers::IdentifierError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cfi([u8; Cfi::LEN]);

struct Group {
    code: [u8; 2],
    label: &'static str,
    /// Allowed letters for positions 3 to 6, sorted.
    attributes: [&'static str; 4],
}

impl Cfi {
    /// Length of a CFI code.
    pub const LEN: usize = 6;

    /// Parses with explicit normalisation.
    ///
    /// # Errors
    ///
    /// [`IdentifierError`]: malformed, unknown category or group, attribute letter not allowed,
    /// or a cross-position rule broken.
    pub fn parse_with(input: &str, norm: Normalization) -> Result<Self, IdentifierError> {
        let kind = IdKind::Cfi;
        let bytes: [u8; Self::LEN] = fixed_alnum(input, kind, norm)?;
        if let Some((b, position)) = bytes.iter().zip(1..).find(|(b, _)| b.is_ascii_digit()) {
            return Err(IdentifierError::InvalidCharacter {
                kind,
                position,
                character: char::from(*b),
            });
        }
        let [category, group_letter, a3, a4, a5, a6] = bytes;
        if category_label(category).is_none() {
            return Err(IdentifierError::CfiCategory {
                letter: char::from(category),
            });
        }
        let Some(group) = find_group([category, group_letter]) else {
            return Err(IdentifierError::CfiGroup {
                category: char::from(category),
                group: char::from(group_letter),
            });
        };
        for ((allowed, letter), position) in group.attributes.iter().zip([a3, a4, a5, a6]).zip(3..)
        {
            if !allowed.as_bytes().contains(&letter) {
                return Err(IdentifierError::CfiAttribute {
                    group: ascii_str(&group.code).to_owned(),
                    position,
                    letter: char::from(letter),
                });
            }
        }
        if group.code == *b"ED" && matches!(a3, b'S' | b'L') && !matches!(a4, b'N' | b'X') {
            return Err(IdentifierError::CfiRule {
                rule: "depositary receipts on shares or limited partnership units (EDS, EDL) need N or X in position 4",
            });
        }
        Ok(Self(bytes))
    }

    /// Parses after trimming surrounding ASCII whitespace and upper-casing ASCII letters.
    ///
    /// # Errors
    ///
    /// As [`Cfi::parse_with`].
    pub fn parse_lenient(input: &str) -> Result<Self, IdentifierError> {
        Self::parse_with(input, Normalization::Lenient)
    }

    /// The code as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }

    /// The category letter (position 1), e.g. `E` for equities.
    #[must_use]
    pub fn category(&self) -> char {
        let [category, ..] = self.0;
        char::from(category)
    }

    /// The category's name, e.g. `Equities`.
    #[must_use]
    pub fn category_label(&self) -> &'static str {
        let [category, ..] = self.0;
        category_label(category).unwrap_or_default()
    }

    /// The group letter (position 2).
    #[must_use]
    pub fn group(&self) -> char {
        let [_, group, ..] = self.0;
        char::from(group)
    }

    /// The group's name, e.g. `Common/Ordinary shares`.
    #[must_use]
    pub fn group_label(&self) -> &'static str {
        let [category, group, ..] = self.0;
        find_group([category, group]).map_or("", |g| g.label)
    }
}

impl FromStr for Cfi {
    type Err = IdentifierError;

    /// Strict parse.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, Normalization::Strict)
    }
}

text_impls!(Cfi);

fn category_label(letter: u8) -> Option<&'static str> {
    CATEGORIES
        .iter()
        .find(|(l, _)| *l == letter)
        .map(|(_, label)| *label)
}

fn find_group(code: [u8; 2]) -> Option<&'static Group> {
    GROUPS
        .binary_search_by(|g| g.code.cmp(&code))
        .ok()
        .and_then(|i| GROUPS.get(i))
}

const fn group(code: [u8; 2], label: &'static str, attributes: [&'static str; 4]) -> Group {
    Group {
        code,
        label,
        attributes,
    }
}

/// The 14 categories of ISO 10962:2021.
#[rustfmt::skip]
const CATEGORIES: [(u8, &str); 14] = [
    (b'C', "Collective investment vehicles"),
    (b'D', "Debt instruments"),
    (b'E', "Equities"),
    (b'F', "Futures"),
    (b'H', "Non-listed and complex listed options"),
    (b'I', "Spot"),
    (b'J', "Forwards"),
    (b'K', "Strategies"),
    (b'L', "Financing"),
    (b'M', "Others (miscellaneous)"),
    (b'O', "Listed options"),
    (b'R', "Entitlements (rights)"),
    (b'S', "Swaps"),
    (b'T', "Referential instruments"),
];

/// The 78 groups, sorted by category and group letter, with the letters allowed in positions
/// 3 to 6 (`X` alone where the position is not applicable).
#[rustfmt::skip]
static GROUPS: [Group; 78] = [
    group(*b"CB", "Real estate investment trusts (REITs)", ["CMOX", "GIJX", "X", "QSUXY"]),
    group(*b"CE", "Exchange-traded funds (ETFs)", ["CMOX", "GIJX", "BCDEFKLMRVX", "SUX"]),
    group(*b"CF", "Funds of funds", ["CMOX", "GIJX", "BEHIMPX", "QSUXY"]),
    group(*b"CH", "Hedge funds", ["ADELMNRSX", "X", "X", "X"]),
    group(*b"CI", "Standard (vanilla) funds", ["CMOX", "GIJX", "BCDEFKLMRVX", "QSUXY"]),
    group(*b"CM", "Others (miscellaneous)", ["X", "X", "X", "QSUXY"]),
    group(*b"CP", "Private equity funds", ["CMOX", "GIJX", "BCDEFKLMRVX", "QSUXY"]),
    group(*b"CS", "Pension funds", ["CMOX", "BGLMX", "BMRX", "SUX"]),
    group(*b"DA", "Asset-backed securities (ABS)", ["FVXZ", "CGJNOPQSTUX", "ABCDEFGLPQRTX", "BMNRX"]),
    group(*b"DB", "Bonds", ["CFKVXZ", "CGJNOPQSTUX", "ABCDEFGLPQRTX", "BMNRX"]),
    group(*b"DC", "Convertible bonds", ["FKVXZ", "CGJNOPQSTUX", "ABCDEFGLPQRTX", "BMNRX"]),
    group(*b"DD", "Depositary receipts on debt instruments", ["BCGMNQTWXY", "CFVXZ", "CGJNOPQSTUX", "ABCDEFGLPQRTX"]),
    group(*b"DE", "Structured products (without capital protection)", ["ABCDEMX", "DFMVXY", "CMRSTX", "BCDIMNSTX"]),
    group(*b"DG", "Mortgage-backed securities (MBS)", ["FVXZ", "CGJNOPQSTUX", "ABCDEFGLPQRTX", "BMNRX"]),
    group(*b"DM", "Others (miscellaneous)", ["BMPX", "X", "X", "BMNRX"]),
    group(*b"DN", "Municipal bonds", ["FVXZ", "CGJNOPQSTUX", "ABCDEFGLPQRTX", "BMNRX"]),
    group(*b"DS", "Structured products (with capital protection)", ["ABCDMX", "DFMVXY", "FMVX", "BCDIMNSTX"]),
    group(*b"DT", "Medium-term notes", ["FKVXZ", "CGJNOPQSTUX", "ABCDEFGLPQRTX", "BMNRX"]),
    group(*b"DW", "Bonds with warrants attached", ["FKVXZ", "CGJNOPQSTUX", "ABCDEFGLPQRTX", "BMNRX"]),
    group(*b"DY", "Money-market instruments", ["FKVXZ", "CGJNOPQSTUX", "X", "BMNRX"]),
    group(*b"EC", "Common/Ordinary convertible shares", ["ENRVX", "TUX", "FOPX", "BMNRX"]),
    group(*b"ED", "Depositary receipts on equities", ["CFLMPSX", "BDNRX", "ACDFNPQUX", "BMNRX"]),
    group(*b"EF", "Preferred/Preference convertible shares", ["ENRVX", "ACEGNRTX", "ACFNPQUX", "BMNRX"]),
    group(*b"EL", "Limited partnership units", ["ENRVX", "TUX", "FOPX", "BMNRX"]),
    group(*b"EM", "Others (miscellaneous)", ["X", "X", "X", "BMNRX"]),
    group(*b"EP", "Preferred/Preference shares", ["ENRVX", "ACEGNRTX", "ACFNPQUX", "BMNRX"]),
    group(*b"ES", "Common/Ordinary shares", ["ENRVX", "TUX", "FOPX", "BMNRX"]),
    group(*b"EY", "Structured instruments (participation)", ["ABCDEMX", "DMXY", "EFMVX", "BCDGIMNSTX"]),
    group(*b"FC", "Commodities futures", ["AEHIMNPSX", "CNPX", "NSX", "X"]),
    group(*b"FF", "Financial futures", ["BCDFIMNOSVWX", "CNPX", "NSX", "X"]),
    group(*b"HC", "Credit", ["IMUVWX", "ABCDEFGHIX", "ABDGLMPVX", "CEPX"]),
    group(*b"HE", "Equity", ["BFIMORSX", "ABCDEFGHIX", "ABDGLMPVX", "CEPX"]),
    group(*b"HF", "Foreign exchange", ["FMRTVX", "ABCDEFGHIX", "ABDGLMPVX", "CENPX"]),
    group(*b"HM", "Others (miscellaneous)", ["MPX", "ABCDEFGHIX", "ABDGLMPVX", "ACENPX"]),
    group(*b"HR", "Rates", ["ACDFGHMORX", "ABCDEFGHIX", "ABDGLMPVX", "CEPX"]),
    group(*b"HT", "Commodities", ["AFGIJKMNOPQRSTWX", "ABCDEFGHIX", "ABDGLMPVX", "CEPX"]),
    group(*b"IF", "Foreign exchange", ["X", "X", "X", "PX"]),
    group(*b"IT", "Commodities", ["AJKMNPSTX", "X", "X", "X"]),
    group(*b"JC", "Credit", ["ABCDGIOX", "X", "FSX", "CNPX"]),
    group(*b"JE", "Equity", ["BFIOSX", "X", "CFSX", "CPX"]),
    group(*b"JF", "Foreign exchange", ["FORTX", "X", "CFSX", "CNPX"]),
    group(*b"JR", "Rates", ["IMOX", "X", "FSX", "CNPX"]),
    group(*b"JT", "Commodities", ["ABGIJKMNPSTX", "X", "CFX", "CNPX"]),
    group(*b"KC", "Credit", ["X", "X", "X", "X"]),
    group(*b"KE", "Equity", ["X", "X", "X", "X"]),
    group(*b"KF", "Foreign exchange", ["X", "X", "X", "X"]),
    group(*b"KM", "Others (miscellaneous)", ["X", "X", "X", "X"]),
    group(*b"KR", "Rates", ["X", "X", "X", "X"]),
    group(*b"KT", "Commodities", ["X", "X", "X", "X"]),
    group(*b"KY", "Mixed assets", ["X", "X", "X", "X"]),
    group(*b"LL", "Loan-lease", ["ABJKMNPSTX", "X", "X", "CNPX"]),
    group(*b"LR", "Repurchase agreements", ["CGSX", "FNOTX", "X", "DHTX"]),
    group(*b"LS", "Securities lending", ["CDEGKLMPTWX", "NOTX", "X", "DFHTX"]),
    group(*b"MC", "Combined instruments", ["ABHMSUWX", "TUX", "X", "BMNRX"]),
    group(*b"MM", "Other assets", ["EIMNPRSTX", "X", "X", "X"]),
    group(*b"OC", "Call options", ["ABEX", "BCDFIMNOSTWX", "CENPX", "NSX"]),
    group(*b"OM", "Others (miscellaneous)", ["X", "X", "X", "X"]),
    group(*b"OP", "Put options", ["ABEX", "BCDFIMNOSTWX", "CENPX", "NSX"]),
    group(*b"RA", "Allotments (bonus rights)", ["X", "X", "X", "BMNRX"]),
    group(*b"RD", "Depositary receipts on entitlements", ["AMPSWX", "X", "X", "BMNRX"]),
    group(*b"RF", "Mini-future / constant-leverage certificates", ["BCDIMSTX", "MNTX", "CMPX", "ABEMX"]),
    group(*b"RM", "Others (miscellaneous)", ["X", "X", "X", "X"]),
    group(*b"RP", "Purchase rights", ["BCFIMPSX", "X", "X", "BMNRX"]),
    group(*b"RS", "Subscription rights", ["BCFIMPSX", "X", "X", "BMNRX"]),
    group(*b"RW", "Warrants", ["BCDIMSTX", "CNTX", "BCPX", "ABEMX"]),
    group(*b"SC", "Credit", ["BIMUVX", "CMTX", "CLSX", "ACPX"]),
    group(*b"SE", "Equity", ["BIMSX", "CDLMPTVX", "X", "CEPX"]),
    group(*b"SF", "Foreign exchange", ["ACMX", "X", "X", "NPX"]),
    group(*b"SM", "Others (miscellaneous)", ["MPX", "X", "X", "CPX"]),
    group(*b"SR", "Rates", ["ACDGHMXZ", "CDIXY", "CSX", "CPX"]),
    group(*b"ST", "Commodities", ["AGIJKMNPQSTX", "CDLMPTVX", "X", "CEPX"]),
    group(*b"TB", "Baskets", ["CDEFIMTX", "X", "X", "X"]),
    group(*b"TC", "Currencies", ["CLMNX", "X", "X", "X"]),
    group(*b"TD", "Stock dividends", ["CFKLMPSX", "X", "X", "X"]),
    group(*b"TI", "Indices", ["CDEFMRTX", "CEFMPX", "GMNPX", "X"]),
    group(*b"TM", "Others (miscellaneous)", ["X", "X", "X", "X"]),
    group(*b"TR", "Interest rates", ["FMNRVX", "ADMNQSWX", "X", "X"]),
    group(*b"TT", "Commodities", ["AEHIMNPSX", "X", "X", "X"]),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_sorted_and_allow_x_everywhere() {
        assert!(GROUPS.windows(2).all(|w| w[0].code < w[1].code));
        assert!(
            GROUPS
                .iter()
                .all(|g| g.attributes.iter().all(|a| a.contains('X')))
        );
        assert!(GROUPS.iter().all(|g| category_label(g.code[0]).is_some()));
    }
}
