"""A shard's refusal of a statement the proxy let through, on an unsharded database, names
the client's account as MariaDB would (``'user'@'client ip'``), never the mirror the session
reaches the shard as (``'sgm_5_6e1abf3a'@'%'``): the relay renames the ERR packet that ends
an answer on every path -- the command loop, the fast path (text and prepared), a
multi-statement answer, COM_STMT_PREPARE, and an error after some rows. On a sharded
database the same ERR names the logical database, not the physical one the shard ran it in,
also after rows of a multi-statement answer whose every result set's definitions the relay
renames."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, ServerError
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import shard_of, sharded_database
from tests.e2e.test_mirrors import mirror_of, sql

USER, PASSWORD = "errnamer", "Errname#pass1"
MINE = f"'{USER}'@'127.0.0.1'"


@pytest.fixture
def named(proxy: ProxyEnv) -> Iterator[tuple[Any, str]]:
    """An account that reads easydb (no EXECUTE anywhere), a table of three rows, and
    easydb's shard as its administrator; and the account's mirror."""
    admin = proxy.connect()
    shard = connect_admin(proxy.shards[0])
    sql(admin, "CREATE TABLE IF NOT EXISTS en_t (id INT PRIMARY KEY)")
    sql(admin, "INSERT IGNORE INTO en_t VALUES (1), (2), (3)")
    sql(admin, "CREATE TABLE IF NOT EXISTS en_secret (id INT PRIMARY KEY)")
    sql(admin, f"DROP USER IF EXISTS {USER}")
    sql(admin, f"GRANT SELECT ON easydb.en_t TO {USER} IDENTIFIED BY '{PASSWORD}'")
    sql(shard, "DROP FUNCTION IF EXISTS easydb.en_f")
    sql(shard, "CREATE FUNCTION easydb.en_f(x INT) RETURNS INT DETERMINISTIC RETURN x + 1")
    try:
        yield shard, mirror_of(proxy, USER)
    finally:
        sql(shard, "DROP FUNCTION IF EXISTS easydb.en_f")
        sql(shard, "DROP FUNCTION IF EXISTS easydb.en_g")
        sql(admin, f"DROP USER IF EXISTS {USER}")
        sql(admin, "DROP TABLE IF EXISTS en_t, en_secret")
        shard.close()
        admin.close()


def _refused(conn: Any, statement: str) -> tuple[int, str]:
    with pytest.raises(pymysql.err.MySQLError) as info:
        sql(conn, statement)
    errno, message = info.value.args
    return errno, message


def _revoked(shard: Any, revoke: str, statement: Callable[[], object], served: object) -> Exception:
    """Revoke a mirror's grant on the shard (``revoke``), then run ``statement``; its error
    once the shard refused it. A mirror round under way in the background (a sync after a
    catalog poll, the reconciler) may put the grant back between the revoke and the
    statement -- the proxy healing its mirror, as it should: the statement is then served
    (its answer must be ``served``) and the grant revoked again, a bounded number of times."""
    for _ in range(10):
        sql(shard, revoke)
        try:
            answer = statement()
        except (pymysql.err.MySQLError, ServerError) as error:
            return error
        assert answer == served
    pytest.fail("the grant, revoked 10 times, was put back each time before the statement ran")


def _denied(routine: str) -> tuple[int, str]:
    return 1370, f"execute command denied to user {MINE} for routine 'easydb.{routine}'"


def test_a_stored_function_refused_by_the_shard_names_the_client(
    proxy: ProxyEnv, named: tuple[Any, str]
) -> None:
    """The shard refuses ``en_f`` (made there by its administrator; the mirror may not
    execute it) with 1370, text and prepared, whichever path relays it."""
    with proxy.connect(user=USER, password=PASSWORD) as conn:
        for _ in range(3):  # the command loop, then the fast path
            assert _refused(conn, "SELECT en_f(1)") == _denied("en_f")
            assert _refused(conn, "SELECT en_f(id) FROM en_t WHERE id = 1") == _denied("en_f")
        assert sql(conn, "SELECT id FROM en_t WHERE id = 2") == [(2,)]
    with (
        proxy.connect(user=USER, password=PASSWORD, client_flag=CLIENT.MULTI_STATEMENTS) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT id FROM en_t WHERE id = 1; SELECT en_f(1)")
        assert cur.fetchall() == ((1,),)
        with pytest.raises(pymysql.err.MySQLError) as info:
            cur.nextset()
        assert info.value.args == _denied("en_f")
    client = BinaryClient(proxy.port, USER, PASSWORD, "easydb")
    try:
        # Relayed as it comes; then, the session holding a statement, read whole and renumbered.
        for held in (False, True):
            if held:
                client.prepare("SELECT id FROM en_t WHERE id = ?")
            for statement in ("SELECT en_f(?)", "SELECT en_f(id) FROM en_t WHERE id = ?"):
                with pytest.raises(ServerError) as refused:
                    client.prepare(statement)
                assert (refused.value.errno, str(refused.value)) == (
                    1370,
                    "(1370) " + _denied("en_f")[1],
                )
    finally:
        client.close()


def test_a_grant_revoked_behind_the_proxys_back_names_the_client(
    proxy: ProxyEnv, named: tuple[Any, str]
) -> None:
    """The shard refuses a SELECT with 1142 (the mirror's grant revoked on the shard; the
    refusal has the mirror verified again, so the next statement is served and the grant
    is revoked once more): text on the fast path and in the command loop, and a prepared
    statement's execution. MariaDB names the account at the host the proxy connects from
    (``'sgm_6_7bd93684'@'localhost'``)."""
    shard, mirror = named
    denied = (1142, f"SELECT command denied to user {MINE} for table `easydb`.`en_t`")
    revoke = f"REVOKE SELECT ON easydb.en_t FROM '{mirror}'@'%'"
    with proxy.connect(user=USER, password=PASSWORD) as conn:
        client = BinaryClient(proxy.port, USER, PASSWORD, "easydb")
        try:
            statement = client.prepare("SELECT id FROM en_t WHERE id = ?")
            for _ in range(2):
                assert len(client.execute(statement, [1])) == 1  # type: ignore[arg-type]
                assert sql(conn, "SELECT id FROM en_t WHERE id = 1") == [(1,)]
            for text, rows in (
                ("SELECT id FROM en_t WHERE id = 1", [(1,)]),
                ("SELECT id FROM en_t WHERE id<>1 ORDER BY id", [(2,), (3,)]),
            ):
                refused = _revoked(shard, revoke, functools.partial(sql, conn, text), rows)
                assert isinstance(refused, pymysql.err.MySQLError)
                assert refused.args == denied
                assert sql(conn, "SELECT id FROM en_t WHERE id = 2") == [(2,)]
                refused = _revoked(
                    shard,
                    revoke,
                    lambda: len(client.execute(statement, [1])),  # type: ignore[arg-type]
                    1,
                )
                assert isinstance(refused, ServerError)
                assert str(refused) == f"({denied[0]}) {denied[1]}"
                assert len(client.execute(statement, [2])) == 1  # type: ignore[arg-type]
        finally:
            client.close()


def test_a_round_that_read_the_mirror_before_a_refusal_does_not_vouch_for_it(
    proxy: ProxyEnv, named: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mirror round (the reconciler's, here) reads the mirror on the shard, then its grant
    is revoked there and the shard refuses the session's next statement before the round
    records what it read: the round must not mark the mirror verified with grants read
    before the refusal, else the session's next statement reaches the shard through the
    revoked mirror again instead of waiting for it to be verified (and its grant re-applied).
    The round is held between reading and recording (its planning, off the event loop)."""
    shard, mirror = named
    mirrors = proxy.server.ctx.mirrors
    planning, planned = threading.Event(), threading.Event()
    plan = mirrors._desired_steps

    home = proxy.server.ctx.snapshot().database("easydb")
    assert home is not None

    def held(snapshot: Any, shard_name: str, *rest: Any) -> Any:
        if shard_name == home.shard:  # (the other shard's round goes on)
            planning.set()
            assert planned.wait(30)
        return plan(snapshot, shard_name, *rest)

    with proxy.connect(user=USER, password=PASSWORD) as conn:
        assert sql(conn, "SELECT id FROM en_t WHERE id = 1") == [(1,)]
        monkeypatch.setattr(mirrors, "_desired_steps", held)
        try:
            reconciled = asyncio.run_coroutine_threadsafe(mirrors.reconcile(), proxy.loop)
            assert planning.wait(30)
            sql(shard, f"REVOKE SELECT ON easydb.en_t FROM '{mirror}'@'%'")
            assert _refused(conn, "SELECT id FROM en_t WHERE id = 1") == (
                1142,
                f"SELECT command denied to user {MINE} for table `easydb`.`en_t`",
            )
        finally:
            planned.set()
        reconciled.result(60)
        monkeypatch.undo()
        assert sql(conn, "SELECT id FROM en_t WHERE id = 2") == [(2,)]


def test_an_error_after_rows_names_the_client(proxy: ProxyEnv, named: tuple[Any, str]) -> None:
    """A statement that fails after the shard sent some of its rows (a function with the
    invoker's rights, which the mirror may execute, calls ``en_f``, which it may not, from
    the second row on): the rows reach the client as they came, the ERR that ends them
    names the client."""
    shard, mirror = named
    sql(
        shard,
        "CREATE FUNCTION easydb.en_g(x INT) RETURNS INT SQL SECURITY INVOKER"
        " BEGIN IF x < 2 THEN RETURN x; END IF; RETURN easydb.en_f(x); END",
    )
    client = BinaryClient(proxy.port, USER, PASSWORD, "easydb")
    try:
        for _ in range(3):  # the command loop, then the fast path
            # (the refusal has the mirror verified again: EXECUTE is taken back each time)
            assert client.query_raw("SELECT id FROM en_t WHERE id = 3")[-2] == b"\x013"
            sql(shard, f"GRANT EXECUTE ON FUNCTION easydb.en_g TO '{mirror}'@'%'")
            answer = client.query_raw("SELECT id, en_g(id) FROM en_t ORDER BY id")
            assert answer[-2] == b"\x011\x011", answer  # the first row, then the error
            err = answer[-1]
            assert err[:9] == b"\xff\x5a\x05#42000" and b"sgm_" not in err, answer
            assert err[9:].decode() == _denied("en_f")[1]
    finally:
        client.close()


SHARDED_DB, SHARDED_PASSWORD = "ennames", "Ennames#pass1"
SHARDED_USER = "ennarrow"
SHARDED_MINE = f"'{SHARDED_USER}'@'127.0.0.1'"


@pytest.fixture
def sharded_named(proxy: ProxyEnv) -> Iterator[dict[int, tuple[Any, str]]]:
    """A sharded database with a single table of three rows (on physical database 0, which
    the session relays on its own connection), a sharded table with rows 2 and 6 (both on
    physical database 2) and an account that reads both; ``en_f`` and ``en_g`` made by the
    shards' administrators on physical databases 0 and 2, as in :func:`named` (``en_g``
    calls ``en_f`` from 3 on). Per physical database: its shard's administrator, and the
    statement that grants the account's mirror there EXECUTE on ``en_g``."""
    setup = [
        "CREATE TABLE en_t (id INT PRIMARY KEY)",  # a single table
        "INSERT INTO en_t VALUES (1), (2), (3)",
        "CREATE TABLE en_s (id INT PRIMARY KEY) DBPARTITION BY HASH(id)",
        "INSERT INTO en_s VALUES (2), (6)",
        f"CREATE USER '{SHARDED_USER}'@'%' IDENTIFIED BY '{SHARDED_PASSWORD}'",
        f"GRANT SELECT ON {SHARDED_DB}.en_t TO '{SHARDED_USER}'@'%'",
        f"GRANT SELECT ON {SHARDED_DB}.en_s TO '{SHARDED_USER}'@'%'",
    ]
    with sharded_database(proxy, SHARDED_DB, SHARDED_PASSWORD, setup=setup) as env:
        named: dict[int, tuple[Any, str]] = {}
        try:
            for index in (0, 2):
                physical = f"{SHARDED_DB}_{index:04d}"
                shard = connect_admin(env.shards[shard_of(index, 4)])
                mirror = mirror_of(env, SHARDED_USER, physical)
                named[index] = shard, f"GRANT EXECUTE ON FUNCTION {physical}.en_g TO '{mirror}'@'%'"
                sql(shard, f"CREATE FUNCTION {physical}.en_f(x INT) RETURNS INT RETURN x + 1")
                sql(
                    shard,
                    f"CREATE FUNCTION {physical}.en_g(x INT) RETURNS INT SQL SECURITY INVOKER"
                    f" BEGIN IF x < 3 THEN RETURN x; END IF; RETURN {physical}.en_f(x); END",
                )
            yield named
        finally:
            for shard, _ in named.values():
                shard.close()
            with env.connect(SHARDED_DB, SHARDED_PASSWORD, database=SHARDED_DB) as admin:
                sql(admin, f"DROP USER IF EXISTS '{SHARDED_USER}'@'%'")


def test_an_error_after_rows_on_a_sharded_database_names_the_client_and_database(
    proxy: ProxyEnv, sharded_named: dict[int, tuple[Any, str]]
) -> None:
    """On a sharded database, a multi-statement packet on a single table is relayed from
    physical database 0 with every result set's column definitions renamed: an ERR that
    ends the answer after rows of its second result set (``en_g`` calls ``en_f``, which the
    mirror may not execute, from the third row on) names the client's account and the
    logical database, as one in the first result set's place does -- never the mirror nor
    ``ennames_0000``. So does one after rows of a single statement there, or of one routed
    to physical database 2 (the command loop, then the fast path)."""
    denied = (
        1370,
        f"execute command denied to user {SHARDED_MINE} for routine '{SHARDED_DB}.en_f'",
    )
    shard, grant = sharded_named[0]
    with (
        proxy.connect(
            SHARDED_USER,
            SHARDED_PASSWORD,
            database=SHARDED_DB,
            client_flag=CLIENT.MULTI_STATEMENTS,
        ) as conn,
        conn.cursor() as cur,
    ):
        for statements in (
            "SELECT id FROM en_t WHERE id = 1; SELECT id, en_g(id) FROM en_t ORDER BY id",
            "SELECT id FROM en_t WHERE id = 1; SELECT en_f(1)",  # the ERR in the head's place
        ):
            for _ in range(2):
                # (the refusal has the mirror verified again: EXECUTE is taken back each time)
                sql(shard, grant)
                cur.execute(statements)
                assert cur.fetchall() == ((1,),)
                with pytest.raises(pymysql.err.MySQLError) as info:
                    cur.nextset()
                assert info.value.args == denied, statements
                assert sql(conn, "SELECT id FROM en_t WHERE id = 2") == [(2,)]
        for index, table, rows in ((0, "en_t", [(1,), (2,), (3,)]), (2, "en_s", [(2,), (6,)])):
            shard, grant = sharded_named[index]
            statement = f"SELECT id, en_g(id) FROM {table} ORDER BY id"
            if index:
                statement = statement.replace("ORDER", "WHERE id IN (2, 6) ORDER")
            for _ in range(3):
                # (served once the mirror is verified again: then granted EXECUTE)
                assert sql(conn, f"SELECT id FROM {table} ORDER BY id") == rows
                sql(shard, grant)
                assert _refused(conn, statement) == denied, statement
