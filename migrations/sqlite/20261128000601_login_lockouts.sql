-- Exponential lockout for failed logins: how many lockouts in a row a key has
-- had, and until when it is locked (milliseconds since the epoch). The lock is
-- set by one conditional UPDATE (see Store::lock_login_failures).
ALTER TABLE login_failures ADD COLUMN lockouts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE login_failures ADD COLUMN locked_until INTEGER;
