-- Verified addresses, single-use email tokens, and the outbox of mail to send.
-- Times are integer milliseconds since the epoch, uuids hyphenated text.
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;

-- Email-verification and password-reset tokens. Only the SHA-256 digest of a
-- token is kept, so a dump of this table cannot be turned into a link. A reset
-- token is bound to the password hash it was issued under: any password change
-- makes it unusable, decided in the consuming UPDATE itself.
CREATE TABLE email_tokens (
    digest     BLOB PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    bound_hash TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX email_tokens_user_id ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

-- Mail waiting to be sent. SQLite has one writer at a time, so the claiming
-- UPDATE ... WHERE id IN (SELECT ... LIMIT n) is atomic against every other
-- sender; the bodies are blanked once the row is sent or given up.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body_text       TEXT NOT NULL,
    body_html       TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claim           TEXT,
    claimed_until   INTEGER,
    sent_at         INTEGER,
    failed_at       INTEGER,
    last_error      TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created_at ON outbox (created_at);
