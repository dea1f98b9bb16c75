"""The controller+agent fixture with tokens (shared with the console tests)."""

from harness.console import cloud  # noqa: F401 - the fixture
