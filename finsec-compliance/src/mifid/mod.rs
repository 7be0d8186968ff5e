//! MiFID II / MiFIR: transaction reports (MiFIR Art. 26, RTS 22), business clocks (RTS 25),
//! ISO 20022 XML and CSV export, a report store with record keeping, and best execution
//! (MiFID II Art. 27).

pub mod best_execution;
mod check;
pub mod clock;
pub mod concat;
pub mod csv;
mod report;
pub mod store;
pub mod xml;

pub use check::{CheckContext, InstrumentClass};
pub use clock::{
    ClockFlag, ClockReading, ClockSource, Granularity, ManualClock, SystemClock, TradingTime,
};
pub use report::{
    AccountOwner, AlgorithmId, Cancellation, Counterparty, DecisionMaker, Executor, FirmPerson,
    IdScheme, InvestmentDecision, Lineage, NaturalPerson, OtcPostTrade, Party, PersonId, Price,
    Quantity, Report, ReportStatus, ShortSelling, TradingCapacity, TransactionReference,
    TransactionReport, Transmission, VenueTransactionId, Waiver,
};
pub use store::{
    MemoryReportStore, PeriodSummary, RecordKeeping, ReportFilter, StoredReport, Submitted,
    TransactionReportStore,
};
