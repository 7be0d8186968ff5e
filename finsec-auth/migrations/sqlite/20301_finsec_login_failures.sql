-- finsec-auth lockout: failed logins counted per account and per account at one address.
CREATE TABLE IF NOT EXISTS finsec_login_failures (
    failure_key      TEXT   NOT NULL PRIMARY KEY,
    failures         BIGINT NOT NULL CHECK (failures >= 0),
    last_failure_ms  BIGINT NOT NULL,
    blocked_until_ms BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS finsec_login_failures_last ON finsec_login_failures (last_failure_ms);
