-- Per-project quota overrides set by `cloudd manage quota set`; a resource without a row here
-- keeps the default of cloudd/api/compute/quotas.py (DEFAULT_QUOTAS). -1 means unlimited.

CREATE TABLE quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, resource)
);
