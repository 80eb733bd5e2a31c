BEGIN;
SET LOCAL lock_timeout = '5min';
DROP VIEW published_prices;
DROP TABLE staged_daily;
DROP TABLE batch_parts;
DROP INDEX batches_staging_idx;
-- 000038's down ended every staging batch as failed; the earlier schema knows them as rejected.
UPDATE batches SET status = 'rejected' WHERE status = 'failed';
ALTER TABLE batches DROP CONSTRAINT batches_failed_has_report, DROP CONSTRAINT batches_status_check,
    ADD CONSTRAINT batches_status_check CHECK (status IN ('loaded', 'rejected', 'duplicate', 'reverted', 'discarded'));
ALTER TABLE batches DROP COLUMN manifest_sha256;
COMMIT;
