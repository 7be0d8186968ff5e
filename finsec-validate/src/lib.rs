//! Input validation for financial data: parsed identifiers and numbers, composite request
//! validation, text rules, HTML sanitising, safe paths and SQL injection detection.
//!
//! Parse, don't validate: every check returns a typed value ([`Isin`], [`Price`],
//! [`CleanText`], [`SafeHtml`], [`SafePath`], ...) that can only exist if the input passed,
//! so code that holds one never has to check again. Money and quantities are
//! [`rust_decimal::Decimal`], never floats. Errors carry the position and a stable
//! machine-readable code; no parser panics on any input.
//!
//! ```
//! use finsec_validate::{HtmlPolicy, Isin, OrderRequest, SafePath, looks_like_sql_injection};
//!
//! let isin: Isin = "US0378331005".parse().unwrap();
//! assert_eq!(isin.to_string(), "US0378331005");
//! assert!("US0378331006".parse::<Isin>().is_err()); // wrong check digit
//!
//! // Every field error of a request at once, with paths and codes (an HTTP 422 body).
//! let order: OrderRequest = serde_json::from_str(
//!     r#"{"symbol":"aapl","side":"buy","order_type":"limit","quantity":"0","account_id":"ACC-1"}"#,
//! ).unwrap();
//! let errors = order.validate(&Default::default()).unwrap_err();
//! assert!(errors.iter().any(|e| e.path == "symbol"));
//! assert!(errors.iter().any(|e| e.path == "quantity"));
//! assert!(errors.iter().any(|e| e.path == "limit_price"));
//!
//! // Sanitised HTML, safe paths, injection detection.
//! let note = finsec_validate::html::sanitize(HtmlPolicy::Notes, "<p onclick=x()>hi<script>1</script></p>").unwrap();
//! assert_eq!(note.as_str(), "<p>hi</p>");
//! assert!(SafePath::join("/srv/reports", "../../etc/passwd").is_err());
//! assert!(looks_like_sql_injection("1' OR '1'='1"));
//! assert!(!looks_like_sql_injection("Buy 100 AAPL @ 187.50, O'Brien's account"));
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`identifiers`] | [`Symbol`] (per-venue rules), [`Isin`] (ISO 6166), [`Lei`] (ISO 17442), [`Mic`] (ISO 10383, optional [`MicList`]), [`Currency`] (ISO 4217 active list, compiled in), [`Cfi`] (ISO 10962) |
//! | [`numbers`] | [`Price`] and [`Quantity`] with bounds, tick and lot size, maximum decimals |
//! | [`request`] | [`Validator`], [`FieldError`], [`ValidationErrors`], and [`OrderRequest`] → [`ValidatedOrder`] |
//! | [`text`] | [`TextRules`] → [`CleanText`]: length in characters, control and NUL refused, NFKC, bidi and invisible characters refused or stripped, trimming |
//! | [`html`] | [`HtmlSanitizer`] with the `basic` and `notes` policies (ammonia) → [`SafeHtml`] |
//! | [`path`] | [`SafePath`]: a user path joined under a base directory, traversal in every encoding refused, symlink escapes caught by [`SafePath::resolve`] |
//! | [`injection`] | [`SqlInjectionDetector`]: a SQL tokenizer that judges input by its token structure |
//!
//! Each module has its own error type with a `code()`; [`Error`] gathers them for callers
//! who handle them together. Each module documents its policy choices.
//!
//! # Threat model
//!
//! What it defends against:
//!
//! - **Malformed or hostile identifiers and numbers** reaching storage, logs, SQL or FIX
//!   messages: parsed values hold only their documented character sets, check digits are
//!   verified, decimals are bounded and never rounded silently.
//! - **Stored XSS through free text**: HTML is rebuilt by ammonia under an allow-list; the
//!   tests parse every output with an HTML5 parser and find no script element, event handler,
//!   `style` attribute or `javascript:`/`data:` URL, for every XSS corpus line and random input.
//! - **Path traversal**: absolute paths, `..` (also percent-, double- and overlong-encoded),
//!   backslashes, drive letters, UNC prefixes and NUL are refused before any file is touched;
//!   symlinks that leave the base are caught on resolution.
//! - **Spoofed text**: bidi overrides and invisible characters are refused or stripped, and
//!   text is NFKC-normalised, so two strings that look the same compare the same.
//!
//! What it does not defend against:
//!
//! - **SQL injection itself.** The detector is defence in depth for logging and alerting, with
//!   measured misses and false alarms; only parameterised queries prevent injection.
//! - **Existence.** A valid check digit catches typos, not forgeries: reference data (GLEIF,
//!   an ISIN feed, the MIC list) says whether an identifier exists.
//! - **Business limits.** Bounds, ticks and lots are what the caller configures; risk limits
//!   and fat-finger checks belong to the trading system.
#![forbid(unsafe_code)]

pub mod error;

pub mod identifiers;
pub mod numbers;
pub mod request;

pub use identifiers::{
    CasePolicy, Cfi, Currency, CurrencyKind, IdentifierError, Isin, IsinPrefixPolicy, Lei, Mic,
    MicList, MicStatus, Normalization, Symbol, SymbolRules,
};
pub use numbers::{NumberError, Price, PriceRules, Quantity, QuantityRules};
pub use request::{
    AccountId, FieldError, OrderKind, OrderRequest, OrderRules, OrderType, RequestError, Side,
    ValidatedOrder, ValidationErrors, Validator,
};
pub mod html;
pub mod path;
pub mod text;

pub use html::{HtmlError, HtmlPolicy, HtmlSanitizer, SafeHtml};
pub use path::{PathError, ResolvedPath, SafePath, SafeRelativePath};
pub use text::{CharPolicy, CleanText, TextError, TextRules, Trim};
pub mod injection;

pub use error::Error;
pub use injection::{SqlInjectionDetector, looks_like_sql_injection};
