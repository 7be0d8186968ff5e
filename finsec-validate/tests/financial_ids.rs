//! Financial identifiers against the corpus in `testdata/financial-ids`: every
//! valid case parses, every invalid case fails with the error its `reason` names, and each
//! `policy` case behaves as the module docs say. Plus the compiled currency and CFI tables
//! against their source files, and property tests.
#![cfg(test)]

use std::collections::BTreeMap;
use std::str::FromStr;

use finsec_validate::identifiers::{
    CasePolicy, Cfi, Currency, CurrencyKind, IdentifierError, Isin, IsinPrefixPolicy, Lei, Mic,
    MicList, MicStatus, Normalization, Symbol, SymbolRules,
};
use proptest::prelude::*;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../testdata/financial-ids/");

#[derive(Debug, serde::Deserialize)]
struct Case {
    value: String,
    expected: String,
    reason: String,
    policy: String,
}

fn cases(file: &str) -> Vec<Case> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::None)
        .from_path(format!("{DIR}{file}"))
        .unwrap();
    reader.deserialize().map(Result::unwrap).collect()
}

/// The error code this crate gives for a corpus `reason`.
fn expected_code(reason: &str) -> &'static str {
    let has = |needles: &[&str]| needles.iter().any(|n| reason.contains(n));
    if reason == "empty string" {
        "empty"
    } else if reason.starts_with("lowercase") || reason == "mixed case" {
        "lowercase"
    } else if has(&["leading space", "trailing space", "space in position 6"]) {
        // `ESVUF `: a space in the last position is trailing whitespace.
        "whitespace"
    } else if has(&["EXPIRED"]) {
        "expired_mic"
    } else if has(&["not in the ISO 10383 list", "not an ISO 10383 MIC"]) {
        "unknown_mic"
    } else if has(&["withdrawn from ISO 4217"]) {
        "withdrawn_currency"
    } else if has(&["not an ISO 4217 code", "well-formed but not in the list"]) {
        "unknown_currency"
    } else if has(&["is not an assigned ISO 3166-1"]) {
        "unknown_prefix"
    } else if has(&["is not a CFI category"]) {
        "cfi_category"
    } else if has(&["is not a group of category"]) {
        "cfi_group"
    } else if has(&[
        "does not accept",
        "not permitted",
        "not a permitted",
        "accept only X",
        "only X allowed",
    ]) {
        "cfi_attribute"
    } else if has(&["ED rule"]) {
        "cfi_rule"
    } else if has(&[
        "too short",
        "too long",
        "concatenated",
        "wrong length",
        "category and group only",
        "single character",
        "currency name",
    ]) {
        "length"
    } else if has(&[
        "check digit altered",
        "check digits altered",
        "transposed",
        "changed",
        "can never be valid",
        "all zeros, checksum fails",
        "letter O in place of digit 0",
    ]) {
        "check_digit"
    } else if has(&[
        "check digit is a letter",
        "check digits must be numeric",
        "letter O in the check digits",
        "first two characters must be letters",
        // `XXXXXXXXXXXXXXXXXXXX`: refused before the checksum, because the check digits are letters.
        "20 letters, checksum fails",
        "numeric code where",
    ]) {
        "format"
    } else if has(&[
        "hyphen",
        "space inside",
        "space after",
        "grouped with spaces",
        "space in position",
        "non-alphanumeric",
        "non-ASCII",
        "full-width",
        "non-letter",
        "symbol character",
        "currency symbol",
        "digit in an attribute",
    ]) {
        "invalid_character"
    } else {
        panic!("no code mapped for reason {reason:?}")
    }
}

/// Runs one corpus file: returns (valid, invalid) counts and per-policy counts.
fn run<T: std::fmt::Display>(
    file: &str,
    parse: impl Fn(&str) -> Result<T, IdentifierError>,
) -> (usize, usize, BTreeMap<String, usize>) {
    let (mut valid, mut invalid) = (0, 0);
    let mut policies = BTreeMap::new();
    for case in cases(file) {
        let result = parse(&case.value);
        match case.expected.as_str() {
            "valid" => {
                let value =
                    result.unwrap_or_else(|e| panic!("{file}: {:?} refused: {e}", case.value));
                assert_eq!(value.to_string(), case.value, "{file}: display round trip");
                valid += 1;
            }
            "invalid" => {
                let err = match result {
                    Ok(_) => panic!("{file}: {:?} accepted ({})", case.value, case.reason),
                    Err(e) => e,
                };
                assert_eq!(
                    err.code(),
                    expected_code(&case.reason),
                    "{file}: {:?} ({}) gave {err}",
                    case.value,
                    case.reason
                );
                // Messages never echo the raw input (beyond a shape-checked code).
                if case.value.chars().count() > 4 {
                    assert!(!err.to_string().contains(&case.value), "{err}");
                }
                invalid += 1;
            }
            other => panic!("unknown expectation {other}"),
        }
        if let Some((policy, _)) = case.policy.split_once(':') {
            *policies.entry(policy.to_owned()).or_insert(0) += 1;
        }
    }
    (valid, invalid, policies)
}

fn policy_cases(file: &str, policy: &str) -> Vec<Case> {
    cases(file)
        .into_iter()
        .filter(|c| c.policy.starts_with(policy))
        .collect()
}

fn mic_list() -> MicList {
    #[derive(serde::Deserialize)]
    struct Row {
        #[serde(rename = "MIC")]
        mic: String,
        #[serde(rename = "STATUS")]
        status: String,
    }
    let mut reader = csv::Reader::from_path(format!("{DIR}mic_iso10383.csv")).unwrap();
    let rows: Vec<(Mic, MicStatus)> = reader
        .deserialize::<Row>()
        .map(|r| {
            let r = r.unwrap();
            (r.mic.parse().unwrap(), r.status.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 2811);
    let list = MicList::from_rows(rows);
    assert_eq!(list.len(), 2811);
    list
}

#[test]
fn isin_corpus() {
    let (valid, invalid, policies) = run("isin_cases.csv", Isin::from_str);
    assert_eq!((valid, invalid), (111, 63));
    assert_eq!(policies.get("case"), Some(&2));
    assert_eq!(policies.get("whitespace"), Some(&2));
    assert_eq!(policies.get("prefix"), Some(&4));
}

#[test]
fn isin_policies() {
    let mut n = 0;
    for case in policy_cases("isin_cases.csv", "case:")
        .into_iter()
        .chain(policy_cases("isin_cases.csv", "whitespace:"))
    {
        let isin = Isin::parse_lenient(&case.value).unwrap();
        assert_eq!(isin.as_str(), case.value.trim().to_ascii_uppercase());
        n += 1;
    }
    for case in policy_cases("isin_cases.csv", "prefix:") {
        let isin = Isin::parse_with(
            &case.value,
            Normalization::Strict,
            IsinPrefixPolicy::AnyLetters,
        )
        .unwrap();
        assert_eq!(isin.as_str(), case.value);
        n += 1;
    }
    assert_eq!(n, 8);
}

#[test]
fn isin_parts_and_special_prefixes() {
    let isin: Isin = "US0378331005".parse().unwrap();
    assert_eq!(
        (isin.prefix(), isin.nsin(), isin.check_digit()),
        ("US", "037833100", 5)
    );
    // XS (ICSD international issue), EU (European Union).
    for s in ["XS2314659447", "EU000A1G0BN7"] {
        let any = Isin::parse_with(s, Normalization::Strict, IsinPrefixPolicy::AnyLetters).unwrap();
        assert_eq!(s.parse::<Isin>().unwrap(), any);
    }
}

#[test]
fn lei_corpus() {
    let (valid, invalid, policies) = run("lei_cases.csv", Lei::from_str);
    assert_eq!((valid, invalid), (80, 55));
    assert_eq!(policies.get("case"), Some(&1));
    assert_eq!(policies.get("whitespace"), Some(&2));
    let mut n = 0;
    for case in policy_cases("lei_cases.csv", "case:")
        .into_iter()
        .chain(policy_cases("lei_cases.csv", "whitespace:"))
    {
        assert!(Lei::parse_lenient(&case.value).is_ok(), "{:?}", case.value);
        n += 1;
    }
    assert_eq!(n, 3);
}

#[test]
fn lei_parts() {
    let lei: Lei = "5493001KJTIIGC8Y1R12".parse().unwrap();
    assert_eq!((lei.lou_prefix(), lei.check_digits()), ("5493", "12"));
}

#[test]
fn mic_corpus() {
    let list = mic_list();
    let (valid, invalid, policies) = run("mic_cases.csv", |s| Mic::parse_listed(s, &list));
    assert_eq!((valid, invalid), (49, 21));
    assert_eq!(policies.get("status"), Some(&6));
    assert_eq!(policies.get("case"), Some(&1));
    assert_eq!(policies.get("whitespace"), Some(&1));
    let mut n = 0;
    for case in policy_cases("mic_cases.csv", "status:") {
        let mic: Mic = case.value.parse().unwrap();
        assert_eq!(list.status(mic), Some(MicStatus::Expired));
        assert_eq!(list.check_historical(mic), Ok(mic));
        n += 1;
    }
    for case in policy_cases("mic_cases.csv", "case:")
        .into_iter()
        .chain(policy_cases("mic_cases.csv", "whitespace:"))
    {
        list.check(Mic::parse_lenient(&case.value).unwrap())
            .unwrap();
        n += 1;
    }
    assert_eq!(n, 8);
}

#[test]
fn mic_shape_without_list() {
    assert!("21XX".parse::<Mic>().is_ok());
    assert!("ZZZZ".parse::<Mic>().is_ok());
    assert_eq!(
        Mic::parse_listed("ZZZZ", &MicList::new())
            .unwrap_err()
            .code(),
        "unknown_mic"
    );
    assert_eq!(
        "XNY$".parse::<Mic>().unwrap_err().code(),
        "invalid_character"
    );
}

#[test]
fn currency_corpus() {
    let (valid, invalid, policies) = run("currency_cases.csv", Currency::from_str);
    assert_eq!((valid, invalid), (47, 38));
    assert_eq!(policies.get("status"), Some(&16));
    assert_eq!(policies.get("domain"), Some(&7));
    let mut n = 0;
    for case in policy_cases("currency_cases.csv", "domain:") {
        let c: Currency = case.value.parse().unwrap();
        assert_ne!(c.kind(), CurrencyKind::National);
        let err = Currency::parse_in(&case.value, &[CurrencyKind::National]).unwrap_err();
        assert_eq!(err.code(), "currency_not_allowed");
        n += 1;
    }
    for case in policy_cases("currency_cases.csv", "case:")
        .into_iter()
        .chain(policy_cases("currency_cases.csv", "whitespace:"))
    {
        assert!(
            Currency::parse_lenient(&case.value).is_ok(),
            "{:?}",
            case.value
        );
        n += 1;
    }
    assert_eq!(n, 10);
}

#[test]
fn currency_table_matches_iso4217_active_csv() {
    #[derive(serde::Deserialize)]
    struct Row {
        #[serde(rename = "AlphabeticCode")]
        code: String,
        #[serde(rename = "NumericCode")]
        numeric: u16,
        #[serde(rename = "MinorUnit")]
        minor: String,
        #[serde(rename = "Currency")]
        name: String,
    }
    let mut reader = csv::Reader::from_path(format!("{DIR}iso4217_active.csv")).unwrap();
    let rows: Vec<Row> = reader.deserialize().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 178);
    assert_eq!(Currency::all().len(), 178);
    for (row, c) in rows.iter().zip(Currency::all()) {
        assert_eq!(c.code(), row.code);
        assert_eq!(c.numeric(), row.numeric, "{}", row.code);
        let minor = (row.minor != "-").then(|| row.minor.parse::<u8>().unwrap());
        assert_eq!(c.minor_units(), minor, "{}", row.code);
        assert_eq!(c.name(), row.name, "{}", row.code);
        assert_eq!(Currency::from_numeric(row.numeric), Some(c));
        assert_eq!(row.code.parse::<Currency>().unwrap(), c);
    }
}

#[test]
fn currency_kinds() {
    let kind = |s: &str| s.parse::<Currency>().unwrap().kind();
    assert_eq!(kind("EUR"), CurrencyKind::National);
    assert_eq!(kind("XOF"), CurrencyKind::National);
    assert_eq!(kind("CLF"), CurrencyKind::Fund);
    assert_eq!(kind("XAU"), CurrencyKind::PreciousMetal);
    assert_eq!(kind("XDR"), CurrencyKind::Supranational);
    assert_eq!(kind("XTS"), CurrencyKind::Testing);
    assert_eq!(kind("XXX"), CurrencyKind::NoCurrency);
    let national = Currency::all()
        .filter(|c| c.kind() == CurrencyKind::National)
        .count();
    assert_eq!(national, 178 - 9 - 4 - 8 - 1 - 1);
    assert!(
        Currency::all()
            .filter(|c| c.kind() == CurrencyKind::National)
            .all(|c| c.minor_units().is_some())
    );
}

#[test]
fn cfi_corpus() {
    let (valid, invalid, policies) = run("cfi_cases.csv", Cfi::from_str);
    assert_eq!((valid, invalid), (152, 66));
    assert_eq!(policies.get("case"), Some(&2));
    let mut n = 0;
    for case in policy_cases("cfi_cases.csv", "case:") {
        assert!(Cfi::parse_lenient(&case.value).is_ok());
        n += 1;
    }
    assert_eq!(n, 2);
}

/// Every category, group, position and letter of the compiled CFI tables against
/// `cfi_iso10962_tables.json`.
#[test]
fn cfi_table_matches_json() {
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{DIR}cfi_iso10962_tables.json")).unwrap(),
    )
    .unwrap();
    let categories = json["categories"].as_object().unwrap();
    assert_eq!(categories.len(), 14);
    let mut groups = 0;
    let mut checks = 0;
    for category in 'A'..='Z' {
        let Some(cat) = categories.get(&category.to_string()) else {
            let err = format!("{category}SXXXX").parse::<Cfi>().unwrap_err();
            assert_eq!(err.code(), "cfi_category");
            checks += 1;
            continue;
        };
        let cat_groups = cat["groups"].as_object().unwrap();
        for group in 'A'..='Z' {
            let code = format!("{category}{group}XXXX");
            let Some(g) = cat_groups.get(&group.to_string()) else {
                assert_eq!(
                    code.parse::<Cfi>().unwrap_err().code(),
                    "cfi_group",
                    "{code}"
                );
                checks += 1;
                continue;
            };
            groups += 1;
            let base: Cfi = code.parse().unwrap();
            assert_eq!(base.category_label(), cat["label"].as_str().unwrap());
            assert_eq!(base.group_label(), g["label"].as_str().unwrap());
            for attr in g["attributes"].as_array().unwrap() {
                let position = attr["position"].as_u64().unwrap() as usize;
                let values = attr["values"].as_object().unwrap();
                for letter in 'A'..='Z' {
                    let mut code: Vec<char> = code.chars().collect();
                    code[position - 1] = letter;
                    let code: String = code.into_iter().collect();
                    let result = code.parse::<Cfi>();
                    if values.contains_key(&letter.to_string()) {
                        assert!(result.is_ok(), "{code}");
                    } else {
                        assert_eq!(result.unwrap_err().code(), "cfi_attribute", "{code}");
                    }
                    checks += 1;
                }
            }
        }
    }
    assert_eq!(groups, 78);
    assert_eq!(checks, 12 + (14 * 26 - 78) + 78 * 4 * 26);
    // The cross-position rule.
    assert_eq!("EDSBFR".parse::<Cfi>().unwrap_err().code(), "cfi_rule");
    assert!("EDSNFR".parse::<Cfi>().is_ok());
    assert!("EDPBFR".parse::<Cfi>().is_ok()); // P (preferred shares) is not under the rule
}

#[test]
fn symbols_default_rules() {
    for s in ["AAPL", "BRK.B", "RDS-A", "7203", "A", "ABCDEFGHIJKL"] {
        assert_eq!(s.parse::<Symbol>().unwrap().as_str(), s);
    }
    let code = |s: &str| s.parse::<Symbol>().unwrap_err().code();
    assert_eq!(code(""), "empty");
    assert_eq!(code("aapl"), "lowercase");
    assert_eq!(code("Aapl"), "lowercase");
    assert_eq!(code("ABCDEFGHIJKLM"), "too_long");
    assert_eq!(code(&"A".repeat(10_000)), "too_long");
    assert_eq!(code("AA\u{0}PL"), "invalid_character");
    assert_eq!(code("AA\u{7}"), "invalid_character");
    assert_eq!(code("AA\u{202e}PL"), "invalid_character");
    assert_eq!(code("AAPL\n"), "whitespace");
    assert_eq!(code(" AAPL"), "whitespace");
    assert_eq!(code("AA PL"), "invalid_character");
    assert_eq!(code("BRK/B"), "invalid_character");
    assert_eq!(code("ＡＡＰＬ"), "invalid_character");
    assert_eq!(code(".BRK"), "format");
    assert_eq!(code("BRK."), "format");
    assert_eq!(code("BRK..B"), "format");
    assert_eq!(code("BRK.-B"), "format");
}

#[test]
fn symbol_rules_per_venue() {
    let slash = SymbolRules::new(8, "/").unwrap();
    assert!(Symbol::parse("BRK/B", &slash).is_ok());
    assert_eq!(
        Symbol::parse("BRK.B", &slash).unwrap_err().code(),
        "invalid_character"
    );
    assert_eq!(
        Symbol::parse("ABCDEFGHI", &slash).unwrap_err().code(),
        "too_long"
    );

    let upper = SymbolRules::default().with_case(CasePolicy::Uppercase);
    assert_eq!(Symbol::parse("brk.b", &upper).unwrap().as_str(), "BRK.B");
    let preserve = SymbolRules::default().with_case(CasePolicy::Preserve);
    assert_eq!(Symbol::parse("BRK.b", &preserve).unwrap().as_str(), "BRK.b");
    assert_eq!(
        Symbol::parse_lenient("  brk.b\t", &SymbolRules::default())
            .unwrap()
            .as_str(),
        "BRK.B"
    );

    for (len, seps) in [(0, ".-"), (65, ".-"), (8, "a"), (8, " "), (8, "é")] {
        let err = SymbolRules::new(len, seps).unwrap_err();
        assert_eq!(err.code(), "invalid_rules");
    }
}

#[test]
fn serde_validates() {
    let isin: Isin = serde_json::from_str("\"US0378331005\"").unwrap();
    assert_eq!(serde_json::to_string(&isin).unwrap(), "\"US0378331005\"");
    assert!(serde_json::from_str::<Isin>("\"US0378331006\"").is_err());
    assert!(serde_json::from_str::<Lei>("\"5493001KJTIIGC8Y1R13\"").is_err());
    assert!(serde_json::from_str::<Currency>("\"DEM\"").is_err());
    assert!(serde_json::from_str::<Cfi>("\"ESZZZZ\"").is_err());
    assert!(serde_json::from_str::<Mic>("\"xnys\"").is_err());
    assert!(serde_json::from_str::<Symbol>("\"aapl\"").is_err());
    let c: Currency = serde_json::from_str("\"JPY\"").unwrap();
    assert_eq!(c.minor_units(), Some(0));
    let s: Symbol = serde_json::from_str("\"BRK.B\"").unwrap();
    assert_eq!(serde_json::to_string(&s).unwrap(), "\"BRK.B\"");
    assert!(Isin::try_from(String::from("US0378331005")).is_ok());
}

#[test]
fn error_positions_are_one_based() {
    assert_eq!(
        "US03783310o5".parse::<Isin>(),
        Err(IdentifierError::Lowercase {
            kind: finsec_validate::identifiers::IdKind::Isin,
            position: 11
        })
    );
}

/// An ISIN built from any two-letter prefix and nine alphanumerics, with its check digit.
fn isin_strategy() -> impl Strategy<Value = String> {
    "(US|GB|DE|XS|JP)[0-9A-Z]{9}".prop_map(|body| {
        (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|s| s.parse::<Isin>().is_ok())
            .unwrap()
    })
}

proptest! {
    #[test]
    fn isin_has_exactly_one_check_digit(body in "(US|GB|DE|XS|JP)[0-9A-Z]{9}") {
        let ok = (0..10).filter(|d| format!("{body}{d}").parse::<Isin>().is_ok()).count();
        prop_assert_eq!(ok, 1);
    }

    #[test]
    fn isin_round_trips(s in isin_strategy()) {
        let isin: Isin = s.parse().unwrap();
        prop_assert_eq!(isin.to_string().parse::<Isin>().unwrap(), isin);
        let json = serde_json::to_string(&isin).unwrap();
        prop_assert_eq!(serde_json::from_str::<Isin>(&json).unwrap(), isin);
    }

    #[test]
    fn lei_round_trips_and_detects_single_changes(body in "[0-9A-Z]{18}", pos in 0usize..18, delta in 1u8..10) {
        let valid = (2..=98)
            .map(|c| format!("{body}{c:02}"))
            .find(|s| s.parse::<Lei>().is_ok());
        let s = valid.unwrap();
        let lei: Lei = s.parse().unwrap();
        prop_assert_eq!(lei.to_string().parse::<Lei>().unwrap(), lei);
        let alphabet: Vec<char> = ('0'..='9').chain('A'..='Z').collect();
        // MOD 97-10 detects every substitution of a digit by a digit or a letter by a letter
        // (a letter for a digit changes the length of the digit string, and is not covered).
        let mut chars: Vec<char> = s.chars().collect();
        let i = alphabet.iter().position(|&c| c == chars[pos]).unwrap();
        let (start, n) = if i < 10 { (0, 10) } else { (10, 26) };
        chars[pos] = alphabet[start + (i - start + usize::from(delta)) % n];
        let changed: String = chars.into_iter().collect();
        prop_assert!(changed.parse::<Lei>().is_err());
    }

    #[test]
    fn symbol_round_trips(s in "[A-Z0-9]{1,5}([.-][A-Z0-9]{1,5})?") {
        let sym: Symbol = s.parse().unwrap();
        prop_assert_eq!(sym.to_string(), s);
    }

    #[test]
    fn currency_round_trips(i in 0usize..178) {
        let c = Currency::all().nth(i).unwrap();
        prop_assert_eq!(c.to_string().parse::<Currency>().unwrap(), c);
    }

    #[test]
    fn random_strings_never_panic(s in any::<String>()) {
        let _ = s.parse::<Isin>();
        let _ = s.parse::<Lei>();
        let _ = s.parse::<Mic>();
        let _ = s.parse::<Currency>();
        let _ = s.parse::<Cfi>();
        let _ = s.parse::<Symbol>();
        let _ = Isin::parse_lenient(&s);
        let _ = Lei::parse_lenient(&s);
        let _ = Symbol::parse_lenient(&s, &SymbolRules::default());
        let _ = Cfi::parse_lenient(&s);
    }

    #[test]
    fn near_miss_strings_never_panic(s in "[ -~\u{80}-\u{10ffff}]{0,24}") {
        // Anything accepted (strictly) is its own canonical text.
        for text in [
            s.parse::<Isin>().map(|v| v.to_string()),
            s.parse::<Lei>().map(|v| v.to_string()),
            s.parse::<Cfi>().map(|v| v.to_string()),
            s.parse::<Symbol>().map(|v| v.to_string()),
        ]
        .into_iter()
        .flatten()
        {
            prop_assert_eq!(text, s.clone());
        }
    }
}
