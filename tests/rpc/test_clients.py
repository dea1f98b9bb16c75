"""The typed clients send exactly the methods the other side serves, with the handlers'
argument and result types: a handler renamed or retyped on the agent side breaks this test
instead of an RPC at run time."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest
from pydantic import BaseModel

from cloudd.agent.compute.manager import ComputeManager
from cloudd.agent.health import HostHealth
from cloudd.agent.network.manager import NetworkManager
from cloudd.network.service import NetworkService
from cloudd.rpc.contracts import compute, network
from cloudd.rpc.dispatch import _MARKER, _result_model


class RecordingLink:
    """An RpcLink that records what is sent and answers with an empty result of the asked type."""

    remote_address: str | None = None

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, BaseModel | None, type[BaseModel] | None]] = []

    async def call(self, method: str, args: BaseModel | None = None,
                   result_type: type[BaseModel] | None = None, *,
                   timeout: float | None = None) -> Any:  # noqa: ASYNC109
        self.sent.append(("call", method, args, result_type))
        return None if result_type is None else result_type.model_construct()

    async def cast(self, method: str, args: BaseModel | None = None) -> None:
        self.sent.append(("cast", method, args, None))


def served(*services: type) -> dict[str, tuple[type[BaseModel], type[BaseModel] | None]]:
    """name -> (args type, result type) of every @rpc_method of the agent-side classes."""
    handlers = {}
    for cls in services:
        for name, member in inspect.getmembers(cls):
            if getattr(member, _MARKER, False):
                hints = typing.get_type_hints(member)
                params = list(inspect.signature(member).parameters)
                handlers[name] = (hints[params[2]], _result_model(name, hints["return"]))
    return handlers


def client_methods(cls: type) -> list[str]:
    return [name for name, member in inspect.getmembers(cls, inspect.iscoroutinefunction)
            if not name.startswith("_")]


CASES = [
    (compute.ComputeClient, compute.PREFIX, (ComputeManager, HostHealth)),
    (network.NetworkClient, network.PREFIX, (NetworkManager,)),
    (network.NetworkConductorClient, network.CONDUCTOR_PREFIX, (NetworkService,)),
]


@pytest.mark.parametrize(("client_cls", "prefix", "services"), CASES)
async def test_client_methods_are_the_agents_handlers(
    client_cls: type, prefix: str, services: tuple[type, ...]
) -> None:
    handlers = served(*services)
    assert sorted(client_methods(client_cls)) == sorted(handlers)
    for name in client_methods(client_cls):
        link = RecordingLink()
        method = getattr(client_cls(link), name)
        args_type = typing.get_type_hints(method)["args"]
        expected_args, expected_result = handlers[name]
        assert args_type is expected_args, name
        result = await method(args_type.model_construct())
        [(_kind, sent, args, result_type)] = link.sent
        assert sent == prefix + name
        assert isinstance(args, expected_args)
        if expected_result is None:
            assert result is None, name
        else:  # a call: the handler's result type, parsed as such
            assert result_type is expected_result, name
            assert isinstance(result, expected_result), name


def test_conductor_client_methods_are_the_conductors_handlers() -> None:
    """The agent's ConductorClient takes plain values for some methods (an instance's uuid, ...),
    so only its names are compared: each is a ``conductor.*`` method the conductor serves."""
    from cloudd.agent.conductor_client import ConductorClient
    from cloudd.conductor.manager import ConductorManager

    assert sorted(client_methods(ConductorClient)) == sorted(served(ConductorManager))
