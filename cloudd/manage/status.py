"""`cloudd manage status`: check the whole cloud, name each fault and say what to fix.

Every check yields `Finding`s; the command prints them and exits 1 when any is a failure, so it
fits a cron job or a monitoring probe as well as a person.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from cloudd.compute import hosts
from cloudd.config import CloudConfig
from cloudd.manage.common import ago, load_cfg, open_db
from cloudd.rpc.contracts.compute import HostDomain

Level = Literal["ok", "warn", "fail"]
CA_WARN_DAYS = 30


@dataclass
class Finding:
    level: Level
    subject: str
    message: str
    fix: str = ""


async def check_database(cfg: CloudConfig) -> tuple[Any, list[Finding]]:
    from cloudd.db.base import load_migrations, redact_url

    shown = redact_url(cfg.database.connection)  # never print a password from the URL
    try:
        db = await asyncio.wait_for(open_db(cfg), 10)
        await db.fetchval("SELECT 1")
    except Exception as exc:
        return None, [Finding("fail", "database", f"{shown} unreachable: {' '.join(str(exc).split())}",
                              "check [database] connection and that the database server runs")]
    latest = max(m.version for m in load_migrations())
    try:
        version = await db.schema_version()
    except Exception:
        version = 0
    if version < latest:
        return db, [Finding("fail", "database", f"{shown} at schema {version}, latest is {latest}",
                            "run `cloudd manage db sync` (the controller also migrates at start)")]
    return db, [Finding("ok", "database", f"{shown} reachable, schema {version} (latest)")]


async def check_services(db: Any, cfg: CloudConfig) -> list[Finding]:
    rows = await hosts.services(db, order="host")
    down_time = cfg.service.service_down_time
    now = time.time()
    findings = []
    if not any(r.binary == hosts.COMPUTE_BINARY for r in rows):
        findings.append(Finding("fail", "compute", "no compute host has registered",
                                "start `cloudd agent` on a host (docs/multi-host.md)"))
    for row in rows:
        subject = f"{row.binary} on {row.host}"
        seen = row.last_heard
        if row.forced_down:
            findings.append(Finding("fail", subject, "forced down",
                                    f"`cloudd manage service force-up {row.host}` once it is fixed"))
        elif not row.is_up(down_time, now):
            findings.append(Finding(
                "fail", subject, f"down: last heartbeat {ago(seen, now)} (limit {down_time:g}s)",
                f"start the agent on {row.host} (systemctl start cloudd-agent) and check it"
                f" reaches {cfg.agent.controller_url.replace('127.0.0.1', '<controller>')}"))
        else:
            findings.append(Finding("ok", subject, f"up, last heartbeat {ago(seen, now)}"))
        if row.disabled:
            findings.append(Finding("warn", subject, "disabled: "
                                    + (row.disabled_reason or "no reason given"),
                                    f"`cloudd manage service enable {row.host}` to place servers"))
    return findings


async def check_compute_nodes(db: Any) -> list[Finding]:
    rows = await hosts.totals_by_host(db)
    return [Finding("ok", f"compute nodes on {r.host}",
                    f"{r.nodes} node(s), {r.vcpus} vCPUs, {r.memory_mb} MiB,"
                    f" {r.running_vms} server(s)")
            for r in rows]


async def check_rules(db: Any) -> list[Finding]:
    """Security-group rules stored before rule values were checked: never applied (the hosts
    leave them out and log it), but their owners think a port is open."""
    from cloudd.network import secgroups
    from cloudd.vocab.secgroup_rules import RuleError, stored_rule

    findings = []
    for rule in await secgroups.all_rules(db):
        try:
            stored_rule(rule)
        except (RuleError, ValueError) as exc:
            findings.append(Finding(
                "warn", f"security group rule {rule.uuid}",
                f"in group {rule.parent_name} of project {rule.project_id} is not applied: "
                f"{' '.join(str(exc).split())[:200]}",
                f"delete it (openstack security group rule delete {rule.uuid}) and add it again"))
    return findings


def _read_ca_certificates(ca_path: Path) -> list[Any]:
    from cryptography import x509

    found = []
    # The users' CA at the top, the hosts CA (agents' and controllers' certificates) in hosts/.
    for path in sorted([*ca_path.glob("*.pem"), *ca_path.glob("*.crt"), *ca_path.glob("hosts/*.pem")]):
        try:
            cert = x509.load_pem_x509_certificate(path.read_bytes())
            constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except (ValueError, x509.ExtensionNotFound, OSError):
            continue
        if constraints.ca:
            found.append((path, cert))
    return found


async def check_ca(cfg: CloudConfig) -> list[Finding]:
    ca_path = Path(cfg.cert.ca_path)
    certs = await asyncio.to_thread(_read_ca_certificates, ca_path)
    if not certs:
        return [Finding("ok", "CA", f"no CA in {ca_path} yet (the controller makes it at its first"
                                    " start; agents connect only with its certificates)")]
    findings = []
    for path, cert in certs:
        days = (cert.not_valid_after_utc.timestamp() - time.time()) / 86400
        expiry = cert.not_valid_after_utc.strftime("%Y-%m-%d")
        if days < 0:
            findings.append(Finding("fail", "CA", f"{path} expired on {expiry}",
                                    "rotate the CA (docs/operations.md)"))
        elif days < CA_WARN_DAYS:
            findings.append(Finding("warn", "CA", f"{path} expires in {days:.0f} days ({expiry})",
                                    "rotate the CA soon (docs/operations.md)"))
        else:
            findings.append(Finding("ok", "CA", f"{path} valid until {expiry}"))
    return findings


async def check_api(cfg: CloudConfig) -> list[Finding]:
    url = cfg.api.public_url.rstrip("/") + "/healthz"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
                session.get(url) as resp:
            report = await resp.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return [Finding("fail", "controller", f"{url} unreachable: {exc or type(exc).__name__}",
                        "start the controller (systemctl start cloudd-controller) or fix"
                        " [api] public_url")]
    bad = {name: info for name, info in report.get("services", {}).items()
           if info.get("state") != "running"}
    if bad:
        return [Finding("fail", "controller", f"services not running: {', '.join(sorted(bad))}",
                        "read the controller's log")]
    agents = report.get("services", {}).get("conductor", {}).get("agents", [])
    return [Finding("ok", "controller", f"API answers at {url}; agents connected: "
                    + (", ".join(agents) or "none"))]


def admin_credentials(cfg: CloudConfig) -> tuple[str, str, str] | None:
    """(user, password, project): the bootstrap's admin password file on the controller, else the
    environment of a sourced openrc; None when neither is there."""
    try:
        password = (Path(cfg.default.state_dir) / "admin-password").read_text().strip()
        return "admin", password, "admin"
    except OSError:
        pass
    if os.environ.get("OS_USERNAME") and os.environ.get("OS_PASSWORD"):
        return (os.environ["OS_USERNAME"], os.environ["OS_PASSWORD"],
                os.environ.get("OS_PROJECT_NAME", "admin"))
    return None


async def _hosts_report(cfg: CloudConfig, creds: tuple[str, str, str]) -> list[dict[str, Any]]:
    base = cfg.api.public_url.rstrip("/")
    user, password, project = creds
    auth = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        async with session.post(base + "/identity/v3/auth/tokens", json=auth) as resp:
            if resp.status != 201:
                raise ValueError(f"the admin credentials were refused ({resp.status})")
            token = resp.headers["X-Subject-Token"]
        async with session.get(base + "/healthz/hosts", headers={"X-Auth-Token": token}) as resp:
            if resp.status != 200:
                raise ValueError(f"/healthz/hosts answered {resp.status}")
            hosts: list[dict[str, Any]] = (await resp.json())["hosts"]
            return hosts


def host_findings(report: dict[str, Any]) -> list[Finding]:
    """What one host's agent said about libvirt, dnsmasq and its firewall (GET /healthz/hosts)."""
    name = report["host"]
    subject = f"host {name}"
    if not report["connected"]:
        return [Finding("fail", subject, "agent not connected to the controller",
                        f"start the agent on {name} (systemctl start cloudd-agent); its log says"
                        " why it cannot connect")]
    if report["error"]:
        return [Finding("fail", subject, report["error"], f"read the agent's log on {name}")]
    findings = []
    if report["libvirt_reachable"] is False:
        findings.append(Finding(
            "fail", subject, f"libvirt at {report['libvirt_uri']} unreachable: "
            f"{report['libvirt_error']}",
            f"start libvirtd on {name} (systemctl start libvirtd), then restart cloudd-agent there"))
    for dhcp in report["dhcp"]:
        if dhcp["pid"] is None:
            findings.append(Finding(
                "fail", subject, f"dnsmasq for network {dhcp['network']} ({dhcp['bridge']}) is not"
                " running", f"restart cloudd-agent on {name} (it starts dnsmasq again); why it"
                f" stopped: {dhcp['log']}"))
    if report.get("firewall_error"):
        findings.append(Finding(
            "fail", subject, f"security-group firewall not applied, its guests are cut off: "
            f"{report['firewall_error']}",
            f"fix or delete that rule; the next change or a restart of cloudd-agent on {name}"
            " applies the rules again (the agent's log has the whole error)"))
    if report.get("antispoof_error"):
        findings.append(Finding(
            "fail", subject, "guests' anti-spoofing rules not loaded, their ports are down: "
            f"{report['antispoof_error']}",
            f"check that nft (Debian's nftables) works on {name}, then restart cloudd-agent there"))
    findings += [Finding("fail", subject, problem) for problem in report.get("host_problems", [])]
    for domain in report.get("unknown_domains", []):
        owner = HostDomain.model_validate(domain).owner()
        findings.append(Finding(
            "warn", subject, f"domain {domain['name']} ({domain['uuid']}) is not this cloud's:"
            f" it belongs to {owner}; cloudd leaves it alone",
            f"remove it with virsh on {name} if nobody needs it (virsh destroy, virsh undefine)"))
    if not [f for f in findings if f.level == "fail"]:
        facts = [f"{report['driver']} driver", f"{report['guests']} guest(s)"]
        if report["libvirt_reachable"]:
            facts.append(f"libvirt reachable at {report['libvirt_uri']}")
        facts += [f"dnsmasq running for {d['network']} (pid {d['pid']})" for d in report["dhcp"]]
        findings.append(Finding("ok", subject, ", ".join(facts)))
    return findings


async def check_hosts(cfg: CloudConfig) -> list[Finding]:
    creds = await asyncio.to_thread(admin_credentials, cfg)
    if creds is None:
        return [Finding("warn", "hosts", "libvirt and dnsmasq not checked: no admin credentials",
                        "run on the controller (its admin-password file) or source an admin openrc")]
    try:
        reports = await _hosts_report(cfg, creds)
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
        return [Finding("fail", "hosts", f"cannot ask the controller about its hosts: {exc}",
                        "read the controller's log")]
    return [finding for report in reports for finding in host_findings(report)]


async def this_host_is_down(db: Any, cfg: CloudConfig) -> bool:
    """No compute host registered yet, or this machine's agent stopped reporting: its own
    start checks (run here, with this config) are the likeliest reason."""
    rows = await hosts.services(db, binary=hosts.COMPUTE_BINARY)
    mine = [r for r in rows if r.host == (cfg.default.host or socket.gethostname())]
    down_time = cfg.service.service_down_time
    return not rows or any(not r.is_up(down_time, time.time()) for r in mine)


async def check_this_host(cfg: CloudConfig) -> list[Finding]:
    """The agent's start checks on this machine (cloudd.agent.hostcheck): what it would refuse."""
    from cloudd.agent.hostcheck import host_problems

    subject = f"host {cfg.default.host or socket.gethostname()} (this machine)"
    problems = await host_problems(cfg)
    if not problems:
        return [Finding("ok", subject, "the agent's start checks pass (QEMU's user reaches the"
                        " instances directory, libvirt answers, network tools are installed)")]
    return [Finding("fail", subject, problem) for problem in problems]


async def gather(cfg: CloudConfig, with_api: bool) -> list[Finding]:
    db, findings = await check_database(cfg)
    local = False
    if db is not None:
        try:
            if findings[0].level == "ok":
                findings += await check_services(db, cfg)
                findings += await check_compute_nodes(db)
                findings += await check_rules(db)
                local = await this_host_is_down(db, cfg)
        finally:
            await db.close()
    if local:
        findings += await check_this_host(cfg)
    findings += await check_ca(cfg)
    if with_api:
        api = await check_api(cfg)
        findings += api
        if api[0].level == "ok":  # the controller answers: ask it about each host
            findings += await check_hosts(cfg)
    return findings


def report(findings: list[Finding]) -> int:
    labels = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL"}
    for finding in findings:
        print(f"{labels[finding.level]} {finding.subject}: {finding.message}")
        if finding.fix and finding.level != "ok":
            print(f"     fix: {finding.fix}")
    failures = [f for f in findings if f.level == "fail"]
    print(f"\n{len(failures)} problem(s) found" if failures else "\nthe cloud looks healthy")
    return 1 if failures else 0


def run_status(args: argparse.Namespace) -> int:
    cfg = load_cfg(args)
    findings = asyncio.run(gather(cfg, with_api=not args.no_api))
    sys.stdout.flush()
    return report(findings)


def add_parsers(groups: Any) -> None:
    status = groups.add_parser(
        "status", help="check the whole cloud and say what to fix (exit 1 when something is wrong)")
    status.add_argument("--no-api", action="store_true",
                        help="skip asking the controller's /healthz (e.g. before it is started)")
    status.set_defaults(func=run_status)
