DROP TRIGGER IF EXISTS regions_bump_generation ON regions;
DROP TRIGGER IF EXISTS ports_bump_generation ON ports;
DROP TRIGGER IF EXISTS prices_bump_generation ON prices;
DROP FUNCTION IF EXISTS bump_data_generation();
DROP TABLE IF EXISTS data_generation;
