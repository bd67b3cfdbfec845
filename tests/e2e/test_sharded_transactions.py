"""Client transactions on a sharded database, through real clients, on two real MariaDB shards.

The proxy runs them as XA transactions across the physical databases they reach (README,
"Sharded databases"). The layout: ``txdb`` over s0 and s1 with 4 physical databases
(``txdb_0000``, ``txdb_0001`` on s0; ``txdb_0002``, ``txdb_0003`` on s1); the tables are split
``DBPARTITION BY HASH(id)``, so id lands in physical database id mod 4.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiomysql
import asyncmy
import pymysql
import pytest

from proxy.dev.localshard import ShardEndpoint
from proxy.wire.packets import ServerStatus
from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, ServerError
from tests.e2e.conftest import ProxyEnv
from tests.e2e.served import serve, stop
from tests.e2e.sharded import (
    kill_connections,
    physical,
    recovering_proxy,
    separate_database,
    sharded_database,
    xa_prepared,
)

PASSWORD = "Sharded#pass1"
DB = "txdb"
IN_TRANS = int(ServerStatus.IN_TRANS)


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE acct (id int PRIMARY KEY, v int) DBPARTITION BY HASH(id)",
        "CREATE TABLE note (k int PRIMARY KEY, v int)",  # single: txdb_0000
        "CREATE TABLE single (id int PRIMARY KEY, v int)",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        yield env


@pytest.fixture
def clean(sharded: ProxyEnv) -> ProxyEnv:
    for index in range(4):
        physical(sharded, DB, index, "DELETE FROM acct")
    physical(sharded, DB, 0, "DELETE FROM note")
    physical(sharded, DB, 0, "DELETE FROM single")
    return sharded


def _client(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB, **kwargs)


def _everywhere(env: ProxyEnv) -> list[tuple[Any, ...]]:
    """Every row of ``acct``, read on the shards themselves."""
    rows: list[tuple[Any, ...]] = []
    for index in range(4):
        rows += physical(env, DB, index, "SELECT id, v FROM acct")
    return sorted(rows)


def _writing_transactions(endpoint: ShardEndpoint) -> int:
    """How many transactions on the shard hold changes (committed ones are gone). InnoDB
    fills information_schema.innodb_trx from a cache it refreshes only when the last read
    (anyone's: a wait for a lock wait reads it too) is more than 0.1 s old: read after that,
    it is the table now."""
    time.sleep(0.15)
    admin = connect_admin(endpoint)
    try:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_rows_modified > 0"
            )
            row = cur.fetchone()
            assert row is not None
            return int(row[0])
    finally:
        admin.close()


def _wait_for_lock_wait(endpoint: ShardEndpoint, query: str, waiting: threading.Thread) -> None:
    """Until a transaction on the shard runs ``query`` and waits for a row lock (InnoDB's
    ``LOCK WAIT``), with a generous bound; fails if ``waiting``, the thread that sends it,
    ended first (its statement did not wait). InnoDB refreshes information_schema.innodb_trx
    only when its last read is more than 0.1 s old: asked more often, it would show the
    same old table for ever."""
    admin = connect_admin(endpoint)
    try:
        deadline = time.monotonic() + 60
        with admin.cursor() as cur:
            while True:
                cur.execute(
                    "SELECT count(*) FROM information_schema.innodb_trx"
                    " WHERE trx_state = 'LOCK WAIT' AND trx_query = %s",
                    (query,),
                )
                row = cur.fetchone()
                if row is not None and int(row[0]) > 0:
                    return
                assert waiting.is_alive(), f"{query!r} ended without waiting for a lock"
                assert time.monotonic() < deadline, f"{query!r} never waited for a lock"
                time.sleep(0.2)  # (> 0.1 s between reads: see the docstring)
    finally:
        admin.close()


def test_pymysql_default_autocommit_off_commit_and_rollback(clean: ProxyEnv) -> None:
    """PyMySQL's default (autocommit=0): rows into every partition, then commit -> all there;
    then rollback -> none; a second client sees nothing uncommitted."""
    env = clean
    conn = _client(env, autocommit=False)
    other = _client(env)
    try:
        with conn.cursor() as cur:
            for key in range(1, 9):  # two rows in each physical database
                cur.execute("INSERT INTO acct VALUES (%s, %s)", (key, key * 10))
            assert conn.server_status & IN_TRANS
            cur.execute("INSERT INTO note VALUES (1, 1)")  # a single table, in the same one
            # A SET reading a table is in it too (it would start a local transaction there).
            cur.execute("SET @notes = (SELECT count(*) FROM note)")
            cur.execute("SELECT @notes")
            assert cur.fetchone() == (1,)
            cur.execute("SELECT count(*) FROM acct WHERE id IN (1, 2, 3, 4)")
            assert cur.fetchone() == (4,)  # its own writes, in every branch
            with other.cursor() as seen:
                seen.execute("SELECT id FROM acct WHERE id IN (1, 2, 3, 4)")
                assert seen.fetchall() == ()
                seen.execute("SELECT * FROM note")
                assert seen.fetchall() == ()
            assert _everywhere(env) == []
        conn.commit()
        assert not conn.server_status & IN_TRANS
        assert _everywhere(env) == [(k, k * 10) for k in range(1, 9)]
        with conn.cursor() as cur:
            # The first statement of the next transaction: a SET reading a table.
            cur.execute("SET @notes = (SELECT count(*) FROM note)")
            cur.execute("INSERT INTO acct VALUES (16, 160)")
        conn.commit()
        assert physical(env, DB, 0, "SELECT v FROM acct WHERE id = 16") == [(160,)]
        physical(env, DB, 0, "DELETE FROM acct WHERE id = 16")
        assert physical(env, DB, 0, "SELECT * FROM note") == [(1, 1)]
        assert xa_prepared(env.shards) == []

        with conn.cursor() as cur:
            cur.execute("UPDATE acct SET v = 0 WHERE id IN (1, 2, 3)")
            cur.execute("INSERT INTO acct VALUES (12, 1), (13, 1)")
            cur.execute("DELETE FROM note")
        conn.rollback()
        assert not conn.server_status & IN_TRANS
        assert _everywhere(env) == [(k, k * 10) for k in range(1, 9)]
        assert physical(env, DB, 0, "SELECT * FROM note") == [(1, 1)]
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM acct WHERE id IN (12, 13)")
            assert cur.fetchone() == (0,)
        conn.commit()
    finally:
        conn.close()
        other.close()


def test_begin_commit_rollback_as_text(clean: ProxyEnv) -> None:
    env = clean
    conn = _client(env)  # autocommit on
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            assert conn.server_status & IN_TRANS
            cur.execute("INSERT INTO acct VALUES (1, 1)")  # physical database 1
            cur.execute("INSERT INTO acct VALUES (2, 2)")  # 2
            assert _everywhere(env) == []
            cur.execute("COMMIT")
            assert not conn.server_status & IN_TRANS
            assert _everywhere(env) == [(1, 1), (2, 2)]

            cur.execute("START TRANSACTION")
            cur.execute("UPDATE acct SET v = v + 1 WHERE id IN (1, 2)")
            assert cur.rowcount == 2
            cur.execute("INSERT INTO acct VALUES (3, 3), (4, 4)")
            cur.execute("ROLLBACK")
            assert _everywhere(env) == [(1, 1), (2, 2)]

            # One physical database only: committed in one phase.
            cur.execute("BEGIN")
            cur.execute("UPDATE acct SET v = 5 WHERE id = 3")
            cur.execute("INSERT INTO acct VALUES (7, 7)")
            cur.execute("COMMIT")
            assert physical(env, DB, 3, "SELECT id, v FROM acct") == [(7, 7)]

            # BEGIN inside a transaction commits it first, as MariaDB does.
            cur.execute("BEGIN")
            cur.execute("INSERT INTO acct VALUES (8, 8), (9, 9)")
            cur.execute("BEGIN")
            assert sorted(physical(env, DB, 0, "SELECT id FROM acct")) == [(8,)]
            cur.execute("DELETE FROM acct WHERE id IN (8, 9)")
            cur.execute("ROLLBACK")
            assert (8, 8) in _everywhere(env) and (9, 9) in _everywhere(env)

            # READ ONLY: the shards refuse writes in it.
            cur.execute("START TRANSACTION READ ONLY")
            assert conn.server_status & int(ServerStatus.IN_TRANS_READONLY)
            cur.execute("SELECT v FROM acct WHERE id = 1")
            assert cur.fetchone() == (1,)
            with pytest.raises(pymysql.err.MySQLError) as read_only:
                cur.execute("UPDATE acct SET v = 0 WHERE id = 2")
            assert read_only.value.args[0] == 1792
            cur.execute("COMMIT")

            # SET autocommit=0, then SET autocommit=1 commits the open transaction (here with
            # another variable, as MariaDB Connector/J sends it).
            cur.execute("SET autocommit = 0")
            cur.execute("INSERT INTO acct VALUES (10, 10), (11, 11)")
            assert physical(env, DB, 2, "SELECT id FROM acct WHERE id = 10") == []
            cur.execute("SET autocommit = 1, sql_mode = concat(@@sql_mode, ',ANSI_QUOTES')")
            assert not conn.server_status & IN_TRANS
            assert physical(env, DB, 2, "SELECT id FROM acct WHERE id = 10") == [(10,)]
            assert physical(env, DB, 3, "SELECT id FROM acct WHERE id = 11") == [(11,)]
            cur.execute('SELECT "v" FROM acct WHERE id = 10')  # ANSI_QUOTES, read back
            assert cur.fetchall() == ((10,),)
    finally:
        conn.close()
    assert xa_prepared(env.shards) == []


def test_a_failure_in_the_middle_keeps_the_transaction(clean: ProxyEnv) -> None:
    """A statement that fails inside the transaction fails alone (a multi-partition one as a
    whole); the transaction goes on and commits the rest."""
    env = clean
    physical(env, DB, 1, "INSERT INTO acct VALUES (5, 0)")
    conn = _client(env, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO acct VALUES (2, 2)")
            # 4 (db 0) would be inserted, 5 (db 1) is a duplicate: neither is applied.
            with pytest.raises(pymysql.err.IntegrityError) as duplicate:
                cur.execute("INSERT INTO acct VALUES (4, 4), (5, 5)")
            assert duplicate.value.args[0] == 1062
            with pytest.raises(pymysql.err.MySQLError) as unknown:
                cur.execute("SELECT nope FROM acct WHERE id = 3")
            assert unknown.value.args[0] == 1054
            assert conn.server_status & IN_TRANS
            cur.execute("INSERT INTO acct VALUES (3, 3)")
        conn.commit()
        assert _everywhere(env) == [(2, 2), (3, 3), (5, 0)]
    finally:
        conn.close()


def test_savepoints_span_every_branch(clean: ProxyEnv) -> None:
    """SAVEPOINT, ROLLBACK TO SAVEPOINT and RELEASE SAVEPOINT in a transaction across
    partitions behave as on one MariaDB: a rollback to a savepoint undoes what followed it on
    every branch, those the transaction reached only after it included; the savepoints after
    it are gone; a name set again moves; names compare case-insensitively."""
    env = clean
    conn = _client(env, autocommit=False)

    def fails(sql: str) -> int:
        with pytest.raises(pymysql.err.MySQLError) as info, conn.cursor() as cur:
            cur.execute(sql)
        return int(info.value.args[0])

    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO acct VALUES (1, 1)")  # db 1
            cur.execute("SAVEPOINT a")
            cur.execute("INSERT INTO acct VALUES (2, 2)")  # db 2: its branch starts after a
            cur.execute("SAVEPOINT b")
            cur.execute("INSERT INTO acct VALUES (3, 3)")  # db 3
            cur.execute("UPDATE acct SET v = 10 WHERE id = 1")
            cur.execute("SELECT id, v FROM acct ORDER BY id")
            assert cur.fetchall() == ((1, 10), (2, 2), (3, 3))
            cur.execute("ROLLBACK TO SAVEPOINT a")
            cur.execute("SELECT id, v FROM acct ORDER BY id")
            assert cur.fetchall() == ((1, 1),)
            assert fails("RELEASE SAVEPOINT b") == 1305  # later than a: gone
            assert fails("ROLLBACK TO `nope`") == 1305
            assert fails("SAVEPOINT shardgate_statement") == 1235
            cur.execute("SAVEPOINT `A`")
            cur.execute("INSERT INTO acct VALUES (4, 4)")  # db 0
            cur.execute("SAVEPOINT c")
            cur.execute("INSERT INTO acct VALUES (5, 5)")
            cur.execute("ROLLBACK WORK TO c")
            cur.execute("RELEASE SAVEPOINT a")  # a (set again as A) and c after it
            assert fails("ROLLBACK TO SAVEPOINT c") == 1305
            assert conn.server_status & IN_TRANS
        conn.commit()
        assert _everywhere(env) == [(1, 1), (4, 4)]
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql", ["SAVEPOINT c", "ROLLBACK TO SAVEPOINT c", "RELEASE SAVEPOINT c", "START TRANSACTION"]
)
def test_transaction_statements_are_not_prepared(clean: ProxyEnv, sql: str) -> None:
    """A prepared transaction statement ran on physical database 0 alone: a ROLLBACK TO
    SAVEPOINT set on every branch undid the work of database 0's branch and kept the others'
    (the transaction committed (10, 10), (11, 11), (13, 13), without (12, 12)). Refused
    (1235); the text statement works."""
    env = clean
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        client.query("START TRANSACTION")
        client.query("INSERT INTO acct VALUES (10, 10)")
        client.query("SAVEPOINT c")
        client.query("INSERT INTO acct VALUES (12, 12)")  # db 0
        client.query("INSERT INTO acct VALUES (13, 13)")  # db 1
        with pytest.raises(ServerError) as refused:
            client.prepare(sql)
        assert refused.value.errno == 1235
        client.query("ROLLBACK TO SAVEPOINT c")
        client.query("COMMIT")
    finally:
        client.close()
    assert _everywhere(env) == [(10, 10)]


def test_ddl_commits_the_transaction_first(clean: ProxyEnv) -> None:
    """As MariaDB: DDL (here on a sharded and on a single table) commits the open transaction,
    then runs."""
    env = clean
    conn = _client(env, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO acct VALUES (1, 1), (2, 2)")
            cur.execute("CREATE TABLE scratch (id int PRIMARY KEY) DBPARTITION BY HASH(id)")
            assert _everywhere(env) == [(1, 1), (2, 2)]
            cur.execute("INSERT INTO acct VALUES (3, 3)")
            cur.execute("CREATE TABLE single_scratch (id int PRIMARY KEY)")
            assert (3, 3) in _everywhere(env)
            cur.execute("DROP TABLE scratch")
            cur.execute("DROP TABLE single_scratch")
        conn.commit()
    finally:
        conn.close()


def _crossed(
    first: pymysql.connections.Connection[Any],
    second: pymysql.connections.Connection[Any],
    rows: tuple[int, int],
    table: str = "acct",
) -> dict[str, int]:
    """Each client has locked one of ``rows``; now each asks for the other's. The errors
    each got, by client."""
    errors: dict[str, int] = {}

    def blocked() -> None:
        try:
            with first.cursor() as a:
                a.execute(f"UPDATE {table} SET v = 1 WHERE id = %s", (rows[1],))  # waits
        except pymysql.err.MySQLError as exc:
            errors["first"] = exc.args[0]

    waiting = threading.Thread(target=blocked)
    waiting.start()
    time.sleep(0.5)  # (ordering only: the assertions do not depend on it)
    try:
        with second.cursor() as b:
            b.execute(f"UPDATE {table} SET v = 2 WHERE id = %s", (rows[0],))  # waits
    except pymysql.err.MySQLError as exc:
        errors["second"] = exc.args[0]
    waiting.join(timeout=60)
    return errors


def test_a_deadlock_rolls_back_the_whole_distributed_transaction(clean: ProxyEnv) -> None:
    """Two clients, each with branches on both shards, lock two rows of one physical database
    in opposite orders: the shard finds the deadlock, one gets 1213 and its whole transaction
    (every branch) is rolled back; the other goes on and commits; nothing half-committed."""
    env = clean
    physical(env, DB, 1, "INSERT INTO acct VALUES (1, 0), (5, 0)")
    first = _client(env, autocommit=False)
    second = _client(env, autocommit=False)
    try:
        with first.cursor() as a, second.cursor() as b:
            a.execute("INSERT INTO acct VALUES (2, 1)")  # a branch on s1 (database 2)
            a.execute("UPDATE acct SET v = 1 WHERE id = 1")  # database 1 (s0)
            b.execute("INSERT INTO acct VALUES (3, 2)")  # a branch on s1 (database 3)
            b.execute("UPDATE acct SET v = 2 WHERE id = 5")  # database 1 (s0)
        errors = _crossed(first, second, (1, 5))
        assert list(errors.values()) == [1213], errors
        loser, winner = (first, second) if "first" in errors else (second, first)
        winner.commit()
        # The loser's branch on the other shard was rolled back at the deadlock already.
        assert [_writing_transactions(endpoint) for endpoint in env.shards] == [0, 0]
        loser.rollback()
        if loser is first:
            assert _everywhere(env) == [(1, 2), (3, 2), (5, 2)]
        else:
            assert _everywhere(env) == [(1, 1), (2, 1), (5, 1)]
        assert xa_prepared(env.shards) == []
    finally:
        first.close()
        second.close()


def test_a_deadlock_in_a_scatter_read_rolls_back_every_branch(clean: ProxyEnv) -> None:
    """The deadlock found under a SELECT ... FOR UPDATE of every partition (its error comes
    in the middle of the concatenated result): the whole transaction is rolled back at once."""
    env = clean
    physical(env, DB, 1, "INSERT INTO acct VALUES (1, 0), (5, 0)")
    first = _client(env, autocommit=False)
    second = _client(env, autocommit=False)
    errors: dict[str, int] = {}
    try:
        with first.cursor() as a, second.cursor() as b:
            a.execute("INSERT INTO acct VALUES (2, 1)")  # a branch on s1
            a.execute("UPDATE acct SET v = 1 WHERE id = 1")
            # The second does more (the shard picks the lighter transaction as the victim).
            b.execute("INSERT INTO acct VALUES (3, 2), (9, 2), (13, 2), (17, 2)")
            b.execute("UPDATE acct SET v = 2 WHERE id = 5")

            def blocked() -> None:
                try:
                    with second.cursor() as waiting_cursor:
                        waiting_cursor.execute("UPDATE acct SET v = 2 WHERE id = 1")
                except pymysql.err.MySQLError as exc:
                    errors["second"] = exc.args[0]

            waiting = threading.Thread(target=blocked)
            waiting.start()
            # The second's UPDATE waits for the first's lock on the shard before the first
            # reads: the cycle closes under the first's read, whatever the machine's load.
            _wait_for_lock_wait(env.shards[0], "UPDATE acct SET v = 2 WHERE id = 1", waiting)
            try:
                a.execute("SELECT * FROM acct FOR UPDATE")
            except pymysql.err.MySQLError as exc:
                errors["first"] = exc.args[0]
            waiting.join(timeout=60)
        assert errors == {"first": 1213}
        second.commit()
        # The first's branch on the other shard was rolled back at the deadlock already.
        assert [_writing_transactions(endpoint) for endpoint in env.shards] == [0, 0]
        first.rollback()
        assert _everywhere(env) == [(1, 2), (3, 2), (5, 2), (9, 2), (13, 2), (17, 2)]
    finally:
        first.close()
        second.close()


def test_a_deadlock_on_a_single_table_rolls_back_every_branch(clean: ProxyEnv) -> None:
    """The same on a single table (physical database 0, the statements the session relays on
    its own connection): the loser's branches on both shards are rolled back too."""
    env = clean
    physical(env, DB, 0, "INSERT INTO single VALUES (1, 0), (2, 0)")
    first = _client(env, autocommit=False)
    second = _client(env, autocommit=False)
    try:
        with first.cursor() as a, second.cursor() as b:
            a.execute("INSERT INTO acct VALUES (2, 1), (1, 1)")  # branches on s1 and s0
            a.execute("UPDATE single SET v = 1 WHERE id = 1")
            b.execute("INSERT INTO acct VALUES (3, 2), (5, 2)")
            b.execute("UPDATE single SET v = 2 WHERE id = 2")
        errors = _crossed(first, second, (1, 2), "single")
        assert list(errors.values()) == [1213], errors
        loser, winner = (first, second) if "first" in errors else (second, first)
        winner.commit()
        assert [_writing_transactions(endpoint) for endpoint in env.shards] == [0, 0]
        loser.rollback()
        single = physical(env, DB, 0, "SELECT id, v FROM single ORDER BY id")
        if loser is first:
            assert (_everywhere(env), single) == ([(3, 2), (5, 2)], [(1, 2), (2, 2)])
        else:
            assert (_everywhere(env), single) == ([(1, 1), (2, 1)], [(1, 1), (2, 1)])
        assert xa_prepared(env.shards) == []
    finally:
        first.close()
        second.close()


def test_a_deadlock_across_physical_databases_ends_in_lock_wait_timeouts(
    clean: ProxyEnv,
) -> None:
    """Locks crossed over two physical databases: no one shard sees a cycle, so each waiting
    statement ends with 1205 after innodb_lock_wait_timeout, rolled back alone as on MariaDB
    (the transaction stays open); the client that rolls back leaves nothing, the other
    commits all of its work."""
    env = clean
    physical(env, DB, 1, "INSERT INTO acct VALUES (1, 0)")
    physical(env, DB, 0, "INSERT INTO acct VALUES (4, 0)")
    first = _client(env, autocommit=False)
    second = _client(env, autocommit=False)
    try:
        with first.cursor() as a, second.cursor() as b:
            a.execute("SET innodb_lock_wait_timeout = 1")
            b.execute("SET innodb_lock_wait_timeout = 1")
            a.execute("INSERT INTO acct VALUES (2, 1)")
            a.execute("UPDATE acct SET v = 1 WHERE id = 1")  # database 1
            b.execute("INSERT INTO acct VALUES (3, 2)")
            b.execute("UPDATE acct SET v = 2 WHERE id = 4")  # database 0
        errors = _crossed(first, second, (1, 4))
        assert 1205 in errors.values(), errors
        assert set(errors.values()) <= {1205}, errors
        assert first.server_status & IN_TRANS
        first.rollback()
        second.commit()
        assert _everywhere(env) == [(1, 0 if "second" in errors else 2), (3, 2), (4, 2)]
        assert xa_prepared(env.shards) == []
    finally:
        first.close()
        second.close()


def test_a_client_gone_mid_transaction_rolls_back_every_branch(clean: ProxyEnv) -> None:
    env = clean
    conn = _client(env, autocommit=False)
    with conn.cursor() as cur:
        cur.execute("INSERT INTO acct VALUES (1, 1), (2, 2), (3, 3)")
        cur.execute("UPDATE acct SET v = 9 WHERE id = 1")
    conn.close()  # no commit
    # The branches are rolled back and their locks released: another client writes the rows.
    other = _client(env, autocommit=False, read_timeout=20)
    try:
        with other.cursor() as cur:
            cur.execute("INSERT INTO acct VALUES (1, 10), (2, 20), (3, 30)")
        other.commit()
    finally:
        other.close()
    assert _everywhere(env) == [(1, 10), (2, 20), (3, 30)]
    deadline = time.monotonic() + 10
    while xa_prepared(env.shards):
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("crash_at", "committed"), [("after-decision", True), ("after-prepare", False)]
)
def test_a_proxy_killed_between_prepare_and_commit_of_a_client_transaction(
    shards: list[ShardEndpoint],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    crash_at: str,
    committed: bool,
) -> None:
    """kill -9 of the proxy at the client's COMMIT, after every branch was prepared: the next
    proxy to start commits the branches when "commit" was recorded, rolls them back when it
    was not -- on both shards alike."""
    name = "txcdb" if committed else "txadb"
    with separate_database(shards, tmp_path, name, PASSWORD) as (config_path, port):
        monkeypatch.setenv("SHARDGATE_TEST_XA_CRASH", crash_at)
        dying = serve(config_path, port)
        try:
            client = pymysql.connect(
                host="127.0.0.1", port=port, user=name, password=PASSWORD, database=name
            )  # PyMySQL's default: autocommit=0
            with client.cursor() as cur:
                cur.execute(
                    "CREATE TABLE crash (id int PRIMARY KEY, v int) DBPARTITION BY HASH(id)"
                )
                cur.execute("INSERT INTO crash VALUES (1, 1)")  # physical database 1 (s0)
                cur.execute("INSERT INTO crash VALUES (2, 1)")  # physical database 2 (s1)
                cur.execute("INSERT INTO crash VALUES (6, 1)")  # 2 again
            with pytest.raises(pymysql.err.OperationalError):
                client.commit()
            client.close()
            assert dying.wait(timeout=30) == -signal.SIGKILL
        finally:
            if dying.poll() is None:
                dying.kill()
            dying.communicate(timeout=30)
        assert len(xa_prepared(shards)) == 2  # a branch per physical database
        admin0 = connect_admin(shards[0], database=f"{name}_0001")
        try:
            with admin0.cursor() as cur:
                cur.execute("SELECT id FROM crash")
                assert cur.fetchall() == ()
        finally:
            admin0.close()
        with recovering_proxy(config_path, port, shards, monkeypatch):
            client = pymysql.connect(
                host="127.0.0.1",
                port=port,
                user=name,
                password=PASSWORD,
                database=name,
                autocommit=True,
            )
            try:
                with client.cursor() as cur:
                    cur.execute("SELECT id FROM crash WHERE id IN (1, 2, 6)")
                    found = sorted(row[0] for row in cur.fetchall())
                    assert found == ([1, 2, 6] if committed else [])
            finally:
                client.close()


def test_broadcast_writes_chain_and_refusals_inside_a_transaction(clean: ProxyEnv) -> None:
    """A broadcast table's copies change together with the rest of the transaction; COMMIT AND
    CHAIN opens the next one; what the proxy cannot carry across branches is 1235."""
    env = clean
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS region (id int PRIMARY KEY, n int) BROADCAST")
            cur.execute("DELETE FROM region")
            cur.execute("BEGIN")
            cur.execute("INSERT INTO region VALUES (1, 1)")  # every copy, in their branches
            cur.execute("INSERT INTO acct VALUES (3, 3)")
            assert [physical(env, DB, i, "SELECT * FROM region") for i in range(4)] == [[]] * 4
            cur.execute("ROLLBACK")
            assert [physical(env, DB, i, "SELECT * FROM region") for i in range(4)] == [[]] * 4
            assert _everywhere(env) == []

            cur.execute("BEGIN")
            cur.execute("INSERT INTO region VALUES (2, 2)")
            cur.execute("COMMIT AND CHAIN")
            assert conn.server_status & IN_TRANS
            assert [physical(env, DB, i, "SELECT * FROM region") for i in range(4)] == [
                [(2, 2)]
            ] * 4
            cur.execute("INSERT INTO acct VALUES (1, 1)")
            with pytest.raises(pymysql.err.MySQLError) as next_only:
                cur.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
            assert next_only.value.args[0] == 1568  # as MariaDB: a transaction is open
            with pytest.raises(pymysql.err.MySQLError) as expression:
                cur.execute("SET autocommit = 1 - @@autocommit")
            assert expression.value.args[0] == 1235
            cur.execute("SELECT id FROM acct WHERE id = 1")
            assert cur.fetchall() == ((1,),)
            cur.execute("COMMIT")
            assert not conn.server_status & IN_TRANS
            assert _everywhere(env) == [(1, 1)]
            cur.execute("DROP TABLE region")
    finally:
        conn.close()


@pytest.mark.parametrize("use_pure", [True, False])
def test_mysql_connector_default_transactions(clean: ProxyEnv, use_pure: bool) -> None:
    """mysql-connector-python (autocommit off by default, ``start_transaction()`` sends START
    TRANSACTION): rows in several partitions, committed together and rolled back together."""
    env = clean
    conn = env.connector(DB, PASSWORD, database=DB, use_pure=use_pure)
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO acct VALUES (1, 1), (2, 2), (3, 3)")
        assert _everywhere(env) == []
        conn.commit()
        assert _everywhere(env) == [(1, 1), (2, 2), (3, 3)]
        conn.start_transaction(isolation_level="READ COMMITTED")
        cur.execute("UPDATE acct SET v = 0 WHERE id IN (1, 2, 3)")
        assert cur.rowcount == 3
        # SET TRANSACTION ISOLATION LEVEL reached every branch (on both shards).
        levels = []
        for endpoint in env.shards:
            admin = connect_admin(endpoint)
            try:
                with admin.cursor() as seen:
                    seen.execute(
                        "SELECT trx_isolation_level FROM information_schema.innodb_trx"
                        " WHERE trx_rows_modified > 0"
                    )
                    levels += [row[0] for row in seen.fetchall()]
            finally:
                admin.close()
        assert levels == ["READ COMMITTED"] * 3
        cur.execute("SELECT sum(v) FROM acct")
        assert cur.fetchall() == [(0,)]
        conn.rollback()
        assert _everywhere(env) == [(1, 1), (2, 2), (3, 3)]
        cur.close()
    finally:
        conn.close()


def test_the_branches_stay_the_sessions_while_the_transaction_is_open(clean: ProxyEnv) -> None:
    """The session's own connection (physical database 0) holds a branch: no other session
    gets it from the pool until the transaction ends (another client's statements meanwhile
    run elsewhere), and then it is given back."""
    env = clean
    conn = _client(env)
    other = _client(env)
    try:
        with conn.cursor() as cur, other.cursor() as seen:
            cur.execute("BEGIN")
            cur.execute("INSERT INTO note VALUES (1, 1)")  # physical database 0
            cur.execute("INSERT INTO acct VALUES (1, 1)")  # 1
            held = env.backend_thread(conn)
            for _ in range(5):
                seen.execute("SELECT count(*) FROM note")
                assert seen.fetchall() == ((0,),)
                assert env.backend_thread(other) != held
            session = env.server.ctx.sessions[conn.thread_id()]
            assert session.link.conn is not None and session.link.bound()
            assert env.backend_thread(conn) == held
            cur.execute("COMMIT")
            assert not session.link.bound()
            seen.execute("SELECT count(*) FROM note")
            assert seen.fetchall() == ((1,),)
    finally:
        conn.close()
        other.close()


def test_a_commit_failing_after_the_decision_says_so_and_is_recovered(
    shards: list[ShardEndpoint], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The decision "commit" is recorded, then one branch's connection is killed on its shard
    before its XA COMMIT: the client's COMMIT fails saying which partition (and shard) is not
    yet committed (the other is); the branch stays prepared, and the next proxy to start commits
    it."""
    name = "txfdb"
    with separate_database(shards, tmp_path, name, PASSWORD) as (config_path, port):
        monkeypatch.setenv("SHARDGATE_TEST_XA_CRASH", "pause-after-decision")
        first = serve(config_path, port)
        try:
            client = pymysql.connect(
                host="127.0.0.1", port=port, user=name, password=PASSWORD, database=name
            )
            with client.cursor() as cur:
                cur.execute("CREATE TABLE t (id int PRIMARY KEY) DBPARTITION BY HASH(id)")
                cur.execute("INSERT INTO t VALUES (1)")  # physical database 1 (s0)
                cur.execute("INSERT INTO t VALUES (2)")  # 2 (s1)
            failed: list[BaseException] = []

            def commit() -> None:
                try:
                    client.commit()
                except pymysql.err.MySQLError as exc:
                    failed.append(exc)

            committing = threading.Thread(target=commit)
            committing.start()
            # While the commit waits after the decision: the branch of database 2 loses its
            # connection (its prepared branch stays on the shard).
            deadline = time.monotonic() + 30
            while len(xa_prepared(shards)) < 2:
                assert time.monotonic() < deadline, "the branches were never prepared"
                time.sleep(0.05)
            kill_connections(shards, name, 2)
            committing.join(timeout=60)
            assert len(failed) == 1
            error = failed[0]
            assert error.args[0] == 1105
            assert "decided to commit but not yet committed on" in error.args[1]
            # (named as the client knows the topology: partition and shard, not the physical
            # database's name)
            assert "partition 2 on shard s1" in error.args[1], error.args
            assert "partition 1 " not in error.args[1] and f"{name}_" not in error.args[1]
            client.close()
        finally:
            stop(first)
        assert len(xa_prepared(shards)) == 1  # database 2's, prepared
        with recovering_proxy(config_path, port, shards, monkeypatch):
            client = pymysql.connect(
                host="127.0.0.1", port=port, user=name, password=PASSWORD, database=name
            )
            try:
                with client.cursor() as cur:
                    cur.execute("SELECT id FROM t WHERE id IN (1, 2)")
                    assert sorted(row[0] for row in cur.fetchall()) == [1, 2]
            finally:
                client.close()


async def test_asyncio_clients_default_transactions(clean: ProxyEnv) -> None:
    """aiomysql and asyncmy with their default (autocommit off): rows over every partition
    committed together, then changes rolled back together."""
    env = clean
    connections = [
        await aiomysql.connect(host=env.host, port=env.port, user=DB, password=PASSWORD, db=DB),
        await asyncmy.connect(
            host=env.host, port=env.port, user=DB, password=PASSWORD, database=DB
        ),
    ]
    for base, conn in zip((100, 200), connections, strict=True):
        try:
            async with conn.cursor() as cur:
                for key in range(base, base + 4):  # one row in each physical database
                    await cur.execute("INSERT INTO acct VALUES (%s, 1)", (key,))
                assert await asyncio.to_thread(_everywhere, env) == []
                await conn.commit()
                assert len(await asyncio.to_thread(_everywhere, env)) == 4
                await cur.execute("DELETE FROM acct WHERE id >= %s", (base,))
                await conn.rollback()
                rows = await asyncio.to_thread(_everywhere, env)
                assert [r for r in rows if r[0] >= base] == [(k, 1) for k in range(base, base + 4)]
                await cur.execute("DELETE FROM acct")
                await conn.commit()
        finally:
            conn.close()
