-- Users whose processing is restricted (GDPR Art. 18): they cannot log in or use API keys
-- until the restriction is lifted. Times are unix microseconds.
CREATE TABLE server_gdpr_restrictions (
    user_id TEXT    NOT NULL PRIMARY KEY REFERENCES server_users (id),
    since   INTEGER NOT NULL
) STRICT;
