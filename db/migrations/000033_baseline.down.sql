-- Back to an empty database. The group roles stay (other databases of the cluster may use
-- them); this database stops granting to them.
BEGIN;
SET LOCAL lock_timeout = '5s';

ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM rates_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM rates_loader;
REVOKE ALL ON schema_migrations FROM rates_reader, rates_loader;
REVOKE USAGE ON SCHEMA public FROM rates_reader, rates_loader;
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM rates_reader, rates_loader', current_database());
END
$$;

DROP TABLE data_generation, price_daily, reference_changes, prices_displaced, prices, batches,
    seed_history, ports, regions;
DROP FUNCTION rates_grant_roles(), bump_data_generation(), bump_tree_generation(),
    price_daily_add(), price_daily_remove(), price_daily_clear(), batches_fill_content_key();

COMMIT;
