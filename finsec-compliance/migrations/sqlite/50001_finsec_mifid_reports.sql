-- finsec-compliance: MiFIR transaction reports. Rows are never updated: a cancellation or
-- an amendment is a new row of the same reference with the next version. Times are unix
-- microseconds; `body` and `lineage` are the record and its lineage as JSON.
CREATE TABLE IF NOT EXISTS finsec_mifid_reports (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    reference   TEXT    NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    status      TEXT    NOT NULL CHECK (status IN ('NEWT', 'CANC')),
    instrument  TEXT    NOT NULL,
    trading_us  INTEGER NOT NULL,
    recorded_us INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    lineage     TEXT    NOT NULL,
    UNIQUE (reference, version)
);
CREATE INDEX IF NOT EXISTS finsec_mifid_reports_trading ON finsec_mifid_reports (trading_us, seq);
CREATE INDEX IF NOT EXISTS finsec_mifid_reports_instrument ON finsec_mifid_reports (instrument, trading_us);
