-- A user's orders and fills in id order, for the pages of a GDPR export (and of an
-- erasure's count), without sorting every row of the user for each page.
CREATE INDEX IF NOT EXISTS server_orders_owner_id ON server_orders (owner, id);
CREATE INDEX IF NOT EXISTS server_executions_owner ON server_executions (owner, id);
