-- The schema mirrors the tables of the public rates dump exactly (names, types, NOT NULL).
-- Foreign keys are DEFERRABLE so that a dump whose rows arrive in any order loads
-- inside one transaction with SET CONSTRAINTS ALL DEFERRED.
BEGIN;

CREATE TABLE regions (
    slug        text NOT NULL,
    name        text NOT NULL,
    parent_slug text,
    CONSTRAINT regions_pkey PRIMARY KEY (slug),
    CONSTRAINT regions_parent_slug_fkey FOREIGN KEY (parent_slug)
        REFERENCES regions (slug) DEFERRABLE INITIALLY IMMEDIATE
);

CREATE TABLE ports (
    code        text NOT NULL,
    name        text NOT NULL,
    parent_slug text NOT NULL,
    CONSTRAINT ports_pkey PRIMARY KEY (code),
    CONSTRAINT ports_parent_slug_fkey FOREIGN KEY (parent_slug)
        REFERENCES regions (slug) DEFERRABLE INITIALLY IMMEDIATE
);

CREATE TABLE prices (
    orig_code text    NOT NULL,
    dest_code text    NOT NULL,
    day       date    NOT NULL,
    price     integer NOT NULL,
    CONSTRAINT prices_orig_code_fkey FOREIGN KEY (orig_code)
        REFERENCES ports (code) DEFERRABLE INITIALLY IMMEDIATE,
    CONSTRAINT prices_dest_code_fkey FOREIGN KEY (dest_code)
        REFERENCES ports (code) DEFERRABLE INITIALLY IMMEDIATE
);

COMMIT;
