ALTER FUNCTION price_daily_add() RESET ALL;
