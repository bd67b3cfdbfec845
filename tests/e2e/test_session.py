"""Session behaviour through real clients: read-only enforcement, fail-closed refusals,
SHOW PROCESSLIST and KILL on the proxy's own sessions, COM_CHANGE_USER, COM_RESET_CONNECTION,
COM_PING, prepared statements, and the mariadb command-line client."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import mysql.connector
import pymysql
import pytest

from tests.conftest import connect_admin
from tests.e2e.conftest import PASSWORDS, ProxyEnv


def test_read_only_account_can_read_but_not_write(proxy: ProxyEnv) -> None:
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS ro_t (id INT PRIMARY KEY, v INT)")
        cur.execute("REPLACE INTO ro_t VALUES (1, 10)")
    with proxy.connect(user="easydb_RO") as conn, conn.cursor() as cur:
        cur.execute("SELECT v FROM ro_t WHERE id = 1")
        assert cur.fetchone() == (10,)
        for sql, priv in [
            ("INSERT INTO ro_t VALUES (2, 20)", "INSERT"),
            ("UPDATE ro_t SET v = 11", "UPDATE"),
            ("DELETE FROM ro_t", "DELETE"),
            ("DROP TABLE ro_t", "DROP"),
            ("TRUNCATE TABLE ro_t", "DROP"),
        ]:
            with pytest.raises(pymysql.err.OperationalError) as info:
                cur.execute(sql)
            assert info.value.args == (
                1142,
                f"{priv} command denied to user 'easydb_RO'@'127.0.0.1' for table 'ro_t'",
            ), sql
        cur.execute("SELECT COUNT(*) FROM ro_t")
        assert cur.fetchone() == (1,)


@pytest.mark.parametrize(
    "sql, errno",
    [
        ("SELEC 1", 1064),
        ("FLUSH TABLES", 1227),
        ("SELECT * FROM otherdb.t", 1044),  # a database it may not use: as USE would say
        ("SELECT * FROM mysql.user", 1044),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", None),
        ("/*!50000 DROP TABLE ro_t */", None),
    ],
)
def test_unclassifiable_or_forbidden_is_refused(
    proxy: ProxyEnv, sql: str, errno: int | None
) -> None:
    with proxy.connect(user="easydb_RO") as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.MySQLError) as info:
            cur.execute(sql)
        if errno is not None:
            assert info.value.args[0] == errno
        # The session carries on after a refusal.
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)


def test_multi_statement_packet_is_refused_whole(proxy: ProxyEnv) -> None:
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS ms_t (id INT)")
        cur.execute("DELETE FROM ms_t")
    flags = pymysql.constants.CLIENT.MULTI_STATEMENTS
    with proxy.connect(user="easydb_RO", client_flag=flags) as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as info:
            cur.execute("SELECT 1; INSERT INTO ms_t VALUES (1)")
        assert info.value.args[0] == 1142
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM ms_t")
        assert cur.fetchone() == (0,)


def test_processlist_and_kill(proxy: ProxyEnv) -> None:
    a = proxy.connect()
    b = proxy.connect()
    ro = proxy.connect(user="easydb_RO")
    try:
        with a.cursor() as cur:
            # CONNECTION_ID() is the proxy's, the id the processlist shows and KILL takes.
            cur.execute("SELECT CONNECTION_ID()")
            assert cur.fetchone() == (a.thread_id(),)
            cur.execute("SHOW PROCESSLIST")
            rows = cur.fetchall()
            users = sorted(r[1] for r in rows)
            # The administrator sees every session in its database, its own included.
            assert users.count("easydb") >= 2 and "easydb_RO" in users
            assert [d[0] for d in cur.description] == [
                "Id",
                "User",
                "Host",
                "db",
                "Command",
                "Time",
                "State",
                "Info",
                "Progress",  # MariaDB's SHOW PROCESSLIST has it too
            ]
        with ro.cursor() as cur:
            cur.execute("SHOW PROCESSLIST")
            ro_rows = cur.fetchall()
            assert {r[1] for r in ro_rows} == {"easydb_RO"}
            ro_id = ro_rows[0][0]
        b_id = b.thread_id()
        with ro.cursor() as cur:
            with pytest.raises(pymysql.err.OperationalError) as info:
                cur.execute(f"KILL {b_id}")
            # A session the caller may not see is answered like one that does not exist.
            assert info.value.args == (1094, f"Unknown thread id: {b_id}")
            with pytest.raises(pymysql.err.OperationalError) as info:
                cur.execute("KILL 999999")
            assert info.value.args == (1094, "Unknown thread id: 999999")
        # KILL QUERY interrupts a running statement on the other session.
        result: list[object] = []

        def sleeper() -> None:
            try:
                with b.cursor() as cur:
                    cur.execute("SELECT SLEEP(20)")
                    result.append(cur.fetchone())
            except Exception as exc:
                result.append(exc)

        thread = threading.Thread(target=sleeper)
        started = time.monotonic()
        thread.start()
        time.sleep(1.0)
        with a.cursor() as cur:
            cur.execute(f"KILL QUERY {b_id}")
        thread.join(15)
        assert time.monotonic() - started < 10
        assert (result and result[0] in ((1,),)) or isinstance(result[0], pymysql.err.MySQLError)
        # KILL CONNECTION by the administrator ends the read-only session.
        with a.cursor() as cur:
            cur.execute(f"KILL {ro_id}")
        with pytest.raises(pymysql.err.MySQLError), ro.cursor() as cur:
            cur.execute("SELECT 1")
    finally:
        for conn in (a, b, ro):
            try:
                conn.close()
            except Exception:
                pass


def test_change_user_reset_and_ping(proxy: ProxyEnv) -> None:
    conn = proxy.connector(autocommit=True)
    try:
        conn.ping()
        cur = conn.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS cu_t (id INT)")
        cur.execute("SET @marker = 42")
        conn.cmd_reset_connection()
        cur = conn.cursor()
        cur.execute("SELECT @marker")
        assert cur.fetchone() == (None,)
        conn.cmd_change_user(
            username="easydb_RO", password=PASSWORDS["easydb_RO"], database="easydb"
        )
        cur = conn.cursor()
        cur.execute("SELECT CURRENT_USER()")
        cur.fetchall()
        with pytest.raises(mysql.connector.Error) as info:
            cur.execute("INSERT INTO cu_t VALUES (1)")
        assert info.value.errno == 1142
        with pytest.raises(mysql.connector.Error) as info:
            conn.cmd_change_user(username="easydb", password="wrong#pass1", database="easydb")
        assert info.value.errno == 1045
    finally:
        try:
            conn.close()
        except Exception:
            pass


def test_prepared_statement_rechecked_after_revoke(proxy: ProxyEnv) -> None:
    """A statement prepared while allowed is checked again on every execution."""
    from auth.model import CreateAccount, SetPrivileges, UserHost
    from auth.privileges import Priv

    catalog = proxy.catalog()
    if catalog.snapshot().find_account("prepuser", "%") is None:
        catalog.apply(
            [CreateAccount("prepuser", "%", "Prep#pass1", "easydb")],
            actor="operator",
            client="",
            action="test set-up",
        )
    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS prep_t (id INT)")
    catalog.apply(
        [SetPrivileges(UserHost("prepuser", "%"), "easydb", "prep_t", Priv.SELECT)],
        actor="operator",
        client="",
        action="grant",
    )
    proxy.server.ctx.catalog.refresh()
    conn = proxy.connector(user="prepuser", password="Prep#pass1")
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT COUNT(*) FROM prep_t WHERE id > ?", (0,))
        cur.fetchall()
        catalog.apply(
            [SetPrivileges(UserHost("prepuser", "%"), "easydb", "prep_t", Priv(0))],
            actor="operator",
            client="",
            action="revoke",
        )
        proxy.server.ctx.catalog.refresh()
        with pytest.raises(mysql.connector.Error) as info:
            cur.execute("SELECT COUNT(*) FROM prep_t WHERE id > ?", (0,))
        assert info.value.errno == 1142
    finally:
        conn.close()


@pytest.mark.skipif(shutil.which("mariadb") is None, reason="mariadb client not installed")
def test_mariadb_cli(proxy: ProxyEnv) -> None:
    base = [
        "mariadb",
        "-h",
        proxy.host,
        "-P",
        str(proxy.port),
        "-u",
        "easydb",
        f"-p{PASSWORDS['easydb']}",
        "--batch",
        "--skip-ssl",
        "easydb",
    ]
    out = subprocess.run(
        [
            *base,
            "-e",
            "CREATE TABLE IF NOT EXISTS cli_t (id INT, name VARCHAR(20)); "
            "DELETE FROM cli_t; INSERT INTO cli_t VALUES (1,'one'),(2,NULL); "
            "SELECT * FROM cli_t ORDER BY id; SHOW DATABASES",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "id\tname",
        "1\tone",
        "2\tNULL",
        "Database",  # sorted, as MariaDB lists them
        "easydb",
        "information_schema",
    ]
    bad = subprocess.run(
        [*base[:7], "-pwrong#pass", "--batch", "--skip-ssl", "-e", "SELECT 1"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode != 0
    assert (
        "ERROR 1045 (28000): Access denied for user 'easydb'@'127.0.0.1' (using password: YES)"
        in bad.stderr
    )


def test_server_cursor_execute_then_fetch(proxy: ProxyEnv) -> None:
    """COM_STMT_EXECUTE opening a read-only cursor, then COM_STMT_FETCH, on the raw wire."""
    import socket

    from auth.passwords import scramble_native
    from proxy.wire.packets import (
        Capability,
        ServerStatus,
        build_handshake_response,
        parse_eof,
        parse_handshake_v10,
        parse_stmt_prepare_ok,
    )

    with proxy.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS t_fetch (id INT PRIMARY KEY)")
        cur.execute("DELETE FROM t_fetch")
        cur.execute("INSERT INTO t_fetch VALUES (1), (2), (3)")

    sock = socket.create_connection((proxy.host, proxy.port), timeout=10)

    def read() -> bytes:
        header = sock.recv(4, socket.MSG_WAITALL)
        return sock.recv(int.from_bytes(header[:3], "little"), socket.MSG_WAITALL)

    def send(seq: int, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq]) + payload)

    def until_eof() -> list[bytes]:
        packets = []
        while True:
            packet = read()
            packets.append(packet)
            if packet[:1] == b"\xfe" and len(packet) < 9:
                return packets

    try:
        handshake = parse_handshake_v10(read())
        caps = int(
            Capability.PROTOCOL_41
            | Capability.SECURE_CONNECTION
            | Capability.PLUGIN_AUTH
            | Capability.TRANSACTIONS
        )
        send(
            1,
            build_handshake_response(
                capabilities=caps,
                max_packet_size=1 << 24,
                charset=45,
                username="easydb",
                auth_response=scramble_native(PASSWORDS["easydb"], handshake.scramble[:20]),
                database="easydb",
                auth_plugin="mysql_native_password",
            ),
        )
        assert read()[:1] == b"\x00"
        send(0, b"\x16SELECT id FROM t_fetch ORDER BY id")
        prepared = parse_stmt_prepare_ok(read())
        until_eof()  # the column definitions
        statement_id = prepared.statement_id.to_bytes(4, "little")
        # flags 0x01 = CURSOR_TYPE_READ_ONLY, iteration count 1, no parameters.
        send(0, b"\x17" + statement_id + b"\x01" + (1).to_bytes(4, "little"))
        assert read() == b"\x01"  # one column
        metadata_end = until_eof()[-1]
        assert parse_eof(metadata_end)[1] & ServerStatus.CURSOR_EXISTS
        send(0, b"\x1c" + statement_id + (2).to_bytes(4, "little"))
        first = until_eof()
        assert len(first) == 3  # two binary rows, then EOF
        send(0, b"\x1c" + statement_id + (2).to_bytes(4, "little"))
        second = until_eof()
        assert len(second) == 2  # the last row, then EOF
        assert parse_eof(second[-1])[1] & ServerStatus.LAST_ROW_SENT
        # The session is still in step: a text query after the cursor.
        send(0, b"\x03SELECT 42")
        assert read() == b"\x01"
    finally:
        sock.close()


def test_a_command_over_the_shards_max_allowed_packet_gets_1153(proxy: ProxyEnv) -> None:
    """The shard would answer 1153 and close; the proxy answers it at the client's sequence
    number without sending it the packet (the shard's own answer would carry the sequence
    number of the frame it stopped at, which clients reject)."""
    conn = proxy.connect(max_allowed_packet=64 * 1024 * 1024)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT @@global.max_allowed_packet")
            [(limit,)] = cur.fetchall()
        items = ",".join(["1"] * (int(limit) // 2 + 1))
        big = f"SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_ROWS IN ({items})"
        with pytest.raises(pymysql.err.OperationalError) as info, conn.cursor() as cur:
            cur.execute(big)
        assert info.value.args == (1153, "Got a packet bigger than 'max_allowed_packet' bytes")
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT CURRENT_USER(), CURRENT_USER, USER(), SESSION_USER()",
        "SELECT CONCAT(CURRENT_USER(), ''), LENGTH(USER()) + 0, CURRENT_USER() = 'x'",
        "SELECT CONNECTION_ID() + 0, CONNECTION_ID() AS c, CONNECTION_ID() - 1 d",
        "SELECT @@hostname, UPPER(@@hostname), @@port * 1, @@global.port",
        "SELECT (SELECT CONNECTION_ID()) + 1, CASE WHEN @@port > 0 THEN 1 END",
        "SELECT n FROM (SELECT CONNECTION_ID() > 0 AS n) d",
        "SELECT * FROM (SELECT CONNECTION_ID() > 0) d",
    ],
)
def test_identity_answers_are_named_as_mariadb_names_them(proxy: ProxyEnv, sql: str) -> None:
    """The values the proxy answers for the identity functions and its host's variables
    inside a select item without an alias: the column is named by the item's text as the
    client wrote it, as MariaDB names it (it showed the text the proxy put in, ``CONCAT(
    'easydb@%', '')``); an alias stays."""
    with proxy.connect() as ours, connect_admin(proxy.shards[0]) as theirs:
        names = []
        for conn in (ours, theirs):
            with conn.cursor() as cur:
                cur.execute(sql)
                names.append([d[0] for d in cur.description])
        assert names[0] == names[1], sql
