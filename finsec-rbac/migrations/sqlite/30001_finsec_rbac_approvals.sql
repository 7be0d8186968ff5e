-- finsec-rbac owns migration versions 30001-30999.
--
-- Maker-checker approval requests and their approvals. A request is bound to its initiator,
-- action and subject; approvals are one row per (request, approver), so a quorum counts
-- each approver once; consumed_at is set once, when the approval is used.
-- Timestamps are unix time in microseconds, UTC. Rows are never deleted by finsec-rbac.
CREATE TABLE finsec_rbac_approval_requests (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 32),
    initiator   TEXT    NOT NULL CHECK (length(CAST(initiator AS BLOB)) BETWEEN 1 AND 256),
    action      TEXT    NOT NULL CHECK (length(CAST(action AS BLOB)) BETWEEN 1 AND 128),
    subject     TEXT    NOT NULL CHECK (length(CAST(subject AS BLOB)) BETWEEN 1 AND 256),
    approver    TEXT    NOT NULL CHECK (length(CAST(approver AS BLOB)) BETWEEN 1 AND 128),
    quorum      INTEGER NOT NULL CHECK (quorum BETWEEN 1 AND 16),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL CHECK (expires_at > created_at),
    consumed_at INTEGER
) STRICT;

-- rowid order is the order approvals were recorded.
CREATE TABLE finsec_rbac_approvals (
    request_id  TEXT    NOT NULL REFERENCES finsec_rbac_approval_requests (id),
    approver    TEXT    NOT NULL CHECK (length(CAST(approver AS BLOB)) BETWEEN 1 AND 256),
    approved_at INTEGER NOT NULL,
    UNIQUE (request_id, approver)
) STRICT;
