-- The S3 object store's metadata. Object bytes live in files under [objectstore] buckets_path;
-- a row here is what makes an object visible, so it is written only after its file is complete
-- (a crash mid-upload leaves at most an unreferenced file, which start-up removes).

CREATE TABLE buckets (
    name TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    public_read INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX buckets_project_idx ON buckets (project_id);

CREATE TABLE bucket_objects (
    bucket TEXT NOT NULL REFERENCES buckets(name),
    object_key TEXT NOT NULL,
    blob TEXT NOT NULL,               -- file name under the bucket's directory
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,               -- without quotes: md5 hex, or md5-of-md5s "-N" for multipart
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',  -- JSON: x-amz-meta-* and stored standard headers
    public_read INTEGER NOT NULL DEFAULT 0,
    last_modified DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (bucket, object_key)
);

CREATE TABLE multipart_uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL REFERENCES buckets(name),
    object_key TEXT NOT NULL,
    project_id TEXT NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    public_read INTEGER NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE INDEX multipart_uploads_bucket_idx ON multipart_uploads (bucket);

CREATE TABLE multipart_parts (
    upload_id TEXT NOT NULL REFERENCES multipart_uploads(upload_id) ON DELETE CASCADE,
    part_number INTEGER NOT NULL,
    blob TEXT NOT NULL,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    last_modified DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
