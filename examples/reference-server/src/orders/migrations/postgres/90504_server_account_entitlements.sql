-- Trading-account entitlements: a user may place and read orders only for the accounts
-- listed here. One row per (user, account); granted_by is the admin who granted it (NULL
-- when an operator granted it from the command line). Times are unix microseconds, UTC.
CREATE TABLE server_account_entitlements (
    user_id    UUID   NOT NULL REFERENCES server_users (id) ON DELETE CASCADE,
    account_id TEXT   NOT NULL CHECK (account_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    granted_by UUID   REFERENCES server_users (id) ON DELETE SET NULL,
    granted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, account_id)
);

CREATE INDEX server_account_entitlements_account
    ON server_account_entitlements (account_id);
