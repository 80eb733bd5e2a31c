-- price_daily_add aggregates the inserted rows and feeds them to price_daily in key order. The
-- loader inserts a batch in that order already (see insertPricesSQL in internal/ingest), so a
-- sort that finds its input sorted and a GroupAggregate do the work of the HashAggregate and
-- the second sort the planner picked before: 100,000 spread rows, 150-200 ms instead of
-- 410-460 ms (docs/benchmarks.md). work_mem keeps that sort in memory up to a few hundred
-- thousand rows; larger statements spill to disk as before. Rows from any other writer, in any
-- order, pay one sort, as the ORDER BY already made them. Settings of the function only: the
-- body and the previous release's behaviour are unchanged.
ALTER FUNCTION price_daily_add() SET work_mem = '64MB';
ALTER FUNCTION price_daily_add() SET enable_hashagg = off;
