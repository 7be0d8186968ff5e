-- The simulated fills (one per accepted order; `clock_flag_us`: the clock's declared
-- divergence when it exceeded RTS 25's maximum) and the firm's clients as MiFIR reports
-- name them. Times are unix microseconds; amounts decimal text. A client's names, birth
-- date and national identifier are sealed under the client's subject key.
CREATE TABLE IF NOT EXISTS server_executions (
    id            TEXT    PRIMARY KEY,
    order_id      TEXT    NOT NULL UNIQUE,
    owner         TEXT    NOT NULL,
    account_id    TEXT    NOT NULL,
    symbol        TEXT    NOT NULL,
    isin          TEXT    NOT NULL,
    class         TEXT    NOT NULL,
    venue         TEXT    NOT NULL,
    side          TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity      TEXT    NOT NULL,
    price         TEXT    NOT NULL,
    currency      TEXT    NOT NULL,
    ordered_at    BIGINT  NOT NULL,
    executed_at   BIGINT  NOT NULL,
    audit_event   TEXT    NOT NULL,
    report_ref    TEXT    NOT NULL,
    clock_flag_us BIGINT
);
CREATE INDEX IF NOT EXISTS server_executions_time ON server_executions (executed_at, id);
CREATE INDEX IF NOT EXISTS server_executions_account ON server_executions (account_id, executed_at, id);
CREATE TABLE IF NOT EXISTS server_clients (
    account_id TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('lei', 'person')),
    lei        TEXT,
    sealed     BYTEA,
    updated_at BIGINT  NOT NULL,
    CHECK ((kind = 'lei' AND lei IS NOT NULL AND sealed IS NULL)
        OR (kind = 'person' AND lei IS NULL AND sealed IS NOT NULL))
);
