"""Joins and subqueries on a sharded database (proxy/shard/joins.py through route.py): tables of
statements each partition can run on its own data (co-located, or with broadcast tables), and
of statements that look co-located but are not, refused with 1235 saying why.

Layout: D = 4 physical databases over s0 (0, 1) and s1 (2, 3);

* ``t`` ``DBPARTITION BY HASH(id)`` (int) and ``t2`` ``DBPARTITION BY HASH(tid)`` (bigint):
  co-located (integer keys hash by value, whatever the width);
* ``u`` and ``u2``: ``HASH(id)`` / ``HASH(uid)`` at both levels, ``TBPARTITIONS 2`` (g = |id|
  mod 8, db = g div 2, tables ``u_<g>``): co-located with each other, not with ``t``;
* ``h`` ``UNI_HASH(id)``; ``w`` ``HASH(name)`` (a string key); ``x`` ``HASH(id)`` over the
  databases, ``HASH(v)`` over 2 tables;
* ``b`` and ``c`` broadcast, ``s`` single.
"""

from __future__ import annotations

import pytest

from auth.errors import SqlError
from auth.model import KeyType, LogicalTable, ShardKey, TableRule, partition_layout
from proxy.shard.route import Layout, Route, route

INT = KeyType("int")
BIGINT = KeyType("bigint")
VARCHAR = KeyType("varchar")


def _sharded(column: str, type_: KeyType, tables: int = 1, fn: str = "HASH") -> TableRule:
    key = ShardKey(fn, column, type_)  # type: ignore[arg-type]
    if tables == 1:
        return TableRule("sharded", key)
    return TableRule("sharded", key, key, tables)


def _table(name: str, rule: TableRule, columns: str) -> LogicalTable:
    return LogicalTable(name, rule, f"CREATE TABLE {name} ({columns})")


TABLES = {
    "t": _table("t", _sharded("id", INT), "id int, name varchar(10), bid int"),
    "t2": _table("t2", _sharded("tid", BIGINT), "tid bigint, id int, amount int"),
    "t3": _table("t3", _sharded("id", BIGINT), "id bigint, bid int"),
    "u": _table("u", _sharded("id", INT, 2), "id int, v int"),
    "u2": _table("u2", _sharded("uid", INT, 2), "uid int, w int"),
    "h": _table("h", _sharded("id", INT, fn="UNI_HASH"), "id int, z int"),
    "w": _table("w", _sharded("name", VARCHAR), "name varchar(10), id int"),
    "x": _table(
        "x",
        TableRule("sharded", ShardKey("HASH", "id", INT), ShardKey("HASH", "v", INT), 2),
        "id int, v int",
    ),
    "b": _table("b", TableRule("broadcast"), "bid int, label varchar(10)"),
    "c": _table("c", TableRule("broadcast"), "cid int, note varchar(10)"),
    "s": _table("s", TableRule("single"), "sid int"),
}
LAYOUT = Layout("db", partition_layout("db", ["s0", "s1"], 4), TABLES)

# Statements every partition answers on its own data: (statement, partitions reached).
ALLOWED: list[tuple[str, int]] = [
    ("SELECT * FROM t JOIN t2 ON t.id = t2.tid", 4),
    ("SELECT * FROM t JOIN t2 ON t2.tid = t.id AND t2.amount > 3", 4),
    ("SELECT * FROM t, t2 WHERE t.id = t2.tid AND t.name = 'a'", 4),
    ("SELECT * FROM t a JOIN t2 b ON (a.id = b.tid) WHERE a.id = 5", 1),
    ("SELECT * FROM t a JOIN t2 b ON a.id = b.tid WHERE a.id IN (1, 2)", 2),
    ("SELECT * FROM t JOIN t2 ON t.id = t2.tid WHERE t2.tid = 5", 1),
    ("SELECT * FROM t LEFT JOIN t2 ON t.id = t2.tid WHERE t2.tid IN (5, 6)", 2),
    ("SELECT * FROM t LEFT JOIN t2 ON t.id = t2.tid WHERE t2.tid = 5 OR t2.tid IS NULL", 4),
    ("SELECT * FROM b JOIN t ON b.bid = t.bid WHERE t.id = 5", 1),
    # ``id`` here is t2's own column (its key is tid), not t's in the subquery: no routing.
    ("SELECT (SELECT MAX(name) FROM t WHERE t.id = t2.tid) FROM t2 WHERE id = 5", 4),
    ("SELECT * FROM t2 WHERE EXISTS (SELECT 1 FROM t WHERE t.id = t2.tid AND t.id = 5)", 4),
    ("SELECT * FROM t2 WHERE EXISTS (SELECT 1 FROM t WHERE t.id = t2.tid) AND tid = 5", 1),
    ("SELECT * FROM t JOIN t3 USING (id)", 4),
    ("SELECT * FROM t JOIN t3 USING (id) WHERE id = 6", 1),
    ("SELECT * FROM t LEFT JOIN t2 ON t.id = t2.tid", 4),
    ("SELECT * FROM t RIGHT JOIN t2 ON t2.tid = t.id", 4),
    ("SELECT * FROM t LEFT JOIN t2 ON t.id = t2.tid LEFT JOIN b ON b.bid = t.bid", 4),
    ("SELECT * FROM t JOIN b ON b.bid = t.bid", 4),
    ("SELECT * FROM b JOIN t ON b.bid = t.bid", 4),
    ("SELECT * FROM t LEFT JOIN b ON b.bid = t.bid", 4),
    ("SELECT * FROM b RIGHT JOIN t ON b.bid = t.bid", 4),
    ("SELECT * FROM t, b, c", 4),
    ("SELECT * FROM u JOIN u2 ON u.id = u2.uid", 8),
    ("SELECT * FROM u JOIN u2 ON u.id = u2.uid WHERE u.id = 3", 1),
    ("SELECT * FROM u a JOIN u b ON a.id = b.id", 8),
    ("SELECT * FROM t WHERE id IN (SELECT tid FROM t2)", 4),
    ("SELECT * FROM t WHERE t.id IN (SELECT t2.tid FROM t2 WHERE t2.amount > 1) AND name > ''", 4),
    ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.tid = t.id)", 4),
    ("SELECT * FROM t WHERE NOT EXISTS (SELECT 1 FROM t2 WHERE t2.tid = t.id)", 4),
    ("SELECT id, (SELECT SUM(amount) FROM t2 WHERE t2.tid = t.id) FROM t", 4),
    ("SELECT * FROM t WHERE id NOT IN (SELECT tid FROM t2 WHERE t2.tid = t.id)", 4),
    ("SELECT * FROM t WHERE bid IN (SELECT bid FROM b WHERE label = 'x')", 4),
    ("SELECT * FROM t WHERE bid NOT IN (SELECT bid FROM b)", 4),
    ("SELECT * FROM t JOIN (SELECT bid FROM b) d ON d.bid = t.bid", 4),
    ("SELECT t.name, COUNT(*) FROM t JOIN t2 ON t.id = t2.tid GROUP BY t.name", 4),
    ("SELECT * FROM h a JOIN h b ON a.id = b.id", 4),
    (
        "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.tid = t.id AND EXISTS"
        " (SELECT 1 FROM t3 WHERE t3.id = t2.tid))",
        4,
    ),
    ("SELECT * FROM t JOIN t2 ON t.id = t2.tid JOIN t3 ON t3.id = t2.tid", 4),
    ("SELECT t.id FROM t FORCE INDEX (PRIMARY) JOIN b USE INDEX (x) ON b.bid = t.bid", 4),
    # A derived table of one partition's rows each (nothing combining rows in it).
    ("SELECT * FROM (SELECT * FROM t) d", 4),
    ("SELECT COUNT(*) FROM (SELECT t.id AS col1 FROM t WHERE t.name > 'a') subquery", 4),
    ("SELECT * FROM (SELECT t.id, t2.amount FROM t JOIN t2 ON t.id = t2.tid) d", 4),
    ("SELECT * FROM (SELECT * FROM (SELECT id, name FROM t WHERE id > 0) e) d", 4),
]

# Statements that look co-located but are not (or are not understood): (statement, why).
REFUSED: list[tuple[str, str]] = [
    ("SELECT * FROM t JOIN t2 ON t.name = t2.amount", "t and t2 not on their shard keys"),
    ("SELECT * FROM t JOIN t2 ON t.id = t2.id", "t and t2 not on their shard keys"),
    ("SELECT * FROM t JOIN t2 USING (id)", "t and t2 not on their shard keys"),
    ("SELECT * FROM t JOIN b USING (bid) JOIN t3 USING (bid)", "t and t3 not on their"),
    ("SELECT * FROM t JOIN t2 ON t.id = t2.tid OR t.name = 'x'", "not on their shard keys"),
    ("SELECT * FROM t, t2 WHERE t.id = t2.tid OR t2.tid = 1", "not on their shard keys"),
    ("SELECT * FROM t JOIN t2 ON t.id <=> t2.tid", "not on their shard keys"),
    ("SELECT * FROM t JOIN t2 ON t.id + 0 = t2.tid", "not on their shard keys"),
    ("SELECT * FROM t JOIN t2", "not on their shard keys"),
    # LEFT JOIN with the equality only in the WHERE: refused (conservatively).
    ("SELECT * FROM t LEFT JOIN t2 ON t.name = 'a' WHERE t.id = t2.tid", "LEFT JOIN of sharded"),
    ("SELECT * FROM t, t2 LEFT JOIN b ON b.bid = t2.id WHERE t.id = t2.tid", "not on their"),
    # A broadcast (or a non-sharded side) preserved by an outer join of a sharded table.
    ("SELECT * FROM b LEFT JOIN t ON b.bid = t.bid", "LEFT JOIN of sharded table t to tables"),
    ("SELECT * FROM t RIGHT JOIN b ON b.bid = t.bid", "RIGHT JOIN of b to sharded table t"),
    ("SELECT * FROM t RIGHT JOIN t2 ON t2.amount = t.bid", "RIGHT JOIN of t2"),
    # Different partitioning.
    ("SELECT * FROM t JOIN u ON t.id = u.id", "TBPARTITIONS 1 and 2"),
    ("SELECT * FROM t JOIN h ON t.id = h.id", "HASH and UNI_HASH"),
    ("SELECT * FROM t JOIN w ON t.id = w.id", "w has a string shard key"),
    ("SELECT * FROM w a JOIN w b ON a.name = b.name", "string shard key"),
    ("SELECT * FROM x a JOIN x b ON a.id = b.id", "on another column or function"),
    ("SELECT * FROM t WHERE id IN (SELECT id FROM u)", "u and t with different partitioning"),
    # Single tables live in physical database 0 only.
    ("SELECT * FROM t JOIN s ON s.sid = t.id", "single table s"),
    ("SELECT * FROM t WHERE id IN (SELECT sid FROM s)", "single table s"),
    # Subqueries that see other partitions' rows.
    ("SELECT * FROM t WHERE id IN (SELECT MAX(tid) FROM t2)", "not tied to the shard key"),
    ("SELECT * FROM t WHERE id NOT IN (SELECT tid FROM t2)", "not tied to the shard key"),
    ("SELECT * FROM t WHERE bid IN (SELECT tid FROM t2)", "not tied to the shard key"),
    ("SELECT t.id IN (SELECT tid FROM t2) FROM t", "not tied to the shard key"),
    ("SELECT * FROM t WHERE id IN (SELECT tid FROM t2) OR bid = 1", "not tied to the shard key"),
    ("SELECT * FROM t WHERE id > (SELECT COUNT(*) FROM t2)", "not tied to the shard key"),
    ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.tid = t.bid)", "not tied"),
    ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.tid = t.id OR 1)", "not tied"),
    ("SELECT * FROM b WHERE EXISTS (SELECT 1 FROM t WHERE t.bid = b.bid)", "from no sharded"),
    ("SELECT * FROM (SELECT DISTINCT name FROM t) d", "a derived table on sharded tables with"),
    ("SELECT * FROM (SELECT id FROM t LIMIT 3) d", "a derived table on sharded tables with"),
    ("SELECT * FROM (SELECT id, ROW_NUMBER() OVER () FROM t) d", "window functions"),
    ("SELECT * FROM (SELECT id FROM t) d JOIN b ON b.bid = d.id", "joined with other tables"),
    ("SELECT * FROM t WHERE id IN (SELECT id FROM (SELECT id FROM t2) d)", "in a subquery"),
    ("SELECT * FROM (SELECT t.id FROM t JOIN t2 ON t.name = t2.amount) d", "not on their"),
    (
        "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM t2 WHERE t2.tid = t.id AND EXISTS"
        " (SELECT 1 FROM t3 WHERE t3.bid = t2.tid))",
        "subquery on sharded table t3 not tied",
    ),
    ("SELECT * FROM t JOIN t2 ON t.id = t2.tid JOIN t3 ON t3.bid = t2.tid", "t and t3 not on"),
    ("SELECT * FROM t JOIN b ON b.bid = t.id JOIN t2 ON t2.tid = b.bid", "t and t2 not on"),
    ("SELECT * FROM t JOIN (SELECT * FROM t2) d ON d.tid = t.id", "derived table"),
    ("SELECT * FROM t WHERE id IN (SELECT tid FROM t2 UNION SELECT bid FROM b)", "UNION"),
    ("SELECT * FROM t NATURAL JOIN t2", "NATURAL JOIN"),
    ("SELECT * FROM t JOIN other ON other.id = t.id", "table other"),
    ("SELECT * FROM t JOIN otherdb.t2 ON otherdb.t2.tid = t.id", "table t2"),
]


@pytest.mark.parametrize(("sql", "reached"), ALLOWED)
def test_co_located_statements_run_per_partition(sql: str, reached: int) -> None:
    found = route(sql, LAYOUT)
    assert isinstance(found, Route)
    assert len(found.targets) == reached


@pytest.mark.parametrize(("sql", "why"), REFUSED)
def test_not_co_located_statements_are_refused(sql: str, why: str) -> None:
    with pytest.raises(SqlError) as caught:
        route(sql, LAYOUT)
    assert caught.value.errno == 1235
    assert why in caught.value.message


def test_each_partition_joins_its_own_physical_tables() -> None:
    found = route("SELECT * FROM u JOIN u2 ON u.id = u2.uid JOIN b ON b.bid = u.v", LAYOUT)
    assert isinstance(found, Route) and found.kind == "scatter"
    assert [(t.partition, t.sql) for t in found.targets] == [
        (g // 2, f"SELECT * FROM `u_{g:02d}` AS `u` JOIN `u2_{g:02d}` AS `u2` ON u.id ="
         " u2.uid JOIN b ON b.bid = u.v")
        for g in range(8)
    ]  # fmt: skip
    # Routed by the key of either table: u.id = 11 -> g = 3 (physical database 1).
    routed = route("SELECT * FROM u JOIN u2 ON u.id = u2.uid WHERE u.id = 11", LAYOUT)
    assert isinstance(routed, Route) and routed.kind == "routed"
    assert [(t.partition, t.sql) for t in routed.targets] == [
        (1, "SELECT * FROM `u_03` AS `u` JOIN `u2_03` AS `u2` ON u.id = u2.uid WHERE u.id = 11")
    ]


def test_qualifiers_stay_as_written_where_they_can() -> None:
    # An alias given by the client is kept; a qualifier naming the database, or PARTITION
    # after the table, keeps the physical names at every mention.
    cases = {
        "SELECT MIN(x.v) FROM u x WHERE x.id = 3": "SELECT MIN(x.v) FROM `u_03` x WHERE x.id = 3",
        "SELECT db.u.v FROM u WHERE id = 3": "SELECT `db_0001`.`u_03`.v FROM `u_03` WHERE id = 3",
        "SELECT u.v FROM u PARTITION (p0) WHERE id = 3": (
            "SELECT `u_03`.v FROM `u_03` PARTITION (p0) WHERE id = 3"
        ),
    }
    for sql, physical in cases.items():
        found = route(sql, LAYOUT)
        assert isinstance(found, Route)
        assert [t.sql for t in found.targets] == [physical]


def test_a_joins_merge_says_why() -> None:
    found = route("SELECT t.name FROM t JOIN t2 ON t.id = t2.tid ORDER BY t2.amount", LAYOUT)
    assert isinstance(found, Route) and found.merge == "ORDER BY"


def test_an_alias_is_the_only_qualifier_of_its_table() -> None:
    # ``t`` here names the broadcast table b: no routing on it.
    found = route("SELECT * FROM t AS x JOIN b AS t ON t.bid = x.bid WHERE t.bid = 1", LAYOUT)
    assert isinstance(found, Route) and len(found.targets) == 4
