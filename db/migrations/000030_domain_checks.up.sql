-- The domain rules of internal/domain on the data the database holds, so that no writer (seed,
-- batch load, manual SQL) can store what the service would refuse. Expand step: NOT VALID
-- takes the table lock only for a catalog change and checks every new or updated row from now
-- on; 000031 then validates the existing rows without blocking reads or writes. The previous
-- release writes only rows that satisfy these rules, so it keeps working.
ALTER TABLE ports ADD CONSTRAINT ports_code_shape
    CHECK (code ~ '^[A-Z0-9]{5}$') NOT VALID;
ALTER TABLE regions ADD CONSTRAINT regions_slug_shape
    CHECK (slug ~ '^[a-z][a-z0-9_]{0,63}$') NOT VALID;
-- An integer column already caps a price at 2^31-1; the CHECK adds the lower bound.
ALTER TABLE prices ADD CONSTRAINT prices_price_positive
    CHECK (price >= 1) NOT VALID;
-- The API reads 4-digit years only; a day outside them could never be asked for.
ALTER TABLE prices ADD CONSTRAINT prices_day_range
    CHECK (day BETWEEN DATE '0001-01-01' AND DATE '9999-12-31') NOT VALID;
-- Every price is at least 1, so a day's sum is at least its count.
ALTER TABLE price_daily ADD CONSTRAINT price_daily_sum_covers_count
    CHECK (price_sum >= prices) NOT VALID;
