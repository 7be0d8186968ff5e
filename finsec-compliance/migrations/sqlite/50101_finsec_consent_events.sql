-- finsec-compliance: the consent ledger (GDPR Art. 7). Rows are only ever inserted; a
-- subject's current consent for a purpose is their row with the highest seq. Times are
-- unix microseconds.
CREATE TABLE IF NOT EXISTS finsec_consent_events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    subject        TEXT    NOT NULL,
    purpose        TEXT    NOT NULL,
    action         TEXT    NOT NULL CHECK (action IN ('granted', 'withdrawn')),
    policy_version INTEGER NOT NULL CHECK (policy_version >= 0),
    at_us          INTEGER NOT NULL,
    channel        TEXT    NOT NULL,
    evidence       TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS finsec_consent_events_subject ON finsec_consent_events (subject, purpose, seq);
CREATE INDEX IF NOT EXISTS finsec_consent_events_purpose ON finsec_consent_events (purpose, seq);
