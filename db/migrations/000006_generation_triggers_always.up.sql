-- The data-generation triggers must fire for every writer, including a batch load that runs
-- with session_replication_role = replica to replace per-row foreign key checks by one
-- set-based check (internal/ingest). ENABLE ALWAYS keeps them firing in that mode, and lets
-- the loader see that no trigger would be silenced.
ALTER TABLE prices ENABLE ALWAYS TRIGGER prices_bump_generation;
ALTER TABLE ports ENABLE ALWAYS TRIGGER ports_bump_generation;
ALTER TABLE regions ENABLE ALWAYS TRIGGER regions_bump_generation;
