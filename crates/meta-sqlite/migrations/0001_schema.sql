-- Berth metadata schema. Text columns compare with the BINARY collation, so ORDER BY name is
-- byte order, as the distribution spec's pagination requires.

-- A repository exists once something (a blob link or a manifest) has been stored in it.
CREATE TABLE repositories (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- Every blob the registry has accepted, content addressed and shared by all repositories.
CREATE TABLE blobs (
    digest TEXT    PRIMARY KEY,
    size   INTEGER NOT NULL
) WITHOUT ROWID;

-- Which repository holds which blob: a blob is readable in a repository only when linked here.
CREATE TABLE repository_blobs (
    repository_id INTEGER NOT NULL REFERENCES repositories (id),
    digest        TEXT    NOT NULL REFERENCES blobs (digest),
    PRIMARY KEY (repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

-- Manifests, stored byte for byte as pushed, per repository.
CREATE TABLE manifests (
    repository_id INTEGER NOT NULL REFERENCES repositories (id),
    digest        TEXT    NOT NULL,
    media_type    TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    content       BLOB    NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    annotations   TEXT,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, digest)
);
-- The referrers listing: equality on subject, ordered by digest, without a sort.
CREATE INDEX manifests_by_subject ON manifests (repository_id, subject, digest);

-- Blobs (config, layers) a manifest references, for garbage collection.
CREATE TABLE manifest_blobs (
    repository_id   INTEGER NOT NULL,
    manifest_digest TEXT    NOT NULL,
    blob_digest     TEXT    NOT NULL,
    PRIMARY KEY (repository_id, manifest_digest, blob_digest),
    FOREIGN KEY (repository_id, manifest_digest) REFERENCES manifests (repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX manifest_blobs_by_blob ON manifest_blobs (blob_digest);

-- Manifests an index references.
CREATE TABLE manifest_children (
    repository_id INTEGER NOT NULL,
    parent_digest TEXT    NOT NULL,
    child_digest  TEXT    NOT NULL,
    PRIMARY KEY (repository_id, parent_digest, child_digest),
    FOREIGN KEY (repository_id, parent_digest) REFERENCES manifests (repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX manifest_children_by_child ON manifest_children (repository_id, child_digest);

-- Tags. The foreign key makes a tag pointing at a missing manifest impossible: a manifest
-- cannot be deleted while a tag still points at it.
CREATE TABLE tags (
    repository_id INTEGER NOT NULL,
    name          TEXT    NOT NULL,
    digest        TEXT    NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (repository_id, name),
    FOREIGN KEY (repository_id, digest) REFERENCES manifests (repository_id, digest)
) WITHOUT ROWID;
CREATE INDEX tags_by_manifest ON tags (repository_id, digest);

-- Upload sessions. They name their repository rather than reference it: the repository row
-- is created only when the first blob or manifest lands in it.
CREATE TABLE uploads (
    id          TEXT    PRIMARY KEY,
    repository  TEXT    NOT NULL,
    byte_offset INTEGER NOT NULL,
    hash_state  BLOB    NOT NULL,
    started_at  INTEGER NOT NULL,
    lease_token TEXT,
    lease_until INTEGER
) WITHOUT ROWID;
