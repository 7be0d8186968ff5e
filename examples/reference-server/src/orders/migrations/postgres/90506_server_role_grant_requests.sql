-- Kept with the orders migrations for their order: versions run in capability order, and
-- the roles capability owns only 90501.
-- Role grants over HTTP need two people: an admin requests a grant, a second admin (neither
-- the requester nor the user receiving the role) approves it before it expires, and only
-- then is the role added, in the same transaction. Times are unix microseconds, UTC.
CREATE TABLE server_role_grant_requests (
    id           UUID   NOT NULL PRIMARY KEY,
    user_id      UUID   NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    role         TEXT   NOT NULL CHECK (role ~ '^[a-z0-9][a-z0-9_.-]{0,63}$'),
    requested_by UUID   NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    requested_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    approved_by  UUID   REFERENCES server_users (id) ON DELETE SET NULL,
    approved_at  BIGINT
);

CREATE INDEX server_role_grant_requests_user ON server_role_grant_requests (user_id);
