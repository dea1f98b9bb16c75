"""Real networking for the network tests (harness.netlab): namespaces and links made by one test,
all removed at the end."""

from harness.netlab import lab  # noqa: F401 - the fixture
