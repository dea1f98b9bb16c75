"""What a compute host needs before its agent may start (and what `cloudd manage status` checks).

Each check returns problems as single lines that say what to change: the agent refuses to start
with the first one (``StartupRefused``), instead of failing every build later with an error
found only in the controller's log.

- QEMU runs as an unprivileged user (``user`` in /etc/libvirt/qemu.conf, Debian's default
  ``libvirt-qemu``): every directory down to the instances directory must be searchable by it.
  Checked from the modes and owners (no ACLs; libvirt's dynamic ownership chowns the disk files
  themselves), so the answer also names the directory and the mode to change.
- libvirt answers at the configured URI (libvirt driver only).
- The network tools of the configured network manager are on the PATH.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import re
import shutil
import stat
from pathlib import Path

from cloudd.config import CloudConfig

QEMU_CONF = Path("/etc/libvirt/qemu.conf")
DEFAULT_QEMU_USER = "libvirt-qemu"
LIBVIRT_TIMEOUT = 10.0
_USER_LINE = re.compile(r'^\s*user\s*=\s*"([^"]+)"\s*$')
# Every manager filters with iptables and pins guests' addresses with nft; the DHCP ones run
# dnsmasq (and dhcp_release frees a deleted guest's lease at once).
_TOOLS = ("iptables", "iptables-restore", "nft")
_DHCP_TOOLS = ("dnsmasq",)


def qemu_user(conf: Path = QEMU_CONF) -> str:
    """The user QEMU runs as: ``user`` in qemu.conf, else libvirt's Debian default."""
    try:
        lines = conf.read_text(errors="replace").splitlines()
    except OSError:
        return DEFAULT_QEMU_USER
    for line in lines:
        match = _USER_LINE.match(line)
        if match:
            return match[1]
    return DEFAULT_QEMU_USER


def _identity(user: str) -> tuple[int, set[int]] | None:
    """(uid, gids) of ``user`` ("+N" is a bare uid, as qemu.conf allows); None if unknown."""
    if user.startswith("+") and user[1:].isdigit():
        return int(user[1:]), set()
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    return entry.pw_uid, {entry.pw_gid, *os.getgrouplist(user, entry.pw_gid)}


def _searchable(info: os.stat_result, uid: int, gids: set[int]) -> bool:
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid in gids:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def _owner(info: os.stat_result) -> str:
    try:
        user = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        user = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return f"{user}:{group}"


def instances_path_problem(instances_path: Path, user: str | None = None) -> str | None:
    """Why QEMU's user cannot reach ``instances_path`` (its existing part), or None."""
    user = user or qemu_user()
    identity = _identity(user)
    if identity is None:
        return (f"QEMU's user {user} (user in {QEMU_CONF}, default {DEFAULT_QEMU_USER}) does not"
                f" exist on this host: install libvirt (scripts/install-libvirt.sh) or set user in"
                f" {QEMU_CONF}")
    uid, gids = identity
    if uid == 0:
        return None
    path = instances_path.resolve()
    for directory in [*reversed(path.parents), path]:
        try:
            info = directory.stat()
        except FileNotFoundError:
            return None  # made by the agent (0755) below here
        except OSError as exc:
            return f"the instances directory {path} cannot be checked: {exc}"
        if not _searchable(info, uid, gids):
            return (f"the instances directory {path} cannot be reached by {user}:"
                    f" {directory} is {stat.S_IMODE(info.st_mode):04o} ({_owner(info)});"
                    f" chmod o+x {directory} or set [compute] instances_path to a directory"
                    f" under /var/lib")
    return None


def missing_tools_problem(cfg: CloudConfig, search_path: str | None = None) -> str | None:
    """The network tools the configured network manager needs that are not installed."""
    needed = list(_TOOLS)
    if cfg.network.network_manager != "FlatManager":
        needed += _DHCP_TOOLS
        if cfg.network.force_dhcp_release:
            needed.append("dhcp_release")
    missing = [tool for tool in needed if shutil.which(tool, path=search_path) is None]
    if not missing:
        return None
    return (f"{cfg.network.network_manager} needs {', '.join(missing)}, not found on the PATH:"
            f" install them (apt-get install dnsmasq dnsmasq-utils iptables nftables)")


def _libvirt_answer(uri: str) -> None:
    import libvirt

    conn = libvirt.open(uri)
    try:
        conn.getLibVersion()
    finally:
        conn.close()


async def libvirt_problem(uri: str) -> str | None:
    """Why libvirt does not answer at ``uri``, or None."""
    fix = "start it (scripts/start-libvirt.sh) or set [libvirt] connection_uri"
    try:
        await asyncio.wait_for(asyncio.to_thread(_libvirt_answer, uri), LIBVIRT_TIMEOUT)
    except TimeoutError:
        return f"libvirt does not answer at {uri} within {LIBVIRT_TIMEOUT:g}s: {fix}"
    except ImportError:
        return "libvirt-python is not installed: install python3-libvirt (scripts/install-libvirt.sh)"
    except Exception as exc:  # libvirtError: the reason is its message
        reason = " ".join(str(exc).split()) or type(exc).__name__
        return f"libvirt does not answer at {uri} ({reason}): {fix}"
    return None


async def host_problems(cfg: CloudConfig, instances: bool = True) -> list[str]:
    """Every check for this host's configuration, each problem one line with its fix
    (``instances``: also the instances directory, once it exists)."""
    problems = [missing_tools_problem(cfg)]
    if cfg.compute.compute_driver == "libvirt":
        problems.append(await libvirt_problem(cfg.libvirt.connection_uri))
        if instances:
            path = Path(cfg.compute.instances_path or "instances")
            problems.append(await asyncio.to_thread(instances_path_problem, path))
    return [problem for problem in problems if problem]
