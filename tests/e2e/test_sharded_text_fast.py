"""Text point statements on a sharded database's tables through the fast path (the shape of a
statement routed by one literal, ``FastPath.sharded_text``), on two real MariaDB shards,
through real clients: each statement reaches only its partition with the client's text (the
physical table's name put in for a split table; checked in the shards' general logs), and
every answer is byte for byte the command loop's for the same statement -- numbers and
strings holding numbers or not, negative and 64-bit extreme keys, decimals, keys that fix no
partition, NULL, hexadecimal literals and character set introducers (those go the long way),
a string key, a split table, UPDATE and DELETE, another sql_mode -- and the same rows a plain
database holding the same tables gives. A revoked grant is seen on the next statement.

The layout: ``shtx`` over s0 and s1 with 4 physical databases (``shtx_0000``, ``shtx_0001`` on
s0; ``shtx_0002``, ``shtx_0003`` on s1). ``DBPARTITION BY HASH(id)``: db = |id| mod 4.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pymysql
import pytest

from proxy.session.session import Session
from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import plain_twin, sharded_database
from tests.e2e.test_enforcement import classifier_misses, counted_miss
from tests.e2e.test_mirrors import mirror_of, on_loop

Hook = Callable[[bytes], bool]

PASSWORD = "ShText#pass1"
DB = "shtx"
SHARD_OF = {0: 0, 1: 0, 2: 1, 3: 1}  # physical database -> shard index
BIG = 9223372036854775807
KEYS = [0, 1, 2, 3, 4, -5, -6, 7, BIG, -BIG, 2**40 + 3]
TABLES = [
    "CREATE TABLE t (id bigint NOT NULL, v varchar(40), n bigint, PRIMARY KEY (id))",
    "CREATE TABLE s (k varchar(20) NOT NULL, v bigint, PRIMARY KEY (k))",
    "CREATE TABLE sp (id bigint NOT NULL, v bigint, PRIMARY KEY (id))",
]
CLAUSES = [
    " DBPARTITION BY HASH(id)",
    " DBPARTITION BY HASH(k)",
    " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
]
ROWS = [
    "INSERT INTO t (id, v, n) VALUES " + ", ".join(f"({k}, 'v{k}', {k})" for k in KEYS),
    "INSERT INTO s (k, v) VALUES ('abc', 1), ('b', 2), ('15', 3), ('é', 4), ('', 5)",
    "INSERT INTO sp (id, v) VALUES " + ", ".join(f"({k}, {k})" for k in range(-3, 9)),
]


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        statement
        for ddl, clause, rows in zip(TABLES, CLAUSES, ROWS, strict=True)
        for statement in (ddl + clause, rows)
    ]
    # The same tables and rows in a plain database on s0: what MariaDB answers.
    plain = [statement for pair in zip(TABLES, ROWS, strict=True) for statement in pair]
    with sharded_database(proxy, DB, PASSWORD, setup=setup), plain_twin(proxy, DB, plain):
        yield proxy


def _watch_hooks(monkeypatch: pytest.MonkeyPatch, wrap: Callable[[Hook], Hook]) -> None:
    """Every new session's fast hook (FastPath.hook, which the client connection calls with
    a command that arrives as one packet) replaced by ``wrap`` of it."""
    real_init = Session.__init__

    def init(self: Session, *args: Any, **kwargs: Any) -> None:
        real_init(self, *args, **kwargs)
        self._fast_hook = wrap(self._fast_hook)

    monkeypatch.setattr(Session, "__init__", init)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The text statements the fast path served (the real hook, watched: on the sharded
    database a COM_QUERY the hook serves is one FastPath.sharded_text routed)."""
    seen: list[str] = []

    def wrap(hook: Hook) -> Hook:
        def watched(packet: bytes) -> bool:
            done = hook(packet)
            if done and packet[4] == 0x03:
                seen.append(packet[5:].decode())
            return done

        return watched

    _watch_hooks(monkeypatch, wrap)
    return seen


def _client(env: ProxyEnv, **kwargs: Any) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB, **kwargs)


def _raw(env: ProxyEnv) -> BinaryClient:
    return BinaryClient(env.port, DB, PASSWORD, DB)


def _partition(key: int) -> int:
    return abs(key) % 4  # HASH of a BIGINT: |id| mod 4 (|-BIG| = BIG)


def _general_log(env: ProxyEnv, on: bool) -> None:
    for shard in (0, 1):
        admin = connect_admin(env.shards[shard])
        try:
            with admin.cursor() as cur:
                if on:
                    cur.execute("SET GLOBAL log_output = 'TABLE'")
                    cur.execute("TRUNCATE TABLE mysql.general_log")
                cur.execute(f"SET GLOBAL general_log = {'ON' if on else 'OFF'}")
        finally:
            admin.close()


def _logged(env: ProxyEnv, marker: str) -> dict[tuple[int, str], int]:
    """(physical database, text) of each query holding ``marker`` the shards logged, and how
    many times (the connection's database is read from the shard's processlist)."""
    found: dict[tuple[int, str], int] = {}
    for shard in (0, 1):
        admin = connect_admin(env.shards[shard])
        try:
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT thread_id, CONVERT(argument USING utf8mb4) FROM mysql.general_log"
                    " WHERE command_type = 'Query'"
                )
                rows = list(cur.fetchall())
                cur.execute("SELECT id, db FROM information_schema.processlist")
                databases = {int(row[0]): str(row[1]) for row in cur.fetchall()}
        finally:
            admin.close()
        for thread, argument in rows:
            if marker in argument:
                name = databases.get(int(thread), "")
                index = int(name[-4:]) if name.startswith(f"{DB}_") else -1
                found[index, argument] = found.get((index, argument), 0) + 1
    return found


def test_point_statements_reach_only_their_partition(sharded: ProxyEnv, served: list[str]) -> None:
    """Point SELECTs, UPDATEs and DELETEs, each run three times: the first statements of a
    shape (and of a partition the session has no connection to yet) go through the command
    loop, the rest through the fast path; every one of them reaches its partition only, with
    the client's text (a split table's physical name put in)."""
    env = sharded
    conn = _client(env)
    _general_log(env, True)
    try:
        with conn.cursor() as cur:
            for key in KEYS:
                for _ in range(3):
                    cur.execute(f"SELECT v AS fastmark, n FROM t WHERE id = {key}")
                    assert cur.fetchall() == ((f"v{key}", key),)
                    cur.execute(f"UPDATE t SET n = n + 0 WHERE id = {key}")
                    cur.execute(f"DELETE FROM t WHERE id = {key} AND n = 424242")
            for key in range(-3, 9):
                for _ in range(3):
                    cur.execute(f"SELECT v AS fastmark3 FROM sp WHERE id = {key}")
                    assert cur.fetchall() == ((key,),)
        _general_log(env, False)
        # (read while the session's connections are open: their databases are known)
        logged = {**_logged(env, "fastmark,"), **_logged(env, "n + 0"), **_logged(env, "424242")}
        split_logged = _logged(env, "fastmark3")
    finally:
        _general_log(env, False)
        conn.close()
    expected = {}
    for key in KEYS:
        for text in (
            f"SELECT v AS fastmark, n FROM t WHERE id = {key}",
            f"UPDATE t SET n = n + 0 WHERE id = {key}",
            f"DELETE FROM t WHERE id = {key} AND n = 424242",
        ):
            expected[_partition(key), text] = 3
    assert logged == expected
    split = {}
    for key in range(-3, 9):
        table = abs(key) % 8  # g = |id| mod 8, in physical database g div 2
        text = f"SELECT v AS fastmark3 FROM `sp_{table:02d}` AS `sp` WHERE id = {key}"
        split[table // 2, text] = 3
    assert split_logged == split
    # The fast path served all but the first statements of each shape and partition.
    assert len([t for t in served if "fastmark," in t]) >= 3 * len(KEYS) - 5
    assert len([t for t in served if "n + 0" in t]) >= 3 * len(KEYS) - 5
    assert len([t for t in served if "fastmark3" in t]) >= 3 * 12 - 5


# Statements whose answers the fast path must give byte for byte as the command loop does (and
# whose rows are a plain database's, but for a string key compared case-insensitively: DRDS
# places the text as written).
STATEMENTS = [
    *(f"SELECT * FROM t WHERE id = {key}" for key in KEYS),
    *(f"SELECT v, n FROM t WHERE id = -{key}" for key in (5, 6, 7)),
    "SELECT v FROM t WHERE id = '5'",  # a string holding a number: 5's partition
    "SELECT v FROM t WHERE id = ' 7'",
    "SELECT v FROM t WHERE id = '1e0'",
    "SELECT v FROM t WHERE id = 'abc'",  # 0 for MariaDB: not placeable, every partition
    "SELECT v FROM t WHERE id = 4.0",  # a decimal: exact
    "SELECT v FROM t WHERE id = 4.5",  # no integer: every partition
    "SELECT v FROM t WHERE id = 9223372036854775808",  # beyond BIGINT: every partition
    "SELECT v FROM t WHERE id = 99",  # no such row
    "SELECT v FROM t WHERE id = NULL",
    "SELECT v FROM t WHERE id = 0x07",  # not the fast key's: the long way
    "SELECT v FROM t WHERE id = _utf8mb4'7'",
    "SELECT v FROM t WHERE id = _latin1 '3'",  # an introducer before the literal
    "SELECT v FROM t WHERE id = X'04'",
    "SELECT id AS k, v, n + 1 FROM t AS q WHERE q.id = 7",
    "SELECT v FROM t WHERE 3 = id",
    "SELECT v FROM t WHERE id IN (2)",
    "SELECT v FROM t WHERE id = 2 AND n > 1",
    "SELECT v FROM t WHERE id = 3 AND v = 'v3'",
    "SELECT v FROM t WHERE id = 3 FOR UPDATE",
    "SELECT v FROM s WHERE k = 'abc'",
    "SELECT v FROM s WHERE k = 'b'",
    "SELECT v FROM s WHERE k = '15'",
    "SELECT v FROM s WHERE k = 15",  # a number against a string key: every partition
    "SELECT v FROM s WHERE k = 'é'",
    "SELECT v FROM s WHERE k = ''",
    "SELECT * FROM sp WHERE id = 5",
    "SELECT * FROM sp AS x WHERE x.id = -3",
    "SELECT id, v FROM sp WHERE id = 6",
    "UPDATE t SET n = n WHERE id = 3",  # Rows matched: 1  Changed: 0
    "UPDATE sp SET v = v WHERE id = 4",
    "DELETE FROM t WHERE id = 2 AND n = 424242",
    "SELECT v FROM t WHERE id = 2 LIMIT 1",
]
CASE_SENSITIVE = {"SELECT v FROM s WHERE k = 'abc'"}  # (kept: the rows agree here)


def _answers(env: ProxyEnv, statements: list[str], times: int) -> list[list[list[bytes]]]:
    """Each statement's answers, ``times`` times in a row on one connection."""
    client = _raw(env)
    try:
        return [[client.query_raw(sql) for _ in range(times)] for sql in statements]
    finally:
        client.close()


def test_answers_are_the_command_loops(
    sharded: ProxyEnv, served: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every statement's answer through the fast path is the command loop's, byte for byte
    (column definitions naming the logical database and tables, rows, the end and its
    status); the fast path served every statement of a shape it routes."""
    env = sharded
    fast = _answers(env, STATEMENTS, 3)
    assert served, "the fast path served nothing"
    _watch_hooks(monkeypatch, lambda hook: lambda packet: False)  # the command loop alone
    slow = _answers(env, STATEMENTS, 1)
    for sql, answers, (reference,) in zip(STATEMENTS, fast, slow, strict=True):
        for answer in answers:
            assert answer == reference, sql
    for sql in STATEMENTS:
        if "0x" in sql or "_utf8mb4" in sql or "_latin1" in sql or "X'" in sql:
            assert sql not in served, sql
    for sql in (
        "SELECT * FROM t WHERE id = 7",
        "SELECT v FROM t WHERE id = '5'",
        "SELECT v FROM s WHERE k = 'b'",
        "SELECT * FROM sp WHERE id = 5",
        "UPDATE t SET n = n WHERE id = 3",
    ):
        assert sql in served, sql


def test_rows_are_a_plain_databases(sharded: ProxyEnv, served: list[str]) -> None:
    """The rows (and the column definitions) are those of one MariaDB holding the tables."""
    env = sharded
    home = env.shards[0]
    direct = BinaryClient(home.port, home.user, home.password, DB)
    try:
        reads = [sql for sql in STATEMENTS if sql.startswith("SELECT") and "FOR UPDATE" not in sql]
        through = _answers(env, reads, 2)
        for sql, answers in zip(reads, through, strict=True):
            expected = direct.query_raw(sql)
            for answer in answers:
                # The end's status flags may differ (the shard's own session state).
                assert answer[:-1] == expected[:-1], sql
    finally:
        direct.close()


def test_another_sql_mode(sharded: ProxyEnv, served: list[str]) -> None:
    """The lexer state follows the session's sql_mode: shapes learned anew, same answers."""
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            for mode in ("'ANSI_QUOTES'", "'NO_BACKSLASH_ESCAPES,PIPES_AS_CONCAT'", "DEFAULT"):
                cur.execute(f"SET SESSION sql_mode = {mode}")
                for key in (1, 2, 3, 4):
                    for _ in range(2):
                        cur.execute(f"SELECT v FROM t WHERE id = {key}")
                        assert cur.fetchall() == ((f"v{key}",),)
                        cur.execute("SELECT v FROM s WHERE k = 'b'")
                        assert cur.fetchall() == ((2,),)
    finally:
        conn.close()
    assert len([t for t in served if t.startswith("SELECT v FROM t WHERE id =")]) >= 3 * 4


def test_a_revoked_grant_is_seen_on_the_next_statement(sharded: ProxyEnv) -> None:
    env = sharded
    owner = _client(env)
    try:
        with owner.cursor() as cur:
            cur.execute("CREATE USER 'textreader'@'%' IDENTIFIED BY 'Text#reader1'")
            cur.execute(f"GRANT SELECT ON {DB}.t TO 'textreader'@'%'")
        reader = env.connect("textreader", "Text#reader1", database=DB)
        try:
            with reader.cursor() as cur:
                for _ in range(3):  # the fast path's from the second on
                    cur.execute("SELECT v FROM t WHERE id = 3")
                    assert cur.fetchall() == (("v3",),)
                with owner.cursor() as grant:
                    grant.execute(f"REVOKE SELECT ON {DB}.t FROM 'textreader'@'%'")
                with pytest.raises(pymysql.err.OperationalError) as denied:
                    cur.execute("SELECT v FROM t WHERE id = 3")
                assert denied.value.args[0] == 1142
        finally:
            reader.close()
    finally:
        with owner.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'textreader'@'%'")
        owner.close()


def test_a_shape_another_session_learned_is_authorized_for_each(sharded: ProxyEnv) -> None:
    """Shapes are shared by the sessions (a new session need not learn them again), the
    authorization is not: an account with SELECT on ``t`` only reads ``t`` by the shape the
    owner's session taught, and is refused ``sp`` (1142) by one the owner's session taught
    too -- on every partition, again and again (the fast path's statements)."""
    env = sharded
    owner = _client(env)
    try:
        with owner.cursor() as cur:
            cur.execute("CREATE USER 'shapereader'@'%' IDENTIFIED BY 'Shape#reader1'")
            cur.execute(f"GRANT SELECT ON {DB}.t TO 'shapereader'@'%'")
            for _ in range(3):
                for k in range(8):
                    cur.execute(f"SELECT v FROM t WHERE id = {k}")
                    cur.execute(f"SELECT v FROM sp WHERE id = {k}")
        reader = env.connect("shapereader", "Shape#reader1", database=DB)
        try:
            with reader.cursor() as cur:
                for _ in range(3):
                    for k in (0, 1, 2, 3, 4, -5, 7):
                        cur.execute(f"SELECT v FROM t WHERE id = {k}")
                        assert cur.fetchall() == ((f"v{k}",),)
                        with pytest.raises(pymysql.err.OperationalError) as denied:
                            cur.execute(f"SELECT v FROM sp WHERE id = {k}")
                        assert denied.value.args[0] == 1142
        finally:
            reader.close()
    finally:
        with owner.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'shapereader'@'%'")
        owner.close()


def test_inside_a_transaction_the_command_loop_routes(sharded: ProxyEnv, served: list[str]) -> None:
    """autocommit=0 (PyMySQL's default): the proxy runs the transaction, statements go through
    the command loop (their branches), and see the transaction's own changes."""
    env = sharded
    conn = _client(env, autocommit=False)
    try:
        with conn.cursor() as cur:
            for _ in range(3):
                cur.execute("SELECT v FROM t WHERE id = 1")
                assert cur.fetchall() == (("v1",),)
            cur.execute("UPDATE t SET v = 'changed' WHERE id = 1")
            cur.execute("SELECT v FROM t WHERE id = 1")
            assert cur.fetchall() == (("changed",),)
            conn.rollback()
            cur.execute("SELECT v FROM t WHERE id = 1")
            assert cur.fetchall() == (("v1",),)
            conn.rollback()
    finally:
        conn.close()
    assert served == []


def test_a_refusal_of_another_partitions_shard_is_counted(sharded: ProxyEnv) -> None:
    """A grant removed behind the proxy's back on the shard of a partition other than the
    session's own: the shard's refusal reaches the client and is counted as a classifier
    miss (the mirror suspected) -- on the command loop's first statement of a shape and on
    the fast path's later ones alike (FastPath.partition_done had not looked)."""
    env = sharded
    owner = _client(env)
    s1 = connect_admin(env.shards[1])
    try:
        with owner.cursor() as cur:
            cur.execute("CREATE USER 'textmiss'@'%' IDENTIFIED BY 'Text#miss1'")
            cur.execute(f"GRANT SELECT ON {DB}.t TO 'textmiss'@'%'")
        mirror = mirror_of(env, "textmiss", f"{DB}_0002")  # physical database 2's
        reader = env.connect("textmiss", "Text#miss1", database=DB)
        try:
            assert _partition(2) == 2 and SHARD_OF[2] == 1  # s1, not the session's own
            with reader.cursor() as cur:
                cur.execute("SELECT v FROM t WHERE id = 0")  # every partition connected
                cur.execute("SELECT v FROM t WHERE id = 2")
                assert cur.fetchall() == (("v2",),)
                for fast in (False, True):
                    with s1.cursor() as shard:
                        shard.execute(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{mirror}'@'%'")
                    before = classifier_misses(env)
                    # (a shape not seen yet: the command loop's; then a learnt one: the fast's)
                    where = "id = 2" if fast else "2 = id"
                    with pytest.raises(pymysql.err.OperationalError) as denied:
                        cur.execute(f"SELECT v FROM t WHERE {where}")
                    assert denied.value.args[0] == 1142
                    assert counted_miss(env, before), fast
                    on_loop(env, env.server.ctx.mirrors.reconcile())
                    cur.execute(f"SELECT v FROM t WHERE {where}")
                    assert cur.fetchall() == (("v2",),)
        finally:
            reader.close()
    finally:
        with owner.cursor() as cur:
            cur.execute("DROP USER IF EXISTS 'textmiss'@'%'")
        owner.close()
        s1.close()
