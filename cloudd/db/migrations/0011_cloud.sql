-- The cloud's own identity: one row, written at the controller's first start (cloudd.db.cloud).
-- Its id goes into the metadata of every libvirt domain the cloud defines, so clouds sharing one
-- libvirtd (or a cloud started again on a fresh state directory) tell their domains apart.
CREATE TABLE cloud (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    cloud_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
