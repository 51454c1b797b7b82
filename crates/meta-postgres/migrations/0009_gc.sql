-- Online garbage collection (ARCHITECTURE.md "Garbage collection"); see the SQLite
-- migration 0010_gc.sql for what each column means.
ALTER TABLE blobs ADD COLUMN unreferenced_since BIGINT;
ALTER TABLE blobs ADD COLUMN deleting_at BIGINT;
CREATE INDEX blobs_unreferenced ON blobs (unreferenced_since) WHERE unreferenced_since IS NOT NULL;
CREATE INDEX blobs_deleting ON blobs (deleting_at) WHERE deleting_at IS NOT NULL;
ALTER TABLE repository_blobs ADD COLUMN linked_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX uploads_by_verified ON uploads (verified_digest) WHERE verified_digest IS NOT NULL;
