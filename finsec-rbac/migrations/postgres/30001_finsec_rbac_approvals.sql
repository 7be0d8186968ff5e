-- finsec-rbac owns migration versions 30001-30999.
--
-- Maker-checker approval requests and their approvals. A request is bound to its initiator,
-- action and subject; approvals are one row per (request, approver), so a quorum counts
-- each approver once; consumed_at is set once, when the approval is used.
-- Timestamps are unix time in microseconds, UTC (to_timestamp(created_at / 1e6) shows them).
-- Rows are never deleted by finsec-rbac.
CREATE TABLE finsec_rbac_approval_requests (
    id          TEXT     NOT NULL PRIMARY KEY CHECK (octet_length(id) = 32),
    initiator   TEXT     NOT NULL CHECK (octet_length(initiator) BETWEEN 1 AND 256),
    action      TEXT     NOT NULL CHECK (octet_length(action) BETWEEN 1 AND 128),
    subject     TEXT     NOT NULL CHECK (octet_length(subject) BETWEEN 1 AND 256),
    approver    TEXT     NOT NULL CHECK (octet_length(approver) BETWEEN 1 AND 128),
    quorum      SMALLINT NOT NULL CHECK (quorum BETWEEN 1 AND 16),
    created_at  BIGINT   NOT NULL,
    expires_at  BIGINT   NOT NULL,
    consumed_at BIGINT,
    CONSTRAINT finsec_rbac_approval_requests_window CHECK (expires_at > created_at)
);

-- seq is the order approvals were recorded.
CREATE TABLE finsec_rbac_approvals (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id  TEXT   NOT NULL REFERENCES finsec_rbac_approval_requests (id),
    approver    TEXT   NOT NULL CHECK (octet_length(approver) BETWEEN 1 AND 256),
    approved_at BIGINT NOT NULL,
    CONSTRAINT finsec_rbac_approvals_once UNIQUE (request_id, approver)
);
