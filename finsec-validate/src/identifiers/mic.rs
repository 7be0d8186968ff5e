//! MIC, ISO 10383: four upper-case letters or digits, optionally checked against a list.

use std::collections::HashMap;
use std::str::FromStr;

use super::{IdKind, IdentifierError, Normalization, ascii_str, fixed_alnum, text_impls};

/// A Market Identifier Code (ISO 10383).
///
/// `FromStr` checks the shape only (four `A-Z`/`0-9`). Whether the code exists is a
/// reference-data question: build a [`MicList`] from the ISO 10383 publication and use
/// [`Mic::parse_listed`] or [`MicList::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mic([u8; Mic::LEN]);

impl Mic {
    /// Length of a MIC.
    pub const LEN: usize = 4;

    /// Parses the shape with explicit normalisation.
    ///
    /// # Errors
    ///
    /// [`IdentifierError`] for a malformed code.
    pub fn parse_with(input: &str, norm: Normalization) -> Result<Self, IdentifierError> {
        fixed_alnum(input, IdKind::Mic, norm).map(Self)
    }

    /// Parses after trimming surrounding ASCII whitespace and upper-casing ASCII letters.
    ///
    /// # Errors
    ///
    /// As [`Mic::parse_with`].
    pub fn parse_lenient(input: &str) -> Result<Self, IdentifierError> {
        Self::parse_with(input, Normalization::Lenient)
    }

    /// Strict parse, then [`MicList::check`]: the MIC must be listed and not expired.
    ///
    /// # Errors
    ///
    /// [`IdentifierError`] for a malformed, unknown or expired code.
    pub fn parse_listed(input: &str, list: &MicList) -> Result<Self, IdentifierError> {
        list.check(input.parse()?)
    }

    /// The MIC as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        ascii_str(&self.0)
    }
}

impl FromStr for Mic {
    type Err = IdentifierError;

    /// Strict shape parse.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_with(s, Normalization::Strict)
    }
}

text_impls!(Mic);

/// The status of a MIC in the ISO 10383 list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MicStatus {
    /// `ACTIVE`.
    Active,
    /// `UPDATED`: active, with a recent change to its record.
    Updated,
    /// `EXPIRED`: no longer in use; valid only for historical records.
    Expired,
}

impl MicStatus {
    /// Whether a MIC with this status may be used for new data.
    #[must_use]
    pub fn is_current(self) -> bool {
        matches!(self, Self::Active | Self::Updated)
    }
}

impl FromStr for MicStatus {
    type Err = IdentifierError;

    /// Parses the `STATUS` column of the ISO 10383 list: `ACTIVE`, `UPDATED`, `EXPIRED`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ACTIVE" => Ok(Self::Active),
            "UPDATED" => Ok(Self::Updated),
            "EXPIRED" => Ok(Self::Expired),
            _ => Err(IdentifierError::Format {
                kind: IdKind::Mic,
                reason: "MIC status must be ACTIVE, UPDATED or EXPIRED",
            }),
        }
    }
}

/// A set of MICs with their status, built by the caller from the ISO 10383 publication (or a
/// venue's own list).
///
/// ```
/// use finsec_validate::identifiers::{Mic, MicList, MicStatus};
///
/// let list = MicList::from_rows([
///     ("XNYS".parse()?, MicStatus::Active),
///     ("XLIF".parse()?, MicStatus::Expired),
/// ]);
/// assert!(Mic::parse_listed("XNYS", &list).is_ok());
/// assert!(Mic::parse_listed("XLIF", &list).is_err());
/// assert!(list.check_historical("XLIF".parse()?).is_ok());
/// # Ok::<(), finsec_validate::identifiers::IdentifierError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MicList {
    entries: HashMap<Mic, MicStatus>,
}

impl MicList {
    /// An empty list.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A list from `(mic, status)` rows; a later row for the same MIC replaces an earlier one.
    pub fn from_rows<I: IntoIterator<Item = (Mic, MicStatus)>>(rows: I) -> Self {
        Self {
            entries: rows.into_iter().collect(),
        }
    }

    /// Adds or replaces one MIC.
    pub fn insert(&mut self, mic: Mic, status: MicStatus) {
        self.entries.insert(mic, status);
    }

    /// Number of MICs in the list.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The status of `mic`, if listed.
    #[must_use]
    pub fn status(&self, mic: Mic) -> Option<MicStatus> {
        self.entries.get(&mic).copied()
    }

    /// Accepts `mic` only if it is listed and current (active or updated).
    ///
    /// # Errors
    ///
    /// [`IdentifierError::UnknownMic`] or [`IdentifierError::ExpiredMic`].
    pub fn check(&self, mic: Mic) -> Result<Mic, IdentifierError> {
        match self.status(mic) {
            Some(status) if status.is_current() => Ok(mic),
            Some(_) => Err(IdentifierError::ExpiredMic {
                mic: mic.as_str().to_owned(),
            }),
            None => Err(IdentifierError::UnknownMic {
                mic: mic.as_str().to_owned(),
            }),
        }
    }

    /// Accepts `mic` if it is listed with any status, expired included (historical records).
    ///
    /// # Errors
    ///
    /// [`IdentifierError::UnknownMic`].
    pub fn check_historical(&self, mic: Mic) -> Result<Mic, IdentifierError> {
        match self.status(mic) {
            Some(_) => Ok(mic),
            None => Err(IdentifierError::UnknownMic {
                mic: mic.as_str().to_owned(),
            }),
        }
    }
}
