-- The rebuild changes no schema: going down leaves price_daily as exact as it is.
SELECT 1;
