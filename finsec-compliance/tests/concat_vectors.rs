//! The CONCAT examples of `testdata/mifid/concat_examples.json` (see its SOURCES.md).

#![cfg(test)]

use finsec_compliance::mifid::IdScheme;
use finsec_compliance::mifid::concat::concat;
use serde::Deserialize;
use time::Date;
use time::macros::format_description;

#[derive(Deserialize)]
struct File {
    examples: Vec<Example>,
}

#[derive(Deserialize)]
struct Example {
    country: String,
    birth_date: String,
    first_names: String,
    surnames: String,
    expected: String,
    note: String,
}

#[test]
fn every_concat_example_gives_its_code() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../testdata/mifid/concat_examples.json"
    );
    let file: File = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut ran = 0;
    for e in &file.examples {
        let birth =
            Date::parse(&e.birth_date, format_description!("[year]-[month]-[day]")).unwrap();
        let id = concat(
            e.country.parse().unwrap(),
            birth,
            &e.first_names,
            &e.surnames,
        )
        .unwrap_or_else(|err| panic!("{} {}: {err} ({})", e.first_names, e.surnames, e.note));
        assert_eq!(
            id.expose(),
            e.expected,
            "{} {} ({})",
            e.first_names,
            e.surnames,
            e.note
        );
        assert_eq!(id.scheme(), IdScheme::Concat);
        ran += 1;
    }
    assert_eq!(ran, 17);
}
