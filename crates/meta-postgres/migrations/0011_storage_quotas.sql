-- Storage quotas per account (issue 14, part 4). Conventions: see 0001_access.sql.
--
-- An account's usage is the bytes of the distinct blobs its repositories (`owner/…`) link: a
-- layer two packages of one account share counts once. The database keeps it as links come and
-- go, by triggers on `repository_blobs`, so whoever adds or removes a link (a push, a mount, a
-- package purge, garbage collection; on any node) keeps it right, and reading it is one row.
--
-- Locking: every change of an account's blobs locks its `account_usage` row before it changes
-- `account_blobs`, so the links of one account are counted one transaction at a time (a
-- completing upload reads the usage after its link knowing no other link of the account
-- slipped in); usage rows are locked in key order, after the statement's own links, so
-- pushes and garbage collection never deadlock on them.

-- The quota a site administrator set on an account.
CREATE TABLE storage_quotas (
    account_id  BIGINT PRIMARY KEY REFERENCES accounts (id),
    limit_bytes BIGINT NOT NULL CHECK (limit_bytes >= 0),
    updated_at  BIGINT NOT NULL
);

-- Each blob an account's repositories link, with how many of them link it.
CREATE TABLE account_blobs (
    owner  TEXT   NOT NULL COLLATE "C",
    digest TEXT   NOT NULL COLLATE "C",
    links  BIGINT NOT NULL,
    size   BIGINT NOT NULL,
    PRIMARY KEY (owner, digest)
);

-- The sum of `account_blobs.size` per account.
CREATE TABLE account_usage (
    owner TEXT   COLLATE "C" PRIMARY KEY,
    bytes BIGINT NOT NULL
);

INSERT INTO account_blobs (owner, digest, links, size)
SELECT split_part(r.name, '/', 1), rb.digest, COUNT(*), MIN(b.size)
FROM repository_blobs rb
JOIN repositories r ON r.id = rb.repository_id
JOIN blobs b ON b.digest = rb.digest
GROUP BY split_part(r.name, '/', 1), rb.digest;

INSERT INTO account_usage (owner, bytes)
SELECT owner, SUM(size)::BIGINT FROM account_blobs GROUP BY owner;

-- Statement-level triggers over the transition tables: a statement linking or unlinking many
-- blobs (a package purge, garbage collection) updates each account's rows once. Row-level
-- triggers updated the account's usage row once per link, and PostgreSQL's row versions made
-- that quadratic: 100,000 links in one statement took 248 s, against well under a second.
-- Also adds the bytes it counted to the transaction's `berth.bytes_linked` setting, so the
-- transaction that linked (a push checking its account's quota) learns what its link added
-- without locking anything before it: locks are taken in the order the statement takes them
-- (its links, then the usage rows), the order garbage collection's unlinking takes them too.
CREATE FUNCTION berth_blobs_linked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total BIGINT;
BEGIN
    INSERT INTO account_usage (owner, bytes)
        SELECT DISTINCT split_part(r.name, '/', 1), 0::BIGINT
        FROM added a JOIN repositories r ON r.id = a.repository_id
        ORDER BY 1
        ON CONFLICT (owner) DO NOTHING;
    PERFORM 1 FROM account_usage
        WHERE owner IN (SELECT split_part(r.name, '/', 1)
                        FROM added a JOIN repositories r ON r.id = a.repository_id)
        ORDER BY owner FOR UPDATE;
    WITH counted AS (
        INSERT INTO account_blobs (owner, digest, links, size)
            SELECT split_part(r.name, '/', 1), a.digest, COUNT(*), MIN(b.size)
            FROM added a
            JOIN repositories r ON r.id = a.repository_id
            JOIN blobs b ON b.digest = a.digest
            GROUP BY 1, 2
            ON CONFLICT (owner, digest) DO UPDATE SET links = account_blobs.links + EXCLUDED.links
            RETURNING owner, size, (xmax = 0) AS added
    ), sums AS (
        SELECT owner, SUM(size)::BIGINT AS bytes FROM counted WHERE added GROUP BY owner
    ), updated AS (
        UPDATE account_usage u SET bytes = u.bytes + s.bytes
            FROM sums s WHERE u.owner = s.owner
            RETURNING s.bytes
    )
    SELECT COALESCE(SUM(bytes), 0)::BIGINT INTO total FROM updated;
    PERFORM set_config('berth.bytes_linked',
        (COALESCE(NULLIF(current_setting('berth.bytes_linked', true), ''), '0')::BIGINT + total)::TEXT,
        true);
    RETURN NULL;
END $$;

CREATE FUNCTION berth_blobs_unlinked() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM account_usage
        WHERE owner IN (SELECT split_part(r.name, '/', 1)
                        FROM removed d JOIN repositories r ON r.id = d.repository_id)
        ORDER BY owner FOR UPDATE;
    UPDATE account_blobs ab SET links = ab.links - l.n
        FROM (SELECT split_part(r.name, '/', 1) AS owner, d.digest, COUNT(*) AS n
              FROM removed d JOIN repositories r ON r.id = d.repository_id
              GROUP BY 1, 2) l
        WHERE ab.owner = l.owner AND ab.digest = l.digest;
    WITH gone AS (
        DELETE FROM account_blobs ab
            USING (SELECT DISTINCT split_part(r.name, '/', 1) AS owner, d.digest
                   FROM removed d JOIN repositories r ON r.id = d.repository_id) l
            WHERE ab.owner = l.owner AND ab.digest = l.digest AND ab.links <= 0
            RETURNING ab.owner, ab.size
    )
    UPDATE account_usage u SET bytes = u.bytes - g.bytes
        FROM (SELECT owner, SUM(size)::BIGINT AS bytes FROM gone GROUP BY owner) g
        WHERE u.owner = g.owner;
    RETURN NULL;
END $$;

CREATE TRIGGER repository_blob_linked AFTER INSERT ON repository_blobs
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION berth_blobs_linked();
CREATE TRIGGER repository_blob_unlinked AFTER DELETE ON repository_blobs
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION berth_blobs_unlinked();
