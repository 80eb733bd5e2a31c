SET LOCAL lock_timeout = 0;
ALTER TABLE prices ADD COLUMN currency text;
