//! [`Error`]: every error of this crate in one type, for callers that handle them together.
//!
//! Each module returns its own precise error ([`IdentifierError`], [`NumberError`],
//! [`RequestError`], [`TextError`], [`HtmlError`], [`PathError`]); `?` converts any of them
//! into [`Error`], which keeps the stable machine-readable [`code`](Error::code).

use crate::html::HtmlError;
use crate::identifiers::IdentifierError;
use crate::numbers::NumberError;
use crate::path::PathError;
use crate::request::RequestError;
use crate::text::TextError;

/// Any error of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An identifier (symbol, ISIN, LEI, MIC, currency, CFI) was refused.
    #[error(transparent)]
    Identifier(#[from] IdentifierError),
    /// A price, quantity or their rules were refused.
    #[error(transparent)]
    Number(#[from] NumberError),
    /// A request field (side, order type, account) was refused.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// Text was refused by its rules.
    #[error(transparent)]
    Text(#[from] TextError),
    /// HTML could not be sanitised.
    #[error(transparent)]
    Html(#[from] HtmlError),
    /// A path was refused.
    #[error(transparent)]
    Path(#[from] PathError),
}

impl Error {
    /// The stable machine-readable code of the underlying error (for API responses and
    /// audit records).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Identifier(e) => e.code(),
            Self::Number(e) => e.code(),
            Self::Request(e) => e.code(),
            Self::Text(e) => e.code(),
            Self::Html(e) => e.code(),
            Self::Path(e) => e.code(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Isin;

    fn parse(s: &str) -> Result<Isin, Error> {
        Ok(s.parse::<Isin>()?)
    }

    #[test]
    fn module_errors_convert_and_keep_their_code() {
        let err = parse("US0378331006").unwrap_err();
        assert!(matches!(err, Error::Identifier(_)));
        assert_eq!(err.code(), "check_digit");
        let path: Error = crate::SafePath::join("/srv", "../x").unwrap_err().into();
        assert!(matches!(path, Error::Path(_)));
        assert!(!path.code().is_empty());
    }
}
