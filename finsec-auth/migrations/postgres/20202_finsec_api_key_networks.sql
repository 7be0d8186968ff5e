-- The client networks an API key may be used from: a JSON array of CIDR strings (IPv4 or
-- IPv6, host bits cleared); '[]' for a key usable from anywhere, as every earlier key is.
ALTER TABLE finsec_api_keys ADD COLUMN networks TEXT NOT NULL DEFAULT '[]';
