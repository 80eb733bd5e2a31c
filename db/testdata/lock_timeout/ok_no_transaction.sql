-- migrate: no-transaction
/* CREATE INDEX CONCURRENTLY refuses a transaction block: each statement runs on its own, and
   the session's lock_timeout covers the ones after it. */
SET lock_timeout = 3000;
CREATE INDEX CONCURRENTLY prices_currency ON prices (currency);
