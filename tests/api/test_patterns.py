"""The linear-time matchers keep the meaning clients rely on: EC2 wildcards as AWS documents
them, Nova's name filter as a regular-expression search."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloudd.api.patterns import PatternError, name_filter, wildcard_match


def reference_wildcard(pattern: str, value: str) -> bool:
    """The old translation to a backtracking regex: right, but exponential on hostile input
    (only ever run here, on a few characters)."""
    regex, escaped = "", False
    for ch in pattern:
        if escaped:
            regex, escaped = regex + re.escape(ch), False
        elif ch == "\\":
            escaped = True
        else:
            regex += {"*": ".*", "?": "."}.get(ch, re.escape(ch))
    if escaped:
        regex += re.escape("\\")
    return re.fullmatch(regex, value, re.DOTALL) is not None


@given(st.text("ab*?\\", max_size=8), st.text("ab*?\\\n", max_size=10))
def test_wildcards_mean_what_they_meant(pattern: str, value: str) -> None:
    assert wildcard_match(pattern, value) == reference_wildcard(pattern, value)


def test_hostile_wildcard_on_a_long_value() -> None:
    assert not wildcard_match("*a" * 40 + "*b", "a" * 250)
    assert wildcard_match("*a" * 40 + "*", "a" * 250)


@given(st.sampled_from(["^vm", "vm$", "v.1", "[0-9]+", "a|b", "^(a+)+$", "x?y*", "\\d"]),
       st.text("avm19xyb", max_size=12))
def test_name_filter_is_a_regular_expression_search(pattern: str, name: str) -> None:
    assert name_filter(pattern)(name) == (re.search(pattern, name) is not None)


@pytest.mark.parametrize("pattern", ["(", "[", "(?<=a)b", "(a)\\1", "x" * 513])
def test_patterns_re2_cannot_take_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        name_filter(pattern)
