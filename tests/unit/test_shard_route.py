"""Routing (proxy/shard/route.py): a table of (tables, statement) -> targets.

The expected partitions are computed by hand from sharding.md's formulas (not by calling
placement.py): with D = 4 physical databases over s0 (0, 1) and s1 (2, 3),

* ``t`` ``DBPARTITION BY HASH(id)``: db = |id| mod 4;
* ``u`` ``... TBPARTITION BY HASH(id) TBPARTITIONS 2``: g = |id| mod 8, db = g div 2, table
  ``u_<g>``;
* ``w`` ``DBPARTITION BY HASH(name)`` (a string key): db = |String.hashCode(name)| mod 4, with
  ``"a".hashCode() = 97`` (db 1), ``"ab".hashCode() = 97*31 + 98 = 3105`` (db 1),
  ``"b".hashCode() = 98`` (db 2);
* ``o`` ``DBPARTITION BY HASH(buyer)`` with an AUTO_INCREMENT ``id`` that is not its key:
  db = |buyer| mod 4;
* ``b`` broadcast, ``s`` single.
"""

from __future__ import annotations

import pytest

from auth.errors import SqlError
from auth.model import KeyType, LogicalTable, ShardKey, TableRule, partition_layout
from proxy.shard.metadata import needs_statistics
from proxy.shard.route import Layout, NeedsSequence, Route, hinted, route
from proxy.sql.lexer import LexMode

INT = KeyType("int")
VARCHAR = KeyType("varchar")


def _table(name: str, rule: TableRule, columns: str, clause: str) -> LogicalTable:
    return LogicalTable(name, rule, f"CREATE TABLE {name} ({columns}){clause}")


TABLES = {
    "t": _table(
        "t",
        TableRule("sharded", ShardKey("HASH", "id", INT)),
        "id int, name varchar(10)",
        " DBPARTITION BY HASH(id)",
    ),
    "u": _table(
        "u",
        TableRule("sharded", ShardKey("HASH", "id", INT), ShardKey("HASH", "id", INT), 2),
        "id int auto_increment primary key, v int",
        " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
    ),
    "w": _table(
        "w",
        TableRule("sharded", ShardKey("HASH", "name", VARCHAR)),
        "name varchar(10), v int",
        " DBPARTITION BY HASH(name)",
    ),
    "o": _table(
        "o",
        TableRule("sharded", ShardKey("HASH", "buyer", INT)),
        "id bigint auto_increment primary key, buyer int, v int",
        " DBPARTITION BY HASH(buyer)",
    ),
    "b": _table("b", TableRule("broadcast"), "id int, name varchar(10)", " BROADCAST"),
    "s": _table("s", TableRule("single"), "id int, x int, t int, u int", ""),
}
LAYOUT = Layout("db", partition_layout("db", ["s0", "s1"], 4), TABLES)

DUP = "ON DUPLICATE KEY UPDATE v = `{}`.v + 1"

# (statement, kind, [(partition, physical statement), ...])
CASES: list[tuple[str, str, list[tuple[int, str]]]] = [
    ("SELECT * FROM t WHERE id = 5", "routed", [(1, "SELECT * FROM t WHERE id = 5")]),
    ("SELECT * FROM t WHERE id = -6", "routed", [(2, "SELECT * FROM t WHERE id = -6")]),
    ("SELECT * FROM t WHERE 7 = id", "routed", [(3, "SELECT * FROM t WHERE 7 = id")]),
    ("SELECT * FROM t WHERE id = '5'", "routed", [(1, "SELECT * FROM t WHERE id = '5'")]),
    (
        "SELECT * FROM t WHERE id IN (4, 8, 1)",
        "routed",
        [
            (0, "SELECT * FROM t WHERE id IN (4, 8, 1)"),
            (1, "SELECT * FROM t WHERE id IN (4, 8, 1)"),
        ],
    ),
    (
        "SELECT name FROM t WHERE name = 'x' AND (id = 2 OR id = 3)",
        "routed",
        [
            (2, "SELECT name FROM t WHERE name = 'x' AND (id = 2 OR id = 3)"),
            (3, "SELECT name FROM t WHERE name = 'x' AND (id = 2 OR id = 3)"),
        ],
    ),
    (
        "SELECT * FROM t x WHERE x.id BETWEEN 1 AND 3 AND x.id = 4",
        "routed",
        [(0, "SELECT * FROM t x WHERE x.id BETWEEN 1 AND 3 AND x.id = 4")],
    ),
    ("SELECT * FROM t", "scatter", [(p, "SELECT * FROM t") for p in range(4)]),
    (
        "SELECT * FROM t WHERE id = 1 OR name = 'x'",
        "scatter",
        [(p, "SELECT * FROM t WHERE id = 1 OR name = 'x'") for p in range(4)],
    ),
    (
        "SELECT * FROM t WHERE NOT id = 1",
        "scatter",
        [(p, "SELECT * FROM t WHERE NOT id = 1") for p in range(4)],
    ),
    (
        "SELECT * FROM t WHERE id = 1.5",
        "scatter",
        [(p, "SELECT * FROM t WHERE id = 1.5") for p in range(4)],
    ),
    # Split tables: the physical name at every mention, comments kept.
    (
        "SELECT u.v FROM u WHERE id = 3 /* hint */",
        "routed",
        [(1, "SELECT u.v FROM `u_03` AS `u` WHERE id = 3 /* hint */")],
    ),
    (
        "SELECT * FROM db.u WHERE id = 7 OR id = 8",
        "routed",
        [
            (0, "SELECT * FROM `db_0000`.`u_00` AS `u` WHERE id = 7 OR id = 8"),
            (3, "SELECT * FROM `db_0003`.`u_07` AS `u` WHERE id = 7 OR id = 8"),
        ],
    ),
    (
        "SELECT * FROM u",
        "scatter",
        [(g // 2, f"SELECT * FROM `u_0{g}` AS `u`") for g in range(8)],
    ),
    ("SELECT * FROM w WHERE name = 'a'", "routed", [(1, "SELECT * FROM w WHERE name = 'a'")]),
    (
        "SELECT * FROM w WHERE name IN ('ab', 'b')",
        "routed",
        [
            (1, "SELECT * FROM w WHERE name IN ('ab', 'b')"),
            (2, "SELECT * FROM w WHERE name IN ('ab', 'b')"),
        ],
    ),
    # A number compared with a string column is compared as a double: every partition.
    (
        "SELECT * FROM w WHERE name = 5",
        "scatter",
        [(p, "SELECT * FROM w WHERE name = 5") for p in range(4)],
    ),
    # Broadcast tables: reads from copy 0, writes to every copy, joined with a sharded table.
    ("SELECT * FROM b", "copy", [(0, "SELECT * FROM b")]),
    (
        "UPDATE b SET name = 'y' WHERE id = 1",
        "broadcast",
        [(p, "UPDATE b SET name = 'y' WHERE id = 1") for p in range(4)],
    ),
    (
        "INSERT INTO b VALUES (1, 'x')",
        "broadcast",
        [(p, "INSERT INTO b VALUES (1, 'x')") for p in range(4)],
    ),
    (
        "SELECT * FROM t JOIN b ON t.id = b.id WHERE t.id = 9",
        "routed",
        [(1, "SELECT * FROM t JOIN b ON t.id = b.id WHERE t.id = 9")],
    ),
    ("SELECT * FROM s JOIN b USING (id)", "copy", [(0, "SELECT * FROM s JOIN b USING (id)")]),
    # Writes.
    (
        "INSERT INTO t (id, name) VALUES (1,'a'),(2,'b'),(3,'c'),(5,'e')",
        "routed",
        [
            (1, "INSERT INTO t (id, name) VALUES (1,'a'), (5,'e')"),
            (2, "INSERT INTO t (id, name) VALUES (2,'b')"),
            (3, "INSERT INTO t (id, name) VALUES (3,'c')"),
        ],
    ),
    ("INSERT INTO t VALUES (4, 'x')", "routed", [(0, "INSERT INTO t VALUES (4, 'x')")]),
    (
        "INSERT INTO db.u (id, v) VALUES (1,1),(2,2) ON DUPLICATE KEY UPDATE v = u.v + 1",
        "routed",
        [
            (
                0,
                "INSERT INTO `db_0000`.`u_01` (id, v) VALUES (1,1) " + DUP.format("u_01"),
            ),
            (
                1,
                "INSERT INTO `db_0001`.`u_02` (id, v) VALUES (2,2) " + DUP.format("u_02"),
            ),
        ],
    ),
    ("DELETE FROM u WHERE id = 3", "routed", [(1, "DELETE FROM `u_03` WHERE id = 3")]),
    (
        "UPDATE t SET name = 'z' WHERE id = 6",
        "routed",
        [(2, "UPDATE t SET name = 'z' WHERE id = 6")],
    ),
    ("DELETE FROM t", "scatter", [(p, "DELETE FROM t") for p in range(4)]),
    # About the definition: the first physical table.
    ("DESCRIBE u", "copy", [(0, "DESCRIBE `u_00`")]),
    ("SHOW COLUMNS FROM t", "copy", [(0, "SHOW COLUMNS FROM t")]),
]

REFUSED: list[tuple[str, int, str]] = [
    ("SELECT * FROM t JOIN u ON t.id = u.id", 1235, "t and u with different partitioning"),
    ("DELETE FROM t WHERE id IN (SELECT id FROM t) LIMIT 1", 1235, "named more than once"),
    ("UPDATE t SET name = 'x' WHERE name IN (SELECT name FROM t)", 1235, "not tied to the shard"),
    ("INSERT INTO u (v) VALUES (1) RETURNING v", 1235, "anything but its AUTO_INCREMENT column"),
    (
        "DELETE FROM t WHERE id IN (SELECT 1 FROM information_schema.tables)",
        1235,
        "sharded table t and table information_schema.tables",
    ),
    (
        "UPDATE t, other.x SET t.name = 'q' WHERE t.id = 1",
        1235,
        "sharded table t and table other.x",
    ),
    (
        "UPDATE b SET name = (SELECT MAX(n) FROM nowhere)",
        1235,
        "broadcast table b and table nowhere",
    ),
    # an INSERT reading a table the layout does not hold: each partition (copy) reads its own
    (
        "INSERT INTO t VALUES (1, (SELECT table_schema FROM information_schema.tables))",
        1235,
        "sharded table t and table information_schema.tables",
    ),
    (
        "REPLACE INTO t VALUES (1, 'a') , (2, EXISTS (SELECT 1 FROM other.x))",
        1235,
        "sharded table t and table other.x",
    ),
    (
        "INSERT INTO t VALUES (1, 'a') ON DUPLICATE KEY UPDATE name = (SELECT MAX(n) FROM q)",
        1235,
        "sharded table t and table q",
    ),
    (
        "INSERT INTO b VALUES (1, (SELECT COUNT(*) FROM information_schema.schemata))",
        1235,
        "broadcast table b and table information_schema.schemata",
    ),
    ("SELECT * FROM t JOIN s USING (id)", 1235, "single table s"),
    ("UPDATE t SET id = 3 WHERE id = 1", 1235, "UPDATE of the shard key"),
    ("DELETE FROM t WHERE name = 'x' LIMIT 1", 1235, "DELETE with LIMIT"),
    ("INSERT INTO t SET id = 1", 1235, "INSERT ... SET"),
    ("INSERT INTO t (id) SELECT id FROM b", 1235, "reading other tables"),
    ("INSERT INTO t (name) VALUES ('x')", 1235, "without its shard key id"),
    ("INSERT INTO t (id, name) VALUES (1 + 1, 'x')", 1235, "is not a literal"),
    ("INSERT INTO t (id, name) VALUES (1, 'x') ON DUPLICATE KEY UPDATE id = 2", 1235, "shard key"),
    ("SELECT * FROM u_01", 1146, "Table 'db.u_01' doesn't exist"),
    ("SELECT * FROM t WHERE id = ?", 1235, "parameters"),
    ("SELECT * FROM t WHERE id = @id", 1235, "user variables"),
    ("ALTER TABLE t ADD COLUMN c int", 1235, "ALTER"),
    ("SELECT * FROM u JOIN b ON u.id = b.id WHERE b.u = 1", 1235, "the name u for something"),
    ("SELECT * FROM b AS u JOIN u AS x ON u.id = x.id", 1235, "an alias named like table u"),
]


def _shown(found: Route | NeedsSequence | None) -> tuple[str, list[tuple[int, str]]]:
    assert isinstance(found, Route)
    return found.kind, [(target.partition, target.sql) for target in found.targets]


@pytest.mark.parametrize(("sql", "kind", "targets"), CASES)
def test_routes(sql: str, kind: str, targets: list[tuple[int, str]]) -> None:
    assert _shown(route(sql, LAYOUT)) == (kind, targets)


@pytest.mark.parametrize(("sql", "errno", "text"), REFUSED)
def test_refusals(sql: str, errno: int, text: str) -> None:
    with pytest.raises(SqlError) as caught:
        route(sql, LAYOUT)
    assert caught.value.errno == errno
    assert text in caught.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM s",
        "SELECT 1",
        "INSERT INTO s VALUES (1, 2, 3, 4)",
        "SELECT t, u FROM s WHERE t IN (1, 2)",
        "SELECT s.u FROM s",
    ],
)
def test_unsharded_statements_stay_on_database_0(sql: str) -> None:
    assert route(sql, LAYOUT) is None


def test_insert_takes_the_sequence() -> None:
    sql = "INSERT INTO u (v) VALUES (1),(2)"
    assert route(sql, LAYOUT) == NeedsSequence("AUTO_SEQ_u", 2)
    found = route(sql, LAYOUT, sequence_values=[100001, 100002])
    assert isinstance(found, Route)
    # 100001 mod 8 = 1 (db 0, u_01); 100002 mod 8 = 2 (db 1, u_02)
    assert _shown(found) == (
        "routed",
        [
            (0, "INSERT INTO `u_01` (v, `id`) VALUES (1, 100001)"),
            (1, "INSERT INTO `u_02` (v, `id`) VALUES (2, 100002)"),
        ],
    )
    assert found.sequence_values == (100001, 100002)


def test_insert_returning_is_answered_by_the_proxy_row_by_row() -> None:
    # Django on MariaDB 10.5+: the partitions run the rows without the clause; the proxy
    # answers the ids in the statement's order (the given one for a row giving it).
    sql = "INSERT INTO u (id, v) VALUES (NULL, 1), (7, 3), (NULL, 2) RETURNING `u`.`id`, id AS x"
    assert route(sql, LAYOUT) == NeedsSequence("AUTO_SEQ_u", 2)
    found = route(sql, LAYOUT, sequence_values=[100001, 100002])
    assert isinstance(found, Route) and found.returning is not None
    assert found.returning.values == (100001, 7, 100002)
    assert found.returning.labels == ("id", "x")
    assert _shown(found) == (
        "routed",
        [
            (0, "INSERT INTO `u_01` (id, v) VALUES (100001, 1)"),
            (1, "INSERT INTO `u_02` (id, v) VALUES (100002, 2)"),
            (3, "INSERT INTO `u_07` (id, v) VALUES (7, 3)"),
        ],
    )


def test_a_write_reading_its_own_table_in_a_co_located_subquery_runs_per_partition() -> None:
    # Django on MariaDB 10.3.2+ writes a filter through a relation so.
    found = route(
        "UPDATE u SET v = 1 WHERE u.id IN (SELECT U0.id FROM u U0 WHERE U0.v = 2)", LAYOUT
    )
    kind, targets = _shown(found)
    assert kind == "scatter" and len(targets) == 8
    modified = route(
        "UPDATE LOW_PRIORITY IGNORE u SET v = 1 WHERE u.id IN (SELECT U0.id FROM u U0)", LAYOUT
    )
    assert isinstance(modified, Route) and len(modified.targets) == 8
    assert targets[1] == (
        0,
        "UPDATE `u_01` SET v = 1 WHERE `u_01`.id IN (SELECT U0.id FROM `u_01` U0 WHERE U0.v = 2)",
    )


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE LOW_PRIORITY u SET v = 1 WHERE id = 1",
        "UPDATE LOW_PRIORITY IGNORE u SET v = 1 WHERE id = 1",
        "DELETE QUICK FROM u WHERE id = 1",
        "DELETE LOW_PRIORITY QUICK IGNORE FROM u WHERE id = 1",
        "DELETE IGNORE FROM u WHERE id = 1",
    ],
)
def test_write_modifiers_are_no_table_names(sql: str) -> None:
    # They were read as tables: 1235 'a statement on sharded table u and table LOW_PRIORITY'
    # (and '... table FROM' after QUICK).
    kind, targets = _shown(route(sql, LAYOUT))
    assert kind == "routed" and targets == [(0, sql.replace(" u ", " `u_01` "))]


def test_an_auto_increment_column_that_is_not_the_key_takes_the_sequence() -> None:
    # Left out, or NULL / DEFAULT: the sequence's values (a physical table's own counter
    # would repeat its neighbours'); buyer 5 -> db 1, buyer 6 -> db 2, buyer 9 -> db 1.
    sql = "INSERT INTO o (buyer, v) VALUES (5, 1), (6, 2)"
    assert route(sql, LAYOUT) == NeedsSequence("AUTO_SEQ_o", 2)
    found = route(sql, LAYOUT, sequence_values=[7, 8])
    assert isinstance(found, Route)
    assert _shown(found) == (
        "routed",
        [
            (1, "INSERT INTO o (buyer, v, `id`) VALUES (5, 1, 7)"),
            (2, "INSERT INTO o (buyer, v, `id`) VALUES (6, 2, 8)"),
        ],
    )
    assert found.sequence_values == (7, 8)
    sql = "INSERT INTO o VALUES (NULL, 5, 1), (40, 6, 2), (DEFAULT, 9, 3)"
    assert route(sql, LAYOUT) == NeedsSequence("AUTO_SEQ_o", 2)
    found = route(sql, LAYOUT, sequence_values=[11, 12])
    assert isinstance(found, Route)
    assert _shown(found) == (
        "routed",
        [
            (1, "INSERT INTO o VALUES (11, 5, 1), (12, 9, 3)"),
            (2, "INSERT INTO o VALUES (40, 6, 2)"),
        ],
    )
    assert found.sequence_values == (11, 12)
    # Given values are stored as given.
    found = route("INSERT INTO o (id, buyer) VALUES (3, 5), ('4', 6)", LAYOUT)
    assert isinstance(found, Route) and found.sequence_values == ()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO o (id, buyer) VALUES (0, 5)",
        "INSERT INTO o (id, buyer) VALUES ('0', 5)",
        "INSERT INTO o (id, buyer) VALUES (0.4, 5)",
        "INSERT INTO o (id, buyer) VALUES ('x', 5)",
        "INSERT INTO o (id, buyer) VALUES (FALSE, 5)",
        "INSERT INTO o (id, buyer) VALUES (1 - 1, 5)",
        "INSERT INTO o (id, buyer) VALUES (0x00, 5)",
        "INSERT INTO u (id, v) VALUES (0, 1)",
    ],
)
def test_values_the_shard_would_replace_with_its_own_are_refused(sql: str) -> None:
    # 0 (and what converts to it) makes the physical table's counter give a value, which
    # another partition may give too: refused, as is what the proxy cannot tell apart.
    with pytest.raises(SqlError) as info:
        route(sql, LAYOUT, sequence_values=[1])
    assert info.value.errno == 1235
    assert "AUTO_INCREMENT column" in info.value.message


def test_a_prepared_insert_binding_null_to_the_auto_increment_column_is_refused() -> None:
    sql = "INSERT INTO o (id, buyer) VALUES (?, ?)"
    with pytest.raises(SqlError) as info:
        route(sql, LAYOUT, params=[None, 5])
    assert info.value.errno == 1235
    found = route(sql, LAYOUT, params=[12, 5])
    assert isinstance(found, Route) and found.sequence_values == ()
    found = route("INSERT INTO o (buyer) VALUES (?)", LAYOUT, params=[5], sequence_values=[3])
    assert isinstance(found, Route) and found.sequence_values == (3,)


def test_targets_are_in_acquisition_order() -> None:
    # Shards in name order, then physical databases: every scatter acquires alike.
    layout = Layout("db", partition_layout("db", ["s1", "s0"], 4), TABLES)
    found = route("SELECT * FROM t", layout)
    assert isinstance(found, Route)
    assert [(t.shard, t.partition) for t in found.targets] == [
        ("s0", 2),
        ("s0", 3),
        ("s1", 0),
        ("s1", 1),
    ]


@pytest.mark.parametrize(
    ("sql", "targets"),
    [
        (
            "/*+TDDL:node('db_0001')*/ SELECT count(*) FROM u",
            [
                (1, "/*+TDDL:node('db_0001')*/ SELECT count(*) FROM `u_02`"),
                (1, "/*+TDDL:node('db_0001')*/ SELECT count(*) FROM `u_03`"),
            ],
        ),
        (
            "/*+TDDL:node(0, 2)*/ DELETE FROM b",
            [(0, "/*+TDDL:node(0, 2)*/ DELETE FROM b"), (2, "/*+TDDL:node(0, 2)*/ DELETE FROM b")],
        ),
        (
            "/*+TDDL:scan()*/ SELECT count(*) FROM t",
            [(p, "/*+TDDL:scan()*/ SELECT count(*) FROM t") for p in range(4)],
        ),
    ],
)
def test_hints(sql: str, targets: list[tuple[int, str]]) -> None:
    found = hinted(sql, LAYOUT)
    assert found is not None
    assert [(t.partition, t.sql) for t in found.targets] == targets


def test_hints_name_logical_tables_only() -> None:
    with pytest.raises(SqlError) as caught:
        hinted("/*+TDDL:scan()*/ SELECT * FROM u_00", LAYOUT)
    assert caught.value.errno == 1146
    with pytest.raises(SqlError) as unknown:
        hinted("/*+TDDL:node('db_0009')*/ SELECT 1", LAYOUT)
    assert "no such physical database" in unknown.value.message
    assert hinted("SELECT 1 /*+TDDL:scan()*/", LAYOUT) is None


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("SELECT COUNT(*) FROM t", "the aggregate COUNT()"),
        ("SELECT * FROM t ORDER BY id", "ORDER BY"),
        ("SELECT * FROM t LIMIT 3", "LIMIT"),
        ("SELECT DISTINCT name FROM t", "DISTINCT"),
        ("SELECT name FROM t GROUP BY name", "GROUP BY"),
        ("SELECT * FROM t WHERE id IN (1, 2) ORDER BY id", "ORDER BY"),
        # A table split by TBPARTITION BY: every physical table is one merge input.
        ("SELECT COUNT(*) FROM u", "the aggregate COUNT()"),
        ("SELECT * FROM u ORDER BY id", "ORDER BY"),
    ],
)
def test_scatter_selects_needing_a_merge_say_why(sql: str, why: str) -> None:
    found = route(sql, LAYOUT)
    assert isinstance(found, Route) and found.merge == why
    assert len(found.targets) > 1
    # One partition: no merge, the shard answers.
    single = route("SELECT COUNT(*) FROM t WHERE id = 1", LAYOUT)
    assert isinstance(single, Route) and single.merge is None


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO b (id, name) VALUES (1, UUID())",
        "INSERT INTO b VALUES (1, NOW())",
        "INSERT INTO b VALUES (1, CURRENT_TIMESTAMP)",
        "UPDATE b SET name = RAND() WHERE id = 1",
        "UPDATE b SET name = CONCAT(name, CONNECTION_ID())",
        "DELETE FROM b WHERE id < UNIX_TIMESTAMP()",
        "REPLACE INTO b VALUES (2, /*! SYSDATE() */ 'x')",
        "INSERT INTO b VALUES (NEXT VALUE FOR s1, 'x')",
        "INSERT INTO b VALUES (PREVIOUS VALUE FOR s1, 'x')",
        "UPDATE b SET name = @@hostname",
        "UPDATE b SET name = LAST_INSERT_ID()",
        "UPDATE b SET name = LAST_INSERT_ID( )",
        "UPDATE b SET name = UNIX_TIMESTAMP('2024-01-01')",
        "UPDATE b SET name = @@global.server_id",
        # Stored (or loadable) functions: whatever they compute, per copy.
        "INSERT INTO b VALUES (1, next_code(1))",
        "UPDATE b SET name = `f`(name) WHERE id = 1",
        "UPDATE b SET name = db.f(name) WHERE id = 1",
        "DELETE FROM b WHERE id = my_id()",
        "INSERT INTO b (id, name) VALUES (2, LOWER(g(1)))",
    ],
)
def test_broadcast_writes_computing_a_value_per_copy_are_refused(sql: str) -> None:
    with pytest.raises(SqlError) as info:
        route(sql, LAYOUT)
    assert info.value.errno == 1235
    assert "broadcast table b" in info.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO b (id, name) VALUES (1, 'now')",
        "UPDATE b SET name = b.now WHERE id = 1",
        "SELECT NOW(), RAND() FROM b",
        "INSERT INTO t (id, name) VALUES (1, UUID())",  # one row, one copy
        # With an argument, the same value everywhere (it was refused):
        "INSERT INTO b VALUES (1, 'x') ON DUPLICATE KEY UPDATE id = LAST_INSERT_ID(id)",
        "UPDATE b SET name = LAST_INSERT_ID(name + 1) WHERE id = 1",
        # Built-in functions, keywords called as functions, casts:
        "UPDATE b SET name = IF(id > 1, LEFT(UPPER(name), 2), CONCAT('a', CHAR(66))) WHERE id = 1",
        "INSERT INTO b (id, name) VALUES (1, CAST(2 AS CHAR(3))) ON DUPLICATE KEY UPDATE"
        " name = VALUES(name)",
        "INSERT INTO b (id, name) VALUES (1, ST_ASTEXT(POINT(1, 2)))",
        "INSERT INTO b WITH c (i) AS (SELECT 1) SELECT i, 'x' FROM c",
        "SELECT my_f(id) FROM b",  # (a read: one copy)
    ],
)
def test_deterministic_broadcast_writes_and_other_statements_pass(sql: str) -> None:
    assert isinstance(route(sql, LAYOUT), Route)


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO now (id) VALUES (1)",
        "INSERT INTO user(id, name) VALUES (1, 'a')",
        "REPLACE INTO `user` (id) VALUES (2)",
        "UPDATE user SET name = @@sql_mode WHERE id = 1",
    ],
)
def test_broadcast_tables_named_like_functions_take_writes(sql: str) -> None:
    # A table name followed by its column list is not a call of NOW() or USER().
    tables = {
        name: _table(name, TableRule("broadcast"), "id int, name varchar(10)", " BROADCAST")
        for name in ("now", "user")
    }
    layout = Layout("db", partition_layout("db", ["s0", "s1"], 4), tables)
    found = route(sql, layout)
    assert isinstance(found, Route) and found.kind == "broadcast"
    with pytest.raises(SqlError) as info:
        route("INSERT INTO now (id, name) VALUES (1, NOW())", layout)
    assert info.value.errno == 1235


@pytest.mark.parametrize("sql", ["INSERT INTO o (buyer) VALUES", "INSERT INTO ba (name) VALUE"])
def test_an_insert_without_rows_is_a_syntax_error(sql: str) -> None:
    # (it was an IndexError)
    tables = {
        **TABLES,
        "ba": _table("ba", TableRule("broadcast"), "id int auto_increment, n int", " BROADCAST"),
    }
    layout = Layout("db", LAYOUT.partitions, tables, frozenset(["auto_seq_ba"]))
    with pytest.raises(SqlError) as info:
        route(sql, layout, sequence_values=[1])
    assert info.value.errno == 1064


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO b SELECT id, x FROM s",
        "UPDATE b SET name = (SELECT x FROM s LIMIT 1)",
        "DELETE FROM b WHERE id IN (SELECT id FROM s)",
        "DELETE b FROM b JOIN s ON s.id = b.id",
        # Multi-table forms whose first table is the single one, writing the broadcast one:
        "UPDATE s JOIN b ON b.id = s.id SET b.name = 'q'",
        "UPDATE s JOIN b AS bb ON bb.id = s.id SET s.x = 1, bb.name = 'q'",
        "UPDATE s JOIN b ON b.id = s.id SET name = 'q'",  # (only b has name)
        "DELETE s, b FROM s JOIN b ON b.id = s.id",
        "DELETE QUICK s, b.* FROM s JOIN b ON b.id = s.id",
        "DELETE FROM s, b USING s JOIN b ON b.id = s.id",
    ],
)
def test_a_broadcast_write_reading_a_single_table_is_refused(sql: str) -> None:
    # It ran on physical database 0 alone (where the single table is): the other copies
    # never got the write.
    with pytest.raises(SqlError) as info:
        route(sql, LAYOUT)
    assert info.value.errno == 1235
    assert "broadcast table b" in info.value.message


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO s SELECT id, 1, 2, 3 FROM b",
        "UPDATE s JOIN b ON b.id = s.id SET s.x = b.id",
        "DELETE s FROM s JOIN b ON b.id = s.id",
        "UPDATE s JOIN b ON b.id = s.id SET x = b.id",
        "DELETE s.* FROM s JOIN b ON b.id = s.id",
        "DELETE FROM s USING s JOIN b ON b.id = s.id",
    ],
)
def test_a_single_table_write_reading_a_broadcast_table_runs_on_database_0(sql: str) -> None:
    found = route(sql, LAYOUT)
    assert isinstance(found, Route) and found.kind == "copy"
    assert [t.partition for t in found.targets] == [0]


def test_rows_of_defaults_take_the_sequence() -> None:
    # INSERT ... VALUES () (without a column list, or with ()) inserts a row of defaults on
    # MariaDB: it was 1136; the AUTO_INCREMENT column is named for the sequence's values.
    # 101 mod 8 = 5 (db 2, u_05); 102 mod 8 = 6 (db 3, u_06)
    for sql in ("INSERT INTO u VALUES (), ()", "INSERT INTO u () VALUES (), ()"):
        assert route(sql, LAYOUT) == NeedsSequence("AUTO_SEQ_u", 2)
        found = route(sql, LAYOUT, sequence_values=[101, 102])
        assert isinstance(found, Route)
        assert _shown(found) == (
            "routed",
            [
                (2, "INSERT INTO `u_05` (`id`) VALUES (101)"),
                (3, "INSERT INTO `u_06` (`id`) VALUES (102)"),
            ],
        )
    with pytest.raises(SqlError) as info:
        route("INSERT INTO u (v) VALUES ()", LAYOUT, sequence_values=[1])
    assert info.value.errno == 1136


@pytest.mark.parametrize(
    ("sql", "needed"),
    [
        ("SELECT TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES", True),
        ("SELECT * FROM information_schema.STATISTICS WHERE TABLE_NAME = 't'", True),
        ("SELECT CARDINALITY FROM information_schema.statistics", True),
        # What mariadb-dump asks per table: no statistic, no partition read first.
        ("SELECT engine, table_type FROM INFORMATION_SCHEMA.TABLES WHERE table_name = 't'", False),
        ("SELECT COLUMN_NAME FROM information_schema.COLUMNS", False),
    ],
)
def test_statistics_are_gathered_only_when_read(sql: str, needed: bool) -> None:
    assert needs_statistics(sql, LAYOUT) is needed


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO b (id, name) VALUES (1, substring ('abc', 2))",
        "UPDATE b SET name = trim\t(name) WHERE id = 1",
        "UPDATE b SET name = mid/**/(name, 1, 1) WHERE id = 1",
        "UPDATE b SET name = `trim`(name) WHERE id = 1",
    ],
)
def test_broadcast_writes_calling_a_spaced_built_in_name_are_refused(sql: str) -> None:
    """Without IGNORE_SPACE (or with a comment in between) ``trim (name)`` calls a stored
    function ``trim`` for MariaDB -- each copy would compute its own -- where the proxy read the
    deterministic TRIM and wrote every copy; under IGNORE_SPACE a space leaves it the built-in."""
    with pytest.raises(SqlError) as info:
        route(sql, LAYOUT)
    assert info.value.errno == 1235
    assert "stored or loadable function" in info.value.message
    if "/**/" not in sql and "`" not in sql:
        assert isinstance(route(sql, LAYOUT, LexMode(ignore_space=True)), Route)


# N'...' is read in utf8mb3 whatever the client's character set, each byte that starts no
# utf8mb3 character stored as '?' (MariaDB 10.11; e2e test_sharded_adversary8). The statement
# as the session reads it: the client's bytes as UTF-8, others kept as surrogates.
@pytest.mark.parametrize(
    ("name", "codec", "stored"),
    [
        ("N'\U0001f600a'", "utf-8", "????a"),
        ("n'x\U0001f600'", "utf-8", "x????"),
        ("N'\u00e9a'", "utf-8", "\u00e9a"),
        ("N'\u00e9a'", "cp1252", "\u00e9a"),  # a latin1 client's C3 A9: 'é', not 'Ã©'
        ("N'\udce9a'", "cp1252", "?a"),  # ... its E9
        ("N'\udce3\udca9a'", "cp1252", "??a"),
        ("N'\u00fca'", "utf8mb3", "\u00fca"),
        ("N'\U0001f600b'", "utf8mb3", "????b"),
        ("N'\u00fca'", None, "\u00fca"),
    ],
)
def test_national_strings_are_placed_as_mariadb_stores_them(
    name: str, codec: str | None, stored: str
) -> None:
    found = route(f"INSERT INTO w VALUES ({name}, 1)", LAYOUT, codec=codec)
    expected = route(f"INSERT INTO w VALUES ('{stored}', 1)", LAYOUT)
    assert isinstance(found, Route) and isinstance(expected, Route)
    assert [t.partition for t in found.targets] == [t.partition for t in expected.targets]
    # compared, the bytes are read as they are: placed only when they are all characters
    read = route(f"SELECT * FROM w WHERE name = {name}", LAYOUT, codec=codec)
    assert isinstance(read, Route)
    assert read.kind == ("routed" if "?" not in stored else "scatter")


def test_a_national_string_holding_an_encoded_surrogate_is_not_placed() -> None:
    # (MariaDB's utf8mb3 reads ED A0 80 as a character, Python has no string for it)
    with pytest.raises(SqlError) as refused:
        route("INSERT INTO w VALUES (N'\udced\udca0\udc80', 1)", LAYOUT)
    assert refused.value.errno == 1235


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        # no table read: served (a subquery reading no table, CONVERT's USING, and the
        # columns of ON DUPLICATE KEY UPDATE -- one named like another table)
        ("INSERT INTO t VALUES (1, (SELECT 'a' FROM DUAL))", "routed"),
        ("INSERT INTO t VALUES (1, (SELECT 'a'))", "routed"),
        ("INSERT INTO t VALUES (1, 'a') ON DUPLICATE KEY UPDATE name = 'b', w = 1", "routed"),
        ("UPDATE t SET name = CONVERT(name USING latin1) WHERE id = 1", "routed"),
        ("DELETE FROM t WHERE name = CONVERT('a' USING utf8mb4)", "scatter"),
        ("INSERT INTO t VALUES (1, CHAR(65 USING latin1))", "routed"),
    ],
)
def test_writes_reading_no_table_are_served(sql: str, kind: str) -> None:
    found = route(sql, LAYOUT)
    assert isinstance(found, Route) and found.kind == kind
