-- Storage policies (issue 14): immutable tags and retention, set on an account (for all its
-- packages) or on one package, stored as the JSON document core serializes (read back whole;
-- only `retention`'s presence is looked into, to find the packages a pass visits). And the
-- last recorded pull of each version, for "delete versions not pulled for D days" (written
-- with the download counts, in batches).
CREATE TABLE account_policies (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id),
    policies   TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE package_policies (
    package_id BIGINT PRIMARY KEY REFERENCES packages (id),
    policies   TEXT   NOT NULL,
    updated_at BIGINT NOT NULL
);

ALTER TABLE package_versions ADD COLUMN last_pulled_at BIGINT;
