-- A counter that moves whenever the data behind GET /rates changes, in the same transaction
-- as the change. API instances cache computed answers per generation: an answer cached under
-- an older generation is never served, so no read is stale once a seed or a batch commits.
-- Statement-level triggers keep every writer (seeder, ingest, manual SQL) honest without
-- each having to remember it.
CREATE TABLE IF NOT EXISTS data_generation (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation bigint  NOT NULL
);
INSERT INTO data_generation (generation) VALUES (1) ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION bump_data_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_generation SET generation = generation + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER prices_bump_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation();
CREATE TRIGGER ports_bump_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ports
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation();
CREATE TRIGGER regions_bump_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON regions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation();
