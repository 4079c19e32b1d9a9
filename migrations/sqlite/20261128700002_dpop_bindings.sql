-- DPoP (RFC 9449): the key a public client's session is bound to (its RFC 7638
-- thumbprint; every refresh must prove possession of it, decided in the
-- rotation's UPDATE), and clients that must send a proof with every grant.
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT;
ALTER TABLE clients ADD COLUMN require_dpop INTEGER NOT NULL DEFAULT 0;
