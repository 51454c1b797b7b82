-- The blob store's own state for an upload (an object store's multipart upload id, its parts
-- and its staged tail), recorded with the offset and hash state it belongs to, so whichever
-- node takes the next request goes on from exactly what was recorded.
ALTER TABLE uploads ADD COLUMN blob_state BYTEA NOT NULL DEFAULT '\x';
