-- Server tags (Nova's `tags` table, compute API 2.26): at most 50 per server, set by the API.
-- Rows go with their server only when the server is purged; a deleted server's tags are kept,
-- as Nova keeps them, and the views never show a deleted server's.
CREATE TABLE instance_tags (
    instance_uuid TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (instance_uuid, tag)
);
CREATE INDEX instance_tags_tag_idx ON instance_tags (tag);
