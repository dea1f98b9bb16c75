"""Instances as the tests hold them: `Row`, an `Instance` the tests may also index by column
name (as they did the rows before instances were typed), so the same object is asserted on
and handed to `ComputeAPI` and the repositories."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from cloudd.rpc.contracts.instance import Instance


class Row(Instance):
    def __getitem__(self, column: str) -> Any:
        """The column's value; a record column (flavor, request_spec) as its JSON keeps it."""
        value = getattr(self, column)
        if isinstance(value, BaseModel):
            return value.model_dump(exclude_none=True)
        return value

    def get(self, column: str, default: Any = None) -> Any:
        return self[column] if column in type(self).model_fields else default


def as_row(instance: Instance) -> Row:
    return Row.model_validate(instance.model_dump())
