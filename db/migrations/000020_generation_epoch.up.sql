-- The data generation gains what lets API instances keep more than one answer per generation:
--
-- epoch: a random value drawn when the counter is (re)created. A restore, or a migrate down
-- and up, starts the counter again at 1; an instance that cached answers at generation 7 of
-- the old counter must not serve them at generation 7 of the new one. The API compares the
-- epoch (with the table's OID and the server's start time, which change on a logical and a
-- physical restore) and drops everything it holds when it differs.
--
-- tree_generation: moves only when ports or regions change, so the port and region tree an
-- API instance resolves codes with in memory is reloaded when the tree changes, not on every
-- price batch. The triggers of 000005 keep advancing generation for every change as before.
ALTER TABLE data_generation ADD COLUMN IF NOT EXISTS epoch uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE data_generation ADD COLUMN IF NOT EXISTS tree_generation bigint NOT NULL DEFAULT 1;

CREATE OR REPLACE FUNCTION bump_tree_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_generation SET tree_generation = tree_generation + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER ports_bump_tree_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ports
    FOR EACH STATEMENT EXECUTE FUNCTION bump_tree_generation();
CREATE TRIGGER regions_bump_tree_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON regions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_tree_generation();
ALTER TABLE ports ENABLE ALWAYS TRIGGER ports_bump_tree_generation;
ALTER TABLE regions ENABLE ALWAYS TRIGGER regions_bump_tree_generation;
