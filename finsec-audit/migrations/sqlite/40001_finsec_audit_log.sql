-- finsec-audit owns migration versions 40001-40999.
--
-- One Merkle audit log per database. finsec_audit_head holds the log's size; an append
-- raises it first, in the transaction that writes the events, so SQLite's write lock
-- orders concurrent writers and positions are never reused or skipped. Events are the
-- canonical bytes the log hashes (body) with their leaf hash; the other columns repeat
-- fields of the body for queries and are not hashed. finsec_audit_nodes holds the hashes
-- of the tree's complete subtrees above the leaves (level >= 1), so every proof reads
-- O(log n) rows. Times are unix microseconds, UTC. Nothing here is ever updated or deleted
-- by finsec-audit; `finsec-audit verify` finds any change made behind its back.
CREATE TABLE finsec_audit_head (
    id   INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    size INTEGER NOT NULL CHECK (size >= 0)
) STRICT;
INSERT INTO finsec_audit_head (id, size) VALUES (1, 0);

CREATE TABLE finsec_audit_events (
    idx           INTEGER NOT NULL PRIMARY KEY CHECK (idx >= 0),
    id            TEXT    NOT NULL UNIQUE CHECK (length(id) = 36),
    leaf          BLOB    NOT NULL CHECK (length(leaf) = 32),
    body          BLOB    NOT NULL CHECK (length(body) BETWEEN 1 AND 65536),
    at_us         INTEGER NOT NULL,
    action        TEXT    NOT NULL,
    outcome       TEXT    NOT NULL,
    actor_user    TEXT,
    actor_api_key TEXT,
    resource_type TEXT,
    resource_id   TEXT
) STRICT;
CREATE INDEX finsec_audit_events_at ON finsec_audit_events (at_us, idx);
CREATE INDEX finsec_audit_events_user ON finsec_audit_events (actor_user, idx);
CREATE INDEX finsec_audit_events_action ON finsec_audit_events (action, idx);
CREATE INDEX finsec_audit_events_resource ON finsec_audit_events (resource_type, resource_id, idx);

CREATE TABLE finsec_audit_nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- Signed checkpoint notes by tree size; digest is SHA-256 of the note, so a size can hold
-- several notes (cosignatures, or the evidence of a split view) and the key stays small.
CREATE TABLE finsec_audit_checkpoints (
    size   INTEGER NOT NULL CHECK (size >= 0),
    digest BLOB    NOT NULL CHECK (length(digest) = 32),
    note   TEXT    NOT NULL CHECK (length(CAST(note AS BLOB)) BETWEEN 1 AND 65536),
    PRIMARY KEY (size, digest)
) STRICT;
