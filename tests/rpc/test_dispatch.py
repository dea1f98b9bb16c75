"""Handler shapes are checked when a service registers, not on the first call."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from cloudd.rpc import RpcContext, RpcDispatcher, rpc_method


class Args(BaseModel):
    name: str


class Result(BaseModel):
    ok: bool


class GoodService:
    @rpc_method
    async def build_instance(self, ctx: RpcContext, args: Args) -> Result:
        return Result(ok=True)

    @rpc_method
    async def maybe(self, ctx: RpcContext, args: Args) -> Result | None:
        return None

    async def not_exposed(self, ctx: RpcContext, args: Args) -> None:
        return None


class UntypedArgs:
    @rpc_method
    async def build_instance(self, ctx: RpcContext, args: dict[str, Any]) -> None:
        return None


class NotAsync:
    @rpc_method
    def build_instance(self, ctx: RpcContext, args: Args) -> None:
        return None


class DictResult:
    @rpc_method
    async def build_instance(self, ctx: RpcContext, args: Args) -> dict[str, Any]:
        return {}


def test_register_exposes_only_marked_methods_with_prefix() -> None:
    dispatcher = RpcDispatcher()

    names = dispatcher.register(GoodService(), prefix="compute.")

    assert sorted(names) == dispatcher.methods == ["compute.build_instance", "compute.maybe"]
    handler = dispatcher.handler("compute.build_instance")
    assert handler is not None and (handler.args_type, handler.result_type) == (Args, Result)
    maybe = dispatcher.handler("compute.maybe")
    assert maybe is not None and maybe.result_type is Result


@pytest.mark.parametrize("service", [UntypedArgs(), NotAsync(), DictResult()])
def test_wrongly_shaped_handler_is_refused_at_registration(service: object) -> None:
    with pytest.raises(TypeError, match="build_instance"):
        RpcDispatcher().register(service)


def test_same_name_twice_is_refused() -> None:
    dispatcher = RpcDispatcher()
    dispatcher.register(GoodService())

    with pytest.raises(ValueError, match="already registered"):
        dispatcher.register(GoodService())
