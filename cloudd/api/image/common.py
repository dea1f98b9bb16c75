"""What every image handler needs: the caller, the image domain's front door, the body."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from cloudd.api.auth import get_context
from cloudd.api.image.errors import BadRequest
from cloudd.api.keys import HOST_KEY
from cloudd.identity.policy import RequestContext
from cloudd.image import records
from cloudd.image.api import ImageAPI
from cloudd.web import inputs

SIZE_CAP_KEY = web.AppKey("image_size_cap", int)


def context(request: web.Request) -> RequestContext:
    return get_context(request)


def image_api(request: web.Request) -> ImageAPI:
    return ImageAPI(request.config_dict[HOST_KEY],
                    request.config_dict.get(SIZE_CAP_KEY, records.IMAGE_SIZE_CAP))


async def read_json(request: web.Request) -> Any:
    """The shared parser; its refusals (400, 413) leave in Glance's error body."""
    if not request.can_read_body:
        raise BadRequest("The request body is missing.")
    return await inputs.read_json(request)


def validate(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
                          for err in exc.errors()[:3])
        raise BadRequest(f"Invalid input: {where}") from None
