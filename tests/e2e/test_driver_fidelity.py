"""Drivers see a server that behaves like MariaDB (issue #13): through real clients that use each
thing -- node's mysql2 (session tracking, MariaDB's extended type information, handshake
character sets, KILL in a multi-statement packet), MariaDB Connector/Python (extended type
information and metadata caching), PyMySQL and mysql-connector -- the proxy's answers are
MariaDB's, and identity functions and shard internals are the proxy's own.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from proxy.dev.localshard import ShardEndpoint
from proxy.sql.charsets import COLLATIONS
from tests.conftest import connect_admin
from tests.e2e.conftest import PASSWORDS, ProxyEnv, start_proxy

NODE_DIR = Path(__file__).resolve().parents[1] / "drivers" / "node"
JSON_TYPE = 245  # MYSQL_TYPE_JSON, as a driver reports a MariaDB JSON column it recognises


def _node_available() -> bool:
    return shutil.which("node") is not None and (NODE_DIR / "node_modules" / "mysql2").is_dir()


needs_node = pytest.mark.skipif(
    not _node_available(), reason="node and tests/drivers/node's mysql2 (`npm ci` there)"
)


def mysql2(proxy: ProxyEnv, steps: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
    """Run ``steps`` through node's mysql2 connected to the proxy as easydb's administrator."""
    connection = {
        "host": proxy.host,
        "port": proxy.port,
        "user": "easydb",
        "password": PASSWORDS["easydb"],
        "database": "easydb",
        **options,
    }
    done = subprocess.run(
        [
            "node",
            str(NODE_DIR / "probe.js"),
            json.dumps({"connection": connection, "steps": steps}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.fixture
def jtable(proxy: ProxyEnv) -> Iterator[str]:
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS fid_json")
        cur.execute("CREATE TABLE fid_json (id INT, doc JSON, name VARCHAR(20))")
        cur.execute("""INSERT INTO fid_json VALUES (1, '{"a": [1, 2]}', 'x')""")
    yield "fid_json"


# -- capabilities ------------------------------------------------------------------------------


@needs_node
def test_mysql2_json_type_info_and_session_tracking(proxy: ProxyEnv, jtable: str) -> None:
    """mysql2 asks a MariaDB server for extended type information (JSON columns arrive parsed)
    and tracks session state from OK packets; the proxy's own answers keep both well-formed."""
    results = mysql2(
        proxy,
        [
            {"sql": f"SELECT id, doc FROM {jtable}"},
            {"sql": f"SELECT doc FROM {jtable} WHERE id = ?", "params": [1], "execute": True},
            {"sql": f"SELECT doc FROM {jtable} WHERE id = ?", "params": [1], "execute": True},
            {"sql": "SET NAMES latin1"},
            {"sql": "USE easydb"},
            {"sql": "SHOW PROCESSLIST"},
            {"sql": "SELECT @@character_set_client AS cs"},
        ],
    )
    select, execute, again, names, use, processlist, charset = results
    assert select["rows"] == [{"id": 1, "doc": {"a": [1, 2]}}]
    assert execute["rows"] == again["rows"] == [{"doc": {"a": [1, 2]}}]
    assert names["error"] is None
    assert names["stateChanges"]["systemVariables"]["character_set_client"] == "latin1"
    assert use["stateChanges"]["schema"] == "easydb"
    assert processlist["error"] is None and len(processlist["rows"]) >= 1
    assert processlist["rows"][0]["User"] == "easydb"
    assert charset["rows"] == [{"cs": "latin1"}]


@pytest.mark.parametrize(
    ("charset", "name"),
    [
        ("CP1251_GENERAL_CI", "cp1251"),
        ("KOI8R_GENERAL_CI", "koi8r"),
        ("LATIN2_GENERAL_CI", "latin2"),
    ],
)
@needs_node
def test_mysql2_handshake_character_set_reaches_the_shard(
    proxy: ProxyEnv, charset: str, name: str
) -> None:
    """mysql2 names its character set only in the handshake: the shard session gets it (not
    utf8mb4), so the client's 8-bit text is stored and read back as it meant it."""
    text = "Ďá" if name == "latin2" else "Жук"
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS fid_cs")
        cur.execute("CREATE TABLE fid_cs (s VARCHAR(20)) CHARACTER SET utf8mb4")
    first, insert, back = mysql2(
        proxy,
        [
            {"sql": "SELECT @@character_set_client AS c, @@collation_connection AS k"},
            {"sql": "INSERT INTO fid_cs VALUES (?)", "params": [text]},
            {"sql": "SELECT s FROM fid_cs"},
        ],
        charset=charset,
    )
    assert first["rows"] == [{"c": name, "k": charset.lower()}]
    assert insert["error"] is None
    assert back["rows"] == [{"s": text}]
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT s FROM fid_cs")
        assert cur.fetchall() == ((text,),)


@needs_node
def test_mysql2_unsafe_handshake_character_set_refused(proxy: ProxyEnv) -> None:
    """A character set whose multi-byte characters may contain ASCII bytes (gbk) cannot be
    checked safely: refused at login, as SET NAMES of it is, never silently served in utf8mb4."""
    [result] = [
        r for r in mysql2(proxy, [{"sql": "SELECT 1"}], charset="GBK_CHINESE_CI") if "error" in r
    ]
    assert result["error"][0] == 1235 and "'gbk'" in result["error"][1]


def test_mariadb_connector_extended_type_info_and_cached_metadata(
    proxy: ProxyEnv, jtable: str
) -> None:
    """MariaDB Connector/Python negotiates extended type information and metadata caching: a
    JSON column is reported as JSON, re-executions of a prepared statement (whose metadata the
    shard then skips) are relayed whole, and the proxy's own result sets parse."""
    mariadb = pytest.importorskip("mariadb")
    conn = mariadb.connect(
        host=proxy.host,
        port=proxy.port,
        user="easydb",
        password=PASSWORDS["easydb"],
        database="easydb",
    )
    try:
        assert conn.extended_server_capabilities & 0x18 == 0x18  # type info, cache metadata
        cur = conn.cursor()
        cur.execute(f"SELECT id, doc FROM {jtable}")
        assert cur.fetchall() == [(1, '{"a": [1, 2]}')]
        assert cur.description[1][1] == JSON_TYPE
        prepared = conn.cursor(prepared=True)
        for _ in range(3):
            prepared.execute(f"SELECT doc, name FROM {jtable} WHERE id = ?", (1,))
            assert prepared.fetchall() == [('{"a": [1, 2]}', "x")]
        cur.execute("SHOW PROCESSLIST")
        assert [row[1] for row in cur.fetchall()] == ["easydb"]
        cur.execute("SELECT USER(), CONNECTION_ID()")
        assert [d[0] for d in cur.description] == ["USER()", "CONNECTION_ID()"]
        assert cur.fetchall() == [("easydb@127.0.0.1", conn.connection_id)]
    finally:
        conn.close()


def test_proxy_ok_packets_never_claim_session_state(proxy: ProxyEnv) -> None:
    """After the shard's OK carried session-state data, the proxy's own answers (a local OK,
    a local result set) must not copy its SERVER_SESSION_STATE_CHANGED flag: mysql-connector
    (asked to track session state) reads them cleanly."""
    from mysql.connector.constants import ClientFlag

    conn = proxy.connector(autocommit=True, client_flags=[ClientFlag.SESSION_TRACK])
    try:
        cur = conn.cursor()
        cur.execute("SET NAMES utf8mb4")  # the shard's OK tracks the character set variables
        cur.execute("SHOW PROCESSLIST")
        assert len(cur.fetchall()) >= 1
        cur.execute("SET time_zone = '+01:00'")
        conn.cmd_init_db("easydb")  # a local OK
        cur.execute("SELECT @@time_zone")
        assert cur.fetchall() == [("+01:00",)]
    finally:
        conn.close()


def test_collations_match_the_shard(shards: list[ShardEndpoint]) -> None:
    """The collation-id map the handshake's character set is read with is MariaDB 10.11's."""
    conn = connect_admin(shards[0])
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS "
                "WHERE ID IS NOT NULL"
            )
            assert dict(cur.fetchall()) == COLLATIONS
    finally:
        conn.close()


# -- identity ----------------------------------------------------------------------------------


def _one(conn: pymysql.connections.Connection, sql: str) -> tuple[list[str], tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return [d[0] for d in cur.description], cur.fetchone()


def test_identity_functions_are_the_proxys(proxy: ProxyEnv) -> None:
    with proxy.connect() as conn:
        names, row = _one(
            conn,
            "SELECT USER(), current_user, CURRENT_USER() AS cu, SESSION_USER(), "
            "SYSTEM_USER(), CONNECTION_ID(), @@hostname, @@port, @@global.port, @@socket",
        )
        assert names == [
            "USER()",
            "current_user",
            "cu",
            "SESSION_USER()",
            "SYSTEM_USER()",
            "CONNECTION_ID()",
            "@@hostname",
            "@@port",
            "@@global.port",
            "@@socket",
        ]
        assert row == (
            "easydb@127.0.0.1",
            "easydb@%",
            "easydb@%",
            "easydb@127.0.0.1",
            "easydb@127.0.0.1",
            conn.thread_id(),
            socket.gethostname(),
            proxy.port,
            proxy.port,
            "",
        )
        _, (datadir,) = _one(conn, "SELECT @@datadir")
        assert datadir == f"{proxy.config.base_dir}/"
        # inside expressions, conditions, SET and after an operator, with odd spacing
        assert _one(conn, "SELECT CONCAT(USER(), '!') AS u")[1] == ("easydb@127.0.0.1!",)
        assert _one(conn, "SELECT 1 FROM DUAL WHERE CURRENT_USER() = 'easydb@%'")[1] == (1,)
        assert _one(conn, "SELECT 1-@@port, 1--@@port, user ( )")[1] == (
            1 - proxy.port,
            1 + proxy.port,
            "easydb@127.0.0.1",
        )
        with conn.cursor() as cur:
            cur.execute("SET @who = CURRENT_USER")
            cur.execute("SELECT @who")
            assert cur.fetchall() == (("easydb@%",),)
            # the session-scope form stays the shard's answer (port is a global variable)
            with pytest.raises(pymysql.err.OperationalError) as info:
                cur.execute("SELECT @@session.port")
            assert info.value.args[0] == 1238
        processlist = _one(conn, "SHOW PROCESSLIST")[1]
        assert processlist[0] == conn.thread_id()
    # a multi-statement packet
    with proxy.connect(client_flag=CLIENT.MULTI_STATEMENTS) as conn, conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID(); SELECT SESSION_USER()")
        assert cur.fetchall() == ((conn.thread_id(),),)
        assert cur.nextset() and cur.fetchall() == (("easydb@127.0.0.1",),)


def test_identity_of_a_table_level_account_in_prepared_statements(proxy: ProxyEnv) -> None:
    """CURRENT_USER() is the matched account pattern, USER() the client's address, also in a
    prepared statement (mysql-connector's binary protocol)."""
    with proxy.connect() as admin, admin.cursor() as cur:
        cur.execute("DROP USER IF EXISTS 'fiduser'@'127.0.0.%'")
        cur.execute("CREATE USER 'fiduser'@'127.0.0.%' IDENTIFIED BY 'Fid#pass1'")
        cur.execute("GRANT SELECT ON easydb.* TO 'fiduser'@'127.0.0.%'")
    conn = proxy.connector(user="fiduser", password="Fid#pass1")
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT CURRENT_USER(), USER(), ? AS x", ("y",))
        assert cur.fetchall() == [("fiduser@127.0.0.%", "fiduser@127.0.0.1", "y")]
        assert [d[0] for d in cur.description] == ["CURRENT_USER()", "USER()", "x"]
    finally:
        conn.close()


# -- MariaDB's answers -------------------------------------------------------------------------


def test_syntax_error_names_mariadb(proxy: ProxyEnv) -> None:
    with proxy.connect() as conn, conn.cursor() as cur:
        for sql in ("SELEC 1", "SELECT 'unterminated"):
            with pytest.raises(pymysql.err.ProgrammingError) as info:
                cur.execute(sql)
            assert info.value.args[0] == 1064
            assert "corresponds to your MariaDB server version" in info.value.args[1]


def test_packet_over_the_limit_is_1153(
    proxy: ProxyEnv, shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    """A packet over ``max_packet`` ends the connection with MariaDB's 1153 at the sequence
    number the client expects (PyMySQL checks it), not a protocol error."""
    runner = start_proxy(
        tmp_path, shards, "max_packet = 1048576", [("fidbig", "s0")], "Big#pass1", "BigRO#pass1"
    )
    try:
        assert runner.server is not None
        conn = pymysql.connect(
            host=proxy.host,
            port=runner.server.port,
            user="fidbig",
            password="Big#pass1",
            database="fidbig",
            max_allowed_packet=64 << 20,
        )
        with pytest.raises(pymysql.err.OperationalError) as info, conn.cursor() as cur:
            cur.execute("SELECT '" + "a" * (2 << 20) + "'")
        assert info.value.args == (1153, "Got a packet bigger than 'max_allowed_packet' bytes")
    finally:
        runner.stop()


@needs_node
def test_kill_in_a_multi_statement_packet(proxy: ProxyEnv) -> None:
    """mysql2's own tests KILL through a multi-statement packet, as MariaDB allows: the proxy
    carries the KILL out (its connection ids) and the shard runs the rest."""
    with proxy.connect() as victim:
        victim_id = victim.thread_id()
        killed, unknown, after = mysql2(
            proxy,
            [
                {"sql": "KILL ?; SELECT 7 AS seven", "params": [victim_id]},
                {"sql": "KILL 987654; SELECT 8"},
                {"sql": "SELECT 9 AS nine"},
            ],
            multipleStatements=True,
        )
        with pytest.raises(pymysql.err.OperationalError):
            _one(victim, "SELECT 1")
    assert killed["error"] is None and killed["rows"][1] == [{"seven": 7}]
    assert unknown["error"] == [1094, "Unknown thread id: 987654"]
    assert after["rows"] == [{"nine": 9}]


def test_error_quoting_8bit_client_text(proxy: ProxyEnv) -> None:
    """A 1064 quotes the statement as the client sent it: a latin1 client's bytes come back as
    they were (they are not UTF-8), and the session goes on."""
    with proxy.connect(charset="latin1") as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.ProgrammingError) as info:
            cur.execute("SELEC 'café'")
        assert info.value.args[0] == 1064
        cur.execute("SELECT 'café'")
        assert cur.fetchall() == (("café",),)


def test_session_wait_timeout_closes_the_client_connection(proxy: ProxyEnv) -> None:
    """A session's own ``wait_timeout`` ends it after that long idle, as MariaDB does (mysql2's
    suite checks it): not only its backend connection, which the proxy would replace."""
    with proxy.connect() as conn:
        with conn.cursor() as cur:
            cur.execute("SET wait_timeout = 1")
        time.sleep(3)
        with pytest.raises(pymysql.err.OperationalError) as info, conn.cursor() as cur:
            cur.execute("SELECT 1")
        assert info.value.args[0] in (4031, 2013)
