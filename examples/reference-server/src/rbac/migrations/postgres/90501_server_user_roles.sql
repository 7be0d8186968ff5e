-- The reference server's roles and orders own migration versions 90501-90599.
--
-- Users' roles: one row per (user, role), read on every request. Role names follow
-- finsec-rbac's grammar. Times are unix microseconds, UTC.
CREATE TABLE server_user_roles (
    user_id    UUID   NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    role       TEXT   NOT NULL CHECK (role ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- The role new users get (one row, written at start-up from --default-role).
CREATE TABLE server_role_settings (
    id           SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    default_role TEXT     NOT NULL CHECK (default_role ~ '^[a-z0-9][a-z0-9_.-]{0,63}$')
);

-- A new user gets the default role in the transaction that creates it.
CREATE FUNCTION server_user_default_role() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO server_user_roles (user_id, role, granted_at)
    SELECT NEW.id, default_role, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
    FROM server_role_settings WHERE id = 1
    ON CONFLICT DO NOTHING;
    RETURN NEW;
END
$$;

CREATE TRIGGER server_users_default_role AFTER INSERT ON server_users
    FOR EACH ROW EXECUTE FUNCTION server_user_default_role();
