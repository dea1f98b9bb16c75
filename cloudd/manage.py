"""`cloudd manage`: the nova-manage of cloudd."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from cloudd.config import CloudConfig, ConfigError, load_config, render_sample


def _config(args: argparse.Namespace) -> CloudConfig:
    from cloudd.cli import find_config

    cfg = load_config(find_config(args.config))
    if args.state_dir:
        cfg.default.state_dir = args.state_dir
    return cfg


def _with_db(fn: Callable[[Any, CloudConfig, argparse.Namespace], Awaitable[int]]
             ) -> Callable[[argparse.Namespace], int]:
    """Run `fn(db, cfg, args)` with a connected database, closing it afterwards."""

    def run(args: argparse.Namespace) -> int:
        from cloudd import db as dbmod

        cfg = _config(args)

        async def go() -> int:
            url = cfg.database.connection
            if url.startswith("sqlite:///"):
                Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            database = await dbmod.connect(url)
            try:
                return await fn(database, cfg, args)
            finally:
                await database.close()

        try:
            return asyncio.run(go())
        except Exception as exc:  # one clear line for the operator, not a traceback
            from cloudd import db as dbmod

            if isinstance(exc, dbmod.DatabaseError):
                print(f"cloudd manage: database error: {exc}", file=sys.stderr)
                return 1
            raise

    return run


async def _db_sync(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    await db.migrate()
    print(f"database at schema version {await db.schema_version()}")
    return 0


async def _db_version(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    print(await db.schema_version())
    return 0


async def _bootstrap(db: Any, cfg: CloudConfig, args: argparse.Namespace) -> int:
    from cloudd.api.identity.bootstrap import bootstrap, write_client_files

    await db.migrate()
    state_dir = Path(cfg.default.state_dir)
    creds = await bootstrap(db, state_dir)
    auth_url = cfg.api.public_url.rstrip("/") + "/identity"
    # A one-shot CLI command: nothing else runs on this loop, blocking file I/O is harmless here.
    clouds_yaml = Path(os.path.expanduser(args.clouds_yaml))  # noqa: ASYNC240
    files = write_client_files(creds, auth_url, state_dir, clouds_yaml)
    print(f"admin password: {creds['password_file']} (0600)")
    for path in files:
        print(f"credentials: {path}")
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
    dbp.add_parser("sync", help="apply pending migrations").set_defaults(func=_with_db(_db_sync))
    dbp.add_parser("version", help="print the schema version").set_defaults(
        func=_with_db(_db_version)
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
    boot.set_defaults(func=_with_db(_bootstrap))
