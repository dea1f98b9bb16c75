"""The one error base (cloudd.errors): domain refusals are kinds of it, and the API classes are
thin subclasses whose status is their kind's."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cloudd import errors
from cloudd.api.compute import errors as compute_errors
from cloudd.api.ec2.xml import Ec2Error
from cloudd.api.identity import errors as identity_errors
from cloudd.api.image import errors as image_errors
from cloudd.api.network import errors as network_errors
from cloudd.awsauth.errors import SignatureError
from cloudd.cert.common import CertError
from cloudd.compute.instances import InstanceNotFound
from cloudd.compute.instances.records import UnexpectedState
from cloudd.compute.quota import QuotaExceeded
from cloudd.conductor.service import HostUnavailable
from cloudd.consoleauth.tokens import TokenRefused
from cloudd.frontdoor.compute_create import CreateRefused, FlavorNotFound
from cloudd.identity import errors as refusals
from cloudd.identity.policy import PolicyForbidden
from cloudd.image.bundles import BundleError
from cloudd.image.for_compute import BootImageError
from cloudd.image.inspector import ImageUnacceptable
from cloudd.image.records import ImageNotFound, ImageStateConflict
from cloudd.network.defaults import RangeOverlap
from cloudd.network.floating import (
    FloatingIpAssociated,
    FloatingIpNotFound,
    FloatingIpQuotaExceeded,
    NoMoreFloatingIps,
)
from cloudd.network.for_compute import NetworkRequestRefused
from cloudd.network.ipam import NoMoreFixedIps, NoNetworkAvailable
from cloudd.network.secgroups import SecurityGroupExists, SecurityGroupNotFound
from cloudd.objectstore.errors import S3Error
from cloudd.objectstore.storage import (
    BucketNotEmpty,
    BucketNotFound,
    InvalidName,
    InvalidRange,
    ObjectNotFound,
    ObjectTooLarge,
    StorageError,
    StorageFull,
)
from cloudd.vocab.network_errors import NetworkError
from cloudd.vocab.secgroup_rules import RuleError
from cloudd.vocab.states import InvalidInstanceState
from cloudd.web import inputs
from cloudd.web.inputs import InputRefused


@pytest.mark.parametrize(("error", "kind", "status"), [
    (refusals.InvalidIdentityRequest("x"), errors.BadRequest, 400),
    (refusals.WrongPassword("x"), errors.Unauthorized, 401),
    (refusals.AuthenticationRefused("x"), errors.Unauthorized, 401),
    (refusals.IdentityNotFound("x"), errors.NotFound, 404),
    (refusals.IdentityConflict("x"), errors.Conflict, 409),
    (FlavorNotFound("m1.nano"), errors.BadRequest, 400),
    (CreateRefused("x"), errors.BadRequest, 400),
    (InstanceNotFound("u"), errors.NotFound, 404),
    (QuotaExceeded({"cores": 2}, {"cores": 1}, {"cores": 2}), errors.Forbidden, 403),
    (ImageNotFound("i"), errors.NotFound, 404),
    (ImageStateConflict("x"), errors.Conflict, 409),
])
def test_domain_refusals_are_kinds(error: errors.CloudError, kind: type, status: int) -> None:
    assert isinstance(error, kind)
    assert error.status == status
    assert error.message == str(error)


@pytest.mark.parametrize(("cls", "kind"), [
    (compute_errors.BadRequest, errors.BadRequest), (compute_errors.NotFound, errors.NotFound),
    (identity_errors.Unauthorized, errors.Unauthorized), (image_errors.Gone, errors.Gone),
    (image_errors.TooLarge, errors.OverLimit), (network_errors.Conflict, errors.Conflict),
])
def test_api_classes_keep_their_kind_status(cls: type[errors.CloudError],
                                            kind: type[errors.CloudError]) -> None:
    error = cls("m")
    assert isinstance(error, kind)
    assert error.status == kind.status
    assert error.message == "m"


def test_aws_renderers_map_an_untranslated_kind() -> None:
    s3 = S3Error.from_kind(ImageNotFound("gone"))
    assert (s3.code, s3.status, s3.message) == ("NotFound", 404, "gone")
    quota = QuotaExceeded({"cores": 2}, {"cores": 1}, {"cores": 2})
    assert S3Error.from_kind(quota).code == "QuotaExceeded"
    ec2 = Ec2Error.from_kind(quota)
    assert (ec2.code, ec2.status) == ("ResourceLimitExceeded", 403)
    assert Ec2Error.from_kind(errors.CloudError("boom")).code == "InternalError"
    # The existing codes keep their statuses and messages.
    assert (S3Error("NoSuchKey").status, Ec2Error("AuthFailure", "m").status) == (404, 401)


# The domain refusals that reach the APIs, each on the kind it means (issue 17): the renderers
# take them as any CloudError, so the handlers no longer translate them one by one.
MOVED: list[tuple[errors.CloudError, type[errors.CloudError], int]] = [
    (InvalidInstanceState("stop", "u", "stopped", None), errors.Conflict, 409),
    (UnexpectedState("u", "vm_state", "active", ["stopped"]), errors.Conflict, 409),
    (HostUnavailable("compute-1"), errors.Conflict, 409),
    (InputRefused("malformed"), errors.BadRequest, 400),
    (inputs.body_too_large(10), errors.OverLimit, 413),
    (InputRefused("slow", 408), errors.BadRequest, 408),
    (TokenRefused("expired"), errors.Forbidden, 403),
    (PolicyForbidden(), errors.Forbidden, 403),
    (NetworkRequestRefused("Port p could not be found."), errors.BadRequest, 400),
    (NetworkError("security group g is in use"), errors.CloudError, 400),
    (SecurityGroupNotFound("g"), errors.NotFound, 404),
    (SecurityGroupExists("g"), errors.Conflict, 409),
    (FloatingIpNotFound("f"), errors.NotFound, 404),
    (FloatingIpAssociated("f"), errors.Conflict, 409),
    (NoMoreFloatingIps("none"), errors.Conflict, 409),
    (FloatingIpQuotaExceeded("q"), errors.QuotaExceeded, 403),
    (RangeOverlap("r"), errors.Conflict, 409),
    (NoMoreFixedIps("n"), errors.Conflict, 409),
    (NoNetworkAvailable("n"), errors.BadRequest, 400),
    (RuleError("port", "Invalid port range"), errors.BadRequest, 400),
    (BundleError("InvalidManifest", "bad"), errors.BadRequest, 400),
    (ImageUnacceptable("unsafe"), errors.BadRequest, 400),
    (BootImageError("Image i is not active."), errors.BadRequest, 400),
    (StorageError("unreadable"), errors.CloudError, 500),
    (StorageFull("full"), errors.CloudError, 500),
    (InvalidName("n"), errors.BadRequest, 400),
    (BucketNotFound("b"), errors.NotFound, 404),
    (BucketNotEmpty("b"), errors.Conflict, 409),
    (ObjectNotFound("o"), errors.NotFound, 404),
    (ObjectTooLarge("o"), errors.OverLimit, 413),
    (InvalidRange("r"), errors.BadRequest, 400),
    (SignatureError("SignatureDoesNotMatch"), errors.Forbidden, 403),
    (CertError("bad CSR"), errors.BadRequest, 400),
]


@pytest.mark.parametrize(("error", "kind", "status"), MOVED,
                         ids=[type(error).__name__ for error, _, _ in MOVED])
def test_moved_refusals_are_kinds(error: errors.CloudError, kind: type, status: int) -> None:
    assert isinstance(error, kind)
    assert error.status == status
    assert error.message == str(error)


def test_moved_refusals_keep_their_other_bases() -> None:
    """What callers outside the APIs catch them as (cloudd manage, pydantic validators)."""
    assert isinstance(ImageUnacceptable("x"), ValueError)
    assert isinstance(NetworkRequestRefused("x"), ValueError)
    assert isinstance(RuleError("port", "x"), ValueError)
    assert isinstance(SecurityGroupExists("g"), NetworkError)
    assert isinstance(ObjectTooLarge("o"), StorageError)
    assert isinstance(inputs.body_too_large(1), InputRefused)


def test_aws_renderers_map_moved_classes() -> None:
    """The codes EC2 and S3 answered for these classes before they were kinds."""
    state = Ec2Error.from_kind(InvalidInstanceState("stop", "u", "stopped", None))
    assert (state.code, state.status) == ("IncorrectInstanceState", 400)
    assert state.message.startswith("Cannot 'stop' instance u")
    large = Ec2Error.from_kind(inputs.body_too_large(10))
    assert (large.code, large.status) == ("RequestEntityTooLarge", 413)
    nul = Ec2Error.from_kind(InputRefused("The request contains a NUL character."))
    assert (nul.code, nul.status) == ("InvalidParameterValue", 400)
    signature = S3Error.from_kind(SignatureError("SignatureDoesNotMatch"))
    assert (signature.code, signature.status) == ("SignatureDoesNotMatch", 403)
    assert signature.message == S3Error("SignatureDoesNotMatch").message
    scope = S3Error.from_kind(SignatureError("AuthorizationHeaderMalformed", "bad scope",
                                             Region="r"))
    assert (scope.code, scope.status, scope.message, scope.fields) == \
        ("AuthorizationHeaderMalformed", 400, "bad scope", {"Region": "r"})
    too_large = S3Error.from_kind(ObjectTooLarge("o"))
    assert (too_large.code, too_large.status) == ("EntityTooLarge", 400)
    full = S3Error.from_kind(StorageFull("full"))
    assert (full.code, full.status, full.message) == \
        ("InternalError", 500, "The object store is out of space.")
    assert S3Error.from_kind(ObjectNotFound("o")).code == "InternalError"  # handlers say NoSuchKey
    query = S3Error.from_kind(InputRefused("max-keys must be a non-negative integer."))
    assert (query.code, query.status) == ("InvalidArgument", 400)


async def _raise(request: web.Request) -> web.Response:
    raise request.app[RAISE_KEY]


RAISE_KEY = web.AppKey("raise", Exception)


async def _rendered(middleware: Any, error: Exception) -> tuple[int, Any]:
    """What a real HTTP request gets from an app whose handler raises `error`."""
    app = web.Application(middlewares=[middleware])
    app[RAISE_KEY] = error
    app.router.add_get("/", _raise)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get("/")
        return resp.status, await resp.json()


async def test_renderers_answer_a_moved_refusal_over_http() -> None:
    status, body = await _rendered(network_errors.error_middleware, SecurityGroupNotFound("g"))
    assert (status, body) == (404, {"NeutronError": {
        "type": "HTTPNotFound", "message": "g", "detail": ""}})
    status, body = await _rendered(image_errors.error_middleware, ImageUnacceptable("unsafe"))
    assert (status, body["code"], body["message"]) == (400, 400, "unsafe")
    status, body = await _rendered(image_errors.error_middleware, inputs.body_too_large(5))
    assert (status, body["code"]) == (413, 413)
    status, body = await _rendered(identity_errors.error_middleware, PolicyForbidden())
    assert (status, body["error"]["code"]) == (403, 403)
