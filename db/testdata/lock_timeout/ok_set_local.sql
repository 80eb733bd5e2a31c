-- Adds a column: ALTER TABLE takes ACCESS EXCLUSIVE, so readers queue behind a waiting lock.
SET LOCAL lock_timeout = '5s';
ALTER TABLE prices ADD COLUMN currency text;
