-- Authorization code flow: where clients may be redirected, whether they skip
-- consent, the browser sessions at latchkey, single-use codes and remembered
-- consents. Times are milliseconds since the epoch.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 0;

-- A login at latchkey's own page. The cookie holds a random secret; the row
-- keeps only its SHA-256 (hex), so a database dump cannot resume a session.
CREATE TABLE browser_sessions (
    id_hash      TEXT PRIMARY KEY NOT NULL,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    INTEGER NOT NULL,
    -- The user's credentials version at login: a password change, disabling
    -- or revoking every session ends the browser session too.
    credentials_version INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX browser_sessions_user_id ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at);

-- Authorization codes, stored only as their SHA-256 (hex). `used_at` is set by
-- one conditional UPDATE, so of two redemptions exactly one wins; `session_id`
-- names the session the winner started, so a replay can revoke it.
CREATE TABLE authorization_codes (
    code_hash      TEXT PRIMARY KEY NOT NULL,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    nonce          TEXT,
    scope          TEXT NOT NULL,
    auth_time      INTEGER NOT NULL,
    credentials_version INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    session_id     TEXT
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

-- What a user allowed a third-party client, one row per user and client.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
