-- The user of each session row, so every session of a user can be ended at once (log out
-- everywhere, enabling the second factor). Rows from before this column have none; they
-- are purged with their tokens.
ALTER TABLE server_sessions ADD COLUMN user_id TEXT;
CREATE INDEX server_sessions_user ON server_sessions (user_id, family);
