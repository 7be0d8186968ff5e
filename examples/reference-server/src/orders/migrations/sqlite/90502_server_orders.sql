-- Orders. Ids are UUIDv7 text; quantity and limit_price are validated decimal text; notes
-- are sanitised HTML; a pending order always names its approval request. Times are unix
-- microseconds, UTC.
CREATE TABLE server_orders (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    owner       TEXT    NOT NULL REFERENCES server_users (id),
    account_id  TEXT    NOT NULL CHECK (length(account_id) BETWEEN 1 AND 64),
    symbol      TEXT    NOT NULL CHECK (length(symbol) BETWEEN 1 AND 64),
    side        TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    order_type  TEXT    NOT NULL CHECK (order_type IN ('market', 'limit')),
    quantity    TEXT    NOT NULL CHECK (length(quantity) BETWEEN 1 AND 64),
    limit_price TEXT             CHECK (length(limit_price) BETWEEN 1 AND 64),
    notes       TEXT,
    status      TEXT    NOT NULL CHECK (
                    status IN ('accepted', 'pending_approval', 'rejected', 'expired')
                ),
    approval_id TEXT    UNIQUE CHECK (length(approval_id) = 32),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK ((order_type = 'limit') = (limit_price IS NOT NULL)),
    CHECK (status <> 'pending_approval' OR approval_id IS NOT NULL)
) STRICT;

CREATE INDEX server_orders_owner ON server_orders (owner, created_at);
