"""The compute manager's calls: reads the API waits for (console output, VNC address,
diagnostics, the host's uptime and guests). Their errors go back to the caller: a driver's
not-found and wrong-state errors as RPC errors the API maps to 404 and 409."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cloudd.agent.compute.drivers.base import ComputeDriver, InstanceNotFound, InvalidState
from cloudd.agent.compute.manager_utils import tail_lines
from cloudd.rpc import RpcContext, RpcError, rpc_method
from cloudd.rpc.contracts.compute import (
    ConsoleOutput,
    ConsoleOutputRequest,
    Diagnostics,
    GuestList,
    HostQuery,
    HostUptime,
    InstanceAction,
    VncConsole,
)
from cloudd.rpc.contracts.conductor import InstanceNotFoundError


class ManagerCalls:
    """Mixed into ComputeManager, whose driver answers."""

    driver: ComputeDriver

    @rpc_method
    async def get_console_output(self, ctx: RpcContext, args: ConsoleOutputRequest) -> ConsoleOutput:
        with _driver_errors_as_rpc(args.uuid):
            output = await self.driver.get_console_output(args.uuid)
        return ConsoleOutput(output=tail_lines(output, args.length))

    @rpc_method
    async def list_guests(self, ctx: RpcContext, args: HostQuery) -> GuestList:
        """What the hypervisor holds (read-only): lets the controller find guests it does not
        know, and instances whose guest is gone."""
        return GuestList(uuids=sorted(await self.driver.list_instances()))

    @rpc_method
    async def get_host_uptime(self, ctx: RpcContext, args: HostQuery) -> HostUptime:
        return HostUptime(uptime=await self.driver.get_host_uptime())

    @rpc_method
    async def get_diagnostics(self, ctx: RpcContext, args: InstanceAction) -> Diagnostics:
        with _driver_errors_as_rpc(args.uuid):
            return await self.driver.get_diagnostics(args.uuid)

    @rpc_method
    async def get_vnc_console(self, ctx: RpcContext, args: InstanceAction) -> VncConsole:
        with _driver_errors_as_rpc(args.uuid):
            address = await self.driver.get_vnc_console(args.uuid)
        return VncConsole(host=address.host, port=address.port)


@contextmanager
def _driver_errors_as_rpc(uuid: str) -> Iterator[None]:
    """A driver's not-found / wrong-state errors as RPC errors the API maps to 404 / 409."""
    try:
        yield
    except InstanceNotFound as exc:
        raise InstanceNotFoundError(str(exc), {"uuid": uuid}) from exc
    except InvalidState as exc:
        raise RpcError(str(exc), {"uuid": uuid}, code="instance_invalid_state") from exc
