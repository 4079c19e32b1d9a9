-- latchkey schema, PostgreSQL flavour (native uuid and timestamptz).
CREATE TABLE users (
    id            uuid PRIMARY KEY,
    email         text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL
);

CREATE TABLE clients (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('public', 'confidential')),
    secret_hash bytea,
    grants      text NOT NULL,
    scopes      text NOT NULL,
    audience    text,
    cookie_mode boolean NOT NULL DEFAULT false,
    origins     text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL
);

-- One row per login. The refresh-token chain is the counter `generation`:
-- tokens are derived from (secret, id, generation), never stored.
CREATE TABLE sessions (
    id             uuid PRIMARY KEY,
    user_id        uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id      uuid NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope          text NOT NULL,
    created_at     timestamptz NOT NULL,
    last_used_at   timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    generation     bigint NOT NULL DEFAULT 0,
    rotated_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_last_used_at ON sessions (last_used_at);
CREATE INDEX sessions_revoked_at ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE audit_events (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL,
    kind       text NOT NULL,
    user_id    uuid,
    client_id  uuid,
    session_id uuid,
    reason     text,
    address    text
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user_id ON audit_events (user_id, at);

CREATE TABLE login_failures (
    key               text PRIMARY KEY,
    failures          bigint NOT NULL,
    window_started_at timestamptz NOT NULL
);
