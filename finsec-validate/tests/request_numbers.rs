//! Prices and quantities: strict decimal syntax, rules validated at construction, bounds,
//! tick and lot sizes, decimals, serde as strings, and property tests.
#![cfg(test)]

use finsec_validate::numbers::{
    NumberError, Price, PriceRules, Quantity, QuantityRules, parse_decimal,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn decimal_syntax_is_strict() {
    for ok in ["0", "1", "-1", "101.25", "0.00000001", "007", "1.500"] {
        assert_eq!(parse_decimal(ok).unwrap(), dec(ok), "{ok}");
    }
    let code = |s: &str| parse_decimal(s).unwrap_err().code();
    assert_eq!(code(""), "empty");
    for bad in [
        "+1", "1e5", "1E5", "1_000", "1,000", " 1", "1 ", "1.", ".5", "-", "--1", "NaN", "inf",
        "0x10", "１", "1.2.3", "-.5",
    ] {
        assert_eq!(code(bad), "syntax", "{bad:?}");
    }
    assert_eq!(code(&"9".repeat(65)), "too_long");
    // More digits than Decimal holds: refused, never rounded.
    assert_eq!(code(&"9".repeat(40)), "unrepresentable");
    assert_eq!(code("0.12345678901234567890123456789"), "unrepresentable");
}

#[test]
fn rules_are_validated_at_construction() {
    let code = |r: Result<PriceRules, NumberError>| r.unwrap_err().code();
    assert_eq!(
        code(PriceRules::new(Some(Decimal::ZERO), 2)),
        "invalid_rules"
    );
    assert_eq!(
        code(PriceRules::new(Some(dec("-0.01")), 2)),
        "invalid_rules"
    );
    assert_eq!(
        code(PriceRules::new(Some(dec("0.001")), 2)),
        "invalid_rules"
    );
    assert_eq!(code(PriceRules::new(None, 29)), "invalid_rules");
    assert_eq!(
        code(PriceRules::default().with_bounds(dec("10"), dec("1"))),
        "invalid_rules"
    );
    assert_eq!(
        code(PriceRules::default().with_max(Decimal::ZERO)),
        "invalid_rules"
    );
    assert!(
        QuantityRules::default()
            .with_bounds(Decimal::ZERO, dec("10"))
            .is_err()
    );
    assert!(QuantityRules::new(Some(Decimal::ZERO), 0).is_err());
    let rules = PriceRules::new(Some(dec("0.05")), 2).unwrap();
    assert_eq!(rules.tick_size(), Some(dec("0.05")));
    assert_eq!(rules.max_decimals(), 2);
}

#[test]
fn price_rules() {
    let rules = PriceRules::new(Some(dec("0.05")), 2)
        .unwrap()
        .with_max(dec("1000"))
        .unwrap();
    let code = |s: &str| Price::parse(s, &rules).unwrap_err().code();
    assert_eq!(
        Price::parse("101.25", &rules).unwrap().value(),
        dec("101.25")
    );
    assert_eq!(
        Price::parse("101.250", &rules).unwrap().to_string(),
        "101.250"
    );
    assert_eq!(code("101.26"), "tick_size");
    assert_eq!(code("0"), "not_positive");
    assert_eq!(code("-1"), "not_positive");
    assert_eq!(code("1000.05"), "above_maximum");
    assert_eq!(code("1.005"), "too_many_decimals");
    assert_eq!(code("abc"), "syntax");

    // Negative prices only when the venue says so.
    let spreads = PriceRules::new(Some(dec("0.01")), 2)
        .unwrap()
        .with_bounds(dec("-100"), dec("100"))
        .unwrap();
    assert!(Price::parse("-37.63", &spreads).is_ok());
    assert!(Price::parse("0", &spreads).is_ok());
    assert_eq!(
        Price::parse("-100.01", &spreads).unwrap_err().code(),
        "below_minimum"
    );
}

#[test]
fn quantity_rules() {
    let lots = QuantityRules::new(Some(dec("100")), 0)
        .unwrap()
        .with_bounds(dec("100"), dec("1000000"))
        .unwrap();
    assert_eq!(Quantity::parse("300", &lots).unwrap().value(), dec("300"));
    let code = |s: &str| Quantity::parse(s, &lots).unwrap_err().code();
    assert_eq!(code("250"), "lot_size");
    assert_eq!(code("100.5"), "too_many_decimals");
    assert_eq!(code("0"), "below_minimum");
    assert_eq!(code("2000000"), "above_maximum");
    assert_eq!(lots.lot_size(), Some(dec("100")));

    let crypto = QuantityRules::new(Some(dec("0.0001")), 4).unwrap();
    assert!(Quantity::parse("0.0003", &crypto).is_ok());
    assert_eq!(
        Quantity::parse("0", &crypto).unwrap_err().code(),
        "not_positive"
    );
}

#[test]
fn defaults_and_serde() {
    let p: Price = "101.25".parse().unwrap();
    assert_eq!(serde_json::to_string(&p).unwrap(), "\"101.25\"");
    assert_eq!(serde_json::from_str::<Price>("\"101.25\"").unwrap(), p);
    // JSON numbers pass through f64 in most clients: refused.
    assert!(serde_json::from_str::<Price>("101.25").is_err());
    assert!(serde_json::from_str::<Price>("\"-1\"").is_err());
    assert!(serde_json::from_str::<Quantity>("\"0.000000001\"").is_err());
    let q: Quantity = serde_json::from_str("\"10\"").unwrap();
    assert_eq!(Decimal::from(q), dec("10"));
    assert!(Price::try_from(String::from("1e3")).is_err());
}

proptest! {
    #[test]
    fn price_display_round_trips(units in 1i64..1_000_000_000_000, scale in 0u32..=8) {
        let value = Decimal::new(units, scale);
        let price = Price::new(value, &PriceRules::default()).unwrap();
        let text = price.to_string();
        prop_assert_eq!(text.parse::<Price>().unwrap(), price);
        prop_assert_eq!(text.parse::<Price>().unwrap().to_string(), text);
    }

    #[test]
    fn on_tick_prices_pass_and_off_tick_fail(ticks in 1i64..10_000_000, off in 1i64..5) {
        let rules = PriceRules::new(Some(dec("0.05")), 2).unwrap();
        let on = Decimal::new(ticks * 5, 2);
        prop_assert!(Price::new(on, &rules).is_ok());
        let off_tick = on + Decimal::new(off, 2);
        prop_assert_eq!(Price::new(off_tick, &rules).unwrap_err().code(), "tick_size");
    }

    #[test]
    fn random_strings_never_panic(s in any::<String>()) {
        let _ = s.parse::<Price>();
        let _ = s.parse::<Quantity>();
        let _ = parse_decimal(&s);
    }

    #[test]
    fn numeric_looking_strings_never_panic(s in "[-+0-9.eE_ ]{0,70}") {
        if let Ok(p) = s.parse::<Price>() {
            // Displayed as given, less redundant leading zeros (`01.50` shows as `1.50`).
            let (int, rest) = s.split_at(s.find('.').unwrap_or(s.len()));
            let int = int.trim_start_matches('0');
            let canonical = format!("{}{rest}", if int.is_empty() { "0" } else { int });
            prop_assert_eq!(p.to_string(), canonical);
            prop_assert_eq!(p.to_string().parse::<Price>().unwrap(), p);
        }
    }

    #[test]
    fn leading_zeros_are_accepted_and_dropped_on_display(zeros in 1usize..5) {
        let text = format!("{}1.50", "0".repeat(zeros));
        let p: Price = text.parse().unwrap();
        prop_assert_eq!(p.to_string(), "1.50");
    }
}
