-- A TRUNCATE of `features` (by psql or an ETL job emptying the table) fires no row
-- trigger, so it was not in the change log and replicas kept serving what it removed. A
-- statement trigger, run before the rows go, logs one `reload` per layer that has rows,
-- with the layer's extent, in the truncating transaction.
CREATE FUNCTION urbantile_log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    origin bigint := coalesce(nullif(current_setting('urbantile.origin', true), ''), '0')::bigint;
BEGIN
    INSERT INTO changes (layer, feature_id, kind, min_x, min_y, max_x, max_y, at_ms, origin)
    SELECT layer, NULL, 'reload', ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e),
           (extract(epoch FROM clock_timestamp()) * 1000)::bigint, origin
    FROM (SELECT layer, ST_Extent(geom)::box3d AS e FROM features GROUP BY layer) AS l;
    PERFORM pg_notify('urbantile_changes', '');
    RETURN NULL;
END $$;
CREATE TRIGGER features_truncate_log BEFORE TRUNCATE ON features
    FOR EACH STATEMENT EXECUTE FUNCTION urbantile_log_truncate();
