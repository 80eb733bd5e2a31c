-- Validation changes no definition: nothing to undo.
SELECT 1;
