-- SET LOCAL lock_timeout = '5s';
ALTER TABLE prices ADD COLUMN currency text;
