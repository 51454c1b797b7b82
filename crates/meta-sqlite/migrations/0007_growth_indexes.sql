-- Indexes a big store needs (measured with berth-bench --growth, 1,000,000 manifests):
-- the purge of deleted manifests, which runs at startup and every hour, finds them without
-- scanning every manifest (0.8 s a statement on the big store, holding the writer);
CREATE INDEX manifests_deleted ON manifests (deleted_at) WHERE deleted_at IS NOT NULL;
-- a package's newest versions (the Packages API listing's latest version, the versions
-- listing) are an index walk instead of a sort of all its versions.
CREATE INDEX package_versions_newest ON package_versions (repository_id, created_at DESC, id DESC);
