-- The tables the engine needs: identity, services and compute nodes, flavors, key pairs,
-- instances with Nova's three state columns, faults and the action log.
-- Portable SQL: it runs unchanged on SQLite and PostgreSQL ({{serial}} is the only dialect token).

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    domain_id TEXT NOT NULL DEFAULT 'default',
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    domain_id TEXT NOT NULL DEFAULT 'default',
    password_hash TEXT NOT NULL,
    default_project_id TEXT,
    email TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE roles (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

CREATE TABLE role_assignments (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    role_id TEXT NOT NULL REFERENCES roles(id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, project_id, role_id)
);

CREATE TABLE services (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    host TEXT NOT NULL,
    "binary" TEXT NOT NULL,            -- quoted: BINARY is a reserved word in PostgreSQL
    topic TEXT NOT NULL,
    report_count BIGINT NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    disabled_reason TEXT,
    forced_down INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 1,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION,
    last_seen_up DOUBLE PRECISION,
    UNIQUE (host, "binary")
);

CREATE TABLE compute_nodes (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    service_id BIGINT REFERENCES services(id) ON DELETE CASCADE,
    host TEXT NOT NULL,
    hypervisor_hostname TEXT NOT NULL UNIQUE,
    hypervisor_type TEXT NOT NULL,
    hypervisor_version BIGINT NOT NULL DEFAULT 0,
    cpu_info TEXT NOT NULL DEFAULT '{}',
    supported_instances TEXT NOT NULL DEFAULT '[]',
    availability_zone TEXT NOT NULL DEFAULT 'nova',
    host_ip TEXT,
    vcpus INTEGER NOT NULL,
    memory_mb BIGINT NOT NULL,
    local_gb BIGINT NOT NULL,
    vcpus_used INTEGER NOT NULL DEFAULT 0,
    memory_mb_used BIGINT NOT NULL DEFAULT 0,
    local_gb_used BIGINT NOT NULL DEFAULT 0,
    running_vms INTEGER NOT NULL DEFAULT 0,
    cpu_allocation_ratio DOUBLE PRECISION NOT NULL DEFAULT 16.0,
    ram_allocation_ratio DOUBLE PRECISION NOT NULL DEFAULT 1.5,
    disk_allocation_ratio DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    reserved_host_memory_mb BIGINT NOT NULL DEFAULT 0,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION
);

CREATE TABLE flavors (
    id {{serial}},
    flavorid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    memory_mb INTEGER NOT NULL,
    vcpus INTEGER NOT NULL,
    root_gb INTEGER NOT NULL DEFAULT 0,
    ephemeral_gb INTEGER NOT NULL DEFAULT 0,
    swap INTEGER NOT NULL DEFAULT 0,
    rxtx_factor DOUBLE PRECISION NOT NULL DEFAULT 1.0,
    is_public INTEGER NOT NULL DEFAULT 1,
    disabled INTEGER NOT NULL DEFAULT 0,
    description TEXT,
    extra_specs TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE flavor_projects (
    flavor_id BIGINT NOT NULL REFERENCES flavors(id) ON DELETE CASCADE,
    project_id TEXT NOT NULL,
    PRIMARY KEY (flavor_id, project_id)
);

CREATE TABLE key_pairs (
    id {{serial}},
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key TEXT NOT NULL,
    type TEXT NOT NULL DEFAULT 'ssh',
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (user_id, name)
);

CREATE TABLE instances (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    hostname TEXT NOT NULL DEFAULT '',
    project_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    image_ref TEXT NOT NULL DEFAULT '',
    kernel_id TEXT NOT NULL DEFAULT '',
    ramdisk_id TEXT NOT NULL DEFAULT '',
    flavor TEXT NOT NULL,                -- JSON snapshot of the flavor at build (and new/old during resize)
    instance_type_id BIGINT,
    vcpus INTEGER NOT NULL,
    memory_mb BIGINT NOT NULL,
    root_gb BIGINT NOT NULL DEFAULT 0,
    ephemeral_gb BIGINT NOT NULL DEFAULT 0,
    vm_state TEXT NOT NULL,
    task_state TEXT,
    power_state INTEGER NOT NULL DEFAULT 0,
    host TEXT,
    node TEXT,
    launched_on TEXT,
    availability_zone TEXT,
    key_name TEXT,
    key_data TEXT,
    user_data TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    system_metadata TEXT NOT NULL DEFAULT '{}',
    config_drive TEXT NOT NULL DEFAULT '',
    access_ip_v4 TEXT,
    access_ip_v6 TEXT,
    locked INTEGER NOT NULL DEFAULT 0,
    locked_by TEXT,
    locked_reason TEXT,
    reservation_id TEXT NOT NULL DEFAULT '',
    launch_index INTEGER NOT NULL DEFAULT 0,
    progress INTEGER NOT NULL DEFAULT 0,
    description TEXT,
    scheduler_hints TEXT NOT NULL DEFAULT '{}',
    request_spec TEXT NOT NULL DEFAULT '{}',   -- JSON: what the scheduler needs to (re)try the build
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION,
    launched_at DOUBLE PRECISION,
    terminated_at DOUBLE PRECISION,
    deleted_at DOUBLE PRECISION,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX instances_project_idx ON instances (project_id, deleted);
CREATE INDEX instances_host_idx ON instances (host, deleted);
CREATE INDEX instances_updated_idx ON instances (updated_at);

CREATE TABLE instance_faults (
    id {{serial}},
    instance_uuid TEXT NOT NULL,
    code INTEGER NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '',
    host TEXT,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX instance_faults_uuid_idx ON instance_faults (instance_uuid);

CREATE TABLE instance_actions (
    id {{serial}},
    instance_uuid TEXT NOT NULL,
    action TEXT NOT NULL,
    request_id TEXT NOT NULL,
    user_id TEXT,
    project_id TEXT,
    message TEXT,
    start_time DOUBLE PRECISION NOT NULL,
    finish_time DOUBLE PRECISION,
    updated_at DOUBLE PRECISION
);
CREATE INDEX instance_actions_uuid_idx ON instance_actions (instance_uuid);
CREATE INDEX instance_actions_req_idx ON instance_actions (instance_uuid, request_id);

CREATE TABLE instance_action_events (
    id {{serial}},
    action_id BIGINT NOT NULL REFERENCES instance_actions(id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    host TEXT,
    result TEXT,
    traceback TEXT,
    details TEXT,
    start_time DOUBLE PRECISION NOT NULL,
    finish_time DOUBLE PRECISION
);
CREATE INDEX instance_action_events_action_idx ON instance_action_events (action_id);
