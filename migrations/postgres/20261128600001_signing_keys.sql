-- Signing keys and the refresh-token secret, shared by every instance through
-- the store. Private parts are sealed (AES-256-GCM under a key-encryption key
-- that never reaches the database): `sealed` is nonce || ciphertext || tag,
-- and `kek_id` names the KEK that sealed it, so a wrong KEK is refused by
-- name before any decryption is tried. The schedule columns are the
-- manifest's: a key's state is derived from them and the time, as before.
CREATE TABLE signing_keys (
    kid          text PRIMARY KEY,
    algorithm    text NOT NULL,
    sealed       bytea NOT NULL,
    kek_id       text NOT NULL,
    published_at timestamptz NOT NULL,
    activates_at timestamptz NOT NULL,
    retires_at   timestamptz,
    expires_at   timestamptz
);

-- One row per named secret (today only 'refresh'). Inserting the 'refresh'
-- row is what initialises a store's keys: its primary key lets exactly one
-- of several instances starting together create the first key.
CREATE TABLE key_secrets (
    name    text PRIMARY KEY,
    sealed  bytea NOT NULL,
    kek_id  text NOT NULL
);

-- The key ring's version: every change to either table moves it, in the
-- changing transaction, so instances poll one row to notice a rotation.
INSERT INTO change_markers (name, version) VALUES ('keys', 0);

CREATE FUNCTION keys_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'keys';
    RETURN NULL;
END
$$;

CREATE TRIGGER signing_keys_changed
    AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION keys_changed();
CREATE TRIGGER signing_keys_truncated
    AFTER TRUNCATE ON signing_keys
    FOR EACH STATEMENT EXECUTE FUNCTION keys_changed();
CREATE TRIGGER key_secrets_changed
    AFTER INSERT OR UPDATE OR DELETE ON key_secrets
    FOR EACH ROW EXECUTE FUNCTION keys_changed();
