-- Nova's quota classes: hard limits a class sets over the built-in defaults. Only the class
-- "default" takes effect (as in Nova): it is every project's default before its own overrides
-- in `quotas`. -1 means unlimited. Other class names are kept and shown, and change nothing.
CREATE TABLE quota_classes (
    class_name TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (class_name, resource)
);
