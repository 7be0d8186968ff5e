-- The user a natural-person client is (when they are one of the server's users): erasing
-- that user pseudonymises the client's MiFIR reports and forgets the client.
ALTER TABLE server_clients ADD COLUMN user_id TEXT;
CREATE INDEX server_clients_user ON server_clients (user_id);
