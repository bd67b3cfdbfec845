"""What the merge differential tests share: a table of many column types with NULLs, its
generated rows (seeded), and hypothesis strategies of SELECTs on it that need a merge across
partitions: ``(sql, ordered, grouped)`` -- ``ordered`` when the query defines the order of
every row (ties broken by the unique ``id``), ``grouped`` when values are a group's
representative (compared as the server considers them equal)."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

TABLE = """
CREATE TABLE t (
  id INT NOT NULL PRIMARY KEY,
  i INT NULL,
  s VARCHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci NULL,
  sb VARCHAR(12) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
  d DATETIME NULL,
  m DECIMAL(10,2) NULL,
  u BIGINT UNSIGNED NOT NULL,
  tm TIME NULL,
  dt DATE NULL,
  f DOUBLE NULL,
  r FLOAT NULL
)
"""

ALPHABET = ["a", "A", "á", "b", "B", " ", "ß", "s", "z", "Ø", "ø", "é", "E", "\t", "😀"]


def random_rows(seed: int, count: int) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)

    def maybe(value: Any) -> Any:
        return None if rnd.random() < 0.15 else value

    def text() -> str:
        return "".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(0, 3)))

    rows = []
    for n in range(1, count + 1):
        rows.append(
            (
                n,
                maybe(rnd.randint(-5, 5)),
                maybe(text()),
                maybe(text()),
                maybe(
                    f"2024-0{rnd.randint(1, 3)}-{rnd.randint(10, 12)} 0{rnd.randint(0, 2)}:00:00"
                ),
                maybe(Decimal(rnd.randint(-20000, 20000)) / 100),
                rnd.randint(0, 2**64 - 1) if rnd.random() < 0.3 else rnd.randint(0, 3),
                maybe(f"{rnd.choice(['-', ''])}{rnd.randint(0, 120)}:{rnd.randint(0, 59):02}:00"),
                maybe(f"202{rnd.randint(3, 5)}-0{rnd.randint(1, 2)}-01"),
                # Doubles whose sums are exact in any order (SUM of doubles depends on it).
                maybe(rnd.randint(-4000, 4000) / 4 * 10 ** rnd.choice([0, 0, 3, 9])),
                maybe(rnd.choice([0.1, -1.5, 3.25, 1e10, 2.5e-3, 7.0])),
            )
        )
    return rows


COLUMNS = ["id", "i", "s", "sb", "d", "m", "u", "tm", "dt", "f", "r"]
GROUPABLE = ["i", "s", "sb", "d", "m", "tm", "dt", "f", "r"]
FILTERS = [
    "",
    "WHERE i > 0",
    "WHERE s LIKE 'a%'",
    "WHERE m IS NULL OR m > 10",
    "WHERE d >= '2024-02-01'",
    "WHERE id < 0",  # nothing
    "WHERE sb IS NOT NULL AND i <> 2",
    "WHERE tm < '10:00:00' OR dt = '2024-01-01'",
]
AGGREGATES = [
    "COUNT(*)",
    "COUNT(i)",
    "COUNT(s)",
    "SUM(i)",
    "SUM(m)",
    "SUM(u)",
    "MIN(i)",
    "MAX(i)",
    "MIN(s)",
    "MAX(s)",
    "MIN(sb)",
    "MAX(sb)",
    "MIN(d)",
    "MAX(d)",
    "MIN(m)",
    "MAX(m)",
    "MIN(tm)",
    "MAX(tm)",
    "MAX(dt)",
    "SUM(f)",
    "AVG(f)",
    "MIN(f)",
    "MAX(r)",
    "AVG(i)",
    "AVG(m)",
    "AVG(u)",
]
HAVINGS = [
    "COUNT(*) > 2",
    "SUM(i) >= 0",
    "MIN(s) < 'b'",
    "AVG(m) > 0 OR COUNT(*) = 1",
    "MAX(d) IS NOT NULL",
    "NOT (COUNT(i) BETWEEN 1 AND 3)",
    "MAX(d) > '2024-02-11'",
    "MIN(tm) < '-10:00:00' OR MAX(dt) <= '2024-01-01'",
    "MIN(sb) IN ('a', 'B', '') OR MAX(s) = 'z'",
]
direction = st.sampled_from(["", " DESC", " ASC"])


@st.composite
def plain_query(draw: st.DrawFn) -> tuple[str, bool, bool]:
    selected = draw(st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=4, unique=True))
    keys = draw(st.lists(st.sampled_from(COLUMNS[1:]), max_size=3, unique=True))
    order = [f"{k}{draw(direction)}" for k in keys]
    ordered = draw(st.booleans())
    sql = f"SELECT {', '.join(selected)} FROM t {draw(st.sampled_from(FILTERS))}"
    if ordered:
        sql += " ORDER BY " + ", ".join([*order, f"id{draw(direction)}"])
        if draw(st.booleans()):
            sql += f" LIMIT {draw(st.integers(0, 30))}, {draw(st.integers(0, 40))}"
    return sql, ordered, False


@st.composite
def aggregate_query(draw: st.DrawFn) -> tuple[str, bool, bool]:
    aggs = draw(st.lists(st.sampled_from(AGGREGATES), min_size=1, max_size=4))
    sql = f"SELECT {', '.join(aggs)} FROM t {draw(st.sampled_from(FILTERS))}"
    return sql, True, True


@st.composite
def group_query(draw: st.DrawFn) -> tuple[str, bool, bool]:
    keys = draw(st.lists(st.sampled_from(GROUPABLE), min_size=1, max_size=2, unique=True))
    shown = [k for k in keys if draw(st.booleans())] or keys[:1]
    aggs = draw(st.lists(st.sampled_from(AGGREGATES), min_size=1, max_size=3))
    select = [*shown, *(f"{a} AS a{n}" for n, a in enumerate(aggs))]
    sql = f"SELECT {', '.join(select)} FROM t {draw(st.sampled_from(FILTERS))} GROUP BY "
    sql += ", ".join(keys)
    if draw(st.booleans()):
        sql += f" HAVING {draw(st.sampled_from(HAVINGS))}"
    how = draw(st.sampled_from(["none", "keys", "aggregate"]))
    total = True
    if how == "keys":
        sql += " ORDER BY " + ", ".join(f"{k}{draw(direction)}" for k in keys)
    elif how == "aggregate":
        sql += f" ORDER BY a0{draw(direction)}, " + ", ".join(f"{k}{draw(direction)}" for k in keys)
    else:
        total = False
    if total and draw(st.booleans()):
        sql += f" LIMIT {draw(st.integers(0, 5))}, {draw(st.integers(0, 10))}"
    return sql, how != "none", True


@st.composite
def distinct_query(draw: st.DrawFn) -> tuple[str, bool, bool]:
    cols = draw(st.lists(st.sampled_from(GROUPABLE), min_size=1, max_size=2, unique=True))
    sql = f"SELECT DISTINCT {', '.join(cols)} FROM t {draw(st.sampled_from(FILTERS))}"
    ordered = draw(st.booleans())
    if ordered:
        sql += " ORDER BY " + ", ".join(f"{c}{draw(direction)}" for c in cols)
        if draw(st.booleans()):
            sql += f" LIMIT {draw(st.integers(0, 5))}, {draw(st.integers(0, 10))}"
    return sql, ordered, True


queries = st.one_of(plain_query(), aggregate_query(), group_query(), distinct_query())
