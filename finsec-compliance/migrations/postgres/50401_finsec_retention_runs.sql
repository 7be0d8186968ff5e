-- finsec-compliance: retention runs. One row per run, updated after each batch with the
-- cursor (the key of the last record handled) and the counts; at most one unfinished run
-- per record class. Times are unix microseconds.
CREATE TABLE IF NOT EXISTS finsec_retention_runs (
    id          TEXT   PRIMARY KEY,
    class       TEXT   NOT NULL,
    cutoff_us   BIGINT NOT NULL,
    started_us  BIGINT NOT NULL,
    cursor      TEXT,
    batches     BIGINT NOT NULL DEFAULT 0,
    archived    BIGINT NOT NULL DEFAULT 0,
    deleted     BIGINT NOT NULL DEFAULT 0,
    held        BIGINT NOT NULL DEFAULT 0,
    finished_us BIGINT
);
CREATE UNIQUE INDEX IF NOT EXISTS finsec_retention_runs_open ON finsec_retention_runs (class) WHERE finished_us IS NULL;
CREATE INDEX IF NOT EXISTS finsec_retention_runs_class ON finsec_retention_runs (class, started_us);
