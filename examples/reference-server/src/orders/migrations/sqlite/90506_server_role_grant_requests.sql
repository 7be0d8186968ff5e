-- Kept with the orders migrations for their order: versions run in capability order, and
-- the roles capability owns only 90501.
-- Role grants over HTTP need two people: an admin requests a grant, a second admin (neither
-- the requester nor the user receiving the role) approves it before it expires, and only
-- then is the role added, in the same transaction. Times are unix microseconds, UTC.
CREATE TABLE server_role_grant_requests (
    id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    user_id      TEXT    NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    role         TEXT    NOT NULL CHECK (length(role) BETWEEN 1 AND 64),
    requested_by TEXT    NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    requested_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    approved_by  TEXT    REFERENCES server_users (id) ON DELETE SET NULL,
    approved_at  INTEGER
) STRICT;

CREATE INDEX server_role_grant_requests_user ON server_role_grant_requests (user_id);
