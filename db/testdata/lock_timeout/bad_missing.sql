-- A migration without lock_timeout: it would queue every reader of prices behind its lock.
ALTER TABLE prices ADD COLUMN currency text;
