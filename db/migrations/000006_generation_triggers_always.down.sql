ALTER TABLE prices ENABLE TRIGGER prices_bump_generation;
ALTER TABLE ports ENABLE TRIGGER ports_bump_generation;
ALTER TABLE regions ENABLE TRIGGER regions_bump_generation;
