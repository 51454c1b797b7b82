-- An upload's final PUT records the digest and size it verified before moving the bytes to
-- their content address, so a crash between that move and the commit is completed on restart
-- instead of leaving a session whose bytes are gone.
ALTER TABLE uploads ADD COLUMN verified_digest TEXT;
ALTER TABLE uploads ADD COLUMN verified_size INTEGER;

-- Open uploads per owner (`owner/…` ranges of repository names), for the per-account caps.
CREATE INDEX uploads_by_repository ON uploads (repository);
