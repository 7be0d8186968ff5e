-- Password and second-factor resets of a user's account, under four eyes: one admin asks,
-- a second one (never the asker, never the user) approves within a day; only then is the
-- reset done. A password reset hands the approver a single-use token (stored as its
-- SHA-256 in hex) with which the user sets a new password.
CREATE TABLE server_account_resets (
    id               TEXT    NOT NULL PRIMARY KEY,
    user_id          UUID    NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL CHECK (kind IN ('password', 'mfa')),
    revoke_api_keys  BOOLEAN NOT NULL,
    requested_by     UUID    NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    approved_by      UUID,
    approved_at      BIGINT,
    token_hash       TEXT    UNIQUE,
    token_expires_at BIGINT,
    used_at          BIGINT
);
CREATE INDEX server_account_resets_user ON server_account_resets (user_id, created_at);
