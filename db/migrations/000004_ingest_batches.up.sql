-- One row per ingested batch, written in the same transaction as the batch's prices, so a
-- row here means the batch is either wholly in prices (loaded) or wholly absent (rejected).
-- source_key identifies where the batch came from (an S3 object version, an API
-- Idempotency-Key, a file's checksum); its uniqueness makes a redelivered or retried batch a
-- no-op that finds the first result.
CREATE TABLE IF NOT EXISTS batches (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_key   text        NOT NULL,
    source_kind  text        NOT NULL CHECK (source_kind IN ('s3', 'api', 'file')),
    source_name  text        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('loaded', 'rejected')),
    rows         bigint      NOT NULL CHECK (rows >= 0),
    bad_rows     bigint      NOT NULL DEFAULT 0 CHECK (bad_rows >= 0),
    bytes        bigint      NOT NULL CHECK (bytes >= 0),
    sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    duration_ms  bigint      NOT NULL,
    timings      jsonb       NOT NULL DEFAULT '{}',
    report       jsonb,
    CONSTRAINT batches_source_key_key UNIQUE (source_key),
    CONSTRAINT batches_rejected_has_report CHECK (status = 'loaded' OR report IS NOT NULL)
);

-- Operators list the latest batches first.
CREATE INDEX IF NOT EXISTS batches_finished_at_idx ON batches (finished_at DESC);
