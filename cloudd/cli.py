"""The `cloudd` command: serve, agent, all-in-one and manage."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable

from cloudd.config import CloudConfig, ConfigError, find_config, load_config
from cloudd.log import setup_logging
from cloudd.manage import add_manage_parser

LOG = logging.getLogger("cloudd")

def _load(args: argparse.Namespace) -> CloudConfig:
    return load_config(find_config(args.config), getattr(args, "state_dir", None))


def _start_logging(cfg: CloudConfig) -> None:
    d = cfg.default
    setup_logging(d.log_level, d.log_format, d.log_file)


def cmd_serve(args: argparse.Namespace) -> int:
    from cloudd.controller import build_controller

    cfg = _load(args)
    _start_logging(cfg)
    LOG.info("state directory: %s", cfg.default.state_dir)
    host = build_controller(cfg)
    return asyncio.run(host.run())


def cmd_agent(args: argparse.Namespace) -> int:
    from cloudd.agent.service import build_agent

    cfg = _load(args)
    if args.controller:
        cfg.agent.controller_url = args.controller
    _start_logging(cfg)
    return asyncio.run(build_agent(cfg).run())


def cmd_all_in_one(args: argparse.Namespace) -> int:
    from cloudd.agent.service import build_agent
    from cloudd.controller import build_controller

    cfg = _load(args)
    _start_logging(cfg)
    LOG.info("state directory: %s", cfg.default.state_dir)
    host = build_controller(cfg)
    build_agent(cfg, host)
    return asyncio.run(host.run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cloudd", description=__doc__)
    parser.add_argument("--config", help="config file (default: $CLOUDD_CONFIG, /etc/cloudd/cloudd.conf)")
    parser.add_argument("--state-dir", help="state directory (overrides the config file)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="run the controller").set_defaults(func=cmd_serve)
    agent = sub.add_parser("agent", help="run a compute host's agent")
    agent.add_argument("--controller", help="controller websocket URL, e.g. wss://ctl:8780/agent")
    agent.set_defaults(func=cmd_agent)
    sub.add_parser("all-in-one", help="controller and one local agent").set_defaults(
        func=cmd_all_in_one
    )
    add_manage_parser(sub)
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"cloudd: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
