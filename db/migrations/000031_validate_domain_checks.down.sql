-- A validated constraint cannot go back to NOT VALID, and needs not: 000030's down drops them.
SELECT 1;
