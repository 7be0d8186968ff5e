-- The reference server's roles and orders own migration versions 90501-90599.
--
-- Users' roles: one row per (user, role), read on every request. Role names follow
-- finsec-rbac's grammar. Times are unix microseconds, UTC.
CREATE TABLE server_user_roles (
    user_id    TEXT    NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (
                   length(role) BETWEEN 1 AND 64
                   AND role NOT GLOB '*[^a-z0-9_.-]*'
                   AND substr(role, 1, 1) GLOB '[a-z0-9]'
               ),
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, role)
) STRICT;

-- The role new users get (one row, written at start-up from --default-role).
CREATE TABLE server_role_settings (
    id           INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    default_role TEXT    NOT NULL CHECK (
                     length(default_role) BETWEEN 1 AND 64
                     AND default_role NOT GLOB '*[^a-z0-9_.-]*'
                     AND substr(default_role, 1, 1) GLOB '[a-z0-9]'
                 )
) STRICT;

-- A new user gets the default role in the transaction that creates it.
CREATE TRIGGER server_users_default_role AFTER INSERT ON server_users
BEGIN
    INSERT OR IGNORE INTO server_user_roles (user_id, role, granted_at)
    SELECT NEW.id, default_role, CAST(unixepoch('subsec') * 1000000 AS INTEGER)
    FROM server_role_settings WHERE id = 1;
END;
