-- Identity: issued tokens (only their sha256 is stored, never the token) and EC2 credentials.

CREATE TABLE tokens (
    id_hash TEXT PRIMARY KEY,          -- hex sha256 of the opaque token the client holds
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT REFERENCES projects(id) ON DELETE CASCADE,   -- NULL: unscoped
    roles TEXT NOT NULL DEFAULT '[]',  -- JSON [{"id", "name"}], implied roles already expanded
    methods TEXT NOT NULL DEFAULT '[]',
    audit_ids TEXT NOT NULL DEFAULT '[]',
    issued_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX tokens_user_idx ON tokens (user_id);
CREATE INDEX tokens_expires_idx ON tokens (expires_at);

CREATE TABLE ec2_credentials (
    access TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX ec2_credentials_user_idx ON ec2_credentials (user_id);
