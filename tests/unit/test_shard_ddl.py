"""DRDS's DDL clauses and sequence statements (proxy/shard/ddl.py): table tests, and the
physical CREATE TABLE texts run on a real MariaDB."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from auth.errors import SqlError
from auth.model import KeyType, LogicalTable, ShardKey, TableRule
from proxy.dev.localshard import ShardEndpoint
from proxy.shard.ddl import (
    AlterSequence,
    CreateSequence,
    CreateTable,
    DropSequence,
    NextvalReference,
    check_physical_names,
    nextval_references,
    parse_create_table,
    parse_sequence_statement,
    refuse_sharded_source,
)
from proxy.shard.route import string_key_lengths
from proxy.sql.lexer import ServerFlavor, lex

MARIADB = ServerFlavor(101100, True)
INT = KeyType("int")
BIGINT_U = KeyType("bigint", unsigned=True)
VARCHAR = KeyType("varchar")


def create(sql: str) -> CreateTable:
    return parse_create_table(sql, lex(sql, flavor=MARIADB)[0])


def refused(sql: str) -> SqlError:
    with pytest.raises(SqlError) as caught:
        create(sql)
    return caught.value


# (statement, physical text, rule)
TABLES: list[tuple[str, str, TableRule]] = [
    (
        "CREATE TABLE t (id int, name varchar(10)) DBPARTITION BY HASH(id)",
        "CREATE TABLE t (id int, name varchar(10))",
        TableRule("sharded", ShardKey("HASH", "id", INT)),
    ),
    (
        "create table t (id int) dbpartition by hash(ID) tbpartition by hash(id) tbpartitions 4;",
        "create table t (id int);",
        TableRule("sharded", ShardKey("HASH", "id", INT), ShardKey("HASH", "id", INT), 4),
    ),
    (
        "CREATE TABLE `Orders` (\n  `Id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,\n"
        "  buyer NVARCHAR(30),\n  PRIMARY KEY (`Id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8\n"
        "dbpartition by UNI_HASH(`buyer`) tbpartition by hash(Id) tbpartitions 3  # done\n",
        "CREATE TABLE `Orders` (\n  `Id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,\n"
        "  buyer NVARCHAR(30),\n  PRIMARY KEY (`Id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8"
        "  # done\n",
        TableRule(
            "sharded",
            ShardKey("UNI_HASH", "buyer", VARCHAR),
            ShardKey("HASH", "Id", BIGINT_U),
            3,
        ),
    ),
    (
        "CREATE TABLE t (a serial, b char(3) binary) DBPARTITION BY HASH(a) TBPARTITION BY"
        " UNI_HASH(b)",
        "CREATE TABLE t (a serial, b char(3) binary)",
        TableRule(
            "sharded",
            ShardKey("HASH", "a", BIGINT_U),
            ShardKey("UNI_HASH", "b", KeyType("char")),
            1,
        ),
    ),
    (
        "CREATE TABLE IF NOT EXISTS db1.regions (code CHAR(2) PRIMARY KEY) BROADCAST",
        "CREATE TABLE IF NOT EXISTS db1.regions (code CHAR(2) PRIMARY KEY)",
        TableRule("broadcast"),
    ),
    (
        "CREATE TABLE t (id int) /*!DBPARTITION BY HASH(id)*/",
        "CREATE TABLE t (id int) /*!*/",
        TableRule("sharded", ShardKey("HASH", "id", INT)),
    ),
    (
        "CREATE TABLE notes (id int, p int, FOREIGN KEY (p) REFERENCES parent (id))",
        "CREATE TABLE notes (id int, p int, FOREIGN KEY (p) REFERENCES parent (id))",
        TableRule("single"),
    ),
    (
        "CREATE TABLE t (b int COMMENT 'broadcast') ENGINE = broadcast",
        "CREATE TABLE t (b int COMMENT 'broadcast') ENGINE = broadcast",
        TableRule("single"),
    ),
    (
        "CREATE TABLE t (x tinyint unsigned, y int zerofill) DBPARTITION BY hash(y)",
        "CREATE TABLE t (x tinyint unsigned, y int zerofill)",
        TableRule("sharded", ShardKey("HASH", "y", KeyType("int", unsigned=True))),
    ),
]


@pytest.mark.parametrize(("sql", "physical", "rule"), TABLES)
def test_create_table(sql: str, physical: str, rule: TableRule) -> None:
    found = create(sql)
    assert found.rule == rule
    assert found.physical_sql == physical
    # The name is where it was, in the client's text and in the physical one.
    assert physical[found.name_start : found.name_end].strip("`") == found.table


def test_what_else_is_read() -> None:
    found = create(
        "CREATE TABLE d.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT=1000"
        " DBPARTITION BY HASH(id) -- trailing"
    )
    assert (found.schema, found.table) == ("d", "t")
    assert (found.auto_increment_column, found.auto_increment_start) == ("id", 1000)
    assert found.definition == (
        "CREATE TABLE d.t (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT) AUTO_INCREMENT=1000"
        " DBPARTITION BY HASH(id)"
    )
    assert [c.name for c in found.columns] == ["id", "v"]
    assert found.logical_table() == LogicalTable("t", found.rule, found.definition)
    assert not (found.if_not_exists or found.temporary or found.has_query)
    like = create("CREATE TABLE t2 LIKE d.t")
    assert like.like == ("d", "t") and like.rule == TableRule("single") and not like.columns
    assert create("CREATE TABLE t2 (LIKE t)").like == (None, "t")
    query = create("CREATE TABLE t3 AS SELECT * FROM t")
    assert query.has_query and query.rule.kind == "single"
    assert create("CREATE TABLE t3 (id int) SELECT 1 AS id").has_query
    assert create("CREATE TEMPORARY TABLE tmp (id int)").temporary
    assert create("CREATE TABLE t (id int)").auto_increment_column is None
    # BROADCAST anywhere but at the end is no DRDS clause (the shard reads the rest).
    late = create("CREATE TABLE t (id int) BROADCAST SELECT 1 AS id")
    assert late.rule == TableRule("single") and late.has_query


@pytest.mark.parametrize(
    ("sql", "errno", "text"),
    [
        ("CREATE TABLE t (id int) DBPARTITION BY RIGHT_SHIFT(id, 4)", 1235, "RIGHT_SHIFT"),
        ("CREATE TABLE t (a int, b int) DBPARTITION BY RANGE_HASH(a, b, 3)", 1235, "RANGE_HASH"),
        ("CREATE TABLE t (s varchar(9)) DBPARTITION BY STR_HASH(s)", 1235, "STR_HASH"),
        (
            "CREATE TABLE t (id int, d date) DBPARTITION BY HASH(id) TBPARTITION BY MM(d)"
            " TBPARTITIONS 12",
            1235,
            "TBPARTITION BY MM",
        ),
        ("CREATE TABLE t (d date) DBPARTITION BY YYYYMM(d)", 1235, "YYYYMM"),
        ("CREATE TABLE t (d date) DBPARTITION BY YYYYWEEK(d)", 1235, "YYYYWEEK"),
        ("CREATE TABLE t (d date) DBPARTITION BY YYYYDD(d)", 1235, "YYYYDD"),
        ("CREATE TABLE t (d date) DBPARTITION BY HASH(id) TBPARTITION BY DD(d)", 1054, "'id'"),
        ("CREATE TABLE t (id int) DBPARTITION BY HASH(nope)", 1054, "Unknown column 'nope'"),
        ("CREATE TABLE t (d datetime) DBPARTITION BY HASH(d)", 1235, "DATETIME column"),
        ("CREATE TABLE t (d decimal(9,2)) DBPARTITION BY HASH(d)", 1235, "DECIMAL column"),
        ("CREATE TABLE t (b varbinary(9)) DBPARTITION BY HASH(b)", 1235, "VARBINARY column"),
        ("CREATE TABLE t (b text) DBPARTITION BY UNI_HASH(b)", 1235, "TEXT column"),
        (
            "CREATE TABLE t (b varchar(9) CHARACTER SET binary) DBPARTITION BY HASH(b)",
            1235,
            "VARCHAR column",
        ),
        (
            "CREATE TABLE t (a int, g int AS (a + 1)) DBPARTITION BY HASH(g)",
            1235,
            "generated column",
        ),
        (
            "CREATE TABLE t (id int, p int, FOREIGN KEY (p) REFERENCES q (id))"
            " DBPARTITION BY HASH(id)",
            1235,
            "FOREIGN KEY on a sharded table",
        ),
        (
            "CREATE TABLE t (id int, p int REFERENCES q (id)) BROADCAST",
            1235,
            "FOREIGN KEY on a broadcast table",
        ),
        (
            "CREATE TABLE t (id int, CONSTRAINT c FOREIGN KEY (id) REFERENCES q (id))"
            " DBPARTITION BY HASH(id)",
            1235,
            "FOREIGN KEY",
        ),
        ("CREATE TABLE t LIKE s DBPARTITION BY HASH(id)", 1235, "LIKE or ... SELECT"),
        ("CREATE TABLE t (LIKE s) BROADCAST", 1235, "LIKE or ... SELECT"),
        ("CREATE TABLE t (id int) DBPARTITION BY HASH(id) AS SELECT 1", 1235, "SELECT of"),
        ("CREATE TEMPORARY TABLE t (id int) DBPARTITION BY HASH(id)", 1235, "TEMPORARY"),
        ("CREATE OR REPLACE TABLE t (id int) BROADCAST", 1235, "OR REPLACE"),
        ("CREATE SHADOW TABLE t (id int)", 1235, "SHADOW"),
        ("CREATE TABLE t (id int) TBPARTITION BY HASH(id) TBPARTITIONS 2", 1235, "without"),
        (
            "CREATE TABLE t (id int) DBPARTITION BY HASH(id) TBPARTITION BY HASH(id)"
            " TBPARTITIONS 0",
            1235,
            "TBPARTITIONS 0",
        ),
        (
            "CREATE TABLE t (id int) DBPARTITION BY HASH(id) TBPARTITION BY HASH(id)"
            " TBPARTITIONS 257",
            1235,
            "TBPARTITIONS 257",
        ),
        (
            "CREATE TABLE t (id int) DBPARTITION BY HASH(id) LOCALITY='dn=a'",
            1235,
            "LOCALITY",
        ),
        (
            "CREATE TABLE t (id int, GLOBAL INDEX g (id) DBPARTITION BY HASH(id))"
            " DBPARTITION BY HASH(id)",
            1235,
            "GLOBAL INDEX",
        ),
        ("CREATE TABLE t (id int) DBPARTITION BY HASH()", 1235, "without a column"),
        ("CREATE TABLE t (a int, b int) DBPARTITION BY HASH(a, b)", 1235, "more than one"),
        ("CREATE TABLE t (id int) DBPARTITION /* x */ BY HASH(id)", 1235, "comment inside"),
        ("CREATE TABLE t (id int) DBPARTITION BY HASH(id) ENGINE=InnoDB", 1064, "ENGINE=InnoDB"),
        ("CREATE TABLE t (id int) DBPARTITION BY MURMUR(id)", 1064, "MURMUR(id)"),
        (
            "CREATE TABLE t (id int AUTO_INCREMENT BY GROUP) DBPARTITION BY HASH(id)",
            1235,
            "AUTO_INCREMENT BY",
        ),
        ("CREATE TABLE (id int)", 1064, "(id int)"),
    ],
)
def test_refusals(sql: str, errno: int, text: str) -> None:
    error = refused(sql)
    assert error.errno == errno, error
    assert text in error.message, error
    assert error.sqlstate == {1235: "42000", 1054: "42S22", 1064: "42000"}[errno]


def test_the_drds_function_is_named_in_the_refusal() -> None:
    error = refused("CREATE TABLE t (d date) DBPARTITION BY WEEK(d)")
    assert error.message == "This version of shardgate doesn't yet support 'DBPARTITION BY WEEK'"


def test_sources_and_names() -> None:
    key = ShardKey("HASH", "id", INT)
    sharded = LogicalTable("s", TableRule("sharded", key), "")
    with pytest.raises(SqlError, match="LIKE of a sharded table") as caught:
        refuse_sharded_source(sharded, "CREATE TABLE ... LIKE")
    assert caught.value.errno == 1235
    refuse_sharded_source(LogicalTable("b", TableRule("broadcast"), ""), "CREATE TABLE ... LIKE")
    refuse_sharded_source(None, "CREATE TABLE ... SELECT")
    long_name = LogicalTable("x" * 61, TableRule("sharded", key, key, 2), "")
    check_physical_names(long_name, 32)  # x..._00 .. x..._63: 64 characters
    with pytest.raises(SqlError) as too_long:
        check_physical_names(long_name, 64)  # x..._000 .. x..._127: 65
    assert too_long.value.errno == 1059 and "_000' is too long" in too_long.value.message


# --- sequences ------------------------------------------------------------------------------


def sequence(sql: str) -> object:
    return parse_sequence_statement(sql, lex(sql)[0])


def test_sequence_statements() -> None:
    assert sequence("CREATE SEQUENCE seq1") == CreateSequence("seq1", 100001)
    assert sequence("create group sequence `Seq 2` start with 5") == CreateSequence("Seq 2", 5)
    assert sequence("ALTER SEQUENCE s START WITH 9223372036854775806") == AlterSequence(
        "s", 9223372036854775806
    )
    assert sequence("DROP SEQUENCE s;") == DropSequence("s")
    for sql, text in (
        ("CREATE SIMPLE SEQUENCE s", "SIMPLE SEQUENCE"),
        ("CREATE TIME SEQUENCE s", "TIME SEQUENCE"),
        ("CREATE NEW SEQUENCE s", "NEW SEQUENCE"),
        ("CREATE SEQUENCE s START WITH 1 INCREMENT BY 2", "INCREMENT of a GROUP sequence"),
        ("CREATE GROUP SEQUENCE s UNIT COUNT 2 INDEX 0", "UNIT of a GROUP sequence"),
        ("ALTER SEQUENCE s CHANGE TO TIME", "CHANGE of a GROUP sequence"),
        ("ALTER SEQUENCE s MAXVALUE 9", "MAXVALUE"),
        ("CREATE SEQUENCE other.s", "another database"),
        ("CREATE SEQUENCE s START WITH 0", "START WITH 0"),
        ("CREATE SEQUENCE s START WITH 9223372036854775807", "START WITH"),
    ):
        with pytest.raises(SqlError, match=text) as caught:
            sequence(sql)
        assert caught.value.errno == 1235
    for sql in ("CREATE SEQUENCE", "DROP SEQUENCE s t", "ALTER SEQUENCE s", "CREATE SEQ s"):
        with pytest.raises(SqlError) as caught:
            sequence(sql)
        assert caught.value.errno == 1064, sql


def test_nextval_references() -> None:
    sql = "INSERT INTO t VALUES (s1.NEXTVAL, `S 2`.nextval, a.b.NEXTVAL, c.NEXTVAL(), d.nextval.x)"
    (statement,) = lex(sql)
    found = nextval_references(statement)
    assert found == [
        NextvalReference("s1", sql.index("s1"), sql.index("s1") + len("s1.NEXTVAL")),
        NextvalReference("S 2", sql.index("`S 2`"), sql.index("`S 2`") + len("`S 2`.nextval")),
    ]
    assert [r.sequence for r in nextval_references(statement, lambda s: s == "s1")] == ["s1"]
    (batch,) = lex("SELECT seq.NEXTVAL FROM DUAL WHERE COUNT = 10")
    assert [r.sequence for r in nextval_references(batch)] == ["seq"]
    (aliased,) = lex("SELECT seq.NEXTVAL '(' FROM DUAL")
    assert [r.sequence for r in nextval_references(aliased)] == ["seq"]


# --- the physical statements on MariaDB ---------------------------------------------------


def test_mariadb_creates_the_physical_tables(
    shards: list[ShardEndpoint], shard_admin: Callable[..., Any]
) -> None:
    conn = shard_admin(shards[0])
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE IF NOT EXISTS db1")
        cur.execute("CREATE DATABASE IF NOT EXISTS sg_ddl_test")
        cur.execute("USE sg_ddl_test")
        try:
            for sql, _, _ in TABLES:
                if "REFERENCES parent" in sql or "ENGINE = broadcast" in sql:
                    continue
                found = create(sql)
                cur.execute("DROP TABLE IF EXISTS t, `Orders`, db1.regions")
                cur.execute(found.physical_sql)
        finally:
            cur.execute("DROP DATABASE IF EXISTS sg_ddl_test")
            cur.execute("DROP DATABASE IF EXISTS db1")


def test_string_column_lengths_are_read() -> None:
    lengths = string_key_lengths(
        "CREATE TABLE t (a varchar(20) NOT NULL, b char, c CHAR(3) CHARACTER SET utf8mb4,"
        " d int(11), e NATIONAL VARCHAR (7), PRIMARY KEY (a)) DBPARTITION BY HASH(a)"
    )
    assert lengths == {"a": 20, "b": 1, "c": 3, "e": 7}
