"""The controller+agent fixture with tokens (shared with the console tests)."""

from vncproxy.conftest import cloud  # noqa: F401
