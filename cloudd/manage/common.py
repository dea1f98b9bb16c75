"""What every `cloudd manage` command shares: config, a database connection, one-line errors, tables."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from cloudd.config import CloudConfig, find_config, load_config

Command = Callable[[Any, CloudConfig, argparse.Namespace], Awaitable[int]]


class ManageError(Exception):
    """An operator mistake or a refused action: printed as one line, exit code `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def load_cfg(args: argparse.Namespace) -> CloudConfig:
    return load_config(find_config(args.config), args.state_dir)


def fail(message: str) -> int:
    print(f"cloudd manage: {message}", file=sys.stderr)
    return 1


async def open_db(cfg: CloudConfig) -> Any:
    from cloudd import db as dbmod

    url = cfg.database.connection
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return await dbmod.connect(url)


def with_db(fn: Command) -> Callable[[argparse.Namespace], int]:
    """Run `fn(db, cfg, args)` with a connected database, closing it afterwards."""

    def run(args: argparse.Namespace) -> int:
        from cloudd import db as dbmod

        cfg = load_cfg(args)

        async def go() -> int:
            database = await open_db(cfg)
            try:
                return await fn(database, cfg, args)
            finally:
                await database.close()

        try:
            return asyncio.run(go())
        except ManageError as exc:
            print(f"cloudd manage: {exc}", file=sys.stderr)
            return exc.code
        except dbmod.DatabaseError as exc:  # one clear line for the operator, not a traceback
            return fail(f"database error: {' '.join(str(exc).split())}")

    return run


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def ago(timestamp: float | None, now: float | None = None) -> str:
    """'42s ago', '3m 5s ago', '2h 1m ago', or 'never'."""
    if not timestamp:
        return "never"
    seconds = int(max(0, (now or time.time()) - timestamp))
    if seconds < 60:
        return f"{seconds}s ago"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60}s ago"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m ago"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h ago"


def iso(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
