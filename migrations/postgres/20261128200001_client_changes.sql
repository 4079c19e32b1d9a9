-- A counter that every change to `clients` moves, in the same transaction as
-- the change: a trigger, so no statement that changes a client can forget it.
-- Each running instance polls this one row and drops its cached clients when
-- it has moved (see Services::poll_client_changes).
CREATE TABLE change_markers (
    name    text PRIMARY KEY,
    version bigint NOT NULL
);
INSERT INTO change_markers (name, version) VALUES ('clients', 0);

CREATE FUNCTION clients_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'clients';
    RETURN NULL;
END
$$;

-- Per row, so a statement that changes nothing moves nothing; TRUNCATE has
-- no rows and is caught per statement.
CREATE TRIGGER clients_changed
    AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION clients_changed();
CREATE TRIGGER clients_truncated
    AFTER TRUNCATE ON clients
    FOR EACH STATEMENT EXECUTE FUNCTION clients_changed();
