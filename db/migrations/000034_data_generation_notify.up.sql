-- API instances keep answers in memory for the current data generation and learn of a new one
-- from this notification instead of reading the generation for every request: a trigger on
-- data_generation itself signals the channel rates_data_generation. NOTIFY is delivered at
-- commit, and only if the transaction commits, so a listener hears of a change once it is
-- visible; PostgreSQL folds the identical notifications of one transaction into one.
-- On data_generation rather than on prices, ports and regions: every transaction that changes
-- what GET /rates shows moves that row (the triggers on prices, ports and regions, Repair, and any
-- writer that moves it explicitly, such as the publish of a batch staged in parts), so each of
-- them is heard without having to know about the channel. The payload is empty: listeners read
-- the row, whose value is what they compare.
-- ENABLE ALWAYS: a writer in session_replication_role = replica must still be heard.
-- CREATE TRIGGER waits for the loads in progress (they hold the row until they commit); reads
-- go on meanwhile. Past five minutes the migration fails, and the deploy with it.
BEGIN;
SET LOCAL lock_timeout = '5min';

CREATE FUNCTION notify_data_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rates_data_generation', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER data_generation_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON data_generation
    FOR EACH STATEMENT EXECUTE FUNCTION notify_data_generation();
ALTER TABLE data_generation ENABLE ALWAYS TRIGGER data_generation_notify;
COMMIT;
