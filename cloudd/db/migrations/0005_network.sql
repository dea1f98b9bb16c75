-- nova-network's model: networks with their fixed IPs, the guests' virtual interfaces (MACs),
-- floating IPs, and security groups with their rules and members.
-- Booleans are INTEGER 0/1; timestamps are seconds since the epoch.

CREATE TABLE networks (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    cidr TEXT NOT NULL UNIQUE,
    netmask TEXT NOT NULL,
    broadcast TEXT NOT NULL,
    gateway TEXT NOT NULL,
    dhcp_start TEXT NOT NULL,
    bridge TEXT NOT NULL,
    bridge_interface TEXT,
    vlan INTEGER,                       -- VLANManager: segment id (802.1Q tag or VXLAN VNI)
    multi_host INTEGER NOT NULL DEFAULT 0,
    dns1 TEXT,
    dns2 TEXT,
    project_id TEXT,                    -- VLANManager: the project it is associated with
    host TEXT,                          -- the network host (NULL: every host serves it)
    created_at DOUBLE PRECISION NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX networks_project_idx ON networks (project_id);

CREATE TABLE virtual_interfaces (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL UNIQUE,       -- the MAC address
    instance_uuid TEXT NOT NULL,
    network_id BIGINT NOT NULL REFERENCES networks(id),
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX virtual_interfaces_instance_idx ON virtual_interfaces (instance_uuid);

CREATE TABLE fixed_ips (
    id {{serial}},
    address TEXT NOT NULL UNIQUE,
    network_id BIGINT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    instance_uuid TEXT,
    virtual_interface_id BIGINT,
    allocated INTEGER NOT NULL DEFAULT 0,
    leased INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    host TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION
);
CREATE INDEX fixed_ips_network_idx ON fixed_ips (network_id, instance_uuid);
CREATE INDEX fixed_ips_instance_idx ON fixed_ips (instance_uuid);

CREATE TABLE floating_ips (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    address TEXT NOT NULL UNIQUE,
    fixed_ip_id BIGINT REFERENCES fixed_ips(id),
    project_id TEXT,
    host TEXT,
    auto_assigned INTEGER NOT NULL DEFAULT 0,
    pool TEXT NOT NULL DEFAULT 'nova',
    interface TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION
);
CREATE INDEX floating_ips_project_idx ON floating_ips (project_id);

CREATE TABLE security_groups (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    project_id TEXT NOT NULL,
    user_id TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE security_group_rules (
    id {{serial}},
    uuid TEXT NOT NULL UNIQUE,
    parent_group_id BIGINT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
    protocol TEXT,                      -- tcp | udp | icmp | NULL (any)
    from_port INTEGER,
    to_port INTEGER,
    cidr TEXT,
    group_id BIGINT REFERENCES security_groups(id) ON DELETE CASCADE,  -- source group
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX security_group_rules_parent_idx ON security_group_rules (parent_group_id);

CREATE TABLE security_group_instance_association (
    security_group_id BIGINT NOT NULL REFERENCES security_groups(id) ON DELETE CASCADE,
    instance_uuid TEXT NOT NULL,
    PRIMARY KEY (security_group_id, instance_uuid)
);
CREATE INDEX sgia_instance_idx ON security_group_instance_association (instance_uuid);
