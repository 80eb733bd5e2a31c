-- Serves GET /rates: equality on the route, a range on day, and price carried in the
-- index so the aggregate is answered by an index-only scan.
CREATE INDEX IF NOT EXISTS prices_route_day_idx ON prices (orig_code, dest_code, day) INCLUDE (price);
-- Region lookups walk the tree through parent_slug.
CREATE INDEX IF NOT EXISTS ports_parent_slug_idx ON ports (parent_slug);
CREATE INDEX IF NOT EXISTS regions_parent_slug_idx ON regions (parent_slug);
