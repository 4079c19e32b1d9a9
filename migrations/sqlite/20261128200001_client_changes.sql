-- A counter that every change to `clients` moves, in the same transaction as
-- the change: triggers, so no statement that changes a client can forget it.
-- Each running instance polls this one row and drops its cached clients when
-- it has moved (see Services::poll_client_changes).
CREATE TABLE change_markers (
    name    TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO change_markers (name, version) VALUES ('clients', 0);

CREATE TRIGGER clients_changed_on_insert AFTER INSERT ON clients
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'clients';
END;

CREATE TRIGGER clients_changed_on_update AFTER UPDATE ON clients
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'clients';
END;

CREATE TRIGGER clients_changed_on_delete AFTER DELETE ON clients
BEGIN
    UPDATE change_markers SET version = version + 1 WHERE name = 'clients';
END;
