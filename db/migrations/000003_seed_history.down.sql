DROP TABLE IF EXISTS seed_history;
