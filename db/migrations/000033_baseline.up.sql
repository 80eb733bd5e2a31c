-- The schema of rates, in one file. It replaces the chain 000001-000033 that built it step by
-- step (no release was tagged before it) and keeps the chain's last version number: a database
-- already at 33 has nothing to apply, and a new one gets the same schema in one transaction.
-- Migrations after this one change it by expand/contract (docs/operations.md).
BEGIN;
-- A new database waits for nobody; the setting is here because every migration sets one.
SET LOCAL lock_timeout = '5s';

-- ---------------------------------------------------------------------------------------------
-- Reference data and prices: the tables of the public rates dump, with its names, types and
-- NOT NULLs. Foreign keys are DEFERRABLE so that a dump whose rows arrive in any order loads
-- inside one transaction with SET CONSTRAINTS ALL DEFERRED. The CHECK constraints are the
-- domain rules of internal/domain (a test holds the two together).
-- ---------------------------------------------------------------------------------------------

CREATE TABLE regions (
    slug        text NOT NULL,
    name        text NOT NULL,
    parent_slug text,
    CONSTRAINT regions_pkey PRIMARY KEY (slug),
    CONSTRAINT regions_parent_slug_fkey FOREIGN KEY (parent_slug)
        REFERENCES regions (slug) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT regions_slug_shape CHECK (slug ~ '^[a-z][a-z0-9_]{0,63}$')
);

CREATE TABLE ports (
    code        text NOT NULL,
    name        text NOT NULL,
    parent_slug text NOT NULL,
    CONSTRAINT ports_pkey PRIMARY KEY (code),
    CONSTRAINT ports_parent_slug_fkey FOREIGN KEY (parent_slug)
        REFERENCES regions (slug) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT ports_code_shape CHECK (code ~ '^[A-Z0-9]{5}$')
);

-- Region lookups walk the tree through parent_slug.
CREATE INDEX ports_parent_slug_idx ON ports (parent_slug);
CREATE INDEX regions_parent_slug_idx ON regions (parent_slug);

-- One row per dump the seeder applied; the newest row is the data set in place.
CREATE TABLE seed_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256      text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source      text        NOT NULL,
    regions     bigint      NOT NULL,
    ports       bigint      NOT NULL,
    prices      bigint      NOT NULL,
    duration_ms bigint      NOT NULL,
    replaced    boolean     NOT NULL DEFAULT false,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- ---------------------------------------------------------------------------------------------
-- Batches: one row per ingested batch (and one for each seed), written in the same transaction
-- as the batch's prices.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE batches (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Where the batch came from (an S3 object version, an API Idempotency-Key); unique, so a
    -- redelivered or retried batch finds the first result. Files and seeds have none.
    source_key     text,
    source_kind    text        NOT NULL CHECK (source_kind IN ('s3', 'api', 'file', 'seed')),
    source_name    text        NOT NULL,
    status         text        NOT NULL
        CHECK (status IN ('loaded', 'rejected', 'duplicate', 'reverted', 'discarded')),
    rows           bigint      NOT NULL CHECK (rows >= 0),
    bad_rows       bigint      NOT NULL DEFAULT 0 CHECK (bad_rows >= 0),
    bytes          bigint      NOT NULL CHECK (bytes >= 0),
    sha256         text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL,
    duration_ms    bigint      NOT NULL,
    timings        jsonb       NOT NULL DEFAULT '{}',
    report         jsonb,
    -- What the batch holds and how it was applied.
    kind           text        NOT NULL DEFAULT 'prices' CHECK (kind IN ('prices', 'ports', 'regions')),
    mode           text        NOT NULL DEFAULT 'append' CHECK (mode IN ('append', 'replace')),
    -- kind:sha256 of the content while the batch is loaded; unique, so the same content is in
    -- the database at most once. NULL once reverted or discarded, and for rejected and
    -- duplicate records.
    content_key    text,
    -- A duplicate record names the loaded batch that already held its content.
    duplicate_of   bigint      REFERENCES batches (id),
    -- Rows of other batches a replace took out of prices (kept in prices_displaced).
    displaced_rows bigint      NOT NULL DEFAULT 0 CHECK (displaced_rows >= 0),
    reverted_at    timestamptz,
    revert_reason  text,
    -- The time the content arrived: S3 event time, upload time, command start.
    received_at    timestamptz,
    CONSTRAINT batches_source_key_key UNIQUE (source_key),
    CONSTRAINT batches_rejected_has_report CHECK (status <> 'rejected' OR report IS NOT NULL),
    CONSTRAINT batches_duplicate_names_original CHECK ((status = 'duplicate') = (duplicate_of IS NOT NULL)),
    CONSTRAINT batches_content_key_while_loaded CHECK (content_key IS NULL OR status = 'loaded'),
    CONSTRAINT batches_content_key_shape CHECK (content_key IS NULL OR content_key = kind || ':' || sha256),
    CONSTRAINT batches_reverted_has_time CHECK ((status IN ('reverted', 'discarded')) = (reverted_at IS NOT NULL)),
    CONSTRAINT batches_replace_is_prices CHECK (mode = 'append' OR kind = 'prices')
);
CREATE UNIQUE INDEX batches_content_key_key ON batches (content_key);
-- Operators list the latest batches first.
CREATE INDEX batches_finished_at_idx ON batches (finished_at DESC);

-- A writer that records a loaded price batch without a content key (an older loader, manual
-- SQL) gets the key this release uses: the unique index then fails its transaction for content
-- that is already loaded, and this release finds content it loaded first. The seed's record
-- keeps none. ENABLE ALWAYS: a writer in session_replication_role = replica is still a writer.
CREATE FUNCTION batches_fill_content_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.content_key IS NULL AND NEW.status = 'loaded' AND NEW.kind = 'prices'
       AND NEW.source_kind <> 'seed' THEN
        NEW.content_key := NEW.kind || ':' || NEW.sha256;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER batches_fill_content_key BEFORE INSERT ON batches
    FOR EACH ROW EXECUTE FUNCTION batches_fill_content_key();
ALTER TABLE batches ENABLE ALWAYS TRIGGER batches_fill_content_key;

CREATE TABLE prices (
    orig_code text    NOT NULL,
    dest_code text    NOT NULL,
    day       date    NOT NULL,
    price     integer NOT NULL,
    -- Lineage: the batch that wrote the row. The default reads the transaction's setting
    -- rates.batch_id, which the seeder sets for its COPY; manual SQL leaves NULL.
    batch_id  bigint DEFAULT NULLIF(current_setting('rates.batch_id', true), '')::bigint,
    CONSTRAINT prices_orig_code_fkey FOREIGN KEY (orig_code)
        REFERENCES ports (code) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT prices_dest_code_fkey FOREIGN KEY (dest_code)
        REFERENCES ports (code) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT prices_batch_id_fkey FOREIGN KEY (batch_id)
        REFERENCES batches (id) DEFERRABLE INITIALLY IMMEDIATE,
    -- An integer column caps a price at 2^31-1; the CHECK adds the lower bound.
    CONSTRAINT prices_price_positive CHECK (price >= 1),
    -- The API reads 4-digit years only; a day outside them could never be asked for.
    CONSTRAINT prices_day_range CHECK (day BETWEEN DATE '0001-01-01' AND DATE '9999-12-31')
);
-- Replace and revert find a route-day's prices; price carried for index-only aggregates.
CREATE INDEX prices_route_day_idx ON prices (orig_code, dest_code, day) INCLUDE (price);
CREATE INDEX prices_batch_id_idx ON prices (batch_id);

-- Rows a replace batch took out of prices, so that reverting it puts them back exactly.
CREATE TABLE prices_displaced (
    displaced_by bigint  NOT NULL REFERENCES batches (id),
    orig_code    text    NOT NULL,
    dest_code    text    NOT NULL,
    day          date    NOT NULL,
    price        integer NOT NULL,
    batch_id     bigint  REFERENCES batches (id)
);
CREATE INDEX prices_displaced_by_idx ON prices_displaced (displaced_by);
CREATE INDEX prices_displaced_batch_idx ON prices_displaced (batch_id);

-- What a reference-data batch changed: for each code or slug, whether it existed and its
-- previous name and parent, so that a revert restores them.
CREATE TABLE reference_changes (
    batch_id        bigint  NOT NULL REFERENCES batches (id),
    kind            text    NOT NULL CHECK (kind IN ('ports', 'regions')),
    key             text    NOT NULL,
    existed         boolean NOT NULL,
    old_name        text,
    old_parent_slug text,
    CONSTRAINT reference_changes_pkey PRIMARY KEY (batch_id, key),
    CONSTRAINT reference_changes_old_values CHECK (existed OR (old_name IS NULL AND old_parent_slug IS NULL))
);
CREATE INDEX reference_changes_key_idx ON reference_changes (kind, key);

-- ---------------------------------------------------------------------------------------------
-- price_daily: per route and day, the number and the sum of the prices. GET /rates reads at
-- most one row per port pair and day here instead of every price. Statement triggers with
-- transition tables keep it exact inside every transaction that writes prices (seed COPY, batch
-- INSERT, manual SQL); ENABLE ALWAYS keeps them firing when a batch load runs with
-- session_replication_role = replica (the loader's set-based foreign-key check).
-- ---------------------------------------------------------------------------------------------

CREATE TABLE price_daily (
    orig_code text   NOT NULL,
    dest_code text   NOT NULL,
    day       date   NOT NULL,
    prices    bigint NOT NULL CHECK (prices >= 0),
    price_sum bigint NOT NULL,
    CONSTRAINT price_daily_pkey PRIMARY KEY (orig_code, dest_code, day) INCLUDE (prices, price_sum),
    -- Every price is at least 1, so a day's sum is at least its count.
    CONSTRAINT price_daily_sum_covers_count CHECK (price_sum >= prices)
);

-- Rows go in key order, so concurrent batches lock shared days in the same order. The loader
-- inserts a batch in that order already: with work_mem for the sort and no hash aggregation,
-- a sort that finds its input sorted and a GroupAggregate do the work (docs/benchmarks.md).
CREATE FUNCTION price_daily_add() RETURNS trigger LANGUAGE plpgsql
SET work_mem = '64MB'
SET enable_hashagg = off
AS $$
BEGIN
    INSERT INTO price_daily AS d (orig_code, dest_code, day, prices, price_sum)
    SELECT orig_code, dest_code, day, count(*), sum(price) FROM new_rows GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (orig_code, dest_code, day)
    DO UPDATE SET prices = d.prices + excluded.prices, price_sum = d.price_sum + excluded.price_sum;
    RETURN NULL;
END
$$;

-- A day whose last price goes away disappears, so the API keeps answering null for it.
CREATE FUNCTION price_daily_remove() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE price_daily d SET prices = d.prices - o.prices, price_sum = d.price_sum - o.price_sum
    FROM (SELECT orig_code, dest_code, day, count(*) AS prices, sum(price) AS price_sum
          FROM old_rows GROUP BY 1, 2, 3) o
    WHERE d.orig_code = o.orig_code AND d.dest_code = o.dest_code AND d.day = o.day;
    DELETE FROM price_daily d USING (SELECT DISTINCT orig_code, dest_code, day FROM old_rows) o
    WHERE d.orig_code = o.orig_code AND d.dest_code = o.dest_code AND d.day = o.day AND d.prices = 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION price_daily_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM price_daily;
    RETURN NULL;
END
$$;

CREATE TRIGGER price_daily_insert AFTER INSERT ON prices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_add();
CREATE TRIGGER price_daily_delete AFTER DELETE ON prices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_remove();
-- An UPDATE takes its old rows out, then puts its new rows in (triggers fire in name order).
CREATE TRIGGER price_daily_update_a_old AFTER UPDATE ON prices
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_remove();
CREATE TRIGGER price_daily_update_b_new AFTER UPDATE ON prices
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION price_daily_add();
CREATE TRIGGER price_daily_truncate AFTER TRUNCATE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION price_daily_clear();
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_insert;
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_delete;
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_update_a_old;
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_update_b_new;
ALTER TABLE prices ENABLE ALWAYS TRIGGER price_daily_truncate;

-- ---------------------------------------------------------------------------------------------
-- The data generation: moves whenever the data behind GET /rates changes, in the same
-- transaction as the change, so that API instances serve no answer cached before it.
-- generation: every change of prices, ports or regions.
-- tree_generation: changes of ports or regions only (the code tree the API resolves in memory).
-- epoch: drawn when the row is created, so a counter that starts again at 1 (a restore, a
-- migrate down and up) never matches an answer cached from before.
-- ---------------------------------------------------------------------------------------------

CREATE TABLE data_generation (
    id              boolean PRIMARY KEY DEFAULT true CHECK (id),
    generation      bigint  NOT NULL,
    epoch           uuid    NOT NULL DEFAULT gen_random_uuid(),
    tree_generation bigint  NOT NULL DEFAULT 1
);
INSERT INTO data_generation (generation) VALUES (1);

CREATE FUNCTION bump_data_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_generation SET generation = generation + 1;
    RETURN NULL;
END
$$;

CREATE FUNCTION bump_tree_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE data_generation SET tree_generation = tree_generation + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER prices_bump_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON prices
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation();
CREATE TRIGGER ports_bump_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ports
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation();
CREATE TRIGGER regions_bump_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON regions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_data_generation();
CREATE TRIGGER ports_bump_tree_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON ports
    FOR EACH STATEMENT EXECUTE FUNCTION bump_tree_generation();
CREATE TRIGGER regions_bump_tree_generation AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON regions
    FOR EACH STATEMENT EXECUTE FUNCTION bump_tree_generation();
ALTER TABLE prices ENABLE ALWAYS TRIGGER prices_bump_generation;
ALTER TABLE ports ENABLE ALWAYS TRIGGER ports_bump_generation;
ALTER TABLE regions ENABLE ALWAYS TRIGGER regions_bump_generation;
ALTER TABLE ports ENABLE ALWAYS TRIGGER ports_bump_tree_generation;
ALTER TABLE regions ENABLE ALWAYS TRIGGER regions_bump_tree_generation;

-- ---------------------------------------------------------------------------------------------
-- Least privilege for the processes that connect: the API reads, the worker loads, and only the
-- migration (the owner) changes the schema. Group roles without LOGIN; `rates migrate up`
-- creates the login roles (DB_API_ROLE, DB_WORKER_ROLE) and makes them members. Roles belong to
-- the whole cluster, so creating them tolerates their existence and going down never drops them.
-- `rates migrate` creates them before it runs this file as the owner role, which may not create
-- roles: the file only creates what is missing.
-- ---------------------------------------------------------------------------------------------

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rates_reader') THEN
        CREATE ROLE rates_reader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rates_loader') THEN
        CREATE ROLE rates_loader NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

-- The one home of the grants. `rates migrate up` calls it again after every run, so a table a
-- later migration adds is covered even when that migration ran as another role than the one
-- whose default privileges are set below. A later migration that changes what a role may do
-- replaces this function.
CREATE FUNCTION rates_grant_roles() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO rates_reader, rates_loader', current_database());
    -- The loader stages a batch in a temporary table.
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO rates_loader', current_database());
    GRANT USAGE ON SCHEMA public TO rates_reader, rates_loader;
    -- GET /rates, /readyz and the answer cache's generation.
    GRANT SELECT ON regions, ports, price_daily, data_generation TO rates_reader;
    -- Every process checks at start that the schema suits it.
    GRANT SELECT ON schema_migrations TO rates_reader;
    -- Ingestion: every table, so tables added for it need no new grant; never the migration
    -- bookkeeping. Triggers on prices run as the loader and write price_daily and
    -- data_generation. Checking ports FOR KEY SHARE needs UPDATE on some column of ports.
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO rates_loader;
    GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO rates_loader;
    REVOKE ALL ON schema_migrations FROM rates_loader;
    GRANT SELECT ON schema_migrations TO rates_loader;
END
$$;
SELECT rates_grant_roles();

-- Tables and sequences this owner creates later: the loader may use them at once.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO rates_loader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO rates_loader;

COMMIT;
