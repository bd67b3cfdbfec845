"""proxy.sql.like: MariaDB's SHOW DATABASES LIKE, against a reference and in bounded time.

The end-to-end test tests/e2e/test_lexer_vs_mariadb.py compares it with the real server."""

from __future__ import annotations

import time
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.sql import like as like_module
from proxy.sql.like import LikePattern, shows_database

# (pattern value, name, matches) -- each checked on MariaDB 10.11 with lower_case_table_names=1
EXAMPLES = [
    ("ABC%", "abc_x", True),
    ("abc\\_x", "abc_x", True),
    ("abc\\_x", "abcdx", False),
    ("abc_\\x", "abcdx", True),
    ("ab\\%c", "ab%c", True),
    ("ab\\%c", "abxc", False),
    ("cafe", "café", True),
    ("CAFÉ", "café", True),
    ("strasse", "straße", False),
    ("stra_e", "straße", True),
    ("strase", "straße", True),
    ("a\\\\b", "a\\b", True),
    ("a\\b", "a\\b", False),
    ("a\\b", "ab", True),
    ("ab\\", "ab\\", True),
    ("ab\\", "ab", False),
    ("INFORMATION%", "information_schema", True),
    ("%", "", True),
    ("", "", True),
    ("_", "", False),
    ("%a%b", "xaxxb", True),
    ("a%", "ba", False),
    ("\\%%", "%x", True),
    ("й", "Й", True),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), EXAMPLES)
def test_examples(pattern: str, name: str, expected: bool) -> None:
    assert LikePattern.compile(pattern).matches(name) is expected


def _reference(pattern: str, name: str) -> bool:
    """A straightforward recursive matcher over MariaDB's rules (memoised: polynomial)."""
    weight = like_module._weights
    text = weight(name)

    @cache
    def match(p: int, t: int) -> bool:
        if p == len(pattern):
            return t == len(text)
        char = pattern[p]
        if char == "%":
            return match(p + 1, t) or (t < len(text) and match(p, t + 1))
        if char == "_":
            return t < len(text) and match(p + 1, t + 1)
        if char == "\\" and p + 1 < len(pattern):
            p += 1
            char = pattern[p]
        return t < len(text) and weight(char) == text[t] and match(p + 1, t + 1)

    return match(0, 0)


_ALPHABET = ["a", "A", "b", "é", "E", "e", "ß", "s", "S", "_", "%", "\\", "x", "😀", "😁", "Й", "й"]


@settings(max_examples=1500, deadline=None)
@given(
    pattern=st.lists(st.sampled_from(_ALPHABET), max_size=10).map("".join),
    name=st.lists(st.sampled_from(_ALPHABET), max_size=10).map("".join),
)
def test_matches_like_the_reference(pattern: str, name: str) -> None:
    assert LikePattern.compile(pattern).matches(name) is _reference(pattern, name)


@pytest.mark.parametrize(
    "pattern",
    [
        "%" * 13 + "!",
        "%%%%%%%%%%%%%!",
        "%a" * 5_000 + "!",
        "%_" * 200_000 + "!",
        "\\%" * 200_000,
        "%" * 4_000_000 + "!",
        "x" * 4_000_000,
    ],
)
def test_hostile_patterns_take_bounded_time(pattern: str) -> None:
    started = time.perf_counter()
    compiled = LikePattern.compile(pattern)
    for name in ("a" * 64, "information_schema", ""):
        assert compiled.matches(name) is False
    assert time.perf_counter() - started < 2


def test_general_ci_folds_case_and_accents_only() -> None:
    weights = like_module._GENERAL_CI
    assert len(weights) == 1108  # every BMP character whose utf8mb3_general_ci weight differs
    assert all(weights[c] == c.upper() for c in "abcdefghijklmnopqrstuvwxyz")
    assert all(c not in weights for c in "ABCXYZ0123456789_%\\ $")
    assert like_module._weights("Straße😀") == "STRASE\ufffd"


def test_show_databases_like_an_empty_pattern_lists_all_but_information_schema() -> None:
    # checked on MariaDB 10.11 (lower_case_table_names=1): LIKE '' lists every database
    # directory, and information_schema does not match ''
    names = ["information_schema", "app", "mysql", ""]
    assert [n for n in names if shows_database("")(n)] == ["app", "mysql", ""]
    assert [n for n in names if shows_database("%")(n)] == names
    assert [n for n in names if shows_database("INFO%")(n)] == ["information_schema"]
