"""An OpenAPI 3.1 document of the Compute, Identity, Image and Network routes, built from the code.

The paths and methods come from the running application's route tables, so a route added to any
API appears here without anyone editing a second list. Request bodies come from the handlers
themselves: a handler that parses its body with `parse_body(request, Model)` is documented with
that pydantic model's JSON schema; one that reads a Neutron ``{"<resource>": {...}}`` body says
so; any other body-reading handler is documented as taking a JSON object, and nothing more is
claimed. Responses are described loosely (status codes and content types) since the views build
plain dicts, not models. The document is public, like the APIs' version documents: it describes
the routes, never data (see docs/api.md).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web
from pydantic import BaseModel

# The APIs this document covers (mounted under these prefixes); S3, EC2 and the metadata
# service speak other protocols and are left out.
DOCUMENTED_PREFIXES = ("/compute", "/identity", "/image", "/network")
# Any route of these APIs can refuse a request for its shape, token, role, absence, state or
# size, or a body that never arrives (408), or too many unauthenticated requests in flight (429);
# the shared parser and each API's error middleware render all of these as JSON.
ERROR_STATUSES = ("400", "401", "403", "404", "405", "408", "409", "413", "415", "429")
# `status=201`, or `status=201 if version.at_least("2.2") else 200`: every code the handler sets.
STATUS_ARGUMENT = re.compile(r"status=(.*)")
ANSWERED_STATUS = re.compile(r"\b([23]\d\d)\b")
PARSE_BODY = re.compile(r"(?:parse_body|validate)\(request, (\w+)\)|validate\((\w+), await read_json\(")
NEUTRON_RESOURCE = re.compile(r"read_resource\(request, \"(\w+)\"\)")
READS_JSON = re.compile(r"read_json\(|parse_body\(|read_resource\(")
READS_STREAM = re.compile(r"request\.content\b|read_body\(")
OPENAPI_KEY = web.AppKey("cloudd_openapi", dict)

JSON_OBJECT: dict[str, Any] = {"type": "object"}


def _documented_routes(app: web.Application) -> Iterator[tuple[str, str, Callable[..., Any]]]:
    """(path template, method, handler) of every route under a documented prefix."""
    for resource in app.router.resources():
        subapp = getattr(resource, "_app", None)
        if isinstance(subapp, web.Application):
            yield from _documented_routes(subapp)
            continue
        path = resource.canonical
        if not path.startswith(DOCUMENTED_PREFIXES):
            continue
        for route in resource:
            if route.method in ("HEAD", "*"):  # aiohttp adds HEAD to every GET by itself
                continue
            yield path, route.method, route.handler


def _source(handler: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(inspect.unwrap(handler))
    except (OSError, TypeError):
        return ""


def _body_schema(handler: Callable[..., Any], source: str, schemas: dict[str, Any]) -> Any:
    """The JSON schema of the body the handler parses, or None when it reads no JSON body."""
    found = PARSE_BODY.search(source)
    if found:
        model = getattr(inspect.unwrap(handler), "__globals__", {}).get(found[1] or found[2])
        if isinstance(model, type) and issubclass(model, BaseModel):
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
            return {"$ref": f"#/components/schemas/{model.__name__}"}
    resource = NEUTRON_RESOURCE.search(source)
    if resource:
        return {"type": "object", "required": [resource[1]],
                "properties": {resource[1]: JSON_OBJECT}}
    return JSON_OBJECT if READS_JSON.search(source) else None


def _raised_statuses(handler: Callable[..., Any], source: str) -> set[str]:
    """Codes of the API's error classes the handler raises by name (Nova's 501 for
    `os-certificates/{id}` other than root, for one), beyond the ones every route may answer."""
    statuses = set()
    for name, value in getattr(inspect.unwrap(handler), "__globals__", {}).items():
        status = getattr(value, "status", None)
        if isinstance(value, type) and issubclass(value, Exception) and isinstance(status, int) \
                and f"raise {name}(" in source:
            statuses.add(str(status))
    return statuses - set(ERROR_STATUSES)


def _responses(handler: Callable[..., Any], source: str, streams_out: bool) -> dict[str, Any]:
    statuses = sorted({status for argument in STATUS_ARGUMENT.findall(source)
                       for status in ANSWERED_STATUS.findall(argument)}) or ["200"]
    responses: dict[str, Any] = {}
    for status in statuses:
        if status == "204":
            responses[status] = {"description": "No content."}
        elif "json_response(" not in source and not streams_out:  # e.g. an empty 202
            responses[status] = {"description": "Success, no body."}
        elif streams_out:
            responses[status] = {"description": "Success.", "content": {
                "application/octet-stream": {}, "application/json": {"schema": JSON_OBJECT}}}
        else:
            responses[status] = {"description": "Success.",
                                 "content": {"application/json": {"schema": JSON_OBJECT}}}
    for status in (*ERROR_STATUSES, *sorted(_raised_statuses(handler, source))):
        responses[status] = {"description": "Refused, in the API's own error format.",
                             "content": {"application/json": {"schema": JSON_OBJECT}}}
    return responses


def _operation(path: str, method: str, handler: Callable[..., Any],
               schemas: dict[str, Any]) -> dict[str, Any]:
    source = _source(handler)
    name = getattr(inspect.unwrap(handler), "__qualname__", "handler")
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}:{path}",
        "summary": f"{inspect.unwrap(handler).__module__}.{name}",
        "parameters": [{"name": param, "in": "path", "required": True, "schema": {"type": "string"}}
                       for param in re.findall(r"\{(\w+)(?::[^}]*)?\}", path)],
        "responses": _responses(handler, source, "StreamResponse" in source),
    }
    body = _body_schema(handler, source, schemas)
    if body is not None and method in ("POST", "PUT", "PATCH"):
        media = "application/openstack-images-v2.1-json-patch" if "json-patch" in source \
            else "application/json"
        operation["requestBody"] = {"required": True, "content": {media: {"schema": body}}}
    elif READS_STREAM.search(source) and method == "PUT":
        operation["requestBody"] = {"required": True,
                                    "content": {"application/octet-stream": {}}}
    return operation


def build_openapi(app: web.Application) -> dict[str, Any]:
    """The document for `app` (the API service's root application, sub-apps added)."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for path, method, handler in _documented_routes(app):
        template = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)
        paths.setdefault(template, {})[method.lower()] = _operation(path, method, handler, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "cloudd: Compute, Identity, Image and Network APIs", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
        },
        # Routes that need no token (version documents, POST auth/tokens) ignore the header.
        "security": [{"token": []}],
    }


async def openapi_handler(request: web.Request) -> web.Response:
    """GET /openapi.json: public, like the version documents (routes and schemas, never data)."""
    return web.json_response(request.app[OPENAPI_KEY])
