"""Domain names and ownership without libvirt: the name template, the cloudd metadata read back,
and what the periodic check does with this cloud's orphans (fake driver, so it stays fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness.fake_conductor import FakeConductor

from cloudd.agent.compute.drivers.fake import FakeDriver
from cloudd.agent.compute.drivers.libvirt_xml import DomainLayout, domain_owner, domain_xml
from cloudd.agent.compute.manager import ComputeManager
from cloudd.agent.compute.manager_init import check_host_domains
from cloudd.config import ConfigError, validate
from cloudd.vocab.instance_name import InstanceNameError, instance_name, render_instance_name

from .test_manager import build

UUID = "6f1c2a9e-0d3b-4c55-9a0e-2b1d7c4e8f00"
CLOUD = "0b8d5a4e-7c21-4f6a-9e3d-1a2b3c4d5e6f"


def test_default_name_is_the_uuid_and_nova_templates_still_render() -> None:
    cfg = validate({})
    assert render_instance_name(cfg.default.instance_name_template, 1, UUID, CLOUD) == \
        f"instance-{UUID}"
    assert render_instance_name("instance-%08x", 42, UUID, CLOUD) == "instance-0000002a"
    assert render_instance_name("c-%(cloud_id).8s-%(id)d", 7, UUID, CLOUD) == "c-0b8d5a4e-7"


@pytest.mark.parametrize("template", ["inst-%(nope)s", "a/%(uuid)s", "%s %s", "x" * 201])
def test_a_template_that_cannot_name_a_domain_is_a_config_error(template: str) -> None:
    with pytest.raises(InstanceNameError):
        render_instance_name(template, 1, UUID, CLOUD)
    with pytest.raises(ConfigError, match="instance_name_template"):
        validate({"default": {"instance_name_template": template}})


def test_the_kept_name_wins_and_old_rows_keep_their_numbered_name() -> None:
    row: dict[str, Any] = {"id": 42, "uuid": UUID}
    assert instance_name(row, {"instance_name": "instance-kept"}) == "instance-kept"
    assert instance_name(row, {}) == "instance-0000002a"


def _xml(cloud_id: str, path: str) -> str:
    return domain_xml(DomainLayout(uuid=UUID, name="n", virt_type="qemu", vcpus=1, memory_mb=64,
                                   console_log="/x/console.log", instances_path=path,
                                   cloud_id=cloud_id))


def test_ownership_needs_this_cloud_and_this_instances_path() -> None:
    owner = domain_owner(_xml(CLOUD, "/var/lib/cloudd/instances"))
    assert owner is not None and owner.cloud_id == CLOUD
    assert owner.is_ours(CLOUD, "/var/lib/cloudd/instances")
    assert not owner.is_ours("another-cloud", "/var/lib/cloudd/instances")
    assert not owner.is_ours(CLOUD, "/srv/other-agent/instances")  # a sibling agent's
    legacy = domain_owner(_xml("", "/var/lib/cloudd/instances"))  # made before cloud ids
    assert legacy is not None and legacy.cloud_id is None
    assert legacy.is_ours(CLOUD, "/var/lib/cloudd/instances")
    assert domain_owner("<domain><name>x</name></domain>") is None


@pytest.mark.parametrize(("action", "kept"), [("reap", False), ("log", True), ("noop", True)])
async def test_orphan_gets_the_configured_action(
    action: str, kept: bool, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    conductor = FakeConductor()
    driver = FakeDriver()
    manager = ComputeManager("host1", driver, conductor, tmp_path)
    manager.running_deleted_instance_action = action
    await manager.init_host()
    live = await build(manager, conductor, instance_id=1)
    orphan = await build(manager, conductor, instance_id=2)
    del conductor.instances[orphan]

    await check_host_domains(manager)

    assert sorted(await driver.list_instances()) == sorted([live, orphan] if kept else [live])
    assert (f"guest {orphan} of this cloud has no instance" in caplog.text) == (action == "log")
    await manager.cleanup_host()
