"""The compute tests' in-process cloud (controller + one fake-driver agent, admin token)."""

from harness.api import cloud  # noqa: F401 - the fixture
