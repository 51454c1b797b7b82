-- Storage quotas per account (issue 14, part 4).
--
-- An account's usage is the bytes of the distinct blobs its repositories (`owner/…`) link: a
-- layer two packages of one account share counts once. The database keeps it as links come and
-- go, by triggers on `repository_blobs`, so whoever adds or removes a link (a push, a mount, a
-- package purge, garbage collection) keeps it right, and reading it is one row.

-- The quota a site administrator set on an account.
CREATE TABLE storage_quotas (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts (id),
    limit_bytes INTEGER NOT NULL CHECK (limit_bytes >= 0),
    updated_at  INTEGER NOT NULL
);

-- Each blob an account's repositories link, with how many of them link it.
CREATE TABLE account_blobs (
    owner  TEXT    NOT NULL,
    digest TEXT    NOT NULL,
    links  INTEGER NOT NULL,
    size   INTEGER NOT NULL,
    PRIMARY KEY (owner, digest)
) WITHOUT ROWID;

-- The sum of `account_blobs.size` per account.
CREATE TABLE account_usage (
    owner TEXT    PRIMARY KEY,
    bytes INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER account_blob_added AFTER INSERT ON account_blobs
BEGIN
    INSERT INTO account_usage (owner, bytes) VALUES (NEW.owner, NEW.size)
        ON CONFLICT (owner) DO UPDATE SET bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER account_blob_removed AFTER DELETE ON account_blobs
BEGIN
    UPDATE account_usage SET bytes = bytes - OLD.size WHERE owner = OLD.owner;
END;

-- What the links already made count (the triggers above fill `account_usage`).
INSERT INTO account_blobs (owner, digest, links, size)
SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1)
            ELSE r.name END AS owner,
       rb.digest, COUNT(*), b.size
FROM repository_blobs rb
JOIN repositories r ON r.id = rb.repository_id
JOIN blobs b ON b.digest = rb.digest
GROUP BY owner, rb.digest;

CREATE TRIGGER repository_blob_linked AFTER INSERT ON repository_blobs
BEGIN
    INSERT INTO account_blobs (owner, digest, links, size)
    SELECT CASE WHEN instr(r.name, '/') > 0 THEN substr(r.name, 1, instr(r.name, '/') - 1)
                ELSE r.name END,
           NEW.digest, 1, b.size
    FROM repositories r, blobs b
    WHERE r.id = NEW.repository_id AND b.digest = NEW.digest
    ON CONFLICT (owner, digest) DO UPDATE SET links = links + 1;
END;

CREATE TRIGGER repository_blob_unlinked AFTER DELETE ON repository_blobs
BEGIN
    UPDATE account_blobs SET links = links - 1
    WHERE digest = OLD.digest AND owner = (
        SELECT CASE WHEN instr(name, '/') > 0 THEN substr(name, 1, instr(name, '/') - 1)
                    ELSE name END
        FROM repositories WHERE id = OLD.repository_id);
    DELETE FROM account_blobs
    WHERE digest = OLD.digest AND links <= 0 AND owner = (
        SELECT CASE WHEN instr(name, '/') > 0 THEN substr(name, 1, instr(name, '/') - 1)
                    ELSE name END
        FROM repositories WHERE id = OLD.repository_id);
END;
