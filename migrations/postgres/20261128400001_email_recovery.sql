-- Verified addresses, single-use email tokens, and the outbox of mail to send.
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

-- Email-verification and password-reset tokens. Only the SHA-256 digest of a
-- token is kept, so a dump of this table cannot be turned into a link. A reset
-- token is bound to the password hash it was issued under: any password change
-- makes it unusable, decided in the consuming UPDATE itself.
CREATE TABLE email_tokens (
    digest     bytea PRIMARY KEY,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
    bound_hash text,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);
CREATE INDEX email_tokens_user_id ON email_tokens (user_id, purpose);
CREATE INDEX email_tokens_expires_at ON email_tokens (expires_at);

-- Mail waiting to be sent. A sender claims due rows for a lease (claim,
-- claimed_until) with FOR UPDATE SKIP LOCKED, so instances never take the
-- same row; the bodies are blanked once the row is sent or given up.
CREATE TABLE outbox (
    id              uuid PRIMARY KEY,
    recipient       text NOT NULL,
    subject         text NOT NULL,
    body_text       text NOT NULL,
    body_html       text NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    claim           uuid,
    claimed_until   timestamptz,
    sent_at         timestamptz,
    failed_at       timestamptz,
    last_error      text
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_created_at ON outbox (created_at);
