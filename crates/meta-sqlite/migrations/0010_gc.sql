-- Online garbage collection (ARCHITECTURE.md "Garbage collection").
-- When a pass first saw the blob referenced by nothing (no repository link, no manifest, no
-- verified upload); NULL while referenced. Any new reference clears it.
ALTER TABLE blobs ADD COLUMN unreferenced_since INTEGER;
-- Set when a pass decided to delete the blob's bytes: from then on nothing may link it (an
-- upload or mount of it answers a retryable error) until its bytes and this row are gone.
ALTER TABLE blobs ADD COLUMN deleting_at INTEGER;
CREATE INDEX blobs_unreferenced ON blobs (unreferenced_since) WHERE unreferenced_since IS NOT NULL;
CREATE INDEX blobs_deleting ON blobs (deleting_at) WHERE deleting_at IS NOT NULL;
-- When the link was made (or last made again): a link no manifest of its repository uses
-- goes once it is older than the grace period. Links made before this migration count as old.
ALTER TABLE repository_blobs ADD COLUMN linked_at INTEGER NOT NULL DEFAULT 0;
-- Uploads whose final PUT verified a digest hold that blob against collection.
CREATE INDEX uploads_by_verified ON uploads (verified_digest) WHERE verified_digest IS NOT NULL;
