-- finsec-auth mfa: the last accepted TOTP time step of each user (replay protection).
CREATE TABLE IF NOT EXISTS finsec_mfa_totp_replay (
    user_id   TEXT   NOT NULL PRIMARY KEY,
    last_step BIGINT NOT NULL CHECK (last_step >= 0)
);
