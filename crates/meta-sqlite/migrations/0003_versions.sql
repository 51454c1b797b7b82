-- Package versions: what the Packages API and package pages show about each manifest, and
-- deletion that can be undone for 30 days.

-- A deleted manifest keeps its row (and its blob and child references) until it is purged;
-- the registry reads only live ones.
ALTER TABLE manifests ADD COLUMN deleted_at INTEGER;

-- One row per manifest of a repository. The integer id is the version id of the API: it
-- stays the same across tag moves, deletion and restore.
CREATE TABLE package_versions (
    id            INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories (id),
    digest        TEXT    NOT NULL,
    pushed_by     INTEGER REFERENCES accounts (id),
    total_size    INTEGER NOT NULL,
    -- JSON list of `os/arch[/variant]` of an index's children; NULL for an image.
    platforms     TEXT,
    -- JSON object of the image's OCI labels (annotations over config labels).
    labels        TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    -- Manifest GETs, added in batches (never on the pull's path).
    downloads     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (repository_id, digest)
);

INSERT INTO package_versions (repository_id, digest, total_size, created_at, updated_at)
SELECT repository_id, digest, size, created_at, created_at FROM manifests;

-- The tags a deleted version had, given back when it is restored (if still free).
CREATE TABLE deleted_tags (
    repository_id INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    PRIMARY KEY (repository_id, digest, name)
) WITHOUT ROWID;

-- A deleted package is invisible to the registry and its name is reserved for its owner
-- until it is restored or purged (30 days).
ALTER TABLE packages ADD COLUMN deleted_at INTEGER;
