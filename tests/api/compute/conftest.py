"""A real controller in-process (SQLite in tmp_path) with one agent, bootstrapped, with an admin
token (harness.api)."""

from harness.api import cloud  # noqa: F401 - the fixture
