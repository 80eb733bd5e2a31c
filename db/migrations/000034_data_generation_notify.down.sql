BEGIN;
SET LOCAL lock_timeout = '5min';
DROP TRIGGER IF EXISTS data_generation_notify ON data_generation;
DROP FUNCTION IF EXISTS notify_data_generation();
COMMIT;
