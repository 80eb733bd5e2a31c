-- Multi-part batches staged in parallel (docs/design.md, "Very large batches"). A manifest
-- registers its batch as 'staging' with one batch_parts row per part; each part is then staged
-- in a transaction of its own by any loader: its rows go into prices under the batch's id, and
-- their per route-day count and sum into staged_daily. One short publish transaction adds the
-- batch's aggregate to price_daily and makes it 'loaded'. Until then the rows are in prices but
-- unpublished: published_prices (below) and the triggers of 000038 leave them out, so readers,
-- price_daily and the data generation see none of them.
--
-- Expand only: the previous release never writes the new statuses or tables, and its readers of
-- batches see a status they print as it is.
BEGIN;
-- A load in progress holds batches until it commits: past this the migration fails, and the
-- deploy with it, rather than queueing every load behind it.
SET LOCAL lock_timeout = '5min';

ALTER TABLE batches
    -- The SHA-256 of the manifest of a multi-part batch: the batch's checksum until its publish
    -- records the digest of its rows, and how a rerun of a manifest finds the batch it resumes.
    ADD COLUMN manifest_sha256 text CHECK (manifest_sha256 ~ '^[0-9a-f]{64}$');
-- staging: registered, parts being staged, nothing visible. failed: ended before its publish
-- for a reason other than its content (its deadline passed, a seed replaced the data), with a
-- report; its staged rows are gone.
ALTER TABLE batches DROP CONSTRAINT batches_status_check,
    ADD CONSTRAINT batches_status_check
        CHECK (status IN ('loaded', 'rejected', 'duplicate', 'reverted', 'discarded', 'staging', 'failed')),
    ADD CONSTRAINT batches_failed_has_report CHECK (status <> 'failed' OR report IS NOT NULL);

-- The batches still staging: few at any time, read by every statement that writes prices.
CREATE INDEX batches_staging_idx ON batches (id) WHERE status = 'staging';

-- One row per part of a multi-part batch, written with the batch. A part is settled in one
-- transaction that holds this row, so a part redelivered while or after it is settled is
-- settled once: staged (its rows in prices, its aggregate in staged_daily), bad (its report
-- here), or checked (its rows are sound but another part is bad: they are checked, for the
-- batch's report to cover every part, and not staged).
CREATE TABLE batch_parts (
    batch_id        bigint      NOT NULL REFERENCES batches (id),
    part            integer     NOT NULL CHECK (part BETWEEN 1 AND 10000),
    key             text        NOT NULL CHECK (length(key) BETWEEN 1 AND 1024),
    -- Of the part's decompressed bytes, as the manifest gives it.
    sha256          text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    status          text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'staged', 'checked', 'bad')),
    rows            bigint      CHECK (rows >= 0),
    bad_rows        bigint      CHECK (bad_rows >= 0),
    bytes           bigint      CHECK (bytes >= 0),
    -- Rows the part wrote to staged_daily.
    route_days      bigint      CHECK (route_days >= 0),
    -- The order-insensitive digest of the part's rows (the sum of their hashes), which the
    -- publish combines into the batch's identity.
    row_digest      bytea,
    report          jsonb,
    timings         jsonb       NOT NULL DEFAULT '{}',
    -- Attempts begun, counted outside the part's transaction so that killed ones count too.
    attempts        integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_attempt_at timestamptz,
    finished_at     timestamptz,
    CONSTRAINT batch_parts_pkey PRIMARY KEY (batch_id, part),
    CONSTRAINT batch_parts_key_key UNIQUE (batch_id, key),
    CONSTRAINT batch_parts_staged_is_complete CHECK (status <> 'staged' OR (rows IS NOT NULL
        AND bytes IS NOT NULL AND route_days IS NOT NULL AND row_digest IS NOT NULL AND finished_at IS NOT NULL)),
    CONSTRAINT batch_parts_bad_has_report CHECK (status <> 'bad' OR (report IS NOT NULL AND finished_at IS NOT NULL))
);

-- Per staged part, the count and sum of its prices per route-day: the publish adds their sums
-- over the batch to price_daily, at a cost in route-days rather than rows. No key: a part is
-- written once, under its batch_parts row's lock, and read back whole by the publish, which
-- sorts the batch's sums before it writes price_daily. UNLOGGED: written once and read once, it
-- need not go through the WAL. A crash or a failover empties it; the publish finds the sums
-- short of the parts' rows and sums the batch's staged rows in prices instead.
CREATE UNLOGGED TABLE staged_daily (
    batch_id  bigint  NOT NULL,
    part      integer NOT NULL,
    orig_code text    NOT NULL,
    dest_code text    NOT NULL,
    day       date    NOT NULL,
    prices    bigint  NOT NULL CHECK (prices > 0),
    price_sum bigint  NOT NULL
);
CREATE INDEX staged_daily_batch_idx ON staged_daily (batch_id);

-- The rows of prices that readers may count: those of no batch (the previous release's loads,
-- manual SQL) and those of every batch that is not staging. Every reader of prices in the code
-- reads this instead (rates check, replace, revert, the seed). The staging batches are read
-- once per statement (an InitPlan), not once per row.
CREATE VIEW published_prices AS
SELECT p.orig_code, p.dest_code, p.day, p.price, p.batch_id
FROM prices p
WHERE p.batch_id IS NULL OR p.batch_id <> ALL (ARRAY(SELECT b.id FROM batches b WHERE b.status = 'staging'));

-- The loader stages into both tables and reads the view (rates_grant_roles grants every table
-- and view of the schema; see the baseline).
SELECT rates_grant_roles();

COMMIT;
