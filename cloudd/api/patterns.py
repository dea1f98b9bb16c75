"""Patterns from clients, matched in time linear in the text: no user pattern ever reaches
Python's backtracking `re` on the event loop (`^(a+)+$` over 30 characters takes seconds there).

- Nova's name filters are regular expressions: they run on RE2 (a linear-time engine), capped
  in length; what RE2 cannot take (backreferences, lookaround) or cannot parse is refused.
- EC2 filter wildcards (`*`, `?`, `\\` escapes) are matched by a two-row dynamic programme, never
  translated to a regular expression.
"""

from __future__ import annotations

from collections.abc import Callable

import re2

# Longer than any name (255) with room for anchors and classes; compiling stays cheap.
MAX_PATTERN_LENGTH = 512
# RE2's memory budget for one compiled pattern: enough for any sensible filter.
_MAX_MEM = 1 << 20


class PatternError(ValueError):
    """A client pattern that is refused: too long, or not a regular expression RE2 accepts."""


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # a client's typo is a 400, not a line on the controller's stderr
    options.max_mem = _MAX_MEM
    return options


def name_filter(pattern: str) -> Callable[[str], bool]:
    """`re.search` semantics of Nova's `?name=` filter, on RE2."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        compiled = re2.compile(pattern, options=_options())
    except re2.error as exc:
        raise PatternError(str(exc.args[0] if exc.args else exc)) from None
    return lambda text: compiled.search(text) is not None


def _wildcard_tokens(pattern: str) -> list[str | None]:
    """Each position of the pattern: a literal character, "*" (None) or "?" (the empty str)."""
    tokens: list[str | None] = []
    escaped = False
    for ch in pattern:
        if escaped:
            tokens.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "*":
            if not tokens or tokens[-1] is not None:  # "**" means what "*" means
                tokens.append(None)
        elif ch == "?":
            tokens.append("")
        else:
            tokens.append(ch)
    if escaped:  # a trailing backslash stands for itself
        tokens.append("\\")
    return tokens


def wildcard_match(pattern: str, value: str) -> bool:
    """EC2 filter values: `*` any run, `?` one character, `\\` escapes; whole-value match.
    O(len(pattern) * len(value)) time, whatever the pattern; the pattern's length is capped."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"the filter value is longer than {MAX_PATTERN_LENGTH} characters")
    tokens = _wildcard_tokens(pattern)
    # matched[j]: the first i characters of value match the first j tokens (row i).
    matched = [True] + [False] * len(tokens)
    for j, token in enumerate(tokens, 1):
        matched[j] = matched[j - 1] and token is None
    for ch in value:
        row = [False] * (len(tokens) + 1)
        for j, token in enumerate(tokens, 1):
            if token is None:
                row[j] = row[j - 1] or matched[j]
            else:
                row[j] = matched[j - 1] and (token == "" or token == ch)
        matched = row
    return matched[-1]
