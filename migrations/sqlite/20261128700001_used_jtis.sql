-- Single-use JWT ids (DPoP proofs, client assertions), shared by every
-- process on the file: the primary key decides which of two racing uses is
-- the first. `jti` holds a SHA-256 digest (base64url) of the presented value,
-- never the value itself. `expires_at` is milliseconds since the epoch; rows
-- are purged in bounded batches once it passed.
CREATE TABLE used_jtis (
    namespace TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, jti)
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);
