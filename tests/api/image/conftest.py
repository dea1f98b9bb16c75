"""The compute tests' in-process cloud (controller + one fake-driver agent, admin token)."""

from __future__ import annotations

from typing import Any

from ..compute.conftest import Cloud, cloud

__all__ = ["Cloud", "cloud", "patch_headers"]


def patch_headers() -> dict[str, Any]:
    return {"Content-Type": "application/openstack-images-v2.1-json-patch"}
