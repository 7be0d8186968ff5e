//! The transaction report: RTS 22 Annex I Table 2, the fields an investment firm fills for
//! equity and ETF trades, as typed values.

use std::fmt;

use finsec_validate::identifiers::{Country, Currency, Isin, Lei, Mic};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use super::clock::{ClockFlag, Granularity, TradingTime};
use crate::error::{Error, Result};
use crate::gdpr::Pseudonym;

/// Checks `value` against `[A-Z0-9]{1,max}` (the ESMA alphanumeric patterns).
fn upper_alnum(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid(field, "is empty"));
    }
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("is {} characters, at most {max}", value.len()),
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
    {
        return Err(Error::invalid(
            field,
            format!("{c:?} is not an upper-case letter or digit"),
        ));
    }
    Ok(())
}

macro_rules! code_type {
    ($(#[$meta:meta])* $name:ident, $field:literal, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The longest accepted value.
            pub const MAX_LEN: usize = $max;

            /// Checks the shape (`[A-Z0-9]`, 1 to [`Self::MAX_LEN`] characters).
            ///
            /// # Errors
            ///
            /// [`Error::Invalid`] naming the first offending character or the length.
            pub fn new(value: impl Into<String>) -> Result<Self> {
                let value = value.into();
                upper_alnum($field, &value, $max)?;
                Ok(Self(value))
            }

            /// The value.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(value: String) -> Result<Self> {
                Self::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::new(s)
            }
        }
    };
}

code_type!(
    /// Field 2, the transaction reference number: the firm's own unique id for the
    /// transaction, `[A-Z0-9]{1,52}`. A report is cancelled and amended under it.
    TransactionReference,
    "transaction_reference",
    52
);

code_type!(
    /// Field 3, the trading venue transaction identification code, `[A-Z0-9]{1,52}`.
    VenueTransactionId,
    "venue_transaction_id",
    52
);

code_type!(
    /// An algorithm's code within the firm (fields 57 and 59), `[A-Z0-9]{1,50}`.
    AlgorithmId,
    "algorithm",
    50
);

/// Field 1, the report status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReportStatus {
    /// `NEWT`: a new report.
    #[serde(rename = "NEWT")]
    New,
    /// `CANC`: the cancellation of an earlier report.
    #[serde(rename = "CANC")]
    Cancel,
}

impl ReportStatus {
    /// The RTS 22 code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::New => "NEWT",
            Self::Cancel => "CANC",
        }
    }

    /// Parses an RTS 22 code.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for anything but `NEWT` or `CANC`.
    pub fn from_code(code: &str) -> Result<Self> {
        match code {
            "NEWT" => Ok(Self::New),
            "CANC" => Ok(Self::Cancel),
            _ => Err(Error::invalid("status", "must be NEWT or CANC")),
        }
    }
}

/// How a natural person's identifier was issued (the ISO 20022 scheme).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum IdScheme {
    /// `NIDN`: a national identity number or card.
    #[serde(rename = "NIDN")]
    NationalId,
    /// `CCPT`: a passport number.
    #[serde(rename = "CCPT")]
    Passport,
    /// `CONCAT`: built from nationality, birth date and names ([`concat`](super::concat)).
    #[serde(rename = "CONCAT")]
    Concat,
}

impl IdScheme {
    /// The code in the report.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::NationalId => "NIDN",
            Self::Passport => "CCPT",
            Self::Concat => "CONCAT",
        }
    }

    /// Parses a code.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for anything but `NIDN`, `CCPT` or `CONCAT`.
    pub fn from_code(code: &str) -> Result<Self> {
        match code {
            "NIDN" => Ok(Self::NationalId),
            "CCPT" => Ok(Self::Passport),
            "CONCAT" => Ok(Self::Concat),
            _ => Err(Error::invalid("id_scheme", "must be NIDN, CCPT or CONCAT")),
        }
    }
}

/// A natural person's identifier: the country code of the issuing nationality, then the
/// number (`ESMA_PersonalIdentification_Pattern`). `Debug` and `Display` show the scheme and
/// country only: the number is personal data.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "PersonIdRepr", into = "PersonIdRepr")]
pub struct PersonId {
    scheme: IdScheme,
    value: String,
}

#[derive(Serialize, Deserialize)]
struct PersonIdRepr {
    scheme: IdScheme,
    value: String,
}

impl TryFrom<PersonIdRepr> for PersonId {
    type Error = Error;
    fn try_from(r: PersonIdRepr) -> Result<Self> {
        Self::new(r.scheme, r.value)
    }
}

impl From<PersonId> for PersonIdRepr {
    fn from(p: PersonId) -> Self {
        Self {
            scheme: p.scheme,
            value: p.value,
        }
    }
}

impl PersonId {
    /// Checks `value` against the scheme: a CONCAT is the country, eight digits of birth
    /// date and two five-character name parts of `A-Z` and `#`; a national or passport
    /// number is the country then 1 to 33 of `A-Z0-9` (Finland also `-` and `+`, Latvia `-`).
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] saying which rule failed (never echoing the number).
    pub fn new(scheme: IdScheme, value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let field = "person_id";
        let bytes = value.as_bytes();
        let (Some(prefix), Some(rest)) = (value.get(..2), value.get(2..)) else {
            return Err(Error::invalid(field, "is shorter than a country code"));
        };
        Country::parse_with(prefix, finsec_validate::identifiers::Normalization::Strict)
            .map_err(|_| Error::invalid(field, "does not start with an assigned country code"))?;
        match scheme {
            IdScheme::Concat => {
                let ok = bytes.len() == 20
                    && rest
                        .get(..8)
                        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
                    && rest.get(8..).is_some_and(|n| {
                        n.bytes().all(|b| b.is_ascii_uppercase() || b == b'#')
                            && n.as_bytes().first().is_some_and(u8::is_ascii_uppercase)
                            && n.as_bytes().get(5).is_some_and(u8::is_ascii_uppercase)
                    });
                if !ok {
                    return Err(Error::invalid(
                        field,
                        "a CONCAT is a country, 8 digits and two 5-letter name parts",
                    ));
                }
            }
            IdScheme::NationalId | IdScheme::Passport => {
                let extra: &[u8] = match prefix {
                    "FI" => b"-+",
                    "LV" => b"-",
                    _ => b"",
                };
                if rest.is_empty() || rest.len() > 33 {
                    return Err(Error::invalid(
                        field,
                        "the number after the country code is 1 to 33 characters",
                    ));
                }
                if !rest
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || extra.contains(&b))
                {
                    return Err(Error::invalid(
                        field,
                        "the number holds a character other than A-Z or 0-9",
                    ));
                }
            }
        }
        Ok(Self { scheme, value })
    }

    /// The scheme.
    #[must_use]
    pub fn scheme(&self) -> IdScheme {
        self.scheme
    }

    /// The identifier, country code first. Personal data: keep it out of logs.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The country of the nationality that issued it.
    #[must_use]
    pub fn country(&self) -> &str {
        self.value.get(..2).unwrap_or_default()
    }
}

impl fmt::Debug for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonId({} {}…)", self.scheme.code(), self.country())
    }
}

/// A natural person as a buyer, seller or decision maker (fields 7 to 11, 12 to 15, ...):
/// first names, surnames, birth date and national client identifier. `Debug` shows only
/// the identifier's scheme and country.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PersonRepr", into = "PersonRepr")]
pub struct NaturalPerson {
    first_names: String,
    surnames: String,
    birth_date: Date,
    id: PersonId,
}

time::serde::format_description!(iso_date, Date, "[year]-[month]-[day]");

#[derive(Serialize, Deserialize)]
struct PersonRepr {
    first_names: String,
    surnames: String,
    #[serde(with = "iso_date")]
    birth_date: Date,
    id: PersonId,
}

impl TryFrom<PersonRepr> for NaturalPerson {
    type Error = Error;
    fn try_from(r: PersonRepr) -> Result<Self> {
        Self::new(r.first_names, r.surnames, r.birth_date, r.id)
    }
}

impl From<NaturalPerson> for PersonRepr {
    fn from(p: NaturalPerson) -> Self {
        Self {
            first_names: p.first_names,
            surnames: p.surnames,
            birth_date: p.birth_date,
            id: p.id,
        }
    }
}

fn check_name(field: &'static str, value: &str) -> Result<()> {
    let n = value.chars().count();
    if value.trim().is_empty() {
        return Err(Error::invalid(field, "is empty"));
    }
    if n > 140 {
        return Err(Error::invalid(
            field,
            format!("is {n} characters, at most 140"),
        ));
    }
    if value.chars().any(|c| c.is_control() || c == ';') {
        return Err(Error::invalid(
            field,
            "holds a control character or a semicolon",
        ));
    }
    if value.trim() != value {
        return Err(Error::invalid(field, "has leading or trailing whitespace"));
    }
    Ok(())
}

impl NaturalPerson {
    /// A person. Names are kept as written (1 to 140 characters, no control characters
    /// or `;`); the identifier is usually [`national_client_id`](super::concat::national_client_id)'s.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for an empty, over-long or unprintable name.
    pub fn new(
        first_names: impl Into<String>,
        surnames: impl Into<String>,
        birth_date: Date,
        id: PersonId,
    ) -> Result<Self> {
        let first_names = first_names.into();
        let surnames = surnames.into();
        check_name("first_names", &first_names)?;
        check_name("surnames", &surnames)?;
        Ok(Self {
            first_names,
            surnames,
            birth_date,
            id,
        })
    }

    /// First names, comma-separated if several.
    #[must_use]
    pub fn first_names(&self) -> &str {
        &self.first_names
    }

    /// Surnames, comma-separated if several.
    #[must_use]
    pub fn surnames(&self) -> &str {
        &self.surnames
    }

    /// Date of birth.
    #[must_use]
    pub fn birth_date(&self) -> Date {
        self.birth_date
    }

    /// The national client identifier.
    #[must_use]
    pub fn id(&self) -> &PersonId {
        &self.id
    }
}

impl fmt::Debug for NaturalPerson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NaturalPerson")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A buyer or seller account owner (fields 7 and 16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// A legal entity, or the firm itself, by LEI.
    Lei(Lei),
    /// A trading venue by MIC (where the venue is the counterparty).
    Mic(Mic),
    /// A natural person.
    Person(NaturalPerson),
    /// `INTC`: the firm's aggregate client account, for an order filled in several
    /// executions and allocated to clients.
    Internal,
    /// A natural person erased under GDPR Art. 17 after the report was sent: their
    /// identity is replaced by a keyed pseudonym and the report is kept for record keeping
    /// only. It cannot be reported again.
    Pseudonymised(Pseudonym),
}

/// One account owner with the country of the branch that received the client's order
/// (field 8 and 17, optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountOwner {
    /// The owner.
    pub party: Party,
    /// The country of the branch that received the order or made the decision.
    pub branch_country: Option<Country>,
}

/// Who decided for a buyer or seller (fields 12 and 21): someone holding a power of
/// representation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionMaker {
    /// A legal entity, by LEI.
    Lei(Lei),
    /// A natural person.
    Person(NaturalPerson),
    /// A natural person erased after the report was sent (see [`Party::Pseudonymised`]).
    Pseudonymised(Pseudonym),
}

/// The buyer or the seller side: one or more account owners (joint accounts), and the
/// decision makers when the owners are represented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterparty {
    /// Account owners; at least one.
    pub owners: Vec<AccountOwner>,
    /// Whether the owners were represented by someone deciding for them (a power of
    /// attorney, a discretionary mandate by a third party). When set, `decision_makers`
    /// must name them; when not, it must be empty. Not a field of the XML report: reading
    /// one back sets it from whether decision makers are given.
    pub represented: bool,
    /// The representatives who decided.
    pub decision_makers: Vec<DecisionMaker>,
}

impl Counterparty {
    /// One owner, not represented.
    #[must_use]
    pub fn single(party: Party, branch_country: Option<Country>) -> Self {
        Self {
            owners: vec![AccountOwner {
                party,
                branch_country,
            }],
            represented: false,
            decision_makers: Vec::new(),
        }
    }

    /// Marks the side as represented by `makers`.
    #[must_use]
    pub fn represented_by(mut self, makers: Vec<DecisionMaker>) -> Self {
        self.represented = true;
        self.decision_makers = makers;
        self
    }
}

/// Fields 25 to 27: whether the order was transmitted to the firm by another firm under
/// Art. 4 of RTS 22, and which.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transmission {
    /// Field 25: transmission of order indicator.
    pub transmitted: bool,
    /// Field 26: the transmitting firm for the buyer.
    pub transmitting_buyer: Option<Lei>,
    /// Field 27: the transmitting firm for the seller.
    pub transmitting_seller: Option<Lei>,
}

/// Field 29, trading capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TradingCapacity {
    /// `DEAL`: dealing on own account.
    #[serde(rename = "DEAL")]
    Deal,
    /// `MTCH`: matched principal.
    #[serde(rename = "MTCH")]
    Matched,
    /// `AOTC`: any other capacity (usually agency).
    #[serde(rename = "AOTC")]
    AnyOther,
}

impl TradingCapacity {
    /// The RTS 22 code.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::Deal => "DEAL",
            Self::Matched => "MTCH",
            Self::AnyOther => "AOTC",
        }
    }

    /// Parses an RTS 22 code.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for anything but `DEAL`, `MTCH` or `AOTC`.
    pub fn from_code(code: &str) -> Result<Self> {
        match code {
            "DEAL" => Ok(Self::Deal),
            "MTCH" => Ok(Self::Matched),
            "AOTC" => Ok(Self::AnyOther),
            _ => Err(Error::invalid(
                "trading_capacity",
                "must be DEAL, MTCH or AOTC",
            )),
        }
    }
}

/// Fields 30 and 31: quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// A number of units (shares, ETF units).
    Units(Decimal),
    /// A nominal value (bonds).
    Nominal {
        /// The value.
        value: Decimal,
        /// Its currency.
        currency: Currency,
    },
    /// A monetary value.
    Monetary {
        /// The value.
        value: Decimal,
        /// Its currency.
        currency: Currency,
    },
}

impl Quantity {
    /// The amount, whatever its kind.
    #[must_use]
    pub fn value(&self) -> Decimal {
        match self {
            Self::Units(v) | Self::Nominal { value: v, .. } | Self::Monetary { value: v, .. } => *v,
        }
    }
}

/// Fields 33 and 34: price, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Price {
    /// A monetary price per unit (equities, ETFs). May be negative for some instruments.
    Monetary {
        /// The price.
        value: Decimal,
        /// Its currency.
        currency: Currency,
    },
    /// A percentage of par (bonds).
    Percentage(Decimal),
    /// A yield.
    Yield(Decimal),
    /// Basis points.
    BasisPoints(Decimal),
    /// `PNDG`: the price is not yet known.
    Pending {
        /// The currency the price will be in, where known.
        currency: Option<Currency>,
    },
    /// `NOAP`: there is no price for this transaction.
    NotApplicable {
        /// The currency, where one applies.
        currency: Option<Currency>,
    },
}

/// A person within the firm (fields 57 and 59): the branch country and the identifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmPerson {
    /// The country of the branch the person works for.
    pub branch_country: Country,
    /// The person's national identifier.
    pub id: PersonId,
}

/// Field 57: who within the firm decided to invest (absent when a client decided).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvestmentDecision {
    /// A person.
    Person(FirmPerson),
    /// An algorithm.
    Algorithm(AlgorithmId),
}

/// Field 59: who within the firm executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Executor {
    /// A person.
    Person(FirmPerson),
    /// An algorithm.
    Algorithm(AlgorithmId),
    /// `NORE`: the client decided the execution (no person or algorithm of the firm).
    Client,
}

macro_rules! code_enum {
    ($(#[$meta:meta])* $name:ident, $field:literal { $($(#[$vmeta:meta])* $variant:ident = $code:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $code)] $variant,)+
        }

        impl $name {
            /// The RTS 22 code.
            #[must_use]
            pub fn code(self) -> &'static str {
                match self { $(Self::$variant => $code,)+ }
            }

            /// Parses an RTS 22 code.
            ///
            /// # Errors
            ///
            /// [`Error::Invalid`] for an unknown code.
            pub fn from_code(code: &str) -> Result<Self> {
                match code {
                    $($code => Ok(Self::$variant),)+
                    _ => Err(Error::invalid($field, "unknown code")),
                }
            }
        }
    };
}

code_enum!(
    /// Field 61, a pre-trade transparency waiver the venue applied.
    Waiver, "waiver" {
        /// `OILQ`: on-venue illiquid instrument.
        Oilq = "OILQ",
        /// `NLIQ`: negotiated transaction in a liquid instrument.
        Nliq = "NLIQ",
        /// `PRIC`: negotiated transaction subject to conditions other than the current price.
        Pric = "PRIC",
        /// `ILQD`: illiquid instrument.
        Ilqd = "ILQD",
        /// `RFPT`: reference price.
        Rfpt = "RFPT",
        /// `SIZE`: above the size specific to the instrument.
        Size = "SIZE",
    }
);

code_enum!(
    /// Field 62, the short-selling indicator.
    ShortSelling, "short_selling" {
        /// `SESH`: short sale with no exemption.
        Sesh = "SESH",
        /// `SSEX`: short sale with exemption.
        Ssex = "SSEX",
        /// `SELL`: no short sale.
        Sell = "SELL",
        /// `UNDI`: information not available.
        Undi = "UNDI",
    }
);

code_enum!(
    /// Field 63, an OTC post-trade indicator.
    OtcPostTrade, "otc_post_trade" {
        /// `BENC`: benchmark.
        Benc = "BENC",
        /// `ACTX`: agency cross.
        Actx = "ACTX",
        /// `ILQD`: illiquid instrument.
        Ilqd = "ILQD",
        /// `SIZE`: above the size specific to the instrument.
        Size = "SIZE",
        /// `CANC`: cancellation.
        Canc = "CANC",
        /// `AMND`: amendment.
        Amnd = "AMND",
        /// `SDIV`: special dividend.
        Sdiv = "SDIV",
        /// `RPRI`: price improvement.
        Rpri = "RPRI",
        /// `DUPL`: duplicative.
        Dupl = "DUPL",
        /// `LRGS`: large in scale.
        Lrgs = "LRGS",
        /// `TNCP`: not contributing to the price discovery process.
        Tncp = "TNCP",
        /// `TPAC`: package.
        Tpac = "TPAC",
        /// `XFPH`: exchange for physical.
        Xfph = "XFPH",
    }
);

/// A new transaction report (`NEWT`): RTS 22 Annex I Table 2, the fields for equity and
/// ETF transactions identified by ISIN.
///
/// Built field by field from finsec-validate's types, so every value already has its
/// shape; [`check`](Self::check) then applies the rules across fields and collects every
/// problem. Money and quantities are `Decimal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionReport {
    /// Field 2.
    pub reference: TransactionReference,
    /// Field 3: required for a trade on a venue, absent for `XOFF`/`XXXX`.
    pub venue_transaction_id: Option<VenueTransactionId>,
    /// Field 4: the executing entity.
    pub executing_entity: Lei,
    /// Field 5: whether the executing entity is an investment firm under MiFID II.
    pub investment_firm: bool,
    /// Field 6: the submitting entity (the firm, or its ARM).
    pub submitting_entity: Lei,
    /// Fields 7 to 15.
    pub buyer: Counterparty,
    /// Fields 16 to 24.
    pub seller: Counterparty,
    /// Fields 25 to 27.
    pub transmission: Transmission,
    /// Field 28: the trading date and time, UTC, with its RTS 25 granularity.
    pub trading_time: TradingTime,
    /// Field 29.
    pub capacity: TradingCapacity,
    /// Fields 30 and 31.
    pub quantity: Quantity,
    /// Fields 33 and 34.
    pub price: Price,
    /// Field 35: net amount (debt instruments only).
    pub net_amount: Option<Decimal>,
    /// Field 36: the venue's segment MIC, `XOFF` off venue, `XXXX` for a non-EEA venue.
    pub venue: Mic,
    /// Field 37: the country of the branch membership used on the venue.
    pub branch_country: Option<Country>,
    /// Field 41: the instrument.
    pub instrument: Isin,
    /// Field 57.
    pub investment_decision: Option<InvestmentDecision>,
    /// Field 59.
    pub executor: Executor,
    /// Field 61.
    pub waivers: Vec<Waiver>,
    /// Field 62.
    pub short_selling: Option<ShortSelling>,
    /// Field 63.
    pub otc_post_trade: Vec<OtcPostTrade>,
    /// Field 64: commodity derivative indicator (absent for equities).
    pub commodity_derivative: Option<bool>,
    /// Field 65: securities financing transaction indicator.
    pub securities_financing: bool,
}

/// A cancellation (`CANC`): names the report to cancel by its transaction reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancellation {
    /// Field 2 of the cancelled report.
    pub reference: TransactionReference,
    /// Field 4.
    pub executing_entity: Lei,
    /// Field 6.
    pub submitting_entity: Lei,
}

/// One record of a report file: a new report or a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status")]
pub enum Report {
    /// `NEWT`.
    #[serde(rename = "NEWT")]
    New(Box<TransactionReport>),
    /// `CANC`.
    #[serde(rename = "CANC")]
    Cancel(Cancellation),
}

impl Report {
    /// Field 1.
    #[must_use]
    pub fn status(&self) -> ReportStatus {
        match self {
            Self::New(_) => ReportStatus::New,
            Self::Cancel(_) => ReportStatus::Cancel,
        }
    }

    /// Field 2.
    #[must_use]
    pub fn reference(&self) -> &TransactionReference {
        match self {
            Self::New(r) => &r.reference,
            Self::Cancel(c) => &c.reference,
        }
    }

    /// The cancellation of this report.
    #[must_use]
    pub fn cancellation(&self) -> Cancellation {
        match self {
            Self::New(r) => Cancellation {
                reference: r.reference.clone(),
                executing_entity: r.executing_entity,
                submitting_entity: r.submitting_entity,
            },
            Self::Cancel(c) => c.clone(),
        }
    }
}

/// Where a report came from, for an examiner: the audit event of the execution it reports,
/// the audit event of the report's own creation (each provable with a finsec-audit
/// inclusion proof), and the clock check of the execution's timestamp.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// The audit event id of the execution.
    pub execution_event: Option<Uuid>,
    /// The audit event id of the report's creation (or cancellation).
    pub report_event: Option<Uuid>,
    /// Set when the clock that stamped the execution diverged from UTC by more than RTS 25
    /// allows for its granularity.
    pub clock: Option<ClockFlag>,
}

impl TransactionReport {
    /// The trading time as a date-time.
    #[must_use]
    pub fn traded_at(&self) -> OffsetDateTime {
        self.trading_time.at()
    }

    /// The trading time's granularity.
    #[must_use]
    pub fn granularity(&self) -> Granularity {
        self.trading_time.granularity()
    }

    /// Replaces the natural person identified by `person`, wherever they are an account
    /// owner or a decision maker, with `pseudonym` (GDPR erasure of a record that must be
    /// kept). Returns how many places changed.
    pub fn pseudonymise(&mut self, person: &PersonId, pseudonym: &Pseudonym) -> usize {
        let mut changed = 0;
        for side in [&mut self.buyer, &mut self.seller] {
            for owner in &mut side.owners {
                if matches!(&owner.party, Party::Person(p) if p.id() == person) {
                    owner.party = Party::Pseudonymised(pseudonym.clone());
                    changed += 1;
                }
            }
            for maker in &mut side.decision_makers {
                if matches!(maker, DecisionMaker::Person(p) if p.id() == person) {
                    *maker = DecisionMaker::Pseudonymised(pseudonym.clone());
                    changed += 1;
                }
            }
        }
        changed
    }

    /// Whether a natural person was replaced by a pseudonym.
    #[must_use]
    pub fn is_pseudonymised(&self) -> bool {
        [&self.buyer, &self.seller].iter().any(|side| {
            side.owners
                .iter()
                .any(|o| matches!(o.party, Party::Pseudonymised(_)))
                || side
                    .decision_makers
                    .iter()
                    .any(|m| matches!(m, DecisionMaker::Pseudonymised(_)))
        })
    }
}
