-- Server groups (Nova's API-database tables): a group, its policy (with 2.64's rules) and the
-- instances that joined it at create time. Groups are deleted for real (as in Nova), taking
-- their policy and member rows with them; members whose instance was deleted are ignored by
-- joining with instances.deleted = 0.

CREATE TABLE instance_groups (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION
);
CREATE INDEX instance_groups_project_idx ON instance_groups (project_id);

CREATE TABLE instance_group_policy (
    id {{serial}},
    group_id BIGINT NOT NULL REFERENCES instance_groups(id) ON DELETE CASCADE,
    policy TEXT NOT NULL,               -- affinity, anti-affinity, soft-affinity, soft-anti-affinity
    rules TEXT NOT NULL DEFAULT '{}'    -- JSON, e.g. {"max_server_per_host": 2}
);
CREATE INDEX instance_group_policy_group_idx ON instance_group_policy (group_id);

CREATE TABLE instance_group_members (
    id {{serial}},
    group_id BIGINT NOT NULL REFERENCES instance_groups(id) ON DELETE CASCADE,
    instance_uuid TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (group_id, instance_uuid)
);
CREATE INDEX instance_group_members_instance_idx ON instance_group_members (instance_uuid);
