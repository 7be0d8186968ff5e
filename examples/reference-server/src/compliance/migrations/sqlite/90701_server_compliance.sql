-- The simulated fills (one per accepted order) and the firm's clients as MiFIR reports
-- name them. Times are unix microseconds; amounts decimal text. A client's names, birth
-- date and national identifier are sealed under the client's subject key.
CREATE TABLE IF NOT EXISTS server_executions (
    id            TEXT    PRIMARY KEY,
    order_id      TEXT    NOT NULL UNIQUE,
    account_id    TEXT    NOT NULL,
    symbol        TEXT    NOT NULL,
    isin          TEXT    NOT NULL,
    class         TEXT    NOT NULL,
    venue         TEXT    NOT NULL,
    side          TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity      TEXT    NOT NULL,
    price         TEXT    NOT NULL,
    currency      TEXT    NOT NULL,
    ordered_at    INTEGER NOT NULL,
    executed_at   INTEGER NOT NULL,
    audit_event   TEXT    NOT NULL,
    report_ref    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS server_executions_time ON server_executions (executed_at, id);
CREATE TABLE IF NOT EXISTS server_clients (
    account_id TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('lei', 'person')),
    lei        TEXT,
    sealed     BLOB,
    updated_at INTEGER NOT NULL,
    CHECK ((kind = 'lei' AND lei IS NOT NULL AND sealed IS NULL)
        OR (kind = 'person' AND lei IS NULL AND sealed IS NOT NULL))
);
