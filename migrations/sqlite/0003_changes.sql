-- Live edits. Feature ids are never reused (AUTOINCREMENT), so that an id names one
-- feature for good, in tiles, in feature URLs and in the change log. `version` counts the
-- edits of a feature (0 as ingested).
CREATE TABLE features_v3 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    layer       TEXT    NOT NULL,
    geom        BLOB    NOT NULL,
    properties  TEXT    NOT NULL,
    min_x       REAL    NOT NULL,
    min_y       REAL    NOT NULL,
    max_x       REAL    NOT NULL,
    max_y       REAL    NOT NULL,
    t_start     INTEGER,
    t_end       INTEGER,
    version     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO features_v3
    SELECT id, layer, geom, properties, min_x, min_y, max_x, max_y, t_start, t_end, 0 FROM features;
DROP TABLE features;
ALTER TABLE features_v3 RENAME TO features;
CREATE INDEX features_by_layer ON features (layer, id);

-- The change log: one row per feature created, replaced, updated or deleted, and one
-- `reload` row per bulk write to a layer (ingest, --replace). Written in the same transaction
-- as the change itself, so the log never misses or invents an edit. `seq` is the event id of
-- `GET /changes`; servers sharing the store follow it to update their indexes and caches.
-- The bounding box is the union of the feature's old and new extent (NULL when unknown).
-- `origin` is the store handle that wrote the change (0: the command line).
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    layer       TEXT    NOT NULL,
    feature_id  INTEGER,
    kind        TEXT    NOT NULL,
    min_x       REAL,
    min_y       REAL,
    max_x       REAL,
    max_y       REAL,
    at_ms       INTEGER NOT NULL,
    origin      INTEGER NOT NULL
);
