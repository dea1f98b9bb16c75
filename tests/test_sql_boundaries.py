"""SQL on a finished table family lives only in its repository module (issue 17, item 2).

Scans cloudd/ for statements that read or write the tables of a family (FROM / JOIN / UPDATE /
INSERT INTO / DELETE FROM <table>, and the db layer's helpers given the table's name) outside
`cloudd/db/` and the family's repository, and fails listing them. The families' repositories are
named in docs/architecture.md ("Repositories").
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLOUDD = ROOT / "cloudd"

# family -> (its tables, the modules allowed to hold their SQL: files or packages)
FAMILIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "instances": (
        ("instances", "instance_faults", "instance_actions", "instance_action_events",
         "instance_tags",
         # The agents' reports already applied, written with the instance change they report.
         "agent_reports"),
        ("cloudd/compute/instances/",
         # The scheduler's heal recomputes node usage from the instances: node SQL.
         "cloudd/compute/hosts.py",
         # A fixed IP's or a NIC's server (its project, host name, whether it is gone): the
         # network repository's joins.
         "cloudd/network/store/",
         # A server group's live members (their instance not deleted, and its host).
         "cloudd/compute/server_groups.py"),
    ),
    "hosts": (
        ("services", "compute_nodes"),
        ("cloudd/compute/hosts.py",),
    ),
    "images": (
        ("images", "image_members"),
        ("cloudd/image/records.py", "cloudd/image/listing.py"),
    ),
    # The EC2 API's own tables: ids (the numbers behind i-/ami-/sg-), tags, client tokens.
    "ec2": (
        ("ec2_id_mappings", "ec2_tags", "ec2_client_tokens"),
        ("cloudd/ec2/",),
    ),
    "network": (
        ("networks", "fixed_ips", "floating_ips", "virtual_interfaces"),
        ("cloudd/network/store/",),
    ),
    "security_groups": (
        ("security_groups", "security_group_rules", "security_group_instance_association"),
        ("cloudd/network/store/secgroups.py",),
    ),
    "identity": (
        ("users", "projects", "roles", "role_assignments", "tokens", "ec2_credentials"),
        ("cloudd/identity/store/",),
    ),
    "server_groups": (
        ("instance_groups", "instance_group_policy", "instance_group_members"),
        ("cloudd/compute/server_groups.py",),
    ),
    "flavors": (
        ("flavors", "flavor_projects"),
        ("cloudd/compute/flavors.py",),
    ),
    "key_pairs": (
        ("key_pairs",),
        ("cloudd/compute/keypairs.py",),
    ),
    "objectstore": (
        ("buckets", "bucket_objects", "multipart_uploads", "multipart_parts"),
        ("cloudd/objectstore/meta.py",),
    ),
    "cert": (
        ("certificates", "host_join_tokens"),
        ("cloudd/cert/records.py",),
    ),
    "consoleauth": (
        ("console_auth_tokens",),
        ("cloudd/consoleauth/tokens.py",),
    ),
    # The controllers' cluster: which controller holds each agent's link, relayed messages.
    "cluster": (
        ("agent_links", "cluster_messages"),
        ("cloudd/conductor/cluster.py",),
    ),
    # Every project's overrides of the quota defaults, compute and storage alike, and the
    # quota classes' (the default class's) overrides of the built-in defaults.
    "quotas": (
        ("quotas", "quota_classes", "project_user_quotas"),
        ("cloudd/quota_limits.py",),
    ),
}

# (file, family) pairs still holding SQL outside the family's repository, each with why it is
# left for now. An entry that no longer matches fails too, so the list only shrinks.
PENDING: dict[tuple[str, str], str] = {}


# Tables of cloudd/db/migrations/*.sql that are in no family: the db layer's own, for good
# (schema_migrations is made by cloudd/db/base.py itself, not by a migration), and families on
# their way, each set with why (an entry whose table has a family fails: these only shrink).
DB_LAYER_TABLES = frozenset({"cloud"})  # the cloud id (cloudd.db.cloud_id)
FAMILY_PENDING: dict[str, frozenset[str]] = {}
MIGRATIONS = CLOUDD / "db" / "migrations"


def _pattern(tables: tuple[str, ...]) -> re.Pattern[str]:
    names = "|".join(tables)
    return re.compile(
        rf'\b(?:FROM|JOIN|UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+"?(?:{names})\b"?(?!\.)'
        rf'|\b(?:conditional_update|insert)\(\s*\w+\s*,\s*"(?:{names})"')


def _allowed(relative: str, modules: tuple[str, ...]) -> bool:
    return relative.startswith("cloudd/db/") or any(
        relative == m or (m.endswith("/") and relative.startswith(m)) for m in modules)


def _hits(family: str) -> dict[str, list[str]]:
    tables, modules = FAMILIES[family]
    pattern = _pattern(tables)
    found: dict[str, list[str]] = {}
    for path in sorted(CLOUDD.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if _allowed(relative, modules):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                found.setdefault(relative, []).append(f"{relative}:{number}: {line.strip()}")
    return found


def test_family_sql_stays_in_its_repository() -> None:
    outside = []
    for family in FAMILIES:
        for relative, lines in _hits(family).items():
            if (relative, family) not in PENDING:
                outside.extend(lines)
    assert not outside, (
        "SQL on a table family outside its repository (call a function of the repository named"
        " in docs/architecture.md instead):\n" + "\n".join(outside))


def test_pending_entries_are_still_needed() -> None:
    stale = [f"{relative} ({family})" for relative, family in PENDING
             if relative not in _hits(family)]
    assert not stale, "no SQL left there: remove these PENDING entries: " + ", ".join(stale)


def test_the_scan_sees_sql() -> None:
    """Each family's pattern matches its repository's own statements (so the scan is not blind)."""
    for family, (tables, modules) in FAMILIES.items():
        files = [path for m in modules
                 for path in ((ROOT / m).rglob("*.py") if m.endswith("/") else [ROOT / m])]
        assert any(_pattern(tables).search(path.read_text()) for path in files), family
    pattern = _pattern(FAMILIES["instances"][0] + FAMILIES["hosts"][0])
    assert not pattern.search("from cloudd.compute import instances, hosts\n")


def _migration_tables() -> set[str]:
    created = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)", re.IGNORECASE)
    return {name.lower() for path in sorted(MIGRATIONS.glob("*.sql"))
            for name in created.findall(path.read_text())}


def test_every_table_has_one_family() -> None:
    """Every table the migrations create is in exactly one family (or a set named above)."""
    homes: dict[str, list[str]] = {}
    for family, (tables, _) in FAMILIES.items():
        for table in tables:
            homes.setdefault(table, []).append(family)
    for reason, pending in FAMILY_PENDING.items():
        for table in pending:
            homes.setdefault(table, []).append(f"pending: {reason}")
    for table in DB_LAYER_TABLES:
        homes.setdefault(table, []).append("the db layer")
    created = _migration_tables()
    assert created, "no CREATE TABLE found in the migrations"
    homeless = sorted(created - homes.keys())
    assert not homeless, "tables in no family (add them to FAMILIES): " + ", ".join(homeless)
    twice = {table: where for table, where in homes.items() if len(where) > 1}
    assert not twice, f"tables in more than one family (or a family and a pending set): {twice}"
    unknown = sorted(homes.keys() - created)
    assert not unknown, "no migration creates these tables: " + ", ".join(unknown)
