-- finsec-compliance: data-subject requests (GDPR Arts. 12, 15-18, 20). due_us is the
-- deadline now (one month after receipt, three once extended); closed requests stay.
-- Times are unix microseconds; outcome is JSON text.
CREATE TABLE IF NOT EXISTS finsec_subject_requests (
    id            TEXT   PRIMARY KEY,
    subject       TEXT   NOT NULL,
    kind          TEXT   NOT NULL CHECK (kind IN ('access', 'portability', 'erasure', 'rectification', 'restriction')),
    received_us   BIGINT NOT NULL,
    filed_by      TEXT   NOT NULL,
    verify_method TEXT   NOT NULL,
    verified_by   TEXT   NOT NULL,
    verified_us   BIGINT NOT NULL,
    note          TEXT   NOT NULL,
    due_us        BIGINT NOT NULL,
    ext_reason    TEXT,
    ext_by        TEXT,
    ext_us        BIGINT,
    status        TEXT   NOT NULL CHECK (status IN ('open', 'completed', 'refused')),
    closed_us     BIGINT,
    outcome       TEXT
);
CREATE INDEX IF NOT EXISTS finsec_subject_requests_subject ON finsec_subject_requests (subject, received_us);
CREATE INDEX IF NOT EXISTS finsec_subject_requests_due ON finsec_subject_requests (due_us, id) WHERE status = 'open';
