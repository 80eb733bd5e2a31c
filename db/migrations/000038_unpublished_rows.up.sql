-- The rows of a batch still staging (000037) are in prices but not published. The statement
-- triggers that keep price_daily (the baseline, 000033) leave them out, so staging a part changes neither
-- price_daily nor the data generation; the publish adds the batch's aggregate and moves the
-- generation itself, in one transaction.
--
-- The data generation: prices_bump_generation (the baseline) moved it for every statement on
-- prices, staged or not. Only the price_daily functions know which rows are published: they
-- record, in the transaction's setting rates.price_daily_changed, that the statement changed
-- price_daily, and prices_bump_generation, which fires after them (triggers fire in name
-- order), moves the generation when it did (and for every TRUNCATE), then clears the setting.
-- The trigger stays the one that moves the generation for prices, and the lock order is the one
-- of before: price_daily's rows, then the data_generation row.
--
-- A DELETE or UPDATE of staged rows raises serialization_failure (40001): under READ COMMITTED
-- a replace (of the previous release, or of manual SQL) would otherwise take staged rows out of
-- prices, and out of a price_daily that never counted them. That writer's transaction fails
-- whole and is retried (a worker leaves its message for later, POST /batches answers 503), and
-- goes through once the batch is published or rejected. The one transaction that may remove a
-- staging batch's rows, the one ending that batch, names it in the setting rates.unstage_batch.
-- A TRUNCATE raises while any batch stages: it would take staged rows out behind their batch.
--
-- price_daily written by any other statement than these triggers (a rebuild, a publish) while a
-- batch stages must be written from the published prices alone: the previous release's
-- `rates check --repair` rebuilds it from every row of prices, and the batch's publish would
-- then count its rows a second time. Such a statement raises serialization_failure unless its
-- transaction says, with the setting rates.price_daily_source = 'published', that it reads
-- published rows only (this release's repair and publish do).
--
-- The previous release reads and loads as before: staged rows exist only once this release
-- stages, and its own rows belong to no batch (published).
BEGIN;
SET LOCAL lock_timeout = '5min';

-- The baseline's settings of price_daily_add are restated: CREATE OR REPLACE replaces them too.
CREATE OR REPLACE FUNCTION price_daily_add() RETURNS trigger LANGUAGE plpgsql
SET work_mem = '64MB' SET enable_hashagg = off AS $$
DECLARE
    unpublished bigint[] := ARRAY(SELECT id FROM batches WHERE status = 'staging');
    changed bigint;
BEGIN
    INSERT INTO price_daily AS d (orig_code, dest_code, day, prices, price_sum)
    SELECT orig_code, dest_code, day, count(*), sum(price) FROM new_rows
    WHERE batch_id IS NULL OR batch_id <> ALL (unpublished)
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (orig_code, dest_code, day)
    DO UPDATE SET prices = d.prices + excluded.prices, price_sum = d.price_sum + excluded.price_sum;
    GET DIAGNOSTICS changed = ROW_COUNT;
    IF changed > 0 THEN
        PERFORM set_config('rates.price_daily_changed', 'on', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION price_daily_remove() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    unpublished bigint[] := ARRAY(SELECT id FROM batches WHERE status = 'staging');
    unstaging bigint := nullif(current_setting('rates.unstage_batch', true), '')::bigint;
    held bigint;
    changed bigint;
BEGIN
    IF cardinality(unpublished) > 0 THEN
        SELECT batch_id INTO held FROM old_rows
        WHERE batch_id = ANY (unpublished) AND batch_id IS DISTINCT FROM unstaging LIMIT 1;
        IF held IS NOT NULL THEN
            RAISE EXCEPTION 'prices of batch % are staged and not yet published: this statement may not take them out', held
                USING ERRCODE = 'serialization_failure', HINT = 'Retry once the batch is published or rejected.';
        END IF;
    END IF;
    UPDATE price_daily d SET prices = d.prices - o.prices, price_sum = d.price_sum - o.price_sum
    FROM (SELECT orig_code, dest_code, day, count(*) AS prices, sum(price) AS price_sum
          FROM old_rows WHERE batch_id IS NULL OR batch_id <> ALL (unpublished) GROUP BY 1, 2, 3) o
    WHERE d.orig_code = o.orig_code AND d.dest_code = o.dest_code AND d.day = o.day;
    GET DIAGNOSTICS changed = ROW_COUNT;
    -- A day whose last price goes away disappears, so the API keeps answering null for it.
    DELETE FROM price_daily d
    USING (SELECT DISTINCT orig_code, dest_code, day FROM old_rows
           WHERE batch_id IS NULL OR batch_id <> ALL (unpublished)) o
    WHERE d.orig_code = o.orig_code AND d.dest_code = o.dest_code AND d.day = o.day AND d.prices = 0;
    IF changed > 0 THEN
        PERFORM set_config('rates.price_daily_changed', 'on', true);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION price_daily_clear() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    staging bigint := (SELECT min(id) FROM batches WHERE status = 'staging');
BEGIN
    IF staging IS NOT NULL THEN
        RAISE EXCEPTION 'batch % is staging: its staged prices may not be truncated', staging
            USING ERRCODE = 'serialization_failure', HINT = 'Retry once the batch is published or rejected.';
    END IF;
    DELETE FROM price_daily;
    RETURN NULL;
END
$$;

CREATE FUNCTION price_daily_from_published() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    staging bigint;
BEGIN
    IF pg_trigger_depth() > 1 OR current_setting('rates.price_daily_source', true) = 'published' THEN
        RETURN NULL;
    END IF;
    staging := (SELECT min(id) FROM batches WHERE status = 'staging');
    IF staging IS NOT NULL THEN
        RAISE EXCEPTION 'batch % is staging: price_daily may be written from the published prices only', staging
            USING ERRCODE = 'serialization_failure',
                  HINT = 'Set rates.price_daily_source to published when reading published_prices, or retry once the batch is published or rejected.';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER price_daily_from_published AFTER INSERT OR UPDATE ON price_daily
    FOR EACH STATEMENT EXECUTE FUNCTION price_daily_from_published();
ALTER TABLE price_daily ENABLE ALWAYS TRIGGER price_daily_from_published;

CREATE FUNCTION bump_data_generation_if_published() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' OR current_setting('rates.price_daily_changed', true) = 'on' THEN
        PERFORM set_config('rates.price_daily_changed', '', true);
        UPDATE data_generation SET generation = generation + 1;
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER prices_bump_generation ON prices;
CREATE TRIGGER prices_bump_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation_if_published();
ALTER TABLE prices ENABLE ALWAYS TRIGGER prices_bump_generation;

COMMIT;
