"""A long statement's decision is made in its session's turn of the analysis threads, not on
the event loop: a sharded database's routing reads the text whole, values and all (a second
of CPU for a 16 MB literal of escapes, tens of seconds for a million-row INSERT), which on the
event loop would stall every other session. Checked on the proxy's own analysis threads: a
long INSERT into a sharded table and a long SELECT of it are planned there (and do what
MariaDB does), a short one is not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from proxy.session.fair import INLINE_ANALYSIS_LIMIT
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database

DB = "longplan"
PASSWORD = "Longplan#pass1"


@pytest.fixture(scope="module")
def env(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = ["CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v LONGTEXT) DBPARTITION BY HASH(id)"]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as sharded:
        yield sharded


@pytest.fixture
def planned(env: ProxyEnv, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions the proxy runs in its analysis threads, in order."""
    pool = env.server.ctx.analysis_pool
    ran: list[str] = []
    run = pool.run

    async def recording(key: str, fn: Any, *args: object) -> Any:
        ran.append(getattr(fn, "__name__", None) or getattr(fn, "func", fn).__name__)
        return await run(key, fn, *args)

    monkeypatch.setattr(pool, "run", recording)
    return ran


def test_long_statements_planned_off_the_event_loop(env: ProxyEnv, planned: list[str]) -> None:
    body = "\\n\\\\''\\%x" * (INLINE_ANALYSIS_LIMIT // 4)
    value = "\n\\'\\%x" * (INLINE_ANALYSIS_LIMIT // 4)
    conn = env.connect(DB, PASSWORD, database=DB)
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM t")
            planned.clear()
            cur.execute("SELECT COUNT(*) FROM t WHERE id = 7")
            assert cur.fetchall() == ((0,),)
            assert "plan" not in planned
            cur.execute(f"INSERT INTO t VALUES (7, '{body}'), (8, 'b')")
            assert planned.count("plan") == 1
            cur.execute(f"SELECT v = '{body}', LENGTH(v) FROM t WHERE id = 7 AND v = '{body}'")
            assert cur.fetchall() == ((1, len(value)),)
            assert planned.count("plan") == 2
            cur.execute("SELECT v FROM t WHERE id = 7")
            assert cur.fetchall() == ((value,),)
            assert planned.count("plan") == 2
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (?, '{body}')",
        "SELECT id FROM t WHERE id IN (?, 9) AND v = '{body}'",
        "SELECT COUNT(*), MAX(LENGTH(v)) FROM t WHERE v = '{body}' AND id < ?",
    ],
)
def test_long_prepared_statements_routed_off_the_event_loop(
    env: ProxyEnv, planned: list[str], sql: str
) -> None:
    """A long prepared statement that its key slots do not route is routed at each execution
    (decide, with its parameters) in the session's turn of the analysis threads."""
    body = "\\n\\\\''\\%x" * (INLINE_ANALYSIS_LIMIT // 4)
    client = BinaryClient(env.port, DB, PASSWORD, DB)
    try:
        client.query("DELETE FROM t")
        if not sql.startswith("INSERT"):
            client.query(f"INSERT INTO t VALUES (7, '{body}'), (8, '{body}')")
        statement = client.prepare(sql.format(body=body))
        planned.clear()
        answers = [client.execute(statement, [key]) for key in (7, 8)]
        if sql.startswith("INSERT"):
            assert answers == [1, 1]
        elif "IN" in sql:
            assert [len(rows) for rows in answers if isinstance(rows, list)] == [1, 1]
        else:
            assert answers == [[(0, None)], [(1, 6 * (INLINE_ANALYSIS_LIMIT // 4))]]
        assert planned.count("decide") >= 2, planned
    finally:
        client.close()


def test_long_statements_under_lock_tables(env: ProxyEnv, planned: list[str]) -> None:
    """Under LOCK TABLES a routed statement's targets are read again (their aliases of
    physical names): a long one's in the analysis threads."""
    body = "\\n" * INLINE_ANALYSIS_LIMIT
    conn = env.connect(DB, PASSWORD, database=DB)
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM t")
            cur.execute(f"INSERT INTO t VALUES (7, '{body}')")
            cur.execute("LOCK TABLES t WRITE")
            try:
                planned.clear()
                cur.execute(f"SELECT id FROM t WHERE id = 7 AND v = '{body}'")
                assert cur.fetchall() == ((7,),)
                assert "_unaliased" in planned, planned
                planned.clear()
                cur.execute("SELECT id FROM t WHERE id = 7")
                assert cur.fetchall() == ((7,),)
                assert "_unaliased" not in planned
            finally:
                cur.execute("UNLOCK TABLES")
    finally:
        conn.close()
