-- The inventory database: run by db.py at every start, so it only adds
-- what is missing.
CREATE TABLE IF NOT EXISTS items (name TEXT PRIMARY KEY, stock INTEGER NOT NULL);
INSERT OR IGNORE INTO items VALUES ('widget', 12), ('gadget', 3), ('gizmo', 7);
