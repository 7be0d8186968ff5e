-- finsec-compliance: legal holds. A hold covers a subject, a record class, both, or (with
-- neither) every record, until it is released by a second person; released holds stay.
-- Times are unix microseconds.
CREATE TABLE IF NOT EXISTS finsec_legal_holds (
    id             TEXT    PRIMARY KEY,
    case_id        TEXT    NOT NULL,
    subject        TEXT,
    class          TEXT,
    placed_by      TEXT    NOT NULL,
    reason         TEXT    NOT NULL,
    placed_us      BIGINT  NOT NULL,
    released_by    TEXT,
    release_reason TEXT,
    released_us    BIGINT,
    CHECK ((released_us IS NULL) = (released_by IS NULL)),
    CHECK (released_by IS NULL OR released_by <> placed_by)
);
CREATE INDEX IF NOT EXISTS finsec_legal_holds_case ON finsec_legal_holds (case_id, placed_us);
CREATE INDEX IF NOT EXISTS finsec_legal_holds_active ON finsec_legal_holds (placed_us) WHERE released_us IS NULL;
