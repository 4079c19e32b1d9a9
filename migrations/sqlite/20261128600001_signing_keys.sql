-- Signing keys and the refresh-token secret, shared by every instance through
-- the store. Private parts are sealed (AES-256-GCM under a key-encryption key
-- that never reaches the database): `sealed` is nonce || ciphertext || tag,
-- and `kek_id` names the KEK that sealed it. Times are Unix milliseconds.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    algorithm    TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    kek_id       TEXT NOT NULL,
    published_at INTEGER NOT NULL,
    activates_at INTEGER NOT NULL,
    retires_at   INTEGER,
    expires_at   INTEGER
);

-- One row per named secret (today only 'refresh'); inserting the 'refresh'
-- row is what initialises a store's keys, exactly once.
CREATE TABLE key_secrets (
    name    TEXT PRIMARY KEY,
    sealed  BLOB NOT NULL,
    kek_id  TEXT NOT NULL
);

-- The key ring's version, moved by triggers in the changing transaction.
INSERT INTO change_markers (name, version) VALUES ('keys', 0);

CREATE TRIGGER signing_keys_changed_on_insert AFTER INSERT ON signing_keys
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'keys';
END;
CREATE TRIGGER signing_keys_changed_on_update AFTER UPDATE ON signing_keys
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'keys';
END;
CREATE TRIGGER signing_keys_changed_on_delete AFTER DELETE ON signing_keys
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'keys';
END;
CREATE TRIGGER key_secrets_changed_on_insert AFTER INSERT ON key_secrets
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'keys';
END;
CREATE TRIGGER key_secrets_changed_on_update AFTER UPDATE ON key_secrets
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'keys';
END;
