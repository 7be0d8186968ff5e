//! The `POST /orders` body: JSON shape, field validation with finsec-validate, and the
//! free-text notes.
//!
//! The body is read in two passes so that one response lists every problem:
//!
//! 1. **Syntax.** Text that is not JSON is refused with HTTP 400 and serde_json's message
//!    (what was expected, line and column): there are no fields to report on.
//! 2. **Shape and fields.** Everything else is HTTP 422, a problem (see
//!    [`crate::problem`]) whose `errors` are `{"path","code","message"}`: a body that is not an object (`path` `""`,
//!    code `type`), unknown fields (`unknown_field`), missing required fields (`required`),
//!    fields that are not strings (`type`; numbers are refused because money must not pass
//!    through floating point), then every field through finsec-validate's order validator
//!    ([`OrderRequest::validate_into`]) and the notes through [`TextRules`] and the `notes`
//!    [`HtmlSanitizer`] policy. A field with a shape error is not validated again, so each
//!    field is reported once.
//!
//! Unknown field names are echoed in `path` only when they are at most 64 characters of
//! `[A-Za-z0-9_]`; any other name is reported at path `""`, so the response never
//! reflects arbitrary client text.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use finsec_validate::numbers::{PriceRules, QuantityRules};
use finsec_validate::request::{OrderRequest, OrderRules, Validator};
use finsec_validate::{
    CharPolicy, FieldError, HtmlPolicy, HtmlSanitizer, SafeHtml, TextRules, ValidatedOrder,
    ValidationErrors,
};

/// The longest notes accepted, in characters (after NFKC, before sanitising).
pub const MAX_NOTES_CHARS: usize = 2_000;
/// The price tick: limit prices must be a multiple of it.
pub const PRICE_TICK: Decimal = Decimal::from_parts(1, 0, 0, false, 2);
/// The most decimals a limit price may have (beyond that it is `too_many_decimals`, below
/// it an off-tick price is `tick_size`).
pub const PRICE_MAX_DECIMALS: u32 = 4;
/// The highest limit price accepted.
pub const MAX_PRICE: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
/// The largest quantity accepted (whole units only).
pub const MAX_QUANTITY: Decimal = Decimal::from_parts(100_000_000, 0, 0, false, 0);

/// The fields of an order body, for the OpenAPI document (the server reads the body with
/// the two passes described in the [module docs](self)).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Ticker symbol: upper-case ASCII letters and digits, `.` or `-` between them, at
    /// most 12 characters.
    #[schema(example = "AAPL")]
    pub symbol: String,
    /// `buy` or `sell`.
    #[schema(example = "buy")]
    pub side: String,
    /// `market` or `limit`.
    #[schema(example = "limit")]
    pub order_type: String,
    /// Whole units, as decimal text.
    #[schema(example = "100")]
    pub quantity: String,
    /// Decimal text, a multiple of 0.01; required for limit orders, refused for market
    /// orders.
    #[schema(example = "187.25")]
    pub limit_price: Option<String>,
    /// The trading account: 1 to 64 ASCII letters, digits, `-` or `_`.
    #[schema(example = "ACC-1")]
    pub account_id: String,
    /// Free text, at most 2,000 characters; HTML is sanitised with the `notes` policy
    /// (paragraphs, lists, emphasis, `code`, absolute http/https/mailto links).
    #[schema(example = "<p>Rebalance, see <a href=\"https://example.com/memo\">memo</a></p>")]
    pub notes: Option<String>,
}

/// A body that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOrder {
    /// The order fields, parsed.
    pub order: ValidatedOrder,
    /// The notes, cleaned and sanitised.
    pub notes: Option<SafeHtml>,
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON at all (HTTP 400); the parser's message, with line and column.
    Syntax(String),
    /// Every shape and field error (HTTP 422).
    Invalid(ValidationErrors),
}

/// What the server checks orders against.
#[derive(Debug, Clone)]
pub struct BodyRules {
    order: OrderRules,
    notes: TextRules,
    sanitizer: HtmlSanitizer,
}

impl BodyRules {
    /// The server's rules: the default symbol rules; whole quantities up to
    /// [`MAX_QUANTITY`]; prices on a [`PRICE_TICK`] tick up to [`MAX_PRICE`]; notes of at
    /// most [`MAX_NOTES_CHARS`] characters, line breaks and tabs allowed, invisible
    /// characters stripped, bidi controls refused.
    ///
    /// # Errors
    /// Never in practice (the constants are consistent; a unit test builds them); the
    /// message says which rule was refused.
    pub fn server_default() -> Result<Self, String> {
        let price = PriceRules::new(Some(PRICE_TICK), PRICE_MAX_DECIMALS)
            .and_then(|r| r.with_max(MAX_PRICE))
            .map_err(|e| format!("price rules: {e}"))?;
        let quantity = QuantityRules::new(None, 0)
            .and_then(|r| r.with_max(MAX_QUANTITY))
            .map_err(|e| format!("quantity rules: {e}"))?;
        let notes = TextRules::new(0, MAX_NOTES_CHARS)
            .map_err(|e| format!("notes rules: {e}"))?
            .with_line_breaks(true)
            .with_tab(true)
            .with_invisible(CharPolicy::Strip);
        Ok(Self {
            order: OrderRules {
                price,
                quantity,
                ..OrderRules::default()
            },
            notes,
            sanitizer: HtmlSanitizer::new(HtmlPolicy::Notes),
        })
    }

    /// Parses and checks a request body.
    ///
    /// # Errors
    /// [`BodyError::Syntax`] for text that is not JSON, [`BodyError::Invalid`] with every
    /// other problem.
    pub fn check(&self, body: &[u8]) -> Result<CheckedOrder, BodyError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| BodyError::Syntax(format!("the body is not valid JSON: {e}")))?;
        let mut v = Validator::new();
        let Value::Object(fields) = value else {
            v.error("", "type", "the body must be a JSON object");
            return Err(BodyError::Invalid(finish_errors(v)));
        };
        let shape = Shape::read(&fields, &mut v);
        let before = v.clone().finish(|| Some(())).err().unwrap_or_default();
        let reported = |path: &str| before.errors.iter().any(|e| e.path == path);

        // Field validation; errors on fields that already have a shape error are dropped.
        let mut fv = Validator::new();
        let order = shape.request().validate_into(&mut fv, &self.order);
        let notes = match shape.notes {
            Some(text) if !reported("notes") => self.notes(text, &mut fv),
            _ => None,
        };
        let field_errors = fv.clone().finish(|| Some(())).err().unwrap_or_default();
        for e in field_errors.errors {
            if !reported(&e.path) {
                push(&mut v, e);
            }
        }
        let has_notes = shape.notes.is_some();
        v.finish(|| {
            let order = order?;
            if has_notes && notes.is_none() {
                return None;
            }
            Some(CheckedOrder { order, notes })
        })
        .map_err(BodyError::Invalid)
    }

    fn notes(&self, text: &str, v: &mut Validator) -> Option<SafeHtml> {
        let clean = match self.notes.clean(text) {
            Ok(clean) => clean,
            Err(e) => {
                v.error("notes", e.code(), e.to_string());
                return None;
            }
        };
        match self.sanitizer.sanitize(clean.as_str()) {
            Ok(html) => Some(html),
            Err(e) => {
                v.error("notes", e.code(), e.to_string());
                None
            }
        }
    }
}

fn finish_errors(v: Validator) -> ValidationErrors {
    v.finish(|| None::<()>).err().unwrap_or_default()
}

/// Re-records an error from another validator (codes are `'static` in practice; others
/// keep a generic code).
fn push(v: &mut Validator, e: FieldError) {
    let code: &'static str = match e.code {
        std::borrow::Cow::Borrowed(code) => code,
        std::borrow::Cow::Owned(_) => "invalid",
    };
    v.error(&e.path, code, e.message);
}

/// The string fields of the body, as found; missing or mistyped fields are `None` (and
/// reported).
#[derive(Debug, Default)]
struct Shape<'a> {
    symbol: Option<&'a str>,
    side: Option<&'a str>,
    order_type: Option<&'a str>,
    quantity: Option<&'a str>,
    limit_price: Option<&'a str>,
    account_id: Option<&'a str>,
    notes: Option<&'a str>,
}

/// The fields in the order they are checked and reported: `(name, required)`.
const FIELDS: [(&str, bool); 7] = [
    ("symbol", true),
    ("side", true),
    ("order_type", true),
    ("quantity", true),
    ("limit_price", false),
    ("account_id", true),
    ("notes", false),
];

impl<'a> Shape<'a> {
    /// Records missing, mistyped and unknown fields (in that order, known fields in
    /// [`FIELDS`] order) and keeps the string values.
    fn read(fields: &'a Map<String, Value>, v: &mut Validator) -> Self {
        let mut shape = Self::default();
        for (name, required) in FIELDS {
            let text = match fields.get(name) {
                None => {
                    if required {
                        v.error(name, "required", format!("{name} is required"));
                    }
                    continue;
                }
                Some(Value::Null) if !required => continue,
                Some(Value::String(s)) => s.as_str(),
                Some(other) => {
                    let expected = if required {
                        "must be a JSON string"
                    } else {
                        "must be a JSON string or null"
                    };
                    v.error(name, "type", format!("{expected}, found {}", kind(other)));
                    continue;
                }
            };
            let slot = match name {
                "symbol" => &mut shape.symbol,
                "side" => &mut shape.side,
                "order_type" => &mut shape.order_type,
                "quantity" => &mut shape.quantity,
                "limit_price" => &mut shape.limit_price,
                "account_id" => &mut shape.account_id,
                _ => &mut shape.notes,
            };
            *slot = Some(text);
        }
        for name in fields.keys() {
            if !FIELDS.iter().any(|(known, _)| known == name) {
                let path = if is_plain_name(name) {
                    name.as_str()
                } else {
                    ""
                };
                v.error(path, "unknown_field", "this field is not part of an order");
            }
        }
        shape
    }

    /// The order as finsec-validate reads it; missing fields are empty (their errors are
    /// already recorded and the validator's duplicates are dropped).
    fn request(&self) -> OrderRequest {
        let text = |s: Option<&str>| s.unwrap_or_default().to_owned();
        OrderRequest {
            symbol: text(self.symbol),
            side: text(self.side),
            order_type: text(self.order_type),
            quantity: text(self.quantity),
            limit_price: self.limit_price.map(str::to_owned),
            account_id: text(self.account_id),
        }
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use finsec_validate::OrderKind;

    fn rules() -> BodyRules {
        BodyRules::server_default().unwrap()
    }

    fn errors(body: &str) -> Vec<(String, String)> {
        match rules().check(body.as_bytes()) {
            Err(BodyError::Invalid(errors)) => errors
                .errors
                .into_iter()
                .map(|e| (e.path, e.code.into_owned()))
                .collect(),
            other => panic!("{body}: {other:?}"),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(p, c)| ((*p).to_owned(), (*c).to_owned()))
            .collect()
    }

    #[test]
    fn a_valid_limit_order() {
        let checked = rules()
            .check(
                br#"{"symbol":"AAPL","side":"buy","order_type":"limit","quantity":"100",
                    "limit_price":"187.25","account_id":"ACC-1"}"#,
            )
            .unwrap();
        assert_eq!(checked.order.symbol.as_str(), "AAPL");
        assert_eq!(
            checked.order.kind.limit_price().unwrap().to_string(),
            "187.25"
        );
        assert_eq!(checked.notes, None);
        let market = rules()
            .check(
                br#"{"symbol":"BRK.B","side":"sell","order_type":"market","quantity":"5",
                    "limit_price":null,"account_id":"a_1","notes":null}"#,
            )
            .unwrap();
        assert_eq!(market.order.kind, OrderKind::Market);
    }

    #[test]
    fn every_field_error_at_once() {
        let got = errors(
            r#"{"symbol":"aapl","side":"hold","order_type":"limit","quantity":"-5",
                "limit_price":"10.005","account_id":"ACC 1"}"#,
        );
        assert_eq!(
            got,
            pairs(&[
                ("symbol", "lowercase"),
                ("side", "unknown_side"),
                ("quantity", "not_positive"),
                ("account_id", "invalid_account_id"),
                ("limit_price", "tick_size"),
            ])
        );
    }

    #[test]
    fn shape_errors_are_reported_with_field_errors_once_per_field() {
        let mut got = errors(
            r#"{"symbol":"AAPL","side":1,"order_type":"limit","quantity":100,
                "limit_price":"0","extra":true,"<script>":1}"#,
        );
        // Unknown fields come in the JSON map's order; compare them as a set.
        got[3..5].sort();
        assert_eq!(
            got,
            pairs(&[
                ("side", "type"),
                ("quantity", "type"),
                ("account_id", "required"),
                ("", "unknown_field"),
                ("extra", "unknown_field"),
                ("limit_price", "not_positive"),
            ])
        );
        assert_eq!(errors("[1,2]"), pairs(&[("", "type")]));
        assert_eq!(
            errors("{}"),
            pairs(&[
                ("symbol", "required"),
                ("side", "required"),
                ("order_type", "required"),
                ("quantity", "required"),
                ("account_id", "required"),
            ])
        );
        // A market order with a price.
        assert_eq!(
            errors(
                r#"{"symbol":"AAPL","side":"buy","order_type":"market","quantity":"1",
                    "limit_price":"1.00","account_id":"A"}"#
            ),
            pairs(&[("limit_price", "forbidden")])
        );
    }

    #[test]
    fn syntax_errors_are_not_field_errors() {
        for body in ["", "{", "{\"symbol\": }", "nonsense"] {
            match rules().check(body.as_bytes()) {
                Err(BodyError::Syntax(message)) => {
                    assert!(message.contains("line 1"), "{body}: {message}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn notes_are_sanitised_and_bounded() {
        let body = |notes: &str| {
            serde_json::json!({
                "symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": "1",
                "limit_price": "1.00", "account_id": "A", "notes": notes,
            })
            .to_string()
        };
        let checked = rules()
            .check(
                body("<p onclick=\"steal()\">Hedge<script>alert(1)</script> <img src=x onerror=alert(2)>\nsee <a href=\"javascript:alert(3)\">this</a></p>")
                    .as_bytes(),
            )
            .unwrap();
        let notes = checked.notes.unwrap();
        let html = notes.as_str();
        assert_eq!(
            html,
            "<p>Hedge \nsee <a rel=\"noopener noreferrer\">this</a></p>"
        );
        for bad in ["script", "onclick", "onerror", "javascript", "img"] {
            assert!(!html.contains(bad), "{html}");
        }
        let long = "x".repeat(MAX_NOTES_CHARS + 1);
        assert_eq!(errors(&body(&long)), pairs(&[("notes", "text.too_long")]));
        assert_eq!(
            errors(&body("pay \u{202E}fdp.exe")),
            pairs(&[("notes", "text.bidi_control")])
        );
        // Invisible characters are stripped, not refused.
        let checked = rules().check(body("a\u{200B}b").as_bytes()).unwrap();
        assert_eq!(checked.notes.unwrap().as_str(), "ab");
        // Notes errors come with the other field errors.
        let bad = serde_json::json!({
            "symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": "0",
            "limit_price": "1.00", "account_id": "A", "notes": "nul\u{0}",
        });
        assert_eq!(
            errors(&bad.to_string()),
            pairs(&[("quantity", "not_positive"), ("notes", "text.nul")])
        );
    }

    #[test]
    fn rules_match_the_documented_constants() {
        let r = rules();
        assert_eq!(r.order.price.tick_size(), Some(PRICE_TICK));
        assert_eq!(PRICE_TICK.to_string(), "0.01");
        assert_eq!(MAX_PRICE.to_string(), "1000000");
        assert_eq!(r.order.quantity.max_decimals(), 0);
        assert_eq!(r.notes.max_chars(), MAX_NOTES_CHARS);
    }
}
