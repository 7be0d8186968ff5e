-- finsec-rbac controls: suspensions, blocked networks and trading halts, with who set and
-- lifted them; times are unix microseconds. The version row changes with every insert and
-- lift, so instances reload only when something changed.
CREATE TABLE IF NOT EXISTS finsec_rbac_controls (
    id                BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind              TEXT    NOT NULL CHECK (kind IN ('suspension', 'block', 'halt')),
    target            TEXT    NOT NULL,
    reason            TEXT    NOT NULL,
    set_by            TEXT    NOT NULL,
    set_at            BIGINT  NOT NULL,
    expires_at        BIGINT,
    lift_requested_by TEXT,
    lifted_by         TEXT,
    lifted_at         BIGINT
);
CREATE INDEX IF NOT EXISTS finsec_rbac_controls_active ON finsec_rbac_controls (lifted_at, id);
CREATE TABLE IF NOT EXISTS finsec_rbac_control_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT  NOT NULL
);
INSERT INTO finsec_rbac_control_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
