-- Trading-account entitlements: a user may place and read orders only for the accounts
-- listed here. One row per (user, account); granted_by is the admin who granted it (NULL
-- when an operator granted it from the command line). Times are unix microseconds, UTC.
CREATE TABLE server_account_entitlements (
    user_id    TEXT    NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    account_id TEXT    NOT NULL CHECK (
                   length(account_id) BETWEEN 1 AND 64
                   AND account_id NOT GLOB '*[^A-Za-z0-9_-]*'
               ),
    granted_by TEXT    REFERENCES server_users (id) ON DELETE SET NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, account_id)
) STRICT;

CREATE INDEX server_account_entitlements_account
    ON server_account_entitlements (account_id);
