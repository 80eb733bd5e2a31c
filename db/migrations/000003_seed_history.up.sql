-- One row per dump the seeder applied; the newest row is the data set in place.
CREATE TABLE IF NOT EXISTS seed_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256       text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    source       text        NOT NULL,
    regions      bigint      NOT NULL,
    ports        bigint      NOT NULL,
    prices       bigint      NOT NULL,
    duration_ms  bigint      NOT NULL,
    replaced     boolean     NOT NULL DEFAULT false,
    applied_at   timestamptz NOT NULL DEFAULT now()
);
