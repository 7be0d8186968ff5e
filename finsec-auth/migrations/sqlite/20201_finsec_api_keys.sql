-- finsec-auth owns migration versions 20001-20999; API keys use 20201-20299.
--
-- One row per API key. secret_hash is SHA-256("finsec-api-key-v1\0" || id || secret); the
-- secret itself is never stored. scopes is a JSON array of permission patterns. Rotation
-- sets replaced_by and caps expires_at at the end of the overlap. last_used_at and
-- use_count are written in batches, not per request. Timestamps are unix time in
-- microseconds, UTC.
CREATE TABLE finsec_api_keys (
    key_id       TEXT    NOT NULL PRIMARY KEY CHECK (length(key_id) = 16),
    owner        TEXT    NOT NULL CHECK (length(CAST(owner AS BLOB)) BETWEEN 1 AND 256),
    scopes       TEXT    NOT NULL,
    secret_hash  BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    revoked_at   INTEGER,
    replaced_by  TEXT    CHECK (replaced_by IS NULL OR length(replaced_by) = 16),
    last_used_at INTEGER,
    use_count    INTEGER NOT NULL DEFAULT 0 CHECK (use_count >= 0)
) STRICT, WITHOUT ROWID;

CREATE INDEX finsec_api_keys_owner ON finsec_api_keys (owner, created_at, key_id);
