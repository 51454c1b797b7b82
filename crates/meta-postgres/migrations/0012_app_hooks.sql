-- A GitHub App's one webhook: a hook row with `app_id` set (and `account_id` the app's owner,
-- whose hook count it adds to). It receives the package events of the accounts the app is
-- installed on, limited to the installation's selected repositories.
ALTER TABLE hooks ADD COLUMN app_id BIGINT REFERENCES apps (id);
CREATE INDEX hooks_by_app ON hooks (app_id) WHERE app_id IS NOT NULL;
