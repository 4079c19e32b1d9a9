-- A client can be suspended (`clients disable`) and given a new secret while
-- the previous one keeps working for an overlap (`clients rotate-secret`), so
-- a consumer can roll its deployments without downtime. Only digests are
-- kept, as for the current secret. Times in milliseconds, as elsewhere.
ALTER TABLE clients ADD COLUMN disabled_at INTEGER;
ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
