-- Remembered devices: the SHA-256 (hex) of each token handed out at a complete login, with
-- its user and lifetime. A device presenting one at login is exempt from the per-account
-- wait after failed logins. A password change or reset deletes the user's rows.
CREATE TABLE server_remembered_devices (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX server_remembered_devices_user ON server_remembered_devices (user_id, created_at);
