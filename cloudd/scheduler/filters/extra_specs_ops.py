"""Nova's `extra_specs_ops`: match a host value against a flavor extra spec like ">= 4".

Requirements are compiled once per request into a predicate on the host value, so matching
against thousands of hosts does not re-parse the string each time.

Operators: `=` (numeric >=, Nova's historic meaning), `==`, `!=`, `>=`, `<=` (numeric), `s==`,
`s!=`, `s<`, `s<=`, `s>`, `s>=` (string), `<in>` (substring / membership), `<or>` (one of);
anything else is plain string equality with the whole requirement.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

ValueMatcher = Callable[[Any], bool]

_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
}
_STRING_OPS: dict[str, Callable[[str, str], bool]] = {
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
}


def _as_text(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "True" if value else "False"
    return str(value)


def _never(value: Any) -> bool:
    return False


def _numeric(op: Callable[[float, float], bool], wanted_text: str) -> ValueMatcher:
    try:
        wanted = float(wanted_text)
    except ValueError:
        return _never

    def match(value: Any) -> bool:
        if value is None:
            return False
        try:
            return op(float(value), wanted)
        except (TypeError, ValueError):
            return False  # a non-numeric host value cannot satisfy a numeric requirement

    return match


def _string(op: Callable[[str, str], bool], wanted: str) -> ValueMatcher:
    def match(value: Any) -> bool:
        return value is not None and op(_as_text(value), wanted)

    return match


def _contains(wanted: str) -> ValueMatcher:
    def match(value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, list | tuple | set | frozenset):
            return wanted in {_as_text(item) for item in value}
        return wanted in _as_text(value)

    return match


def _one_of(words: list[str]) -> ValueMatcher:
    # "<or> a <or> b <or> c": the choices are every other word.
    choices = frozenset(words[0::2])

    def match(value: Any) -> bool:
        return value is not None and _as_text(value) in choices

    return match


def compile_requirement(requirement: str) -> ValueMatcher:
    """Turn an extra spec value into a predicate on the host's value."""
    words = requirement.split()
    if not words:
        return lambda value: value is not None and _as_text(value) == requirement
    op, operands = words[0], words[1:]
    if op == "<or>":
        return _one_of(operands) if operands else _never
    if op == "<in>":
        return _contains(operands[0]) if operands else _never
    if op in _NUMERIC_OPS:
        return _numeric(_NUMERIC_OPS[op], operands[0]) if operands else _never
    if op in _STRING_OPS:
        return _string(_STRING_OPS[op], operands[0]) if operands else _never
    return lambda value: value is not None and _as_text(value) == requirement


def match(value: Any, requirement: str) -> bool:
    """One-off match, same semantics as Nova's `extra_specs_ops.match`."""
    return compile_requirement(requirement)(value)
