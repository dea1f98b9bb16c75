"""Assemble the controller (`cloudd serve`): every in-process service, in one ServiceHost."""

from __future__ import annotations

from cloudd.api.compute.app import compute_app
from cloudd.api.ec2.service import Ec2Service
from cloudd.api.identity.app import identity_app
from cloudd.api.image.agent_routes import add_agent_routes
from cloudd.api.image.app import image_app
from cloudd.api.network.app import network_app
from cloudd.api.service import ApiService
from cloudd.cert.service import CertService
from cloudd.conductor.service import ConductorService
from cloudd.config import CloudConfig
from cloudd.consoleauth.service import ConsoleAuthService
from cloudd.core import ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.network.service import NetworkService
from cloudd.objectstore.service import ObjectstoreService
from cloudd.scheduler.service import SchedulerService
from cloudd.vncproxy.service import VncProxyService


def build_controller(config: CloudConfig, host: ServiceHost | None = None) -> ServiceHost:
    host = host or ServiceHost(config, name="cloudd-controller")
    host.add(DatabaseService(host))
    host.add(SchedulerService(host))
    host.add(CertService(host))
    conductor = ConductorService(host)
    conductor.mount_agent_routes(add_agent_routes)  # image bytes to and from the agents
    host.add(conductor)
    host.add(ConsoleAuthService(host))
    host.add(VncProxyService(host))
    host.add(ObjectstoreService(host))
    host.add(Ec2Service(host))
    host.add(NetworkService(host))
    api = ApiService(host)
    host.add(api)
    api.mount("/identity", identity_app)
    api.mount("/compute", compute_app)
    api.mount("/image", image_app)
    api.mount("/network", network_app)
    return host
