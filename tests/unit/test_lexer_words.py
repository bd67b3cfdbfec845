"""The lexer's reading of long words is bounded: a word longer than every keyword is not
upper-cased to be looked up (``str.upper`` of a 16 MB word holds the interpreter lock for
13-27 ms), and a non-ASCII word's characters are judged by ``str.isprintable`` a slice at a
time (one Python step a character took 1.6 s for 16 MB) -- with the same answers."""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import proxy.sql.analyze as analyze_module
import proxy.sql.lexer as lexer_module
from proxy.sql.analyze import analyze_with_digest
from proxy.sql.lexer import LexError, LexMode, lex, shapes
from proxy.sql.mariadb_words import SPACED_FUNCTIONS
from tests.conftest import python_lines


@contextmanager
def _sliced(width: int) -> Iterator[None]:
    saved = lexer_module._SLICE
    lexer_module._SLICE = width
    lexer_module._lexed.clear()
    try:
        yield
    finally:
        lexer_module._SLICE = saved
        lexer_module._lexed.clear()


def _reference_bad_word(word: str) -> bool:
    """_bad_word as it was (character by character)."""
    return any(ord(c) >= 0x80 and unicodedata.category(c)[0] in "ZC" for c in word)


def test_isprintable_is_not_z_or_c_beyond_ascii() -> None:
    """Every non-ASCII code point: str.isprintable refuses exactly categories Z* and C*."""
    for code in range(0x80, sys.maxunicode + 1):
        c = chr(code)
        assert c.isprintable() == (unicodedata.category(c)[0] not in "ZC"), hex(code)


_CHARACTERS = [
    "a", "Z", "_", "$", "0", "é", "日", "\x00", "\x1f", "\x7f", " ", "\x80", "\x85", "\xa0",
    "\xad", "\u2028", "\u200b", "\u3000", "\ue000", "\U000f0000", "\U0010ffff", "\u0378",
    "\ud800", "\U0001f600",
]  # fmt: skip


@settings(max_examples=2000, deadline=None)
@given(chars=st.lists(st.sampled_from(_CHARACTERS), max_size=20), width=st.integers(1, 6))
def test_bad_word_as_before(chars: list[str], width: int) -> None:
    word = "".join(chars)
    with _sliced(width):
        assert lexer_module._bad_word(word) == _reference_bad_word(word)
    assert lexer_module._bad_word(word) == _reference_bad_word(word)


def _c_calls(run: Any) -> list[tuple[str, int]]:
    """The string methods (name, length of the string) that ``run()`` calls from the lexer."""
    calls: list[tuple[str, int]] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_call" and frame.f_code.co_filename == lexer_module.__file__:
            owner = getattr(arg, "__self__", None)
            if isinstance(owner, str):
                calls.append((arg.__name__, len(owner)))

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return calls


def test_long_words_not_upper_cased() -> None:
    longest = max(map(len, lexer_module.RESERVED_WORDS | SPACED_FUNCTIONS))
    long_word = "v" * 3000
    for sql in (
        f"SELECT {long_word} FROM t",
        f"INSERT INTO t {long_word} (1)",
        f"SELECT {long_word}(1), count(2), COUNT (3), VALUE",
    ):
        for read in (lex, shapes):
            lexer_module._lexed.clear()
            calls = _c_calls(lambda sql=sql, read=read: read(sql))
            assert [c for c in calls if c[0] == "upper" and c[1] > longest] == [], sql
            assert ("upper", 5) in calls or "VALUE" not in sql


def _python_lines(run: Any) -> int:
    return python_lines(lexer_module, run)


def test_non_ascii_word_judged_by_slices() -> None:
    """A long non-ASCII name costs Python lines by the slice, not by the character."""
    with _sliced(4096):
        short = _python_lines(lambda: lexer_module._bad_word("é" * 40000))
        long = _python_lines(lambda: lexer_module._bad_word("é" * 400000))
        bad = _python_lines(lambda: lexer_module._bad_word("é" * 40000 + "\u2028"))
    assert long < 15 * short and long < 1000
    assert bad < 2 * short
    try:
        lex("SELECT " + "é" * 5000 + "\u2028")
    except LexError as err:
        assert err.reason == "unsupported character in a name"
    else:
        raise AssertionError("a line separator in a name was read")


# str methods that read their whole string (the others the lexer calls -- find, startswith,
# count -- are given a window of it; isascii reads a flag)
_WHOLE_TEXT_METHODS = frozenset(
    {"upper", "lower", "replace", "translate", "isprintable", "rstrip", "split"}
)


def test_long_names_read_in_slices() -> None:
    """Quoted names, variables and long words: no str method reading a whole string runs over
    more than a slice of one (a 16 MB name undoubled or quoted in one call held the
    interpreter lock for 60-100 ms)."""
    width = 64
    long = 50 * width
    for sql, mode in (
        ("SELECT `" + "a``" * long + "`", LexMode()),
        ('SELECT "' + 'a""' * long + '"', LexMode(ansi_quotes=True)),
        ("SET @`" + "a``" * long + "` = 1", LexMode()),
        ("SET @'" + "a''" * long + "' = 1", LexMode()),
        ("SET @" + "a" * long + " = 1", LexMode()),
        ("SELECT @@" + "A" * long, LexMode()),
        ("SELECT " + "é" * long, LexMode()),
        ("SELECT '" + "\\n''" * long + "'", LexMode()),
    ):
        for read in (lex, shapes):
            with _sliced(width):
                calls = _c_calls(lambda sql=sql, mode=mode, read=read: read(sql, mode))
            whole = [c for c in calls if c[0] in _WHOLE_TEXT_METHODS and c[1] > width]
            assert whole == [], (sql[:20], read)


@settings(max_examples=2000, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["`", "``", "'", "a", "é", "A", "\u03a3", "_", "0", "\u0130", " "]),
        max_size=30,
    ).map("".join),
    width=st.integers(1, 6),
)
def test_sliced_text_methods_as_whole(text: str, width: int) -> None:
    with _sliced(width):
        assert lexer_module.sliced_undoubled(text, "`") == text.replace("``", "`")
        assert lexer_module.sliced_undoubled(text, "'") == text.replace("''", "'")
        assert lexer_module._quote_ident(text) == "`" + text.replace("`", "``") + "`"
        assert lexer_module.sliced_upper(text) == text.upper()
        assert lexer_module._plain_name(text) == (
            re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) is not None
        )
        assert lexer_module.sliced_lower(text) == text.lower()
    saved = analyze_module._ITEMS_SLICE
    analyze_module._ITEMS_SLICE = width
    try:
        assert list(analyze_module._comma_items(text)) == text.split(",")
    finally:
        analyze_module._ITEMS_SLICE = saved


def test_analysis_reads_long_names_in_slices() -> None:
    """The classifier too (its keyword images, names, function names, character sets, SET's
    variables and values): no whole-text str method over more than a slice of a long name
    (sqlglot's names aside: it reads texts of at most 256 KiB)."""
    width = 64
    long = 50 * width
    files = {lexer_module.__file__, analyze_module.__file__}
    for sql in (
        "SELECT " + "v" * long,
        "SELECT " + "v" * long + "(1)",
        "SELECT `" + "a``" * long + "`(1) FROM `" + "b``" * long + "`",
        "SELECT * FROM `" + "a``" * long + "`.`t`",
        "SELECT " + "é" * long + " FROM t",
        "SET NAMES '" + "a" * long + "'",
        "SET NAMES " + "a" * long,
        "USE `" + "a``" * long + "`",
        "SHOW TABLES FROM `" + "a``" * long + "`",
        "SELECT * FROM t AS `" + "a``" * long + "`",
        "GRANT SELECT ON `" + "a``" * long + "`.* TO x",
        "SET " + "a" * long + " = 1",
        "SET sql_mode = " + "a" * long,
        "SET NAMES utf8mb4 COLLATE " + "a" * long,
        "SELECT information_schema.`" + "a``" * long + "`",
    ):
        calls: list[tuple[str, int]] = []

        def profile(
            frame: FrameType, event: str, arg: Any, calls: list[tuple[str, int]] = calls
        ) -> None:
            if (
                event == "c_call"
                and frame.f_code.co_filename in files
                and frame.f_code.co_name != "_function_name"  # (sqlglot's)
            ):
                owner = getattr(arg, "__self__", None)
                if isinstance(owner, str):
                    calls.append((arg.__name__, len(owner)))

        saved = analyze_module._ITEMS_SLICE
        analyze_module._ITEMS_SLICE = width
        with _sliced(width):
            sys.setprofile(profile)
            try:
                analyze_with_digest(sql, "db", LexMode(), None)
            finally:
                sys.setprofile(None)
                analyze_module._ITEMS_SLICE = saved
        whole = [c for c in calls if c[0] in _WHOLE_TEXT_METHODS and c[1] > width]
        assert whole == [], sql[:24]
