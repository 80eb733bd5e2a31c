DROP TRIGGER IF EXISTS regions_bump_tree_generation ON regions;
DROP TRIGGER IF EXISTS ports_bump_tree_generation ON ports;
DROP FUNCTION IF EXISTS bump_tree_generation();
ALTER TABLE data_generation DROP COLUMN IF EXISTS tree_generation;
ALTER TABLE data_generation DROP COLUMN IF EXISTS epoch;
