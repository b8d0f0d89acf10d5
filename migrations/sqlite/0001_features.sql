-- Every layer's features in one table. Geometry is WKB in WGS84 lon/lat (EPSG:4326); the
-- bounding box and validity interval are copied into columns so that SQL can filter on them
-- without decoding geometry or JSON.
CREATE TABLE features (
    id          INTEGER PRIMARY KEY,
    layer       TEXT    NOT NULL,
    geom        BLOB    NOT NULL,
    properties  TEXT    NOT NULL,
    min_x       REAL    NOT NULL,
    min_y       REAL    NOT NULL,
    max_x       REAL    NOT NULL,
    max_y       REAL    NOT NULL,
    t_start     INTEGER,
    t_end       INTEGER,
    version     INTEGER NOT NULL DEFAULT 1
);

CREATE INDEX features_by_layer ON features (layer, id);
