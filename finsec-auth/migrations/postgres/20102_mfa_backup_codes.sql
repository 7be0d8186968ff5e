-- finsec-auth mfa: unused backup codes, as keyed hashes (HMAC-SHA-256, 32 bytes).
CREATE TABLE IF NOT EXISTS finsec_mfa_backup_codes (
    user_id   TEXT  NOT NULL,
    code_hash BYTEA NOT NULL CHECK (octet_length(code_hash) = 32),
    PRIMARY KEY (user_id, code_hash)
);
