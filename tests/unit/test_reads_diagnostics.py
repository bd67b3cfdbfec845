"""Whether a statement reads the diagnostics area (``@@warning_count``, ``error_count``,
``GET DIAGNOSTICS``) is read a slice of its text at a time, with the answer of one
case-blind search of the whole text: that search, on the event loop, took 0.5-2 s for a 16 MB
statement. ASCII slices are lower-cased and searched for literals; the others by the pattern;
matches across slices' ends, at word boundaries there, and the characters a case-blind search
takes for ASCII letters (long s, dotless i, Kelvin sign) included."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import proxy.session.session as session_module
from proxy.session.session import reads_diagnostics


def _whole(sql: str) -> bool:
    return session_module._READS_DIAGNOSTICS.search(sql) is not None


@contextmanager
def _sliced(width: int) -> Iterator[None]:
    saved = session_module.DIAGNOSTICS_SLICE
    session_module.DIAGNOSTICS_SLICE = width
    try:
        yield
    finally:
        session_module.DIAGNOSTICS_SLICE = saved


_PIECES = [
    "warning_count", "WARNING_COUNT", "Error_Count", "error_", "count", "warning", "diagnostics",
    "DIAGNOSTICS", "DiAgNoStIcS", "diagno\u017ftics", "d\u0131agnostics", "d\u0130agnostics",
    "diagnos", "tics",
    "_", "a", "x", "0", " ", ".", "@@", "é", "\u212a", "\u017f", "\u0131", "\u0130", "(", "'",
]  # fmt: skip


@settings(max_examples=3000, deadline=None)
@given(pieces=st.lists(st.sampled_from(_PIECES), max_size=12), width=st.integers(1, 24))
def test_as_one_search(pieces: list[str], width: int) -> None:
    sql = "".join(pieces)
    with _sliced(width):
        assert reads_diagnostics(sql) == _whole(sql)
    assert reads_diagnostics(sql) == _whole(sql)


def test_every_place_across_slice_ends() -> None:
    for word in ("warning_count", "ERROR_COUNT", "diagnostics", "DIAGNO\u017fTICS", "xdiagnostics"):
        for before in range(40):
            for after in ("", " ", "x", "é"):
                sql = "a" * before + word + after + "b" * 5
                for width in (3, 7, 12, 16):
                    with _sliced(width):
                        assert reads_diagnostics(sql) == _whole(sql), (sql, width)


def test_only_g_and_underscore_match_them() -> None:
    """reads_diagnostics skips a non-ASCII slice without "_", "g" or "G": every match holds
    one of them, and no other character matches them case blind."""
    for letter, matches in (("g", {"g", "G"}), ("_", {"_"})):
        pattern = re.compile(letter, re.IGNORECASE)
        found = {chr(c) for c in range(sys.maxunicode + 1) if pattern.fullmatch(chr(c))}
        assert found == matches


def test_read_in_slices() -> None:
    """No whole-text call: a slice's worth of text lower-cased at a time, one search or so a
    slice (before: one search of the whole text)."""
    calls: list[tuple[str, int]] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and frame.f_code.co_filename == session_module.__file__:
            owner = getattr(arg, "__self__", None)
            calls.append((arg.__name__, len(owner) if isinstance(owner, str) else -1))

    sql = "SELECT 1 " + "x" * 100_000 + " ég" * 50_000
    with _sliced(4096):
        sys.setprofile(profile)
        try:
            assert not reads_diagnostics(sql)
        finally:
            sys.setprofile(None)
    assert max(length for name, length in calls if name == "lower") <= 4096 + 17
    assert sum(name == "search" for name, _ in calls) >= len(sql) // 4096
