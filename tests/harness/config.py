"""The configuration of a cloud under test: SQLite in tmp_path, the fake driver, and every
listener on 127.0.0.1 with an ephemeral port, so tests never take a real cloud's ports (8773 EC2,
3333 S3, 6080 consoles, 8775 metadata) or each other's."""

from __future__ import annotations

import asyncio
import socket
import ssl
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cloudd.config import CloudConfig, resolve_paths, validate
from cloudd.core import ServiceHost


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def loopback_config(tmp_path: Path, **sections: dict[str, str]) -> CloudConfig:
    """`sections` add to or override the defaults below, one dict per INI section."""
    raw: dict[str, dict[str, Any]] = {
        "default": {"state_dir": str(tmp_path), "host": "ctl", "my_ip": "127.0.0.1"},
        "database": {"connection": f"sqlite://{tmp_path}/cloudd.db"},
        "api": {"listen": "127.0.0.1", "port": "0"},
        "rpc": {"listen": "127.0.0.1", "port": "0", "enroll_port": "0"},
        "objectstore": {"listen": "127.0.0.1", "port": "0"},
        "ec2": {"listen": "127.0.0.1", "port": "0"},
        "vnc": {"novncproxy_host": "127.0.0.1", "novncproxy_port": "0"},
        "network": {"metadata_listen": "127.0.0.1", "metadata_port": "0"},
        "service": {"report_interval": "0.5"},
        "compute": {"compute_driver": "fake"},
    }
    for section, values in sections.items():
        raw.setdefault(section, {}).update(values)
    return resolve_paths(validate(raw))


def make_config(db_url: str, tmp_path: Path, **compute: Any) -> CloudConfig:
    """The engine tests' config: controller and agent "agent1" in one, on `db_url`; the agent
    dials the controller's RPC port over wss; `compute` sets [compute] options."""
    cfg = CloudConfig()
    cfg.default.state_dir = str(tmp_path / "state")
    cfg.default.host = "agent1"
    cfg.database.connection = db_url
    cfg.api.port = 0
    cfg.api.listen = "127.0.0.1"
    cfg.rpc.listen = "127.0.0.1"
    # Every listener on an ephemeral port: tests may run beside a real cloud or each other.
    cfg.objectstore.listen = cfg.vnc.novncproxy_host = "127.0.0.1"
    cfg.objectstore.port = cfg.vnc.novncproxy_port = 0
    cfg.rpc.port = free_port()
    cfg.rpc.enroll_port = free_port()
    cfg.agent.controller_url = f"wss://127.0.0.1:{cfg.rpc.port}/agent"
    cfg.agent.reconnect_max_backoff = 1.0
    cfg.service.report_interval = 0.5
    cfg.service.service_down_time = 3.0
    cfg.compute.compute_driver = "fake"
    cfg.compute.reserved_host_memory_mb = 0
    for key, value in compute.items():
        setattr(cfg.compute, key, value)
    return resolve_paths(cfg)


async def enroll_agent(controller: ServiceHost, agent_cfg: CloudConfig,
                       host_name: str | None = None) -> str:
    """Let the agent that will run with `agent_cfg` join the cloud of `controller`, as an operator
    would: a join token from `cloudd manage host enroll` in its [cert] join_token, redeemed on the
    controller's enrolment listener (the agent's [rpc] enroll_port) at its first connection."""
    from cloudd.cert.enroll import enroll_host
    from cloudd.conductor.service import ConductorService
    from cloudd.db.service import DatabaseService

    name = host_name or agent_cfg.default.host
    token = await enroll_host(controller.get(DatabaseService).db, name, controller.config.cert.ca_path)
    agent_cfg.cert.join_token = token
    port = controller.get(ConductorService).enroll_port
    assert port is not None
    agent_cfg.rpc.enroll_port = port
    return token


async def host_tls_context(controller: ServiceHost, directory: Path, host_name: str
                           ) -> ssl.SSLContext:
    """The TLS client context of an enrolled host `host_name` of `controller`'s cloud: what
    /enroll gives for its CSR (a certificate of the hosts CA), kept under `directory`."""
    from cloudd.agent.tls import client_context
    from cloudd.cert.ca import key_pem, pem, write_private, write_public
    from cloudd.cert.service import CertService

    cert = controller.get(CertService)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, host_name)]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())
    cert_pem = await cert.sign_agent_csr(host_name, csr)
    where = directory / f"host-{host_name}-{uuid.uuid4().hex[:6]}"

    def save() -> ssl.SSLContext:
        write_private(where / "key.pem", key_pem(key).encode())
        write_public(where / "cert.pem", cert_pem)
        write_public(where / "ca.pem", pem(cert.hosts_authority.cert))
        return client_context(where)

    return await asyncio.to_thread(save)
