-- Least privilege for the processes that connect: the API reads, the worker loads, and only
-- the migration task (the owner, RDS's master user in AWS) changes the schema. These are group
-- roles without LOGIN; `rates migrate up` creates the login roles (DB_API_ROLE,
-- DB_WORKER_ROLE) with their passwords and makes them members. Roles belong to the whole
-- cluster, so creating them tolerates their existence (another database, a concurrent
-- migration) and going down never drops them.
DO $$
BEGIN
    CREATE ROLE rates_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
DO $$
BEGIN
    CREATE ROLE rates_loader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The one home of the grants. `rates migrate up` calls it again after every run, so a table a
-- later migration adds is covered even when that migration ran as another role than the one
-- whose default privileges are set below. A later migration that changes what a role may do
-- replaces this function.
CREATE OR REPLACE FUNCTION rates_grant_roles() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO rates_reader, rates_loader', current_database());
    -- The loader stages a batch in a temporary table.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO rates_loader', current_database());
    GRANT USAGE ON SCHEMA public TO rates_reader, rates_loader;
    -- GET /rates, /readyz and the answer cache's generation.
    GRANT SELECT ON regions, ports, price_daily, data_generation TO rates_reader;
    -- Every process checks at start that the schema suits it.
    GRANT SELECT ON schema_migrations TO rates_reader;
    -- Ingestion: every table, so tables added for it need no new grant; never the migration
    -- bookkeeping. Triggers on prices run as the loader and write price_daily and
    -- data_generation. Checking ports FOR KEY SHARE needs UPDATE on some column of ports.
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO rates_loader;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO rates_loader;
    REVOKE ALL ON schema_migrations FROM rates_loader;
    GRANT SELECT ON schema_migrations TO rates_loader;
END
$$;
SELECT rates_grant_roles();

-- Tables and sequences this owner creates later: the loader may use them at once.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO rates_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO rates_loader;
