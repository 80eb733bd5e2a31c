-- Staged rows cannot stay once the triggers count every row again: they leave prices uncounted
-- (this function names their batch) and their batches end as failed.
BEGIN;
SET LOCAL lock_timeout = '5min';

DO $$
DECLARE
    b bigint;
BEGIN
    FOR b IN SELECT id FROM batches WHERE status = 'staging' ORDER BY id FOR UPDATE LOOP
        PERFORM set_config('rates.unstage_batch', b::text, true);
        DELETE FROM prices WHERE batch_id = b;
        UPDATE batches SET status = 'failed', finished_at = now(),
            report = '{"bad_rows": 0, "errors": [{"line": 0, "reason": "the schema was migrated down while the batch was staging"}]}'
        WHERE id = b;
    END LOOP;
    PERFORM set_config('rates.unstage_batch', '', true);
END
$$;
DELETE FROM staged_daily;

DROP TRIGGER price_daily_from_published ON price_daily;
DROP FUNCTION price_daily_from_published();

DROP TRIGGER prices_bump_generation ON prices;
CREATE TRIGGER prices_bump_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation();
ALTER TABLE prices ENABLE ALWAYS TRIGGER prices_bump_generation;
DROP FUNCTION bump_data_generation_if_published();

CREATE OR REPLACE FUNCTION price_daily_add() RETURNS trigger LANGUAGE plpgsql
SET work_mem = '64MB' SET enable_hashagg = off AS $$
BEGIN
    INSERT INTO price_daily AS d (orig_code, dest_code, day, prices, price_sum)
    SELECT orig_code, dest_code, day, count(*), sum(price) FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (orig_code, dest_code, day)
    DO UPDATE SET prices = d.prices + excluded.prices, price_sum = d.price_sum + excluded.price_sum;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION price_daily_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE price_daily d SET prices = d.prices - o.prices, price_sum = d.price_sum - o.price_sum
    FROM (SELECT orig_code, dest_code, day, count(*) AS prices, sum(price) AS price_sum
          FROM old_rows GROUP BY 1, 2, 3) o
    WHERE d.orig_code = o.orig_code AND d.dest_code = o.dest_code AND d.day = o.day;
    DELETE FROM price_daily d USING (SELECT DISTINCT orig_code, dest_code, day FROM old_rows) o
    WHERE d.orig_code = o.orig_code AND d.dest_code = o.dest_code AND d.day = o.day AND d.prices = 0;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION price_daily_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM price_daily;
    RETURN NULL;
END
$$;

COMMIT;
