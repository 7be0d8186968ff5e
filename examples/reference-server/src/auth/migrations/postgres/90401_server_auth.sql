-- The reference server's users and authentication state own migration versions 90401-90499.
-- Times are unix seconds, UTC.

-- Users. `username` is the NFKC form as registered; `username_key` its case-folded form,
-- unique. `password_hash` is an argon2id PHC string (or a legacy bcrypt hash until the
-- user's next login).
CREATE TABLE server_users (
    id            UUID    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL CHECK (length(username) BETWEEN 1 AND 256),
    username_key  TEXT    NOT NULL UNIQUE CHECK (length(username_key) BETWEEN 1 AND 256),
    password_hash TEXT    NOT NULL,
    mfa_enabled   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- A user's TOTP secret, envelope-encrypted with the keyring's `pii` key (associated data
-- `aad_for("server_mfa_secrets", "secret", user_id)`). Pending until confirmed.
CREATE TABLE server_mfa_secrets (
    user_id    UUID    NOT NULL PRIMARY KEY REFERENCES server_users (id) ON DELETE CASCADE,
    secret     TEXT    NOT NULL,
    confirmed  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT  NOT NULL
);

-- Second-factor challenges issued by a password login (one per mfa_token): attempts
-- are counted here (before the code is checked) so the limit holds across instances.
CREATE TABLE server_mfa_challenges (
    id         TEXT    NOT NULL PRIMARY KEY,
    user_id    UUID    NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used       BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at BIGINT  NOT NULL
);

CREATE INDEX server_mfa_challenges_expiry ON server_mfa_challenges (expires_at);

-- JWT signing keys (Ed25519 seeds, envelope-encrypted with the keyring's `pii` key,
-- associated data `aad_for("server_jwt_keys", "seed", kid)`).
CREATE TABLE server_jwt_keys (
    kid        TEXT   NOT NULL PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 64),
    seed       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- Other server secrets (the backup-code hashing key), envelope-encrypted likewise with
-- associated data `aad_for("server_secrets", "value", name)`.
CREATE TABLE server_secrets (
    name       TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- The names users give their API keys (the keys themselves are finsec-auth's; the id is
-- the key id in hex).
CREATE TABLE server_api_keys (
    key_id     TEXT   NOT NULL PRIMARY KEY CHECK (length(key_id) = 16),
    user_id    UUID   NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    name       TEXT   NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at BIGINT NOT NULL
);

CREATE INDEX server_api_keys_user ON server_api_keys (user_id);

-- The refresh family of each access token (by its jti), so logout revokes the family
-- even without the refresh token. Rows expire with their access token.
CREATE TABLE server_sessions (
    access_jti TEXT    NOT NULL PRIMARY KEY,
    family     TEXT    NOT NULL,
    expires_at BIGINT NOT NULL
);

CREATE INDEX server_sessions_expiry ON server_sessions (expires_at);
