"""The merge engine's pure parts: per-partition rewriting and value comparison."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.merge import (
    MergeLimits,
    MergePlan,
    Refusal,
    explain_merge,
    merge_text_results,
    plan_select,
)
from proxy.merge.general_ci import WEIGHTS
from proxy.merge.rewrite import Binary, Column, Lit, Op, Ref, SortKey
from proxy.merge.rows import format_double
from proxy.merge.values import (
    BINARY_FLAG,
    ColumnDefinition,
    Descending,
    Kind,
    general_ci_key,
    sort_key,
    unicode_bin_key,
)
from proxy.wire.packets import build_column_count, build_eof, build_text_row

# statement -> the statement each partition runs
REWRITES = [
    ("SELECT a FROM t", "SELECT a FROM t"),
    ("SELECT a FROM t LIMIT 5", "SELECT a FROM t LIMIT 5"),
    ("SELECT a FROM t LIMIT 10, 5", "SELECT a FROM t LIMIT 15"),
    ("SELECT a FROM t LIMIT 5 OFFSET 10", "SELECT a FROM t LIMIT 15"),
    ("SELECT a, b FROM t ORDER BY b DESC, a", "SELECT a, b FROM t ORDER BY 2 DESC, 1"),
    ("SELECT a FROM t ORDER BY c, a LIMIT 2, 3", "SELECT a, c FROM t ORDER BY 2, 1 LIMIT 5"),
    ("SELECT a AS x FROM t ORDER BY x DESC", "SELECT a AS x FROM t ORDER BY 1 DESC"),
    ("SELECT a, b FROM t ORDER BY 2", "SELECT a, b FROM t ORDER BY 2"),
    ("SELECT a FROM t WHERE b = 'x;y' ORDER BY a;", "SELECT a FROM t WHERE b = 'x;y' ORDER BY 1"),
    ("SELECT a FROM t ORDER BY a FOR UPDATE", "SELECT a FROM t ORDER BY 1 FOR UPDATE"),
    (
        "SELECT * FROM t ORDER BY id DESC LIMIT 3",
        "SELECT *, id AS `__sg_0` FROM t ORDER BY `__sg_0` DESC LIMIT 3",
    ),
    ("SELECT COUNT(*), SUM(x) FROM t", "SELECT COUNT(*), SUM(x) FROM t"),
    ("SELECT AVG(x) FROM t WHERE y > 1", "SELECT AVG(x), SUM(x), COUNT(x) FROM t WHERE y > 1"),
    ("SELECT SUM(x), AVG(x) FROM t", "SELECT SUM(x), AVG(x), COUNT(x) FROM t"),
    ("SELECT COUNT(*) FROM t LIMIT 1", "SELECT COUNT(*) FROM t"),
    ("SELECT g, COUNT(*) FROM t GROUP BY g", "SELECT g, COUNT(*) FROM t GROUP BY g ORDER BY 1"),
    (
        "SELECT COUNT(*) FROM t GROUP BY g, h",
        "SELECT COUNT(*), g, h FROM t GROUP BY g, h ORDER BY 2, 3",
    ),
    (
        "SELECT g, h, COUNT(*) FROM t GROUP BY g, h ORDER BY h DESC LIMIT 1, 2",
        "SELECT g, h, COUNT(*) FROM t GROUP BY g, h ORDER BY 2 DESC, 1 LIMIT 3",
    ),
    (
        "SELECT g, COUNT(*) AS n FROM t GROUP BY g HAVING n > 1 ORDER BY g LIMIT 2",
        "SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY 1",
    ),
    (
        "SELECT g FROM t GROUP BY g HAVING SUM(x) > 1",
        "SELECT g, SUM(x) FROM t GROUP BY g ORDER BY 1",
    ),
    (
        "SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY n DESC LIMIT 3",
        "SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY 1",
    ),
    ("SELECT g AS k FROM t GROUP BY k", "SELECT g AS k FROM t GROUP BY k ORDER BY 1"),
    ("SELECT g FROM t GROUP BY 1 ORDER BY NULL", "SELECT g FROM t GROUP BY 1 ORDER BY 1"),
    ("SELECT DISTINCT a, b FROM t", "SELECT DISTINCT a, b FROM t ORDER BY 1, 2"),
    (
        "SELECT DISTINCT a, b FROM t ORDER BY b DESC LIMIT 4",
        "SELECT DISTINCT a, b FROM t ORDER BY 2 DESC, 1 LIMIT 4",
    ),
    ("SELECT a FROM t LIMIT 10, 0", "SELECT a FROM t LIMIT 0"),
    # Hidden columns are the client's text (sqlglot would write REGEXP_LIKE, COALESCE, ...).
    (
        "SELECT a FROM t ORDER BY s REGEXP 'x', IFNULL(b, 0) DESC, CONVERT(s USING latin1)",
        "SELECT a, s REGEXP 'x', IFNULL(b, 0), CONVERT(s USING latin1) FROM t "
        "ORDER BY 2, 3 DESC, 4",
    ),
    (
        "SELECT AVG( IFNULL(a, 1) ) AS q FROM t",
        "SELECT AVG( IFNULL(a, 1) ) AS q, SUM(IFNULL(a, 1)), COUNT(IFNULL(a, 1)) FROM t",
    ),
    ("SELECT a FROM t ORDER BY a -- the end", "SELECT a FROM t ORDER BY 1"),
    (
        "SELECT g FROM t GROUP BY g HAVING MAX(s REGEXP 'x') = 1 AND AVG(IFNULL(a, 0)) > 2",
        "SELECT g, MAX(s REGEXP 'x'), AVG(IFNULL(a, 0)), SUM(IFNULL(a, 0)), "
        "COUNT(IFNULL(a, 0)) FROM t GROUP BY g ORDER BY 1",
    ),
    # Joins and subqueries (routing decided they stay within a partition) pass through.
    (
        "SELECT t.a, u.b FROM t JOIN u ON u.id = t.id ORDER BY t.a, u.c LIMIT 3",
        "SELECT t.a, u.b, u.c FROM t JOIN u ON u.id = t.id ORDER BY 1, 3 LIMIT 3",
    ),
    (
        "SELECT x.a FROM (SELECT a FROM t ORDER BY a LIMIT 5) AS x ORDER BY x.a DESC",
        "SELECT x.a FROM (SELECT a FROM t ORDER BY a LIMIT 5) AS x ORDER BY 1 DESC",
    ),
    (
        "SELECT a, (SELECT MAX(b) FROM u WHERE u.id = t.id) AS mb FROM t ORDER BY mb",
        "SELECT a, (SELECT MAX(b) FROM u WHERE u.id = t.id) AS mb FROM t ORDER BY 2",
    ),
    ("SELECT a, ? FROM t WHERE b = ? ORDER BY c", "SELECT a, ?, c FROM t WHERE b = ? ORDER BY 3"),
]


@pytest.mark.parametrize(("sql", "expected"), REWRITES)
def test_rewrite(sql: str, expected: str) -> None:
    plan = plan_select(sql)
    assert isinstance(plan, MergePlan), plan
    assert plan.sql == expected


REFUSED = [
    ("SELECT COUNT(DISTINCT a) FROM t", "COUNT(DISTINCT"),
    ("SELECT SUM(a) + 1 FROM t", "expressions over aggregate"),
    ("SELECT a, ROW_NUMBER() OVER (ORDER BY a) FROM t", "window"),
    ("SELECT GROUP_CONCAT(a) FROM t", "GROUP_CONCAT"),
    ("SELECT STD(a) FROM t", "across partitions"),
    ("SELECT a FROM t UNION SELECT a FROM u", "UNION"),
    ("SELECT a FROM t LIMIT ?", "LIMIT with a parameter"),
    ("SELECT a FROM t LIMIT 99990, 20", "cap of 100000"),
    ("SELECT DISTINCT a FROM t ORDER BY b", "DISTINCT with ORDER BY"),
    ("SELECT g, COUNT(*) FROM t GROUP BY g WITH ROLLUP", "ROLLUP"),
    ("SELECT SQL_CALC_FOUND_ROWS a FROM t", "SQL_CALC_FOUND_ROWS"),
    ("SELECT * FROM t GROUP BY a", "SELECT *"),
    ("SELECT g FROM t GROUP BY g HAVING ABS(SUM(x)) > 1", "HAVING"),
    ("SELECT a FROM t; SELECT b FROM t", "several statements"),
    ("SELEC a FROM t", "cannot parse"),
    ("SELECT g FROM t GROUP BY g HAVING COUNT(*) > ?", "parameter (?) in HAVING"),
    ("SELECT a FROM t ORDER BY a + ?", "parameter (?) in ORDER"),
    ("SELECT AVG(a + ?) FROM t", "parameter (?) in an expression the proxy adds"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_refused(sql: str, reason: str) -> None:
    plan = plan_select(sql)
    assert isinstance(plan, Refusal), plan
    assert plan.errno == 1235 and plan.sqlstate == "42000"
    assert reason in plan.reason
    assert plan.message.startswith("This version of shardgate doesn't yet support")


def test_the_cap_is_configurable() -> None:
    assert isinstance(
        plan_select("SELECT a FROM t LIMIT 8, 3", MergeLimits(max_window=10)), Refusal
    )
    assert isinstance(
        plan_select("SELECT a FROM t LIMIT 7, 3", MergeLimits(max_window=10)), MergePlan
    )


def test_plan_operations() -> None:
    plan = plan_select("SELECT g, AVG(x) AS a FROM t GROUP BY g HAVING a > 2 ORDER BY a DESC")
    assert isinstance(plan, MergePlan)
    assert plan.visible == 2 and plan.hidden == 2
    assert plan.columns == (
        Column(Op.KEY),
        Column(Op.AVG, sum_column=2, count_column=3),
        Column(Op.SUM),
        Column(Op.COUNT),
    )
    assert plan.order == (SortKey(1, descending=True),)
    assert plan.partition_order == (SortKey(0),)
    assert plan.sort_after_merge and not plan.streamed
    assert plan.having == Binary(">", Ref(1), Lit(plan.having.right.value))  # type: ignore[union-attr]


def test_plans_are_cached_per_text() -> None:
    assert plan_select("SELECT a FROM t ORDER BY a") is plan_select("SELECT a FROM t ORDER BY a")


# ------------------------------------------------------------------------- comparisons


def _column(type_code: int = 253, charset: int = 45, flags: int = 0) -> ColumnDefinition:
    return ColumnDefinition(b"def", b"", b"", b"", b"c", b"", None, charset, 0, type_code, flags, 0)


def test_general_ci_is_case_and_accent_insensitive_with_pad_space() -> None:
    assert general_ci_key("abc") == general_ci_key("ÁBC") == general_ci_key("abc  ")
    assert general_ci_key("ß") == general_ci_key("s")
    assert general_ci_key("ø") != general_ci_key("o")  # Ø weighs itself in general_ci
    assert general_ci_key("😀") == general_ci_key("\U0001f601")  # above the BMP: U+FFFD
    assert general_ci_key("a\t") < general_ci_key("a") < general_ci_key("a b")
    assert general_ci_key("a \t") < general_ci_key("a")
    assert general_ci_key("") == general_ci_key("   ")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=12))
def test_general_ci_of_printable_ascii_is_the_weight_table(text: str) -> None:
    """The printable-ASCII shortcut (upper case) gives exactly the server's weights."""
    weights = "".join(chr(WEIGHTS.get(ord(c), ord(c))) for c in text)
    assert general_ci_key(text) == weights.rstrip(" ") + " "


def test_bin_orders_code_points_with_pad_space() -> None:
    assert unicode_bin_key("B") < unicode_bin_key("a")
    assert unicode_bin_key("a ") == unicode_bin_key("a")
    assert unicode_bin_key("ß") > unicode_bin_key("z")


def test_column_kinds_from_definitions() -> None:
    assert _column().kind is Kind.GENERAL_CI
    assert _column(flags=BINARY_FLAG).kind is Kind.UNICODE_BIN
    assert _column(charset=63, flags=BINARY_FLAG).kind is Kind.BINARY
    assert _column(charset=8).kind is Kind.UNSUPPORTED
    assert _column(type_code=3, charset=63).kind is Kind.INTEGER
    assert _column(type_code=246, charset=63).kind is Kind.DECIMAL
    assert _column(type_code=12, charset=63).kind is Kind.DATETIME
    assert not _column(flags=256).sortable  # ENUM


def test_nulls_first_ascending_last_descending() -> None:
    key = sort_key(_column(type_code=3, charset=63))
    values = [b"10", None, b"-3", b"2"]
    assert sorted(values, key=key) == [None, b"-3", b"2", b"10"]
    assert sorted(values, key=lambda v: Descending(key(v))) == [b"10", b"2", b"-3", None]


def test_numeric_temporal_orders() -> None:
    dec = sort_key(_column(type_code=246, charset=63))
    assert sorted([b"10.50", b"-2.00", b"9.99"], key=dec) == [b"-2.00", b"9.99", b"10.50"]
    time = sort_key(_column(type_code=11, charset=63))
    assert sorted([b"100:00:00", b"-01:00:00", b"09:30:00.5"], key=time) == [
        b"-01:00:00",
        b"09:30:00.5",
        b"100:00:00",
    ]


def test_column_definition_round_trip() -> None:
    column = ColumnDefinition(
        b"def", b"db", b"t_0001", b"t_0001", b"c", b"c", b"", 45, 48, 253, 0, 0
    )
    assert ColumnDefinition.parse(column.build()) == column
    renamed = column.renamed(b"logical", {b"t_0001": b"t"})
    assert (renamed.schema, renamed.table, renamed.org_table) == (b"logical", b"t", b"t")


# ----------------------------------------------------------------- merge of canned results


async def _canned(column: ColumnDefinition, rows: list[list[bytes | None]]) -> AsyncIterator[bytes]:
    yield build_column_count(1)
    yield column.build()
    yield build_eof()
    for row in rows:
        yield build_text_row(row)
    yield build_eof()


async def _merge(plan: MergePlan, parts: list[list[list[bytes | None]]]) -> list[bytes]:
    column = _column(type_code=3, charset=63)
    it = merge_text_results(plan, [_canned(column, p) for p in parts], capabilities=0)
    return [p async for p in it]


def test_k_way_merge_of_sorted_partitions_with_offset() -> None:
    plan = plan_select("SELECT a FROM t ORDER BY a DESC LIMIT 1, 4")
    assert isinstance(plan, MergePlan)
    out = asyncio.run(_merge(plan, [[[b"9"], [b"5"], [b"1"]], [[b"8"], [b"7"]], [], [[None]]]))
    assert out[3:-1] == [build_text_row([v]) for v in (b"8", b"7", b"5", b"1")]


def test_unsortable_column_is_an_error_before_any_row() -> None:
    plan = plan_select("SELECT a FROM t ORDER BY a")
    assert isinstance(plan, MergePlan)

    async def run() -> list[bytes]:
        enum = _column(flags=256)
        it = merge_text_results(plan, [_canned(enum, [[b"x"]])], capabilities=0)
        return [p async for p in it]

    out = asyncio.run(run())
    assert len(out) == 1 and out[0][:1] == b"\xff" and b"ordering or grouping" in out[0]


def test_explain_lists_the_steps() -> None:
    plan = plan_select("SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY n DESC LIMIT 2, 3")
    assert isinstance(plan, MergePlan)
    assert explain_merge(plan) == [
        "each partition: SELECT g, COUNT(*) AS n FROM t GROUP BY g ORDER BY 1",
        "merge: k-way on #1",
        "combine groups on #1: count(#2)",
        "sort the groups on #2 DESC (held in memory, capped)",
        "skip 2 rows, send 3",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1 + 0.2, "0.30000000000000004"),
        (1e15, "1e15"),
        (999999999999999.0, "999999999999999"),
        (2.0**53, "9.007199254740992e15"),
        (-2466877265410105.5, "-2466877265410105.5"),
        (1e-5, "0.00001"),
        (1e-15, "0.000000000000001"),
        (1.5e-16, "1.5e-16"),
        (-100.0, "-100"),
        (0.0, "0"),
    ],
)
def test_doubles_are_written_as_the_server_writes_them(value: float, text: str) -> None:
    """Checked against MariaDB 10.11 (``SELECT CAST(... AS DOUBLE)``) over 500 values."""
    assert format_double(value) == text
