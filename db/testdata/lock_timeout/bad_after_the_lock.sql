ALTER TABLE prices ADD COLUMN currency text;
SET LOCAL lock_timeout = '5s';
