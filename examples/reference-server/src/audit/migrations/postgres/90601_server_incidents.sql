-- The security monitor's alerts, for admins to read (GET /audit/incidents). Each alert is
-- also a security.alert event in the audit log; this table is the working list.
-- Times are unix microseconds, UTC.
CREATE TABLE server_incidents (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us       BIGINT NOT NULL,
    rule        TEXT   NOT NULL CHECK (octet_length(rule) BETWEEN 1 AND 64),
    severity    TEXT   NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    per         TEXT   NOT NULL,
    subject     TEXT   NOT NULL CHECK (octet_length(subject) <= 512),
    observed    BIGINT NOT NULL,
    threshold   BIGINT NOT NULL,
    window_secs BIGINT NOT NULL,
    response    TEXT
);
