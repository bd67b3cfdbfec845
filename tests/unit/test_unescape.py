"""``unescape_string`` reads a string literal's body in slices, a few ``str.replace`` calls a
slice (no Python step per character: a 16 MB literal of escapes held the interpreter lock for
seconds), and gives exactly what the character-by-character reading it replaced gave: that
reading is kept here as the reference, compared on every body of up to 5 characters over an
alphabet of every character that matters (bodies the lexer never gives included), and on
random longer bodies, with slices of every small width."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import given, settings
from hypothesis import strategies as st

import proxy.sql.lexer as lexer_module
from proxy.sql.lexer import unescape_string
from tests.conftest import python_lines

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "0": "\0", "Z": "\x1a"}


def _reference(body: str, quote: str, backslash_escapes: bool) -> str:
    """unescape_string as it was (character by character)."""
    if "\\" not in body and quote not in body:
        return body
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if backslash_escapes and c == "\\" and i + 1 < n:
            i += 1
            c = body[i]
            if c in ("%", "_"):
                out.append("\\" + c)
            else:
                out.append(_ESCAPES.get(c, c))
        elif c == quote:
            out.append(c)
            i += 1  # the doubled quote
        else:
            out.append(c)
        i += 1
    return "".join(out)


@contextmanager
def _sliced(width: int) -> Iterator[None]:
    saved = lexer_module._SLICE
    lexer_module._SLICE = width
    try:
        yield
    finally:
        lexer_module._SLICE = saved


# The backslash, both quotes, the escape letters (one of them lower-case only), the two kept
# with their backslash, a plain letter, a non-ASCII one, and the characters unescape_string
# stands escaped backslashes as while it works (it must find another).
_ALPHABET = ["\\", "'", '"', "n", "Z", "z", "%", "_", "0", "a", "é", "\ue000", "\ue001"]


def test_every_short_body() -> None:
    small = ["\\", "'", '"', "n", "%", "\ue000", "\ue001", "a"]
    for width in (1, 2, 3, 1 << 30):
        with _sliced(width):
            for length in range(6):
                for chars in itertools.product(small, repeat=length):
                    body = "".join(chars)
                    for quote in ("'", '"'):
                        for escapes in (True, False):
                            expected = _reference(body, quote, escapes)
                            assert unescape_string(body, quote, escapes) == expected, (
                                body,
                                quote,
                                escapes,
                                width,
                            )


@settings(max_examples=3000, deadline=None)
@given(
    pieces=st.lists(
        st.sampled_from(
            [*_ALPHABET, "\\\\", "''", '""', "\\'", "\\\\'", "\\n", "\\%", "\\_", "\\\ue000"]
        ),
        max_size=40,
    ),
    quote=st.sampled_from(["'", '"']),
    escapes=st.booleans(),
    width=st.integers(1, 9),
)
def test_random_bodies(pieces: list[str], quote: str, escapes: bool, width: int) -> None:
    body = "".join(pieces)
    with _sliced(width):
        assert unescape_string(body, quote, escapes) == _reference(body, quote, escapes)
    assert unescape_string(body, quote, escapes) == _reference(body, quote, escapes)


def test_every_private_character_taken() -> None:
    """A slice holding the character escaped backslashes stand as, and the next ones."""
    body = "".join(map(chr, range(0xE000, 0xE000 + 300))) + "\\\\\\n''"
    for width in (7, 64, 1 << 30):
        with _sliced(width):
            assert unescape_string(body, "'", True) == _reference(body, "'", True)


def _python_lines(body: str, quote: str) -> int:
    """How many Python lines of the lexer module unescape_string(body) runs."""
    return python_lines(lexer_module, lambda: unescape_string(body, quote, True))


def test_python_steps_per_slice_not_per_character() -> None:
    """The Python work is a few lines a slice, however many escapes the slice holds: twenty
    times the escapes in the same number of slices run about the same lines (reading them
    one by one ran five lines an escape)."""
    with _sliced(4096):
        few = _python_lines(("\\n" + "a" * 38) * 2400, "'")
        many = _python_lines("\\n\\\\''\\%\\q" * 9500, "'")
    assert many < 1.2 * few
    assert many < 1000
