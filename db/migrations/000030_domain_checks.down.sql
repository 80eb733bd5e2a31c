ALTER TABLE price_daily DROP CONSTRAINT IF EXISTS price_daily_sum_covers_count;
ALTER TABLE prices DROP CONSTRAINT IF EXISTS prices_day_range;
ALTER TABLE prices DROP CONSTRAINT IF EXISTS prices_price_positive;
ALTER TABLE regions DROP CONSTRAINT IF EXISTS regions_slug_shape;
ALTER TABLE ports DROP CONSTRAINT IF EXISTS ports_code_shape;
