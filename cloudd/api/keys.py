"""The application keys the controller's HTTP front shares with every API's handlers.

Its own module so handlers (and cloudd.api.service, which mounts them) import it without
importing each other.
"""

from __future__ import annotations

from aiohttp import web

from cloudd.core import ServiceHost

HOST_KEY = web.AppKey("cloudd_host", ServiceHost)
