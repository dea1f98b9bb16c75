-- Image v2 (Glance): image records and their members. The bytes live in the object store
-- (<state_dir>/glance/images/<id>); deleted images are removed, not kept as deleted rows.

CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT,
    owner TEXT,                        -- project id; NULL for images nobody owns
    status TEXT NOT NULL,              -- queued | saving | active | killed | deactivated
    visibility TEXT NOT NULL,          -- public | private | shared | community
    protected INTEGER NOT NULL DEFAULT 0,
    os_hidden INTEGER NOT NULL DEFAULT 0,
    disk_format TEXT,
    container_format TEXT,
    size BIGINT,
    virtual_size BIGINT,
    checksum TEXT,                     -- md5 hex
    os_hash_algo TEXT,
    os_hash_value TEXT,
    min_disk INTEGER NOT NULL DEFAULT 0,
    min_ram INTEGER NOT NULL DEFAULT 0,
    tags TEXT NOT NULL DEFAULT '[]',        -- JSON list of strings
    properties TEXT NOT NULL DEFAULT '{}',  -- JSON object: the extra top-level keys
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX images_owner_idx ON images (owner);
CREATE INDEX images_visibility_idx ON images (visibility);

CREATE TABLE image_members (
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    member TEXT NOT NULL,              -- project id
    status TEXT NOT NULL DEFAULT 'pending',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (image_id, member)
);
