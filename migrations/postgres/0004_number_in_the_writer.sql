-- A writer of urbantile numbers its own log rows as the last statement of its transaction,
-- instead of a sequencer run after its commit: one round trip and one commit fewer on the
-- path of every edit. It takes the sequencer's advisory lock (transaction-level), reads the
-- counter, gives its rows the next positions in id order, moves the counter and notifies
-- (delivered at commit). The lock is held until the writer's COMMIT, so the next holder,
-- writer or sequencer, reads the counter only once this transaction's positions are
-- visible: positions still commit in order, readers still see a prefix, and a rollback
-- takes its positions and the counter's move back with it, leaving no gap. The sequencer
-- (`urbantile_sequence()`) goes on numbering what others write in SQL. Returns this
-- transaction's log rows with their positions, in position order; nothing, without the
-- lock, when it logged none.
CREATE FUNCTION urbantile_number_mine() RETURNS SETOF changes LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    me xid8 := pg_current_xact_id_if_assigned();
    last bigint;
    given bigint;
BEGIN
    IF me IS NULL OR NOT EXISTS (SELECT 1 FROM changes WHERE pos IS NULL AND xid = me) THEN
        RETURN;
    END IF;
    -- 0x757262740001, the sequencer's key (0001_store.sql).
    PERFORM pg_advisory_xact_lock(129134138490881);
    SELECT last_pos INTO last FROM change_counter;
    WITH next AS (SELECT id, row_number() OVER (ORDER BY id) AS n
                  FROM changes WHERE pos IS NULL AND xid = me),
         numbered AS (UPDATE changes c SET pos = last + next.n FROM next
                      WHERE c.id = next.id RETURNING 1)
    SELECT count(*) INTO given FROM numbered;
    UPDATE change_counter SET last_pos = last + given;
    PERFORM pg_notify('urbantile_changes', (last + given)::text);
    RETURN QUERY SELECT * FROM changes WHERE pos > last AND pos <= last + given ORDER BY pos;
END $$;

-- Creates of one layer in one statement, which is its own transaction (a group commit of
-- single-feature creates, src/dataset/live/group.rs): the session flags the logging trigger
-- reads, one INSERT of every row, each logged as its own creation, and the numbering
-- above, whose lock the statement's own commit releases. One round trip for the whole
-- write. Identities are drawn in the order unnest yields the rows, so the created ids,
-- sorted, are in the order of the arrays. Returns the log rows with their positions.
CREATE FUNCTION urbantile_create(layer_id text, writer bigint, geoms bytea[], props text[],
                                 starts bigint[], ends bigint[], owners text[])
RETURNS SETOF changes LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM set_config('urbantile.origin', writer::text, true),
            set_config('urbantile.bulk', 'off', true);
    INSERT INTO features (layer, geom, properties, t_start, t_end, owner)
    SELECT layer_id, ST_GeomFromWKB(g, 4326), p::jsonb, s, e, o
    FROM unnest(geoms, props, starts, ends, owners) AS t(g, p, s, e, o);
    RETURN QUERY SELECT * FROM urbantile_number_mine();
END $$;
