-- Webhooks (GitHub's repository and organization hooks, and Berth's user hooks) and their
-- delivery queue. A hook belongs to exactly one of a repository, an organization or a user.
-- Enumerations are stored as text: content_type 'json'|'form'; delivery state
-- 'pending'|'delivered'|'failed'.

CREATE TABLE hooks (
    id             INTEGER PRIMARY KEY,
    repo_id        INTEGER REFERENCES source_repos (id),
    account_id     INTEGER REFERENCES accounts (id),
    active         INTEGER NOT NULL,
    -- JSON array of event names: 'package', 'registry_package', '*'.
    events         TEXT    NOT NULL,
    url            TEXT    NOT NULL,
    content_type   TEXT    NOT NULL CHECK (content_type IN ('json', 'form')),
    secret         TEXT,
    insecure_ssl   INTEGER NOT NULL,
    deleted_events INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- GitHub's last_response: the outcome of the hook's latest attempt.
    last_code      INTEGER,
    last_status    TEXT    NOT NULL DEFAULT 'unused',
    last_message   TEXT,
    CHECK ((repo_id IS NULL) <> (account_id IS NULL))
);
CREATE INDEX hooks_by_repo ON hooks (repo_id) WHERE repo_id IS NOT NULL;
CREATE INDEX hooks_by_account ON hooks (account_id) WHERE account_id IS NOT NULL;

-- The queue. Deliveries of one hook are delivered in id order: only the oldest pending one
-- of a hook is ever claimed (the partial index finds it). A claim is a lease (token +
-- expiry) so nodes sharing the database never deliver one twice.
CREATE TABLE hook_deliveries (
    id              INTEGER PRIMARY KEY,
    hook_id         INTEGER NOT NULL REFERENCES hooks (id) ON DELETE CASCADE,
    guid            TEXT    NOT NULL,
    event           TEXT    NOT NULL,
    action          TEXT,
    payload         TEXT    NOT NULL,
    redelivery      INTEGER NOT NULL,
    repository_id   INTEGER,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_token     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL
);
CREATE INDEX hook_deliveries_pending ON hook_deliveries (hook_id, id) WHERE state = 'pending';
CREATE INDEX hook_deliveries_by_hook ON hook_deliveries (hook_id, id);

-- Every attempt of a delivery: what was sent and what came back (bodies truncated).
CREATE TABLE hook_attempts (
    delivery_id      INTEGER NOT NULL REFERENCES hook_deliveries (id) ON DELETE CASCADE,
    number           INTEGER NOT NULL,
    started_at       INTEGER NOT NULL,
    duration_ms      INTEGER NOT NULL,
    request_headers  TEXT    NOT NULL,
    status_code      INTEGER,
    response_headers TEXT    NOT NULL,
    response_body    TEXT    NOT NULL,
    error            TEXT,
    PRIMARY KEY (delivery_id, number)
) WITHOUT ROWID;
