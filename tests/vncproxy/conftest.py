"""A controller with its console proxy and one fake-driver agent, an admin token, and a real QEMU
VNC server to relay to (harness.console)."""

from harness.console import cloud, qemu_vnc  # noqa: F401 - the fixtures
