-- finsec-audit owns migration versions 40001-40999.
--
-- One Merkle audit log per schema. finsec_audit_head holds the log's size; an append
-- raises it first, in the transaction that writes the events, so the row lock orders
-- concurrent writers and positions are never reused or skipped. Events are the canonical
-- bytes the log hashes (body) with their leaf hash; the other columns repeat fields of
-- the body for queries and are not hashed. finsec_audit_nodes holds the hashes of the
-- tree's complete subtrees above the leaves (level >= 1), so every proof reads O(log n)
-- rows. Times are unix microseconds, UTC. Nothing here is ever updated or deleted by
-- finsec-audit; `finsec-audit verify` finds any change made behind its back.
CREATE TABLE finsec_audit_head (
    id   SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    size BIGINT   NOT NULL CHECK (size >= 0)
);
INSERT INTO finsec_audit_head (id, size) VALUES (1, 0);

CREATE TABLE finsec_audit_events (
    idx           BIGINT NOT NULL PRIMARY KEY CHECK (idx >= 0),
    id            TEXT   NOT NULL CHECK (octet_length(id) = 36),
    leaf          BYTEA  NOT NULL CHECK (octet_length(leaf) = 32),
    body          BYTEA  NOT NULL CHECK (octet_length(body) BETWEEN 1 AND 65536),
    at_us         BIGINT NOT NULL,
    action        TEXT   NOT NULL,
    outcome       TEXT   NOT NULL,
    actor_user    TEXT,
    actor_api_key TEXT,
    resource_type TEXT,
    resource_id   TEXT,
    CONSTRAINT finsec_audit_events_id UNIQUE (id)
);
CREATE INDEX finsec_audit_events_at ON finsec_audit_events (at_us, idx);
CREATE INDEX finsec_audit_events_user ON finsec_audit_events (actor_user, idx);
CREATE INDEX finsec_audit_events_action ON finsec_audit_events (action, idx);
CREATE INDEX finsec_audit_events_resource ON finsec_audit_events (resource_type, resource_id, idx);

CREATE TABLE finsec_audit_nodes (
    level SMALLINT NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   BIGINT   NOT NULL CHECK (idx >= 0),
    hash  BYTEA    NOT NULL CHECK (octet_length(hash) = 32),
    PRIMARY KEY (level, idx)
);

-- Signed checkpoint notes by tree size; digest is SHA-256 of the note, so a size can hold
-- several notes (cosignatures, or the evidence of a split view) and the key stays small.
CREATE TABLE finsec_audit_checkpoints (
    size   BIGINT NOT NULL CHECK (size >= 0),
    digest BYTEA  NOT NULL CHECK (octet_length(digest) = 32),
    note   TEXT   NOT NULL CHECK (octet_length(note) BETWEEN 1 AND 65536),
    PRIMARY KEY (size, digest)
);
