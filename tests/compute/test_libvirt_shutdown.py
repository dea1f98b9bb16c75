"""The libvirt driver's clean stop presses the ACPI power button again while the guest has not
powered off: a guest early in its boot loses a press (nothing listens yet), and a stop then must
not wait out the whole clean shutdown timeout and pull the plug."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import libvirt  # libvirt-python: scripts/install-libvirt.sh installs it (`make install`)
import pytest

from cloudd.agent.compute.drivers import libvirt as libvirt_driver


class DeafGuest:
    """A domain that ignores the first ``deaf_presses`` presses of its power button."""

    def __init__(self, deaf_presses: int) -> None:
        self.deaf_presses = deaf_presses
        self.presses = 0
        self.destroyed = False
        self.running = True

    def isActive(self) -> int:  # libvirt's name
        return int(self.running)

    def shutdown(self) -> int:
        if not self.running:
            raise libvirt.libvirtError("Requested operation is not valid: domain is not running")
        self.presses += 1
        if self.presses > self.deaf_presses:
            self.running = False
        return 0

    def destroy(self) -> int:
        self.destroyed = True
        self.running = False
        return 0


class FakeHost:
    def __init__(self, domain: DeafGuest) -> None:
        self.domain = domain

    async def lookup(self, uuid: str) -> DeafGuest:
        return self.domain

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        return function(*args)


def driver_for(domain: DeafGuest, timeout: float) -> libvirt_driver.LibvirtDriver:
    driver = libvirt_driver.LibvirtDriver(instances_path="/nonexistent",
                                          clean_shutdown_timeout=timeout)
    driver._libvirt = FakeHost(domain)  # type: ignore[assignment]
    return driver


async def test_power_button_is_pressed_again_until_the_guest_listens(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libvirt_driver, "ACPI_RETRY_INTERVAL", 0.1)
    guest = DeafGuest(deaf_presses=3)
    started = time.monotonic()
    await driver_for(guest, timeout=30)._shutdown("u", clean=True)
    assert guest.presses == 4 and not guest.running
    assert not guest.destroyed  # the guest powered itself off
    assert time.monotonic() - started < 10  # far from the 30 s timeout


async def test_a_guest_that_never_listens_is_destroyed_at_the_timeout(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libvirt_driver, "ACPI_RETRY_INTERVAL", 0.1)
    guest = DeafGuest(deaf_presses=10**6)
    await driver_for(guest, timeout=1.0)._shutdown("u", clean=True)
    assert guest.destroyed and guest.presses >= 3


async def test_a_guest_powering_off_between_presses_is_not_destroyed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(libvirt_driver, "ACPI_RETRY_INTERVAL", 0.1)
    guest = DeafGuest(deaf_presses=10**6)
    press = guest.shutdown

    def late_press() -> int:  # the first press lands slowly: the guest is gone by the second
        if guest.presses == 1:
            guest.running = False
        return press()

    guest.shutdown = late_press  # type: ignore[method-assign]
    await driver_for(guest, timeout=5)._shutdown("u", clean=True)
    assert guest.presses == 1 and not guest.destroyed
