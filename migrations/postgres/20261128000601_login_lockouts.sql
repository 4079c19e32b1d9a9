-- Exponential lockout for failed logins: how many lockouts in a row a key has
-- had, and until when it is locked. The lock is set by one conditional UPDATE
-- (see Store::lock_login_failures), so instances never double-lock.
ALTER TABLE login_failures ADD COLUMN lockouts bigint NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN locked_until timestamptz;
