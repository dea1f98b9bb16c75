"""The EC2 Query API as a controller service on its own port ([ec2] listen:port, Nova's 8773),
answering at `/services/Cloud` (Nova's ec2_path) and at `/`.

A call is `Action=...&Version=...` in the query string (GET) or a form body (POST), signed with
SigV4 or SigV2 against an EC2 credential of the Identity API; the reply is EC2's XML.
"""

from __future__ import annotations

import logging
import uuid
from urllib.parse import parse_qsl

from aiohttp import web

from cloudd.api.ec2 import (
    addresses,
    images,
    instances,
    keypairs,
    misc,
    security_groups,
    tags,
)
from cloudd.api.ec2.auth import authenticate
from cloudd.api.ec2.context import Action, Ec2Request, Params
from cloudd.api.ec2.xml import Ec2Error, error_response, response
from cloudd.core import Service, ServiceHealth, ServiceHost
from cloudd.db.service import DatabaseService
from cloudd.errors import CloudError
from cloudd.listener import Listener
from cloudd.log import request_id_var
from cloudd.web.guards import PerClientLimit, TooManyRequests
from cloudd.web.inputs import read_body, refuse_nul

LOG = logging.getLogger(__name__)
PATHS = ("/", "/services/Cloud", "/services/Cloud/")
MAX_BODY = 1024 * 1024  # a Query API call is a form, never a large upload

ACTIONS: dict[str, Action] = {
    "RunInstances": instances.run_instances,
    "DescribeInstances": instances.describe_instances,
    "TerminateInstances": instances.terminate_instances,
    "RebootInstances": instances.reboot_instances,
    "StartInstances": instances.start_instances,
    "StopInstances": instances.stop_instances,
    "GetConsoleOutput": instances.get_console_output,
    "DescribeInstanceAttribute": instances.describe_instance_attribute,
    "DescribeImages": images.describe_images,
    "RegisterImage": images.register_image,
    "DeregisterImage": images.deregister_image,
    "CreateImage": images.create_image,
    "DescribeImageAttribute": images.describe_image_attribute,
    "ModifyImageAttribute": images.modify_image_attribute,
    "CreateKeyPair": keypairs.create_key_pair,
    "ImportKeyPair": keypairs.import_key_pair,
    "DescribeKeyPairs": keypairs.describe_key_pairs,
    "DeleteKeyPair": keypairs.delete_key_pair,
    "CreateSecurityGroup": security_groups.create_security_group,
    "DeleteSecurityGroup": security_groups.delete_security_group,
    "DescribeSecurityGroups": security_groups.describe_security_groups,
    "AuthorizeSecurityGroupIngress": security_groups.authorize_ingress,
    "RevokeSecurityGroupIngress": security_groups.revoke_ingress,
    "AllocateAddress": addresses.allocate_address,
    "AssociateAddress": addresses.associate_address,
    "DisassociateAddress": addresses.disassociate_address,
    "ReleaseAddress": addresses.release_address,
    "DescribeAddresses": addresses.describe_addresses,
    "DescribeAvailabilityZones": misc.describe_availability_zones,
    "DescribeRegions": misc.describe_regions,
    "DescribeAccountAttributes": misc.describe_account_attributes,
    "CreateTags": tags.create_tags,
    "DeleteTags": tags.delete_tags,
    "DescribeTags": tags.describe_tags,
}
HOST_KEY = web.AppKey("ec2_host", ServiceHost)
CLIENT_LIMIT_KEY = web.AppKey("ec2_client_limit", PerClientLimit)


async def _read_params(request: web.Request) -> tuple[bytes, dict[str, str]]:
    """(raw body, parameters): the query string and, for a form POST, the body."""
    body = b""
    if request.method == "POST":
        # bounded before and while reading, as every API's body (Ec2Error.from_kind: its codes)
        body = await read_body(request, MAX_BODY)
    values = dict(request.query)
    if body:
        try:
            values.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                    strict_parsing=False))
        except UnicodeDecodeError:
            raise Ec2Error("InvalidParameterValue", "The request body is not UTF-8") from None
    refuse_nul(item for pair in values.items() for item in pair)
    return body, values


async def handle(request: web.Request) -> web.Response:
    request_id = str(uuid.uuid4())
    reset = request_id_var.set(f"req-{request_id}")
    host = request.app[HOST_KEY]
    try:
        with request.app[CLIENT_LIMIT_KEY].slot(request):  # before authentication: per address
            body, values = await _read_params(request)
            action = values.get("Action", "")
            db = host.get(DatabaseService).db
            context = await authenticate(request, db, body, values, f"req-{request_id}",
                                         host.config.ec2.region)
            handler = ACTIONS.get(action)
            if handler is None:
                raise Ec2Error("InvalidAction",
                               f"The action {action or '(none)'} is not valid for this web service.")
            call = Ec2Request(action, Params(values), context, host, db, f"req-{request_id}",
                              str(getattr(host.find(Ec2Service), "public_url", "")))
            return response(action, request_id, await handler(call))
    except TooManyRequests as exc:  # EC2's throttling answer, which clients back off from
        return error_response(Ec2Error("RequestLimitExceeded", exc.message, 503), request_id)
    except Ec2Error as exc:
        if exc.status >= 500:
            LOG.error("EC2 %s failed: %s", request.method, exc.message)
        return error_response(exc, request_id)
    except CloudError as exc:  # a domain refusal no handler translated
        return error_response(Ec2Error.from_kind(exc), request_id)
    except web.HTTPException as exc:  # e.g. a body over client_max_size
        return error_response(Ec2Error("InvalidParameterValue", exc.reason), request_id)
    except Exception:
        LOG.exception("EC2 call failed")
        return error_response(Ec2Error("InternalError", "An internal error has occurred"),
                              request_id)
    finally:
        request_id_var.reset(reset)


def ec2_app(host: ServiceHost) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[HOST_KEY] = host
    app[CLIENT_LIMIT_KEY] = PerClientLimit()
    for path in PATHS:
        app.router.add_route("GET", path, handle)
        app.router.add_route("POST", path, handle)
    return app


class Ec2Health(ServiceHealth):
    url: str | None = None


class Ec2Service(Service):
    name = "ec2"
    depends = ("database", "conductor", "cert", "objectstore")

    def __init__(self, host: ServiceHost) -> None:
        super().__init__(host)
        self.listener = Listener()
        self.port: int | None = None
        self.public_url = ""  # the catalog lists it once the port is bound

    async def start(self) -> None:
        cfg = self.host.config.ec2
        if not cfg.enabled:
            return
        if not await self.listener.start_optional(self, "EC2", ec2_app(self.host), cfg.listen,
                                                  cfg.port):
            return
        self.port = self.listener.port
        self.public_url = cfg.public_url or \
            f"http://{self.host.config.default.my_ip}:{self.port}/services/Cloud"
        LOG.info("EC2 API listening on %s:%s", cfg.listen, self.port)

    async def stop(self) -> None:
        await self.listener.stop()

    def health(self) -> Ec2Health:
        report = Ec2Health(**self.state_fields())
        if self.public_url:  # once the port is bound
            report.url = self.public_url
        return report
