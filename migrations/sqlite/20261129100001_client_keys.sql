-- A confidential client may authenticate with a signed assertion instead of
-- a secret (`private_key_jwt`, RFC 7523 §2.2). The method is kept on the row
-- with where its public keys come from: a JWKS URL fetched by the server
-- (`jwks_uri`), or a JWKS given at registration (`jwks`, JSON text of
-- `{"keys": [...]}`, public members only). Such a client has no secret.
ALTER TABLE clients ADD COLUMN auth_method TEXT NOT NULL DEFAULT 'client_secret'
    CHECK (auth_method IN ('none', 'client_secret', 'private_key_jwt'));
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN jwks TEXT;
UPDATE clients SET auth_method = 'none' WHERE kind = 'public';
