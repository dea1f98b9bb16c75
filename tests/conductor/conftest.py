"""The engine's cloud (harness.cloud): the controller and one enrolled agent (fake driver) over a
real websocket on loopback, on SQLite and on PostgreSQL."""

from harness.cloud import cloud  # noqa: F401 - the fixture
