"""The identity domain: users, projects, roles, tokens, EC2 credentials, bootstrap.

Records, storage and rules live here; the Keystone-compatible HTTP handlers live in
cloudd.api.identity and import this package, never the reverse.
"""
