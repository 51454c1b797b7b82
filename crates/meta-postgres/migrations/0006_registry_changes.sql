-- Every change to which manifest a tag names, or to whether a manifest is live, notifies the
-- channel `berth_registry_changed` when its transaction commits: each node listens, and its
-- manifest cache (`berth_core::registry::ManifestCache`) forgets what it read before. New
-- manifests need no notice (only manifests found are remembered), so only their updates and
-- deletions fire, and every change of tags.
CREATE FUNCTION berth_registry_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('berth_registry_changed', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER tags_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tags
    FOR EACH STATEMENT EXECUTE FUNCTION berth_registry_changed();
CREATE TRIGGER manifests_changed AFTER UPDATE OR DELETE OR TRUNCATE ON manifests
    FOR EACH STATEMENT EXECUTE FUNCTION berth_registry_changed();
