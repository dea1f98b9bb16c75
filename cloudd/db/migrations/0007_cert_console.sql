-- Certificates issued by cloudd's CA (nova-cert's `certificates` table plus what revocation and
-- agent enrolment need) and console tokens (only their sha256 is stored, as in current Nova).

CREATE TABLE certificates (
    serial TEXT PRIMARY KEY,             -- hex serial number, as in the CRL
    subject TEXT NOT NULL,               -- RFC 4514 subject
    kind TEXT NOT NULL,                  -- 'user' (os-certificates), 'agent', 'controller'
    user_id TEXT,
    project_id TEXT,
    host TEXT,                           -- agent/controller certificates: the host's name
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    revoked_at DOUBLE PRECISION
);
CREATE INDEX certificates_user_idx ON certificates (user_id);
CREATE INDEX certificates_project_idx ON certificates (project_id);
CREATE INDEX certificates_host_idx ON certificates (host);

-- One-time join tokens for enrolling a compute host (sha256 of the secret only).
CREATE TABLE host_join_tokens (
    token_hash TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE console_auth_tokens (
    token_hash TEXT PRIMARY KEY,         -- hex sha256 of the token in the console URL
    console_type TEXT NOT NULL,
    instance_uuid TEXT NOT NULL,
    project_id TEXT NOT NULL,
    compute_host TEXT NOT NULL,          -- the instance's host when the token was made
    host TEXT NOT NULL,                  -- where the guest's VNC server listens
    port INTEGER NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires DOUBLE PRECISION NOT NULL
);
CREATE INDEX console_auth_tokens_instance_idx ON console_auth_tokens (instance_uuid);
CREATE INDEX console_auth_tokens_expires_idx ON console_auth_tokens (expires);
