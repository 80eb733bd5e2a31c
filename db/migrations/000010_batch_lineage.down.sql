BEGIN;
DROP TABLE reference_changes;
DROP TABLE prices_displaced;
ALTER TABLE prices DROP COLUMN batch_id;
DROP INDEX batches_content_key_key;
DELETE FROM batches WHERE status NOT IN ('loaded', 'rejected') OR source_kind = 'seed' OR source_key IS NULL;
ALTER TABLE batches DROP CONSTRAINT batches_status_check,
    DROP CONSTRAINT batches_duplicate_names_original, DROP CONSTRAINT batches_content_key_while_loaded,
    DROP CONSTRAINT batches_content_key_shape, DROP CONSTRAINT batches_reverted_has_time,
    DROP CONSTRAINT batches_replace_is_prices, DROP CONSTRAINT batches_rejected_has_report,
    ADD CONSTRAINT batches_rejected_has_report CHECK (status = 'loaded' OR report IS NOT NULL),
    ADD CONSTRAINT batches_status_check CHECK (status IN ('loaded', 'rejected'));
ALTER TABLE batches DROP CONSTRAINT batches_source_kind_check,
    ADD CONSTRAINT batches_source_kind_check CHECK (source_kind IN ('s3', 'api', 'file'));
ALTER TABLE batches ALTER COLUMN source_key SET NOT NULL;
ALTER TABLE batches DROP COLUMN kind, DROP COLUMN mode, DROP COLUMN content_key, DROP COLUMN duplicate_of,
    DROP COLUMN displaced_rows, DROP COLUMN reverted_at, DROP COLUMN revert_reason, DROP COLUMN received_at;
COMMIT;
