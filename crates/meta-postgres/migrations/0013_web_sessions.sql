-- Web UI sessions. Each is a credential row of kind 'classic' (the user's whole access: every
-- scope they may hold, authorized for their organizations' SSO), so a page decides with the
-- same rules as the API and a session resolves, is revoked and records its last use as any
-- token; this row marks the credential a session (the token listings leave it out) and keeps
-- what the sessions page shows.
CREATE TABLE web_sessions (
    credential_id BIGINT PRIMARY KEY REFERENCES credentials (id),
    user_agent    TEXT    NOT NULL,
    address       TEXT    NOT NULL
);
