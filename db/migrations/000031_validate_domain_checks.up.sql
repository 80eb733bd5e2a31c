-- Contract step of 000030: check the rows stored before the constraints existed. VALIDATE
-- takes a SHARE UPDATE EXCLUSIVE lock, so the API and batch loads go on while it scans; a row
-- that breaks a rule stops the migration with the constraint's name.
ALTER TABLE ports VALIDATE CONSTRAINT ports_code_shape;
ALTER TABLE regions VALIDATE CONSTRAINT regions_slug_shape;
ALTER TABLE prices VALIDATE CONSTRAINT prices_price_positive;
ALTER TABLE prices VALIDATE CONSTRAINT prices_day_range;
ALTER TABLE price_daily VALIDATE CONSTRAINT price_daily_sum_covers_count;
