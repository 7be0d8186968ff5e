//! Arbitrary text through every identifier and number parser, strict and lenient. None may
//! panic, and whatever parses must print to text that parses back to the same value.
#![no_main]
#![forbid(unsafe_code)]

use finsec_validate::{Cfi, Currency, Isin, Lei, Mic, Price, Quantity, Symbol, SymbolRules};
use libfuzzer_sys::fuzz_target;

fn round_trip<T>(parsed: Result<T, impl std::fmt::Debug>)
where
    T: std::str::FromStr + std::fmt::Display + PartialEq + std::fmt::Debug,
    T::Err: std::fmt::Debug,
{
    if let Ok(value) = parsed {
        let again: T = value.to_string().parse().expect("canonical text parses");
        assert_eq!(again, value);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    round_trip(text.parse::<Isin>());
    round_trip(Isin::parse_lenient(text));
    round_trip(text.parse::<Lei>());
    round_trip(Lei::parse_lenient(text));
    round_trip(text.parse::<Mic>());
    round_trip(Mic::parse_lenient(text));
    round_trip(text.parse::<Currency>());
    round_trip(Currency::parse_lenient(text));
    round_trip(text.parse::<Cfi>());
    round_trip(Cfi::parse_lenient(text));
    round_trip(text.parse::<Symbol>());
    let _ = Symbol::parse_lenient(text, &SymbolRules::default());
    round_trip(text.parse::<Price>());
    round_trip(text.parse::<Quantity>());
});
