-- Idempotency-Key on POST /orders: a retried request with the same key returns the order
-- the first one placed. The key is the caller's, so it is unique per owner; the digest is
-- SHA-256 of the first request's body, to refuse the key's reuse for another order.
ALTER TABLE server_orders ADD COLUMN idempotency_key TEXT
    CHECK (length(idempotency_key) BETWEEN 1 AND 255);
ALTER TABLE server_orders ADD COLUMN request_sha256 BLOB
    CHECK (length(request_sha256) = 32);
CREATE UNIQUE INDEX server_orders_idempotency ON server_orders (owner, idempotency_key);
