//! Text rules: length bounds, NUL and control characters, bidi and invisible characters
//! (reject and strip), NFKC, trimming, error offsets and codes, and properties over random
//! input.
#![cfg(test)]

use finsec_validate::text::{is_bidi_control, is_invisible};
use finsec_validate::{CharPolicy, TextError, TextRules, Trim};
use proptest::prelude::*;

fn rules() -> TextRules {
    TextRules::new(1, 20).unwrap()
}

#[test]
fn accepts_ordinary_text() {
    let t = rules().clean("Order for O'Brien").unwrap();
    assert_eq!(t.as_str(), "Order for O'Brien");
    assert_eq!(t.char_len(), 17);
    assert_eq!(t.to_string(), "Order for O'Brien");
    assert_eq!(String::from(t), "Order for O'Brien");
    let t = rules().clean("José 日本 €").unwrap();
    assert_eq!(t.as_str(), "José 日本 €");
}

#[test]
fn rule_construction_is_validated() {
    assert!(matches!(
        TextRules::new(0, 0),
        Err(TextError::InvalidRules { .. })
    ));
    assert!(matches!(
        TextRules::new(5, 4),
        Err(TextError::InvalidRules { .. })
    ));
    assert!(matches!(
        TextRules::new(0, TextRules::MAX_MAX_CHARS + 1),
        Err(TextError::InvalidRules { .. })
    ));
    let r = TextRules::new(0, TextRules::MAX_MAX_CHARS).unwrap();
    assert_eq!(r.min_chars(), 0);
    assert_eq!(r.max_chars(), TextRules::MAX_MAX_CHARS);
    let d = TextRules::default();
    assert_eq!(
        (d.min_chars(), d.max_chars()),
        (1, TextRules::DEFAULT_MAX_CHARS)
    );
    assert_eq!(
        TextRules::new(0, 0).unwrap_err().code(),
        "text.invalid_rules"
    );
}

#[test]
fn length_is_counted_in_characters_after_cleaning() {
    let r = TextRules::new(2, 3).unwrap();
    // Three characters, nine bytes.
    assert_eq!(r.clean("日本語").unwrap().char_len(), 3);
    assert_eq!(
        r.clean("日本語x").unwrap_err(),
        TextError::TooLong { max: 3, actual: 4 }
    );
    assert_eq!(
        r.clean("x").unwrap_err(),
        TextError::TooShort { min: 2, actual: 1 }
    );
    // Trimmed white space does not count.
    assert_eq!(r.clean("   ab   ").unwrap().as_str(), "ab");
    assert_eq!(
        r.clean("   a   ").unwrap_err(),
        TextError::TooShort { min: 2, actual: 1 }
    );
    // NFKC can shrink (e + combining acute is one character) or grow (the ligature ﬃ is three).
    assert_eq!(r.clean("e\u{301}e\u{301}").unwrap().as_str(), "éé");
    assert_eq!(
        r.clean("\u{FB03}x").unwrap_err(),
        TextError::TooLong { max: 3, actual: 4 }
    );
    assert_eq!(r.clean("abcd").unwrap_err().code(), "text.too_long");
    assert_eq!(r.clean("a").unwrap_err().code(), "text.too_short");
}

#[test]
fn input_budget_refuses_huge_input_before_normalising() {
    let r = TextRules::new(1, 10).unwrap();
    let huge = " ".repeat(10_000);
    assert_eq!(
        r.clean(&huge).unwrap_err(),
        TextError::TooLong {
            max: 10,
            actual: 10_000
        }
    );
    // Within the budget (4 x max), white space is trimmed away before the bound applies.
    let padded = format!("{}abc{}", " ".repeat(18), " ".repeat(18));
    assert_eq!(r.clean(&padded).unwrap().as_str(), "abc");
}

#[test]
fn nul_is_always_refused_with_its_offset() {
    let e = rules().clean("ab\0cd").unwrap_err();
    assert_eq!(e, TextError::Nul { offset: 2 });
    assert_eq!(e.code(), "text.nul");
    assert_eq!(e.to_string(), "nul character at offset 2");
    // Offsets are in characters, not bytes.
    assert_eq!(
        rules().clean("日本\0").unwrap_err(),
        TextError::Nul { offset: 2 }
    );
    // Even when everything else is permissive.
    let lax = rules()
        .with_tab(true)
        .with_line_breaks(true)
        .with_bidi(CharPolicy::Strip)
        .with_invisible(CharPolicy::Strip);
    assert_eq!(lax.clean("a\0").unwrap_err(), TextError::Nul { offset: 1 });
}

#[test]
fn control_characters_are_refused_unless_allowed() {
    for (input, offset, cp) in [
        ("a\u{7}b", 1, 0x07),
        ("\u{1b}[31mred", 0, 0x1b),
        ("del\u{7f}", 3, 0x7f),
        ("c1\u{85}", 2, 0x85),
        ("c1\u{9b}x", 2, 0x9b),
        ("a\tb", 1, 0x09),
        ("a\nb", 1, 0x0a),
        ("a\rb", 1, 0x0d),
        ("a\u{2028}b", 1, 0x2028),
        ("a\u{2029}b", 1, 0x2029),
    ] {
        let e = rules().clean(input).unwrap_err();
        assert_eq!(
            e,
            TextError::ControlCharacter {
                offset,
                code_point: cp
            },
            "{input:?}"
        );
        assert_eq!(e.code(), "text.control_character");
    }
    assert_eq!(
        rules().clean("a\u{1b}").unwrap_err().to_string(),
        "control character U+001B at offset 1"
    );
    let multi = rules().with_line_breaks(true);
    assert_eq!(multi.clean("a\nb\r\nc").unwrap().as_str(), "a\nb\r\nc");
    assert_eq!(multi.clean("a\u{2028}b").unwrap().as_str(), "a\u{2028}b");
    assert!(multi.clean("a\tb").is_err());
    let tabs = rules().with_tab(true);
    assert_eq!(tabs.clean("a\tb").unwrap().as_str(), "a\tb");
    assert!(tabs.clean("a\nb").is_err());
}

#[test]
fn bidi_controls_are_refused_or_stripped() {
    let bidi: Vec<char> = ('\u{202A}'..='\u{202E}')
        .chain('\u{2066}'..='\u{2069}')
        .chain(['\u{200E}', '\u{200F}', '\u{061C}'])
        .collect();
    assert_eq!(bidi.len(), 12);
    for c in &bidi {
        assert!(is_bidi_control(*c));
        let input = format!("invoice{c}fdp.exe");
        let e = rules().clean(&input).unwrap_err();
        assert_eq!(
            e,
            TextError::BidiControl {
                offset: 7,
                code_point: u32::from(*c)
            }
        );
        assert_eq!(e.code(), "text.bidi_control");
        let stripped = rules().with_bidi(CharPolicy::Strip).clean(&input).unwrap();
        assert_eq!(stripped.as_str(), "invoicefdp.exe");
    }
    assert!(!is_bidi_control('a'));
    assert!(!is_bidi_control('\u{2065}'));
    // Stripping one class does not strip the other.
    let r = rules().with_bidi(CharPolicy::Strip);
    assert!(matches!(
        r.clean("a\u{200B}b"),
        Err(TextError::InvisibleCharacter { offset: 1, .. })
    ));
}

#[test]
fn invisible_characters_are_refused_or_stripped() {
    let invisible = [
        '\u{00AD}',
        '\u{034F}',
        '\u{115F}',
        '\u{1160}',
        '\u{17B4}',
        '\u{17B5}',
        '\u{180E}',
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2060}',
        '\u{2061}',
        '\u{2064}',
        '\u{206A}',
        '\u{206F}',
        '\u{3164}',
        '\u{FEFF}',
        '\u{FFA0}',
        '\u{FFF9}',
        '\u{FFFB}',
        '\u{1D173}',
        '\u{1D17A}',
        '\u{E0001}',
        '\u{E007F}',
    ];
    for c in invisible {
        assert!(is_invisible(c), "U+{:04X}", u32::from(c));
        let input = format!("ACME{c}");
        let e = rules().clean(&input).unwrap_err();
        assert_eq!(
            e,
            TextError::InvisibleCharacter {
                offset: 4,
                code_point: u32::from(c)
            }
        );
        assert_eq!(e.code(), "text.invisible_character");
        let r = rules().with_invisible(CharPolicy::Strip);
        assert_eq!(r.clean(&input).unwrap().as_str(), "ACME");
    }
    // Variation selectors and ordinary spaces are not invisible characters.
    assert!(!is_invisible('\u{FE0F}'));
    assert!(!is_invisible(' '));
    assert_eq!(rules().clean("ok\u{2764}\u{FE0F}").unwrap().char_len(), 4);
    // A BOM at the start is reported at offset 0.
    assert!(matches!(
        rules().clean("\u{FEFF}x"),
        Err(TextError::InvisibleCharacter { offset: 0, .. })
    ));
}

#[test]
fn nfkc_folds_compatibility_forms() {
    let r = rules();
    assert_eq!(r.clean("\u{FB01}le").unwrap().as_str(), "file");
    assert_eq!(r.clean("ＡＣＭＥ").unwrap().as_str(), "ACME");
    assert_eq!(r.clean("①②").unwrap().as_str(), "12");
    assert_eq!(r.clean("x\u{00B2}").unwrap().as_str(), "x2");
    // Non-breaking and ideographic spaces become ordinary spaces.
    assert_eq!(r.clean("a\u{00A0}b\u{3000}c").unwrap().as_str(), "a b c");
    // Off: kept as given.
    let raw = rules().with_nfkc(false);
    assert_eq!(raw.clean("ＡＣＭＥ").unwrap().as_str(), "ＡＣＭＥ");
}

#[test]
fn trimming_rules() {
    assert_eq!(rules().clean("    ").unwrap_err().code(), "text.too_short");
    assert_eq!(rules().clean("  a b  ").unwrap().as_str(), "a b");
    // NFKC turns the ideographic space into a space, which is then trimmed.
    assert_eq!(rules().clean("\u{3000}x\u{3000}").unwrap().as_str(), "x");
    let keep = rules().with_trim(Trim::Keep);
    assert_eq!(keep.clean("  a  ").unwrap().as_str(), "  a  ");
    let reject = rules().with_trim(Trim::Reject);
    assert_eq!(reject.clean("a b").unwrap().as_str(), "a b");
    let e = reject.clean(" a").unwrap_err();
    assert_eq!(e, TextError::SurroundingWhitespace { offset: 0 });
    assert_eq!(e.code(), "text.surrounding_whitespace");
    assert_eq!(
        reject.clean("ab ").unwrap_err(),
        TextError::SurroundingWhitespace { offset: 2 }
    );
    // Offsets count the stripped characters of the input.
    let reject_strip = reject.clone().with_invisible(CharPolicy::Strip);
    assert_eq!(
        reject_strip.clean("\u{200B}\u{200B} a").unwrap_err(),
        TextError::SurroundingWhitespace { offset: 2 }
    );
    // White space produced by NFKC (U+00A8 DIAERESIS becomes space + combining diaeresis).
    assert_eq!(
        reject.clean("\u{A8}a").unwrap_err(),
        TextError::SurroundingWhitespace { offset: 0 }
    );
}

#[test]
fn errors_report_the_first_problem_in_input_order() {
    // The bidi control comes before the NUL.
    assert!(matches!(
        rules().clean("a\u{202E}b\0"),
        Err(TextError::BidiControl { offset: 1, .. })
    ));
    assert_eq!(
        rules().clean("a\u{1}\0").unwrap_err().code(),
        "text.control_character"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the input, clean never panics, and the output obeys every rule.
    #[test]
    fn output_obeys_rules(input in "\\PC{0,40}|[\\x00-\\x{2070}\\x{FEFF}\\x{E0000}-\\x{E0010}]{0,40}") {
        let r = TextRules::new(0, 30).unwrap()
            .with_bidi(CharPolicy::Strip)
            .with_invisible(CharPolicy::Strip);
        if let Ok(t) = r.clean(&input) {
            let s = t.as_str();
            prop_assert!(s.chars().count() <= 30);
            prop_assert!(!s.chars().any(|c| c.is_control() || is_bidi_control(c) || is_invisible(c)));
            prop_assert_eq!(s.trim(), s);
        }
    }

    /// Cleaning is idempotent: clean text cleans to itself.
    #[test]
    fn cleaning_is_idempotent(input in "\\PC{0,40}") {
        let r = TextRules::new(0, 60).unwrap()
            .with_bidi(CharPolicy::Strip)
            .with_invisible(CharPolicy::Strip);
        if let Ok(t) = r.clean(&input) {
            let again = r.clean(t.as_str()).unwrap();
            prop_assert_eq!(again, t);
        }
    }

    /// With the strict defaults, any input holding a bidi control is refused.
    #[test]
    fn strict_rules_refuse_bidi(prefix in "[a-z]{0,5}", c in prop::sample::select(vec!['\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200F}']), suffix in "[a-z]{0,5}") {
        let input = format!("{prefix}{c}{suffix}");
        let e = TextRules::default().clean(&input).unwrap_err();
        prop_assert_eq!(e, TextError::BidiControl { offset: prefix.len(), code_point: u32::from(c) });
    }
}
