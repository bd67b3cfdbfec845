"""The query digest (SHOW QUERY_DIGEST) and the fast path's decisions, through real clients.

The fast path serves simple statements from the client connection's data_received, with a
cached privilege check; these tests make sure it decides exactly as the command loop does when
grants change between statements, and that every statement it relays lands in the digest.
"""

from __future__ import annotations

import socket

import mysql.connector
import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv


def _digest(conn: pymysql.connections.Connection) -> dict[str, tuple[int, int]]:
    with conn.cursor() as cur:
        cur.execute("SHOW QUERY_DIGEST")
        names = [d[0] for d in cur.description]
        assert names == [
            "schema_name",
            "digest_text",
            "count_star",
            "sum_time_us",
            "min_time_us",
            "max_time_us",
            "avg_time_us",
            "sum_rows_sent",
            "first_seen",
            "last_seen",
            "scatter_count",
            "max_partitions",
        ]
        rows = cur.fetchall()
    assert all(row[0] == "easydb" for row in rows)
    return {row[1]: (int(row[2]), int(row[7])) for row in rows}


def test_digest_counts_text_and_prepared_statements(proxy: ProxyEnv) -> None:
    with proxy.connect() as admin, admin.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS dg_t (id INT PRIMARY KEY, v INT)")
        cur.execute("REPLACE INTO dg_t VALUES (1, 10), (2, 20), (3, 30)")
        before = _digest(admin)
        for i in (1, 2, 3, 2):
            cur.execute(f"SELECT v FROM dg_t WHERE id = {i}")
        cur.execute("SELECT v FROM dg_t WHERE id > 0")
        after = _digest(admin)
    shape = "SELECT v FROM dg_t WHERE id = ?"
    assert after[shape][0] - before.get(shape, (0, 0))[0] == 4
    assert after[shape][1] - before.get(shape, (0, 0))[1] == 4  # one row each
    ranged = "SELECT v FROM dg_t WHERE id > ?"
    assert after[ranged][1] - before.get(ranged, (0, 0))[1] == 3

    conn = proxy.connector()
    try:
        cur = conn.cursor(prepared=True)
        for i in (1, 2):
            cur.execute("SELECT v FROM dg_t WHERE id = %s", (i,))
            assert cur.fetchall() == [(i * 10,)]
        cur.close()
    finally:
        conn.close()
    with proxy.connect() as admin:
        final = _digest(admin)
    assert final["SELECT v FROM dg_t WHERE id = ?"][0] == after[shape][0] + 2


def test_only_the_database_administrator_reads_the_digest(proxy: ProxyEnv) -> None:
    with proxy.connect(user="easydb_RO") as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.OperationalError) as info:
            cur.execute("SHOW QUERY_DIGEST")
        assert info.value.args[0] == 1227
    with proxy.connect(user="otherdb", database="otherdb") as conn, conn.cursor() as cur:
        cur.execute("SHOW QUERY_DIGEST")
        assert all(row[0] == "otherdb" for row in cur.fetchall())
    # Usable databases: two, so the login selects none.
    with proxy.connect() as admin, admin.cursor() as cur:
        cur.execute("DROP USER IF EXISTS dgnone")
        cur.execute("CREATE USER dgnone IDENTIFIED BY 'Dgnone12345'")
        cur.execute("GRANT SELECT ON easydb.* TO dgnone")
    with proxy.connect(user="otherdb", database="otherdb") as other, other.cursor() as cur:
        cur.execute("GRANT SELECT ON otherdb.* TO dgnone")
    with proxy.connect(user="dgnone", password="Dgnone12345", database=None) as conn:
        with conn.cursor() as cur, pytest.raises(pymysql.err.OperationalError) as info:
            cur.execute("SHOW QUERY_DIGEST")
        assert info.value.args == (1046, "No database selected")


def test_fast_path_sees_revoke_on_the_next_statement(proxy: ProxyEnv) -> None:
    with proxy.connect() as admin, admin.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS fp_t (id INT PRIMARY KEY, v INT)")
        cur.execute("REPLACE INTO fp_t VALUES (1, 10)")
        cur.execute("DROP USER IF EXISTS fpuser")
        cur.execute("CREATE USER fpuser IDENTIFIED BY 'Fppass1234'")
        cur.execute("GRANT SELECT ON easydb.fp_t TO fpuser")
    with (
        pymysql.connect(
            host=proxy.host,
            port=proxy.port,
            user="fpuser",
            password="Fppass1234",
            database="easydb",
            autocommit=True,
        ) as user,
        user.cursor() as ucur,
    ):
        prepared = proxy.connector(user="fpuser", password="Fppass1234")
        pcur = prepared.cursor(prepared=True)
        try:
            for _ in range(3):  # warm: the second and later go through the fast path
                ucur.execute("SELECT v FROM fp_t WHERE id = 1")
                assert ucur.fetchone() == (10,)
                pcur.execute("SELECT v FROM fp_t WHERE id = %s", (1,))
                assert pcur.fetchall() == [(10,)]
            # Through the proxy itself: the serving catalog changes at once (no polling).
            with proxy.connect() as admin, admin.cursor() as cur:
                cur.execute("REVOKE SELECT ON easydb.fp_t FROM fpuser")
            with pytest.raises(pymysql.err.OperationalError) as info:
                ucur.execute("SELECT v FROM fp_t WHERE id = 1")
            assert info.value.args == (
                1142,
                "SELECT command denied to user 'fpuser'@'127.0.0.1' for table 'fp_t'",
            )
            with pytest.raises(mysql.connector.Error) as pinfo:
                pcur.execute("SELECT v FROM fp_t WHERE id = %s", (1,))
            assert pinfo.value.errno == 1142
        finally:
            pcur.close()
            prepared.close()


def test_pipelined_commands_keep_their_order(proxy: ProxyEnv) -> None:
    """Several commands in one TCP segment: the fast path takes none of them out of order."""
    with proxy.connect() as admin, admin.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS pl_t (id INT PRIMARY KEY)")
        cur.execute("DELETE FROM pl_t")
    conn = proxy.connect()
    try:
        sock: socket.socket = conn._sock
        packets = b""
        for i in range(5):
            payload = b"\x03" + f"INSERT INTO pl_t VALUES ({i})".encode()
            packets += len(payload).to_bytes(3, "little") + b"\x00" + payload
        sock.sendall(packets)
        oks = 0
        buf = b""
        while oks < 5:
            buf += sock.recv(65536)
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:3], "little"):
                length = int.from_bytes(buf[:3], "little")
                assert buf[4] == 0x00, buf[4 : 4 + length]
                buf = buf[4 + length :]
                oks += 1
    finally:
        conn.close()
    with proxy.connect() as admin, admin.cursor() as cur:
        cur.execute("SELECT id FROM pl_t ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == [0, 1, 2, 3, 4]
