-- finsec-crypto owns migration versions 10001-10999.
--
-- One row per data subject. While the key exists, wrapped_key holds it wrapped by the KEK
-- version (kek_name, kek_version). Shredding sets wrapped_key to NULL and destroyed_at to the
-- time of erasure; the row stays as a tombstone so the subject never gets a new key. A
-- tombstone written for a subject that never had a key has NULL kek columns.
-- Timestamps are unix time in microseconds, UTC (to_timestamp(created_at / 1e6) shows them).
-- COLLATE "C": subject ids sort by their bytes, the order keyset pagination relies on.
CREATE TABLE finsec_subject_keys (
    subject_id   TEXT COLLATE "C" NOT NULL PRIMARY KEY
                 CHECK (octet_length(subject_id) BETWEEN 1 AND 128),
    kek_name     TEXT,
    kek_version  BIGINT CHECK (kek_version BETWEEN 1 AND 4294967295),
    wrapped_key  BYTEA  CHECK (octet_length(wrapped_key) BETWEEN 1 AND 1024),
    created_at   BIGINT NOT NULL,
    destroyed_at BIGINT,
    CONSTRAINT finsec_subject_keys_state CHECK (
        (destroyed_at IS NULL AND wrapped_key IS NOT NULL
            AND kek_name IS NOT NULL AND kek_version IS NOT NULL)
        OR (destroyed_at IS NOT NULL AND wrapped_key IS NULL)
    )
);

-- Keyset pagination over active keys (re-wrapping) skips tombstones.
CREATE INDEX finsec_subject_keys_active
    ON finsec_subject_keys (subject_id) WHERE destroyed_at IS NULL;
