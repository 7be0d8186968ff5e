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

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};

use finsec_validate::SymbolRules;
use finsec_validate::numbers::{MAX_DECIMAL_TEXT_LEN, PriceRules, QuantityRules};
use finsec_validate::request::{AccountId, OrderRequest, OrderRules, Validator};
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
///
/// Its schema ([`NewOrder::order_schema`]) is written by hand from the rules the server
/// checks, because the derive cannot say that `limit_price` is required for limit orders
/// and refused for market orders: it is a `oneOf` of a market order and a limit order, each
/// closed to unknown fields, and every field carries the pattern and bounds finsec-validate
/// applies. A unit test runs sample values through both the patterns and
/// [`BodyRules::check`] and requires them to agree.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Ticker symbol: upper-case ASCII letters and digits, `.` or `-` between them, at
    /// most 12 characters.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `market` or `limit`.
    pub order_type: String,
    /// Whole units, as decimal text.
    pub quantity: String,
    /// Decimal text, a multiple of 0.01; required for limit orders, refused for market
    /// orders.
    pub limit_price: Option<String>,
    /// The trading account: 1 to 64 ASCII letters, digits, `-` or `_`.
    pub account_id: String,
    /// Free text, at most 2,000 characters; HTML is sanitised with the `notes` policy
    /// (paragraphs, lists, emphasis, `code`, absolute http/https/mailto links).
    pub notes: Option<String>,
}

/// The `pattern` of a symbol under the default [`SymbolRules`]: upper-case ASCII letters
/// and digits, single `.` or `-` separators between them.
pub const SYMBOL_PATTERN: &str = r"^[A-Z0-9]+([.-][A-Z0-9]+)*$";
/// The `pattern` of an account id ([`AccountId`]).
pub const ACCOUNT_ID_PATTERN: &str = r"^[A-Za-z0-9_-]*$";
/// The `pattern` of a quantity: a whole number from 1 to [`MAX_QUANTITY`] as decimal text
/// (leading zeros and a fraction of zeros, as finsec-validate reads them, are allowed).
///
/// Trailing zeros are limited so that every digit fits the 28 significant digits of
/// `rust_decimal` whatever the integer part; the server reads a few longer spellings of
/// the same numbers too (the schema is stricter there, never looser).
pub const QUANTITY_PATTERN: &str = r"^0*([1-9][0-9]{0,7}|100000000)(\.0{1,19})?$";
/// The `pattern` of a limit price: above zero, at most [`MAX_PRICE`], a multiple of
/// [`PRICE_TICK`] (two decimals; more only as trailing zeros, limited as for
/// [`QUANTITY_PATTERN`]).
pub const PRICE_PATTERN: &str = r"^0*([1-9][0-9]{0,5}(\.[0-9]{1,2}0{0,19})?|0\.(0[1-9]|[1-9][0-9]?)0{0,19}|1000000(\.0{1,21})?)$";
/// The `pattern` of notes: no NUL or other control character except tab, line feed and
/// carriage return, and no bidi control (finsec-validate's [`TextRules`] as the server
/// configures it).
pub const NOTES_PATTERN: &str =
    r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]*$";

impl NewOrder {
    fn text(min: usize, max: usize, pattern: &str, description: &str) -> ObjectBuilder {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(min))
            .max_length(Some(max))
            .pattern(Some(pattern))
            .description(Some(description))
    }

    /// One branch of the schema: an order of `order_type`, with `limit_price` as given.
    fn branch(order_type: &str, limit_price: Schema, price_required: bool) -> Schema {
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property(
                "symbol",
                Self::text(
                    1,
                    SymbolRules::DEFAULT_MAX_LEN,
                    SYMBOL_PATTERN,
                    "Ticker symbol: upper-case ASCII letters and digits, `.` or `-` between them",
                )
                .examples(["AAPL"]),
            )
            .property(
                "side",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["buy", "sell"]))
                    .description(Some("`buy` or `sell`")),
            )
            .property(
                "order_type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([order_type]))
                    .description(Some("`market` or `limit`")),
            )
            .property(
                "quantity",
                Self::text(
                    1,
                    MAX_DECIMAL_TEXT_LEN,
                    QUANTITY_PATTERN,
                    "Whole units from 1 to 100000000, as decimal text",
                )
                .examples(["100"]),
            )
            .property("limit_price", limit_price)
            .property(
                "account_id",
                Self::text(
                    1,
                    AccountId::MAX_LEN,
                    ACCOUNT_ID_PATTERN,
                    "The trading account: ASCII letters, digits, `-` or `_`",
                )
                .examples(["ACC-1"]),
            )
            .property(
                "notes",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .max_length(Some(MAX_NOTES_CHARS))
                    .pattern(Some(NOTES_PATTERN))
                    .description(Some(
                        "Free text, at most 2,000 characters; HTML is sanitised with the \
                         `notes` policy (paragraphs, lists, emphasis, `code`, absolute \
                         http/https/mailto links)",
                    ))
                    .examples([
                        "<p>Rebalance, see <a href=\"https://example.com/memo\">memo</a></p>",
                    ]),
            )
            .required("symbol")
            .required("side")
            .required("order_type")
            .required("quantity")
            .required("account_id")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        if price_required {
            object = object.required("limit_price");
        }
        Schema::Object(object.build())
    }

    /// The schema: a market order (no `limit_price`, or `null`) or a limit order (a
    /// `limit_price` on the tick).
    pub fn order_schema() -> Schema {
        let market = Self::branch(
            "market",
            Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::Null)
                    .description(Some("Market orders have no limit price"))
                    .build(),
            ),
            false,
        );
        let limit = Self::branch(
            "limit",
            Schema::Object(
                Self::text(
                    1,
                    MAX_DECIMAL_TEXT_LEN,
                    PRICE_PATTERN,
                    "Decimal text above 0 and at most 1000000, a multiple of 0.01",
                )
                .examples(["187.25"])
                .build(),
            ),
            true,
        );
        Schema::OneOf(
            OneOfBuilder::new()
                .item(market)
                .item(limit)
                .description(Some(
                    "An order: a market order, or a limit order with its price",
                ))
                .build(),
        )
    }
}

impl PartialSchema for NewOrder {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Self::order_schema())
    }
}

impl ToSchema for NewOrder {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("NewOrder")
    }
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
        Cow::Borrowed(code) => code,
        Cow::Owned(_) => "invalid",
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

    /// Whether `value` satisfies a string schema's pattern and length bounds.
    fn schema_accepts(pattern: &str, min: usize, max: usize, value: &str) -> bool {
        let chars = value.chars().count();
        regex::Regex::new(pattern).unwrap().is_match(value) && (min..=max).contains(&chars)
    }

    /// Every sample of one field gets the same answer from its pattern as from the server.
    fn agree(field: &str, pattern: &str, min: usize, max: usize, samples: &[String]) {
        let mut checked = 0;
        for sample in samples {
            let mut body = serde_json::json!({
                "symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": "1",
                "limit_price": "1.00", "account_id": "A",
            });
            body[field] = Value::String(sample.clone());
            let server = rules().check(body.to_string().as_bytes()).is_ok();
            let schema = schema_accepts(pattern, min, max, sample);
            assert_eq!(
                schema, server,
                "{field} = {sample:?}: schema {schema}, server {server}"
            );
            checked += 1;
        }
        assert!(checked >= 10, "{field}: only {checked} samples");
    }

    fn owned(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn schema_patterns_agree_with_the_validators() {
        let zeros = |n: usize| "0".repeat(n);
        let mut quantities = owned(&[
            "1",
            "100",
            "0",
            "00",
            "-1",
            "+1",
            "1.",
            ".5",
            "1.0",
            "1.5",
            "0001",
            "1e3",
            " 1",
            "1 ",
            "99999999",
            "100000000",
            "100000001",
            "100000000.0",
            "100000000.1",
            "1000000000",
            "0.0",
            "12,000",
            "٣",
            "0x10",
            "1.00000",
        ]);
        quantities.push(format!("100000000.{}", zeros(19)));
        quantities.push(format!("1.{}", zeros(29)));
        quantities.push(format!("100000000.{}", zeros(21)));
        quantities.push(format!("{}7", zeros(63)));
        quantities.push(format!("{}7", zeros(64)));
        agree(
            "quantity",
            QUANTITY_PATTERN,
            1,
            MAX_DECIMAL_TEXT_LEN,
            &quantities,
        );

        let mut prices = owned(&[
            "1",
            "1.00",
            "187.25",
            "187.255",
            "187.250",
            "187.2500",
            "0",
            "0.00",
            "0.01",
            "0.001",
            "0.010",
            "0.1",
            "0.5",
            "0.50",
            "0.05",
            "0.10",
            ".5",
            "1.",
            "-1.00",
            "+1",
            "999999.99",
            "999999.999",
            "1000000",
            "1000000.00",
            "1000000.01",
            "1000001",
            "01.00",
            "00.5",
            "1e2",
            " 1",
            "10.1",
        ]);
        prices.push(format!("1.{}", zeros(21)));
        prices.push(format!("1.{}", zeros(29)));
        prices.push(format!("1.25{}", zeros(19)));
        prices.push(format!("0.01{}", zeros(19)));
        prices.push(format!("999999.99{}", zeros(19)));
        prices.push(format!("999999.99{}", zeros(26)));
        prices.push(format!("1000000.{}", zeros(21)));
        prices.push(format!("{}5", zeros(63)));
        agree(
            "limit_price",
            PRICE_PATTERN,
            1,
            MAX_DECIMAL_TEXT_LEN,
            &prices,
        );

        // Where the schema is stricter: the same numbers with more trailing zeros than the
        // patterns allow, which the server still reads. Never the other way round.
        for (field, pattern, value) in [
            ("quantity", QUANTITY_PATTERN, format!("1.{}", zeros(28))),
            ("limit_price", PRICE_PATTERN, format!("1.25{}", zeros(26))),
        ] {
            let mut body = serde_json::json!({
                "symbol": "AAPL", "side": "buy", "order_type": "limit", "quantity": "1",
                "limit_price": "1.00", "account_id": "A",
            });
            body[field] = Value::String(value.clone());
            assert!(
                rules().check(body.to_string().as_bytes()).is_ok(),
                "{value}"
            );
            assert!(
                !schema_accepts(pattern, 1, MAX_DECIMAL_TEXT_LEN, &value),
                "{value}"
            );
        }

        let symbols = owned(&[
            "AAPL",
            "BRK.B",
            "BRK-B",
            "A",
            "aapl",
            "AAPL ",
            ".A",
            "A.",
            "A..B",
            "A.-B",
            "",
            "ABCDEFGHIJKL",
            "ABCDEFGHIJKLM",
            "A1",
            "Ä",
            "A_B",
            "A B",
        ]);
        agree(
            "symbol",
            SYMBOL_PATTERN,
            1,
            SymbolRules::DEFAULT_MAX_LEN,
            &symbols,
        );

        let mut accounts = owned(&[
            "ACC-1", "a_1", "", "a b", "é", "a.b", "A", "-", "_x_", " A", "A\t", "a/b",
        ]);
        accounts.push("a".repeat(64));
        accounts.push("a".repeat(65));
        accounts.push("a\n".to_owned());
        agree(
            "account_id",
            ACCOUNT_ID_PATTERN,
            1,
            AccountId::MAX_LEN,
            &accounts,
        );

        let mut notes = owned(&[
            "plain",
            "",
            "tab\there",
            "line\nbreak",
            "cr\r\n",
            "nul\u{0}",
            "bell\u{7}",
            "del\u{7F}",
            "c1\u{85}",
            "rlo\u{202E}",
            "lrm\u{200E}",
            "alm\u{61C}",
            "isolate\u{2066}",
            "sep\u{2028}",
            "<b>bold</b>",
            "O'Brien -- ok",
        ]);
        notes.push("x".repeat(MAX_NOTES_CHARS));
        notes.push("x".repeat(MAX_NOTES_CHARS + 1));
        agree("notes", NOTES_PATTERN, 0, MAX_NOTES_CHARS, &notes);
    }

    #[test]
    fn the_schema_is_a_closed_market_or_limit_order() {
        let json = serde_json::to_value(NewOrder::order_schema()).unwrap();
        let branches = json["oneOf"].as_array().unwrap();
        assert_eq!(branches.len(), 2);
        for (branch, order_type, price_required) in [
            (&branches[0], "market", false),
            (&branches[1], "limit", true),
        ] {
            assert_eq!(branch["additionalProperties"], false, "{branch}");
            assert_eq!(branch["properties"]["order_type"]["enum"][0], order_type);
            let required: Vec<&str> = branch["required"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(
                required.contains(&"limit_price"),
                price_required,
                "{required:?}"
            );
            assert_eq!(
                branch["properties"]["quantity"]["maxLength"],
                MAX_DECIMAL_TEXT_LEN
            );
            assert_eq!(branch["properties"]["notes"]["maxLength"], MAX_NOTES_CHARS);
        }
        assert_eq!(branches[0]["properties"]["limit_price"]["type"], "null");
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
