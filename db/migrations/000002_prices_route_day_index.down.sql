DROP INDEX IF EXISTS regions_parent_slug_idx;
DROP INDEX IF EXISTS ports_parent_slug_idx;
DROP INDEX IF EXISTS prices_route_day_idx;
