-- Identity from rows: a batch is known by the digest of its parsed rows (ingest.RowDigest), so
-- that the same rows re-exported (a price written 0100, CRLF for LF, another order) load once.
-- Expand only: content_key (kind:sha256 of the decompressed bytes) stays as it is, and the
-- loader sets both keys on a batch it loads and finds a loaded batch by either. The previous
-- release knows neither: the trigger batches_fill_content_key gives its loaded batches the byte key, so it cannot
-- load bytes this release loaded, and this release finds what it loaded by those bytes. Unique
-- among loaded batches only, so a reverted or discarded batch lets go of its rows whoever
-- changed its status.
--
-- A price from a port to itself is a mistake (domain.DistinctRoute). NOT VALID: new rows are
-- checked from now on, and 000036 validates the rows stored before. The previous release
-- loads such a row no more: its batch fails and is retried until this release rejects it.
BEGIN;
SET LOCAL lock_timeout = '5min';

ALTER TABLE batches ADD COLUMN rows_key text
    CONSTRAINT batches_rows_key_shape CHECK (rows_key ~ '^(prices|ports|regions):[0-9a-f]{64}$'
        AND starts_with(rows_key, kind || ':'));
CREATE UNIQUE INDEX batches_rows_key_key ON batches (rows_key) WHERE status = 'loaded';

ALTER TABLE prices ADD CONSTRAINT prices_route_distinct CHECK (orig_code <> dest_code) NOT VALID;

COMMIT;
