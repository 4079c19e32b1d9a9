-- A reset or verification request is queued as it arrives, whether or not the
-- address has an account: an outbox row naming what was asked (`request`) with
-- empty bodies. The sender resolves it off the request path: it mints the
-- token and writes the message into the row, or deletes the row when no
-- account should get mail. Rows with `request` NULL are composed messages.
ALTER TABLE outbox ADD COLUMN request TEXT
    CHECK (request IN ('verify_email', 'reset_password'));
