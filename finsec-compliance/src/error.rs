//! The crate's error type.

use std::fmt;

/// One problem found in a report by [`TransactionReport::check`](crate::mifid::TransactionReport::check).
///
/// `field` names the RTS 22 Annex I field (`"buyer.decision_maker"`, `"venue"`, ...), `code`
/// is stable for machines, `message` says what is wrong without repeating personal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// The field, as a path into [`TransactionReport`](crate::mifid::TransactionReport).
    pub field: &'static str,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} ({})", self.field, self.message, self.code)
    }
}

/// Every problem a check found, in field order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issues(pub Vec<Issue>);

impl fmt::Display for Issues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for issue in &self.0 {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            write!(f, "{issue}")?;
        }
        Ok(())
    }
}

/// What went wrong.
///
/// Messages name fields, codes and transaction references; they never contain a client's
/// name, birth date or national identifier.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value was refused when it was built (a malformed reference, an empty name, ...).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which field.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The report breaks one or more RTS 22 rules; all of them are listed.
    #[error("the report breaks {n} rule(s): {issues}", n = .0.0.len(), issues = .0)]
    Rejected(Issues),
    /// A national client identifier is required but the person holds none of the kinds
    /// their country accepts, and the country does not accept CONCAT.
    #[error("no national client identifier for {country}: it needs one of {needed}")]
    MissingIdentifier {
        /// The nationality used.
        country: String,
        /// The identifier kinds the country accepts, in priority order.
        needed: String,
    },
    /// The transaction reference is already reported, live, with other content: send a
    /// cancellation, or an amendment, instead of a second new report.
    #[error("transaction {reference} is already reported with other content")]
    Conflict {
        /// The transaction reference.
        reference: String,
    },
    /// A cancellation named a report that does not exist or is already cancelled.
    #[error("transaction {reference} has no live report to cancel")]
    NotLive {
        /// The transaction reference.
        reference: String,
    },
    /// A deletion would remove records still inside the record-keeping period.
    #[error("records are kept for {years} years: nothing after {keep_from} may be deleted")]
    Retained {
        /// The record-keeping period in years.
        years: u8,
        /// The earliest instant whose records must still be kept (RFC 3339).
        keep_from: String,
    },
    /// A value cannot be written in the ISO 20022 format (too many digits, ...).
    #[error("cannot encode {field}: {reason}")]
    Encode {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The XML is not a well-formed auth.016 report.
    #[error("malformed report XML at byte {position}: {reason}")]
    Parse {
        /// Byte offset in the input.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// Writing or reading failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The market data source failed.
    #[error("market data: {0}")]
    MarketData(String),
    /// A stored value could not be read back (corrupt or written by something else).
    #[error("corrupt stored report: {0}")]
    Corrupt(String),
    /// No such record: a request, a legal hold, a retention run.
    #[error("no {what} {id}")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// The operation does not fit the record's state (a closed request, a released hold,
    /// a deadline already extended or passed).
    #[error("{0}")]
    State(String),
    /// A legal hold was to be released by the person who placed it: release needs a second
    /// person.
    #[error("legal hold {id} was placed by the same person: a second person must release it")]
    SamePerson {
        /// The hold.
        id: String,
    },
    /// A personal-data source cannot do what a request needs (a source without
    /// rectification, ...).
    #[error("source {source_name} does not support {operation}")]
    Unsupported {
        /// The source.
        source_name: String,
        /// What it cannot do.
        operation: &'static str,
    },
    /// The subject's key could not be used or shredded.
    #[error("subject key: {0}")]
    Crypto(#[from] finsec_crypto::Error),
    /// An audit event could not be built or recorded.
    #[error("audit: {0}")]
    Audit(String),
    /// The archive refused or failed to keep a batch.
    #[error("archive: {0}")]
    Archive(String),
    /// The store failed; its error is the source.
    #[error("store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl Error {
    /// A [`Store`](Self::Store) error from a store's own failure.
    pub fn store(source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self::Store(source.into())
    }

    pub(crate) fn not_found(what: &'static str, id: impl fmt::Display) -> Self {
        Self::NotFound {
            what,
            id: id.to_string(),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// A stable, machine-readable code for this error.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid",
            Self::Rejected(_) => "rejected",
            Self::MissingIdentifier { .. } => "missing_identifier",
            Self::Conflict { .. } => "conflict",
            Self::NotLive { .. } => "not_live",
            Self::Retained { .. } => "retained",
            Self::Encode { .. } => "encode",
            Self::Parse { .. } => "parse",
            Self::Io(_) => "io",
            Self::MarketData(_) => "market_data",
            Self::Corrupt(_) => "corrupt",
            Self::NotFound { .. } => "not_found",
            Self::State(_) => "state",
            Self::SamePerson { .. } => "same_person",
            Self::Unsupported { .. } => "unsupported",
            Self::Crypto(_) => "crypto",
            Self::Audit(_) => "audit",
            Self::Archive(_) => "archive",
            Self::Store(_) => "store",
        }
    }
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::store(e)
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
