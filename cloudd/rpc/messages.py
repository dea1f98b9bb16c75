"""Wire envelopes: one JSON text frame per message, discriminated on ``type``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, TypeAdapter, ValidationError


class CallMessage(BaseModel):
    type: Literal["call"] = "call"
    id: str
    method: str
    args: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    timeout: float | None = None


class CastMessage(BaseModel):
    type: Literal["cast"] = "cast"
    id: str
    method: str
    args: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None


class ResultMessage(BaseModel):
    type: Literal["result"] = "result"
    id: str
    result: Any = None


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorMessage(BaseModel):
    type: Literal["error"] = "error"
    id: str
    error: ErrorBody


Envelope = Annotated[
    CallMessage | CastMessage | ResultMessage | ErrorMessage, Field(discriminator="type")
]
envelope_adapter: TypeAdapter[Envelope] = TypeAdapter(Envelope)


def describe_validation_error(exc: ValidationError) -> tuple[str, list[dict[str, Any]]]:
    """A one-line message naming each bad field, and JSON-safe details without the input values
    (inputs may hold secrets such as admin passwords, and must not travel back or reach logs)."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    problems = [
        {"field": ".".join(str(part) for part in error["loc"]) or "<root>", "error": error["msg"]}
        for error in errors
    ]
    message = "; ".join(f"{problem['field']}: {problem['error']}" for problem in problems)
    return message, problems
