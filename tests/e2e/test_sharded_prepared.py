"""Server-side prepared statements on a sharded database's tables, through the binary protocol
(the repository's byte-level client, and mysql-connector-python's prepared cursor in a child
process), on two real MariaDB shards: each execution routed by its parameters to the partitions
holding them (checked in the shards' general logs), IN lists, scatter reads concatenated or
merged, INSERT split per partition with its parameters, UPDATE and DELETE, NULL, negative and
64-bit extreme keys, a string key, and every answer the same as the text protocol's.

The layout: ``shps`` over s0 and s1 with 4 physical databases (``shps_0000``, ``shps_0001`` on
s0; ``shps_0002``, ``shps_0003`` on s1). ``DBPARTITION BY HASH(id)``: db = |id| mod 4 (a
BIGINT's |Long.MIN_VALUE| stays negative: refused, as in the text protocol).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from proxy.shard.placement import java_string_hash
from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient, ServerError, Value
from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import physical, sharded_database

PASSWORD = "ShPrep#pass1"
DB = "shps"
BIG = 9223372036854775807


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE t (id bigint NOT NULL, v varchar(40), n bigint, PRIMARY KEY (id))"
        " DBPARTITION BY HASH(id)",
        "CREATE TABLE s (k varchar(20) NOT NULL, v bigint, PRIMARY KEY (k)) DBPARTITION BY HASH(k)",
        "CREATE TABLE sp (id bigint NOT NULL, v bigint, PRIMARY KEY (id))"
        " DBPARTITION BY HASH(id) TBPARTITION BY HASH(id) TBPARTITIONS 2",
        "CREATE TABLE b (id bigint PRIMARY KEY, name varchar(20)) BROADCAST",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        yield env


def _client(env: ProxyEnv) -> pymysql.connections.Connection[Any]:
    return env.connect(DB, PASSWORD, database=DB)


def _binary(env: ProxyEnv) -> BinaryClient:
    return BinaryClient(env.port, DB, PASSWORD, DB)


def _text(env: ProxyEnv, sql: str) -> list[tuple[Any, ...]]:
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return [tuple(row) for row in cur.fetchall()]
    finally:
        conn.close()


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


def _executed(env: ProxyEnv, marker: str) -> dict[int, int]:
    """Per physical database: the executions of statements holding ``marker`` its shard
    logged (MariaDB logs an execution as ``Execute`` with the statement's text; the
    connection's database is read from the shard's processlist)."""
    found: dict[int, int] = {}
    for shard in (0, 1):
        admin = connect_admin(env.shards[shard])
        try:
            with admin.cursor() as cur:
                cur.execute(
                    "SELECT thread_id, CONVERT(argument USING utf8mb4) FROM mysql.general_log"
                    " WHERE command_type = 'Execute'"
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
                found[index] = found.get(index, 0) + 1
    return found


def _rows(result: list[tuple[int | str | None, ...]] | int) -> list[tuple[int | str | None, ...]]:
    assert isinstance(result, list)
    return result


def test_point_reads_reach_only_their_partition(sharded: ProxyEnv) -> None:
    env = sharded
    keys = [0, 1, 2, 3, 4, -5, -6, 7, BIG, -BIG, 2**40 + 3]
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            for key in keys:
                cur.execute("INSERT INTO t (id, v, n) VALUES (%s, %s, %s)", (key, f"v{key}", key))
    finally:
        conn.close()
    client = _binary(env)
    try:
        select = client.prepare("SELECT id, v, n FROM t AS point1 WHERE id = ?")
        assert (select.params, select.columns) == (1, 3)
        for key in keys:
            _general_log(env, True)
            try:
                rows = _rows(client.execute(select, [key]))
            finally:
                _general_log(env, False)
            assert rows == [(key, f"v{key}", key)]
            assert rows == _text(env, f"SELECT id, v, n FROM t WHERE id = {key}")
            # Only the partition holding the key executed it.
            assert _executed(env, "point1") == {abs(key) % 4: 1}, key
        assert _rows(client.execute(select, [123456])) == []
        # The types of the last execution ("as last time": new_params_bound_flag 0).
        assert _rows(client.execute(select, [3], send_types=False)) == [(3, "v3", 3)]
        assert _rows(client.execute(select, [6], send_types=False)) == []
        # A string value for an integer key: converted as the text protocol's '4' is.
        assert _rows(client.execute(select, ["4"])) == [(4, "v4", 4)]
        assert _rows(client.execute(select, [None])) == []
        # The same statement prepared twice: ids the client can tell apart.
        again = client.prepare("SELECT v FROM t WHERE id = ?")
        assert again.statement_id != select.statement_id
        assert _rows(client.execute(again, [-5])) == [("v-5",)]
        client.close_statement(again)
        with pytest.raises(ServerError) as unknown:
            client.execute(again, [1])
        assert unknown.value.errno == 1243
        assert _rows(client.execute(select, [7])) == [(7, "v7", 7)]
    finally:
        client.close()


def test_in_lists_scatter_and_merge(sharded: ProxyEnv) -> None:
    env = sharded
    client = _binary(env)
    try:
        conn = _client(env)
        try:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO t (id, v, n) VALUES (%s, %s, %s)",
                    [(100 + i, f"m{i % 3}", i) for i in range(12)],
                )
        finally:
            conn.close()
        in_list = client.prepare("SELECT id FROM t AS inl1 WHERE id IN (?, ?, 101)")
        _general_log(env, True)
        try:
            rows = _rows(client.execute(in_list, [100, 104]))
        finally:
            _general_log(env, False)
        assert sorted(rows) == [(100,), (101,), (104,)]
        assert _executed(env, "inl1") == {0: 1, 1: 1}
        either = client.prepare("SELECT id FROM t WHERE id = ? OR id = ?")
        assert sorted(_rows(client.execute(either, [102, 103]))) == [(102,), (103,)]
        # Scatter, concatenated: every partition.
        scatter = client.prepare("SELECT id, v FROM t AS sca1 WHERE n >= ? AND id >= 100")
        _general_log(env, True)
        try:
            rows = _rows(client.execute(scatter, [6]))
        finally:
            _general_log(env, False)
        assert sorted(rows) == sorted(_text(env, "SELECT id, v FROM t WHERE n >= 6 AND id >= 100"))
        assert _executed(env, "sca1") == {0: 1, 1: 1, 2: 1, 3: 1}
        # Merged (binary rows): ORDER BY with LIMIT, aggregates, GROUP BY.
        for sql, params in (
            ("SELECT id, v FROM t WHERE id >= ? ORDER BY id DESC LIMIT 2, 4", [100]),
            ("SELECT v, id FROM t WHERE n < ? AND id >= 100 ORDER BY v, id", [9]),
            ("SELECT count(*), sum(n), min(v), max(id) FROM t WHERE id >= ?", [100]),
            ("SELECT v, count(*) FROM t WHERE id >= ? GROUP BY v ORDER BY v", [100]),
        ):
            statement = client.prepare(sql)
            got = _rows(client.execute(statement, list(params)))
            literal = sql.replace("?", str(params[0]))
            expected = [tuple(_plain(v) for v in row) for row in _text(env, literal)]
            assert [tuple(_plain(v) for v in row) for row in got] == expected, sql
        # Parameters the merge would move: refused rather than guessed.
        moved = client.prepare("SELECT id FROM t ORDER BY id + ? LIMIT 3")
        with pytest.raises(ServerError) as refused:
            client.execute(moved, [1])
        assert refused.value.errno == 1235
    finally:
        client.close()


def _plain(value: Any) -> Any:
    """Numbers as the binary client and pymysql give them, compared as text."""
    return None if value is None else str(value)


def test_writes_split_and_routed(sharded: ProxyEnv) -> None:
    env = sharded
    client = _binary(env)
    try:
        insert = client.prepare("INSERT INTO t (id, v, n) VALUES (?, ?, ?), (?, ?, ?), (?, 'x', 1)")
        assert client.execute(insert, [200, "a", 1, 201, None, 2, 202]) == 3
        assert physical(env, DB, 0, "SELECT id, v, n FROM t WHERE id >= 200") == [(200, "a", 1)]
        assert physical(env, DB, 1, "SELECT id, v, n FROM t WHERE id >= 200") == [(201, None, 2)]
        assert physical(env, DB, 2, "SELECT id, v, n FROM t WHERE id >= 200") == [(202, "x", 1)]
        update = client.prepare("UPDATE t SET n = n + ? WHERE id = ?")
        assert client.execute(update, [10, 201]) == 1
        assert physical(env, DB, 1, "SELECT n FROM t WHERE id = 201") == [(12,)]
        # Several partitions: one XA transaction.
        scatter_update = client.prepare("UPDATE t SET v = ? WHERE id IN (?, ?)")
        assert client.execute(scatter_update, ["u", 200, 202]) == 2
        assert _text(env, "SELECT v FROM t WHERE id IN (200, 202)") == [("u",), ("u",)]
        with pytest.raises(ServerError) as refused:
            client.prepare("UPDATE t SET id = ? WHERE id = 1")
        assert refused.value.errno == 1235
        delete = client.prepare("DELETE FROM t WHERE id = ?")
        assert client.execute(delete, [200]) == 1
        assert client.execute(delete, [200]) == 0
        # A duplicate key: the shard's error, as the text protocol answers it.
        with pytest.raises(ServerError) as duplicate:
            client.execute(insert, [201, "d", 0, 300, "d", 0, 301])
        assert duplicate.value.errno == 1062
        assert _text(env, "SELECT count(*) FROM t WHERE id IN (300, 301)") == [(0,)]
        # Extreme keys and NULL: placed as the text protocol places them.
        extreme = client.prepare("INSERT INTO sp (id, v) VALUES (?, ?)")
        for key in (-BIG, BIG, -1, 0):
            assert client.execute(extreme, [key, key]) == 1
        g = {key: abs(key) % 8 for key in (-BIG, BIG, -1, 0)}
        for key, table in g.items():
            assert physical(
                env, DB, table // 2, f"SELECT v FROM sp_{table:02d} WHERE id = {key}"
            ) == [(key,)]
        point = client.prepare("SELECT v FROM sp WHERE id = ?")
        for key in g:
            assert _rows(client.execute(point, [key])) == [(key,)]
        with pytest.raises(ServerError) as null_key:
            client.execute(extreme, [None, 1])
        assert null_key.value.errno == 1048  # the shard's: id cannot be NULL
        # Broadcast: every copy written, one read.
        broadcast = client.prepare("INSERT INTO b (id, name) VALUES (?, ?)")
        # (the affected rows as the text protocol counts them: summed over the copies)
        text_conn = _client(env)
        try:
            with text_conn.cursor() as cur:
                text_count = cur.execute("INSERT INTO b (id, name) VALUES (2, 'two')")
        finally:
            text_conn.close()
        assert client.execute(broadcast, [1, "one"]) == text_count
        for index in range(4):
            assert physical(env, DB, index, "SELECT name FROM b ORDER BY id") == [
                ("one",),
                ("two",),
            ]
        read = client.prepare("SELECT name FROM b WHERE id = ?")
        assert _rows(client.execute(read, [1])) == [("one",)]
        client.reset(read)
        assert _rows(client.execute(read, [1])) == [("one",)]
    finally:
        client.close()


def test_string_key(sharded: ProxyEnv) -> None:
    env = sharded
    client = _binary(env)
    try:
        keys = ["alpha", "Beta", "", "ünïcode", "日本"]
        insert = client.prepare("INSERT INTO s (k, v) VALUES (?, ?)")
        for number, key in enumerate(keys):
            assert client.execute(insert, [key, number]) == 1
        for number, key in enumerate(keys):
            index = abs(java_string_hash(key)) % 4
            assert physical(env, DB, index, "SELECT k, v FROM s").count((key, number)) == 1
        select = client.prepare("SELECT v FROM s AS skey1 WHERE k = ?")
        for number, key in enumerate(keys):
            _general_log(env, True)
            try:
                assert _rows(client.execute(select, [key])) == [(number,)]
            finally:
                _general_log(env, False)
            assert _executed(env, "skey1") == {abs(java_string_hash(key)) % 4: 1}
        # A number against a string key compares as a double: every partition is asked.
        assert _rows(client.execute(select, [12345])) == []
    finally:
        client.close()


_CHILD = r"""
import json, sys
import mysql.connector
port, user, password, database = sys.argv[1:5]
conn = mysql.connector.connect(host="127.0.0.1", port=int(port), user=user, password=password,
                               database=database, use_pure=True, autocommit=True)
cur = conn.cursor(prepared=True)
out = {}
cur.execute("SELECT id, v, n FROM t WHERE id = %s", (7,))
out["point"] = [list(r) for r in cur.fetchall()]
cur.execute("SELECT id FROM t WHERE id IN (%s, %s, %s) ORDER BY id", (1, 2, -6))
out["in"] = [list(r) for r in cur.fetchall()]
cur.execute("SELECT id FROM t WHERE id > %s ORDER BY id DESC LIMIT 3", (-100,))
out["merge"] = [list(r) for r in cur.fetchall()]
cur.execute("INSERT INTO t (id, v, n) VALUES (%s, %s, %s), (%s, %s, %s)",
            (400, "c1", 1, 401, "c2", 2))
out["inserted"] = cur.rowcount
cur.execute("SELECT v FROM s WHERE k = %s", ("alpha",))
out["string"] = [list(r) for r in cur.fetchall()]
cur.execute("DELETE FROM t WHERE id IN (%s, %s)", (400, 401))
out["deleted"] = cur.rowcount
conn.close()
print(json.dumps(out))
"""


def test_mysql_connector_prepared_cursor(sharded: ProxyEnv) -> None:
    """mysql-connector-python's prepared cursor (COM_STMT_PREPARE / EXECUTE), in a child
    process, against what the text protocol answers."""
    env = sharded
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute("INSERT IGNORE INTO t (id, v, n) VALUES (7, 'v7', 7), (1, 'v1', 1)")
            cur.execute("INSERT IGNORE INTO t (id, v, n) VALUES (2, 'v2', 2), (-6, 'v-6', -6)")
    finally:
        conn.close()
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(env.port), DB, PASSWORD, DB],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["point"] == [list(r) for r in _text(env, "SELECT id, v, n FROM t WHERE id = 7")]
    assert out["in"] == [[-6], [1], [2]]
    assert out["merge"] == [
        list(r) for r in _text(env, "SELECT id FROM t WHERE id > -100 ORDER BY id DESC LIMIT 3")
    ]
    assert out["inserted"] == 2
    assert out["string"] == [[0]]
    assert out["deleted"] == 2


def test_limits_transactions_and_ids(sharded: ProxyEnv) -> None:
    env = sharded
    client = _binary(env)
    try:
        client.query(
            "CREATE TABLE seqd (id bigint AUTO_INCREMENT PRIMARY KEY, v bigint)"
            " DBPARTITION BY HASH(id)"
        )
        client.query("CREATE TABLE single1 (id bigint PRIMARY KEY, v bigint)")
        # An INSERT without the key takes it from the table's GROUP sequence.
        taken = client.prepare("INSERT INTO seqd (v) VALUES (?), (?)")
        assert client.execute(taken, [1, 2]) == 2
        assert sorted(r[0] for r in _text(env, "SELECT v FROM seqd")) == [1, 2]
        # A single table's statement (relayed to physical database 0) and sharded ones: ids
        # the client can tell apart, each answering for its own statement.
        single = client.prepare("SELECT count(*) FROM single1 WHERE id > ?")
        point = client.prepare("SELECT v FROM t WHERE id = ?")
        ids = {taken.statement_id, single.statement_id, point.statement_id}
        assert len(ids) == 3
        client.query("INSERT INTO single1 VALUES (1, 1)")
        assert _rows(client.execute(single, [0])) == [(1,)]
        client.query("INSERT IGNORE INTO t (id, v, n) VALUES (5, 'v5', 5)")
        assert _rows(client.execute(point, [5])) == [("v5",)]
        # Cursors and long data are refused on sharded tables; FETCH has no cursor.
        with pytest.raises(ServerError) as cursor:
            client.execute(point, [5], cursor=True)
        assert cursor.value.errno == 1235
        client.send_long_data(point, 0, b"5")
        with pytest.raises(ServerError) as long_data:
            client.execute(point, [5])
        assert long_data.value.errno == 1235
        assert _rows(client.execute(point, [5])) == [("v5",)]
        with pytest.raises(ServerError) as fetch:
            client.fetch(point, 1)
        assert fetch.value.errno == 1421
        # Inside a transaction: prepared statements reach every partition, in its branches.
        insert = client.prepare("INSERT INTO t (id, v, n) VALUES (?, ?, ?), (?, ?, ?)")
        fresh = "SELECT id FROM t WHERE id IN (900, 901) ORDER BY id"
        client.query("BEGIN")
        assert client.execute(insert, [900, "x", 1, 901, "y", 2]) == 2
        assert _rows(client.execute(point, [901])) == [("y",)]
        assert _rows(client.execute(point, [5])) == [("v5",)]
        assert _text(env, fresh) == []  # not committed: another session sees nothing
        client.query("ROLLBACK")
        assert _text(env, fresh) == []
        client.query("BEGIN")
        assert client.execute(insert, [900, "x", 1, 901, "y", 2]) == 2
        client.query("COMMIT")
        assert _text(env, fresh) == [(900,), (901,)]
        # DDL and SHOW are answered as their text is, in binary rows
        # (tests/e2e/test_sharded_prepared_answers.py).
        topology = client.prepare("SHOW TOPOLOGY FROM t")
        assert topology.columns == 3
        assert [row[1:] for row in _rows(client.execute(topology, []))] == [
            (f"{DB}_000{n}", "t") for n in range(4)
        ]
    finally:
        client.close()


def _results(cur: Any) -> list[list[tuple[Any, ...]] | int]:
    """Every answer of a multi-statement packet: rows, or the affected rows of an OK."""
    out: list[list[tuple[Any, ...]] | int] = []
    while True:
        if cur.description is None:
            out.append(cur.rowcount)
        else:
            out.append([tuple(row) for row in cur.fetchall()])
        if not cur.nextset():
            return out


def test_multi_statement_packets(sharded: ProxyEnv) -> None:
    """Each statement decided on its own: routed, scattered, merged, single tables on physical
    database 0; every answer but the last says more follow; an error ends the packet."""
    env = sharded
    conn = env.connect(
        DB, PASSWORD, database=DB, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO t (id, v, n) VALUES (500, 'm', 1), (501, 'm', 2);"
                " SELECT v FROM t WHERE id = 501;"
                " SELECT id FROM t WHERE id BETWEEN 500 AND 600 ORDER BY id DESC;"
                " UPDATE t SET n = n + 1 WHERE id IN (500, 501);"
                " SELECT count(*) FROM single1;"
                " SELECT sum(n) FROM t WHERE id BETWEEN 500 AND 600"
            )
            assert _results(cur) == [2, [("m",)], [(501,), (500,)], 2, [(1,)], [(5,)]]
            cur.execute("SELECT 1")
            assert cur.fetchall() == ((1,),)
            # An error ends the packet: the statements after it do not run.
            with pytest.raises(pymysql.err.MySQLError) as failed:
                cur.execute(
                    "DELETE FROM t WHERE id = 500; INSERT INTO t (id) VALUES (501);"
                    " DELETE FROM t WHERE id = 501"
                )
                _results(cur)
            assert failed.value.args[0] == 1062
            assert _text(env, "SELECT id FROM t WHERE id BETWEEN 500 AND 600") == [(501,)]
            # Statements that change the session are not run apart: the packet is refused.
            with pytest.raises(pymysql.err.MySQLError) as refused:
                cur.execute("SET @@session.sql_mode = ''; SELECT v FROM t WHERE id = 501")
            assert refused.value.args[0] == 1235
            cur.execute("SELECT v FROM t WHERE id = 501")
            assert cur.fetchall() == (("m",),)
    finally:
        conn.close()


def _prepared_on_shards(env: ProxyEnv) -> int:
    total = 0
    for shard in (0, 1):
        admin = connect_admin(env.shards[shard])
        try:
            with admin.cursor() as cur:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Prepared_stmt_count'")
                total += int(cur.fetchall()[0][1])
        finally:
            admin.close()
    return total


_TINY, _SHORT, _LONG, _LONGLONG = 0x01, 0x02, 0x03, 0x08


def test_fast_executions_follow_the_parameter_types(sharded: ProxyEnv) -> None:
    """Executions that send no types ("as last time", what clients send once they have sent
    them) read their integer key as the last types said -- each width, signed or unsigned --
    and a partition's connection sent other types before is sent the new ones first (the
    fast path remembers, per partition, what it sent there: dropped when the types change)."""
    env = sharded
    rows = {-5: "a", 251: "b", -6: "c", 65530: "d", 7: "e", 5: "f", 253: "g", BIG: "h"}
    conn = _client(env)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE ti (id bigint NOT NULL, v varchar(20), PRIMARY KEY (id))"
                " DBPARTITION BY HASH(id)"
            )
            for key, value in rows.items():
                cur.execute("INSERT INTO ti (id, v) VALUES (%s, %s)", (key, value))
    finally:
        conn.close()
    client = _binary(env)
    try:
        select = client.prepare("SELECT id, v FROM ti WHERE id = ?")

        def run(code: int, raw: bytes, *, unsigned: bool = False, types: bool = True) -> Any:
            return client.execute_typed(select, [(code, raw)], unsigned=unsigned, send_types=types)

        # TINY, signed: -5 (physical database 1), then 7 (3) without types, repeatedly.
        assert run(_TINY, b"\xfb") == [(-5, "a")]
        for _ in range(3):
            assert run(_TINY, b"\xfb", types=False) == [(-5, "a")]
            assert run(_TINY, b"\x07", types=False) == [(7, "e")]
        # TINY, unsigned: 0xfb is 251 (3); 0xfd is 253 (1), on a connection sent the signed
        # type before (read as signed there: -3, no row).
        assert run(_TINY, b"\xfb", unsigned=True) == [(251, "b")]
        for _ in range(3):
            assert run(_TINY, b"\xfd", types=False) == [(253, "g")]
            assert run(_TINY, b"\xfb", types=False) == [(251, "b")]
        # SHORT, signed, then unsigned: two bytes where one was read before.
        assert run(_SHORT, b"\xfa\xff") == [(-6, "c")]
        for _ in range(3):
            assert run(_SHORT, b"\x05\x00", types=False) == [(5, "f")]
            assert run(_SHORT, b"\xfa\xff", types=False) == [(-6, "c")]
        assert run(_SHORT, b"\xfa\xff", unsigned=True) == [(65530, "d")]
        for _ in range(3):
            assert run(_SHORT, b"\xfa\xff", types=False) == [(65530, "d")]
            assert run(_SHORT, b"\xfd\x00", types=False) == [(253, "g")]
        # LONG and LONGLONG, signed and unsigned (the largest BIGINT).
        assert run(_LONG, (-5).to_bytes(4, "little", signed=True)) == [(-5, "a")]
        for _ in range(3):
            assert run(_LONG, (7).to_bytes(4, "little"), types=False) == [(7, "e")]
            assert run(_LONG, (-6).to_bytes(4, "little", signed=True), types=False) == [(-6, "c")]
        assert run(_LONGLONG, BIG.to_bytes(8, "little"), unsigned=True) == [(BIG, "h")]
        for _ in range(3):
            assert run(_LONGLONG, BIG.to_bytes(8, "little"), types=False) == [(BIG, "h")]
            assert run(_LONGLONG, (5).to_bytes(8, "little"), types=False) == [(5, "f")]
        # Closed and prepared again (the shard may give the same ids): types first.
        client.close_statement(select)
        select = client.prepare("SELECT id, v FROM ti WHERE id = ?")
        assert run(_TINY, b"\xfb") == [(-5, "a")]
        for _ in range(3):
            assert run(_TINY, b"\x07", types=False) == [(7, "e")]
            assert run(_TINY, b"\xfb", types=False) == [(-5, "a")]
    finally:
        client.close()


def test_split_inserts_keep_the_shards_statements_bounded(sharded: ProxyEnv) -> None:
    """A multi-row INSERT prepares one physical statement per way its rows fall over the
    partitions: beyond a bound, the older ones are closed on the shards."""
    env = sharded
    client = _binary(env)
    try:
        insert = client.prepare("INSERT INTO t (id, v, n) VALUES " + ", ".join(["(?, 'r', 0)"] * 8))
        before = _prepared_on_shards(env)
        rng = list(range(10_000, 10_000 + 8 * 120))
        for execution in range(120):
            ids = rng[execution * 8 : execution * 8 + 8]
            # a different split each time: ids shifted so rows fall in new combinations
            values: list[Value] = [i * (1 + execution % 5) + execution for i in ids]
            assert client.execute(insert, values) == 8
        grown = _prepared_on_shards(env) - before
        assert 0 < grown <= 64 + 8
        assert _text(env, "SELECT count(*) FROM t WHERE v = 'r'") == [(960,)]
        client.close_statement(insert)
        client.query("DELETE FROM t WHERE v = 'r'")
    finally:
        client.close()


def test_a_table_created_again_is_routed_by_its_new_rule(sharded: ProxyEnv) -> None:
    env = sharded
    client = _binary(env)
    try:
        client.query(
            "CREATE TABLE again1 (id bigint PRIMARY KEY, v bigint) DBPARTITION BY HASH(id)"
        )
        client.query("INSERT INTO again1 VALUES (1, 10), (2, 20), (3, 30)")
        point = client.prepare("SELECT v FROM again1 WHERE id = ?")
        assert _rows(client.execute(point, [3])) == [(30,)]
        client.query("DROP TABLE again1")
        client.query("CREATE TABLE again1 (id bigint PRIMARY KEY, v bigint)")  # single now
        client.query("INSERT INTO again1 VALUES (3, 33), (7, 77)")
        assert physical(env, DB, 0, "SELECT id FROM again1 ORDER BY id") == [(3,), (7,)]
        assert _rows(client.execute(point, [3])) == [(33,)]
        assert _rows(client.execute(point, [7])) == [(77,)]
        client.query("DROP TABLE again1")
        client.query("CREATE TABLE again1 (id bigint PRIMARY KEY, v bigint) BROADCAST")
        client.query("INSERT INTO again1 VALUES (5, 55)")
        assert _rows(client.execute(point, [5])) == [(55,)]
    finally:
        client.close()


def test_reset_connection_and_malformed_executions(sharded: ProxyEnv) -> None:
    env = sharded
    client = _binary(env)
    try:
        point = client.prepare("SELECT v FROM t WHERE id = ?")
        assert _rows(client.execute(point, [3])) == [("v3",)]
        # An execution whose parameters are cut short: 1210, and the session goes on.
        body = b"\x17" + point.statement_id.to_bytes(4, "little") + b"\x00\x01\x00\x00\x00"
        client._send(body + b"\x00\x01\x08\x00" + b"\x03\x00")  # 2 of the BIGINT's 8 bytes
        with pytest.raises(ServerError) as short:
            client._check(client._read()[1])
        assert short.value.errno == 1210
        assert _rows(client.execute(point, [3])) == [("v3",)]
        # COM_RESET_CONNECTION: the session's statements are gone, on every partition.
        client._send(b"\x1f")
        client._check(client._read()[1])
        with pytest.raises(ServerError) as gone:
            client.execute(point, [3])
        assert gone.value.errno == 1243
        again = client.prepare("SELECT v FROM t WHERE id = ?")
        assert _rows(client.execute(again, [3])) == [("v3",)]
    finally:
        client.close()


def test_the_clients_text_reaches_the_partitions(sharded: ProxyEnv) -> None:
    """Comments and hints of a prepared statement reach the shards with it (only the table
    names change), as a text statement's do."""
    env = sharded
    client = _binary(env)
    try:
        point = client.prepare("SELECT /* marker-c1 */ v FROM t WHERE id = ?")
        _general_log(env, True)
        try:
            assert _rows(client.execute(point, [3])) == [("v3",)]
        finally:
            _general_log(env, False)
        assert _executed(env, "marker-c1") == {3: 1}
    finally:
        client.close()


def _fields(cur: Any) -> list[tuple[Any, ...]]:
    """Every field of the last result's column definitions, as PyMySQL read them."""
    fields = cur._result.fields if cur._result is not None else []
    return [
        (f.catalog, f.db, f.table_name, f.org_table, f.name, f.org_name, f.charsetnr, f.length,
         f.type_code, f.flags, f.scale)
        for f in fields
    ]  # fmt: skip


def test_column_definitions_name_the_logical_database_and_tables(sharded: ProxyEnv) -> None:
    """Routed, concatenated and prepared answers (text and binary, the command loop's and the
    fast path's executions, a multi-statement packet, a single table's answers relayed on the
    session's connection) carry the column definitions a plain database ``shps`` with the same
    tables gives: the logical database and table names, never ``shps_0002``, ``sp_03`` or
    ``shps_0000``, every other field byte for byte (a SELECT of no table's columns as it
    was)."""
    env = sharded
    plain_ddl = [
        "CREATE TABLE t (id bigint NOT NULL, v varchar(40), n bigint, PRIMARY KEY (id))",
        "CREATE TABLE sp (id bigint NOT NULL, v bigint, PRIMARY KEY (id))",
        "CREATE TABLE u (id bigint NOT NULL, w varchar(10), PRIMARY KEY (id))",
    ]
    admin = connect_admin(env.shards[0])
    try:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {DB}")
            cur.execute(f"CREATE DATABASE {DB}")
            for ddl in plain_ddl:
                cur.execute(f"{ddl.replace('TABLE ', f'TABLE {DB}.', 1)}")
    finally:
        admin.close()
    queries = [
        "SELECT * FROM t WHERE id = 6",  # routed
        "SELECT id AS k, v, n + 1 FROM t AS q WHERE id = 7",  # routed, an alias
        "SELECT * FROM sp WHERE id = 3",  # routed to a split table's physical table
        "SELECT id, v FROM t",  # concatenated
        "SELECT * FROM sp",  # concatenated over physical tables
        "SELECT 1 AS one, 'x' AS s",  # no table
        "SELECT * FROM u",  # relayed on the session's connection
        "SELECT * FROM u",  # (its fast path)
        "SHOW COLUMNS FROM t",
        "SELECT * FROM t WHERE id = 6; SELECT * FROM sp WHERE id = 3",  # multi-statement
    ]
    plain = connect_admin(
        env.shards[0], database=DB, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS
    )
    conn = env.connect(
        DB, PASSWORD, database=DB, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS
    )
    home = env.shards[0]
    direct = BinaryClient(home.port, home.user, home.password, DB)
    through = _binary(env)
    try:
        with conn.cursor() as proxied, plain.cursor() as reference:
            proxied.execute(plain_ddl[2])  # a single table: on physical database 0
            proxied.execute("INSERT INTO sp (id, v) VALUES (3, 30), (4, 40)")
            for sql in queries:
                proxied.execute(sql)
                reference.execute(sql)
                while True:
                    seen = _fields(proxied)
                    assert seen == _fields(reference), sql
                    assert not any("shps_" in str(f[1]) or "sp_" in str(f[3]) for f in seen), sql
                    more = proxied.nextset()
                    assert reference.nextset() == more
                    if not more:
                        break
        for sql, params in [
            ("SELECT w FROM u WHERE id = ?", [1]),  # the session's first statement
            ("SELECT * FROM t WHERE id = ?", [6]),
            ("SELECT id AS k, v FROM sp AS q WHERE id = ?", [3]),
            ("SELECT * FROM sp WHERE id = ?", [4]),
            ("SELECT v, id FROM t WHERE id IN (?, ?)", [1, 6]),
            ("SELECT * FROM u AS x WHERE id = ?", [2]),
        ]:
            expected = direct.prepare(sql)
            want = list(direct.columns)
            prepared = through.prepare(sql)
            assert through.columns == want, sql  # the COM_STMT_PREPARE answer
            direct.execute(expected, list(params))
            want_rows = list(direct.columns)
            for _ in range(3):  # the command loop's execution, then the fast path's
                through.execute(prepared, list(params))
                assert through.columns == want_rows, sql
        for sql in ["SELECT id, v FROM t", "SELECT * FROM sp"]:
            expected = direct.prepare(sql)
            prepared = through.prepare(sql)
            assert direct.execute_raw(expected)[0] == through.execute_raw(prepared)[0], sql
    finally:
        direct.close()
        through.close()
        plain.close()
        conn.close()
        admin = connect_admin(env.shards[0])
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {DB}")
        finally:
            admin.close()
        drop = _client(env)
        try:
            with drop.cursor() as cur:
                cur.execute("DROP TABLE IF EXISTS u")
        finally:
            drop.close()


def _names(columns: list[bytes]) -> list[tuple[str, str, str, str]]:
    """(schema, table, org_table, name) of column definition payloads."""
    out = []
    for payload in columns:
        fields = []
        pos = 0
        for _ in range(5):
            length = payload[pos]
            fields.append(payload[pos + 1 : pos + 1 + length].decode())
            pos += 1 + length
        out.append((fields[1], fields[2], fields[3], fields[4]))
    return out


def _text_of(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def test_remembered_renamings_follow_alter_and_rename(sharded: ProxyEnv) -> None:
    """The fast path remembers the renaming of each plan's column definitions, and each
    connection the heads it rewrote: neither goes stale. One binary and one text session read
    a table on every partition (the fast path), the table gains a column (ALTER TABLE) and is
    renamed (RENAME TABLE) through another session, and the same sessions' next reads -- the
    same prepared statement after the ALTER, a new one after the RENAME -- name the new column,
    the new table and the logical database, never a physical one."""
    env = sharded
    ids = list(range(8))  # every physical database, twice
    admin = _client(env)
    binary = _binary(env)
    text = _client(env)
    try:
        with admin.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS hc")
            cur.execute("DROP TABLE IF EXISTS hc2")
            cur.execute(
                "CREATE TABLE hc (id bigint NOT NULL, v varchar(10), PRIMARY KEY (id))"
                " DBPARTITION BY HASH(id)"
            )
            cur.executemany("INSERT INTO hc (id, v) VALUES (%s, %s)", [(i, f"v{i}") for i in ids])

        def read(table: str, statement: Any, columns: list[str]) -> None:
            want = [(DB, table, table, name) for name in columns]
            for _ in range(3):  # the command loop's first execution, then the fast path's
                for i in ids:
                    rows = _rows(binary.execute(statement, [i]))
                    assert rows[0][:2] == (i, f"v{i}")
                    assert _names(binary.columns) == want, (table, i)
                    with text.cursor() as cur:
                        cur.execute(f"SELECT * FROM {table} WHERE id = {i}")
                        assert cur.fetchall()[0][:2] == (i, f"v{i}")
                        seen = [(_text_of(f[1]), f[2], f[3], f[4]) for f in _fields(cur)]
                        assert seen == want, (table, i)

        prepared = binary.prepare("SELECT * FROM hc WHERE id = ?")
        read("hc", prepared, ["id", "v"])
        with admin.cursor() as cur:
            cur.execute("ALTER TABLE hc ADD COLUMN extra int DEFAULT 7")
        read("hc", prepared, ["id", "v", "extra"])
        with admin.cursor() as cur:
            cur.execute("RENAME TABLE hc TO hc2")
        read("hc2", binary.prepare("SELECT * FROM hc2 WHERE id = ?"), ["id", "v", "extra"])
    finally:
        binary.close()
        text.close()
        with admin.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS hc")
            cur.execute("DROP TABLE IF EXISTS hc2")
        admin.close()
