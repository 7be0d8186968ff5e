//! CSV export: the documented columns, one row per record, several owners in order,
//! cancellations, and cells a spreadsheet would run as formulas defused.

#![cfg(test)]

use finsec_compliance::mifid::concat::concat;
use finsec_compliance::mifid::csv::{COLUMNS, CsvReportWriter};
use finsec_compliance::mifid::store::testing::{ISINS, sample_report};
use finsec_compliance::mifid::{AccountOwner, NaturalPerson, Party, Price, Report};
use rust_decimal::Decimal;
use time::macros::{date, datetime};

#[test]
fn rows_follow_the_documented_columns() {
    let at = datetime!(2026-12-03 09:30:15.123 UTC);
    let mut r = sample_report(1, ISINS[0], Decimal::from(100), Decimal::new(-5512, 2), at);
    let id = concat(
        "FR".parse().unwrap(),
        date!(1990 - 01 - 02),
        "=cmd",
        "Martin",
    )
    .unwrap();
    let second = NaturalPerson::new(
        "=cmd|' /C calc'!A0",
        "Martin, \"Jr\"",
        date!(1990 - 01 - 02),
        id,
    )
    .unwrap();
    r.buyer.owners.push(AccountOwner {
        party: Party::Person(second.clone()),
        branch_country: None,
    });
    let mut formula = r.clone();
    formula.buyer.owners.remove(0);
    r.price = Price::Monetary {
        value: Decimal::new(-5512, 2),
        currency: "EUR".parse().unwrap(),
    };
    let cancel = Report::New(Box::new(r.clone())).cancellation();
    let mut w = CsvReportWriter::new(Vec::new()).unwrap();
    w.write(&Report::New(Box::new(r))).unwrap();
    w.write(&Report::Cancel(cancel)).unwrap();
    w.write(&Report::New(Box::new(formula))).unwrap();
    let bytes = w.finish().unwrap();

    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let names: Vec<&str> = COLUMNS.iter().map(|(n, _)| *n).collect();
    assert_eq!(header, names);
    assert_eq!(COLUMNS.len(), 54);
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(rows.len(), 3);
    let col = |row: &csv::StringRecord, name: &str| {
        let i = names.iter().position(|n| *n == name).unwrap();
        row.get(i).unwrap().to_owned()
    };
    let new = &rows[0];
    assert_eq!(col(new, "status"), "NEWT");
    assert_eq!(col(new, "transaction_reference"), "T1");
    assert_eq!(col(new, "buyer_id_type"), "CONCAT;CONCAT");
    assert_eq!(
        col(new, "buyer_id"),
        "FR19800113JEAN#DUPON;FR19900102CMD##MARTI"
    );
    assert_eq!(col(new, "buyer_branch_country"), "FR;");
    assert_eq!(col(new, "buyer_first_names"), "Jean;=cmd|' /C calc'!A0");
    assert_eq!(
        col(&rows[2], "buyer_first_names"),
        "'=cmd|' /C calc'!A0",
        "a formula is defused"
    );
    assert_eq!(col(new, "buyer_surnames"), "Dupont;Martin, \"Jr\"");
    assert_eq!(col(new, "buyer_birth_date"), "1980-01-13;1990-01-02");
    assert_eq!(col(new, "trading_date_time"), "2026-12-03T09:30:15.123Z");
    assert_eq!(col(new, "price_type"), "MNTR");
    assert_eq!(col(new, "price"), "-55.12", "numbers are not defused");
    assert_eq!(col(new, "execution_type"), "ALGO");
    assert_eq!(col(new, "execution_id"), "ALGO1");
    assert_eq!(col(new, "securities_financing"), "false");
    let cancel = &rows[1];
    assert_eq!(col(cancel, "status"), "CANC");
    assert_eq!(col(cancel, "transaction_reference"), "T1");
    assert_eq!(col(cancel, "instrument"), "");
    assert_eq!(cancel.len(), COLUMNS.len());
}
