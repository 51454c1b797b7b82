-- Whether a fine-grained token reaches packages through the user's roles on non-public
-- repositories: only when the classic token that minted it had the `repo` scope (a token
-- never reaches further than the one that minted it). Tokens minted before keep reaching.
ALTER TABLE credentials ADD COLUMN via_private_repos INTEGER NOT NULL DEFAULT 1;
