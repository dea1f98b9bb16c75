"""What the Schemathesis run (test_fuzz_openapi.py) found, each kept as a test of its own.

On both database backends: a value that fits SQLite's 64-bit integers can overflow a PostgreSQL
INTEGER column, which must be refused by the API's model (400), never by the database (5xx).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness.api import running_cloud

FLAVOR = {"name": "big", "ram": 512, "vcpus": 1, "disk": 1}


@pytest.mark.parametrize(("field", "value"), [
    ("ram", 2**31), ("vcpus", 2**31), ("disk", 2**31), ("swap", 1917213768116),
    ("OS-FLV-EXT-DATA:ephemeral", 2**31), ("rxtx_factor", 2.35e307)])
async def test_flavor_sizes_beyond_novas_bounds_are_400(tmp_path: Path, db_url: str, field: str,
                                                        value: float) -> None:
    async with running_cloud(tmp_path, database={"connection": db_url}) as cloud:
        status, body, _ = await cloud.call("POST", "/compute/v2.1/flavors",
                                           json={"flavor": {**FLAVOR, field: value}})
        assert status == 400, body
        assert field.split(":")[-1] in body["badRequest"]["message"]
        # At the bound itself the flavor is made, on both backends.
        limit = 3.40282e38 if field == "rxtx_factor" else 2**31 - 1
        status, body, _ = await cloud.call("POST", "/compute/v2.1/flavors",
                                           json={"flavor": {**FLAVOR, field: limit}})
        assert status == 200, body
