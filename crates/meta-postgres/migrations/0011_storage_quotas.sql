-- Storage quotas per account (issue 14, part 4). Conventions: see 0001_access.sql.
--
-- An account's usage is the bytes of the distinct blobs its repositories (`owner/…`) link: a
-- layer two packages of one account share counts once. The database keeps it as links come and
-- go, by triggers on `repository_blobs`, so whoever adds or removes a link (a push, a mount, a
-- package purge, garbage collection; on any node) keeps it right, and reading it is one row.
--
-- Locking: every change of an account's blobs first locks its `account_usage` row, so the
-- links of one account are counted one transaction at a time (a completing upload reads the
-- usage after its link knowing no other link of the account slipped in), and in one order
-- (usage, then blob), so they never deadlock.

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

CREATE FUNCTION berth_blob_linked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    account TEXT;
    blob_size BIGINT;
    added BOOLEAN;
BEGIN
    SELECT split_part(name, '/', 1) INTO account FROM repositories WHERE id = NEW.repository_id;
    SELECT size INTO blob_size FROM blobs WHERE digest = NEW.digest;
    INSERT INTO account_usage (owner, bytes) VALUES (account, 0) ON CONFLICT (owner) DO NOTHING;
    PERFORM 1 FROM account_usage WHERE owner = account FOR UPDATE;
    INSERT INTO account_blobs (owner, digest, links, size)
        VALUES (account, NEW.digest, 1, blob_size)
        ON CONFLICT (owner, digest) DO UPDATE SET links = account_blobs.links + 1
        RETURNING (xmax = 0) INTO added;
    IF added THEN
        UPDATE account_usage SET bytes = bytes + blob_size WHERE owner = account;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION berth_blob_unlinked() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    account TEXT;
    remaining BIGINT;
    blob_size BIGINT;
BEGIN
    SELECT split_part(name, '/', 1) INTO account FROM repositories WHERE id = OLD.repository_id;
    PERFORM 1 FROM account_usage WHERE owner = account FOR UPDATE;
    UPDATE account_blobs SET links = links - 1
        WHERE owner = account AND digest = OLD.digest
        RETURNING links, size INTO remaining, blob_size;
    IF FOUND AND remaining <= 0 THEN
        DELETE FROM account_blobs WHERE owner = account AND digest = OLD.digest;
        UPDATE account_usage SET bytes = bytes - blob_size WHERE owner = account;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER repository_blob_linked AFTER INSERT ON repository_blobs
    FOR EACH ROW EXECUTE FUNCTION berth_blob_linked();
CREATE TRIGGER repository_blob_unlinked AFTER DELETE ON repository_blobs
    FOR EACH ROW EXECUTE FUNCTION berth_blob_unlinked();
