-- RFC 9449 §10: an authorization request may name the DPoP key (its RFC 7638
-- thumbprint) that must redeem the code; a code stolen on its way back
-- through the browser is then useless without that key.
ALTER TABLE authorization_codes ADD COLUMN dpop_jkt TEXT;
