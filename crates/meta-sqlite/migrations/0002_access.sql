-- Accounts, source repositories, packages and credentials: GHCR's access model.
-- Logins and repository names compare case-insensitively (NOCASE), as GitHub's do.
-- Enumerations are stored as text: kind 'user'|'organization'; visibility
-- 'private'|'internal'|'public'; role 'read'|'write'|'admin'; org role 'member'|'owner'.

CREATE TABLE accounts (
    id                   INTEGER PRIMARY KEY,
    login                TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    kind                 TEXT    NOT NULL CHECK (kind IN ('user', 'organization')),
    name                 TEXT,
    email                TEXT,
    password_hash        TEXT,
    site_admin           INTEGER NOT NULL DEFAULT 0,
    requires_sso         INTEGER NOT NULL DEFAULT 0,
    -- Package creation policy: visibility of new packages; comma-separated visibilities
    -- members may create ('' = members may not create packages).
    default_visibility   TEXT    NOT NULL DEFAULT 'private',
    member_visibilities  TEXT    NOT NULL DEFAULT 'private,internal,public',
    created_at           INTEGER NOT NULL
);

CREATE TABLE org_members (
    org_id  INTEGER NOT NULL REFERENCES accounts (id),
    user_id INTEGER NOT NULL REFERENCES accounts (id),
    role    TEXT    NOT NULL CHECK (role IN ('member', 'owner')),
    PRIMARY KEY (org_id, user_id)
) WITHOUT ROWID;
CREATE INDEX org_members_by_user ON org_members (user_id);

CREATE TABLE teams (
    id     INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL REFERENCES accounts (id),
    slug   TEXT    NOT NULL COLLATE NOCASE,
    name   TEXT    NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE team_members (
    team_id INTEGER NOT NULL REFERENCES teams (id),
    user_id INTEGER NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (team_id, user_id)
) WITHOUT ROWID;
CREATE INDEX team_members_by_user ON team_members (user_id);

-- Source repositories (the forge's repositories packages link to).
CREATE TABLE source_repos (
    id         INTEGER PRIMARY KEY,
    owner_id   INTEGER NOT NULL REFERENCES accounts (id),
    name       TEXT    NOT NULL COLLATE NOCASE,
    visibility TEXT    NOT NULL CHECK (visibility IN ('private', 'internal', 'public')),
    created_at INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE repo_collaborators (
    repo_id INTEGER NOT NULL REFERENCES source_repos (id),
    user_id INTEGER NOT NULL REFERENCES accounts (id),
    role    TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    PRIMARY KEY (repo_id, user_id)
) WITHOUT ROWID;

CREATE TABLE team_repos (
    team_id INTEGER NOT NULL REFERENCES teams (id),
    repo_id INTEGER NOT NULL REFERENCES source_repos (id),
    role    TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    PRIMARY KEY (team_id, repo_id)
) WITHOUT ROWID;
CREATE INDEX team_repos_by_repo ON team_repos (repo_id);

-- Packages: a registry repository name owned by the account its first segment names. A
-- package exists from its first authorized push (or from an API call that links it).
CREATE TABLE packages (
    id             INTEGER PRIMARY KEY,
    name           TEXT    NOT NULL UNIQUE,
    owner_id       INTEGER NOT NULL REFERENCES accounts (id),
    visibility     TEXT    NOT NULL CHECK (visibility IN ('private', 'internal', 'public')),
    linked_repo_id INTEGER REFERENCES source_repos (id),
    inherits       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL
);
CREATE INDEX packages_by_owner ON packages (owner_id, name);

CREATE TABLE package_user_roles (
    package_id INTEGER NOT NULL REFERENCES packages (id),
    user_id    INTEGER NOT NULL REFERENCES accounts (id),
    role       TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    PRIMARY KEY (package_id, user_id)
) WITHOUT ROWID;

CREATE TABLE package_team_roles (
    package_id INTEGER NOT NULL REFERENCES packages (id),
    team_id    INTEGER NOT NULL REFERENCES teams (id),
    role       TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    PRIMARY KEY (package_id, team_id)
) WITHOUT ROWID;

-- Repositories whose job tokens may use a package (beyond the linked one).
CREATE TABLE package_job_access (
    package_id INTEGER NOT NULL REFERENCES packages (id),
    repo_id    INTEGER NOT NULL REFERENCES source_repos (id),
    role       TEXT    NOT NULL CHECK (role IN ('read', 'write', 'admin')),
    PRIMARY KEY (package_id, repo_id)
) WITHOUT ROWID;

CREATE TABLE apps (
    id          INTEGER PRIMARY KEY,
    owner_id    INTEGER NOT NULL REFERENCES accounts (id),
    slug        TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    secret_hash BLOB    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE app_installations (
    id               INTEGER PRIMARY KEY,
    app_id           INTEGER NOT NULL REFERENCES apps (id),
    account_id       INTEGER NOT NULL REFERENCES accounts (id),
    all_repositories INTEGER NOT NULL,
    permission       TEXT    NOT NULL CHECK (permission IN ('read', 'write')),
    created_at       INTEGER NOT NULL,
    UNIQUE (app_id, account_id)
);

CREATE TABLE app_installation_repos (
    installation_id INTEGER NOT NULL REFERENCES app_installations (id),
    repo_id         INTEGER NOT NULL REFERENCES source_repos (id),
    PRIMARY KEY (installation_id, repo_id)
) WITHOUT ROWID;

-- Credentials: only the SHA-256 of a secret is stored. The grant columns used depend on kind:
--   classic:      user_id, scopes
--   fine_grained: user_id, owner_id, permission (+ credential_repos, credential_packages)
--   app:          owner_id (the installation's account), permission, all_repositories
--                 (+ credential_repos), installation_id
--   job:          repo_id, owner_id (the repository's owner), permission
CREATE TABLE credentials (
    id               INTEGER PRIMARY KEY,
    kind             TEXT    NOT NULL CHECK (kind IN ('classic', 'fine_grained', 'app', 'job')),
    token_hash       BLOB    NOT NULL UNIQUE,
    user_id          INTEGER REFERENCES accounts (id),
    note             TEXT    NOT NULL,
    scopes           TEXT,
    owner_id         INTEGER REFERENCES accounts (id),
    permission       TEXT CHECK (permission IN ('read', 'write')),
    all_repositories INTEGER NOT NULL DEFAULT 0,
    repo_id          INTEGER REFERENCES source_repos (id),
    installation_id  INTEGER REFERENCES app_installations (id),
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER,
    last_used_at     INTEGER,
    revoked_at       INTEGER
);
CREATE INDEX credentials_by_user ON credentials (user_id, id);

CREATE TABLE credential_repos (
    credential_id INTEGER NOT NULL REFERENCES credentials (id),
    repo_id       INTEGER NOT NULL REFERENCES source_repos (id),
    PRIMARY KEY (credential_id, repo_id)
) WITHOUT ROWID;

CREATE TABLE credential_packages (
    credential_id INTEGER NOT NULL REFERENCES credentials (id),
    package_name  TEXT    NOT NULL,
    PRIMARY KEY (credential_id, package_name)
) WITHOUT ROWID;

-- SSO organizations that authorized a classic token.
CREATE TABLE credential_sso (
    credential_id INTEGER NOT NULL REFERENCES credentials (id),
    org_id        INTEGER NOT NULL REFERENCES accounts (id),
    PRIMARY KEY (credential_id, org_id)
) WITHOUT ROWID;
