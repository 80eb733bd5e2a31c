-- Rebuilds price_daily exactly from prices. 000007 filled it with INSERT ... SELECT before its
-- triggers existed and without locking prices, so a batch that committed in between was never
-- counted. SHARE ROW EXCLUSIVE conflicts with every writer of prices (INSERT, UPDATE, DELETE,
-- TRUNCATE) and with itself, but not with readers: the lock waits for batches in flight to
-- commit, keeps new ones waiting until the rebuild commits, and GET /rates keeps answering
-- from the old rows meanwhile. From here on the triggers of 000007 keep every writer exact;
-- `rates check` verifies it.
BEGIN;

-- A writer holding its lock for longer than this fails the migration (and the deploy) rather
-- than queueing every other writer behind it indefinitely.
SET LOCAL lock_timeout = '5min';
LOCK TABLE prices IN SHARE ROW EXCLUSIVE MODE;

-- DELETE rather than TRUNCATE: TRUNCATE would lock readers of price_daily out too.
DELETE FROM price_daily;
INSERT INTO price_daily (orig_code, dest_code, day, prices, price_sum)
SELECT orig_code, dest_code, day, count(*), sum(price) FROM prices GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- Answers cached from the old rows must not be served again.
UPDATE data_generation SET generation = generation + 1;

COMMIT;
