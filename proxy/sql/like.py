"""SQL ``LIKE`` in linear time: no regular expression, no backtracking beyond the last ``%``.

``like_match(pattern, text)`` follows MariaDB: ``%`` matches any run of characters, ``_`` exactly
one, and the escape character (backslash by default) makes the next character literal; a
trailing escape character matches itself. Comparison is case-insensitive (``casefold``), as
MariaDB compares database names under ``lower_case_table_names=1``.

The matcher is the classic greedy wildcard algorithm: on a mismatch it resumes just after the
most recent ``%``, one text position further on. That is O(len(pattern) x len(text)) in the
worst case, never exponential, whatever the pattern (``'%%%%%%%%!'`` included).
"""

from __future__ import annotations

_ANY_ONE = -1  # "_"
_ANY_RUN = -2  # "%"


def _compile(pattern: str, escape: str | None) -> list[str | int]:
    items: list[str | int] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if escape is not None and c == escape and i + 1 < n:
            items.append(pattern[i + 1].casefold())
            i += 2
            continue
        if c == "%":
            if not items or items[-1] != _ANY_RUN:  # runs of % are one %
                items.append(_ANY_RUN)
        elif c == "_":
            items.append(_ANY_ONE)
        else:
            items.append(c.casefold())
        i += 1
    return items


def like_match(pattern: str, text: str, escape: str | None = "\\") -> bool:
    """Whether ``text`` matches the LIKE ``pattern``."""
    items = _compile(pattern, escape)
    chars = text.casefold()
    p = t = 0
    star_p = star_t = -1
    n_items = len(items)
    n_chars = len(chars)
    while t < n_chars:
        if p < n_items:
            item = items[p]
            if item == _ANY_RUN:
                star_p, star_t = p, t
                p += 1
                continue
            if item == _ANY_ONE or item == chars[t]:
                p += 1
                t += 1
                continue
        if star_p < 0:
            return False
        # Let the last % swallow one more character and try again from just after it.
        star_t += 1
        t = star_t
        p = star_p + 1
    while p < n_items and items[p] == _ANY_RUN:
        p += 1
    return p == n_items
