"""Cross-partition queries through the proxy against one plain MariaDB database (issue #16's
"Done means").

A sharded database ``shdiff`` over both shards with D = 4 physical databases, made through the
proxy with DRDS DDL: ``t`` (many column types, NULLs) and its child ``c``, both
``DBPARTITION BY HASH(key) TBPARTITION BY HASH(key) TBPARTITIONS 2`` (co-located: 8 physical
tables each, two per physical database), and a broadcast table ``b``. The same rows are loaded
through the proxy and directly into a plain database of the same name on the first shard.
Generated queries -- filters, ORDER BY on every type with NULLs (ties broken by unique keys),
LIMIT/OFFSET, each aggregate, GROUP BY with HAVING, DISTINCT, co-located joins (inner, outer),
joins with the broadcast table, correlated and IN subqueries -- must give the same rows (in
order where the query defines one) and the same column definitions, with the text protocol
(PyMySQL) and the binary protocol (``binclient``). Physical database and table names in the
column definitions never appear (the proxy renames them in every answer, routed, concatenated
or merged).

Seeded and bounded for CI; ``SHARDED_DIFF_EXAMPLES=2000 SHARDED_DIFF_RANDOM=1`` explores more.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import proxy.session.sharded as sharded_executor
from proxy.merge.rows import BinaryRows
from proxy.merge.values import ColumnDefinition, Kind, general_ci_key
from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import ProxyEnv
from tests.e2e.merge_queries import (
    AGGREGATES,
    COLUMNS,
    FILTERS,
    GROUPABLE,
    HAVINGS,
    TABLE,
    direction,
    queries,
    random_rows,
)
from tests.e2e.sharded import sharded_database

DB = "shdiff"
PASSWORD = "Shdiff#pass1"
ROWS = 240
SPLIT = " DBPARTITION BY HASH({}) TBPARTITION BY HASH({}) TBPARTITIONS 2"
CHILD = """
CREATE TABLE c (
  cid INT NOT NULL,
  n INT NOT NULL,
  x INT NULL,
  y VARCHAR(8) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL,
  PRIMARY KEY (cid, n)
)
"""
BROADCAST = """
CREATE TABLE b (
  bid INT NOT NULL PRIMARY KEY,
  label VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL,
  w DECIMAL(6,1) NULL
)
"""
_BINARY_FLAG = 128
_PHYSICAL_DB = re.compile(rf"^{DB}_\d{{4}}$")
_PHYSICAL_TABLE = re.compile(r"^(t|c)_\d{2}$")


def _child_rows(seed: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    rows = []
    for cid in range(1, ROWS + 21):  # some parents have none, some children no parent
        for n in range(rnd.choice([0, 0, 1, 2, 3])):
            x = None if rnd.random() < 0.2 else rnd.randint(-3, 6)
            y = None if rnd.random() < 0.2 else rnd.choice(["a", "A", "b", "á", "z ", ""])
            rows.append((cid, n, x, y))
    return rows


BROADCAST_ROWS = [(k, None if k % 4 == 0 else f"L{k % 3}", k * 1.5) for k in range(-5, 6)]


@dataclass
class Diff:
    proxy: pymysql.connections.Connection[Any]
    plain: pymysql.connections.Connection[Any]
    proxy_binary: BinaryClient
    plain_binary: BinaryClient


def _load(conn: pymysql.connections.Connection[Any], sharded: bool) -> None:
    rows = random_rows(16, ROWS)
    with conn.cursor() as cur:
        cur.execute(TABLE + (SPLIT.format("id", "id") if sharded else ""))
        cur.execute(CHILD + (SPLIT.format("cid", "cid") if sharded else ""))
        cur.execute(BROADCAST + (" BROADCAST" if sharded else ""))
        for start in range(0, len(rows), 60):
            cur.executemany(
                "INSERT INTO t VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows[start : start + 60],
            )
        cur.executemany("INSERT INTO c VALUES (%s, %s, %s, %s)", _child_rows(17))
        cur.executemany("INSERT INTO b VALUES (%s, %s, %s)", BROADCAST_ROWS)


@pytest.fixture(scope="module")
def diff(proxy: ProxyEnv) -> Iterator[Diff]:
    plain_home = proxy.shards[0]
    with sharded_database(proxy, DB, PASSWORD) as env:
        admin = connect_admin(plain_home, charset="utf8mb4")
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {DB}")
            cur.execute(f"CREATE DATABASE {DB}")
        admin.close()
        plain = connect_admin(plain_home, database=DB, charset="utf8mb4")
        through = env.connect(DB, PASSWORD, database=DB, charset="utf8mb4")
        _load(through, sharded=True)
        _load(plain, sharded=False)
        proxy_binary = BinaryClient(env.port, DB, PASSWORD, DB)
        plain_binary = BinaryClient(plain_home.port, plain_home.user, plain_home.password, DB)
        try:
            yield Diff(through, plain, proxy_binary, plain_binary)
        finally:
            for client in (proxy_binary, plain_binary):
                client.close()
            through.close()
            plain.close()
            admin = connect_admin(plain_home)
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {DB}")
            admin.close()


# ------------------------------------------------------------------------------ comparing


def _logical(name: str | bytes) -> str:
    """The name as it came: the proxy's answers name the logical database and tables (a
    physical name is a failure)."""
    if isinstance(name, bytes):
        name = name.decode()
    assert not _PHYSICAL_DB.match(name) and not _PHYSICAL_TABLE.match(name), name
    return name


@dataclass
class Answer:
    columns: list[tuple[Any, ...]]  # every field of each column definition
    kinds: list[Kind]
    rows: list[tuple[Any, ...]]


def _text(conn: pymysql.connections.Connection[Any], sql: str) -> Answer:
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = [tuple(r) for r in cur.fetchall()]
        fields = cur._result.fields if cur._result is not None else []
    columns = [
        (
            f.catalog,
            _logical(f.db),
            _logical(f.table_name),
            _logical(f.org_table),
            f.name,
            f.org_name,
            f.charsetnr,
            f.length,
            f.type_code,
            f.flags,
            f.scale,
        )
        for f in fields
    ]
    kinds = [
        Kind.BINARY
        if f.charsetnr == 63
        else Kind.UNICODE_BIN
        if f.flags & _BINARY_FLAG
        else Kind.GENERAL_CI
        for f in fields
    ]
    return Answer(columns, kinds, rows)


def _binary(client: BinaryClient, sql: str) -> Answer:
    statement = client.prepare(sql)
    try:
        raw_columns, raw_rows = client.execute_raw(statement)
    finally:
        client.close_statement(statement)
    parsed = [ColumnDefinition.parse(p) for p in raw_columns]
    codec = BinaryRows(parsed)
    columns = [
        (
            c.catalog,
            _logical(c.schema),
            _logical(c.table),
            _logical(c.org_table),
            c.name,
            c.org_name,
            c.charset,
            c.length,
            c.type_code,
            c.flags,
            c.decimals,
        )
        for c in parsed
    ]
    rows = [tuple(codec.parse(p, len(parsed))) for p in raw_rows]
    return Answer(columns, [c.kind for c in parsed], rows)


def _grouped(answer: Answer) -> list[tuple[Any, ...]]:
    """Values as the server considers them equal (a group's representative text, MIN of 'a'
    and 'A', is the server's arbitrary choice)."""
    out = []
    for row in answer.rows:
        values: list[Any] = []
        for value, kind in zip(row, answer.kinds, strict=True):
            textual = kind in (Kind.GENERAL_CI, Kind.UNICODE_BIN)
            text = value.decode() if isinstance(value, bytes) and textual else value
            if isinstance(text, str) and kind is Kind.GENERAL_CI:
                values.append(general_ci_key(text))
            elif isinstance(text, str) and kind is Kind.UNICODE_BIN:
                values.append(text.rstrip(" "))
            else:
                values.append(value)
        out.append(tuple(values))
    return out


_KEY_FLAGS = 2 | 4 | 8 | 16384


def _without_key_flags(column: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*column[:9], column[9] & ~_KEY_FLAGS, *column[10:])


def assert_same(diff: Diff, sql: str, ordered: bool, grouped: bool, protocol: str) -> None:
    if protocol == "binary":
        direct, through = _binary(diff.plain_binary, sql), _binary(diff.proxy_binary, sql)
    else:
        direct, through = _text(diff.plain, sql), _text(diff.proxy, sql)
    if grouped or any(word in sql for word in (" JOIN ", "t, c ", "(SELECT")):
        # The key flags (PRI_KEY, UNIQUE_KEY, MULTIPLE_KEY, PART_KEY) say whether the server
        # read the column from its table or from a temporary table its plan used (GROUP BY,
        # DISTINCT, a join sorted on an inner table): which one is the optimizer's choice for
        # the rows at hand, on one server as on a partition.
        direct.columns = [_without_key_flags(c) for c in direct.columns]
        through.columns = [_without_key_flags(c) for c in through.columns]
    assert through.columns == direct.columns, sql
    a = _grouped(direct) if grouped else direct.rows
    b = _grouped(through) if grouped else through.rows
    if not ordered:
        a, b = sorted(a, key=repr), sorted(b, key=repr)
    assert b == a, sql


# ------------------------------------------------------------------------ joined queries

CHILD_COLUMNS = ["cid", "n", "x", "y"]
BROADCAST_COLUMNS = ["bid", "label", "w"]
CHILD_AGGREGATES = ["COUNT(x)", "SUM(x)", "MIN(y)", "MAX(y)", "AVG(x)", "MAX(n)", "COUNT(*)"]
BROADCAST_AGGREGATES = ["COUNT(label)", "MIN(label)", "SUM(w)", "AVG(w)", "MAX(w)"]

# (FROM clause, the columns it adds, their aggregates, the unique key of its rows)
SOURCES: list[tuple[str, list[str], list[str], str]] = [
    ("t JOIN c ON c.cid = t.id", CHILD_COLUMNS, CHILD_AGGREGATES, "t.id, c.n"),
    ("t LEFT JOIN c ON t.id = c.cid", CHILD_COLUMNS, CHILD_AGGREGATES, "t.id, c.n"),
    ("t JOIN c ON t.id = c.cid AND c.x IS NOT NULL", CHILD_COLUMNS, CHILD_AGGREGATES, "t.id, c.n"),
    ("c RIGHT JOIN t ON c.cid = t.id", CHILD_COLUMNS, CHILD_AGGREGATES, "t.id, c.n"),
    ("t, c WHERE c.cid = t.id AND", CHILD_COLUMNS, CHILD_AGGREGATES, "t.id, c.n"),
    ("t JOIN b ON b.bid = t.i", BROADCAST_COLUMNS, BROADCAST_AGGREGATES, "t.id"),
    ("t LEFT JOIN b ON b.bid = t.i", BROADCAST_COLUMNS, BROADCAST_AGGREGATES, "t.id"),
    ("b JOIN t ON t.i = b.bid", BROADCAST_COLUMNS, BROADCAST_AGGREGATES, "t.id"),
    (
        "t JOIN c ON c.cid = t.id LEFT JOIN b ON b.bid = c.x",
        CHILD_COLUMNS + BROADCAST_COLUMNS,
        CHILD_AGGREGATES + BROADCAST_AGGREGATES,
        "t.id, c.n",
    ),
    ("t WHERE EXISTS (SELECT 1 FROM c WHERE c.cid = t.id AND c.x > 0) AND", [], [], "t.id"),
    ("t WHERE NOT EXISTS (SELECT 1 FROM c WHERE c.cid = t.id) AND", [], [], "t.id"),
    ("t WHERE id IN (SELECT cid FROM c WHERE y IS NULL) AND", [], [], "t.id"),
    ("t WHERE i IN (SELECT bid FROM b WHERE label IS NOT NULL) AND", [], [], "t.id"),
]


# Routed: the partitions of these keys only.
ROUTED_FILTERS = ["WHERE t.id = 7", "WHERE t.id IN (3, 17, 40) AND i IS NOT NULL"]


def _from(source: str, condition: str) -> str:
    """``FROM source`` with the filter ``condition`` (a WHERE clause or nothing) after it."""
    if source.endswith(" AND"):  # the source has its WHERE already
        return (
            f"FROM {source} {condition.removeprefix('WHERE ')}"
            if condition
            else (f"FROM {source.removesuffix(' AND')}")
        )
    return f"FROM {source} {condition}".rstrip()


@st.composite
def joined_query(draw: st.DrawFn) -> tuple[str, bool, bool]:
    source, extra, extra_aggregates, unique = draw(st.sampled_from(SOURCES))
    where = draw(st.sampled_from([*FILTERS, *ROUTED_FILTERS]))
    if where:
        where = f"WHERE ({where.removeprefix('WHERE ')})"
    origin = _from(source, where)
    shape = draw(st.sampled_from(["plain", "aggregate", "group", "distinct"]))
    columns = [c for c in COLUMNS if c != "id"] + ["t.id"] + extra
    if shape == "plain":
        selected = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=4, unique=True))
        sql = f"SELECT {', '.join(selected)} {origin}"
        if not draw(st.booleans()):
            return sql, False, False
        keys = draw(st.lists(st.sampled_from(columns), max_size=2, unique=True))
        order = [f"{k}{draw(direction)}" for k in keys]
        sql += " ORDER BY " + ", ".join([*order, *unique.split(", ")])
        if draw(st.booleans()):
            sql += f" LIMIT {draw(st.integers(0, 30))}, {draw(st.integers(0, 40))}"
        return sql, True, False
    aggregates = AGGREGATES + extra_aggregates
    if shape == "aggregate":
        chosen = draw(st.lists(st.sampled_from(aggregates), min_size=1, max_size=4))
        return f"SELECT {', '.join(chosen)} {origin}", True, True
    groupable = GROUPABLE + [c for c in extra if c not in ("n",)]
    if shape == "distinct":
        chosen = draw(st.lists(st.sampled_from(groupable), min_size=1, max_size=2, unique=True))
        sql = f"SELECT DISTINCT {', '.join(chosen)} {origin}"
        if draw(st.booleans()):
            sql += " ORDER BY " + ", ".join(f"{c}{draw(direction)}" for c in chosen)
            return sql, True, True
        return sql, False, True
    keys = draw(st.lists(st.sampled_from(groupable), min_size=1, max_size=2, unique=True))
    chosen = draw(st.lists(st.sampled_from(aggregates), min_size=1, max_size=3))
    select = [*keys, *(f"{a} AS a{n}" for n, a in enumerate(chosen))]
    sql = f"SELECT {', '.join(select)} {origin} GROUP BY {', '.join(keys)}"
    if draw(st.booleans()):
        sql += f" HAVING {draw(st.sampled_from(HAVINGS))}"
    if draw(st.booleans()):
        sql += f" ORDER BY a0{draw(direction)}, " + ", ".join(f"{k}{draw(direction)}" for k in keys)
        if draw(st.booleans()):
            sql += f" LIMIT {draw(st.integers(0, 5))}, {draw(st.integers(0, 10))}"
        return sql, True, True
    return sql, False, True


@st.composite
def derived_query(draw: st.DrawFn) -> tuple[str, bool, bool]:
    """A generated query over ``t`` read from a derived table of ``t``'s rows instead (each
    of its rows one row of t: a filter, the columns as they are or computed)."""
    sql, ordered, grouped = draw(queries)
    inner = draw(st.sampled_from(FILTERS))
    columns = draw(
        st.sampled_from(["*", ", ".join(COLUMNS), "id, i, s, sb, d, m, u, tm, dt, f * 1 AS f, r"])
    )
    derived = f" FROM (SELECT {columns} FROM t {inner}) AS x "
    return sql.replace(" FROM t ", derived, 1), ordered, grouped


@pytest.mark.parametrize("protocol", ["text", "binary"])
@settings(
    max_examples=int(os.environ.get("SHARDED_DIFF_EXAMPLES", "120")),
    deadline=None,
    derandomize=not os.environ.get("SHARDED_DIFF_RANDOM"),
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(query=st.one_of(queries, joined_query(), derived_query()))
def test_through_the_proxy_as_one_server(
    diff: Diff, protocol: str, query: tuple[str, bool, bool]
) -> None:
    sql, ordered, grouped = query
    assert_same(diff, sql, ordered, grouped, protocol)


EXAMPLES = [
    ("SELECT * FROM t ORDER BY s DESC, id LIMIT 3, 20", True, False),
    ("SELECT * FROM t WHERE id = 17", True, False),
    ("SELECT * FROM c WHERE cid IN (3, 4, 5) ORDER BY cid, n", True, False),
    ("SELECT COUNT(*), SUM(u), AVG(m), MIN(tm), MAX(dt) FROM t", True, True),
    (
        "SELECT t.id, c.n, c.y FROM t JOIN c ON c.cid = t.id WHERE t.id = 7 ORDER BY c.n",
        True,
        False,
    ),
    ("SELECT t.id, label FROM t LEFT JOIN b ON b.bid = t.i ORDER BY label DESC, t.id", True, False),
    ("SELECT label, COUNT(*), SUM(m) FROM t JOIN b ON b.bid = t.i GROUP BY label", False, True),
    (
        "SELECT id, (SELECT COUNT(*) FROM c WHERE c.cid = t.id) AS kids FROM t ORDER BY id",
        True,
        False,
    ),
    (
        "SELECT s, COUNT(*) FROM t a JOIN c ON c.cid = a.id GROUP BY s ORDER BY 2 DESC, 1",
        True,
        True,
    ),
    ("SELECT DISTINCT y FROM t JOIN c ON c.cid = t.id ORDER BY y", True, True),
    (
        "SELECT (SELECT COUNT(*) FROM c WHERE c.cid = t.id) AS k, COUNT(*) FROM t"
        " GROUP BY k ORDER BY k",
        True,
        True,
    ),
    (
        "SELECT id, (SELECT MAX(x) FROM c WHERE c.cid = t.id) AS mx FROM t"
        " ORDER BY mx DESC, id LIMIT 10",
        True,
        False,
    ),
    ("SELECT COUNT(*), SUM(x) FROM t a JOIN t b ON a.id = b.id JOIN c ON c.cid = b.id", True, True),
    (
        "SELECT t.id, c.n FROM c RIGHT JOIN t ON c.cid = t.id AND c.x > 2"
        " WHERE EXISTS (SELECT 1 FROM c d WHERE d.cid = t.id AND d.y = 'a') ORDER BY t.id, c.n",
        True,
        False,
    ),
    (
        "SELECT label, MIN(t.id), MAX(c.n) FROM t JOIN c ON c.cid = t.id JOIN b ON b.bid = c.x"
        " GROUP BY label HAVING COUNT(*) > 1 ORDER BY label",
        True,
        True,
    ),
    # Derived tables of t's rows, as ORMs write a count or a page of a query.
    ("SELECT COUNT(*) FROM (SELECT t.id AS col1 FROM t WHERE t.i > 0) subquery", True, True),
    (
        "SELECT x.id, x.half FROM (SELECT id, i / 2 AS half FROM t WHERE s IS NOT NULL) x"
        " ORDER BY x.half DESC, x.id LIMIT 5, 10",
        True,
        False,
    ),
    (
        "SELECT k, COUNT(*) FROM (SELECT id, i % 3 AS k FROM (SELECT * FROM t) y) x"
        " GROUP BY k ORDER BY k",
        True,
        True,
    ),
]


@pytest.mark.parametrize("protocol", ["text", "binary"])
@pytest.mark.parametrize(("sql", "ordered", "grouped"), EXAMPLES)
def test_examples(diff: Diff, sql: str, ordered: bool, grouped: bool, protocol: str) -> None:
    assert_same(diff, sql, ordered, grouped, protocol)


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT * FROM t JOIN c ON c.x = t.id", "t and c not on their shard keys"),
        ("SELECT * FROM t LEFT JOIN c ON c.x = t.i WHERE c.cid = t.id", "LEFT JOIN of sharded"),
        ("SELECT * FROM b LEFT JOIN t ON t.i = b.bid", "LEFT JOIN of sharded table t"),
        ("SELECT * FROM t WHERE id NOT IN (SELECT cid FROM c)", "not tied to the shard key"),
        ("SELECT COUNT(*) FROM (SELECT DISTINCT i FROM t) x", "a derived table on sharded"),
        ("SELECT SUM(n) FROM (SELECT i, COUNT(*) AS n FROM t GROUP BY i) x", "GROUP BY, aggr"),
        ("SELECT * FROM (SELECT * FROM t ORDER BY id LIMIT 3) x", "LIMIT"),
        ("SELECT * FROM (SELECT id FROM t) x JOIN c ON c.cid = x.id", "joined with other"),
    ],
)
def test_not_co_located_is_refused(diff: Diff, sql: str, why: str) -> None:
    with pytest.raises(pymysql.err.MySQLError) as refused, diff.proxy.cursor() as cur:
        cur.execute(sql)
    assert refused.value.args[0] == 1235
    assert why in refused.value.args[1]


def test_scatters_are_counted(proxy: ProxyEnv, diff: Diff) -> None:
    """``shardgate_sharded_statements_total`` by route, and the physical statements each ran
    (a merged scatter over t: D x T = 8)."""
    metrics = proxy.server.ctx.metrics
    merged = metrics.sharded_statements_total.labels("merged")
    routed = metrics.sharded_statements_total.labels("routed")
    physical = metrics.sharded_physical_statements.labels()
    before = (merged.value, routed.value, physical.sum, sum(physical.counts))
    _text(diff.proxy, "SELECT COUNT(*) FROM t JOIN c ON c.cid = t.id")
    _text(diff.proxy, "SELECT * FROM t WHERE id IN (1, 2)")
    assert merged.value == before[0] + 1
    assert routed.value == before[1] + 1
    assert physical.sum == before[2] + 8 + 2
    assert sum(physical.counts) == before[3] + 2


def test_a_merge_over_split_tables_in_a_transaction_reads_its_branches(diff: Diff) -> None:
    """Ids 1 and 8 live in t_01 and t_00, both in physical database 0: inside a transaction
    both physical tables are read on the transaction's branch, one after the other, so the
    merges see the transaction's own change; outside it, nothing changed."""
    marked = "SELECT id FROM t WHERE i = -987654 ORDER BY id"  # every physical table
    with diff.proxy.cursor() as cur:
        cur.execute(marked)
        assert cur.fetchall() == ()
        cur.execute("BEGIN")
        try:
            cur.execute("UPDATE t SET i = -987654 WHERE id = 8")
            cur.execute("SELECT COUNT(*), MIN(i) FROM t WHERE id IN (1, 8)")
            assert cur.fetchall() == ((2, -987654),)
            cur.execute(marked)
            assert cur.fetchall() == ((8,),)
        finally:
            cur.execute("ROLLBACK")
        cur.execute(marked)
        assert cur.fetchall() == ()


def test_a_merge_in_a_transaction_holds_a_bounded_answer(
    diff: Diff, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What such a merge holds of one physical table's answer while it reads the next is
    bounded: past the bound, 1235 (the rest read and dropped), and the transaction goes on."""
    monkeypatch.setattr(sharded_executor, "SHARED_CONNECTION_BUFFER", 64)
    with diff.proxy.cursor() as cur:
        cur.execute("BEGIN")
        try:
            with pytest.raises(pymysql.err.MySQLError) as refused:
                cur.execute("SELECT id, s FROM t ORDER BY id")
            assert refused.value.args[0] == 1235
            assert "TBPARTITION BY inside a transaction" in refused.value.args[1]
            cur.execute("SELECT COUNT(*) FROM t WHERE id = 8")
            assert cur.fetchall() == ((1,),)
        finally:
            cur.execute("ROLLBACK")
