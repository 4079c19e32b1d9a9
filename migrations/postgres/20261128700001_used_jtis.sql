-- Single-use JWT ids (DPoP proofs, client assertions), shared by every
-- instance: the primary key decides which of two racing uses is the first.
-- `jti` holds a SHA-256 digest (base64url) of the presented value, never the
-- value itself. Rows are purged in bounded batches once `expires_at` passed.
CREATE TABLE used_jtis (
    namespace text NOT NULL,
    jti text NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (namespace, jti)
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);
