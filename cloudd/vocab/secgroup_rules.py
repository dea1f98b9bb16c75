"""One security-group rule model for the Compute, Network and EC2 APIs and for the hosts' firewalls.

Every rule value from a tenant is parsed here before it is stored, and every rule is parsed here
again before it reaches a host's firewall (``FirewallRule``, part of the network RPC contract, so
an agent re-validates what it receives). The checks are Nova's (``_new_ingress_rule`` in
nova/network/security_group_api.py): protocol tcp, udp or icmp (any protocol when none is given);
tcp/udp ports 1-65535 with from <= to; ICMP type and code -1 (any) or 0-255, a code only with a
type. A CIDR is parsed by ``ipaddress`` (host bits dropped, as Nova's ``strict=False``), IPv4
only because the firewall is IPv4 only, and kept in its canonical text form, so nothing but
digits, dots and one slash can ever reach ``iptables-restore``.
"""

from __future__ import annotations

import ipaddress
import re
import typing
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, StrictInt, model_validator

from cloudd import errors
from cloudd.vocab.network_errors import NetworkError

Protocol = Literal["tcp", "udp", "icmp"]
# What the APIs accept for a protocol; None means every protocol. Neutron and EC2 also name them
# by number; "-1" is EC2's and "any" Neutron's word for all of them.
PROTOCOL_ALIASES: dict[str, Protocol | None] = {
    "tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp",
    "any": None, "all": None, "-1": None}
ANY_CIDR = "0.0.0.0/0"
_DECIMAL = re.compile(r"-?[0-9]{1,6}")  # short: a huge digit string is refused, not parsed


def _shown(value: Any) -> str:
    """A refused value as an error message shows it: quoted, control characters visible, short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class RuleError(errors.BadRequest, NetworkError, ValueError):
    """A rule value refused; ``field`` is what was wrong (protocol, port, range, icmp, cidr),
    so that each API can name it in its own error format. A ValueError, so that pydantic
    reports it as a validation error of the model it occurs in."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_protocol(value: Any) -> Protocol | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RuleError("protocol", f"Invalid IP protocol {_shown(value)}: tcp, udp or icmp.")
    text = str(value).strip().lower()
    if text not in PROTOCOL_ALIASES:
        raise RuleError("protocol", f"Invalid IP protocol {_shown(value)}: only tcp, udp and icmp "
                                    "(or 6, 17, 1) are filtered.")
    return PROTOCOL_ALIASES[text]


def parse_port(value: Any, name: str = "port") -> int | None:
    """An integer, or its decimal text (as the form-encoded and legacy APIs send it)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return int(value.strip())
    raise RuleError("port", f"Invalid {name} {_shown(value)}: it must be an integer.")


def parse_cidr(value: Any) -> str:
    """The canonical ``a.b.c.d/n`` of an IPv4 network; anything else is refused."""
    if not isinstance(value, str):
        raise RuleError("cidr", f"Invalid cidr {_shown(value)}: it must be a string a.b.c.d/n.")
    try:
        network = ipaddress.IPv4Network(value, strict=False)
    except ValueError:
        raise RuleError("cidr", f"Invalid cidr {_shown(value)}: it is not an IPv4 network "
                                "(a.b.c.d/n).") from None
    return str(network)


def check_ports(protocol: Protocol | None, low: int | None,
                high: int | None) -> tuple[int | None, int | None]:
    """The port range (tcp, udp) or type and code (icmp) of a rule, checked and normalised:
    a missing ICMP type or code is -1 (any)."""
    pair = f"{_shown(low)}:{_shown(high)}"
    if protocol is None:
        if low is not None or high is not None:
            raise RuleError("range", f"Invalid port range {pair}. Ports need a protocol "
                                     "(tcp, udp or icmp).")
        return None, None
    if protocol == "icmp":
        low, high = (-1 if low is None else low), (-1 if high is None else high)
        pair = f"{_shown(low)}:{_shown(high)}"
        if not (-1 <= low <= 255 and -1 <= high <= 255):
            raise RuleError("icmp", f"Invalid ICMP type:code {pair}. Type and code must be -1 "
                                    "(any) or 0-255.")
        if low == -1 and high != -1:
            raise RuleError("icmp", f"Invalid ICMP type:code {pair}. A code needs a type.")
        return low, high
    if low is None and high is None:
        return None, None  # every port
    if low is None or high is None:  # one port (Neutron's way; the firewall always read it so)
        port = low if low is not None else high
        assert port is not None
        low = high = port
        pair = f"{_shown(port)}:{_shown(port)}"
    if not (1 <= low <= 65535 and 1 <= high <= 65535):
        raise RuleError("port", f"Invalid port range {pair}. Valid {protocol.upper()} ports "
                                "should be between 1-65535.")
    if low > high:
        raise RuleError("range", f"Invalid port range {pair}. The start of the range cannot be "
                                 "greater than its end.")
    return low, high


def _ipv4_text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("an IPv4 address must be a string")
    return str(ipaddress.IPv4Address(value))


Cidr = Annotated[str, BeforeValidator(parse_cidr)]
IPv4Text = Annotated[str, BeforeValidator(_ipv4_text)]  # an address, in its canonical text


class FirewallRule(BaseModel):
    """Ingress a host's firewall lets in to one guest: what ``iptables-restore`` is built from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol | None = None  # None: any protocol
    from_port: StrictInt | None = None  # tcp/udp: first port; icmp: type (-1 any)
    to_port: StrictInt | None = None  # tcp/udp: last port; icmp: code (-1 any)
    cidr: Cidr = ANY_CIDR

    @model_validator(mode="after")
    def _ports_fit_protocol(self) -> FirewallRule:
        low, high = check_ports(self.protocol, self.from_port, self.to_port)
        if (low, high) != (self.from_port, self.to_port):
            object.__setattr__(self, "from_port", low)
            object.__setattr__(self, "to_port", high)
        return self


class SecurityGroupRule(BaseModel):
    """A rule as a tenant asks for it: ports open to a CIDR or to another group's members."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    protocol: Protocol | None = None
    from_port: StrictInt | None = None
    to_port: StrictInt | None = None
    cidr: Cidr | None = None  # None with a source group
    group_id: StrictInt | None = None  # security_groups.id of the source group

    @model_validator(mode="after")
    def _checked(self) -> SecurityGroupRule:
        low, high = check_ports(self.protocol, self.from_port, self.to_port)
        cidr = self.cidr
        if self.group_id is not None and cidr is not None:
            raise RuleError("cidr", "A rule opens to a cidr or to a source group, not both.")
        if self.group_id is None and cidr is None:
            cidr = ANY_CIDR  # Nova's default: a rule without a source opens to everyone
        for name, value in (("from_port", low), ("to_port", high), ("cidr", cidr)):
            object.__setattr__(self, name, value)
        return self

    def for_source(self, cidr: str) -> FirewallRule:
        return FirewallRule(protocol=self.protocol, from_port=self.from_port,
                            to_port=self.to_port, cidr=cidr)


def parse_rule(protocol: Any, from_port: Any, to_port: Any, cidr: Any = None,
               group_id: int | None = None) -> SecurityGroupRule:
    """A rule from an API's raw values, or RuleError naming the first bad one."""
    proto = parse_protocol(protocol)
    low, high = parse_port(from_port, "from_port"), parse_port(to_port, "to_port")
    low, high = check_ports(proto, low, high)
    text = None if cidr is None or cidr == "" else parse_cidr(cidr)
    if text is not None and group_id is not None:
        raise RuleError("cidr", "A rule opens to a cidr or to a source group, not both.")
    return SecurityGroupRule(protocol=proto, from_port=low, to_port=high, cidr=text,
                             group_id=group_id)


class StoredValues(typing.Protocol):
    """A stored rule's values as read back (``cloudd.network.store.secgroups.StoredRule``)."""
    @property
    def protocol(self) -> Any: ...
    @property
    def from_port(self) -> Any: ...
    @property
    def to_port(self) -> Any: ...
    @property
    def cidr(self) -> Any: ...
    @property
    def group_id(self) -> int | None: ...


def stored_rule(row: StoredValues) -> SecurityGroupRule:
    """A ``security_group_rules`` row re-parsed: rows written before these checks existed may
    hold anything, and must never reach a firewall unchecked (RuleError if bad)."""
    return parse_rule(row.protocol, row.from_port, row.to_port,
                      None if row.group_id is not None else row.cidr, row.group_id)
