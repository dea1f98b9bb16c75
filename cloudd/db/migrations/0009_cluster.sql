-- Scale-out on PostgreSQL: which controller holds each agent's websocket, and the messages one
-- controller relays through another (the NOTIFY payload is only the row id, so size is no limit).
CREATE TABLE agent_links (
    host TEXT PRIMARY KEY,
    controller_id TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);

CREATE TABLE cluster_messages (
    id {{serial}},
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
