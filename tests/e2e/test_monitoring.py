"""Monitoring through the MySQL port: SHOW STATUS, COM_STATISTICS and the `mariadb-admin`
commands answer with the proxy's own counters (never the shard's, which count every tenant);
SHOW ENGINE ... STATUS, the shard's internals, is refused."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import mysql.connector
import pymysql
import pytest

from proxy.dev.localshard import ShardEndpoint
from tests.e2e.conftest import PASSWORDS, ProxyEnv, self_signed_cert, start_proxy


def _status(conn: pymysql.connections.Connection, sql: str) -> dict[str, str]:
    with conn.cursor() as cur:
        cur.execute(sql)
        assert [d[0] for d in cur.description or ()] == ["Variable_name", "Value"]
        return {name: value for name, value in cur.fetchall()}


def test_show_status_is_the_proxys_own(proxy: ProxyEnv) -> None:
    with proxy.connect() as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS mon_t (id INT PRIMARY KEY)")
        before = _status(conn, "SHOW GLOBAL STATUS")
        for name in (
            "Uptime",
            "Threads_connected",
            "Threads_running",
            "Max_used_connections",
            "Questions",
            "Connections",
            "Aborted_connects",
            "Com_select",
            "Com_insert",
            "Com_show_status",
            "Bytes_received",
            "Bytes_sent",
            "Shardgate_denials",
        ):
            assert int(before[name]) >= 0, name
        assert int(before["Threads_connected"]) >= 1 and int(before["Threads_running"]) >= 1
        # Nothing of the shard: its engines' counters are every tenant's.
        assert not [name for name in before if name.lower().startswith(("innodb", "aria", "wsrep"))]
        assert list(before) == sorted(before, key=str.lower)
        with conn.cursor() as cur:
            for _ in range(3):
                cur.execute("SELECT id FROM mon_t WHERE id = 1")
        after = _status(conn, "SHOW STATUS")
        assert int(after["Com_select"]) >= int(before["Com_select"]) + 3
        assert int(after["Questions"]) >= int(before["Questions"]) + 4
        assert int(after["Bytes_received"]) > int(before["Bytes_received"])
        assert int(after["Com_show_status"]) == int(before["Com_show_status"]) + 1
        # LIKE filters by name as MariaDB does (case-insensitively, _ and % wildcards).
        assert list(_status(conn, "SHOW SESSION STATUS LIKE 'com\\_sel%'")) == ["Com_select"]
        assert list(_status(conn, "show local status like 'UPTIME'")) == ["Uptime"]
        assert _status(conn, "SHOW STATUS LIKE 'Innodb%'") == {}
        with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as info:
            cur.execute("SHOW GLOBAL STATUS WHERE Variable_name = 'Uptime'")
        assert info.value.args[0] == 1235


def test_ssl_status_is_the_sessions_own(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    """Ssl_cipher and Ssl_version (mysql2's test-select-ssl reads Ssl_cipher): the client
    connection's own TLS, empty without it, as MariaDB answers (they were not shown at all)."""
    cert, key = self_signed_cert(tmp_path)
    extra = f'tls_cert = "{cert}"\ntls_key = "{key}"\n'
    runner = start_proxy(tmp_path, shards, extra, [("ssldb", "s0")], "Ssl#admin1", "SslRO#1")
    try:
        assert runner.server is not None
        login = {"host": "127.0.0.1", "port": runner.server.port, "user": "ssldb"}
        with pymysql.connect(**login, password="Ssl#admin1", database="ssldb") as conn:
            assert _status(conn, "SHOW STATUS LIKE 'Ssl_cipher'") == {"Ssl_cipher": ""}
            assert _status(conn, "SHOW GLOBAL STATUS LIKE 'ssl\\_%'") == {
                "Ssl_cipher": "",
                "Ssl_version": "",
            }
        verify = {"check_hostname": False, "verify_mode": ssl.CERT_NONE}
        with pymysql.connect(**login, password="Ssl#admin1", database="ssldb", ssl=verify) as conn:
            assert conn._sock is not None and isinstance(conn._sock, ssl.SSLSocket)
            cipher = conn._sock.cipher()
            assert cipher is not None
            assert _status(conn, "SHOW SESSION STATUS LIKE 'Ssl%'") == {
                "Ssl_cipher": cipher[0],
                "Ssl_version": conn._sock.version(),
            }
    finally:
        runner.stop()


def test_the_shards_internals_are_refused(proxy: ProxyEnv) -> None:
    """SHOW ENGINE shows the shard's transactions and statements, every tenant's (PROCESS, as
    MySQL); information_schema's status tables, the shard's counters."""
    with proxy.connect() as conn, conn.cursor() as cur:
        for sql in (
            "SHOW ENGINE INNODB STATUS",
            "SHOW ENGINE INNODB MUTEX",
            "SELECT * FROM information_schema.GLOBAL_STATUS",
            "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS",
        ):
            with pytest.raises(pymysql.err.MySQLError) as info:
                cur.execute(sql)
            assert info.value.args == (
                1227,
                "Access denied; you need (at least one of) the PROCESS privilege(s) for this "
                "operation",
            )


def test_com_statistics(proxy: ProxyEnv) -> None:
    conn = mysql.connector.connect(
        host=proxy.host,
        port=proxy.port,
        user="easydb_RO",
        password=PASSWORDS["easydb_RO"],
        database="easydb",
        use_pure=True,
    )
    try:
        stats = conn.cmd_statistics()
    finally:
        conn.close()
    assert isinstance(stats, dict)
    assert set(stats) == {
        "Uptime",
        "Threads",
        "Questions",
        "Slow queries",
        "Opens",
        "Open tables",
        "Queries per second avg",
    }
    assert int(stats["Threads"]) >= 1 and int(stats["Questions"]) >= 0
    # The proxy opens no tables and keeps no slow-query log.
    assert [int(stats[k]) for k in ("Opens", "Open tables", "Slow queries")] == [0, 0, 0]


def _admin(proxy: ProxyEnv, *command: str) -> str:
    tool = shutil.which("mariadb-admin") or shutil.which("mysqladmin")
    assert tool is not None, "the MariaDB client tools are installed by .ci/setup"
    done = subprocess.run(
        [
            tool,
            "--protocol=TCP",
            "-h",
            proxy.host,
            "-P",
            str(proxy.port),
            "-u",
            "easydb",
            f"-p{PASSWORDS['easydb']}",
            *command,
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_mariadb_admin_commands(proxy: ProxyEnv) -> None:
    status = _admin(proxy, "status")
    assert status.startswith("Uptime: ") and "Threads: " in status and "Opens: 0" in status
    extended = _admin(proxy, "extended-status")
    assert "| Uptime " in extended and "| Com_select " in extended and "Innodb" not in extended
    processlist = _admin(proxy, "processlist")
    assert "| easydb " in processlist and "SHOW PROCESSLIST" in processlist
    assert _admin(proxy, "ping").strip() == "mysqld is alive"
    version = _admin(proxy, "version")
    assert "Server version" in version and "Uptime:" in version and "Threads: " in version
