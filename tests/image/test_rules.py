"""The image front door's rules without a database: Glance's policy, and ImagePatch applying
changes in order with each one's rule, its refusals kinds of the error base."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from cloudd import errors
from cloudd.image.records import Image
from cloudd.image.rules import (
    ImageConflict,
    ImageForbidden,
    ImagePatch,
    ImageRefused,
    can_read,
    can_write,
)


@dataclass(frozen=True)
class Who:
    project_id: str | None = "p1"
    roles: frozenset[str] = frozenset({"member"})
    is_admin: bool = False


def image(**values: Any) -> Image:
    return Image.model_validate({"id": "i1", "owner": "p1", "status": "queued",
                                 "visibility": "private", "properties": {"a": "1"},
                                 "created_at": 0.0, "updated_at": 0.0, **values})


def test_policy() -> None:
    assert can_read(Who(roles=frozenset({"reader"})))
    assert not can_read(Who(roles=frozenset()))
    assert can_write(Who(), image())
    assert not can_write(Who(roles=frozenset({"reader"})), image())
    assert not can_write(Who(), image(owner="p2"))
    assert can_write(Who(roles=frozenset(), is_admin=True), image(owner="p2"))


def test_patch_applies_in_order() -> None:
    patch = ImagePatch(Who(), image())
    patch.set("b", "2")
    patch.set("b", "3", must_exist=True)
    patch.remove("a")
    patch.set("tags", ["x", "x", "y"])
    patch.set("name", None)
    assert patch.changes.values() == {"tags": ["x", "y"], "name": None,
                                      "properties": {"b": "3"}}


@pytest.mark.parametrize(("who", "status", "op", "kind"), [
    (Who(), "queued", ("set", "size", 1), ImageForbidden),
    (Who(), "queued", ("remove", "name", None), ImageForbidden),
    (Who(), "queued", ("set", "visibility", "public"), ImageForbidden),
    (Who(is_admin=True), "queued", ("set", "visibility", "publicly"), ImageRefused),
    (Who(), "queued", ("set", "owner", "p2"), ImageForbidden),
    (Who(), "active", ("set", "disk_format", "raw"), ImageForbidden),
    (Who(), "queued", ("set", "min_ram", "1"), ImageRefused),
    (Who(), "queued", ("set", "missing", "v", True), ImageConflict),
    (Who(), "queued", ("remove", "missing", None), ImageConflict),
    (Who(), "queued", ("set", "b", 2), ImageRefused),
])
def test_patch_refusals(who: Who, status: str, op: tuple[Any, ...],
                        kind: type[errors.CloudError]) -> None:
    patch = ImagePatch(who, image(status=status))
    with pytest.raises(kind):
        if op[0] == "remove":
            patch.remove(op[1])
        else:
            patch.set(op[1], op[2], must_exist=len(op) > 3)
    assert issubclass(kind, errors.CloudError)
