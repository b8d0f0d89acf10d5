-- The PostGIS store (src/store/postgis/): the same three tables as the SQLite store, with
-- PostgreSQL types, plus what lets several urbantile replicas (and other SQL clients) share
-- one database: a row version checked by conditional UPDATEs, triggers that log every edit,
-- and a sequencer that numbers the log densely after commit.
CREATE EXTENSION IF NOT EXISTS postgis;

-- Every layer's features. Ids are never reused (identity), so an id names one feature for
-- good. `version` counts a feature's edits (0 as ingested); a trigger bumps it on every
-- UPDATE, whoever makes it, and urbantile's writes are conditional on the version they read.
CREATE TABLE features (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    layer       text NOT NULL,
    geom        geometry(Geometry, 4326) NOT NULL,
    properties  jsonb NOT NULL,
    t_start     bigint,
    t_end       bigint,
    version     bigint NOT NULL DEFAULT 0,
    -- What urbantile can read back, so that an edit made in SQL that it could not decode is
    -- refused by the database instead of stopping every replica's feed at that change.
    CONSTRAINT properties_are_an_object CHECK (jsonb_typeof(properties) = 'object'),
    CONSTRAINT geometry_is_a_simple_feature CHECK (GeometryType(geom) IN (
        'POINT', 'MULTIPOINT', 'LINESTRING', 'MULTILINESTRING', 'POLYGON', 'MULTIPOLYGON')
        AND NOT ST_IsEmpty(geom))
);
CREATE INDEX features_by_layer ON features (layer, id);
CREATE INDEX features_geom ON features USING gist (geom);

-- Access keys: only a SHA-256 hash of each key is kept (see migrations/sqlite/0002).
CREATE TABLE api_keys (
    name         text PRIMARY KEY,
    key_hash     text NOT NULL UNIQUE,
    read_layers  text NOT NULL,
    write_layers text NOT NULL,
    created_at   bigint NOT NULL,
    revoked_at   bigint
);

-- The change log. A row is inserted in the transaction of the edit it records (by the
-- trigger below, or by urbantile for a bulk `reload`), with `pos` NULL. Identity values
-- commit out of order and rolled-back transactions leave holes in them, so `id` is not the
-- feed's position: the sequencer (`urbantile_sequence()` below) gives committed rows
-- dense positions 1, 2, 3... under an advisory lock, from `change_counter`, so that a
-- reader sees a gap-free prefix and a gap can only mean pruning.
CREATE TABLE changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pos         bigint UNIQUE,
    xid         xid8 NOT NULL DEFAULT pg_current_xact_id(),
    layer       text NOT NULL,
    feature_id  bigint,
    kind        text NOT NULL,
    min_x       double precision,
    min_y       double precision,
    max_x       double precision,
    max_y       double precision,
    at_ms       bigint NOT NULL,
    origin      bigint NOT NULL
);
CREATE INDEX changes_unsequenced ON changes (xid, id) WHERE pos IS NULL;

-- The last position given out; never goes back, even when pruning empties the log.
CREATE TABLE change_counter (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_pos bigint NOT NULL
);
INSERT INTO change_counter VALUES (true, 0);

-- The sequencer: gives dense positions to the log rows of committed transactions that have
-- none yet, and notifies the replicas; returns how many it numbered. One runs at a time
-- (the advisory lock, released at the end of the caller's transaction, after its commit is
-- visible). Each statement of a VOLATILE function takes a new snapshot at READ COMMITTED, so
-- the statements after the lock see everything the previous run committed; rows of
-- transactions still running are invisible and are numbered by a later run. Positions
-- thus come from one counter in the order of the runs: dense, never reused, the same for
-- every reader, and each reader's snapshot sees a prefix of them. One call is one round
-- trip, and the lock is never held across the network.
CREATE FUNCTION urbantile_sequence() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    last bigint;
    given bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM changes WHERE pos IS NULL) THEN
        RETURN 0;
    END IF;
    -- 0x757262740001 ("urbt" 1), the key src/store/postgis/mod.rs documents.
    PERFORM pg_advisory_xact_lock(129134138490881);
    SELECT last_pos INTO last FROM change_counter;
    WITH next AS (SELECT id, row_number() OVER (ORDER BY xid, id) AS n
                  FROM changes WHERE pos IS NULL),
         numbered AS (UPDATE changes c SET pos = last + next.n FROM next
                      WHERE c.id = next.id RETURNING 1)
    SELECT count(*) INTO given FROM numbered;
    IF given > 0 THEN
        UPDATE change_counter SET last_pos = last + given;
        PERFORM pg_notify('urbantile_changes', (last + given)::text);
    END IF;
    RETURN given;
END $$;

-- A writer's step after its commit, in one round trip: run the sequencer, then return its
-- own log rows (by id) with their positions (the function's own UPDATE is visible to it).
CREATE FUNCTION urbantile_sequence_then(wanted bigint[]) RETURNS SETOF changes
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM urbantile_sequence();
    RETURN QUERY SELECT * FROM changes WHERE id = ANY(wanted) AND pos IS NOT NULL ORDER BY pos;
END $$;

-- Every UPDATE makes a new version, so that a writer holding an older one fails its
-- conditional UPDATE instead of overwriting an edit it has not seen.
CREATE FUNCTION urbantile_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := OLD.version + 1;
    RETURN NEW;
END $$;
CREATE TRIGGER features_version BEFORE UPDATE ON features
    FOR EACH ROW EXECUTE FUNCTION urbantile_bump_version();

-- Logs every row change of `features`, urbantile's own and those made directly in SQL.
-- Session settings (all SET LOCAL, so they end with the transaction) tell it more:
--   urbantile.origin  the writing store handle (0 or unset: not urbantile);
--   urbantile.kind    'replace' or 'update' for an UPDATE (default 'update');
--   urbantile.bulk    'on' during an ingest, which logs one `reload` row itself.
-- A writer outside urbantile also wakes the replicas (urbantile's writers sequence their
-- rows right after commit, and the sequencer notifies).
CREATE FUNCTION urbantile_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    origin bigint := coalesce(nullif(current_setting('urbantile.origin', true), ''), '0')::bigint;
    kind text := coalesce(nullif(current_setting('urbantile.kind', true), ''), 'update');
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    o box3d;
    n box3d;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        o := OLD.geom::box3d;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        n := NEW.geom::box3d;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.layer = NEW.layer THEN
        INSERT INTO changes (layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin)
        VALUES (NEW.layer, NEW.id, kind,
                least(ST_XMin(o), ST_XMin(n)), least(ST_YMin(o), ST_YMin(n)),
                greatest(ST_XMax(o), ST_XMax(n)), greatest(ST_YMax(o), ST_YMax(n)),
                now_ms, origin);
    ELSE
        -- An INSERT, a DELETE, or an UPDATE that moves a feature to another layer: it
        -- leaves one layer and joins the other.
        -- By the operation, not by the box: an empty geometry has none, and its row's
        -- change must be logged all the same.
        IF TG_OP <> 'INSERT' THEN
            INSERT INTO changes (layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin)
            VALUES (OLD.layer, OLD.id, 'delete', ST_XMin(o), ST_YMin(o), ST_XMax(o), ST_YMax(o),
                    now_ms, origin);
        END IF;
        IF TG_OP <> 'DELETE' THEN
            INSERT INTO changes (layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin)
            VALUES (NEW.layer, NEW.id, 'create', ST_XMin(n), ST_YMin(n), ST_XMax(n), ST_YMax(n),
                    now_ms, origin);
        END IF;
    END IF;
    IF origin = 0 THEN
        PERFORM pg_notify('urbantile_changes', '');
    END IF;
    RETURN NULL;
END $$;
-- The WHEN clause skips bulk writes without entering PL/pgSQL for each row.
CREATE TRIGGER features_log AFTER INSERT OR UPDATE OR DELETE ON features
    FOR EACH ROW WHEN (current_setting('urbantile.bulk', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION urbantile_log_change();
