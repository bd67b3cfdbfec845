"""The lexer reads a long token in slices (``_SLICE``: no single regular-expression call, which
holds the interpreter lock, scans a whole 16 MB literal) and cuts every text exactly as one
whole-text match per token does: with tiny slices, which cut every token anywhere, ``lex`` and
``shapes`` give the same statements, or the same error, as with slices longer than the text."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxy.sql.lexer as lexer_module
from proxy.sql.lexer import LexError, LexMode, ServerFlavor, lex, shapes, spaced_call
from proxy.sql.mariadb_words import SPACED_FUNCTIONS

_MODES = lexer_module._MODES
_FLAVORS = [None, ServerFlavor(101119, True), ServerFlavor(80403, False)]

# Every kind of token, and what cuts or confuses one: quotes of each kind with backslash
# escapes and doubled quotes (terminated or not), X''/B''/N'' literals, variables, comments of
# each kind, numbers, words, operators, Unicode, whitespace, ';'.
_PIECES = [
    "'",
    '"',
    "`",
    "\\",
    "''",
    '""',
    "``",
    "\\'",
    '\\"',
    "\\\\",
    "'ab\\'c''d'",
    '"a""b\\"c"',
    "`a``b`",
    "x'4142'",
    "X'41",
    "b'101'",
    "B'1",
    "n'abc'",
    "N'a''b\\'c'",
    "x",
    "b",
    "n",
    "N",
    "@a",
    "@a.b$",
    "@'u v'",
    '@"u""v"',
    "@`u``v`",
    "@",
    "@@",
    "@@session.sql_mode",
    "@@a.",
    "@é",
    "#c\n",
    "# c",
    "--",
    "-- c\n",
    "--x",
    "--\t",
    "--;",
    "--;\n;",
    "--; \n",
    "-- ",
    "/*",
    "*/",
    "/* c */",
    "/*!",
    "/*!50001 ",
    "/*!100101",
    "/*M!",
    "/*M!100101 ",
    "/*!99999 a /* b */ c */",
    "/**/",
    "0",
    "1",
    "12",
    "0x",
    "0x1F",
    "0X1",
    "0b",
    "0b101",
    "0b2",
    "1.5",
    ".5",
    ".",
    "1e5",
    "1e",
    "1.e+7",
    ".5e-3",
    "e",
    "e5",
    "+",
    "-",
    "7a",
    "SELECT",
    "count",
    "(",
    ")",
    ",",
    "IN",
    "VALUES",
    "NULL",
    "?",
    "?a",
    "<=>",
    "<",
    "=",
    ">",
    "!",
    "|",
    "||",
    "*",
    ":=",
    "$x",
    "é",
    "日本",
    "\u2028",
    "\x00",
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\x0b\x0c",
    ";",
    "; ",
    ";;",
]


@contextmanager
def _sliced(width: int) -> Iterator[None]:
    saved = lexer_module._SLICE
    lexer_module._SLICE = width
    lexer_module._lexed.clear()  # lex() remembers short texts' answers
    try:
        yield
    finally:
        lexer_module._SLICE = saved
        lexer_module._lexed.clear()


def _outcome(
    sql: str, mode: LexMode, flavor: ServerFlavor | None, width: int
) -> tuple[object, object]:
    """lex()'s and shapes()'s answers (or the error each raises) with slices of ``width``."""
    answers: list[object] = []
    with _sliced(width):
        for read in (lex, shapes):
            try:
                answers.append(read(sql, mode, flavor))
            except LexError as err:
                answers.append(("error", err.pos, err.reason, str(err.error)))
    return answers[0], answers[1]


@settings(max_examples=1500, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), max_size=14),
    mode=st.sampled_from(_MODES),
    flavor=st.sampled_from(_FLAVORS),
    width=st.integers(1, 9),
)
def test_tiny_slices_cut_like_whole_matches(
    pieces: list[str], mode: LexMode, flavor: ServerFlavor | None, width: int
) -> None:
    sql = "".join(pieces)
    assert _outcome(sql, mode, flavor, width) == _outcome(sql, mode, flavor, 1 << 30)


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(_PIECES), max_size=6),
    mode=st.sampled_from(_MODES),
    width=st.integers(1, 5),
)
def test_long_tokens_in_tiny_slices(pieces: list[str], mode: LexMode, width: int) -> None:
    """Tokens many slices long: each piece repeated, so that runs cross many slice ends."""
    sql = "".join(p * 7 for p in pieces)
    flavor = ServerFlavor(101119, True)
    assert _outcome(sql, mode, flavor, width) == _outcome(sql, mode, flavor, 1 << 30)


@pytest.mark.parametrize("mode", _MODES)
@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1, '" + "a" * 300 + "')",
        'SELECT "' + "a\\'" * 100 + '"',
        "SELECT 0x" + "ab" * 150,
        "SELECT x'" + "ab" * 150 + "'",
        "SELECT .5e" + "7" * 300,
        "SELECT 1 --;" + " ;" * 200,
        "SELECT 1 --;" + " ;" * 200 + "x",
        "SELECT 1 --;\n" + " ;" * 200 + "x",
        "SELECT 1 --;\n" + " ;" * 200,
        "SELECT `" + "``" * 200 + "`",
        "SELECT /*" + " " * 300,
        "SELECT 1" + " " * 300,
        "SELECT count" + " " * 300 + "(a)",
        "SELECT a IN (1" + ", 2" * 200 + " )",
        "SELECT @" + "a" * 300 + "é",
        "SELECT @" + "a" * 300 + "`b`",
        "SELECT @'" + "a''" * 100 + "'",
        "SELECT @@" + "a" * 300 + ".",
        "SELECT @@a." + "b" * 300 + "`",
        "SELECT @@a." + "b" * 300,
        "SELECT 0b" + "1" * 300 + "2",
        "SELECT 0x" + "f" * 300 + "g",
        "SELECT 1e+" + "5" * 300,
        "SELECT 1." + "5" * 300 + "e",
        "SELECT " + "a" * 300 + "?b",
        "SELECT " + "é" * 300 + " ?",
        "SELECT 1 # " + "c" * 300,
        "SELECT 1 -- " + "c" * 300 + "\n2",
        "SELECT /*!" + "1" * 300 + " */",
        "SELECT /*M!" + "1" * 300 + " */",
        "SELECT N'" + "a\\'" * 100,
        "SELECT X'" + "a" * 300,
    ],
)
def test_long_tokens(sql: str, mode: LexMode) -> None:
    for width in (1, 2, 3, 31, 64):
        assert _outcome(sql, mode, None, width) == _outcome(sql, mode, None, 1 << 30)


# spaced_call() as one search of the whole text (what it was before it read in slices)
_SPACED_CALL_WHOLE = re.compile(
    r"(?<![0-9A-Za-z_$\u0080-\U0010ffff])(?i:"
    + "|".join(sorted(SPACED_FUNCTIONS, key=len, reverse=True))
    + r")[ \t\n\r\x0b\x0c]+\("
)


@settings(max_examples=1500, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(
            ["count", "COUNT", "sum", "xcount", "counts", "trim", "cast", "a", "_", "é", "$",
             " ", "  ", "\t", "\n", "\u2028", "(", ")", "/**/", ".", "'", "0"]
        ),
        max_size=12,
    ),
    width=st.integers(1, 9),
)  # fmt: skip
def test_spaced_call_in_tiny_slices(pieces: list[str], width: int) -> None:
    sql = "".join(pieces)
    with _sliced(width):
        assert spaced_call(sql) == (_SPACED_CALL_WHOLE.search(sql) is not None)


def test_spaced_call_long() -> None:
    for sql in ("x" * 100 + " count" + " " * 100 + "(", "a count" + " " * 100 + "x ("):
        for width in (1, 2, 3, 7, 64):
            with _sliced(width):
                assert spaced_call(sql) == (_SPACED_CALL_WHOLE.search(sql) is not None)
