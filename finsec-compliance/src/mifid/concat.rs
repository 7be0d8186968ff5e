//! National client identifiers for natural persons (RTS 22 Art. 6 and Annex II).
//!
//! A natural person is identified by the identifier their nationality's row of Annex II
//! puts first among those they hold; CONCAT, built from the birth date and names, is the
//! fallback where the row allows it. [`national_client_id`] walks the row; [`concat()`]
//! builds the CONCAT code.
//!
//! CONCAT (Art. 6(4)–(5) and ESMA Guidelines ESMA/2016/1452): the nationality's ISO 3166-1
//! alpha-2 code, the birth date as `YYYYMMDD`, then the first five characters of the first
//! first name and of the surname, each padded with `#`, all upper case. Before that:
//! titles are removed from the start of the first names (the Guidelines' list); a prefix
//! (the Guidelines' closed list) is removed from the start of a name only when it stands as
//! a separate word; only the first of several space-separated first names is used (a
//! hyphenated name is one name); letters with diacritics are mapped by the Guidelines'
//! transliteration table; every other character (apostrophes, hyphens, spaces, full
//! stops) is dropped.
//!
//! Nationality (Art. 6(3)): a person with several nationalities is identified by an EEA
//! one if they hold any, the first in alphabetical order of country code among several;
//! otherwise by the first in alphabetical order.

use std::fmt;

use finsec_validate::identifiers::Country;
use time::Date;

use super::report::{IdScheme, PersonId};
use crate::error::{Error, Result};

/// A kind of identifier a country's row of Annex II names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdentifierKind {
    /// A national identifier, with its national name (`"PESEL"`, `"Codice fiscale"`).
    National(&'static str),
    /// A national identity card number.
    IdentityCard,
    /// A passport number.
    Passport,
    /// CONCAT.
    Concat,
}

impl IdentifierKind {
    /// The scheme it is reported under.
    #[must_use]
    pub fn scheme(self) -> IdScheme {
        match self {
            Self::National(_) | Self::IdentityCard => IdScheme::NationalId,
            Self::Passport => IdScheme::Passport,
            Self::Concat => IdScheme::Concat,
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::National(name) => write!(f, "national identifier ({name})"),
            Self::IdentityCard => f.write_str("national identity card number"),
            Self::Passport => f.write_str("passport number"),
            Self::Concat => f.write_str("CONCAT"),
        }
    }
}

use IdentifierKind::{Concat, IdentityCard, National, Passport};

/// Annex II of RTS 22: for each EEA country, its identifiers in priority order. Every other
/// nationality uses [`DEFAULT_PRIORITIES`] (Art. 6(3)). The United Kingdom's row is left
/// out: since it left the EEA, ESMA reads references to it as to a third country, so UK
/// nationals are identified as "all other countries" in reports to EU authorities.
const ANNEX_II: &[(&str, &[IdentifierKind])] = &[
    ("AT", &[Concat]),
    ("BE", &[National("Belgian National Number"), Concat]),
    ("BG", &[National("Bulgarian Personal Number"), Concat]),
    ("CY", &[Passport, Concat]),
    (
        "CZ",
        &[National("National identification number"), Passport, Concat],
    ),
    ("DE", &[Concat]),
    ("DK", &[National("Personal identity code"), Concat]),
    ("EE", &[National("Estonian Personal Identification Code")]),
    ("ES", &[National("Tax identification number")]),
    ("FI", &[National("Personal identity code"), Concat]),
    ("FR", &[Concat]),
    ("GR", &[National("10 DSS digit Investor Share"), Concat]),
    (
        "HR",
        &[National("Personal Identification Number (OIB)"), Concat],
    ),
    ("HU", &[Concat]),
    ("IE", &[Concat]),
    ("IS", &[National("Personal Identity Code (Kennitala)")]),
    ("IT", &[National("Fiscal code (Codice fiscale)")]),
    ("LI", &[Passport, IdentityCard, Concat]),
    (
        "LT",
        &[National("Personal code (Asmens kodas)"), Passport, Concat],
    ),
    ("LU", &[Concat]),
    ("LV", &[National("Personal code (Personas kods)"), Concat]),
    (
        "MT",
        &[National("National Identification Number"), Passport],
    ),
    ("NL", &[Passport, IdentityCard, Concat]),
    (
        "NO",
        &[National("11 digit personal id (Foedselsnummer)"), Concat],
    ),
    (
        "PL",
        &[
            National("National Identification Number (PESEL)"),
            National("Tax Number (NIP)"),
        ],
    ),
    ("PT", &[National("Tax number (NIF)"), Passport, Concat]),
    (
        "RO",
        &[
            National("National Identification Number (CNP)"),
            Passport,
            Concat,
        ],
    ),
    ("SE", &[National("Personal identity number"), Concat]),
    (
        "SI",
        &[National("Personal Identification Number (EMŠO)"), Concat],
    ),
    (
        "SK",
        &[National("Personal number (Rodné číslo)"), Passport, Concat],
    ),
];

/// The row for every country Annex II does not list: passport, then CONCAT.
pub const DEFAULT_PRIORITIES: &[IdentifierKind] = &[Passport, Concat];

/// The identifiers `country` accepts, highest priority first: its Annex II row for an EEA
/// country, [`DEFAULT_PRIORITIES`] for any other.
#[must_use]
pub fn priorities(country: Country) -> &'static [IdentifierKind] {
    if !country.is_eea() {
        return DEFAULT_PRIORITIES;
    }
    ANNEX_II
        .iter()
        .find(|(c, _)| *c == country.as_str())
        .map_or(DEFAULT_PRIORITIES, |(_, row)| row)
}

/// The nationality a person is identified by (Art. 6(3)): the alphabetically first EEA
/// nationality, else the alphabetically first. `None` for an empty list.
#[must_use]
pub fn reporting_nationality(nationalities: &[Country]) -> Option<Country> {
    nationalities
        .iter()
        .copied()
        .filter(Country::is_eea)
        .min()
        .or_else(|| nationalities.iter().copied().min())
}

/// A document a person holds: its kind (one of the kinds in their country's row) and
/// number. `Debug` hides the number.
#[derive(Clone, PartialEq, Eq)]
pub struct HeldIdentifier {
    /// The kind.
    pub kind: IdentifierKind,
    /// The number, without the country prefix (`[A-Z0-9]`; FI also `-+`, LV `-`).
    pub number: String,
}

impl fmt::Debug for HeldIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldIdentifier")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// What [`national_client_id`] needs to know of a person.
#[derive(Clone)]
pub struct PersonDetails<'a> {
    /// Every nationality.
    pub nationalities: &'a [Country],
    /// Date of birth.
    pub birth_date: Date,
    /// First names as written.
    pub first_names: &'a str,
    /// Surnames as written.
    pub surnames: &'a str,
    /// The identifiers of the reporting nationality the person holds.
    pub held: &'a [HeldIdentifier],
}

impl fmt::Debug for PersonDetails<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersonDetails")
            .field("nationalities", &self.nationalities)
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

/// The national client identifier of a person: the reporting nationality's first
/// identifier in Annex II order that the person holds, CONCAT when reached.
///
/// # Errors
///
/// [`Error::Invalid`] with no nationality or a malformed held number;
/// [`Error::MissingIdentifier`] when the person holds none of the kinds their country
/// accepts and the row has no CONCAT.
pub fn national_client_id(person: &PersonDetails<'_>) -> Result<PersonId> {
    let country = reporting_nationality(person.nationalities)
        .ok_or_else(|| Error::invalid("nationalities", "at least one is needed"))?;
    let row = priorities(country);
    for kind in row {
        if *kind == Concat {
            return concat(
                country,
                person.birth_date,
                person.first_names,
                person.surnames,
            );
        }
        if let Some(held) = person.held.iter().find(|h| h.kind == *kind) {
            return PersonId::new(
                kind.scheme(),
                format!("{}{}", country.as_str(), held.number),
            );
        }
    }
    Err(Error::MissingIdentifier {
        country: country.as_str().to_owned(),
        needed: row
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Titles removed from the start of the first names ("including but not limited to").
const TITLES: &[&str] = &[
    "ATTY",
    "COACH",
    "DAME",
    "DR",
    "FR",
    "GOV",
    "HONORABLE",
    "MADAM",
    "MADAME",
    "MAID",
    "MASTER",
    "MISS",
    "MONSIEUR",
    "MR",
    "MRS",
    "MS",
    "MX",
    "OFC",
    "PHD",
    "PRES",
    "PROF",
    "REV",
    "SIR",
];

/// Prefixes removed from the start of a name ("these, and only these"), as words; the
/// longest match wins. `DE L'` is handled with the apostrophe as a word break.
const PREFIXES: &[&[&str]] = &[
    &["AM"],
    &["AUF"],
    &["AUF", "DEM"],
    &["AUS", "DER"],
    &["D"],
    &["DA"],
    &["DE"],
    &["DE", "L"],
    &["DEL"],
    &["DE", "LA"],
    &["DE", "LE"],
    &["DI"],
    &["DO"],
    &["DOS"],
    &["DU"],
    &["IM"],
    &["LA"],
    &["LE"],
    &["MAC"],
    &["MC"],
    &["MHAC"],
    &["MHIC"],
    &["MHIC", "GIOLLA"],
    &["MIC"],
    &["NI"],
    &["NIC"],
    &["O"],
    &["UA"],
    &["UI"],
    &["VAN"],
    &["VAN", "DE"],
    &["VAN", "DEN"],
    &["VAN", "DER"],
    &["VOM"],
    &["VON"],
    &["VON", "DEM"],
    &["VON", "DEN"],
    &["VON", "DER"],
];

/// The Guidelines' transliteration of letters with diacritics, by target letter.
const TRANSLITERATION: &[(char, &str)] = &[
    ('A', "ÄäÀàÁáÂâÃãÅåǍǎĄąĂăÆæ"),
    ('C', "ÇçĆćĈĉČč"),
    ('D', "ĎďĐđÐð"),
    ('E', "ÈèÉéÊêËëĚěĘę"),
    ('G', "ĜĝĢģĞğ"),
    ('H', "Ĥĥ"),
    ('I', "ÌìÍíÎîÏïı"),
    ('J', "Ĵĵ"),
    ('K', "Ķķ"),
    ('L', "ĹĺĻļŁłĽľ"),
    ('N', "ÑñŃńŇň"),
    ('O', "ÖöÒòÓóÔôÕõŐőØøŒœ"),
    ('R', "ŔŕŘř"),
    ('S', "ẞßŚśŜŝŞşŠšȘș"),
    ('T', "ŤťŢţÞþȚț"),
    ('U', "ÜüÙùÚúÛûŰűŨũŲųŮů"),
    ('W', "Ŵŵ"),
    ('Y', "ÝýŸÿŶŷ"),
    ('Z', "ŹźŽžŻż"),
];

/// A letter as CONCAT writes it: A–Z upper-cased, a letter of the table mapped, anything
/// else dropped.
fn letter(c: char) -> Option<char> {
    if c.is_ascii_alphabetic() {
        return Some(c.to_ascii_uppercase());
    }
    TRANSLITERATION
        .iter()
        .find(|(_, from)| from.contains(c))
        .map(|(to, _)| *to)
}

/// A name as words: split on whitespace, apostrophes and commas, each word reduced to its
/// CONCAT letters (so `Dr.` is `DR`, `Ó` is `O`).
fn words(name: &str) -> Vec<(String, char)> {
    // Each word with the separator that followed it (' ' or '\''), so `O'Brian` stays one
    // name while `De l'Isle` can still match the prefix `DE L'`.
    let mut out = Vec::new();
    let mut current = String::new();
    for c in name.chars() {
        let sep = match c {
            '\'' | '’' | '`' | '´' => Some('\''),
            c if c.is_whitespace() || c == ',' => Some(' '),
            _ => None,
        };
        match sep {
            Some(s) => {
                if !current.is_empty() {
                    out.push((std::mem::take(&mut current), s));
                } else if s == '\''
                    && let Some(last) = out.last_mut()
                {
                    last.1 = '\'';
                }
            }
            None => {
                // Anything else (hyphens, full stops, ...) is dropped without breaking the
                // word: a hyphenated name stays one name.
                if let Some(l) = letter(c) {
                    current.push(l);
                }
            }
        }
    }
    if !current.is_empty() {
        out.push((current, ' '));
    }
    out
}

/// The words of a name after its prefix: the longest prefix of the list that is followed
/// by another word. A prefix joined by an apostrophe (`O'Brian`) is part of the name,
/// except `DE L'`.
fn strip_prefix(words: &[(String, char)]) -> &[(String, char)] {
    let mut best = 0;
    for prefix in PREFIXES {
        let n = prefix.len();
        if words.len() <= n || n <= best {
            continue;
        }
        let matches = prefix.iter().zip(words).all(|(p, (w, _))| p == w);
        if !matches {
            continue;
        }
        // The separator after the prefix's last word: a space, or an apostrophe only
        // for `DE L'`.
        let sep = words.get(n - 1).map_or(' ', |(_, s)| *s);
        let apostrophe_ok = *prefix == ["DE", "L"];
        // Separators inside the prefix must be spaces.
        let inner_ok = words.iter().take(n - 1).all(|(_, s)| *s == ' ');
        if inner_ok && (sep == ' ' || apostrophe_ok) {
            best = n;
        }
    }
    words.get(best..).unwrap_or_default()
}

/// Joins words split only at apostrophes back into one name (`O'Brian` → `OBRIAN`).
fn first_name_part(words: &[(String, char)]) -> String {
    let mut out = String::new();
    for (w, sep) in words {
        out.push_str(w);
        if *sep == ' ' {
            break;
        }
    }
    out
}

fn five(name: &str) -> String {
    let mut part: String = name.chars().take(5).collect();
    while part.len() < 5 {
        part.push('#');
    }
    part
}

/// Builds the CONCAT code of a person of nationality `country`.
///
/// # Errors
///
/// [`Error::Invalid`] when a name has no letter left after titles and prefixes are removed
/// (the code cannot be built, and a name of only `#` would identify no one).
///
/// ```
/// use finsec_compliance::mifid::concat::concat;
/// use time::macros::date;
///
/// let id = concat("IE".parse()?, date!(1980-01-13), "John", "O'Brian")?;
/// assert_eq!(id.expose(), "IE19800113JOHN#OBRIA");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn concat(
    country: Country,
    birth_date: Date,
    first_names: &str,
    surnames: &str,
) -> Result<PersonId> {
    let first = words(first_names);
    let mut first = first.as_slice();
    while let Some(((w, ' '), rest)) = first.split_first() {
        if TITLES.contains(&w.as_str()) && !rest.is_empty() {
            first = rest;
        } else {
            break;
        }
    }
    let first = first_name_part(strip_prefix(first));
    let last: String = strip_prefix(&words(surnames))
        .iter()
        .map(|(w, _)| w.as_str())
        .collect();
    if first.is_empty() {
        return Err(Error::invalid(
            "first_names",
            "no letter to build a CONCAT from",
        ));
    }
    if last.is_empty() {
        return Err(Error::invalid(
            "surnames",
            "no letter to build a CONCAT from",
        ));
    }
    let value = format!(
        "{}{:04}{:02}{:02}{}{}",
        country.as_str(),
        birth_date.year(),
        u8::from(birth_date.month()),
        birth_date.day(),
        five(&first),
        five(&last)
    );
    PersonId::new(IdScheme::Concat, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn c(code: &str) -> Country {
        code.parse().unwrap()
    }

    #[test]
    fn annex_ii_rows_are_unique_and_sorted() {
        assert!(ANNEX_II.windows(2).all(|w| w[0].0 < w[1].0));
        // Exactly the thirty EEA states, each with a row.
        assert_eq!(ANNEX_II.len(), 30);
        for (code, row) in ANNEX_II {
            assert!(code.parse::<Country>().unwrap().is_eea(), "{code}");
            assert!(!row.is_empty());
        }
        assert_eq!(priorities(c("GB")), DEFAULT_PRIORITIES);
        assert_eq!(priorities(c("PL")).len(), 2);
    }

    #[test]
    fn the_row_decides_when_concat_is_used() {
        let held = [HeldIdentifier {
            kind: National("Personal identity number"),
            number: "194412021234".into(),
        }];
        let person = PersonDetails {
            nationalities: &[c("SE")],
            birth_date: date!(1944 - 12 - 02),
            first_names: "Robert",
            surnames: "O’Neal",
            held: &held,
        };
        let id = national_client_id(&person).unwrap();
        assert_eq!(id.scheme(), IdScheme::NationalId);
        assert_eq!(id.expose(), "SE194412021234");
        let without = PersonDetails {
            held: &[],
            ..person.clone()
        };
        assert_eq!(
            national_client_id(&without).unwrap().expose(),
            "SE19441202ROBERONEAL"
        );
        // Spain has no CONCAT: without its tax number there is no identifier.
        let spain = PersonDetails {
            nationalities: &[c("ES"), c("FR")],
            held: &[],
            ..person.clone()
        };
        let err = national_client_id(&spain).unwrap_err();
        assert!(matches!(&err, Error::MissingIdentifier { country, .. } if country == "ES"));
        assert!(!err.to_string().contains("Robert"));
        // Not an EEA national: passport, then CONCAT.
        let us = PersonDetails {
            nationalities: &[c("US"), c("CA")],
            held: &[],
            ..person.clone()
        };
        assert_eq!(
            national_client_id(&us).unwrap().expose(),
            "CA19441202ROBERONEAL"
        );
        let us_passport = [HeldIdentifier {
            kind: Passport,
            number: "X1234567".into(),
        }];
        let us = PersonDetails {
            nationalities: &[c("US")],
            held: &us_passport,
            ..person
        };
        let id = national_client_id(&us).unwrap();
        assert_eq!(
            (id.scheme(), id.expose()),
            (IdScheme::Passport, "USX1234567")
        );
    }

    #[test]
    fn eea_nationality_first_then_alphabetical() {
        assert_eq!(
            reporting_nationality(&[c("US"), c("FR"), c("DE")]),
            Some(c("DE"))
        );
        assert_eq!(reporting_nationality(&[c("US"), c("CA")]), Some(c("CA")));
        assert_eq!(reporting_nationality(&[]), None);
    }

    #[test]
    fn names_without_letters_are_refused() {
        assert!(concat(c("FR"), date!(1990 - 01 - 01), "Dr.", "Doe").is_ok());
        assert!(concat(c("FR"), date!(1990 - 01 - 01), "—", "Doe").is_err());
        assert!(concat(c("FR"), date!(1990 - 01 - 01), "Jean", "'-'").is_err());
    }

    #[test]
    fn de_l_apostrophe_is_a_prefix() {
        let id = concat(c("FR"), date!(1970 - 01 - 01), "Anne", "de l'Isle").unwrap();
        assert_eq!(id.expose(), "FR19700101ANNE#ISLE#");
    }
}
