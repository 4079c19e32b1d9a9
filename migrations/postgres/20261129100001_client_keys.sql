-- A confidential client may authenticate with a signed assertion instead of
-- a secret (`private_key_jwt`, RFC 7523 §2.2). The method is kept on the row
-- with where its public keys come from: a JWKS URL fetched by the server
-- (`jwks_uri`), or a JWKS given at registration (`jwks`, JSON text of
-- `{"keys": [...]}`, public members only). Such a client has no secret.
ALTER TABLE clients ADD COLUMN auth_method text NOT NULL DEFAULT 'client_secret';
ALTER TABLE clients ADD COLUMN jwks_uri text;
ALTER TABLE clients ADD COLUMN jwks text;
UPDATE clients SET auth_method = 'none' WHERE kind = 'public';
ALTER TABLE clients ADD CONSTRAINT clients_auth_method_check
    CHECK (auth_method IN ('none', 'client_secret', 'private_key_jwt'));
