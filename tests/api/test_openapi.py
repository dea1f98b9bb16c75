"""The OpenAPI document covers every route the controller mounts, with the handlers' own models."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from harness.config import loopback_config

from cloudd.api.compute.server_models import ServerCreateBody
from cloudd.api.openapi import DOCUMENTED_PREFIXES, build_openapi
from cloudd.api.service import ApiService
from cloudd.controller import build_controller


def _mounted_app(tmp_path: Path) -> web.Application:
    return build_controller(loopback_config(tmp_path)).get(ApiService).build_app()


def _routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for resource in app.router.resources():
        subapp = getattr(resource, "_app", None)
        if isinstance(subapp, web.Application):
            found |= _routes(subapp)
            continue
        for route in resource:
            if resource.canonical.startswith(DOCUMENTED_PREFIXES) and route.method != "HEAD":
                found.add((route.method.lower(), resource.canonical))
    return found


def test_every_mounted_route_is_documented(tmp_path: Path) -> None:
    app = _mounted_app(tmp_path)
    document = build_openapi(app)
    documented = {(method, path) for path, operations in document["paths"].items()
                  for method in operations}
    mounted = _routes(app)
    assert len(mounted) > 100
    assert documented == mounted
    assert not any(path.startswith(("/healthz", "/metrics")) for _, path in documented)


def test_bodies_are_the_models_the_handlers_parse(tmp_path: Path) -> None:
    document = build_openapi(_mounted_app(tmp_path))
    create = document["paths"]["/compute/v2.1/servers"]["post"]
    schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/ServerCreateBody"}
    assert document["components"]["schemas"]["ServerCreateBody"]["required"] == \
        ServerCreateBody.model_json_schema()["required"]
    assert set(create["responses"]) >= {"202", "400", "401", "403", "413"}
    auth = document["paths"]["/identity/v3/auth/tokens"]["post"]["requestBody"]
    assert auth["content"]["application/json"]["schema"]["$ref"].endswith("/AuthRequest")
    network = document["paths"]["/network/v2.0/floatingips"]["post"]["requestBody"]
    assert network["content"]["application/json"]["schema"]["required"] == ["floatingip"]
    # A GET takes no body; every $ref names a schema the document holds.
    assert "requestBody" not in document["paths"]["/compute/v2.1/servers"]["get"]
    text = repr(document)
    for name in document["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in text
