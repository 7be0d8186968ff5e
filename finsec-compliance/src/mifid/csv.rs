//! Reports as CSV: one row per record, one documented column per RTS 22 field.
//!
//! The columns are [`COLUMNS`], in that order, with a header row. A side with several
//! account owners or decision makers lists them in order, separated by `;` in each of its
//! columns (names cannot hold `;`). Booleans are `true`/`false`, times ISO 8601 UTC with
//! the granularity's digits, amounts plain decimals. A cancellation fills the status,
//! reference and the two LEI columns and leaves the rest empty. Values are quoted as
//! needed by the `csv` crate; a value starting with `=`, `+`, `-` or `@` is prefixed with
//! `'` so a spreadsheet does not run it as a formula (numbers are left as they are).

use std::io::Write;

use crate::error::{Error, Result};
use crate::mifid::report::{
    Counterparty, DecisionMaker, Executor, FirmPerson, InvestmentDecision, NaturalPerson, Party,
    Price, Quantity, Report, TransactionReport,
};

/// The id type written for a person replaced by a pseudonym after erasure (the id column
/// then holds the pseudonym, the name and birth-date columns are empty).
pub const PSEUDONYM: &str = "PSEUDONYM";

/// The columns: name, then the RTS 22 Annex I Table 2 field number(s) and what it holds.
pub const COLUMNS: &[(&str, &str)] = &[
    ("status", "1: NEWT or CANC"),
    ("transaction_reference", "2"),
    ("venue_transaction_id", "3"),
    ("executing_entity", "4: LEI"),
    ("investment_firm", "5: true/false"),
    ("submitting_entity", "6: LEI"),
    (
        "buyer_id_type",
        "7: LEI, MIC, INTC, NIDN, CCPT, CONCAT or PSEUDONYM (erased), per owner",
    ),
    ("buyer_id", "7"),
    ("buyer_branch_country", "8"),
    ("buyer_first_names", "9"),
    ("buyer_surnames", "10"),
    ("buyer_birth_date", "11: YYYY-MM-DD"),
    (
        "buyer_decision_maker_id_type",
        "12: LEI, NIDN, CCPT or CONCAT, per decision maker",
    ),
    ("buyer_decision_maker_id", "12"),
    ("buyer_decision_maker_first_names", "13"),
    ("buyer_decision_maker_surnames", "14"),
    ("buyer_decision_maker_birth_date", "15"),
    ("seller_id_type", "16"),
    ("seller_id", "16"),
    ("seller_branch_country", "17"),
    ("seller_first_names", "18"),
    ("seller_surnames", "19"),
    ("seller_birth_date", "20"),
    ("seller_decision_maker_id_type", "21"),
    ("seller_decision_maker_id", "21"),
    ("seller_decision_maker_first_names", "22"),
    ("seller_decision_maker_surnames", "23"),
    ("seller_decision_maker_birth_date", "24"),
    ("transmission", "25: true/false"),
    ("transmitting_buyer", "26: LEI"),
    ("transmitting_seller", "27: LEI"),
    ("trading_date_time", "28: ISO 8601 UTC"),
    ("trading_capacity", "29: DEAL, MTCH or AOTC"),
    ("quantity_type", "30: UNIT, NOML or MONE"),
    ("quantity", "30"),
    ("quantity_currency", "31"),
    ("price_type", "33: MNTR, PCTG, YIEL, BAPO, PNDG or NOAP"),
    ("price", "33"),
    ("price_currency", "34"),
    ("net_amount", "35"),
    ("venue", "36: MIC, XOFF or XXXX"),
    ("branch_country", "37"),
    ("instrument", "41: ISIN"),
    ("investment_decision_type", "57: PERSON or ALGO"),
    ("investment_decision_id", "57"),
    ("investment_decision_country", "58"),
    ("execution_type", "59: PERSON, ALGO or NORE"),
    ("execution_id", "59"),
    ("execution_country", "60"),
    ("waivers", "61: codes separated by ;"),
    ("short_selling", "62"),
    ("otc_post_trade", "63: codes separated by ;"),
    ("commodity_derivative", "64: true/false"),
    ("securities_financing", "65: true/false"),
];

/// Writes reports as CSV (see the [module docs](self)).
#[derive(Debug)]
pub struct CsvReportWriter<W: Write> {
    out: csv::Writer<W>,
    row: Vec<String>,
}

fn csv_err(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::Io(io),
        other => Error::Encode {
            field: "csv",
            reason: format!("{other:?}"),
        },
    }
}

/// A cell, defused for spreadsheets (numbers, such as a negative price, stay as they are).
fn cell(value: &str) -> String {
    if rust_decimal::Decimal::from_str_exact(value).is_ok() {
        return value.to_owned();
    }
    match value.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{value}"),
        _ => value.to_owned(),
    }
}

fn join<I: IntoIterator<Item = String>>(parts: I) -> String {
    parts.into_iter().collect::<Vec<_>>().join(";")
}

fn date(p: &NaturalPerson) -> String {
    let d = p.birth_date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn person_cols(p: Option<&NaturalPerson>) -> [String; 3] {
    p.map_or_else(Default::default, |p| {
        [p.first_names().to_owned(), p.surnames().to_owned(), date(p)]
    })
}

impl<W: Write> CsvReportWriter<W> {
    /// Starts a file on `out` and writes the header row.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when writing fails.
    pub fn new(out: W) -> Result<Self> {
        let mut out = csv::Writer::from_writer(out);
        out.write_record(COLUMNS.iter().map(|(name, _)| *name))
            .map_err(csv_err)?;
        Ok(Self {
            out,
            row: Vec::with_capacity(COLUMNS.len()),
        })
    }

    /// Writes one record.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when writing fails.
    pub fn write(&mut self, report: &Report) -> Result<()> {
        self.row.clear();
        match report {
            Report::New(r) => self.new_row(r),
            Report::Cancel(c) => {
                self.row.extend([
                    "CANC".to_owned(),
                    c.reference.to_string(),
                    String::new(),
                    c.executing_entity.to_string(),
                    String::new(),
                    c.submitting_entity.to_string(),
                ]);
                self.row.resize(COLUMNS.len(), String::new());
            }
        }
        self.out
            .write_record(self.row.iter().map(|v| cell(v)))
            .map_err(csv_err)
    }

    /// Flushes and returns the output.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when flushing fails.
    pub fn finish(self) -> Result<W> {
        self.out
            .into_inner()
            .map_err(|e| Error::Io(std::io::Error::other(e.to_string())))
    }

    fn side(&mut self, side: &Counterparty) {
        let owners = &side.owners;
        self.row.push(join(owners.iter().map(|o| match &o.party {
            Party::Lei(_) => "LEI".to_owned(),
            Party::Mic(_) => "MIC".to_owned(),
            Party::Internal => "INTC".to_owned(),
            Party::Person(p) => p.id().scheme().code().to_owned(),
            Party::Pseudonymised(_) => PSEUDONYM.to_owned(),
        })));
        self.row.push(join(owners.iter().map(|o| match &o.party {
            Party::Lei(l) => l.to_string(),
            Party::Mic(m) => m.to_string(),
            Party::Internal => "INTC".to_owned(),
            Party::Person(p) => p.id().expose().to_owned(),
            Party::Pseudonymised(p) => p.to_string(),
        })));
        self.row.push(join(
            owners
                .iter()
                .map(|o| o.branch_country.map(|c| c.to_string()).unwrap_or_default()),
        ));
        self.people(owners.iter().map(|o| match &o.party {
            Party::Person(p) => Some(p),
            _ => None,
        }));
        let makers = &side.decision_makers;
        self.row.push(join(makers.iter().map(|m| match m {
            DecisionMaker::Lei(_) => "LEI".to_owned(),
            DecisionMaker::Person(p) => p.id().scheme().code().to_owned(),
            DecisionMaker::Pseudonymised(_) => PSEUDONYM.to_owned(),
        })));
        self.row.push(join(makers.iter().map(|m| match m {
            DecisionMaker::Lei(l) => l.to_string(),
            DecisionMaker::Person(p) => p.id().expose().to_owned(),
            DecisionMaker::Pseudonymised(p) => p.to_string(),
        })));
        self.people(makers.iter().map(|m| match m {
            DecisionMaker::Person(p) => Some(p),
            DecisionMaker::Lei(_) | DecisionMaker::Pseudonymised(_) => None,
        }));
    }

    /// First names, surnames and birth dates of a side's people (empty for an entity).
    fn people<'a>(&mut self, people: impl Iterator<Item = Option<&'a NaturalPerson>>) {
        let columns: Vec<[String; 3]> = people.map(person_cols).collect();
        for i in 0..3 {
            self.row.push(join(
                columns
                    .iter()
                    .map(|p| p.get(i).cloned().unwrap_or_default()),
            ));
        }
    }

    fn firm(&mut self, kind: &str, person: Option<&FirmPerson>, algo: Option<&str>) {
        self.row.push(kind.to_owned());
        match (person, algo) {
            (Some(p), _) => {
                self.row.push(p.id.expose().to_owned());
                self.row.push(p.branch_country.to_string());
            }
            (None, Some(a)) => {
                self.row.push(a.to_owned());
                self.row.push(String::new());
            }
            (None, None) => {
                self.row.push(String::new());
                self.row.push(String::new());
            }
        }
    }

    fn new_row(&mut self, r: &TransactionReport) {
        let opt = |v: Option<String>| v.unwrap_or_default();
        self.row.extend([
            "NEWT".to_owned(),
            r.reference.to_string(),
            opt(r.venue_transaction_id.as_ref().map(ToString::to_string)),
            r.executing_entity.to_string(),
            r.investment_firm.to_string(),
            r.submitting_entity.to_string(),
        ]);
        self.side(&r.buyer);
        self.side(&r.seller);
        self.row.extend([
            r.transmission.transmitted.to_string(),
            opt(r.transmission.transmitting_buyer.map(|l| l.to_string())),
            opt(r.transmission.transmitting_seller.map(|l| l.to_string())),
            r.trading_time.to_iso(),
            r.capacity.code().to_owned(),
        ]);
        let (qt, qv, qc) = match &r.quantity {
            Quantity::Units(v) => ("UNIT", v.normalize().to_string(), String::new()),
            Quantity::Nominal { value, currency } => (
                "NOML",
                value.normalize().to_string(),
                currency.code().to_owned(),
            ),
            Quantity::Monetary { value, currency } => (
                "MONE",
                value.normalize().to_string(),
                currency.code().to_owned(),
            ),
        };
        self.row.extend([qt.to_owned(), qv, qc]);
        let (pt, pv, pc) = match &r.price {
            Price::Monetary { value, currency } => (
                "MNTR",
                value.normalize().to_string(),
                currency.code().to_owned(),
            ),
            Price::Percentage(v) => ("PCTG", v.normalize().to_string(), String::new()),
            Price::Yield(v) => ("YIEL", v.normalize().to_string(), String::new()),
            Price::BasisPoints(v) => ("BAPO", v.normalize().to_string(), String::new()),
            Price::Pending { currency } => (
                "PNDG",
                String::new(),
                opt(currency.map(|c| c.code().to_owned())),
            ),
            Price::NotApplicable { currency } => (
                "NOAP",
                String::new(),
                opt(currency.map(|c| c.code().to_owned())),
            ),
        };
        self.row.extend([pt.to_owned(), pv, pc]);
        self.row.extend([
            opt(r.net_amount.map(|n| n.normalize().to_string())),
            r.venue.to_string(),
            opt(r.branch_country.map(|c| c.to_string())),
            r.instrument.to_string(),
        ]);
        match &r.investment_decision {
            None => self.firm("", None, None),
            Some(InvestmentDecision::Person(p)) => self.firm("PERSON", Some(p), None),
            Some(InvestmentDecision::Algorithm(a)) => self.firm("ALGO", None, Some(a.as_str())),
        }
        match &r.executor {
            Executor::Person(p) => self.firm("PERSON", Some(p), None),
            Executor::Algorithm(a) => self.firm("ALGO", None, Some(a.as_str())),
            Executor::Client => self.firm("NORE", None, None),
        }
        self.row.extend([
            join(r.waivers.iter().map(|w| w.code().to_owned())),
            opt(r.short_selling.map(|s| s.code().to_owned())),
            join(r.otc_post_trade.iter().map(|o| o.code().to_owned())),
            opt(r.commodity_derivative.map(|c| c.to_string())),
            r.securities_financing.to_string(),
        ]);
    }
}
