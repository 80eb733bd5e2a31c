-- Contract step of 000035: check the prices stored before prices_route_distinct existed.
-- VALIDATE takes a SHARE UPDATE EXCLUSIVE lock, so the API and batch loads go on while it
-- scans; a price from a port to itself stops the migration with the constraint's name (take it
-- out, or revert its batch, and run the migration again).
BEGIN;
SET LOCAL lock_timeout = '5min';
ALTER TABLE prices VALIDATE CONSTRAINT prices_route_distinct;
COMMIT;
