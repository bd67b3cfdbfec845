"""A multi-row INSERT routed from its rows read in one pass (``proxy.shard.rows``, compiled as
``proxy/shard/_crows.pyx``) is routed exactly as the lexing of its whole text routes it.

Three agreements, on generated statements (strings with escapes and quotes, comments,
negative numbers, expressions, NULL, introducers, hexadecimal and bit literals, names,
parameters, executable comments, malformed text, rows in any order of partitions):

* the compiled ``split_rows`` and the pure reference return the same, always;
* where the reference reads rows, they are the rows, items and key values the lexer's tokens
  give (and each placement code is ``IntegerHash``'s for the key's literal value);
* ``bulk_insert`` (``decide``'s way for such statements) gives the Route ``decide`` gives
  with the whole statement lexed, or declines (then ``decide`` lexes it whole: nothing is
  guessed); it is taken for the plain bulk INSERTs it is for.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable
from dataclasses import replace
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.model import KeyType, LogicalTable, ShardKey, TableRule, partition_layout
from proxy.shard import rows as rows_module
from proxy.shard import statements
from proxy.shard.placement import integer_hash
from proxy.shard.route import Layout, Route, bulk_rows, route
from proxy.shard.rows import split_rows, split_rows_pure
from proxy.shard.values import NotALiteral, literal_value
from proxy.sql.lexer import LexError, LexMode, ServerFlavor, Token, TokenKind, lex
from tests.unit.test_shard_route import LAYOUT


def _compiled(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


crows = _compiled("proxy.shard._crows")
needs_crows = pytest.mark.skipif(crows is None, reason="proxy.shard._crows is not built")

MODES = [LexMode(a, b) for a in (False, True) for b in (False, True)]
MARIADB = ServerFlavor(101100, True)

# Items: literal values the splitter reads, and what it must leave to the lexer.
ITEMS = [
    "1", "7", "-4", "- 5", "--5", "+3", "-+-2", "0", "007", "123456789012345678",
    "1234567890123456789", "9223372036854775807", "-9223372036854775808", "2147483648",
    "1.5", "1.", ".5", "1e3", "1.e2", "-2.0", "1e", "1abc", "1.2.3", "0x1F", "0X1F", "0x", "0b101",
    "0b12", "X'0A'", "x'0a1'", "B'101'", "b'102'", "'a'", "'12'", "' 12'", "'it''s'", "'a\\'b'",
    "'a\\\\'", "'\\\\'", "'x\\nz'", "'a\"b'", '"dq"', '"d""q"', "N'n'", "n'x\\''", "_utf8'x'",
    "_utf8mb4'9'", "_utf8 'x'", "_binary 0x41", "NULL", "null", "TRUE", "false", "DEFAULT",
    "DEFAULT(id)", "(1)", "(1 + 2) * 3", "1 + 2", "7 % 3", "8 / 2", "2 */ 1", "id", "abs(1)",
    "?", "@x", "@@x", "`n`", "s.NEXTVAL", "'a' 'b'", "NULL.5", "'a'.5", "'a' .5", "5 /* c */",
    "/* c */ 6", "7 -- c\n", "8 # c\n", "/*! 9 */", "/*M!100000 9*/", "/*+ hint */ 10",
    "'unterminated", "'\x00'", "/* \x00 */ 1", "'é'", "'日本'", "CURRENT_USER()", "(SELECT 1)",
    "", "1;", "$x", "é", "t.id", "1,2", "\\N",
]  # fmt: skip
SEPARATORS = [",", ", ", " , ", ",/* r */", ",\n-- c\n", ", # c\n", ",,", " ", ", ;"]
TAILS = [
    "", ";", " ;", " /* end */", " ON DUPLICATE KEY UPDATE v = 1",
    " ON DUPLICATE KEY UPDATE name = VALUES(name)", " ON DUPLICATE KEY UPDATE id = 1", "; SELECT 1",
    ",", ", (", " AS new", " /*! */", "-- end",
]  # fmt: skip
HEADS = [
    "INSERT INTO t VALUES", "INSERT INTO t (id, name) VALUES", "INSERT INTO t(name,id)VALUE",
    "REPLACE INTO t VALUES", "INSERT IGNORE INTO t VALUES", "INSERT /* values */ INTO t VALUES",
    "insert into db.t values", "INSERT INTO u (id, v) VALUES", "INSERT INTO u (v, id) VALUES",
    "INSERT INTO w VALUES", "INSERT INTO w (v, name) VALUES", "INSERT INTO o (id, buyer, v) VALUES",
    "INSERT INTO o (buyer, v) VALUES", "INSERT INTO o VALUES", "INSERT INTO b VALUES",
    "INSERT INTO s (id, x) VALUES", "INSERT INTO t VALUES$", "INSERT INTO `values` VALUES",
    "INSERT INTO t SELECT * FROM (VALUES", "/*+TDDL:node(0)*/ INSERT INTO t VALUES",
    "INSERT INTO t (id, name) VALUES (DATABASE(), 'x'),", "SELECT 1; INSERT INTO t VALUES",
    "INSERT INTO t PARTITION (p) VALUES", "INSERT INTO t () VALUES",
]  # fmt: skip
GOOD_HEADS = [h for h in HEADS[:13] if "(buyer" not in h and "o VALUES" not in h]
PLAIN = ["1", "-4", "7", "'a'", "NULL", "'it''s'", "0", "123", "-9", "'12'", "_utf8'x'", "2.0"]


@st.composite
def statements_(draw: st.DrawFn, plain: bool = False) -> str:
    """An INSERT-like statement: a head, rows of items, separators and a tail."""
    head = draw(st.sampled_from(GOOD_HEADS if plain else GOOD_HEADS * 3 + HEADS))
    width = 3 if "buyer" in head else 2
    if not plain and not draw(st.integers(0, 4)):
        width = draw(st.integers(1, 3))
    items = st.sampled_from(PLAIN if plain else PLAIN * 40 + ITEMS)
    rows = []
    for _ in range(draw(st.integers(2 if plain else 1, 8))):
        count = width if plain or draw(st.integers(0, 9)) else draw(st.integers(0, 4))
        parts = [draw(items) for _ in range(count)]
        space = draw(st.sampled_from(["", " ", "\n", "\t"]))
        rows.append("(" + space + ("," + space).join(parts) + ")")
    out = rows[0]
    for row in rows[1:]:
        out += (", " if plain else draw(st.sampled_from(SEPARATORS[:6] * 3 + SEPARATORS))) + row
    tail = "" if plain else draw(st.sampled_from(TAILS[:6] * 3 + TAILS))
    return head + draw(st.sampled_from([" ", "", "\n", " /* c */ "])) + out + tail


def _split(
    call: Callable[..., Any],
    sql: str,
    pos: int,
    column: int,
    modulus: int,
    mode: LexMode,
    limit: int = 1 << 40,
) -> Any:
    low, high = -(2**63) + 1, 2**63 - 1
    if modulus == 3:
        low, high = -(2**31), 2**31 - 1
    backslash = not mode.no_backslash_escapes
    return call(sql, pos, column, low, high, modulus, backslash, mode.ansi_quotes, limit)


def _whole(sql: str, pos: int, column: int, modulus: int, mode: LexMode) -> Any:
    """split_rows_pure in one slice, without its fourth value."""
    found = _split(split_rows_pure, sql, pos, column, modulus, mode)
    return None if found is None else found[:3]


def _values_end(sql: str) -> int:
    upper = sql.upper()
    found = upper.rfind("VALUES")
    if found >= 0:
        return found + 6
    found = upper.rfind("VALUE")
    return found + 5 if found >= 0 else 0


# --- compiled and pure agree --------------------------------------------------------------


@needs_crows
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    statements_(),
    st.sampled_from(MODES),
    st.integers(-1, 3),
    st.sampled_from([0, 2, 3, 4, 8]),
    st.integers(-3, 3),
    st.sampled_from([1, 5, 20, 1 << 40]),
    st.sampled_from([0, 0, 0, -1, 1 << 20]),
)
def test_compiled_splitter_agrees_with_the_reference(
    sql: str, mode: LexMode, column: int, modulus: int, shift: int, limit: int, off: int
) -> None:
    assert crows is not None
    pos = max(0, min(len(sql), _values_end(sql) + shift)) + off  # (and out of the text)
    pure = _split(split_rows_pure, sql, pos, column, modulus, mode, limit)
    compiled = _split(crows.split_rows, sql, pos, column, modulus, mode, limit)
    assert compiled == pure


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements_(), st.sampled_from(MODES), st.integers(-1, 2), st.integers(1, 30))
def test_rows_read_in_slices_are_the_rows_read_at_once(
    sql: str, mode: LexMode, column: int, limit: int
) -> None:
    pos = _values_end(sql)
    whole = _whole(sql, pos, column, 4, mode)
    assert _split(split_rows, sql, pos, column, 4, mode, limit) == whole
    sliced = _split(split_rows_pure, sql, pos, column, 4, mode, limit)
    if whole is not None and sliced is not None and sliced[3] >= 0:
        assert sliced[3] - pos >= limit and sql[sliced[3]] == "("


@needs_crows
@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="(),'\"\\ 0123456789-+*/#\n.xXbBnN_eEaNULt`?@;$é\x00", max_size=60))
def test_compiled_splitter_agrees_on_any_text(sql: str) -> None:
    assert crows is not None
    for mode in MODES:
        for column in (-1, 0, 1):
            pure = _split(split_rows_pure, sql, 0, column, 4, mode)
            assert _split(crows.split_rows, sql, 0, column, 4, mode) == pure


# --- the reference reads what the lexer reads ---------------------------------------------


def _lexes(sql: str, mode: LexMode) -> bool:
    try:
        lex(sql, mode, MARIADB)
    except LexError:
        return False
    return True


def _token_rows(tokens: tuple[Token, ...], at: int) -> list[list[list[Token]]] | None:
    """The rows from token ``at`` (a "(") on, each a list of items (token lists), as _insert
    reads them; None if they do not parse."""
    rows = []
    while at < len(tokens) and tokens[at].kind is TokenKind.OP and tokens[at].value == "(":
        depth = 0
        items: list[list[Token]] = [[]]
        at += 1
        while True:
            if at >= len(tokens):
                return None
            token = tokens[at]
            at += 1
            if token.kind is TokenKind.OP and token.value == ")" and depth == 0:
                break
            if token.kind is TokenKind.OP and token.value == "," and depth == 0:
                items.append([])
                continue
            if token.kind is TokenKind.OP and token.value in "()":
                depth += 1 if token.value == "(" else -1
            items[-1].append(token)
        rows.append(items)
        if at < len(tokens) and tokens[at].kind is TokenKind.OP and tokens[at].value == ",":
            at += 1
        else:
            break
    return rows


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements_(), st.sampled_from(MODES), st.integers(0, 2), st.sampled_from([0, 2, 3, 8]))
def test_rows_read_are_the_lexers(sql: str, mode: LexMode, column: int, modulus: int) -> None:
    pos = _values_end(sql)
    found = _whole(sql, pos, column, modulus, mode)
    if found is None:
        return
    # (what follows the rows is the lexer's: lexed up to their end)
    try:
        lexed = lex(sql[: found[2][-4]], mode, MARIADB)
    except LexError:
        if any(_lexes(sql[:p], mode) for p in range(pos + 1)):
            pytest.fail(f"rows read where the lexer refuses them: {sql!r}")
        return  # (the head is malformed)
    tokens = next(s.tokens for s in lexed if s.start <= pos <= s.end)
    at = next(i for i, t in enumerate(tokens) if t.pos >= pos)
    rows = _token_rows(tokens, at)
    columns, count, flat = found
    assert rows is not None
    assert len(rows) * 5 == len(flat)
    assert count >= sum(len(item) for row in rows for item in row)
    bounds = (-(2**31), 2**31 - 1) if modulus == 3 else (-(2**63) + 1, 2**63 - 1)
    for number, items in enumerate(rows):
        open_, end, key_start, key_end, code = flat[number * 5 : number * 5 + 5]
        assert sql[open_] == "(" and sql[end - 1] == ")"
        assert len(items) == columns and all(items)
        assert all(open_ < t.pos < end - 1 for item in items for t in item)
        if column >= columns:
            assert (key_start, key_end, code) == (-1, -1, -1)
            continue
        item = items[column]
        assert (key_start, key_end) == (item[0].pos, item[-1].pos + len(item[-1].raw))
        if code >= 0:
            value = literal_value(item)
            assert type(value) is int and bounds[0] <= value <= bounds[1]
            assert code == abs(value) % modulus
        elif modulus and column >= 0:
            try:
                value = literal_value(item)
            except NotALiteral:
                continue
            plain = all(t.kind is TokenKind.OP for t in item[:-1]) and item[-1].raw.isdigit()
            if plain and isinstance(value, int) and len(item[-1].raw) <= 18:
                assert not bounds[0] <= value <= bounds[1]  # (an integer in range has a code)


# --- routed from the rows read = routed from the whole lexing ------------------------------


def _full(sql: str, layout: Layout, mode: LexMode) -> tuple[str, Any]:
    old = statements.BULK_MIN_CHARS
    statements.BULK_MIN_CHARS = 1 << 60
    try:
        return "ok", statements.decide(sql, layout, mode, MARIADB)
    except Exception as exc:
        return type(exc).__name__, exc.args
    finally:
        statements.BULK_MIN_CHARS = old


SPLIT = Layout(
    "db",
    partition_layout("db", ["s0", "s1"], 2),
    {
        "t": LogicalTable(
            "t",
            TableRule("sharded", ShardKey("HASH", "id", KeyType("bigint")), None),
            "CREATE TABLE t (id bigint, name varchar(10)) DBPARTITION BY HASH(id)",
        ),
        "u": LogicalTable(
            "u",
            TableRule(
                "sharded",
                ShardKey("HASH", "id", KeyType("int")),
                ShardKey("HASH", "id", KeyType("int")),
                3,
            ),
            "CREATE TABLE u (id int, v int) DBPARTITION BY HASH(id) TBPARTITION BY HASH(id)"
            " TBPARTITIONS 3",
        ),
        "w": LogicalTable(
            "w",
            TableRule("sharded", ShardKey("HASH", "name", KeyType("varchar"))),
            "CREATE TABLE w (name varchar(10), v int) DBPARTITION BY HASH(name)",
        ),
        "o": LogicalTable(
            "o",
            TableRule("sharded", ShardKey("HASH", "buyer", KeyType("int"))),
            "CREATE TABLE o (id bigint auto_increment primary key, buyer int, v int)"
            " DBPARTITION BY HASH(buyer)",
        ),
    },
)
LAYOUTS = [LAYOUT, SPLIT]


def _agree(sql: str, layout: Layout, mode: LexMode) -> bool:
    """Whether ``bulk_insert`` took ``sql`` (asserting it routed it as ``decide`` does)."""
    try:
        fast = statements.bulk_insert(sql, layout, mode, MARIADB, None)
    except Exception as exc:  # never: it declines instead
        pytest.fail(f"bulk_insert raised {exc!r} for {sql!r}")
    if fast is None:
        return False
    assert ("ok", fast) == _full(sql, layout, mode), sql
    return True


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements_(), st.sampled_from(MODES), st.sampled_from(LAYOUTS))
def test_bulk_routing_is_the_whole_lexings(sql: str, mode: LexMode, layout: Layout) -> None:
    _agree(sql, layout, mode)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements_(plain=True), st.sampled_from(MODES), st.sampled_from(LAYOUTS))
def test_bulk_routing_of_plain_rows(sql: str, mode: LexMode, layout: Layout) -> None:
    _agree(sql, layout, mode)


@pytest.mark.parametrize("scan", ["compiled", "pure"])
def test_many_rows_in_any_order_of_partitions(scan: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded: hundreds of rows, keys of every partition interleaved, values of every kind;
    read by the compiled scan (where built) and by the pure one, in slices of a few rows."""
    if scan == "pure":
        monkeypatch.setattr(rows_module, "split_slice", split_rows_pure)
    elif crows is None:
        pytest.skip("proxy.shard._crows is not built")
    monkeypatch.setattr(rows_module, "SLICE", 100)
    rng = random.Random(20261204)
    names = ["'a'", "'it''s'", "'x\\'y'", "NULL", "_utf8'z'", "X'41'", "'/* no */'", "1.5", "-2"]
    for _ in range(40):
        rows = []
        for _ in range(rng.randint(2, 400)):
            key = rng.choice([str(rng.randint(-(10**12), 10**12)), str(rng.randint(0, 99))])
            if rng.random() < 0.05:
                key = rng.choice(["'17'", "NULL", "- 3", "+4", "--5", "' 8'"])
            comment = rng.choice(["", " /* c */", "\n-- c\n"])
            rows.append(f"({key},{comment} {rng.choice(names)})")
        sql = "INSERT INTO t (id, name) VALUES " + ", ".join(rows)
        _agree(sql, LAYOUT, LexMode())  # (its t.id is an int: a key past it is refused)
        assert _agree(sql, SPLIT, LexMode()), sql
        u_sql = sql.replace("INTO t (id, name)", "INTO u (id, v)")
        _agree(u_sql, LAYOUT, LexMode())
        _agree(u_sql, SPLIT, LexMode())


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1,'a'),(2,'b'),(3,'c'),(-4,'d'),(5, NULL)",
        "INSERT INTO t (id, name) VALUES (1,'a'),(2,'b') ON DUPLICATE KEY UPDATE name = 'x'",
        "INSERT INTO u (id, v) VALUES (1,1),(2,2),(3,3),(9,_utf8'x'),(10, -7 * (2 + 1))",
        "INSERT INTO w VALUES ('a',1),('b',2),(N'c',3),('d\\'e', 4),('f''g', 5)",
        "INSERT INTO o (id, buyer, v) VALUES (1,1,1),(2,2,2) /* end */;",
        "REPLACE INTO t (name, id) VALUE ('a', '12'), (X'41', 13), (0x41, 1e1)",
    ],
)
def test_bulk_inserts_it_is_for_are_taken(sql: str) -> None:
    assert _agree(sql, LAYOUT, LexMode())


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1,'a')",  # one row
        "INSERT INTO t VALUES (1,'a'),(2+1,'b')",  # a key that is an expression: refused
        "INSERT INTO t VALUES (1,'a'),(0x10,'b')",  # a hexadecimal key: refused
        "INSERT INTO t VALUES (1,'a'),(2,now())",  # a function
        "INSERT INTO t VALUES (1,'a'),(2,name)",  # a column
        "INSERT INTO o (buyer, v) VALUES (1,1),(2,2)",  # takes the sequence
        "INSERT INTO o (id, buyer, v) VALUES (NULL,1,1),(2,2,2)",  # takes the sequence
        "INSERT INTO b VALUES (1,'a'),(2,'b')",  # broadcast
        "INSERT INTO s (id, x) VALUES (1,1),(2,2)",  # single
        "INSERT INTO t VALUES (1,'a'),(2,'b'); INSERT INTO t VALUES (3,'c'),(4,'d')",
        "/*+TDDL:node(0)*/ INSERT INTO t VALUES (1,'a'),(2,'b')",
        "INSERT INTO t VALUES (1,'a'),(2,'b') ON DUPLICATE KEY UPDATE id = 3",
        "INSERT INTO t VALUES (1,'a'),(2,/*!50000 'b'*/)",
        "INSERT INTO t (id, name) VALUES (1,'a'),(2,'b'),(3)",
        # a non-ASCII N'' key: read in utf8mb3 (route.recode_strings), not as the text is
        "INSERT INTO w VALUES ('a',1),(N'\U0001f600',2)",
        "INSERT INTO w VALUES ('a',1),(n'\u00e9',2)",
    ],
)
def test_what_it_does_not_decide_goes_to_the_whole_lexing(sql: str) -> None:
    assert statements.bulk_insert(sql, LAYOUT, LexMode(), MARIADB, None) is None


def test_decide_takes_the_bulk_way_for_long_statements() -> None:
    """Past BULK_MIN_CHARS, ``decide`` itself routes a bulk INSERT from its rows read."""
    sql = "INSERT INTO u VALUES " + ", ".join(f"({i}, {i})" for i in range(1, 201))
    assert len(sql) >= statements.BULK_MIN_CHARS
    assert bulk_rows(sql, LexMode(), MARIADB) is not None
    found = statements.decide(sql, LAYOUT, LexMode(), MARIADB)
    assert isinstance(found, Route)
    assert ("ok", found) == _full(sql, LAYOUT, LexMode())
    hashed = integer_hash(LAYOUT.tables["u"].rule, LAYOUT.count)
    assert hashed is not None
    assert {t.sql.split("`")[1] for t in found.targets} == {f"u_0{g}" for g in range(8)}


def test_rows_read_for_another_column_are_read_again() -> None:
    """The shard key's column is only guessed from the head when the rows are first read:
    routing reads them again when the guess is not its own (here: made wrong on purpose)."""
    sql = "INSERT INTO u (v, id) VALUES " + ", ".join(f"({i * 7}, {i})" for i in range(1, 60))
    split = bulk_rows(sql, LexMode(), MARIADB, LAYOUT)
    assert split is not None and split.column == 1 and split.hashed is not None
    expected = _full(sql, LAYOUT, LexMode())
    for wrong in (
        replace(split, column=0),
        replace(split, hashed=split.hashed._replace(modulus=3)),
        replace(split, column=-1, hashed=None),
    ):
        lexed = lex(wrong.blanked(sql), LexMode(), MARIADB)[0]
        found = route(sql, LAYOUT, LexMode(), MARIADB, lexed=lexed, split=wrong)
        assert ("ok", found) == expected
