//! ISO 20022 `auth.016.001.01` (FinInstrmRptgTxRpt) files, as ESMA's usage guideline 1.1.0
//! defines them: a head.003 `BizData` envelope holding the head.001 business application
//! header (`AppHdr`) and the `Document` payload, one `Tx` (`New` or `Cxl`) per record.
//!
//! [`XmlReportWriter`] writes a file as a stream; [`XmlReportReader`] reads one back as a
//! stream of [`Report`](super::Report)s. Namespaces are checked on reading: an element of
//! the payload in another namespace is an error, not ignored.

use finsec_validate::identifiers::{Country, Lei};
use time::OffsetDateTime;

use crate::error::{Error, Result};

mod read;
mod write;

pub use read::XmlReportReader;
pub use write::XmlReportWriter;

/// The namespace of the envelope (`BizData`).
pub const HEAD_003: &str = "urn:iso:std:iso:20022:tech:xsd:head.003.001.01";
/// The namespace of the business application header (`AppHdr`).
pub const HEAD_001: &str = "urn:iso:std:iso:20022:tech:xsd:head.001.001.01";
/// The namespace of the payload (`Document`).
pub const AUTH_016: &str = "urn:iso:std:iso:20022:tech:xsd:auth.016.001.01";

/// The business application header of a report file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppHeader {
    /// The sender: the submitting entity's LEI.
    pub from: Lei,
    /// The receiving competent authority, by country.
    pub to: Country,
    /// The file's identifier, unique per sender (1 to 35 characters).
    pub message_id: String,
    /// When the file was created (written in whole seconds, UTC).
    pub created: OffsetDateTime,
}

impl AppHeader {
    /// A header; `message_id` is 1 to 35 printable ASCII characters.
    ///
    /// # Errors
    ///
    /// [`Error::Invalid`] for another message id.
    pub fn new(
        from: Lei,
        to: Country,
        message_id: impl Into<String>,
        created: OffsetDateTime,
    ) -> Result<Self> {
        let message_id = message_id.into();
        if message_id.is_empty()
            || message_id.len() > 35
            || !message_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid(
                "message_id",
                "1 to 35 printable ASCII characters",
            ));
        }
        Ok(Self {
            from,
            to,
            message_id,
            created,
        })
    }
}
