BEGIN;
SET LOCAL lock_timeout = '5min';
ALTER TABLE prices DROP CONSTRAINT prices_route_distinct;
DROP INDEX batches_rows_key_key;
ALTER TABLE batches DROP COLUMN rows_key;
COMMIT;
