"""`cloudd manage`: the nova-manage of cloudd.

Each group lives in its own module (services/hosts, resources, status); `add_manage_parser(sub)`
is the one entry the CLI imports. Errors an operator can fix print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from cloudd.config import CloudConfig, ConfigError, load_config, render_sample
from cloudd.manage import resources, services, status
from cloudd.manage.common import ManageError, with_db

__all__ = ["add_manage_parser"]


async def _db_sync(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    await db.migrate()
    print(f"database at schema version {await db.schema_version()}")
    return 0


async def _db_version(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    print(await db.schema_version())
    return 0


async def _bootstrap(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    from cloudd.compute import flavors
    from cloudd.identity.bootstrap import bootstrap, write_client_files

    await db.migrate()
    state_dir = Path(cfg.default.state_dir)
    creds = await bootstrap(db, state_dir)
    await flavors.ensure_defaults(db)
    auth_url = cfg.api.public_url.rstrip("/") + "/identity"
    # A one-shot CLI command: nothing else runs on this loop, blocking file I/O is harmless here.
    clouds_yaml = Path(os.path.expanduser(args.clouds_yaml))  # noqa: ASYNC240
    files = write_client_files(creds, auth_url, state_dir, clouds_yaml)
    print(f"admin password: {creds['password_file']} (0600)")
    for path in files:
        print(f"credentials: {path}")
    return await _bootstrap_network(db, cfg, creds["project_id"])


async def _bootstrap_network(db: Any, cfg: CloudConfig, admin_project_id: str) -> int:
    """The default network and floating pool, once ([network] default_network)."""
    from cloudd.network import defaults
    from cloudd.vocab.network_errors import NetworkError

    try:
        done = await defaults.ensure_default_network(db, cfg.network, admin_project_id)
    except NetworkError as exc:  # a range the host uses: the operator picks another
        raise ManageError(f"bootstrap: {exc}", code=2) from None
    for line in done:
        print(line)
    return 0


def _config_check(args: argparse.Namespace) -> int:
    try:
        load_config(args.file)
    except ConfigError as exc:
        print(f"cloudd: configuration error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: OK")
    return 0


def _config_sample(args: argparse.Namespace) -> int:
    sys.stdout.write(render_sample())
    return 0


def add_manage_parser(sub: Any) -> None:
    manage = sub.add_parser("manage", help="administrative tasks")
    groups = manage.add_subparsers(dest="group", required=True)

    dbp = groups.add_parser("db", help="database schema").add_subparsers(dest="action", required=True)
    dbp.add_parser("sync", help="apply pending migrations").set_defaults(func=with_db(_db_sync))
    dbp.add_parser("version", help="print the schema version").set_defaults(
        func=with_db(_db_version)
    )

    cfgp = groups.add_parser("config", help="configuration files").add_subparsers(
        dest="action", required=True
    )
    check = cfgp.add_parser("check", help="validate a config file")
    check.add_argument("file")
    check.set_defaults(func=_config_check)
    cfgp.add_parser("sample", help="print every option with its default").set_defaults(
        func=_config_sample
    )

    boot = groups.add_parser("bootstrap", help="create the admin project/user and client files")
    boot.add_argument("--clouds-yaml", default="~/.config/openstack/clouds.yaml")
    boot.set_defaults(func=with_db(_bootstrap))

    services.add_parsers(groups)
    resources.add_parsers(groups)
    status.add_parsers(groups)
