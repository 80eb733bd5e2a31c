-- The previous release knows a batch by its source key only and records a loaded batch without
-- a content key. During a rolling deploy, and after a rollback to it, it would load content that
-- this release loaded under another key, and this release would load content it loaded first:
-- the same prices counted twice. This trigger gives the loaded price batches of any writer that
-- leaves content_key empty (the previous release, manual SQL) the key this release uses, as the
-- record is inserted:
-- - the unique index batches_content_key_key then fails the previous release's transaction for
--   content that is already loaded (it records the batch after its prices, in the same
--   transaction, so nothing of it stays), and its message or request is retried until this
--   release answers "duplicate";
-- - this release finds content the previous release loaded first, by its content key.
-- The seed's record keeps no content key, as before. This release's loader sets the key itself.
-- Both releases hash plain CSV alike; a gzip batch of the previous release is hashed as sent
-- (compressed), so its key names that encoding and matches nothing else, as before.
-- ENABLE ALWAYS: a writer in session_replication_role = replica is still a writer of batches.
-- The trigger waits for the loads in progress (they hold batches until they commit): past five
-- minutes the migration fails, and the deploy with it, rather than queueing loads any longer.
BEGIN;
SET LOCAL lock_timeout = '5min';

CREATE FUNCTION batches_fill_content_key() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.content_key IS NULL AND NEW.status = 'loaded' AND NEW.kind = 'prices'
       AND NEW.source_kind <> 'seed' THEN
        NEW.content_key := NEW.kind || ':' || NEW.sha256;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER batches_fill_content_key BEFORE INSERT ON batches
    FOR EACH ROW EXECUTE FUNCTION batches_fill_content_key();
ALTER TABLE batches ENABLE ALWAYS TRIGGER batches_fill_content_key;

COMMIT;
