"""A sharded database's DDL and SHOW commands (proxy/shard/statements.py): table tests of the
decisions -- the physical statements per physical database, and the local answers."""

from __future__ import annotations

from dataclasses import replace

import pytest

from auth.errors import SqlError
from auth.model import KeyType, LogicalTable, ShardKey, TableRule, partition_layout
from proxy.shard.ddl import AlterSequence, CreateSequence, DropSequence
from proxy.shard.route import Layout, Route
from proxy.shard.statements import (
    CreateShardedTable,
    FanOut,
    LocalRows,
    Maintenance,
    NeedsNextval,
    SequenceDdl,
    decide,
    maintenance_rows,
    with_counter,
)

INT = KeyType("int")
KEY = ShardKey("HASH", "id", INT)
TABLES = {
    "t": LogicalTable(
        "t", TableRule("sharded", KEY), "CREATE TABLE t (id int) DBPARTITION BY HASH(id)"
    ),
    "u": LogicalTable(
        "u",
        TableRule("sharded", KEY, KEY, 2),
        "CREATE TABLE u (id int) DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
    ),
    "b": LogicalTable("b", TableRule("broadcast"), "CREATE TABLE b (id int) BROADCAST"),
    "s": LogicalTable("s", TableRule("single"), "CREATE TABLE s (id int)"),
}
LAYOUT = Layout("db", partition_layout("db", ["s0", "s1"], 2), TABLES, frozenset({"seq"}))


def _targets(found: object) -> list[tuple[int, str]]:
    assert isinstance(found, (FanOut, CreateShardedTable, Route))
    return [(t.partition, t.sql) for t in found.targets]


def test_create_table_of_each_kind() -> None:
    found = decide("CREATE TABLE n (id int, v int) DBPARTITION BY HASH(id)", LAYOUT)
    assert isinstance(found, CreateShardedTable)
    assert found.table.rule == TableRule("sharded", KEY)
    assert _targets(found) == [
        (0, "CREATE TABLE `n` (id int, v int)"),
        (1, "CREATE TABLE `n` (id int, v int)"),
    ]
    found = decide(
        "CREATE TABLE db.m (id int AUTO_INCREMENT PRIMARY KEY) DBPARTITION BY HASH(id)"
        " TBPARTITION BY HASH(id) TBPARTITIONS 2",
        LAYOUT,
    )
    assert isinstance(found, CreateShardedTable)
    assert found.auto_sequence_start == 100001
    assert _targets(found) == [
        (0, "CREATE TABLE `db_0000`.`m_00` (id int AUTO_INCREMENT PRIMARY KEY)"),
        (0, "CREATE TABLE `db_0000`.`m_01` (id int AUTO_INCREMENT PRIMARY KEY)"),
        (1, "CREATE TABLE `db_0001`.`m_02` (id int AUTO_INCREMENT PRIMARY KEY)"),
        (1, "CREATE TABLE `db_0001`.`m_03` (id int AUTO_INCREMENT PRIMARY KEY)"),
    ]
    found = decide("CREATE TABLE c (id int) BROADCAST", LAYOUT)
    assert _targets(found) == [(0, "CREATE TABLE `c` (id int)"), (1, "CREATE TABLE `c` (id int)")]
    found = decide("CREATE TABLE one (id int)", LAYOUT)
    assert isinstance(found, CreateShardedTable) and found.table.rule.kind == "single"
    assert _targets(found) == [(0, "CREATE TABLE `one` (id int)")]
    # Already there: 1050, or nothing to do with IF NOT EXISTS (but MariaDB's note 1050).
    with pytest.raises(SqlError) as exists:
        decide("CREATE TABLE t (id int)", LAYOUT)
    assert exists.value.errno == 1050
    assert decide("CREATE TABLE IF NOT EXISTS t (id int)", LAYOUT) == LocalRows(
        (), (), notes=(("Note", 1050, "Table 't' already exists"),)
    )


@pytest.mark.parametrize(
    ("sql", "verb", "targets"),
    [
        (
            "DROP TABLE u, b",
            "DROP TABLE",
            [
                (0, "DROP TABLE IF EXISTS `u_00`, `u_01`, `b`"),
                (1, "DROP TABLE IF EXISTS `u_02`, `u_03`, `b`"),
            ],
        ),
        (
            "ALTER TABLE u ADD COLUMN v int",
            "ALTER TABLE",
            [(g // 2, f"ALTER TABLE `u_0{g}` ADD COLUMN v int") for g in range(4)],
        ),
        (
            "TRUNCATE db.t",
            "TRUNCATE TABLE",
            [(0, "TRUNCATE `db_0000`.`t`"), (1, "TRUNCATE `db_0001`.`t`")],
        ),
        (
            "CREATE UNIQUE INDEX i ON b (id)",
            "CREATE INDEX",
            [(0, "CREATE UNIQUE INDEX i ON `b` (id)"), (1, "CREATE UNIQUE INDEX i ON `b` (id)")],
        ),
        (
            "RENAME TABLE u TO w",
            "RENAME TABLE",
            [
                (0, "RENAME TABLE `u_00` TO `w_00`, `u_01` TO `w_01`"),
                (1, "RENAME TABLE `u_02` TO `w_02`, `u_03` TO `w_03`"),
            ],
        ),
    ],
)
def test_ddl_fans_out_to_every_physical_table(
    sql: str, verb: str, targets: list[tuple[int, str]]
) -> None:
    found = decide(sql, LAYOUT)
    assert isinstance(found, FanOut) and found.verb == verb
    assert _targets(found) == targets


@pytest.mark.parametrize(
    ("sql", "errno", "text"),
    [
        ("ALTER TABLE t MODIFY id bigint", 1235, "shard key column"),
        ("ALTER TABLE t RENAME TO x", 1235, "RENAME"),
        ("DROP TABLE nope, t", 1051, "Unknown table 'db.nope'"),
        ("DROP TABLE u_01", 1051, "Unknown table 'db.u_01'"),
        ("RENAME TABLE t TO b", 1050, "already exists"),
        ("SHOW TOPOLOGY FROM nope", 1146, "doesn't exist"),
        ("SHOW TABLES WHERE Tables_in_db = 1", 1235, "WHERE"),
    ],
)
def test_ddl_refusals(sql: str, errno: int, text: str) -> None:
    with pytest.raises(SqlError) as caught:
        decide(sql, LAYOUT)
    assert caught.value.errno == errno
    assert text in caught.value.message


def test_show_commands() -> None:
    tables = decide("SHOW TABLES", LAYOUT)
    assert isinstance(tables, LocalRows) and tables.views is not None
    assert replace(tables, views=None) == LocalRows(
        ("Tables_in_db",), (("b",), ("s",), ("t",), ("u",)), probe="SHOW TABLES WHERE FALSE"
    )
    assert tables.views("v", "VIEW")
    full = decide("SHOW FULL TABLES LIKE 'u%'", LAYOUT)
    assert isinstance(full, LocalRows) and full.views is not None
    assert replace(full, views=None) == LocalRows(
        ("Tables_in_db (u%)", "Table_type"),
        (("u", "BASE TABLE"),),
        probe="SHOW FULL TABLES WHERE FALSE",
    )
    # Physical database 0's views join the listing as its LIKE and WHERE take them.
    assert full.views("uv", "VIEW") and not full.views("v", "VIEW")
    where = decide("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'", LAYOUT)
    assert isinstance(where, LocalRows) and where.views is not None
    assert not where.views("v", "VIEW")
    topology = decide("SHOW TOPOLOGY FROM u", LAYOUT)
    assert isinstance(topology, LocalRows)
    assert topology.rows == (
        ("0", "db_0000", "u_00"),
        ("1", "db_0000", "u_01"),
        ("2", "db_0001", "u_02"),
        ("3", "db_0001", "u_03"),
    )
    rule = decide("SHOW RULE FROM u", LAYOUT)
    assert isinstance(rule, LocalRows)
    assert rule.rows == (("0", "u", "0", "id", "hash", "2", "id", "hash", "2"),)
    node = decide("SHOW NODE", LAYOUT)
    assert isinstance(node, LocalRows)
    assert node.rows == (("0", "db_0000", "s0"), ("1", "db_0001", "s1"))
    create = decide("SHOW CREATE TABLE t", LAYOUT)
    assert isinstance(create, LocalRows)
    # (named by its name now, as after a RENAME TABLE)
    assert create.rows == (("t", "CREATE TABLE `t` (id int) DBPARTITION BY HASH(id)"),)
    assert decide("SHOW VARIABLES", LAYOUT) is None


def test_check_table_and_sequences() -> None:
    check = decide("CHECK TABLE u", LAYOUT)
    assert isinstance(check, Maintenance)
    assert [(check.tables[i], t.partition, t.sql) for i, t in check.definitions] == [
        ("u", g // 2, f"SHOW CREATE TABLE `u_0{g}`") for g in range(4)
    ]
    assert [(check.tables[i], t.partition, t.sql) for i, t in check.targets] == [
        ("u", g // 2, f"CHECK TABLE `u_0{g}`") for g in range(4)
    ]
    assert decide("CREATE SEQUENCE x START WITH 7", LAYOUT) == SequenceDdl(CreateSequence("x", 7))
    assert decide("ALTER SEQUENCE x START WITH 9", LAYOUT) == SequenceDdl(AlterSequence("x", 9))
    assert decide("DROP SEQUENCE x", LAYOUT) == SequenceDdl(DropSequence("x"))
    sql = "INSERT INTO t (id) VALUES (seq.NEXTVAL)"
    assert decide(sql, LAYOUT) == NeedsNextval(("seq",))
    # 7 mod 2 = 1
    assert _targets(decide(sql, LAYOUT, nextvals=[7])) == [(1, "INSERT INTO t (id) VALUES (7)")]


_PERSISTENT = "PERSISTENT FOR COLUMNS (id, v) INDEXES ()"


@pytest.mark.parametrize(
    ("sql", "targets"),
    [
        (
            "ANALYZE NO_WRITE_TO_BINLOG TABLE t, s PERSISTENT FOR COLUMNS (id, v) INDEXES ()",
            [
                (name, n, f"ANALYZE NO_WRITE_TO_BINLOG TABLE `{name}` {_PERSISTENT}")
                for name, n in (("t", 0), ("t", 1), ("s", 0))
            ],
        ),
        (
            "optimize local tables db.u",
            [("u", g // 2, f"optimize local tables `u_0{g}`") for g in range(4)],
        ),
        (
            "CHECKSUM TABLE b, `nothere` EXTENDED",
            [
                ("b", 0, "CHECKSUM TABLE `b` EXTENDED"),
                ("nothere", 0, "CHECKSUM TABLE `nothere` EXTENDED"),
            ],
        ),
        (
            "REPAIR TABLE b QUICK",
            [("b", 0, "REPAIR TABLE `b` QUICK"), ("b", 1, "REPAIR TABLE `b` QUICK")],
        ),
        ("ANALYZE TABLE s", [("s", 0, "ANALYZE TABLE `s`")]),  # (physical database 0's)
        (
            "CHECK TABLE s, nothere",
            [("s", 0, "CHECK TABLE `s`"), ("nothere", 0, "CHECK TABLE `nothere`")],
        ),
        ("CHECKSUM TABLE other.x, t", None),  # (another database's: the analysis decides)
        ("ANALYZE SELECT * FROM s", None),
    ],
)
def test_table_maintenance_runs_on_each_physical_table(
    sql: str, targets: list[tuple[str, int, str]] | None
) -> None:
    found = decide(sql, LAYOUT)
    if targets is None:
        assert not isinstance(found, Maintenance)
        return
    assert isinstance(found, Maintenance)
    assert [(found.tables[i], t.partition, t.sql) for i, t in found.targets] == targets


def test_table_maintenance_refuses_a_physical_name_or_a_table_named_twice() -> None:
    with pytest.raises(SqlError) as refused:
        decide("ANALYZE TABLE t, u_01", LAYOUT)
    assert (refused.value.errno, refused.value.message) == (1146, "Table 'db.u_01' doesn't exist")
    with pytest.raises(SqlError) as refused:
        decide("CHECKSUM TABLE t, db.T", LAYOUT)  # (MariaDB's error, the second as written)
    assert (refused.value.errno, refused.value.message) == (1066, "Not unique table/alias: 'T'")


_OK = ("status", "OK")
_RECREATE = ("note", "Table does not support optimize, doing recreate + analyze instead")
_MISSING = ("Error", "Table 'db.nothere' doesn't exist")


@pytest.mark.parametrize(
    ("sql", "answers", "problems", "rows"),
    [
        # every partition alike: their rows, once
        ("OPTIMIZE TABLE t", [[_RECREATE, _OK], [_RECREATE, _OK]], {}, [_RECREATE, _OK]),
        # a partition that answered otherwise: each row once, no OK beside a failure
        (
            "ANALYZE TABLE t",
            [[_OK], [("error", "Lock wait"), ("status", "Operation failed")]],
            {},
            [("error", "Lock wait"), ("status", "Operation failed")],
        ),
        (
            "ANALYZE TABLE t",
            [[_OK], [("status", "Table is already up to date")]],
            {},
            [_OK, ("status", "Table is already up to date")],
        ),
        # CHECK's differing definitions replace the status rows
        (
            "CHECK TABLE t",
            [[_OK], [_OK]],
            {0: ["db_0001.t differs"]},
            [("error", "Partition db_0001.t differs")],
        ),
        # a name the catalog does not know: as physical database 0 named it
        (
            "CHECK TABLE nothere, t",
            [[_MISSING, ("status", "Operation failed")], [_OK], [_OK]],
            {},
            [_MISSING, ("status", "Operation failed"), _OK],
        ),
    ],
)
def test_maintenance_rows_combine_the_partitions(
    sql: str,
    answers: list[list[tuple[str, str]]],
    problems: dict[int, list[str]],
    rows: list[tuple[str, str]],
) -> None:
    decision = decide(sql, LAYOUT)
    assert isinstance(decision, Maintenance)
    verb = sql.split()[0].lower()
    shown = [decision.tables[index] for index, _ in decision.targets]
    full = [
        [(f"db.{name}", verb, *row) for row in answer]
        for name, answer in zip(shown, answers, strict=True)
    ]
    found = maintenance_rows(decision, "db", full, problems)
    assert [tuple(row[2:]) for row in found] == rows
    assert {row[1] for row in found} == {verb}


def test_checksums_sum_modulo_two_to_the_32() -> None:
    decision = decide("CHECKSUM TABLE t, b", LAYOUT)
    assert isinstance(decision, Maintenance)
    answers: list[list[tuple[str, str | None]]] = [
        [("db_0000.t", "4294967295")],
        [("db_0001.t", "2")],
        [("db_0000.b", "7")],
    ]
    assert maintenance_rows(decision, "db", answers, {}) == [["db.t", "1"], ["db.b", "7"]]
    answers[1] = [("db_0001.t", None)]  # (QUICK on a table without a live checksum)
    assert maintenance_rows(decision, "db", answers, {})[0] == ["db.t", None]


def test_explain_shows_the_physical_statements() -> None:
    found = decide("EXPLAIN SELECT * FROM u WHERE id IN (1, 2)", LAYOUT)
    assert found == LocalRows(
        ("GROUP_NAME", "SQL"),
        (
            ("db_0000", "SELECT * FROM `u_01` AS `u` WHERE id IN (1, 2)"),
            ("db_0001", "SELECT * FROM `u_02` AS `u` WHERE id IN (1, 2)"),
        ),
    )
    assert decide("EXPLAIN SELECT * FROM s", LAYOUT) is None


@pytest.mark.parametrize(
    ("sql", "errno"),
    [
        ("SHOW TABLES WHERE Table_type = 'VIEW'", 1054),  # SHOW TABLES has no such column
        ("SHOW FULL TABLES WHERE nope = 'x'", 1054),
        ("SHOW TABLES WHERE 1", 1235),
        ("SHOW FULL TABLES WHERE Table_type = 'VIEW' OR Table_type = 'x'", 1235),
        ("SHOW FULL TABLES WHERE Table_type > 'A'", 1235),
        ("SHOW TABLES WHERE Tables_in_db NOT = 'x'", 1235),
        ("SHOW TABLES WHERE Tables_in_db LIKE", 1235),
    ],
)
def test_show_tables_where_beyond_what_tools_write_is_an_error(sql: str, errno: int) -> None:
    with pytest.raises(SqlError) as info:
        decide(sql, LAYOUT)
    assert info.value.errno == errno


def test_views_live_on_physical_database_0_with_the_single_tables() -> None:
    # Reading single tables only (or nothing, or another view): made there as written.
    for sql in (
        "CREATE VIEW v AS SELECT * FROM s",
        "CREATE OR REPLACE ALGORITHM = MERGE DEFINER = `x`@`%` SQL SECURITY INVOKER VIEW"
        " v (a) AS SELECT 1",
        "CREATE VIEW IF NOT EXISTS v2 AS SELECT * FROM v",
        "DROP VIEW v",
        "RENAME TABLE v TO v2, v3 TO v4",
    ):
        assert decide(sql, LAYOUT) is None, sql
    # (a qualifier naming the logical database names physical database 0 there)
    found = decide("CREATE VIEW db.v AS SELECT * FROM db.s", LAYOUT)
    assert _targets(found) == [(0, "CREATE VIEW `db_0000`.v AS SELECT * FROM `db_0000`.s")]
    # ... and its DEFINER account is its creator, as the relay makes it in the client's text.
    found = decide("CREATE DEFINER = 'x'@'%' SQL SECURITY DEFINER VIEW db.v AS SELECT 1", LAYOUT)
    assert _targets(found) == [
        (0, "CREATE DEFINER = CURRENT_USER SQL SECURITY DEFINER VIEW `db_0000`.v AS SELECT 1")
    ]
    found = decide("CREATE DEFINER=`x`@`%` VIEW v AS SELECT DATABASE() AS d", LAYOUT)
    assert _targets(found) == [
        (
            0,
            "CREATE DEFINER=CURRENT_USER VIEW v AS SELECT"
            " NULLIF(CONVERT(CAST('db' AS CHAR(64)) USING utf8mb3), NULL) AS d",
        )
    ]
    # A view's columns: physical database 0's own name.
    columns = decide("SHOW COLUMNS FROM v FROM db", LAYOUT)
    assert _targets(columns) == [(0, "SHOW COLUMNS FROM `v`")]


@pytest.mark.parametrize(
    ("sql", "errno", "text"),
    [
        ("CREATE VIEW v AS SELECT * FROM t", 1235, "reading sharded table t"),
        ("CREATE VIEW v AS SELECT * FROM s WHERE id IN (SELECT id FROM u)", 1235, "table u"),
        ("CREATE OR REPLACE VIEW v AS SELECT * FROM s JOIN b ON b.k = s.id", 1235, "table b"),
        ("CREATE SQL SECURITY INVOKER VIEW v AS SELECT * FROM db.b", 1235, "broadcast table b"),
        ("CREATE VIEW u AS SELECT 1", 1050, "Table 'u' already exists"),
        ("CREATE VIEW u_01 AS SELECT 1", 1235, "physical table"),
        ("CREATE VIEW v AS SELECT * FROM u_01", 1146, "doesn't exist"),
        ("RENAME TABLE v TO u", 1050, "Table 'u' already exists"),
        ("RENAME TABLE v TO v2, s TO s2", 1235, "views together with tables"),
        ("SHOW COLUMNS FROM u_01", 1146, "doesn't exist"),
    ],
)
def test_views_refused(sql: str, errno: int, text: str) -> None:
    with pytest.raises(SqlError) as caught:
        decide(sql, LAYOUT)
    assert caught.value.errno == errno
    assert text in caught.value.message


MARIADB_SHOWN = (
    "CREATE TABLE `t` (\n  `id` bigint(20) NOT NULL AUTO_INCREMENT,\n  `v` varchar(9) DEFAULT"
    " NULL COMMENT 'a\\n) ENGINE=x AUTO_INCREMENT=3',\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
    "{} DEFAULT CHARSET=latin1 COLLATE=latin1_swedish_ci COMMENT='AUTO_INCREMENT=4'"
    " dbpartition by hash(`id`)"
)


def test_show_create_table_shows_the_sequence_as_the_counter() -> None:
    """The option where MariaDB writes it (after ENGINE), only past 1, whether the stored
    definition had one or not; never in a COMMENT."""
    bare, counted = MARIADB_SHOWN.format(""), MARIADB_SHOWN.format(" AUTO_INCREMENT=7")
    assert with_counter(bare, 101001) == MARIADB_SHOWN.format(" AUTO_INCREMENT=101001")
    assert with_counter(counted, 101001) == MARIADB_SHOWN.format(" AUTO_INCREMENT=101001")
    assert with_counter(counted, 1) == bare
    assert with_counter("CREATE TABLE t (id int)", 5) == "CREATE TABLE t (id int)"
    layout = replace(LAYOUT, sequences=frozenset({"seq", "auto_seq_t", "auto_seq_b", "auto_seq_s"}))
    for name, sequence in (("t", "AUTO_SEQ_t"), ("b", "AUTO_SEQ_b"), ("s", None), ("u", None)):
        shown = decide(f"SHOW CREATE TABLE {name}", layout)
        assert isinstance(shown, LocalRows) and shown.sequence == sequence


@pytest.mark.parametrize(
    ("sql", "moved"),
    [
        ("ALTER TABLE t AUTO_INCREMENT = 500", 500),
        ("ALTER TABLE t AUTO_INCREMENT 500", 500),
        ("ALTER TABLE t ADD COLUMN w int, AUTO_INCREMENT=9, COMMENT 'x'", 9),
        ("ALTER TABLE b ENGINE=InnoDB AUTO_INCREMENT=12", 12),
        ("ALTER TABLE t MODIFY v bigint NOT NULL AUTO_INCREMENT", None),
        ("ALTER TABLE t ADD COLUMN w int DEFAULT 5", None),
        ("ALTER TABLE s AUTO_INCREMENT = 500", None),  # a single table: MariaDB's counter
    ],
)
def test_alter_table_auto_increment_moves_the_sequence(sql: str, moved: int | None) -> None:
    found = decide(sql, LAYOUT)
    assert isinstance(found, FanOut) and found.auto_increment == moved
