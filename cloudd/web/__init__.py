"""HTTP pieces every front (the controller's APIs, the S3 object store) shares: bounded request
bodies, JSON that cannot crash a handler, per-client request limits. Below the domains: it
imports nothing of cloudd but the core."""
