-- The newest access token of a session (refresh family), for the idle timeout: a refresh
-- more than the idle limit after the family's last token was issued ends the session.
CREATE INDEX server_sessions_family ON server_sessions (family, expires_at);
