-- finsec-auth tokens module: migration versions 20001-20099.
-- Timestamps are unix time in microseconds, UTC.

-- Revoked access-token ids, kept until the token expires.
CREATE TABLE finsec_revoked_jti (
    jti        TEXT   NOT NULL PRIMARY KEY,
    expires_at BIGINT NOT NULL
);

CREATE INDEX finsec_revoked_jti_expiry ON finsec_revoked_jti (expires_at);

-- Refresh tokens (SHA-256 hex of the opaque token, never the token). used_at is set once,
-- when the token is rotated.
CREATE TABLE finsec_refresh_tokens (
    token_hash TEXT   NOT NULL PRIMARY KEY,
    family     TEXT   NOT NULL,
    subject    TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE INDEX finsec_refresh_tokens_family ON finsec_refresh_tokens (family);

-- Revoked refresh families (reuse detected or logout).
CREATE TABLE finsec_refresh_families_revoked (
    family     TEXT   NOT NULL PRIMARY KEY,
    revoked_at BIGINT NOT NULL
);
