-- Nova's per-user quotas: hard limits of one user within one project, over the project's own
-- limits (a user's limit is the project's unless a row here sets it). -1 means unlimited.
CREATE TABLE project_user_quotas (
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, user_id, resource)
);
