-- An admin client (`clients create --admin`) may obtain the `latchkey:admin`
-- scope through client_credentials and so call the admin API; no other
-- client can, whatever its scopes say. Set at creation only.
ALTER TABLE clients ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;
-- The admin API pages clients and users in (created_at, id) order.
CREATE INDEX clients_created_at_id ON clients (created_at, id);
CREATE INDEX users_created_at_id ON users (created_at, id);
