"""One EC2 call as the action handlers see it: the caller, the parameters, the cloud."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cloudd.api.ec2.xml import Ec2Error, invalid, missing
from cloudd.api.patterns import PatternError, wildcard_match
from cloudd.core import ServiceHost
from cloudd.db import Database
from cloudd.identity.policy import RequestContext
from cloudd.web.inputs import INT64_MAX

_INDEXED = re.compile(r"^(\d+)(?:\.(.*))?$")


class Params:
    """The form/query parameters of a call, flat as sent (`InstanceId.1`, `Filter.1.Value.2`),
    with typed accessors: values are coerced per parameter, never guessed (Nova's octal
    `_try_convert` turned `FromPort=022` into 18)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)

    def required(self, name: str) -> str:
        value = self.values.get(name)
        if value is None or value == "":
            raise missing(name)
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value, 10) if len(value) <= 20 else None  # no BIGINT has more digits
        except ValueError:
            number = None
        if number is None or not -INT64_MAX - 1 <= number <= INT64_MAX:
            raise invalid(f"Value ({value[:32]}) for parameter {name} is invalid. "
                          "It must be an integer.") from None
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        return default if value is None else value.lower() == "true"

    def members(self, prefix: str) -> list[Params]:
        """`Prefix.N.*` groups, ordered by N: each as the Params under it (`Prefix.N` itself
        is the sub-Params' "" entry)."""
        groups: dict[int, dict[str, str]] = {}
        start = prefix + "."
        for key, value in self.values.items():
            if not key.startswith(start):
                continue
            match = _INDEXED.match(key[len(start):])
            if match is None:
                continue
            groups.setdefault(int(match.group(1)), {})[match.group(2) or ""] = value
        return [Params(groups[n]) for n in sorted(groups)]

    def strings(self, prefix: str) -> list[str]:
        """`Prefix.1=a&Prefix.2=b` -> ["a", "b"]."""
        return [member.values[""] for member in self.members(prefix) if "" in member.values]

    def filters(self) -> dict[str, list[str]]:
        """`Filter.N.Name` / `Filter.N.Value.M` -> {name: [values]}."""
        result: dict[str, list[str]] = {}
        for member in self.members("Filter"):
            name = member.get("Name")
            if not name:
                raise missing("Filter.N.Name")
            result.setdefault(name, []).extend(member.strings("Value"))
        return result


@dataclass
class Ec2Request:
    action: str
    params: Params
    context: RequestContext
    host: ServiceHost
    db: Database
    request_id: str
    endpoint: str  # the URL the client called (DescribeRegions names it)

    @property
    def project_id(self) -> str:
        return str(self.context.project_id)

    def require_read(self) -> None:
        if not self.context.can_read(self.context.project_id):
            raise Ec2Error("UnauthorizedOperation",
                           "You are not authorized to perform this operation.")

    def require_act(self) -> None:
        if not self.context.can_act(self.context.project_id):
            raise Ec2Error("UnauthorizedOperation",
                           "You are not authorized to perform this operation.")


Action = Callable[[Ec2Request], Awaitable[dict[str, Any]]]


def filter_matches(wanted: list[str], value: Any) -> bool:
    """A filter matches when any of its values matches the attribute (or any of a list).
    Wildcards are matched in linear time (never as a backtracking regular expression)."""
    values = value if isinstance(value, list | tuple | set) else [value]
    try:
        return any(wildcard_match(pattern, "" if v is None else str(v))
                   for pattern in wanted for v in values)
    except PatternError as exc:
        raise invalid(f"Invalid filter value: {exc}") from None
