BEGIN;
SET LOCAL lock_timeout TO '2s';
ALTER TABLE prices ADD COLUMN currency text;
COMMIT;
