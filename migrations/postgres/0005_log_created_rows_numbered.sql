-- A group of creates logs its rows with their positions at once, instead of the logging
-- trigger writing each row unnumbered and urbantile_number_mine() numbering them after:
-- every log row was written twice (and indexed twice), and the trigger entered PL/pgSQL
-- once per feature. The INSERT of the features runs first with the trigger off (the
-- `urbantile.bulk` flag its WHEN clause reads); then the sequencer's advisory lock, held
-- until this statement's commit as before, the counter, one INSERT of the log rows with
-- positions in id order, the counter's move and the notification. The lock is taken after
-- the features are written, so it is held only for numbering and the commit: positions
-- still commit in order, readers still see a prefix, and a rollback takes its rows and the
-- counter's move back with it, leaving no gap. The rows logged are those the trigger would
-- log (a `create` with the geometry's extent, the writer as origin). Same signature and
-- result as before (0004): the log rows with their positions, in position order.
CREATE OR REPLACE FUNCTION urbantile_create(layer_id text, writer bigint, geoms bytea[],
                                            props text[], starts bigint[], ends bigint[],
                                            owners text[])
RETURNS SETOF changes LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    now_ms bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
    ids bigint[];
    boxes box3d[];
    last bigint;
BEGIN
    PERFORM set_config('urbantile.bulk', 'on', true);
    WITH created AS (
        INSERT INTO features (layer, geom, properties, t_start, t_end, owner)
        SELECT layer_id, ST_GeomFromWKB(g, 4326), p::jsonb, s, e, o
        FROM unnest(geoms, props, starts, ends, owners) AS t(g, p, s, e, o)
        RETURNING id, geom::box3d AS extent)
    SELECT array_agg(id ORDER BY id), array_agg(extent ORDER BY id) INTO ids, boxes
    FROM created;
    PERFORM set_config('urbantile.bulk', 'off', true);
    IF ids IS NULL THEN
        RETURN;
    END IF;
    -- 0x757262740001, the sequencer's key (0001_store.sql).
    PERFORM pg_advisory_xact_lock(129134138490881);
    SELECT last_pos INTO last FROM change_counter;
    UPDATE change_counter SET last_pos = last + cardinality(ids);
    PERFORM pg_notify('urbantile_changes', (last + cardinality(ids))::text);
    INSERT INTO changes (pos, layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin)
    SELECT last + n, layer_id, id, 'create', ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b),
           now_ms, writer
    FROM unnest(ids, boxes) WITH ORDINALITY AS t(id, b, n);
    RETURN QUERY SELECT * FROM changes
                 WHERE pos > last AND pos <= last + cardinality(ids) ORDER BY pos;
END $$;
