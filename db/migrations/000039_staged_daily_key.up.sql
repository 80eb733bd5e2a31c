-- staged_daily (000037) is read by the publish in price_daily's key order: with its rows indexed
-- by batch and route-day, the publish streams the batch's sums from the index, already in the
-- order it writes price_daily in, instead of sorting the whole batch's route-days while every
-- part waits for it. The parts' loaders, which work side by side, maintain the index as they
-- stage. The new index leads with batch_id and serves every lookup the one it replaces served;
-- the replaced one kept every row of a batch under one key, the last leaf page that loaders of
-- the same batch fought over.
--
-- Only this release reads or writes staged_daily: the previous release never sees the change.
BEGIN;
SET LOCAL lock_timeout = '5min';
CREATE INDEX staged_daily_key_idx ON staged_daily (batch_id, orig_code, dest_code, day);
DROP INDEX staged_daily_batch_idx;
COMMIT;
