//! Composite validation: the order request reports every field error at once with stable
//! codes and paths; the builder nests, indexes, caps and fails closed.
#![cfg(test)]

use finsec_validate::identifiers::{Isin, Symbol, SymbolRules};
use finsec_validate::numbers::{PriceRules, QuantityRules};
use finsec_validate::request::{
    FieldError, OrderKind, OrderRequest, OrderRules, OrderType, Side, ValidationErrors, Validator,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn order(order_type: &str, limit_price: Option<&str>) -> OrderRequest {
    OrderRequest {
        symbol: "BRK.B".into(),
        side: "buy".into(),
        order_type: order_type.into(),
        quantity: "100".into(),
        limit_price: limit_price.map(Into::into),
        account_id: "ACC-001".into(),
    }
}

fn codes(errors: &ValidationErrors) -> Vec<(&str, &str)> {
    errors
        .iter()
        .map(|e| (e.path.as_str(), e.code.as_ref()))
        .collect()
}

#[test]
fn valid_limit_and_market_orders() {
    let rules = OrderRules::default();
    let limit = order("limit", Some("412.50")).validate(&rules).unwrap();
    assert_eq!(limit.symbol.as_str(), "BRK.B");
    assert_eq!(limit.side, Side::Buy);
    assert_eq!(limit.kind.order_type(), OrderType::Limit);
    assert_eq!(
        limit.kind.limit_price().map(|p| p.value()),
        Some(Decimal::new(41250, 2))
    );
    assert_eq!(limit.quantity.value(), Decimal::from(100));
    assert_eq!(limit.account_id.as_str(), "ACC-001");

    let market = order("market", None).validate(&rules).unwrap();
    assert_eq!(market.kind, OrderKind::Market);
    assert_eq!(market.kind.limit_price(), None);
}

#[test]
fn every_field_error_is_reported_at_once() {
    let req = OrderRequest {
        symbol: "brk.b".into(),
        side: "BUY".into(),
        order_type: "limit".into(),
        quantity: "-5".into(),
        limit_price: Some("1e3".into()),
        account_id: "acc 001".into(),
    };
    let errors = req.validate(&OrderRules::default()).unwrap_err();
    assert_eq!(
        codes(&errors),
        [
            ("symbol", "lowercase"),
            ("side", "unknown_side"),
            ("quantity", "not_positive"),
            ("account_id", "invalid_account_id"),
            ("limit_price", "syntax"),
        ]
    );
    assert_eq!(errors.len(), 5);
    assert_eq!(errors.at("side").count(), 1);
}

#[test]
fn limit_price_required_for_limit_forbidden_for_market() {
    let rules = OrderRules::default();
    let missing = order("limit", None).validate(&rules).unwrap_err();
    assert_eq!(codes(&missing), [("limit_price", "required")]);
    let extra = order("market", Some("10")).validate(&rules).unwrap_err();
    assert_eq!(codes(&extra), [("limit_price", "forbidden")]);
    let unknown = order("stop", Some("abc")).validate(&rules).unwrap_err();
    assert_eq!(
        codes(&unknown),
        [
            ("order_type", "unknown_order_type"),
            ("limit_price", "syntax")
        ]
    );
}

#[test]
fn venue_rules_apply() {
    let rules = OrderRules {
        symbol: SymbolRules::new(4, "").unwrap(),
        quantity: QuantityRules::new(Some(Decimal::from(100)), 0).unwrap(),
        price: PriceRules::new(Some(Decimal::new(5, 2)), 2).unwrap(),
    };
    let mut req = order("limit", Some("10.01"));
    req.symbol = "AAPL".into();
    req.quantity = "150".into();
    let errors = req.validate(&rules).unwrap_err();
    assert_eq!(
        codes(&errors),
        [("quantity", "lot_size"), ("limit_price", "tick_size")]
    );
    req.symbol = "BRK.B".into();
    let errors = req.validate(&rules).unwrap_err();
    assert_eq!(
        errors.iter().next().map(|e| e.code.as_ref()),
        Some("too_long")
    );
}

#[test]
fn json_body_and_422_shape() {
    let body = r#"{"symbol":"AAPL","side":"sell","order_type":"market","quantity":"10","account_id":"A1"}"#;
    let req: OrderRequest = serde_json::from_str(body).unwrap();
    let validated = req.validate(&OrderRules::default()).unwrap();
    let json = serde_json::to_value(&validated).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "symbol": "AAPL", "side": "sell", "order_type": "market",
            "quantity": "10", "account_id": "A1"
        })
    );
    let limit = order_json(r#""order_type":"limit","limit_price":"99.5""#);
    assert_eq!(limit["order_type"], "limit");
    assert_eq!(limit["limit_price"], "99.5");

    // Unknown fields are a shape error, refused by serde.
    let extra = r#"{"symbol":"AAPL","side":"sell","order_type":"market","quantity":"10","account_id":"A1","admin":true}"#;
    assert!(serde_json::from_str::<OrderRequest>(extra).is_err());

    let mut bad = order("market", None);
    bad.symbol = String::new();
    let errors = bad.validate(&OrderRules::default()).unwrap_err();
    let body = serde_json::to_value(&errors).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"errors": [
            {"path": "symbol", "code": "empty", "message": "symbol is empty"}
        ]})
    );
    let back: ValidationErrors = serde_json::from_value(body).unwrap();
    assert_eq!(back, errors);
    assert_eq!(
        errors.to_string(),
        "1 field error(s): symbol: symbol is empty (empty)"
    );
}

fn order_json(fields: &str) -> serde_json::Value {
    let body =
        format!(r#"{{"symbol":"AAPL","side":"buy","quantity":"10","account_id":"A1",{fields}}}"#);
    let req: OrderRequest = serde_json::from_str(&body).unwrap();
    serde_json::to_value(req.validate(&OrderRules::default()).unwrap()).unwrap()
}

#[test]
fn messages_do_not_echo_input() {
    let mut req = order("limit", Some("<script>alert(1)</script>"));
    req.symbol = "<img src=x onerror=alert(1)>".into();
    req.account_id = "'; DROP TABLE accounts; --".into();
    let errors = req.validate(&OrderRules::default()).unwrap_err();
    assert_eq!(errors.len(), 3);
    for e in &errors {
        assert!(
            !e.message.contains('<') && !e.message.contains("DROP"),
            "{e}"
        );
    }
}

/// An application's own validator, built with the same builder.
struct Basket {
    name: String,
    items: Vec<(String, String)>,
}

#[derive(Debug)]
struct ValidBasket {
    _name: String,
    items: Vec<(Symbol, Isin)>,
}

fn validate_basket(b: &Basket) -> Result<ValidBasket, ValidationErrors> {
    let mut v = Validator::new();
    if b.name.is_empty() {
        v.error("name", "required", "name is required");
    }
    let items: Vec<_> = v.nested("items", |v| {
        b.items
            .iter()
            .enumerate()
            .map(|(i, (symbol, isin))| {
                v.item(i, |v| {
                    let symbol = v.field("symbol", symbol.parse::<Symbol>());
                    let isin = v.field("isin", isin.parse::<Isin>());
                    Some((symbol?, isin?))
                })
            })
            .collect()
    });
    v.finish(|| {
        Some(ValidBasket {
            _name: b.name.clone(),
            items: items.into_iter().collect::<Option<_>>()?,
        })
    })
}

#[test]
fn builder_nests_paths() {
    let basket = Basket {
        name: String::new(),
        items: vec![
            ("AAPL".into(), "US0378331005".into()),
            ("msft".into(), "US5949181045".into()),
            ("IBM".into(), "US4592001015".into()),
        ],
    };
    let errors = validate_basket(&basket).unwrap_err();
    assert_eq!(
        codes(&errors),
        [
            ("name", "required"),
            ("items[1].symbol", "lowercase"),
            ("items[2].isin", "check_digit"),
        ]
    );
    let ok = Basket {
        name: "tech".into(),
        items: vec![("AAPL".into(), "US0378331005".into())],
    };
    assert_eq!(validate_basket(&ok).unwrap().items.len(), 1);
}

#[test]
fn builder_caps_errors_and_fails_closed() {
    let mut v = Validator::with_max_errors(3);
    for i in 0..1000 {
        v.item(i, |v| v.error("", "bad", "bad item"));
    }
    assert!(v.has_errors());
    let errors = v.finish(|| Some(())).unwrap_err();
    assert_eq!(errors.len(), 4);
    assert_eq!(errors.errors[2].path, "[2]");
    assert_eq!(
        errors.errors[3],
        FieldError {
            path: String::new(),
            code: "too_many_errors".into(),
            message: "more than 3 errors; the rest were not reported".into(),
        }
    );

    // A validator that forgot to record an error still does not produce a value.
    let v = Validator::new();
    let errors = v.finish(|| None::<()>).unwrap_err();
    assert_eq!(codes(&errors), [("", "incomplete")]);
}

#[test]
fn side_and_type_parse_strictly() {
    assert_eq!("buy".parse::<Side>().unwrap(), Side::Buy);
    assert_eq!("sell".parse::<Side>().unwrap().to_string(), "sell");
    assert_eq!("limit".parse::<OrderType>().unwrap(), OrderType::Limit);
    for bad in ["Buy", "BUY", " buy", "b", ""] {
        assert_eq!(bad.parse::<Side>().unwrap_err().code(), "unknown_side");
    }
    assert_eq!(
        "MARKET".parse::<OrderType>().unwrap_err().code(),
        "unknown_order_type"
    );
    assert_eq!(serde_json::to_string(&Side::Sell).unwrap(), "\"sell\"");
    assert_eq!(
        serde_json::from_str::<OrderType>("\"market\"").unwrap(),
        OrderType::Market
    );
}

proptest! {
    #[test]
    fn random_requests_never_panic(
        symbol in any::<String>(),
        side in "(buy|sell|.{0,5})",
        order_type in "(market|limit|.{0,6})",
        quantity in "[-0-9.]{0,12}",
        limit_price in proptest::option::of("[-0-9.e]{0,12}"),
        account_id in any::<String>(),
    ) {
        let req = OrderRequest { symbol, side, order_type, quantity, limit_price, account_id };
        match req.validate(&OrderRules::default()) {
            Ok(order) => {
                prop_assert_eq!(order.symbol.as_str(), req.symbol.as_str());
                prop_assert_eq!(order.kind.limit_price().is_some(), req.order_type == "limit");
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty() && errors.len() <= 6);
                for e in &errors {
                    prop_assert!(!e.code.is_empty());
                }
            }
        }
    }
}
