-- Password and second-factor resets of a user's account, under four eyes: one admin asks,
-- a second one (never the asker, never the user) approves within a day; only then is the
-- reset done. A password reset hands the approver a single-use token (stored as its
-- SHA-256 in hex) with which the user sets a new password.
CREATE TABLE server_account_resets (
    id               TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    kind             TEXT    NOT NULL CHECK (kind IN ('password', 'mfa')),
    revoke_api_keys  INTEGER NOT NULL,
    requested_by     TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    approved_by      TEXT,
    approved_at      INTEGER,
    token_hash       TEXT    UNIQUE,
    token_expires_at INTEGER,
    used_at          INTEGER
) STRICT;
CREATE INDEX server_account_resets_user ON server_account_resets (user_id, created_at);
