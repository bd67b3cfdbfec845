"""An attacker's review of the memos on the hot path (the fast key's shape cache, the session's
memo of decisions, the text shapes the sessions share, the routing and lexing memos, the
prepared statements' analysis), through real clients against real MariaDB shards. The account
``memoreader`` holds SELECT on table ``t`` only; a memo whose key misses something that changes
how MariaDB reads the same bytes would let it run a reading the proxy never authorized.

Findings (each test fails without its fix):

* A prepared statement's text is read by the shard again under the session's state *then*:
  on a sharded database's other partitions the first time an execution is routed there, on a
  new backend connection after the session's one was lost or taken. The proxy's analysis was
  of the reading at COM_STMT_PREPARE: after ``SET sql_mode = 'NO_BACKSLASH_ESCAPES'`` the text
  ``SELECT v, 'a\\', @@hostname -- '`` + newline + ``FROM t WHERE id = ?`` (two columns: a
  string holding a quote) ran as three, the shard's own ``@@hostname`` among them (a value
  the proxy answers itself). Refused now (1235) when the state reads the text otherwise.
* The proxy read every statement's bytes as UTF-8, the shard in the client's character set:
  from a latin1 client the bytes C3 A9 named the granted table ``é`` for the proxy and ``Ã©``
  for the shard. A name that is not ASCII is refused (1235) from such a client.

What holds is pinned too: a table of readings (comments, executable comments, quotes and
backslashes under each sql_mode, NUL and other whitespace bytes, texts past the memos' length
limits) after another account taught the memos the text, and a REVOKE reaching every open
session and prepared statement at its next statement.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, ServerError
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database

PASSWORD = "MemoAdv#pass1"
DB = "shmemo"
READER = "memoreader"
READER_PASSWORD = "Memo#reader1"
PLAIN_READER = "memoplain"  # (an account belongs to one database's administrator)
PLAIN = "easydb"
# Under the default sql_mode: two columns, v and a string; under NO_BACKSLASH_ESCAPES the
# string ends at the backslash and the shard's @@hostname is a third column.
TWO_READINGS = "SELECT v, 'a\\', @@hostname -- '\nFROM {t} WHERE id = ?"
PREPARED_READING = "a', @@hostname -- "
REFUSED_OTHERWISE = 1235


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE t (id bigint NOT NULL, v varchar(40), PRIMARY KEY (id))"
        " DBPARTITION BY HASH(id)",
        "CREATE TABLE secret (id bigint NOT NULL, x varchar(40), PRIMARY KEY (id))"
        " DBPARTITION BY HASH(id)",
        "INSERT INTO t VALUES (1, 'v1'), (2, 'v2'), (3, 'v3'), (4, 'v4')",
        "INSERT INTO secret VALUES (1, 's1'), (2, 's2'), (3, 's3'), (4, 's4')",
        f"CREATE USER '{READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}'",
        f"GRANT SELECT ON {DB}.t TO '{READER}'@'%'",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        yield env


@pytest.fixture(scope="module")
def plain(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    """The same tables and account on the unsharded database ``easydb``."""
    with proxy.connect() as owner, owner.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS ma_t, ma_secret")
        cur.execute("CREATE TABLE ma_t (id bigint PRIMARY KEY, v varchar(40))")
        cur.execute("CREATE TABLE ma_secret (id bigint PRIMARY KEY, x varchar(40))")
        cur.execute("INSERT INTO ma_t VALUES (1, 'v1'), (2, 'v2'), (3, 'v3'), (4, 'v4')")
        cur.execute("INSERT INTO ma_secret VALUES (1, 's1'), (2, 's2')")
        cur.execute(f"DROP USER IF EXISTS '{PLAIN_READER}'@'%'")
        cur.execute(f"CREATE USER '{PLAIN_READER}'@'%' IDENTIFIED BY '{READER_PASSWORD}'")
        cur.execute(f"GRANT SELECT ON {PLAIN}.ma_t TO '{PLAIN_READER}'@'%'")
    try:
        yield proxy
    finally:
        with proxy.connect() as owner, owner.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{PLAIN_READER}'@'%'")
            cur.execute("DROP TABLE IF EXISTS ma_t, ma_secret")


def _reader(
    env: ProxyEnv, database: str = DB, **kwargs: Any
) -> pymysql.connections.Connection[Any]:
    return env.connect(READER, READER_PASSWORD, database=database, **kwargs)


def _binary(env: ProxyEnv, database: str = DB) -> BinaryClient:
    user = READER if database == DB else PLAIN_READER
    return BinaryClient(env.port, user, READER_PASSWORD, database)


def _lose_backend(env: ProxyEnv, client: BinaryClient) -> None:
    """The shard's administrator kills the session's backend connection (nothing but
    prepared statements on it: the session goes on, preparing them again where needed)."""
    session = env.server.ctx.sessions[client.thread_id]
    backend = session.link.conn or session.link.affine
    assert backend is not None
    admin = connect_admin(env.shards[0])
    try:
        with admin.cursor() as cur:
            cur.execute(f"KILL {backend.thread_id}")
    finally:
        admin.close()


# -- a prepared statement read again under another sql_mode --------------------------------


def _executions(client: BinaryClient, sql: str, keys: list[int]) -> list[object]:
    statement = client.prepare(sql)
    assert statement.columns == 2
    out: list[object] = []
    for key in keys:
        try:
            out.append(client.execute(statement, [key]))
        except ServerError as error:
            out.append(error.errno)
    return out


@pytest.mark.parametrize("where", ["sharded", "plain"])
def test_a_prepared_statement_is_not_read_under_another_sql_mode(
    request: pytest.FixtureRequest, where: str
) -> None:
    """Prepared under the default sql_mode, executed under NO_BACKSLASH_ESCAPES -- on a
    sharded database on partitions it was not prepared on yet, on an unsharded one after its
    backend connection was lost -- it is refused (the shard would prepare its text again and
    read three columns, the shard's @@hostname among them); under the sql_mode it was
    prepared under it runs again, and a text every sql_mode reads alike runs under both."""
    env: ProxyEnv = request.getfixturevalue(where)
    database, table = (DB, "t") if where == "sharded" else (PLAIN, "ma_t")
    client = _binary(env, database)
    try:
        sql = TWO_READINGS.format(t=table)
        statement = client.prepare(sql)
        alike = client.prepare(f"SELECT v FROM {table} WHERE id = ?")
        assert client.execute(statement, [1]) == [("v1", PREPARED_READING)]
        client.query("SET sql_mode = 'NO_BACKSLASH_ESCAPES'")
        if where == "plain":
            _lose_backend(env, client)
        for key in (1, 2, 3, 4):
            with pytest.raises(ServerError) as refused:
                client.execute(statement, [key])
            assert refused.value.errno == REFUSED_OTHERWISE
            assert client.execute(alike, [key]) == [(f"v{key}",)]
        client.query("SET sql_mode = DEFAULT")
        for key in (1, 2, 3, 4):
            assert client.execute(statement, [key]) == [(f"v{key}", PREPARED_READING)]
    finally:
        client.close()


# -- names read in the client's character set ------------------------------------------------


def test_names_are_not_read_as_utf8_from_a_latin1_client(plain: ProxyEnv) -> None:
    """The proxy reads a statement's bytes as UTF-8; MariaDB reads them in the client's
    character set. From a latin1 client the bytes C3 A9 were the table ``é`` (granted) for the
    proxy, which relayed the statement, and ``Ã©`` (not granted) for the shard, whose mirror
    account alone refused it (1142, naming the mirror). Refused by the proxy now (1235); string
    literals, data, still pass, and a UTF-8 client names ``é`` as before."""
    env = plain
    with env.connect() as owner, owner.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS `é`, `Ã©`")
        cur.execute("CREATE TABLE `é` (v varchar(10))")
        cur.execute("CREATE TABLE `Ã©` (x varchar(10))")
        cur.execute("INSERT INTO `é` VALUES ('mine')")
        cur.execute("INSERT INTO `Ã©` VALUES ('secret')")
        cur.execute(f"GRANT SELECT ON {PLAIN}.`é` TO '{PLAIN_READER}'@'%'")
    latin1 = env.connect(PLAIN_READER, READER_PASSWORD, database=PLAIN, charset="latin1")
    utf8 = env.connect(PLAIN_READER, READER_PASSWORD, database=PLAIN)
    try:
        with latin1.cursor() as cur:
            # (PyMySQL encodes the text in latin1: 'Ã©' is the bytes C3 A9)
            for sql in ("SELECT * FROM `Ã©`", "SELECT * FROM Ã©", "SELECT v FROM `Ã©`"):
                with pytest.raises(pymysql.err.MySQLError) as refused:
                    cur.execute(sql)
                assert refused.value.args[0] == 1235, refused.value.args
            cur.execute("SELECT v FROM ma_t WHERE v = 'é' OR id = 1")
            assert cur.fetchall() == (("v1",),)
        with utf8.cursor() as cur:
            cur.execute("SELECT v FROM `é`")
            assert cur.fetchall() == (("mine",),)
    finally:
        latin1.close()
        utf8.close()
        with env.connect() as owner, owner.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS `é`, `Ã©`")


# -- what holds: a table of readings ------------------------------------------------------------

SECRETS = {"s1", "s2", "s3", "s4"}
DENIED = 1142
# (sql_mode, statement, what MariaDB's reading gives the reader: rows of t, or an error code --
# a statement that reads {secret} is refused). {t} and {secret} are the tables' names. Each
# statement runs three times (the second and third from the memos), after the owner taught the
# memos the same text under the default sql_mode.
READINGS: list[tuple[str, str, list[tuple[str, ...]] | int]] = [
    ("", "SELECT v FROM {t} WHERE id = 1", [("v1",)]),
    ("", "SELECT v FROM {t} WHERE id = 1 /*!50000 UNION SELECT x FROM {secret} */", DENIED),
    ("", "SELECT v FROM {t} WHERE id = 1 /*M!100500 UNION SELECT x FROM {secret} */", DENIED),
    ("", "SELECT v FROM {t} WHERE id = 1 /*!999999 UNION SELECT x FROM {secret} */", [("v1",)]),
    ("", "SELECT v FROM {t} WHERE id = 1 -- \nUNION SELECT x FROM {secret}", DENIED),
    ("", "SELECT v FROM {t} WHERE id = 1 #\nUNION SELECT x FROM {secret}", DENIED),
    ("", "SELECT v FROM {t} WHERE v = 'a\\' UNION SELECT x FROM {secret} -- '", []),
    (
        "NO_BACKSLASH_ESCAPES",
        "SELECT v FROM {t} WHERE v = 'a\\' UNION SELECT x FROM {secret} -- '",
        DENIED,
    ),
    ("", "SELECT v FROM {t} WHERE v = 'a'' UNION SELECT x FROM {secret} -- '", []),
    ("", 'SELECT v FROM {t} WHERE v = "a\\" UNION SELECT x FROM {secret} -- "', []),
    ("ANSI_QUOTES", "SELECT v FROM {t} WHERE id = 1 AND \"v\" = 'v1'", [("v1",)]),
    ("", "SELECT v FROM {t} WHERE id = 1 AND \"v\" = 'v1'", []),
    ("ANSI_QUOTES", 'SELECT v FROM {t} WHERE id = 1 UNION SELECT "x" FROM {secret}', DENIED),
    ("PIPES_AS_CONCAT", "SELECT v FROM {t} WHERE id = 1 || 2 = id", []),
    ("", "SELECT v FROM {t} WHERE id = 1 || 2 = id", [("v1",), ("v2",)]),
    ("IGNORE_SPACE", "SELECT v FROM {t} WHERE id = 1", [("v1",)]),
    ("", "SELECT v FROM {t} WHERE id = 1\x00 UNION SELECT x FROM {secret}", 1064),
    ("", "SELECT v FROM {t} WHERE id = 1\x0bUNION SELECT x FROM {secret}", DENIED),
    ("", "SELECT v FROM {t} WHERE id = 1\x0cUNION SELECT x FROM {secret}", DENIED),
    ("", "SELECT v FROM {t} WHERE id = 1;", [("v1",)]),
    ("", "SELECT v FROM {t} WHERE id = 1;SELECT x FROM {secret}", DENIED),
    ("", "SELECT v FROM {t} WHERE id = 1" + " " * 5000 + "UNION SELECT x FROM {secret}", DENIED),
    (
        "NO_BACKSLASH_ESCAPES",
        "SELECT v FROM {t} WHERE v = '" + "a" * 5000 + "\\' UNION SELECT x FROM {secret} -- '",
        DENIED,
    ),
]


def _outcome(cur: Any, sql: str) -> list[tuple[str, ...]] | int:
    try:
        cur.execute(sql)
    except pymysql.err.MySQLError as error:
        return int(error.args[0])
    return sorted(tuple(row) for row in cur.fetchall())


@pytest.mark.parametrize("where", ["plain", "sharded"])
def test_the_memos_read_as_mariadb_reads(request: pytest.FixtureRequest, where: str) -> None:
    """Every reading the table lists, as MariaDB reads the text in the reader's sql_mode --
    comments, executable comments of this and of a later version, a backslash or a double
    quote in a string, a NUL byte, a text longer than the memos remember -- after the owner's
    session taught the process-wide memos the same text in the default sql_mode. On the sharded
    database, a statement the proxy does not route there (a UNION) may be refused as not
    supported (1235) where the plain one reads; never a row of {secret}."""
    env: ProxyEnv = request.getfixturevalue(where)
    if where == "plain":
        names = {"t": "ma_t", "secret": "ma_secret"}
        owner = env.connect()
        reader = env.connect(PLAIN_READER, READER_PASSWORD, database=PLAIN)
    else:
        names = {"t": "t", "secret": "secret"}
        owner = env.connect(DB, PASSWORD, database=DB)
        reader = _reader(env)
    try:
        with owner.cursor() as teach, reader.cursor() as cur:
            for mode, template, expected in READINGS:
                sql = template.format(**names)
                for _ in range(2):
                    _outcome(teach, sql)
                cur.execute(f"SET SESSION sql_mode = '{mode}'")
                for attempt in range(3):
                    got = _outcome(cur, sql)
                    assert not (isinstance(got, list) and SECRETS & {r[0] for r in got}), sql
                    if where == "sharded" and got == 1235 and expected != DENIED:
                        continue  # (a UNION is not routed on a sharded database)
                    if where == "sharded" and got == 1235 and "UNION" in sql:
                        continue
                    assert got == expected, (mode, sql[:120], attempt)
    finally:
        owner.close()
        reader.close()


@pytest.mark.parametrize("where", ["plain", "sharded"])
def test_a_revoke_reaches_every_open_session_and_prepared_statement(
    request: pytest.FixtureRequest, where: str
) -> None:
    """The reader holds SELECT on {secret} for a while: two open sessions read it, one by
    text, one by a statement prepared then (both warmed: served from the memos). The owner's
    REVOKE, from a third session, refuses the very next statement of each (1142)."""
    env: ProxyEnv = request.getfixturevalue(where)
    if where == "plain":
        database, secret, user = PLAIN, "ma_secret", PLAIN_READER
        owner = env.connect()
        text = env.connect(PLAIN_READER, READER_PASSWORD, database=PLAIN)
    else:
        database, secret, user = DB, "secret", READER
        owner = env.connect(DB, PASSWORD, database=DB)
        text = _reader(env)
    binary: BinaryClient | None = None
    try:
        with owner.cursor() as cur:
            cur.execute(f"GRANT SELECT ON {database}.{secret} TO '{user}'@'%'")
        binary = _binary(env, database)
        statement = binary.prepare(f"SELECT x FROM {secret} WHERE id = ?")
        with text.cursor() as cur:
            for _ in range(3):
                cur.execute(f"SELECT x FROM {secret} WHERE id = 2")
                assert cur.fetchall() == (("s2",),)
                assert binary.execute(statement, [2]) == [("s2",)]
            with owner.cursor() as revoke:
                revoke.execute(f"REVOKE SELECT ON {database}.{secret} FROM '{user}'@'%'")
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cur.execute(f"SELECT x FROM {secret} WHERE id = 2")
            assert denied.value.args[0] == DENIED
            with pytest.raises(ServerError) as refused:
                binary.execute(statement, [2])
            assert refused.value.errno == DENIED
    finally:
        with owner.cursor() as cur, contextlib.suppress(pymysql.err.MySQLError):
            cur.execute(f"REVOKE SELECT ON {database}.{secret} FROM '{user}'@'%'")
        if binary is not None:
            binary.close()
        text.close()
        owner.close()
