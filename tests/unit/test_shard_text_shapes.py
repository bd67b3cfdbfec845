"""The text fast path's routing (``TextShape``, ``shaped``) against routing itself (``decide``):
for generated statements, every statement of a shape the fast path routes goes to the one
partition ``decide`` routes it to, with the same physical text, whatever its literals' values
(numbers, strings holding numbers or not, negative, decimal, out of the column's range, not
placeable, non-ASCII) and whichever statement of the shape the shape was made from.

The layout is tests/unit/test_shard_route.py's (D = 4; ``t`` by HASH(id), ``u`` split by
TBPARTITION BY HASH(id) into 8 tables, ``w`` by HASH(name), ``b`` broadcast, ``s`` single) with
``h`` by UNI_HASH of a BIGINT, ``k`` by HASH of a BIGINT UNSIGNED split into 3 tables per
database and ``m`` by UNI_HASH split by UNI_HASH into 2 (where a key's sign and range matter).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.errors import SqlError
from auth.model import KeyType, LogicalTable, ShardKey, TableRule
from proxy.session.fast import TextRoute
from proxy.shard.route import Layout, Route, text_shape
from proxy.shard.statements import decide, shaped
from proxy.sql.analyze import analyze, fast_literals
from proxy.sql.lexer import DEFAULT_MODE, LexMode
from tests.unit.test_shard_route import LAYOUT as ROUTE_LAYOUT

BIGINT = ShardKey("HASH", "id", KeyType("bigint"))
UNI = ShardKey("UNI_HASH", "id", KeyType("bigint"))
UNSIGNED = ShardKey("HASH", "id", KeyType("bigint", unsigned=True))
EXTRA = {
    "h": LogicalTable(
        "h",
        TableRule("sharded", UNI),
        "CREATE TABLE h (id bigint, v int) DBPARTITION BY UNI_HASH(id)",
    ),
    "k": LogicalTable(
        "k",
        TableRule("sharded", UNSIGNED, UNSIGNED, 3),
        "CREATE TABLE k (id bigint unsigned, v int) DBPARTITION BY HASH(id)"
        " TBPARTITION BY HASH(id) TBPARTITIONS 3",
    ),
    "m": LogicalTable(
        "m",
        TableRule("sharded", UNI, UNI, 2),
        "CREATE TABLE m (id bigint, v int) DBPARTITION BY UNI_HASH(id)"
        " TBPARTITION BY UNI_HASH(id) TBPARTITIONS 2",
    ),
}
LAYOUT = Layout("db", ROUTE_LAYOUT.partitions, {**ROUTE_LAYOUT.tables, **EXTRA})
assert BIGINT.type.bounds[0] == -(2**63)

MODES = [DEFAULT_MODE, LexMode(ansi_quotes=True), LexMode(no_backslash_escapes=True)]

# A statement's literals are written as {n} (a number) and {s} (a string); the shape is the
# text with them, its statements the same text with values put in.
TABLES = ["t", "u", "w", "b", "s", "h", "k", "m", "db.t", "db.u", "T", "`u`", "db.m"]
KEYS = {"t": "id", "u": "id", "w": "name", "b": "id", "s": "id", "h": "id", "k": "id", "m": "id"}


@dataclass(frozen=True)
class Template:
    parts: tuple[str, ...]  # text, slot, text, slot, ... (a slot is "n" or "s")

    def fill(self, values: list[str]) -> str:
        out = []
        taken = iter(values)
        for index, part in enumerate(self.parts):
            out.append(next(taken) if index % 2 else part)
        return "".join(out)

    @property
    def slots(self) -> list[str]:
        return list(self.parts[1::2])


def _template(text: str) -> Template:
    """``text`` with ``{n}`` / ``{s}`` slots as a Template."""
    parts: list[str] = []
    rest = text
    while True:
        at = min((i for i in (rest.find("{n}"), rest.find("{s}")) if i >= 0), default=-1)
        if at < 0:
            parts.append(rest)
            return Template(tuple(parts))
        parts += [rest[:at], rest[at + 1]]
        rest = rest[at + 3 :]


LITERAL = st.one_of(st.just("{n}"), st.just("{s}"))


@st.composite
def _condition(draw: st.DrawFn, key: str, qualifier: str) -> str:
    column = draw(st.sampled_from([key, f"{qualifier}.{key}", key.upper(), "v", "name"]))
    literal = draw(LITERAL)
    sign = draw(st.sampled_from(["", "-", "- ", "+", "--", "- -", "+-"]))
    space = draw(st.sampled_from(["", " ", "  "]))
    if draw(st.booleans()):  # the point statement, half of the time
        atom = f"{column}{space}={space}{sign}{literal}"
    else:
        atom = draw(
            st.sampled_from(
                [
                    f"{sign}{literal} = {column}",
                    f"{column} IN ({literal})",
                    f"{column} IN ({literal}, {literal})",
                    f"({column} = {literal})",
                    f"{column} > {literal}",
                    f"{column} = {literal} + 1",
                    f"{column} BETWEEN {literal} AND {literal}",
                    f"{column} = NULL",
                    f"{column} <=> {literal}",
                ]
            )
        )
    joiner = draw(st.sampled_from(["", " AND ", " and ", " OR ", " && ", " || "]))
    if not joiner:
        return atom
    other = draw(st.sampled_from(["v = {n}", f"{key} = {{n}}", "name = {s}", f"({key} = {{n}})"]))
    return atom + joiner + other if draw(st.booleans()) else other + joiner + atom


@st.composite
def templates(draw: st.DrawFn) -> Template:
    table = draw(st.sampled_from(TABLES))
    bare = table.split(".")[-1].strip("`").lower()
    key = KEYS[bare]
    alias = draw(st.sampled_from(["", " x", " AS x", f" AS {bare}"]))
    qualifier = "x" if "x" in alias else draw(st.sampled_from([bare, table]))
    condition = draw(_condition(key, qualifier))
    verb = draw(st.sampled_from(["SELECT", "select", "UPDATE", "DELETE"]))
    tail = draw(st.sampled_from(["", " LIMIT {n}", " ORDER BY v", " FOR UPDATE", " LIMIT 1"]))
    if verb.upper() == "SELECT":
        columns = draw(st.sampled_from(["*", "v", f"{qualifier}.v", "COUNT(*)", "v, {n}"]))
        text = f"{verb} {columns} FROM {table}{alias} WHERE {condition}{tail}"
    elif verb == "UPDATE":
        value = draw(st.sampled_from(["{n}", "v + {n}", "{s}"]))
        text = f"UPDATE {table}{alias} SET v = {value} WHERE {condition}{tail}"
    else:
        text = f"DELETE FROM {table} WHERE {condition}{tail}"
    return _template(text)


NUMBERS = st.one_of(
    st.integers(0, 20).map(str),
    st.integers(0, 2**70).map(str),
    st.sampled_from(
        [
            "9223372036854775807",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "2147483648",
            "2147483647",
            "4294967296",
            "1.0",
            "1.5",
            "0.0",
        ]
    ),
    st.decimals(0, 10**6, places=2, allow_nan=False, allow_infinity=False).map(str),
)
STRINGS = st.one_of(
    st.integers(0, 20).map(lambda n: f"'{n}'"),
    st.sampled_from(["'abc'", "'a'", "'b'", "''", "' 12'", "'1e3'", "'12abc'", "'é'", "'ü1'"]),
    st.text(st.characters(blacklist_characters="'\\\x00"), max_size=6).map(lambda t: f"'{t}'"),
)


@st.composite
def values(draw: st.DrawFn, slots: list[str]) -> list[str]:
    return [draw(NUMBERS if slot == "n" else STRINGS) for slot in slots]


def _decision(sql: str, mode: LexMode) -> Route | None:
    try:
        found = decide(sql, LAYOUT, mode)
    except SqlError:
        return None
    return found if isinstance(found, Route) else None


SEEN = {"routed": 0, "statements": 0}


def _literals(sql: str) -> tuple[str, tuple[int, ...]]:
    found = fast_literals(sql)
    assert found is not None, sql
    return found


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), template=templates(), mode=st.sampled_from(MODES))
def test_fast_routes_as_decide(data: st.DataObject, template: Template, mode: LexMode) -> None:
    statements = [template.fill(data.draw(values(template.slots))) for _ in range(6)]
    if fast_literals(statements[0]) is None:
        return  # not in the fast language (``--``: a comment)
    shape = None
    for sql in statements:
        _, spans = _literals(sql)
        shape, settled = shaped(sql, spans, LAYOUT, mode)
        if shape is not None or settled:
            break
    if shape is None:
        # Refused as a shape only where routing does not route this statement to one
        # partition (else the fast path would miss what it is for).
        made = text_shape(sql, spans, LAYOUT, mode)
        if made is not None and made.target(sql, spans) is not None:
            decision = _decision(sql, mode)
            assert decision is None or decision.kind != "routed" or len(decision.targets) > 1, sql
        return
    keys = {_literals(sql)[0] for sql in statements}
    assert len(keys) == 1  # one shape
    for sql in statements:
        SEEN["statements"] += 1
        _, spans = _literals(sql)
        target = shape.target(sql, spans)
        if target is None:
            continue  # routed the long way
        SEEN["routed"] += 1
        decision = _decision(sql, mode)
        assert decision is not None, sql
        assert decision.kind == "routed" and decision.targets == (target,), sql
        assert decision.reads_rows == shape.reads_rows and decision.write != shape.reads_rows


def test_the_property_routes_statements() -> None:
    """(Run after the property: it was not vacuous.)"""
    if SEEN["statements"] == 0:
        pytest.skip("the property did not run first")
    assert SEEN["routed"] > SEEN["statements"] // 10, SEEN


@pytest.mark.parametrize(
    ("sql", "partition", "physical"),
    [
        ("SELECT c FROM t WHERE id = 5", 1, None),
        ("SELECT c FROM t WHERE id = '5'", 1, None),
        ("SELECT c FROM t WHERE id = -6", 2, None),
        ("SELECT c FROM t WHERE id = 6.0", 2, None),
        ("SELECT * FROM u WHERE id=13", 2, "SELECT * FROM `u_05` AS `u` WHERE id=13"),
        ("UPDATE u SET v = v + 1 WHERE id = 7", 3, "UPDATE `u_07` SET v = v + 1 WHERE id = 7"),
        ("DELETE FROM w WHERE name = 'ab'", 1, None),
        ("SELECT v FROM db.t WHERE id = 3", 3, "SELECT v FROM `db_0003`.t WHERE id = 3"),
        ("SELECT v FROM t WHERE id = -2147483648", 0, None),  # in INT's range, 2^31 is not
        ("SELECT v FROM t WHERE id = - -2147483647", 3, None),
        # Long.hashCode(-2) = (int)(-2 ^ 0xffffffff) = 1; Long.hashCode(2) = 2
        ("SELECT v FROM h WHERE id = -2", 1, None),
        ("SELECT v FROM h WHERE id = 2", 2, None),
        ("SELECT v FROM h WHERE id = 4294967296", 1, None),  # (int)(2^32 ^ 1) = 1
        # 2^64 - 1: longValue() -1, abs 1: global table 1 of 12
        (
            "SELECT v FROM k WHERE id = 18446744073709551615",
            0,
            "SELECT v FROM `k_01` AS `k` WHERE id = 18446744073709551615",
        ),
    ],
)
def test_shapes(sql: str, partition: int, physical: str | None) -> None:
    found = fast_literals(sql)
    assert found is not None
    shape, settled = shaped(sql, found[1], LAYOUT)
    assert shape is not None and settled
    target = shape.target(sql, found[1])
    assert target is not None
    assert target.partition == partition
    assert target.sql == (physical or sql)
    assert (target.sql is sql) == (physical is None)  # the client's text itself


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT c FROM t WHERE id = 5 OR id = 6",  # two values
        "SELECT c FROM t WHERE id IN (5, 6)",
        "SELECT c FROM t WHERE v = 5",  # not by key: a scatter
        "SELECT c FROM t, b WHERE t.id = 5",  # a join
        "SELECT c FROM b WHERE id = 5",  # broadcast
        "SELECT c FROM s WHERE id = 5",  # single
        "SELECT c FROM t WHERE id = NULL",  # no literal of the fast key holds the key
        "INSERT INTO t (id) VALUES (5)",
        "SELECT c FROM t WHERE id = 5 AND (SELECT 1 FROM b WHERE id = 2)",
        "SELECT c FROM db.u WHERE db.u.id = 3",  # scatters: not restricted by this qualifier
    ],
)
def test_not_shapes(sql: str) -> None:
    found = fast_literals(sql)
    assert found is not None
    assert shaped(sql, found[1], LAYOUT) == (None, True)


def test_a_key_not_placeable_does_not_settle_the_shape() -> None:
    """The first statement of a shape may hold a key that fixes no partition: it says nothing
    of the others (made from the next one)."""
    for first, then in (
        ("SELECT c FROM t WHERE id = 1.5", "SELECT c FROM t WHERE id = 1.0"),
        ("SELECT c FROM t WHERE id = 'x'", "SELECT c FROM t WHERE id = '7'"),
        ("SELECT c FROM w WHERE name = 5", "SELECT c FROM w WHERE name = 5"),
    ):
        _, spans = _literals(first)
        shape, settled = shaped(first, spans, LAYOUT)
        assert shape is None
        assert not settled or first == then
        assert text_shape(first, spans, LAYOUT) is not None
        _, later = _literals(then)
        made, _ = shaped(then, later, LAYOUT)
        if first != then:
            assert made is not None and made.target(first, spans) is None


@given(
    st.sampled_from(["t", "u", "k"]),
    st.integers(min_value=-(10**19), max_value=2 * 10**19),
    st.sampled_from(["", "0", "00"]),
    st.sampled_from(["SELECT v FROM {} WHERE id = {}", "UPDATE {} SET v = 1 WHERE {} = id"]),
)
def test_a_text_routes_integer_key_places_as_its_shape(
    table: str, value: int, zeros: str, template: str
) -> None:
    """The text fast path's reading of an integer key's digits (TextRoute.table, compiled)
    places the statement where its shape (TextShape.placement, target) does; keys of more
    than 18 digits, out of the column's range or not placed by arithmetic are left to the
    shape (-1)."""
    number = ("-" if value < 0 else "") + zeros + str(abs(value))
    sql = template.format(table, number)
    found = fast_literals(sql)
    assert found is not None
    spans = found[1]
    shape, _ = shaped(sql, spans, LAYOUT)
    if shape is None:
        return  # (not one routed by its literal: out of the column's range)
    route = TextRoute(shape, analyze(sql, "db")[0], "", LAYOUT, None, shape.integer)
    g = route.table(sql, spans)
    target = shape.target(sql, spans)
    if g < 0:
        assert shape.integer is None or len(zeros + str(abs(value))) > 18 or target is None
        return
    assert shape.integer is not None and shape.integer.table(value) == g
    assert target is not None
    assert target.partition == g // shape.integer.per_db
    # The fast path's placing by the table found (on_table) and the shape's own agree.
    database, text = shape.on_table(g, sql, spans)
    assert (database.index, text) == (target.partition, target.sql)


def test_a_text_routes_key_of_other_digits_is_left_to_the_shape() -> None:
    """Digits other than ASCII's (which str.isdigit takes) are not read as a number."""
    sql = "SELECT v FROM t WHERE id = 12"
    found = fast_literals(sql)
    assert found is not None
    shape, _ = shaped(sql, found[1], LAYOUT)
    assert shape is not None and shape.integer is not None
    route = TextRoute(shape, analyze(sql, "db")[0], "", LAYOUT, None, shape.integer)
    at = found[1][2 * shape.key]
    assert route.table(sql, found[1]) == shape.integer.table(12)
    for literal in ("١٢", "1٢", "1e3", "12a", "+1"):
        other = sql[:at] + literal
        assert route.table(other, (*found[1][:-1], at + len(literal))) == -1
