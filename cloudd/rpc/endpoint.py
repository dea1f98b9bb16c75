"""The controller's agent listener as an agent in the same process (the all-in-one) finds it:
by this type, which the conductor service is, so that the agent tree imports no controller
service. A standalone agent has none and dials its configured controller URLs."""

from __future__ import annotations

from cloudd.core import Service


class AgentEndpoint(Service):
    # The port the agent websocket listens on, once started (the OS may have chosen it).
    port: int | None = None
