"""A real controller in-process with one agent, bootstrapped, with an admin token (harness.api),
on each backend: SQLite in tmp_path and a fresh PostgreSQL database."""

from harness.api import cloud  # noqa: F401 - the fixture
