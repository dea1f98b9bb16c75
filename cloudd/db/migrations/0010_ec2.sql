-- The EC2 API's own state: stable EC2 ids (i-/ami-/aki-/ari-/sg-%08x, the number is this
-- table's id, as Nova's instance_id_mappings and s3_images), tags, and RunInstances client
-- tokens (idempotency). Reservation ids are the instances' own reservation_id ("r-...").

CREATE TABLE ec2_id_mappings (
    id {{serial}},
    kind TEXT NOT NULL,               -- instance | image | security_group
    uuid TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (kind, uuid)
);

CREATE TABLE ec2_tags (
    resource_uuid TEXT NOT NULL,
    resource_kind TEXT NOT NULL,      -- instance | image
    project_id TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (resource_uuid, tag_key)
);

CREATE INDEX ec2_tags_project_idx ON ec2_tags (project_id);

CREATE TABLE ec2_client_tokens (
    project_id TEXT NOT NULL,
    client_token TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (project_id, client_token)
);
