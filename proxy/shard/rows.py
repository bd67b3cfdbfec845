"""The rows of a multi-row INSERT in one pass, without tokens: where each row is, and the value
of one column in each (the shard key), for routing a bulk INSERT without lexing its rows.

``split_rows(sql, pos, column, low, high, modulus, backslash, ansi_quotes)`` reads from ``pos``
(just after the ``VALUES`` or ``VALUE`` word the lexer found) a run of rows ``( item, ... )``
separated by commas, up to the first thing after a row that is not a comma (the rest of the
statement, which the lexer reads). It returns ``(columns, tokens, flat)``: the number of items
of every row, the number of tokens in the rows, and five integers per row (an ``array("q")``,
no Python integer made per row): where its ``(`` is,
just after its ``)``, where item ``column`` starts and ends (its first token's start, its last
token's end), and that item's *placement code*: when ``modulus`` is not 0 and the item is an
integer literal (digits, after any ``+`` and ``-`` signs) ``v`` with ``low <= v <= high``,
``|v| mod modulus`` (``proxy.shard.placement.IntegerHash``'s global table index); else -1
(the caller reads the item's text itself). ``column`` -1: no item is looked at (-1s).
It reads ``SLICE`` characters at a time (``split_rows_pure`` and its compiled twin read one
slice: they stop at the first row starting ``limit`` characters or more past ``pos``, and say
where it starts as a fourth value, -1 after the last row), so that no one call holds the
interpreter lock long on a huge statement.

It returns None -- the caller then lexes the statement whole -- for anything it does not judge
exactly as ``proxy.sql.lexer`` cuts it into tokens, or that could mean more than literal values
to routing: every item must be built only of numbers, strings (``'...'``, ``"..."`` unless
ANSI_QUOTES, ``N'...'``, a character set introducer ``_name'...'``), hexadecimal and bit
literals (``X'..'``, ``0x..``, ``B'..'``, ``0b..``), the words NULL, TRUE, FALSE and DEFAULT,
the operators ``+ - * / %`` and parentheses, with whitespace and comments between (not
executable comments, which may be code). Names, functions, parameters, variables, subqueries,
an empty item or row, rows of different lengths, a ``;``, or a comma after a row that no row
follows are all refused, as is anything the lexer would refuse (a number running into a name,
an unterminated string or comment, a NUL in a comment, an invalid hexadecimal literal).

This is the pure-Python reference; ``proxy/shard/_crows.pyx`` is its compiled twin
(tests/unit/test_shard_rows.py checks they agree, and that routing with either gives what the
full lexing gives).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable

__all__ = ["ROWS_MISSING", "split_rows", "split_rows_pure"]

# How much one call of the scan reads before it returns (about 4 ms of the compiled one):
# another thread, the event loop's, gets the interpreter lock between calls.
SLICE = 256 * 1024

Split = tuple[int, int, "array[int]"]
# split_rows' own answer: a Split and where the next row starts when it stopped past ``limit``
# characters (-1: at the end of the rows).
Slice = tuple[int, int, "array[int]", int]

_SPACE = frozenset(" \t\n\r\x0b\x0c")
_DIGITS = frozenset("0123456789")
_HEX = frozenset("0123456789abcdefABCDEF")
_WORD_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
_WORDS = frozenset(["NULL", "TRUE", "FALSE", "DEFAULT"])
# The most digits of an integer read here (below 2**63 whatever they are).
_MAX_DIGITS = 18


def _ident(c: str) -> bool:
    """An identifier character for the lexer (``0-9A-Za-z_$`` and every non-ASCII one)."""
    return c in _WORD_CHARS or c == "$" or c >= "\x80"


def _space(sql: str, i: int, n: int) -> int:
    """Past whitespace and comments from ``i``; -1 for what is not judged here (an
    executable comment, an unterminated comment, a NUL in a comment)."""
    while i < n:
        c = sql[i]
        if c in _SPACE:
            i += 1
        elif c == "#" or (
            c == "-"
            and i + 1 < n
            and sql[i + 1] == "-"
            and (i + 2 >= n or sql[i + 2] <= " " or sql[i + 2] == "\x7f")
        ):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            if "\x00" in sql[i:end]:
                return -1
            i = end
        elif c == "/" and i + 1 < n and sql[i + 1] == "*":
            if i + 2 < n and (
                sql[i + 2] == "!" or (sql[i + 2] == "M" and sql[i + 3 : i + 4] == "!")
            ):
                return -1
            end = sql.find("*/", i + 2)
            if end < 0 or "\x00" in sql[i:end]:
                return -1
            i = end + 2
        else:
            return i
    return i


def _string(sql: str, i: int, n: int, quote: str, backslash: bool) -> int:
    """Just after the string whose opening ``quote`` is at ``i``; -1 if unterminated."""
    i += 1
    while i < n:
        c = sql[i]
        if c == "\\" and backslash:
            i += 2
        elif c == quote:
            if i + 1 < n and sql[i + 1] == quote:
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return -1


def split_rows_pure(
    sql: str,
    pos: int,
    column: int,
    low: int,
    high: int,
    modulus: int,
    backslash: bool,
    ansi_quotes: bool,
    limit: int,
) -> Slice | None:
    """See the module docstring."""
    n = len(sql)
    if pos < 0 or pos > n:
        return None
    i = _space(sql, pos, n)
    if i < 0 or i >= n or sql[i] != "(":
        return None
    flat = array("q")
    columns = -1
    tokens = 0
    while True:
        # a row: "(" at i
        row_open = i
        i += 1
        tokens += 1
        depth = 0
        items = 0  # items done
        item_tokens = 0  # tokens of the current item
        key_start = key_end = -1
        # the current item if it is ``column``: 0 signs only so far, 1 a plain integer after
        # them, 2 anything else
        key_state = 0
        negative = False
        magnitude = 0
        prev_end = -1  # end of the previous token
        prev_op = True  # the previous token is an operator or parenthesis
        prev_word = False
        while True:
            i = _space(sql, i, n)
            if i < 0 or i >= n:
                return None
            c = sql[i]
            start = i
            plain = False  # a number of digits only
            op = False
            word = False
            if c == ")" and depth == 0:
                if item_tokens == 0:
                    return None
                items += 1
                i += 1
                tokens += 1
                break
            if c == "," and depth == 0:
                if item_tokens == 0:
                    return None
                items += 1
                item_tokens = 0
                i += 1
                tokens += 1
                prev_end = i
                prev_op = True
                prev_word = False
                continue
            if c == "(":
                if prev_word:
                    return None  # a function call (DEFAULT(col))
                depth += 1
                i += 1
                op = True
            elif c == ")":
                depth -= 1
                i += 1
                op = True
            elif c in "+-*/%":
                i += 1
                op = True
            elif c == "'":
                i = _string(sql, i, n, "'", backslash)
            elif c == '"':
                if ansi_quotes:
                    return None
                i = _string(sql, i, n, '"', backslash)
            elif c in "xXbB" and i + 1 < n and sql[i + 1] == "'":
                end = sql.find("'", i + 2)
                if end < 0:
                    return None
                body = sql[i + 2 : end]
                allowed = _HEX if c in "xX" else frozenset("01")
                if any(ch not in allowed for ch in body) or (c in "xX" and len(body) % 2):
                    return None
                i = end + 1
            elif c in "nN" and i + 1 < n and sql[i + 1] == "'":
                i = _string(sql, i + 1, n, "'", backslash)
            elif c in _DIGITS or (c == "." and i + 1 < n and sql[i + 1] in _DIGITS):
                if c == "." and prev_end == i and not prev_op:
                    return None  # the lexer refuses a number right after a name or literal
                if c == "0" and i + 1 < n and sql[i + 1] in "xb":
                    allowed = _HEX if sql[i + 1] == "x" else frozenset("01")
                    j = i + 2
                    while j < n and sql[j] in allowed:
                        j += 1
                    if j == i + 2:
                        return None
                    i = j
                else:
                    j = i
                    while j < n and sql[j] in _DIGITS:
                        j += 1
                    plain = True
                    if j < n and sql[j] == ".":
                        plain = False
                        j += 1
                        while j < n and sql[j] in _DIGITS:
                            j += 1
                    if j < n and sql[j] in "eE":
                        k = j + 1
                        if k < n and sql[k] in "+-":
                            k += 1
                        if k < n and sql[k] in _DIGITS:
                            plain = False
                            j = k
                            while j < n and sql[j] in _DIGITS:
                                j += 1
                    i = j
                if i < n and (_ident(sql[i]) or sql[i] == "."):
                    return None
            elif c in _WORD_CHARS:
                j = i
                while j < n and _ident(sql[j]):
                    j += 1
                text = sql[i:j]
                if not text.isascii() or "$" in text:
                    return None
                if j < n and sql[j] == ".":
                    return None
                if text.upper() in _WORDS:
                    word = True
                elif not (text[0] == "_" and j < n and sql[j] == "'"):
                    return None  # a name (an introducer is followed by its string)
                i = j
            else:
                return None
            if i < 0:
                return None
            # a token of the current item
            tokens += 1
            item_tokens += 1
            if items == column:
                if item_tokens == 1:
                    key_start = start
                key_end = i
                if key_state == 0 and op and c in "+-":
                    if c == "-":
                        negative = not negative
                elif key_state == 0 and plain and i - start <= _MAX_DIGITS:
                    key_state = 1
                    magnitude = int(sql[start:i])
                else:
                    key_state = 2
            prev_end = i
            prev_op = op
            prev_word = word
        # the row's ")" is at i - 1
        if columns < 0:
            columns = items
        elif items != columns:
            return None
        code = -1
        if column >= 0 and modulus > 0 and key_state == 1:
            value = -magnitude if negative else magnitude
            if low <= value <= high:
                code = magnitude % modulus
        flat.extend((row_open, i, key_start, key_end, code))
        after = _space(sql, i, n)
        if after < 0:
            return None
        if after >= n or sql[after] != ",":
            return columns, tokens, flat, -1
        i = _space(sql, after + 1, n)
        tokens += 1
        if i < 0 or i >= n or sql[i] != "(":
            return None
        if i - pos >= limit:
            return columns, tokens, flat, i


ROWS_MISSING: str | None = None
split_slice: Callable[[str, int, int, int, int, int, bool, bool, int], Slice | None]
try:
    from proxy.shard._crows import split_rows as split_slice
except ImportError as _exc:  # not built: the pure reference
    ROWS_MISSING = str(_exc)
    split_slice = split_rows_pure


def split_rows(
    sql: str,
    pos: int,
    column: int,
    low: int,
    high: int,
    modulus: int,
    backslash: bool,
    ansi_quotes: bool,
    limit: int | None = None,
) -> Split | None:
    """See the module docstring: the scan (compiled when built) a slice of ``limit``
    characters (``SLICE``) at a time."""
    if limit is None:
        limit = SLICE
    columns = -1
    tokens = 0
    flat = array("q")
    while True:
        found = split_slice(sql, pos, column, low, high, modulus, backslash, ansi_quotes, limit)
        if found is None or (columns >= 0 and found[0] != columns):
            return None
        columns = found[0]
        tokens += found[1]
        flat += found[2]
        if found[3] < 0:
            return columns, tokens, flat
        pos = found[3]
