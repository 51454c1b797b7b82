-- What the nodes of a cluster share beyond the registry's and access's rows.

-- Secrets every node must hold the same of (the registry-token signing key): the first node
-- to start stores its candidate, every other node reads it.
CREATE TABLE cluster_secrets (
    name       TEXT   COLLATE "C" PRIMARY KEY,
    value      BYTEA  NOT NULL,
    created_at BIGINT NOT NULL
);

-- Housekeeping passes (upload purge, deleted-version purge) run on one node at a time: a
-- node runs one only while it holds that task's row, until `held_until`.
CREATE TABLE task_leases (
    name       TEXT   COLLATE "C" PRIMARY KEY,
    holder     TEXT   NOT NULL,
    held_until BIGINT NOT NULL
);

-- Every change to access data, made by any node, `berth admin` or by hand, notifies the
-- channel `berth_access_changed` when its transaction commits; each node listens and its
-- access cache forgets everything it read before. Statement-level: one notification per
-- statement (PostgreSQL folds identical ones of a transaction into one).
CREATE FUNCTION berth_access_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('berth_access_changed', '');
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'accounts', 'org_members', 'teams', 'team_members', 'source_repos',
        'repo_collaborators', 'team_repos', 'packages', 'package_user_roles',
        'package_team_roles', 'package_job_access', 'apps', 'app_installations',
        'app_installation_repos', 'credential_repos', 'credential_packages', 'credential_sso'
    ] LOOP
        EXECUTE format(
            'CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
            'FOR EACH STATEMENT EXECUTE FUNCTION berth_access_changed()',
            t || '_changed', t);
    END LOOP;
END;
$$;

-- Credentials: every column but `last_used_at`, which each authenticated request may move
-- and which no access decision reads.
CREATE TRIGGER credentials_changed
    AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF
        kind, token_hash, user_id, note, scopes, owner_id, permission, all_repositories,
        repo_id, installation_id, created_at, expires_at, revoked_at, via_private_repos
    ON credentials
    FOR EACH STATEMENT EXECUTE FUNCTION berth_access_changed();

-- Which node holds a lease: a node that restarts (SIGKILL, a crash) gives back at once what
-- it held, instead of leaving its uploads and deliveries locked until the leases expire. A
-- node's name is kept in its data directory, so it survives the restart.
ALTER TABLE uploads ADD COLUMN lease_holder TEXT;
ALTER TABLE hook_deliveries ADD COLUMN lease_holder TEXT;
