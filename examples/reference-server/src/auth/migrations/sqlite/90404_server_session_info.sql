-- One row per session (refresh family), for `GET /sessions`: when it began (the login),
-- when it last got a token (the login or its latest refresh), and the client address and
-- user agent of that request. `ended_at` is set when the server ends the session (logout,
-- logout everywhere, `DELETE /sessions/{id}`, a password change, enabling the second
-- factor, refresh-token reuse). Rows are purged once idle for longer than the idle timeout.
CREATE TABLE server_session_info (
    family       TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    client_ip    TEXT,
    user_agent   TEXT    CHECK (length(user_agent) <= 256),
    ended_at     INTEGER
) STRICT;

CREATE INDEX server_session_info_user ON server_session_info (user_id, created_at);
CREATE INDEX server_session_info_used ON server_session_info (last_used_at);
