-- Validation changes no definition: nothing to undo. The timeout keeps the rule of every
-- migration after the baseline (db/lock_timeout_test.go).
SET LOCAL lock_timeout = '5s';
SELECT 1;
