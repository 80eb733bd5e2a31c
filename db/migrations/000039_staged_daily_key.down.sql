BEGIN;
SET LOCAL lock_timeout = '5min';
CREATE INDEX staged_daily_batch_idx ON staged_daily (batch_id);
DROP INDEX staged_daily_key_idx;
COMMIT;
