-- The security monitor's alerts, for admins to read (GET /audit/incidents). Each alert is
-- also a security.alert event in the audit log; this table is the working list.
-- Times are unix microseconds, UTC.
CREATE TABLE server_incidents (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    at_us       INTEGER NOT NULL,
    rule        TEXT    NOT NULL CHECK (length(CAST(rule AS BLOB)) BETWEEN 1 AND 64),
    severity    TEXT    NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    per         TEXT    NOT NULL,
    subject     TEXT    NOT NULL CHECK (length(CAST(subject AS BLOB)) <= 512),
    observed    INTEGER NOT NULL,
    threshold   INTEGER NOT NULL,
    window_secs INTEGER NOT NULL,
    response    TEXT
) STRICT;
