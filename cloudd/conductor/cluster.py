"""Scale-out: several controllers on one PostgreSQL serve one cloud.

An agent is connected to one controller at a time; `agent_links` records which. A controller
that must reach an agent connected elsewhere writes the message into `cluster_messages` and
wakes the owner with PostgreSQL NOTIFY (the row carries the payload, so there is no size limit);
the owner relays it over its websocket and, for a call, answers the same way. Nothing here is a
cluster protocol of our own: PostgreSQL is the only shared thing. On SQLite (one controller)
the cluster is off and every agent is local.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, TypeVar

import asyncpg
from pydantic import BaseModel, RootModel

from cloudd import errors
from cloudd.db import Database
from cloudd.rpc import RpcError, RpcPeer, error_from_wire, request_id_var
from cloudd.rpc.contracts.compute import ComputeClient
from cloudd.rpc.contracts.network import NetworkClient
from cloudd.rpc.endpoint import AgentEndpoint

LOG = logging.getLogger(__name__)
T = TypeVar("T", bound=BaseModel)

CHANNEL_PREFIX = "cloudd_ctl_"
# A controller that has not refreshed its links for this long is presumed dead.
LINK_TTL = 120.0


class HostUnavailable(errors.Conflict):
    """The instance's host is not connected, so the action cannot reach it now: every API
    answers as for a state that does not allow it (Nova's 409, EC2's IncorrectInstanceState)."""

    def __init__(self, host: str) -> None:
        self.host = host
        super().__init__(f"compute host {host} is not connected")


class AgentLinks(AgentEndpoint):
    """The conductor service as its parts (this cluster, the builder, the manager) use it: the
    links to the agents (and, for an agent in the same process, the listener it dials).
    Defined here, below those parts, so that none of them imports cloudd.conductor.service,
    which builds them; `ConductorService` implements it."""

    async def peer_for(self, host: str, wait: float = 0.0) -> RpcPeer | RemoteLink:
        raise NotImplementedError

    async def local_peer(self, host: str) -> RpcPeer:
        raise NotImplementedError

    async def remember(self, host: str, peer: RpcPeer) -> None:
        raise NotImplementedError

    async def compute_client(self, host: str, wait: float = 0.0) -> ComputeClient:
        """The typed ``compute.*`` client of `host`'s agent (HostUnavailable: no link to it)."""
        return ComputeClient(await self.peer_for(host, wait))

    async def network_client(self, host: str, wait: float = 0.0) -> NetworkClient:
        """The typed ``network.*`` client of `host`'s agent (HostUnavailable: no link to it)."""
        return NetworkClient(await self.peer_for(host, wait))


class Cluster:
    def __init__(self, service: AgentLinks, db: Database) -> None:
        self.service = service
        self.db = db
        self.controller_id = uuid.uuid4().hex
        self.enabled = db.dialect == "postgresql"
        self._conn: asyncpg.Connection | None = None
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def channel(self) -> str:
        return CHANNEL_PREFIX + self.controller_id

    async def start(self) -> None:
        if not self.enabled:
            return
        # Named after this controller: while PostgreSQL holds this session, the controller is
        # alive (a killed one's session ends with its process), which `owner` asks.
        self._conn = await asyncpg.connect(
            self.db.url, server_settings={"application_name": self.channel})
        await self._conn.add_listener(self.channel, self._on_notify)
        LOG.info("cluster: controller %s listening on PostgreSQL", self.controller_id)

    async def stop(self) -> None:
        if self._conn is not None:
            await self.db.execute("DELETE FROM agent_links WHERE controller_id = $1",
                                  self.controller_id)
            await self._conn.close()
            self._conn = None
        for future in self._pending.values():
            future.cancel()
        for task in list(self._tasks):
            task.cancel()

    # ----- who owns which agent -------------------------------------------------------------
    async def announce(self, host: str) -> None:
        if self.enabled:
            await self.db.execute(
                "INSERT INTO agent_links (host, controller_id, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (host) DO UPDATE SET controller_id = $2, updated_at = $3",
                host, self.controller_id, time.time())

    async def forget(self, host: str) -> None:
        if self.enabled:
            await self.db.execute(
                "DELETE FROM agent_links WHERE host = $1 AND controller_id = $2",
                host, self.controller_id)

    async def refresh(self) -> None:
        """Keep our links fresh (called with the heartbeats) so that they never look stale."""
        if self.enabled:
            await self.db.execute("UPDATE agent_links SET updated_at = $1 WHERE controller_id = $2",
                                  time.time(), self.controller_id)

    async def owner(self, host: str) -> str | None:
        if not self.enabled:
            return None
        row = await self.db.fetchrow(
            "SELECT controller_id, updated_at FROM agent_links WHERE host = $1", host)
        if row is None or row["controller_id"] == self.controller_id:
            return None
        if time.time() - row["updated_at"] > LINK_TTL:
            return None
        if not await self._alive(str(row["controller_id"])):
            # Killed without its goodbye (stop deletes its links): a cast relayed to it would
            # be lost, so the host counts as not linked until its agent reconnects to one of us.
            LOG.info("cluster: controller %s, which held the link of %s, is gone",
                     row["controller_id"], host)
            return None
        return str(row["controller_id"])

    async def _alive(self, controller_id: str) -> bool:
        """Whether that controller's listening session is still open in PostgreSQL."""
        return bool(await self.db.fetchval(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = $1",
            CHANNEL_PREFIX + controller_id))

    # ----- sending ----------------------------------------------------------------------------
    async def _send(self, target: str, message: dict[str, Any]) -> None:
        row = await self.db.fetchrow(
            "INSERT INTO cluster_messages (target, payload, created_at) VALUES ($1, $2, $3)"
            " RETURNING id", target, json.dumps(message), time.time())
        assert row is not None
        await self.db.execute("SELECT pg_notify($1, $2)", CHANNEL_PREFIX + target, str(row["id"]))

    async def relay(self, owner: str, host: str, kind: str, method: str, args: dict[str, Any],
                    timeout: float | None,  # noqa: ASYNC109 - travels to the owner
                    ) -> dict[str, Any] | None:
        message_id = uuid.uuid4().hex
        message: dict[str, Any] = {
            "kind": kind, "host": host, "method": method, "args": args, "from": self.controller_id,
            "id": message_id, "timeout": timeout, "request_id": request_id_var.get()}
        if kind == "cast":
            await self._send(owner, message)
            return None
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        try:
            await self._send(owner, message)
            return await asyncio.wait_for(future, timeout or 60.0)
        finally:
            self._pending.pop(message_id, None)

    # ----- receiving --------------------------------------------------------------------------
    def _on_notify(self, conn: object, pid: int, channel: str, payload: str) -> None:
        task = asyncio.get_running_loop().create_task(self._receive(int(payload)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _receive(self, message_id: int) -> None:
        row = await self.db.fetchrow(
            "DELETE FROM cluster_messages WHERE id = $1 RETURNING payload", message_id)
        if row is None:
            return
        message = json.loads(row["payload"])
        if message["kind"] == "reply":
            future = self._pending.get(message["id"])
            if future is not None and not future.done():
                future.set_result(message)
            return
        await self._serve(message)

    async def _serve(self, message: dict[str, Any]) -> None:
        """Run a relayed call/cast on our local link to the agent; answer calls."""
        reply: dict[str, Any] = {"kind": "reply", "id": message["id"]}
        request_id_var.set(message.get("request_id"))
        try:
            peer = await self.service.local_peer(message["host"])
            if message["kind"] == "cast":
                await peer.cast(message["method"], _Raw(message["args"]))
                return
            result = await peer.call(message["method"], _Raw(message["args"]), _Raw,
                                     timeout=message.get("timeout"))
            reply["result"] = result.root if result is not None else None
            # What the agent reports about itself is checked against where it connects from.
            reply["remote_address"] = peer.remote_address
        except RpcError as exc:
            reply["error"] = {"code": exc.code, "message": exc.message, "details": exc.details}
        except Exception as exc:
            reply["error"] = {"code": "connection_lost", "message": str(exc), "details": {}}
        if message["kind"] == "call":
            await self._send(message["from"], reply)


class _Raw(RootModel[Any]):
    """Relayed arguments and results: JSON that only passes through this controller."""


class RemoteLink:
    """Looks like an RpcPeer to callers, but reaches an agent owned by another controller."""

    closed = False

    def __init__(self, cluster: Cluster, owner: str, host: str) -> None:
        self.cluster, self.owner, self.host = cluster, owner, host
        # The agent link's address as the owner sees it, from the last call's reply.
        self.remote_address: str | None = None

    async def cast(self, method: str, args: BaseModel | None = None) -> None:
        await self.cluster.relay(self.owner, self.host, "cast", method,
                                 args.model_dump(mode="json") if args else {}, None)

    async def call(self, method: str, args: BaseModel | None = None,
                   result_type: type[T] | None = None, *,
                   timeout: float | None = None,  # noqa: ASYNC109 - same signature as RpcPeer
                   ) -> Any:
        reply = await self.cluster.relay(self.owner, self.host, "call", method,
                                         args.model_dump(mode="json") if args else {}, timeout)
        assert reply is not None
        self.remote_address = reply.get("remote_address")
        if "error" in reply:
            err = reply["error"]
            raise error_from_wire(err["code"], err["message"], err.get("details"))
        result = reply.get("result")
        if result_type is None or result is None:
            return None
        return result_type.model_validate(result)
