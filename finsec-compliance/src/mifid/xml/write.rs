//! The streaming writer.

use std::io::Write;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use rust_decimal::Decimal;

use super::{AUTH_016, AppHeader, HEAD_001, HEAD_003};
use crate::error::{Error, Result};
use crate::mifid::check::fits;
use crate::mifid::clock::{Granularity, TradingTime};
use crate::mifid::report::{
    Counterparty, DecisionMaker, Executor, FirmPerson, InvestmentDecision, NaturalPerson, Party,
    PersonId, Price, Quantity, Report, TransactionReport,
};

/// Writes an auth.016 report file as a stream: the head.003 envelope, the head.001
/// business application header, then one `Tx` per [`write`](Self::write), so a file of a
/// million transactions never sits in memory. Every text value is escaped; amounts are
/// checked against the schema's digit limits before they are written.
///
/// Call [`finish`](Self::finish) to close the document; a writer dropped without it leaves
/// an unterminated file (which no validator accepts).
pub struct XmlReportWriter<W: Write> {
    out: quick_xml::Writer<W>,
    count: u64,
}

impl<W: Write> std::fmt::Debug for XmlReportWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmlReportWriter")
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

fn io(e: impl Into<std::io::Error>) -> Error {
    Error::Io(e.into())
}

fn decimal(field: &'static str, d: Decimal, total: u32, fraction: u32) -> Result<String> {
    if !fits(d, total, fraction) {
        return Err(Error::Encode {
            field,
            reason: format!("at most {total} digits, {fraction} after the point"),
        });
    }
    Ok(d.normalize().to_string())
}

fn non_negative(field: &'static str, d: Decimal) -> Result<Decimal> {
    if d < Decimal::ZERO {
        return Err(Error::Encode {
            field,
            reason: "must not be negative".into(),
        });
    }
    Ok(d)
}

fn positive(field: &'static str, d: Decimal) -> Result<Decimal> {
    if d <= Decimal::ZERO {
        return Err(Error::Encode {
            field,
            reason: "must be above zero".into(),
        });
    }
    Ok(d)
}

impl<W: Write> XmlReportWriter<W> {
    /// Starts a file on `out` with `header`. Wrap a file in a `BufWriter`: the writer
    /// makes many small writes.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when writing fails.
    pub fn new(out: W, header: &AppHeader) -> Result<Self> {
        let mut w = Self {
            out: quick_xml::Writer::new(out),
            count: 0,
        };
        w.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        w.start_ns("BizData", HEAD_003)?;
        w.start("Hdr")?;
        w.start_ns("AppHdr", HEAD_001)?;
        for (name, id) in [("Fr", header.from.as_str()), ("To", header.to.as_str())] {
            w.start(name)?;
            w.start("OrgId")?;
            w.start("Id")?;
            w.start("OrgId")?;
            w.start("Othr")?;
            w.leaf("Id", id)?;
            w.end("Othr")?;
            w.end("OrgId")?;
            w.end("Id")?;
            w.end("OrgId")?;
            w.end(name)?;
        }
        w.leaf("BizMsgIdr", header.message_id.as_str())?;
        w.leaf("MsgDefIdr", "auth.016.001.01")?;
        w.leaf(
            "CreDt",
            &TradingTime::new(header.created, Granularity::Second).to_iso(),
        )?;
        w.end("AppHdr")?;
        w.end("Hdr")?;
        w.start("Pyld")?;
        w.start_ns("Document", AUTH_016)?;
        w.start("FinInstrmRptgTxRpt")?;
        Ok(w)
    }

    /// How many records were written.
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes one record.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] for an amount that does not fit the schema (nothing of the
    /// record is written in that case only if the amount comes first; treat the file as
    /// unusable after any error), [`Error::Io`] when writing fails.
    pub fn write(&mut self, report: &Report) -> Result<()> {
        // Amounts are checked before anything of the record is written, so an amount the
        // schema cannot hold leaves the file as it was.
        if let Report::New(r) = report {
            Self::precheck(r)?;
        }
        self.start("Tx")?;
        match report {
            Report::New(r) => self.new_report(r)?,
            Report::Cancel(c) => {
                self.start("Cxl")?;
                self.leaf("TxId", c.reference.as_str())?;
                self.leaf("ExctgPty", c.executing_entity.as_str())?;
                self.leaf("SubmitgPty", c.submitting_entity.as_str())?;
                self.end("Cxl")?;
            }
        }
        self.end("Tx")?;
        self.count += 1;
        Ok(())
    }

    /// Closes the document and returns the output.
    ///
    /// # Errors
    ///
    /// [`Error::Encode`] when no record was written (the schema requires at least one),
    /// [`Error::Io`] when writing or flushing fails.
    pub fn finish(mut self) -> Result<W> {
        if self.count == 0 {
            return Err(Error::Encode {
                field: "Tx",
                reason: "a report file holds at least one transaction".into(),
            });
        }
        self.end("FinInstrmRptgTxRpt")?;
        self.end("Document")?;
        self.end("Pyld")?;
        self.end("BizData")?;
        let mut out = self.out.into_inner();
        out.flush()?;
        Ok(out)
    }

    fn precheck(r: &TransactionReport) -> Result<()> {
        match &r.quantity {
            Quantity::Units(v) => {
                decimal("quantity", positive("quantity", *v)?, 18, 17)?;
            }
            Quantity::Nominal { value, .. } | Quantity::Monetary { value, .. } => {
                decimal("quantity", positive("quantity", *value)?, 18, 5)?;
            }
        }
        match &r.price {
            Price::Monetary { value, .. } => {
                decimal("price", value.abs(), 18, 13)?;
            }
            Price::Percentage(v) | Price::Yield(v) => {
                decimal("price", *v, 11, 10)?;
            }
            Price::BasisPoints(v) => {
                decimal("price", *v, 18, 17)?;
            }
            Price::Pending { .. } | Price::NotApplicable { .. } => {}
        }
        if let Some(net) = r.net_amount {
            decimal("net_amount", non_negative("net_amount", net)?, 18, 5)?;
        }
        Ok(())
    }

    fn new_report(&mut self, r: &TransactionReport) -> Result<()> {
        self.start("New")?;
        self.leaf("TxId", r.reference.as_str())?;
        self.leaf("ExctgPty", r.executing_entity.as_str())?;
        self.leaf("InvstmtPtyInd", bool_text(r.investment_firm))?;
        self.leaf("SubmitgPty", r.submitting_entity.as_str())?;
        self.side("Buyr", &r.buyer)?;
        self.side("Sellr", &r.seller)?;
        self.start("OrdrTrnsmssn")?;
        self.leaf("TrnsmssnInd", bool_text(r.transmission.transmitted))?;
        if let Some(l) = &r.transmission.transmitting_buyer {
            self.leaf("TrnsmttgBuyr", l.as_str())?;
        }
        if let Some(l) = &r.transmission.transmitting_seller {
            self.leaf("TrnsmttgSellr", l.as_str())?;
        }
        self.end("OrdrTrnsmssn")?;

        self.start("Tx")?;
        self.leaf("TradDt", &r.trading_time.to_iso())?;
        self.leaf("TradgCpcty", r.capacity.code())?;
        self.start("Qty")?;
        match &r.quantity {
            Quantity::Units(v) => self.leaf("Unit", &decimal("quantity", *v, 18, 17)?)?,
            Quantity::Nominal { value, currency } => self.leaf_ccy(
                "NmnlVal",
                currency.code(),
                &decimal("quantity", *value, 18, 5)?,
            )?,
            Quantity::Monetary { value, currency } => self.leaf_ccy(
                "MntryVal",
                currency.code(),
                &decimal("quantity", *value, 18, 5)?,
            )?,
        }
        self.end("Qty")?;
        self.price(&r.price)?;
        if let Some(net) = r.net_amount {
            self.leaf("NetAmt", &decimal("net_amount", net, 18, 5)?)?;
        }
        self.leaf("TradVn", r.venue.as_str())?;
        if let Some(c) = &r.branch_country {
            self.leaf("CtryOfBrnch", c.as_str())?;
        }
        if let Some(id) = &r.venue_transaction_id {
            self.leaf("TradPlcMtchgId", id.as_str())?;
        }
        self.end("Tx")?;

        self.start("FinInstrm")?;
        self.leaf("Id", r.instrument.as_str())?;
        self.end("FinInstrm")?;

        if let Some(decision) = &r.investment_decision {
            self.start("InvstmtDcsnPrsn")?;
            match decision {
                InvestmentDecision::Person(p) => self.firm_person(p)?,
                InvestmentDecision::Algorithm(a) => self.leaf("Algo", a.as_str())?,
            }
            self.end("InvstmtDcsnPrsn")?;
        }
        self.start("ExctgPrsn")?;
        match &r.executor {
            Executor::Person(p) => self.firm_person(p)?,
            Executor::Algorithm(a) => self.leaf("Algo", a.as_str())?,
            Executor::Client => self.leaf("Clnt", "NORE")?,
        }
        self.end("ExctgPrsn")?;

        self.start("AddtlAttrbts")?;
        for w in &r.waivers {
            self.leaf("WvrInd", w.code())?;
        }
        if let Some(s) = r.short_selling {
            self.leaf("ShrtSellgInd", s.code())?;
        }
        for o in &r.otc_post_trade {
            self.leaf("OTCPstTradInd", o.code())?;
        }
        if let Some(c) = r.commodity_derivative {
            self.leaf("RskRdcgTx", bool_text(c))?;
        }
        self.leaf("SctiesFincgTxInd", bool_text(r.securities_financing))?;
        self.end("AddtlAttrbts")?;
        self.end("New")
    }

    fn price(&mut self, price: &Price) -> Result<()> {
        self.start("Pric")?;
        match price {
            Price::Monetary { value, currency } => {
                self.start("Pric")?;
                self.start("MntryVal")?;
                self.leaf_ccy(
                    "Amt",
                    currency.code(),
                    &decimal("price", value.abs(), 18, 13)?,
                )?;
                if *value < Decimal::ZERO {
                    self.leaf("Sgn", "false")?;
                }
                self.end("MntryVal")?;
                self.end("Pric")?;
            }
            Price::Percentage(v) => self.wrapped("Pric", "Pctg", &decimal("price", *v, 11, 10)?)?,
            Price::Yield(v) => self.wrapped("Pric", "Yld", &decimal("price", *v, 11, 10)?)?,
            Price::BasisPoints(v) => {
                self.wrapped("Pric", "BsisPts", &decimal("price", *v, 18, 17)?)?;
            }
            Price::Pending { currency } | Price::NotApplicable { currency } => {
                self.start("NoPric")?;
                let code = if matches!(price, Price::Pending { .. }) {
                    "PNDG"
                } else {
                    "NOAP"
                };
                self.leaf("Pdg", code)?;
                if let Some(c) = currency {
                    self.leaf("Ccy", c.code())?;
                }
                self.end("NoPric")?;
            }
        }
        self.end("Pric")
    }

    fn side(&mut self, name: &str, side: &Counterparty) -> Result<()> {
        self.start(name)?;
        for owner in &side.owners {
            self.start("AcctOwnr")?;
            self.start("Id")?;
            match &owner.party {
                Party::Lei(l) => self.leaf("LEI", l.as_str())?,
                Party::Mic(m) => self.leaf("MIC", m.as_str())?,
                Party::Person(p) => self.person(p)?,
                Party::Internal => self.leaf("Intl", "INTC")?,
                Party::Pseudonymised(_) => return Err(pseudonymised()),
            }
            self.end("Id")?;
            if let Some(c) = &owner.branch_country {
                self.leaf("CtryOfBrnch", c.as_str())?;
            }
            self.end("AcctOwnr")?;
        }
        for maker in &side.decision_makers {
            self.start("DcsnMakr")?;
            match maker {
                DecisionMaker::Lei(l) => self.leaf("LEI", l.as_str())?,
                DecisionMaker::Person(p) => self.person(p)?,
                DecisionMaker::Pseudonymised(_) => return Err(pseudonymised()),
            }
            self.end("DcsnMakr")?;
        }
        self.end(name)
    }

    fn person(&mut self, p: &NaturalPerson) -> Result<()> {
        self.start("Prsn")?;
        self.leaf("FrstNm", p.first_names())?;
        self.leaf("Nm", p.surnames())?;
        let d = p.birth_date();
        self.leaf(
            "BirthDt",
            &format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
        )?;
        self.other_id(p.id())?;
        self.end("Prsn")
    }

    fn firm_person(&mut self, p: &FirmPerson) -> Result<()> {
        self.start("Prsn")?;
        self.leaf("CtryOfBrnch", p.branch_country.as_str())?;
        self.other_id(&p.id)?;
        self.end("Prsn")
    }

    fn other_id(&mut self, id: &PersonId) -> Result<()> {
        self.start("Othr")?;
        self.leaf("Id", id.expose())?;
        self.start("SchmeNm")?;
        match id.scheme() {
            crate::mifid::report::IdScheme::Concat => self.leaf("Prtry", "CONCAT")?,
            other => self.leaf("Cd", other.code())?,
        }
        self.end("SchmeNm")?;
        self.end("Othr")
    }

    fn wrapped(&mut self, outer: &str, inner: &str, text: &str) -> Result<()> {
        self.start(outer)?;
        self.leaf(inner, text)?;
        self.end(outer)
    }

    fn event(&mut self, e: Event<'_>) -> Result<()> {
        self.out.write_event(e).map_err(io)
    }

    fn start(&mut self, name: &str) -> Result<()> {
        self.event(Event::Start(BytesStart::new(name)))
    }

    fn start_ns(&mut self, name: &str, ns: &str) -> Result<()> {
        self.event(Event::Start(
            BytesStart::new(name).with_attributes([("xmlns", ns)]),
        ))
    }

    fn end(&mut self, name: &str) -> Result<()> {
        self.event(Event::End(BytesEnd::new(name)))
    }

    fn leaf(&mut self, name: &str, text: &str) -> Result<()> {
        self.start(name)?;
        self.event(Event::Text(BytesText::new(text)))?;
        self.end(name)
    }

    fn leaf_ccy(&mut self, name: &str, ccy: &str, text: &str) -> Result<()> {
        self.event(Event::Start(
            BytesStart::new(name).with_attributes([("Ccy", ccy)]),
        ))?;
        self.event(Event::Text(BytesText::new(text)))?;
        self.end(name)
    }
}

fn bool_text(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// A report whose person was erased is kept for record keeping, never sent again.
fn pseudonymised() -> Error {
    Error::Encode {
        field: "buyer/seller",
        reason: "a person in this report was erased (GDPR Art. 17) and replaced by a \
                 pseudonym: it is kept for record keeping and cannot be reported again"
            .to_owned(),
    }
}
