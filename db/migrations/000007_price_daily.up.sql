-- Per route and day, the number and the sum of the prices: GET /rates reads at most one row per
-- port pair and day here instead of every price, so its cost no longer grows with the number
-- of prices per day. Statement-level triggers with transition tables keep it exact inside every
-- transaction that writes prices (seed COPY, batch INSERT, manual SQL); ENABLE ALWAYS keeps them
-- firing when a batch load runs in replica mode (see 000006).
BEGIN;

CREATE TABLE price_daily (
    orig_code text   NOT NULL,
    dest_code text   NOT NULL,
    day       date   NOT NULL,
    prices    bigint NOT NULL CHECK (prices >= 0),
    price_sum bigint NOT NULL,
    CONSTRAINT price_daily_pkey PRIMARY KEY (orig_code, dest_code, day) INCLUDE (prices, price_sum)
);

INSERT INTO price_daily (orig_code, dest_code, day, prices, price_sum)
SELECT orig_code, dest_code, day, count(*), sum(price) FROM prices GROUP BY 1, 2, 3;

-- Rows go in key order, so concurrent batches lock shared days in the same order.
CREATE FUNCTION price_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO price_daily AS d (orig_code, dest_code, day, prices, price_sum)
    SELECT orig_code, dest_code, day, count(*), sum(price) FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (orig_code, dest_code, day)
    DO UPDATE SET prices = d.prices + excluded.prices, price_sum = d.price_sum + excluded.price_sum;
    RETURN NULL;
END
$$;

-- A day whose last price goes away disappears, so the API keeps answering null for it.
CREATE FUNCTION price_daily_remove() RETURNS trigger LANGUAGE plpgsql AS $$
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

CREATE FUNCTION price_daily_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM price_daily;
    RETURN NULL;
END
$$;

CREATE TRIGGER price_daily_insert AFTER INSERT ON prices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_add();
CREATE TRIGGER price_daily_delete AFTER DELETE ON prices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_remove();
-- An UPDATE takes its old rows out, then puts its new rows in (triggers fire in name order).
CREATE TRIGGER price_daily_update_a_old AFTER UPDATE ON prices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_remove();
CREATE TRIGGER price_daily_update_b_new AFTER UPDATE ON prices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_add();
CREATE TRIGGER price_daily_truncate AFTER TRUNCATE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION price_daily_clear();

ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_insert;
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_delete;
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_update_a_old;
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_update_b_new;
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_truncate;

COMMIT;
