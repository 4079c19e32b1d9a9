-- Authorization code flow: where clients may be redirected, whether they skip
-- consent, the browser sessions at latchkey, single-use codes and remembered
-- consents.
ALTER TABLE clients ADD COLUMN redirect_uris text NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris text NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN first_party boolean NOT NULL DEFAULT false;

-- A login at latchkey's own page. The cookie holds a random secret; the row
-- keeps only its SHA-256 (hex), so a database dump cannot resume a session.
CREATE TABLE browser_sessions (
    id_hash      text PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    auth_time    timestamptz NOT NULL,
    -- The user's credentials version at login: a password change, disabling
    -- or revoking every session ends the browser session too.
    credentials_version bigint NOT NULL,
    last_seen_at timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX browser_sessions_user_id ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at);

-- Authorization codes, stored only as their SHA-256 (hex). `used_at` is set by
-- one conditional UPDATE, so of two redemptions exactly one wins; `session_id`
-- names the session the winner started, so a replay can revoke it.
CREATE TABLE authorization_codes (
    code_hash      text PRIMARY KEY,
    client_id      uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri   text NOT NULL,
    code_challenge text NOT NULL,
    nonce          text,
    scope          text NOT NULL,
    auth_time      timestamptz NOT NULL,
    credentials_version bigint NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    session_id     uuid
);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

-- What a user allowed a third-party client, one row per user and client.
CREATE TABLE consents (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope      text NOT NULL,
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
