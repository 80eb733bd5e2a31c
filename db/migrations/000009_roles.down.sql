-- The roles stay (other databases of the cluster may use them); this database stops granting.
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM rates_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM rates_loader;
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM rates_reader, rates_loader;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM rates_loader;
REVOKE USAGE ON SCHEMA public FROM rates_reader, rates_loader;
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM rates_reader, rates_loader', current_database());
END
$$;
DROP FUNCTION IF EXISTS rates_grant_roles();
