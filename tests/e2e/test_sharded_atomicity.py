"""Atomicity and error fidelity of writes over several partitions and of client transactions
on a sharded database, against one MariaDB: the same statements through the proxy on the
sharded database and directly on a plain twin database of the same name (same tables, same
rows) on the first shard, compared answer by answer -- rows or error (number, SQLSTATE,
text), affected rows, insert id, warnings, the OK packet's IN_TRANS flag -- and the tables'
contents afterwards.

The layout: ``atx`` over s0 and s1 with 4 physical databases (``atx_0000``, ``atx_0001`` on
s0; ``atx_0002``, ``atx_0003`` on s1); ``t`` split ``DBPARTITION BY HASH(id)`` (id lands in
physical database id mod 4), ``b`` broadcast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymysql
import pytest

from proxy.wire.packets import ServerStatus
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import (
    kill_connections,
    physical,
    plain_twin,
    sharded_database,
    xa_prepared,
)

DB = "atx"
PASSWORD = "Atx#pass1"
IN_TRANS = int(ServerStatus.IN_TRANS)
TABLES = [
    "CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v INT NOT NULL,"
    " c INT NOT NULL DEFAULT 0 CHECK (c >= 0), s VARCHAR(3) NOT NULL DEFAULT '')",
    "CREATE TABLE b (id INT NOT NULL PRIMARY KEY, v INT NOT NULL,"
    " c INT NOT NULL DEFAULT 0 CHECK (c >= 0), s VARCHAR(3) NOT NULL DEFAULT '')",
]
SPLITS = [" DBPARTITION BY HASH(id)", " BROADCAST"]
ROWS = [
    "INSERT INTO t (id, v) VALUES (1, 10), (2, 20), (3, 30), (4, 40)",
    "INSERT INTO b (id, v) VALUES (1, 10), (2, 20), (3, 30), (4, 40)",
]


@dataclass
class Twins:
    env: ProxyEnv


@pytest.fixture(scope="module")
def twins(proxy: ProxyEnv) -> Iterator[Twins]:
    setup = [table + split for table, split in zip(TABLES, SPLITS, strict=True)]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env, plain_twin(proxy, DB, TABLES):
        yield Twins(env)


def _reset(env: ProxyEnv) -> None:
    for index in range(4):
        physical(env, DB, index, "DELETE FROM t")
        physical(env, DB, index, "DELETE FROM b")
    conn = env.connect(DB, PASSWORD, database=DB)
    plain = connect_admin(env.shards[0], database=DB)
    try:
        with conn.cursor() as cur, plain.cursor() as pcur:
            pcur.execute("DELETE FROM t")
            pcur.execute("DELETE FROM b")
            for statement in ROWS:
                cur.execute(statement)
                pcur.execute(statement)
    finally:
        conn.close()
        plain.close()


@pytest.fixture
def pair(twins: Twins) -> Iterator[tuple[Any, Any]]:
    _reset(twins.env)
    ours = twins.env.connect(DB, PASSWORD, database=DB, autocommit=True)
    theirs = connect_admin(twins.env.shards[0], database=DB, autocommit=True)
    try:
        yield ours, theirs
    finally:
        ours.close()
        theirs.close()


def _run(conn: Any, sql: str, flags: bool = True) -> tuple[Any, ...]:
    """Everything the client sees of ``sql``: rows or the error, affected rows, insert id,
    warnings (SHOW WARNINGS after it), IN_TRANS and @@in_transaction (not with ``flags``
    false: under autocommit=0 the proxy's transaction starts at the first statement,
    README)."""
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            rows = tuple(cur.fetchall())
            affected = cur.rowcount
            # (with the OK's warning count)
            insert_id = cur.lastrowid, cur._result.warning_count
    except pymysql.err.MySQLError as exc:
        rows, affected, insert_id = ("error", *exc.args), None, None
    status = conn.server_status & IN_TRANS
    with conn.cursor() as cur:
        cur.execute("SHOW WARNINGS")
        warnings = tuple(cur.fetchall())
    if not flags:
        return rows, affected, insert_id, warnings
    with conn.cursor() as cur:
        cur.execute("SELECT @@in_transaction")
        in_transaction = cur.fetchone()
    return rows, affected, insert_id, warnings, status, in_transaction


def _contents(conn: Any) -> tuple[Any, ...]:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM t ORDER BY id")
        t = tuple(cur.fetchall())
        cur.execute("SELECT * FROM b ORDER BY id")
        return t, tuple(cur.fetchall())


def _alike(pair: tuple[Any, Any], statements: list[str], flags: bool = True) -> None:
    ours, theirs = pair
    for sql in statements:
        assert _run(ours, sql, flags) == _run(theirs, sql, flags), sql
    assert _contents(ours) == _contents(theirs)


SCENARIOS = {
    "duplicate on the second partition": [
        "INSERT INTO t (id, v) VALUES (5, 50), (2, 21), (7, 70)",
    ],
    "duplicate in a broadcast table": ["INSERT INTO b (id, v) VALUES (5, 50), (2, 21)"],
    "not null strict": ["INSERT INTO t (id, v) VALUES (5, 50), (6, NULL), (7, 70)"],
    "not null strict update": ["UPDATE t SET v = IF(id = 2, NULL, v + 1)"],
    "not null lax": [
        "SET SESSION sql_mode = ''",
        "INSERT INTO t (id, v) VALUES (5, 50), (6, NULL), (10, NULL), (8, 80)",
        "UPDATE t SET v = IF(id IN (2, 3), NULL, v + 1)",
        "INSERT INTO t (id, v, s) VALUES (9, 1, 'abcd'), (13, 1, 'abcde'), (11, 1, 'x')",
        "UPDATE b SET s = 'abcdef' WHERE id IN (1, 2)",
        "SET SESSION sql_mode = DEFAULT",
    ],
    "a column without a default, lax": [
        "SET SESSION sql_mode = ''",
        "INSERT INTO t (id) VALUES (5), (6), (7)",
        "INSERT INTO t (id, s) VALUES (9, 'abcdef'), (10, NULL), (14, 'x'), (12, 'y')",
        "INSERT INTO b (id) VALUES (5)",
        "SET SESSION sql_mode = DEFAULT",
    ],
    "strict truncation": [
        "INSERT INTO t (id, v, s) VALUES (5, 1, 'ab'), (9, 1, 'abcd')",
        "UPDATE b SET s = IF(id = 3, 'abcdef', 'x')",
    ],
    "check constraint": [
        "INSERT INTO t (id, v, c) VALUES (5, 50, 1), (6, 60, -1)",
        "UPDATE t SET c = IF(id = 3, -1, 1)",
        "DELETE FROM t WHERE id IN (1, 2)",
        "UPDATE b SET c = -1 WHERE id = 2",
    ],
    "duplicate update": ["UPDATE b SET id = 3 WHERE id = 2"],
    "insert ignore": [
        "INSERT IGNORE INTO t (id, v) VALUES (5, 50), (2, 21), (6, NULL), (3, 31)",
        "INSERT IGNORE INTO b (id, v) VALUES (5, 50), (2, 21)",
        "UPDATE IGNORE t SET c = IF(id = 3, -1, 2)",
    ],
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_autocommit_statements_fail_as_one(twins: Twins, pair: tuple[Any, Any], name: str) -> None:
    _alike(pair, SCENARIOS[name])
    assert not xa_prepared(twins.env.shards)


TRANSACTIONS = {
    "error on the second partition then commit": [
        "START TRANSACTION",
        "INSERT INTO t (id, v) VALUES (5, 50)",
        "INSERT INTO t (id, v) VALUES (6, 60), (2, 21)",
        "UPDATE t SET v = v + 1",
        "COMMIT",
    ],
    "strict error in a transaction": [
        "BEGIN",
        "INSERT INTO t (id, v) VALUES (5, 50), (6, NULL)",
        "UPDATE t SET c = IF(id = 3, -1, 1)",
        "SELECT * FROM t ORDER BY id",
        "COMMIT",
    ],
    "savepoints across partitions": [
        "BEGIN",
        "INSERT INTO t (id, v) VALUES (5, 50)",
        "SAVEPOINT a",
        "INSERT INTO t (id, v) VALUES (6, 60), (7, 70)",
        "UPDATE t SET v = 0 WHERE id = 2",
        "SAVEPOINT b",
        "DELETE FROM t",
        "SELECT * FROM t ORDER BY id",
        "ROLLBACK TO SAVEPOINT b",
        "SELECT * FROM t ORDER BY id",
        "ROLLBACK TO a",
        "SELECT * FROM t ORDER BY id",
        "INSERT INTO t (id, v) VALUES (8, 80), (2, 0)",
        "RELEASE SAVEPOINT a",
        "ROLLBACK TO a",
        "COMMIT",
    ],
    "read your writes and for update": [
        "BEGIN",
        "UPDATE t SET v = v * 2 WHERE id IN (1, 2, 3)",
        "INSERT INTO b (id, v) VALUES (9, 9)",
        "SELECT * FROM t WHERE id IN (1, 2, 3, 4) ORDER BY id FOR UPDATE",
        "SELECT * FROM b ORDER BY id FOR UPDATE",
        "SELECT sum(v), count(*) FROM t LOCK IN SHARE MODE",
        "ROLLBACK",
    ],
    "autocommit off": [
        "SET autocommit = 0",
        "INSERT INTO t (id, v) VALUES (5, 50), (6, 60)",
        "INSERT INTO t (id, v) VALUES (7, 70), (1, 0)",
        "ROLLBACK",
        "INSERT INTO t (id, v) VALUES (7, 70), (8, 80)",
        "COMMIT",
        "SET autocommit = 1",
    ],
}


@pytest.mark.parametrize("name", sorted(TRANSACTIONS))
def test_transactions(twins: Twins, pair: tuple[Any, Any], name: str) -> None:
    _alike(pair, TRANSACTIONS[name], name != "autocommit off")
    assert not xa_prepared(twins.env.shards)


def _holder(env: ProxyEnv, plain: bool, row: int, table: str = "t") -> Any:
    """A transaction holding row ``row``'s lock of ``t``: on the twin or on its partition."""
    if plain:
        conn = connect_admin(env.shards[0], database=DB, autocommit=False)
    else:
        # (in no database: kill_connections of the partition leaves it)
        conn = connect_admin(env.shards[(row % 4) * 2 // 4], autocommit=False)
        table = f"{DB}_{row % 4:04d}.{table}"
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(f"SELECT * FROM {table} WHERE id = {row} FOR UPDATE")
    return conn


LOCKED = {
    "autocommit scatter update": [
        "SET SESSION innodb_lock_wait_timeout = 1",
        "UPDATE t SET v = v + 1",
        "SELECT * FROM t ORDER BY id",
    ],
    "autocommit multi-row insert": [
        "SET SESSION innodb_lock_wait_timeout = 1",
        "INSERT INTO t (id, v) VALUES (5, 1), (9, 1), (6, 1) ON DUPLICATE KEY UPDATE v = 0",
        "INSERT INTO t (id, v) VALUES (5, 1), (2, 1), (6, 1) ON DUPLICATE KEY UPDATE v = 0",
    ],
    # MariaDB's DELETE puts its 1205 in the diagnostics area twice; the proxy's area holds
    # it once (the statement's error, as every other statement's).
    "autocommit delete": [
        "SET SESSION innodb_lock_wait_timeout = 1",
        "DELETE FROM t WHERE id IN (1, 2)",
    ],
    "in a transaction": [
        "SET SESSION innodb_lock_wait_timeout = 1",
        "BEGIN",
        "UPDATE t SET v = 0 WHERE id = 1",
        "INSERT INTO t (id, v) VALUES (5, 1)",
        "UPDATE t SET v = v + 1",
        "SELECT * FROM t ORDER BY id",
        "UPDATE t SET v = v + 1 WHERE id IN (1, 3, 5)",
        "COMMIT",
    ],
}


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(strict=True))
        if name == "autocommit delete"
        else name
        for name in sorted(LOCKED)
    ],
)
def test_lock_wait_timeouts(twins: Twins, pair: tuple[Any, Any], name: str) -> None:
    ours, theirs = pair
    for sql in LOCKED[name]:
        holders = [_holder(twins.env, False, 2), _holder(twins.env, True, 2)]
        try:
            assert _run(ours, sql) == _run(theirs, sql), sql
        finally:
            for holder in holders:
                holder.rollback()
                holder.close()
    assert _contents(ours) == _contents(theirs)
    assert not xa_prepared(twins.env.shards)


def test_a_partitions_table_dropped_behind_the_proxy(twins: Twins, pair: tuple[Any, Any]) -> None:
    ours, _ = pair
    env = twins.env
    physical(env, DB, 3, "DROP TABLE t")
    try:
        for sql in [
            "INSERT INTO t (id, v) VALUES (5, 50), (6, 60), (7, 70), (8, 80)",
            "UPDATE t SET v = v + 1",
            "DELETE FROM t",
        ]:
            got = _run(ours, sql)
            assert got[0][:2] == ("error", 1146), (sql, got)
            assert f"{DB}_0003" not in got[0][2], got
        with ours.cursor() as cur:
            cur.execute("SELECT * FROM t WHERE id IN (1, 2, 4, 5, 6, 8) ORDER BY id")
            assert cur.fetchall() == ((1, 10, 0, ""), (2, 20, 0, ""), (4, 40, 0, ""))
        ours.begin()
        with ours.cursor() as cur:
            cur.execute("INSERT INTO t (id, v) VALUES (5, 50)")
            got = _run(ours, "UPDATE t SET v = v + 1")
            assert got[0][:2] == ("error", 1146), got
            cur.execute("SELECT * FROM t WHERE id IN (1, 2, 4, 5, 6, 8) ORDER BY id")
            assert cur.fetchall() == (
                (1, 10, 0, ""),
                (2, 20, 0, ""),
                (4, 40, 0, ""),
                (5, 50, 0, ""),
            )
        ours.commit()
    finally:
        physical(env, DB, 3, TABLES[0])
    assert not xa_prepared(env.shards)


def _in_thread(conn: Any, sql: str) -> tuple[Any, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        out.append(_attempt(conn, sql))

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def _attempt(conn: Any, sql: str) -> Any:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return ("ok", cur.rowcount)
    except pymysql.err.MySQLError as exc:
        return ("error", *exc.args)


def _waiting(env: ProxyEnv, index: int) -> None:
    """Until a transaction on partition ``index``'s shard waits for a row lock. InnoDB
    refreshes information_schema.innodb_trx only when its last read is more than 0.1 s old:
    each read comes after a longer pause, else it could show an earlier test's wait."""
    admin = connect_admin(env.shards[index * 2 // 4])
    try:
        deadline = time.monotonic() + 10
        with admin.cursor() as cur:
            while True:
                time.sleep(0.2)
                cur.execute(
                    "SELECT count(*) FROM information_schema.innodb_trx"
                    " WHERE trx_state = 'LOCK WAIT'"
                )
                row = cur.fetchone()
                if row and row[0]:
                    return
                assert time.monotonic() < deadline
    finally:
        admin.close()


WRITES = [
    "UPDATE t SET v = v + 1",
    "INSERT INTO t (id, v) VALUES (5, 1), (6, 1), (2, 1) ON DUPLICATE KEY UPDATE v = 0",
    "UPDATE b SET v = v + 1",
]


@pytest.mark.parametrize("how", ["query", "connection", "close", "query-in-tx"])
@pytest.mark.parametrize("sql", WRITES)
def test_a_write_interrupted_while_a_partition_waits(
    twins: Twins, pair: tuple[Any, Any], how: str, sql: str
) -> None:
    env = twins.env
    ours, theirs = pair
    before = _contents(theirs)
    holder = _holder(env, False, 2, "b" if " b " in sql else "t")
    killer = env.connect(DB, PASSWORD, database=DB)
    try:
        if how == "query-in-tx":
            with ours.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("UPDATE t SET v = 7 WHERE id = 1")
        thread, out = _in_thread(ours, sql)
        _waiting(env, 2)
        if how == "close":
            ours._sock.shutdown(2)
        else:
            with killer.cursor() as cur:
                word = "CONNECTION" if how == "connection" else "QUERY"
                cur.execute(f"KILL {word} {ours.thread_id()}")
        thread.join(30)
        assert not thread.is_alive()
        if how in ("query", "query-in-tx"):
            assert out[0][:2] == ("error", 1317), out
            with ours.cursor() as cur:
                cur.execute("SELECT @@in_transaction")
                if how == "query-in-tx":
                    assert ours.server_status & IN_TRANS
                    cur.execute("COMMIT")
        elif how == "connection":
            assert out[0][1] in (1927, 2013), out
    finally:
        holder.rollback()
        holder.close()
        killer.close()
    time.sleep(0.5)
    check = env.connect(DB, PASSWORD, database=DB)
    try:
        after = _contents(check)
    finally:
        check.close()
    if how == "query-in-tx":
        expected_t = tuple((1, 7, 0, "") if r[0] == 1 else r for r in before[0])
        assert after == (expected_t, before[1])
    elif how == "close":
        # MariaDB does not notice a client gone until it writes to it: the statement may
        # have run to its end -- but all of it, or none.
        _run(theirs, sql)
        assert after in (before, _contents(theirs))
    else:
        assert after == before
    assert not xa_prepared(env.shards)


GAPS = {
    # A one-row INSERT makes NULL into a NOT NULL column an error even without strict mode
    # (MariaDB: count_cuted_fields is CHECK_FIELD_ERROR_FOR_NULL for one row): the
    # partition given one row of the client's several fails where MariaDB warns.
    "null into not null, one row on a partition": [
        "SET SESSION sql_mode = ''",
        "INSERT INTO t (id, v) VALUES (5, 50), (6, NULL), (7, NULL), (8, 80)",
    ],
    # "at row N" counts the rows of the partition's statement, not of the client's.
    "row number of an error": ["INSERT INTO t (id, v, s) VALUES (5, 1, 'ab'), (6, 1, 'abcd')"],
    # (an UPDATE's counts the rows MariaDB read before, in its order over the whole table)
    "row number of an update's error": ["UPDATE t SET s = IF(id = 3, 'abcdef', 'x')"],
    # Several partitions fail: the first partition's error, not the first row's.
    "the first row's error": ["INSERT INTO t (id, v) VALUES (6, NULL), (5, 50), (1, 1)"],
}


@pytest.mark.xfail(strict=True, reason="README, Sharded databases: not MariaDB's answer yet")
@pytest.mark.parametrize("name", sorted(GAPS))
def test_known_gaps(twins: Twins, pair: tuple[Any, Any], name: str) -> None:
    _alike(pair, GAPS[name])


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE t SET v = v + 1 WHERE id IN (1, 2, 6, 3)",
        "INSERT INTO t (id, v) VALUES (5, 1), (2, 1), (6, 1) ON DUPLICATE KEY UPDATE v = v + 1",
    ],
)
def test_a_deadlock_on_one_branch_of_an_autocommit_write(
    twins: Twins, pair: tuple[Any, Any], sql: str
) -> None:
    """A deadlock between the write's branch on partition 2 and a transaction there: whoever
    InnoDB chose, the write is all or nothing and the session goes on outside a transaction."""
    env = twins.env
    ours, theirs = pair
    physical(env, DB, 2, "INSERT INTO t (id, v) VALUES (6, 60)")
    with theirs.cursor() as cur:
        cur.execute("INSERT INTO t (id, v) VALUES (6, 60)")
    before = _contents(theirs)
    holder = connect_admin(env.shards[1], database=f"{DB}_0002", autocommit=False)
    try:
        with holder.cursor() as cur:
            cur.execute("BEGIN")
            cur.execute("SELECT * FROM t WHERE id = 6 FOR UPDATE")
        thread, out = _in_thread(ours, sql)
        _waiting(env, 2)
        other = _attempt(holder, "UPDATE t SET v = 0 WHERE id = 2")
        holder.rollback()
        thread.join(30)
        assert not thread.is_alive()
    finally:
        holder.close()
    result = out[0]
    if result[0] == "error":
        assert result[1:] == (
            1213,
            "Deadlock found when trying to get lock; try restarting transaction",
        )
        assert _contents(ours) == before
    else:  # (the holder was the victim, or its update did not wait for the write's lock)
        assert other[0] == "ok" or other[1] == 1213, other
        _run(theirs, sql)
        assert _contents(ours) == _contents(theirs)
    _run(ours, "SELECT 1")
    assert not ours.server_status & IN_TRANS
    assert not xa_prepared(env.shards)


@pytest.mark.parametrize("sql", WRITES)
@pytest.mark.parametrize("in_transaction", [False, True])
def test_a_partitions_connection_killed_while_it_waits(
    twins: Twins, pair: tuple[Any, Any], sql: str, in_transaction: bool
) -> None:
    """The shard ends the write's connection to partition 2 (as a shard restarted would)
    while the statement waits there for a row lock: the client gets an error, nothing of the
    statement (or of its transaction) is left on the other partitions, no branch prepared."""
    env = twins.env
    ours, theirs = pair
    before = _contents(theirs)
    holder = _holder(env, False, 2, "b" if " b " in sql else "t")
    try:
        if in_transaction:
            with ours.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("UPDATE t SET v = 7 WHERE id = 1")
        thread, out = _in_thread(ours, sql)
        _waiting(env, 2)
        kill_connections(env.shards, DB, 2)
        thread.join(30)
        assert not thread.is_alive()
    finally:
        holder.close()
    assert out[0][0] == "error", out
    check = env.connect(DB, PASSWORD, database=DB)
    try:
        assert _contents(check) == before
    finally:
        check.close()
    assert not xa_prepared(env.shards)
    # Nothing of it holds a lock any more (the session still open, outside a transaction,
    # or ended): every row can be locked by another transaction.
    for index in range(4):
        admin = connect_admin(env.shards[index // 2], database=f"{DB}_{index:04d}")
        try:
            with admin.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = 3")
                cur.execute("BEGIN")
                cur.execute("SELECT count(*) FROM t FOR UPDATE")
                cur.execute("SELECT count(*) FROM b FOR UPDATE")
                cur.execute("ROLLBACK")
        finally:
            admin.close()
    if not in_transaction and out[0][2].startswith("Lost connection to backend"):
        with ours.cursor() as cur:  # (the session went on)
            cur.execute("UPDATE t SET v = v")


INFO_WRITES = [
    "UPDATE t SET v = v",
    "UPDATE t SET v = 20 WHERE id IN (1, 2, 3)",
    "INSERT INTO t (id, v) VALUES (11, 1), (12, 1), (13, 1), (15, 1)",
    "DELETE FROM t WHERE id > 10",
    "UPDATE b SET v = 20 WHERE id IN (1, 2, 3)",
    # (parts of one row: their OKs carry no info, and how many were duplicates is not known)
    pytest.param(
        "INSERT INTO t (id, v) VALUES (1, 1), (2, 20), (7, 7) ON DUPLICATE KEY UPDATE v = 1",
        marks=pytest.mark.xfail(strict=True),
    ),
    pytest.param(
        "REPLACE INTO t (id, v) VALUES (1, 5), (2, 5), (8, 8)",
        marks=pytest.mark.xfail(strict=True),
    ),
]


@pytest.mark.parametrize("sql", INFO_WRITES)
@pytest.mark.parametrize("found_rows", [False, True])
def test_counts_and_info_of_writes_over_several_partitions(
    twins: Twins, found_rows: bool, sql: str
) -> None:
    """Affected rows (matched rows with CLIENT_FOUND_ROWS) and the OK's info text."""
    _reset(twins.env)
    flag = pymysql.constants.CLIENT.FOUND_ROWS if found_rows else 0
    ours = twins.env.connect(DB, PASSWORD, database=DB, client_flag=flag)
    theirs = connect_admin(twins.env.shards[0], database=DB, autocommit=True, client_flag=flag)
    try:
        answers = []
        for conn in (ours, theirs):
            with conn.cursor() as cur:
                cur.execute(sql)
                answers.append((cur.rowcount, cur._result.message))
        assert answers[0] == answers[1], sql
    finally:
        ours.close()
        theirs.close()
