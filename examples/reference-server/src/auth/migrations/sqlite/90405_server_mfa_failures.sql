-- Consecutive wrong second-factor codes per account (across login attempts, instances and
-- restarts), and until when the account's second factor is locked because of them. A
-- correct code deletes the row.
CREATE TABLE server_mfa_failures (
    user_id      TEXT    NOT NULL PRIMARY KEY REFERENCES server_users (id) ON DELETE CASCADE,
    failures     INTEGER NOT NULL CHECK (failures >= 1),
    locked_until INTEGER
) STRICT;
