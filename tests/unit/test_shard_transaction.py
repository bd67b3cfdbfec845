"""A sharded database's transaction statements, read by proxy/shard/transaction.py."""

from __future__ import annotations

import pytest

from auth.errors import SqlError
from proxy.shard.transaction import (
    TransactionControl,
    autocommit_assignment,
    commits_implicitly,
    reads_tables,
    transaction_control,
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("BEGIN", TransactionControl("begin")),
        ("begin work", TransactionControl("begin")),
        ("START TRANSACTION", TransactionControl("begin")),
        ("START TRANSACTION READ ONLY", TransactionControl("begin", read_only=True)),
        ("start transaction read write", TransactionControl("begin", read_only=False)),
        (
            "/* c */ START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            TransactionControl("begin", read_only=True, snapshot=True),
        ),
        ("COMMIT", TransactionControl("commit")),
        ("COMMIT WORK AND CHAIN", TransactionControl("commit", chain=True)),
        ("COMMIT AND NO CHAIN", TransactionControl("commit")),
        ("ROLLBACK", TransactionControl("rollback")),
        ("ROLLBACK AND CHAIN", TransactionControl("rollback", chain=True)),
        (
            "ROLLBACK TO SAVEPOINT s",
            TransactionControl("savepoint", savepoint="rollback", name="s"),
        ),
        (
            "ROLLBACK WORK TO `S 1`",
            TransactionControl("savepoint", savepoint="rollback", name="S 1"),
        ),
        ("SAVEPOINT s", TransactionControl("savepoint", savepoint="set", name="s")),
        ("RELEASE SAVEPOINT s", TransactionControl("savepoint", savepoint="release", name="s")),
        ("SET autocommit = 0", None),  # relayed: see autocommit_assignment
        (
            "SET TRANSACTION ISOLATION LEVEL READ COMMITTED",
            TransactionControl("characteristics", isolation="READ COMMITTED"),
        ),
        (
            "set transaction read only, isolation level serializable",
            TransactionControl("characteristics", read_only=True, isolation="SERIALIZABLE"),
        ),
        ("SET @autocommit = 0", None),  # a user variable
        ("SET sql_mode = 'autocommit'", None),
        ("SELECT 1", None),
        ("SELECT @@autocommit", None),
        ("INSERT INTO t VALUES (1)", None),
    ],
)
def test_transaction_statements(sql: str, expected: TransactionControl | None) -> None:
    assert transaction_control(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SET autocommit = @x",
        "SET sql_mode = '', autocommit = 1 + 0",
    ],
)
def test_what_the_proxy_cannot_follow_is_refused(sql: str) -> None:
    with pytest.raises(SqlError) as refused:
        transaction_control(sql)
    assert refused.value.errno == 1235


@pytest.mark.parametrize(
    ("sql", "value"),
    [
        ("SET autocommit = 0", False),
        ("SET AUTOCOMMIT=1", True),
        ("SET @@session.autocommit = OFF", False),
        ("SET SESSION autocommit := ON", True),
        ("SET @@autocommit = true", True),
        ("SET autocommit = 1, sql_mode = concat(@@sql_mode, ',STRICT_TRANS_TABLES')", True),
        ("SET NAMES utf8mb4, @@session.autocommit = 0", False),
        ("SET autocommit = 0; SET autocommit = 1", True),
        ("SET @autocommit = 0", None),  # a user variable
        ("SET @x = @@autocommit", None),
        ("SET sql_mode = 'autocommit'", None),
        ("SELECT @@autocommit", None),
    ],
)
def test_autocommit_assignments(sql: str, value: bool | None) -> None:
    assert autocommit_assignment(sql) is value


@pytest.mark.parametrize(
    ("sql", "commits"),
    [
        ("CREATE TABLE t (a int)", True),
        ("create index i on t (a)", True),
        ("ALTER TABLE t ADD b int", True),
        ("DROP TABLE t", True),
        ("TRUNCATE TABLE t", True),
        ("RENAME TABLE t TO u", True),
        ("LOCK TABLES t READ", True),
        ("ANALYZE TABLE t", True),
        ("CHECK TABLE t", True),  # (as MariaDB: test_sharded_maintenance)
        ("CHECKSUM TABLE t", False),
        ("CREATE TEMPORARY TABLE t (a int)", False),
        ("DROP TEMPORARY TABLE t", False),
        ("LOAD DATA INFILE 'f' INTO TABLE t", False),
        ("SELECT 1", False),
        ("INSERT INTO t VALUES (1)", False),
        ("UNLOCK TABLES", False),
    ],
)
def test_statements_that_commit_implicitly(sql: str, commits: bool) -> None:
    assert commits_implicitly(sql) is commits


@pytest.mark.parametrize(
    ("sql", "reads"),
    [
        ("SET @x = (SELECT count(*) FROM t)", True),
        ("SET @a = 1, @b = (select max(id) from t)", True),
        ("SET @x = 1", False),
        ("SET NAMES utf8mb4", False),
        ("SELECT 1", False),  # not a SET: a QUERY, in the transaction anyway
    ],
)
def test_sets_that_read_tables(sql: str, reads: bool) -> None:
    assert reads_tables(sql) is reads
