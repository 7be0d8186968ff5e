//! The streaming reader.

use std::io::BufRead;
use std::str::FromStr;

use finsec_validate::identifiers::{Country, Currency, Isin, Lei, Mic};
use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use rust_decimal::Decimal;
use time::Date;

use super::{AUTH_016, AppHeader, HEAD_001, HEAD_003};
use crate::error::{Error, Result};
use crate::mifid::clock::TradingTime;
use crate::mifid::report::{
    AccountOwner, AlgorithmId, Cancellation, Counterparty, DecisionMaker, Executor, FirmPerson,
    IdScheme, InvestmentDecision, NaturalPerson, OtcPostTrade, Party, PersonId, Price, Quantity,
    Report, ShortSelling, TradingCapacity, TransactionReference, TransactionReport, Transmission,
    VenueTransactionId, Waiver,
};

/// Most elements one `Tx` may hold; ours hold well under 100.
const MAX_NODES: usize = 2_000;
/// Deepest nesting inside one `Tx`.
const MAX_DEPTH: usize = 16;
/// Longest text of one element (names are at most 140 characters).
const MAX_TEXT: usize = 1_024;

/// Every element this reader knows, sorted by bytes: names are looked up here rather than
/// allocated per element, and any other element is refused where it starts.
const ELEMENTS: &[&str] = &[
    "AcctOwnr",
    "AddtlAttrbts",
    "Algo",
    "Amt",
    "AppHdr",
    "BirthDt",
    "BizData",
    "BizMsgIdr",
    "BsisPts",
    "Buyr",
    "Ccy",
    "Cd",
    "Clnt",
    "CreDt",
    "CtryOfBrnch",
    "Cxl",
    "DcsnMakr",
    "Document",
    "ExctgPrsn",
    "ExctgPty",
    "FinInstrm",
    "FinInstrmRptgTxRpt",
    "Fr",
    "FrstNm",
    "Hdr",
    "Id",
    "Intl",
    "InvstmtDcsnPrsn",
    "InvstmtPtyInd",
    "LEI",
    "MIC",
    "MntryVal",
    "MsgDefIdr",
    "NetAmt",
    "New",
    "Nm",
    "NmnlVal",
    "NoPric",
    "OTCPstTradInd",
    "OrdrTrnsmssn",
    "OrgId",
    "Othr",
    "Pctg",
    "Pdg",
    "Pric",
    "Prsn",
    "Prtry",
    "Pyld",
    "Qty",
    "Rltd",
    "RskRdcgTx",
    "SchmeNm",
    "SctiesFincgTxInd",
    "Sellr",
    "Sgn",
    "ShrtSellgInd",
    "SubmitgPty",
    "To",
    "TradDt",
    "TradPlcMtchgId",
    "TradVn",
    "TradgCpcty",
    "TrnsmssnInd",
    "TrnsmttgBuyr",
    "TrnsmttgSellr",
    "Tx",
    "TxId",
    "Unit",
    "WvrInd",
    "Yld",
];

/// One element of a record: local name, text, `Ccy` attribute, children.
#[derive(Debug, Default)]
struct Node {
    name: &'static str,
    text: String,
    ccy: Option<String>,
    children: Vec<Node>,
}

type Found<T> = std::result::Result<T, String>;

impl Node {
    fn child(&self, name: &str) -> Found<&Node> {
        self.opt(name)
            .ok_or_else(|| format!("{} has no {name}", self.name))
    }

    fn opt(&self, name: &str) -> Option<&Node> {
        let mut it = self.children.iter().filter(|c| c.name == name);
        it.next()
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The single child of a choice.
    fn choice(&self) -> Found<&Node> {
        match self.children.as_slice() {
            [one] => Ok(one),
            _ => Err(format!("{} must hold exactly one element", self.name)),
        }
    }

    /// Refuses children not in `known` and repeats of children not in `repeat`.
    fn only(&self, known: &[&str], repeat: &[&str]) -> Found<()> {
        for (i, c) in self.children.iter().enumerate() {
            if !known.contains(&c.name) {
                return Err(format!("unexpected {} in {}", c.name, self.name));
            }
            if !repeat.contains(&c.name)
                && self.children.iter().skip(i + 1).any(|d| d.name == c.name)
            {
                return Err(format!("{} repeated in {}", c.name, self.name));
            }
        }
        Ok(())
    }

    fn text_of(&self, name: &str) -> Found<&str> {
        Ok(self.child(name)?.text.as_str())
    }

    fn parse<T: FromStr>(&self, what: &str) -> Found<T>
    where
        T::Err: std::fmt::Display,
    {
        self.text
            .parse()
            .map_err(|e| format!("{}: {what}: {e}", self.name))
    }

    fn boolean(&self) -> Found<bool> {
        match self.text.as_str() {
            "true" | "1" => Ok(true),
            "false" | "0" => Ok(false),
            _ => Err(format!("{} is not a boolean", self.name)),
        }
    }

    fn currency(&self) -> Found<Currency> {
        let code = self
            .ccy
            .as_deref()
            .ok_or_else(|| format!("{} has no Ccy", self.name))?;
        code.parse().map_err(|e| format!("{}: {e}", self.name))
    }

    fn decimal(&self) -> Found<Decimal> {
        Decimal::from_str_exact(&self.text).map_err(|_| format!("{} is not a decimal", self.name))
    }
}

/// Reads an auth.016 file back into [`Report`]s, one `Tx` at a time: memory stays bounded
/// by one record whatever the file's size. Every element of the payload must be in the
/// auth.016 namespace, and of the header in head.001; a DTD is refused (so no entity is
/// ever expanded), and a record holding more than a bounded number of elements, nesting
/// or text is refused rather than buffered.
///
/// Decision makers present make a side
/// [`represented`](crate::mifid::Counterparty::represented).
#[derive(Debug)]
pub struct XmlReportReader<R: BufRead> {
    inner: Inner<R>,
    header: AppHeader,
    done: bool,
}

#[derive(Debug)]
struct Inner<R: BufRead> {
    reader: NsReader<R>,
    buf: Vec<u8>,
}

enum Item {
    Start {
        name: &'static str,
        ccy: Option<String>,
        empty: bool,
    },
    End,
    Text(String),
    Eof,
}

impl<R: BufRead> XmlReportReader<R> {
    /// Reads the envelope and header from `input`, leaving the records to the iterator.
    ///
    /// # Errors
    ///
    /// [`Error::Parse`] for anything that is not an auth.016 file as
    /// [`XmlReportWriter`](super::XmlReportWriter) writes them; [`Error::Io`] when reading
    /// fails.
    pub fn new(input: R) -> Result<Self> {
        let mut reader = NsReader::from_reader(input);
        reader.config_mut().trim_text(true);
        let mut inner = Inner {
            reader,
            buf: Vec::new(),
        };
        inner.expect_start("BizData", HEAD_003)?;
        inner.expect_start("Hdr", HEAD_003)?;
        let (name, ns, ccy, empty) = inner.next_start()?;
        if name != "AppHdr" || ns != Some(HEAD_001) {
            return Err(inner.err("expected AppHdr in the head.001 namespace"));
        }
        let hdr = inner.tree(name, ccy, empty, HEAD_001)?;
        let header = header_of(&hdr).map_err(|r| inner.err(&r))?;
        inner.expect_end()?;
        inner.expect_start("Pyld", HEAD_003)?;
        inner.expect_start("Document", AUTH_016)?;
        inner.expect_start("FinInstrmRptgTxRpt", AUTH_016)?;
        Ok(Self {
            inner,
            header,
            done: false,
        })
    }

    /// The business application header.
    #[must_use]
    pub fn header(&self) -> &AppHeader {
        &self.header
    }
}

impl<R: BufRead> Inner<R> {
    fn err(&self, reason: &str) -> Error {
        Error::Parse {
            position: self.reader.buffer_position(),
            reason: reason.to_owned(),
        }
    }

    fn item(&mut self) -> Result<(Item, Option<&'static str>)> {
        loop {
            self.buf.clear();
            let (res, event) = self
                .reader
                .read_resolved_event_into(&mut self.buf)
                .map_err(|e| Error::Parse {
                    position: 0,
                    reason: e.to_string(),
                })?;
            // The namespaces this reader knows, without allocating per element.
            let ns = match res {
                ResolveResult::Bound(Namespace(ns)) => Some(
                    [HEAD_003, HEAD_001, AUTH_016]
                        .into_iter()
                        .find(|known| known.as_bytes() == ns)
                        .unwrap_or("another namespace"),
                ),
                _ => None,
            };
            let (name, ccy, empty) = match &event {
                Event::Start(e) | Event::Empty(e) => {
                    let (name, ccy) = start_parts(e)?;
                    (name, ccy, matches!(event, Event::Empty(_)))
                }
                Event::End(_) => return Ok((Item::End, None)),
                Event::Text(t) => {
                    let text = t.unescape().map_err(|e| Error::Parse {
                        position: 0,
                        reason: e.to_string(),
                    })?;
                    return Ok((Item::Text(text.into_owned()), None));
                }
                Event::CData(c) => {
                    return Ok((Item::Text(String::from_utf8_lossy(c).into_owned()), None));
                }
                Event::Eof => return Ok((Item::Eof, None)),
                Event::DocType(_) => {
                    return Err(Error::Parse {
                        position: 0,
                        reason: "a DTD is not allowed".into(),
                    });
                }
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => continue,
            };
            return Ok((Item::Start { name, ccy, empty }, ns));
        }
    }

    fn next_start(&mut self) -> Result<(&'static str, Option<&'static str>, Option<String>, bool)> {
        match self.item()? {
            (
                Item::Start {
                    name, ccy, empty, ..
                },
                ns,
            ) => Ok((name, ns, ccy, empty)),
            (Item::End, _) => Err(self.err("expected an element, found an end tag")),
            (Item::Text(_), _) => Err(self.err("unexpected text")),
            (Item::Eof, _) => Err(self.err("unexpected end of file")),
        }
    }

    fn expect_start(&mut self, want: &str, want_ns: &str) -> Result<()> {
        let (name, ns, _, empty) = self.next_start()?;
        if name != want || ns != Some(want_ns) || empty {
            return Err(self.err(&format!("expected {want} in {want_ns}")));
        }
        Ok(())
    }

    fn expect_end(&mut self) -> Result<()> {
        match self.item()?.0 {
            Item::End => Ok(()),
            _ => Err(self.err("expected an end tag")),
        }
    }

    /// Reads the subtree of an element just started, checking every namespace.
    fn tree(
        &mut self,
        name: &'static str,
        ccy: Option<String>,
        empty: bool,
        want_ns: &str,
    ) -> Result<Node> {
        let root = Node {
            name,
            ccy,
            ..Node::default()
        };
        if empty {
            return Ok(root);
        }
        let mut stack = vec![root];
        let mut nodes = 1usize;
        loop {
            let (item, ns) = self.item()?;
            match item {
                Item::Start {
                    name, ccy, empty, ..
                } => {
                    if ns != Some(want_ns) {
                        return Err(self.err(&format!("{name} is not in the {want_ns} namespace")));
                    }
                    nodes += 1;
                    if nodes > MAX_NODES || stack.len() >= MAX_DEPTH {
                        return Err(self.err("record too large or too deep"));
                    }
                    let node = Node {
                        name,
                        ccy,
                        ..Node::default()
                    };
                    if empty {
                        if let Some(top) = stack.last_mut() {
                            top.children.push(node);
                        }
                    } else {
                        stack.push(node);
                    }
                }
                Item::Text(t) => {
                    let Some(top) = stack.last_mut() else {
                        return Err(self.err("text outside an element"));
                    };
                    if top.text.len() + t.len() > MAX_TEXT {
                        return Err(self.err("text too long"));
                    }
                    top.text.push_str(&t);
                }
                Item::End => {
                    let Some(done) = stack.pop() else {
                        return Err(self.err("unbalanced end tag"));
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(done),
                        None => return Ok(done),
                    }
                }
                Item::Eof => return Err(self.err("unexpected end of file")),
            }
        }
    }

    fn finish_document(&mut self) -> Result<()> {
        // FinInstrmRptgTxRpt has ended: Document, Pyld, BizData, then the end of input.
        for _ in 0..3 {
            self.expect_end()?;
        }
        match self.item()?.0 {
            Item::Eof => Ok(()),
            _ => Err(self.err("content after the document")),
        }
    }
}

fn header_of(hdr: &Node) -> Found<AppHeader> {
    hdr.only(
        &["Fr", "To", "BizMsgIdr", "MsgDefIdr", "CreDt", "Rltd"],
        &[],
    )?;
    let org_id = |n: &Node| -> Found<String> {
        Ok(n.child("OrgId")?
            .child("Id")?
            .child("OrgId")?
            .child("Othr")?
            .text_of("Id")?
            .to_owned())
    };
    let from = org_id(hdr.child("Fr")?)?;
    let to = org_id(hdr.child("To")?)?;
    if hdr.text_of("MsgDefIdr")? != "auth.016.001.01" {
        return Err("MsgDefIdr is not auth.016.001.01".into());
    }
    let created = TradingTime::parse_iso(hdr.text_of("CreDt")?)
        .map_err(|e| format!("CreDt: {e}"))?
        .at();
    AppHeader::new(
        from.parse().map_err(|e| format!("Fr: {e}"))?,
        to.parse().map_err(|e| format!("To: {e}"))?,
        hdr.text_of("BizMsgIdr")?,
        created,
    )
    .map_err(|e| e.to_string())
}

fn start_parts(e: &BytesStart<'_>) -> Result<(&'static str, Option<String>)> {
    let local = e.local_name();
    let Ok(i) = ELEMENTS.binary_search_by(|n| n.as_bytes().cmp(local.as_ref())) else {
        let shown: String = String::from_utf8_lossy(local.as_ref())
            .chars()
            .take(40)
            .collect();
        return Err(Error::Parse {
            position: 0,
            reason: format!("unknown element {shown:?}"),
        });
    };
    let name = ELEMENTS.get(i).copied().unwrap_or_default();
    // Only amounts carry a currency attribute.
    let ccy = if matches!(name, "Amt" | "NmnlVal" | "MntryVal") {
        e.try_get_attribute("Ccy")
            .map_err(|err| Error::Parse {
                position: 0,
                reason: err.to_string(),
            })?
            .map(|a| String::from_utf8_lossy(&a.value).into_owned())
    } else {
        None
    };
    Ok((name, ccy))
}

impl<R: BufRead> Iterator for XmlReportReader<R> {
    type Item = Result<Report>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let inner = &mut self.inner;
        let step = (|| -> Result<Option<Report>> {
            match inner.item()? {
                (
                    Item::Start {
                        name, ccy, empty, ..
                    },
                    ns,
                ) if name == "Tx" => {
                    if ns != Some(AUTH_016) {
                        return Err(inner.err("Tx is not in the auth.016 namespace"));
                    }
                    let node = inner.tree(name, ccy, empty, AUTH_016)?;
                    report_of(&node).map(Some).map_err(|r| inner.err(&r))
                }
                (Item::End, _) => {
                    inner.finish_document()?;
                    Ok(None)
                }
                _ => Err(inner.err("expected Tx")),
            }
        })();
        match step {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn report_of(tx: &Node) -> Found<Report> {
    let body = tx.choice()?;
    match body.name {
        "New" => new_of(body).map(|r| Report::New(Box::new(r))),
        "Cxl" => {
            body.only(&["TxId", "ExctgPty", "SubmitgPty"], &[])?;
            Ok(Report::Cancel(Cancellation {
                reference: body.child("TxId")?.parse("transaction reference")?,
                executing_entity: body.child("ExctgPty")?.parse("LEI")?,
                submitting_entity: body.child("SubmitgPty")?.parse("LEI")?,
            }))
        }
        other => Err(format!("Tx holds {other}, not New or Cxl")),
    }
}

fn new_of(n: &Node) -> Found<TransactionReport> {
    n.only(
        &[
            "TxId",
            "ExctgPty",
            "InvstmtPtyInd",
            "SubmitgPty",
            "Buyr",
            "Sellr",
            "OrdrTrnsmssn",
            "Tx",
            "FinInstrm",
            "InvstmtDcsnPrsn",
            "ExctgPrsn",
            "AddtlAttrbts",
        ],
        &[],
    )?;
    let tx = n.child("Tx")?;
    tx.only(
        &[
            "TradDt",
            "TradgCpcty",
            "Qty",
            "Pric",
            "NetAmt",
            "TradVn",
            "CtryOfBrnch",
            "TradPlcMtchgId",
        ],
        &[],
    )?;
    let trnsm = n.child("OrdrTrnsmssn")?;
    trnsm.only(&["TrnsmssnInd", "TrnsmttgBuyr", "TrnsmttgSellr"], &[])?;
    let fin = n.child("FinInstrm")?;
    let instrument: Isin = fin.choice().and_then(|id| {
        if id.name == "Id" {
            id.parse("ISIN")
        } else {
            Err("FinInstrm: only instruments identified by ISIN are read".into())
        }
    })?;
    let attrs = n.child("AddtlAttrbts")?;
    attrs.only(
        &[
            "WvrInd",
            "ShrtSellgInd",
            "OTCPstTradInd",
            "RskRdcgTx",
            "SctiesFincgTxInd",
        ],
        &["WvrInd", "OTCPstTradInd"],
    )?;
    Ok(TransactionReport {
        reference: n
            .child("TxId")?
            .parse::<TransactionReference>("transaction reference")?,
        venue_transaction_id: tx
            .opt("TradPlcMtchgId")
            .map(|v| v.parse::<VenueTransactionId>("venue transaction id"))
            .transpose()?,
        executing_entity: n.child("ExctgPty")?.parse("LEI")?,
        investment_firm: n.child("InvstmtPtyInd")?.boolean()?,
        submitting_entity: n.child("SubmitgPty")?.parse("LEI")?,
        buyer: side_of(n.child("Buyr")?)?,
        seller: side_of(n.child("Sellr")?)?,
        transmission: Transmission {
            transmitted: trnsm.child("TrnsmssnInd")?.boolean()?,
            transmitting_buyer: trnsm
                .opt("TrnsmttgBuyr")
                .map(|l| l.parse::<Lei>("LEI"))
                .transpose()?,
            transmitting_seller: trnsm
                .opt("TrnsmttgSellr")
                .map(|l| l.parse::<Lei>("LEI"))
                .transpose()?,
        },
        trading_time: TradingTime::parse_iso(tx.text_of("TradDt")?)
            .map_err(|e| format!("TradDt: {e}"))?,
        capacity: TradingCapacity::from_code(tx.text_of("TradgCpcty")?)
            .map_err(|e| e.to_string())?,
        quantity: quantity_of(tx.child("Qty")?)?,
        price: price_of(tx.child("Pric")?)?,
        net_amount: tx.opt("NetAmt").map(Node::decimal).transpose()?,
        venue: tx.child("TradVn")?.parse::<Mic>("MIC")?,
        branch_country: tx
            .opt("CtryOfBrnch")
            .map(|c| c.parse::<Country>("country"))
            .transpose()?,
        instrument,
        investment_decision: n
            .opt("InvstmtDcsnPrsn")
            .map(|d| {
                let c = d.choice()?;
                match c.name {
                    "Prsn" => firm_person_of(c).map(InvestmentDecision::Person),
                    "Algo" => c
                        .parse::<AlgorithmId>("algorithm")
                        .map(InvestmentDecision::Algorithm),
                    other => Err(format!("InvstmtDcsnPrsn holds {other}")),
                }
            })
            .transpose()?,
        executor: {
            let c = n.child("ExctgPrsn")?.choice()?;
            match c.name {
                "Prsn" => Executor::Person(firm_person_of(c)?),
                "Algo" => Executor::Algorithm(c.parse("algorithm")?),
                "Clnt" if c.text == "NORE" => Executor::Client,
                other => return Err(format!("ExctgPrsn holds {other}")),
            }
        },
        waivers: attrs
            .all("WvrInd")
            .map(|w| Waiver::from_code(&w.text).map_err(|e| e.to_string()))
            .collect::<Found<_>>()?,
        short_selling: attrs
            .opt("ShrtSellgInd")
            .map(|s| ShortSelling::from_code(&s.text).map_err(|e| e.to_string()))
            .transpose()?,
        otc_post_trade: attrs
            .all("OTCPstTradInd")
            .map(|o| OtcPostTrade::from_code(&o.text).map_err(|e| e.to_string()))
            .collect::<Found<_>>()?,
        commodity_derivative: attrs.opt("RskRdcgTx").map(Node::boolean).transpose()?,
        securities_financing: attrs.child("SctiesFincgTxInd")?.boolean()?,
    })
}

fn side_of(n: &Node) -> Found<Counterparty> {
    n.only(&["AcctOwnr", "DcsnMakr"], &["AcctOwnr", "DcsnMakr"])?;
    let owners = n
        .all("AcctOwnr")
        .map(|o| {
            o.only(&["Id", "CtryOfBrnch"], &[])?;
            let id = o.child("Id")?.choice()?;
            let party = match id.name {
                "LEI" => Party::Lei(id.parse("LEI")?),
                "MIC" => Party::Mic(id.parse("MIC")?),
                "Prsn" => Party::Person(person_of(id)?),
                "Intl" if id.text == "INTC" => Party::Internal,
                other => return Err(format!("AcctOwnr holds {other}")),
            };
            Ok(AccountOwner {
                party,
                branch_country: o
                    .opt("CtryOfBrnch")
                    .map(|c| c.parse::<Country>("country"))
                    .transpose()?,
            })
        })
        .collect::<Found<Vec<_>>>()?;
    let decision_makers = n
        .all("DcsnMakr")
        .map(|d| {
            let c = d.choice()?;
            match c.name {
                "LEI" => Ok(DecisionMaker::Lei(c.parse("LEI")?)),
                "Prsn" => Ok(DecisionMaker::Person(person_of(c)?)),
                other => Err(format!("DcsnMakr holds {other}")),
            }
        })
        .collect::<Found<Vec<_>>>()?;
    Ok(Counterparty {
        owners,
        represented: !decision_makers.is_empty(),
        decision_makers,
    })
}

fn person_id_of(othr: &Node) -> Found<PersonId> {
    othr.only(&["Id", "SchmeNm"], &[])?;
    let scheme = othr.child("SchmeNm")?.choice()?;
    let scheme = match (scheme.name, scheme.text.as_str()) {
        ("Cd", code) => IdScheme::from_code(code).map_err(|e| e.to_string())?,
        ("Prtry", "CONCAT") => IdScheme::Concat,
        _ => return Err("SchmeNm is not NIDN, CCPT or CONCAT".into()),
    };
    PersonId::new(scheme, othr.text_of("Id")?).map_err(|e| e.to_string())
}

fn person_of(n: &Node) -> Found<NaturalPerson> {
    n.only(&["FrstNm", "Nm", "BirthDt", "Othr"], &[])?;
    let birth = n.text_of("BirthDt")?;
    let birth = Date::parse(
        birth,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| "BirthDt is not a date".to_owned())?;
    NaturalPerson::new(
        n.text_of("FrstNm")?,
        n.text_of("Nm")?,
        birth,
        person_id_of(n.child("Othr")?)?,
    )
    .map_err(|e| e.to_string())
}

fn firm_person_of(n: &Node) -> Found<FirmPerson> {
    n.only(&["CtryOfBrnch", "Othr"], &[])?;
    Ok(FirmPerson {
        branch_country: n.child("CtryOfBrnch")?.parse("country")?,
        id: person_id_of(n.child("Othr")?)?,
    })
}

fn quantity_of(n: &Node) -> Found<Quantity> {
    let q = n.choice()?;
    match q.name {
        "Unit" => Ok(Quantity::Units(q.decimal()?)),
        "NmnlVal" => Ok(Quantity::Nominal {
            value: q.decimal()?,
            currency: q.currency()?,
        }),
        "MntryVal" => Ok(Quantity::Monetary {
            value: q.decimal()?,
            currency: q.currency()?,
        }),
        other => Err(format!("Qty holds {other}")),
    }
}

fn price_of(n: &Node) -> Found<Price> {
    let p = n.choice()?;
    match p.name {
        "Pric" => {
            let v = p.choice()?;
            match v.name {
                "MntryVal" => {
                    v.only(&["Amt", "Sgn"], &[])?;
                    let amt = v.child("Amt")?;
                    let mut value = amt.decimal()?;
                    if let Some(sign) = v.opt("Sgn")
                        && !sign.boolean()?
                    {
                        value = -value;
                    }
                    Ok(Price::Monetary {
                        value,
                        currency: amt.currency()?,
                    })
                }
                "Pctg" => Ok(Price::Percentage(v.decimal()?)),
                "Yld" => Ok(Price::Yield(v.decimal()?)),
                "BsisPts" => Ok(Price::BasisPoints(v.decimal()?)),
                other => Err(format!("Pric holds {other}")),
            }
        }
        "NoPric" => {
            p.only(&["Pdg", "Ccy"], &[])?;
            let currency = p
                .opt("Ccy")
                .map(|c| c.parse::<Currency>("currency"))
                .transpose()?;
            match p.text_of("Pdg")? {
                "PNDG" => Ok(Price::Pending { currency }),
                "NOAP" => Ok(Price::NotApplicable { currency }),
                _ => Err("Pdg is not PNDG or NOAP".into()),
            }
        }
        other => Err(format!("Pric holds {other}")),
    }
}
