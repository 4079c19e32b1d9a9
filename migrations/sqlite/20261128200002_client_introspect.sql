-- Clients created with `clients create --introspect` may introspect any
-- token; every other client only tokens issued to it or for its audience
-- (RFC 7662 §4).
ALTER TABLE clients ADD COLUMN introspect BOOLEAN NOT NULL DEFAULT false;
