-- Batches under change (issue 12): identity by content, lineage of every price row, replace
-- and revert, reference-data batches. Expand only: the previous release keeps inserting batches
-- (loaded or rejected, with a source key) and prices (batch_id left NULL) as before.
BEGIN;

ALTER TABLE batches
    -- What the batch holds and how it was applied.
    ADD COLUMN kind           text        NOT NULL DEFAULT 'prices' CHECK (kind IN ('prices', 'ports', 'regions')),
    ADD COLUMN mode           text        NOT NULL DEFAULT 'append' CHECK (mode IN ('append', 'replace')),
    -- kind:sha256 of the decompressed content while the batch is loaded; unique, so the same
    -- content is in the database at most once. NULL once reverted or discarded, and for
    -- rejected and duplicate records.
    ADD COLUMN content_key    text,
    -- A duplicate record names the loaded batch that already held its content.
    ADD COLUMN duplicate_of   bigint      REFERENCES batches (id),
    -- Rows of other batches a replace took out of prices (kept in prices_displaced).
    ADD COLUMN displaced_rows bigint      NOT NULL DEFAULT 0 CHECK (displaced_rows >= 0),
    ADD COLUMN reverted_at    timestamptz,
    ADD COLUMN revert_reason  text,
    -- The time the content arrived: S3 event time, upload time, command start.
    ADD COLUMN received_at    timestamptz;

-- A file batch has no key of its own (its content is its identity); the seed's record neither.
ALTER TABLE batches ALTER COLUMN source_key DROP NOT NULL;
ALTER TABLE batches DROP CONSTRAINT batches_source_kind_check,
    ADD CONSTRAINT batches_source_kind_check CHECK (source_kind IN ('s3', 'api', 'file', 'seed'));
ALTER TABLE batches DROP CONSTRAINT batches_status_check,
    ADD CONSTRAINT batches_status_check CHECK (status IN ('loaded', 'rejected', 'duplicate', 'reverted', 'discarded')),
    ADD CONSTRAINT batches_duplicate_names_original CHECK ((status = 'duplicate') = (duplicate_of IS NOT NULL)),
    ADD CONSTRAINT batches_content_key_while_loaded CHECK (content_key IS NULL OR status = 'loaded'),
    ADD CONSTRAINT batches_content_key_shape CHECK (content_key IS NULL OR content_key = kind || ':' || sha256),
    ADD CONSTRAINT batches_reverted_has_time CHECK ((status IN ('reverted', 'discarded')) = (reverted_at IS NOT NULL)),
    ADD CONSTRAINT batches_replace_is_prices CHECK (mode = 'append' OR kind = 'prices');
ALTER TABLE batches DROP CONSTRAINT batches_rejected_has_report,
    ADD CONSTRAINT batches_rejected_has_report CHECK (status <> 'rejected' OR report IS NOT NULL);
CREATE UNIQUE INDEX batches_content_key_key ON batches (content_key);

-- The first loaded batch of each content keeps it; later loads of the same content (which the
-- previous release let through) stay without a content key, and are listed as they are.
UPDATE batches b SET content_key = 'prices:' || b.sha256
WHERE b.status = 'loaded'
  AND b.id = (SELECT min(o.id) FROM batches o WHERE o.status = 'loaded' AND o.sha256 = b.sha256);

-- Lineage: the batch that wrote each price. The default reads the transaction's setting
-- rates.batch_id, which the seeder sets for its COPY; stable, so adding the column does not
-- rewrite the table, and rows written before (or by manual SQL) keep NULL: origin unknown.
ALTER TABLE prices ADD COLUMN batch_id bigint
    DEFAULT NULLIF(current_setting('rates.batch_id', true), '')::bigint
    CONSTRAINT prices_batch_id_fkey REFERENCES batches (id) DEFERRABLE INITIALLY IMMEDIATE;
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

COMMIT;
