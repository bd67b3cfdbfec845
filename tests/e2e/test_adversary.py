"""An attacker who reads the code: what an earlier adversarial pass found weak, each pinned.

- a client that pipelines statements and never reads the answers is not buffered without
  bound: the proxy stops reading it;
- statements whose structure needs the parser are bounded in size (1235 above it);
- passwords never show in SHOW PROCESSLIST's Info, whatever the statement's spelling;
- names that are not valid UTF-8 get a proper error, never a lost session;
- statements MariaDB and the analyser might read differently, each tried with a grant on one
  table only, are refused by the proxy itself (never left to the shard's mirrored account).
"""

from __future__ import annotations

import socket
import sqlite3
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pymysql.constants import CLIENT

from auth.passwords import scramble_native
from auth.urls import sqlite_path
from proxy.server import ANALYSIS_THREADS
from proxy.sql.analyze import MAX_PARSED_TEXT, TOO_LONG_TO_PARSE
from proxy.sql.lexer import TOO_MANY_STATEMENTS
from proxy.wire.packets import Capability, parse_handshake_v10
from proxy.wire.stream import READ_HIGH_WATER
from tests.e2e.conftest import PASSWORDS, ProxyEnv
from tests.e2e.test_enforcement import Env, error_of, rows

COM_QUERY = 3


def _packet(seq: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([seq]) + payload


class Adversary(Env):
    """Env plus a secret table, a public one, and an account holding grants on the public
    one only."""

    def __init__(self, proxy: ProxyEnv) -> None:
        super().__init__(proxy)
        for statement in (
            "DROP TABLE IF EXISTS adv_pub, adv_sec",
            "CREATE TABLE adv_pub (id INT PRIMARY KEY, v VARCHAR(40))",
            "INSERT INTO adv_pub VALUES (1, 'public')",
            "CREATE TABLE adv_sec (id INT PRIMARY KEY, v VARCHAR(40))",
            "INSERT INTO adv_sec VALUES (1, 'TOPSECRET')",
        ):
            self.shard_exec(statement)
        self.user = self.create_account(
            [("SELECT, INSERT, UPDATE, DELETE, CREATE, DROP", "adv_pub")], prefix="adv"
        )

    def close(self) -> None:
        try:
            self.shard_exec("DROP TABLE IF EXISTS adv_pub, adv_sec")
        finally:
            super().close()


@pytest.fixture(scope="module")
def adv(proxy: ProxyEnv) -> Iterator[Adversary]:
    env = Adversary(proxy)
    try:
        yield env
    finally:
        env.close()


# -------------------------------------------------------------------------- flow control


def test_a_client_that_never_reads_is_not_buffered_without_bound(
    proxy: ProxyEnv, adv: Adversary
) -> None:
    """Statements sent ahead while the answers go unread stay in the client's socket: the
    proxy stops reading it once about READ_HIGH_WATER bytes wait behind a whole command, and
    every statement is answered, in order, once the client reads again."""
    conn = proxy.connect(read_timeout=120)
    session = proxy.server.ctx.sessions[conn.thread_id()]
    # Each answer (300 kB) is over the client's write high water mark, so the session waits
    # on its relay after the first one; each statement carries 64 kB of comment.
    padding = b"/*" + b"p" * (64 * 1024) + b"*/"
    count = 256  # 16 MiB of statements in all
    statements = [b"SELECT %d, REPEAT('x', 300000) " % i + padding for i in range(count)]
    data = b"".join(_packet(0, bytes([COM_QUERY]) + s) for s in statements)
    sock: socket.socket = conn._sock
    sent = threading.Event()
    failure: list[BaseException] = []

    def send() -> None:
        try:
            sock.sendall(data)
            sent.set()
        except BaseException as exc:  # pragma: no cover - reported below
            failure.append(exc)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    # Without flow control the proxy takes all 16 MiB at once (loopback, a few ms); with it
    # the sender stays blocked for as long as nothing is read.
    sent.wait(5)
    buffered = len(session.client._buf)
    assert not failure
    assert not sent.is_set(), "the proxy read 16 MiB of statements nobody reads answers to"
    assert session.client.input_paused
    assert buffered <= READ_HIGH_WATER + len(data) // count + 256 * 1024
    # The client reads again: every statement is answered, in order, and the session goes on.
    for i in range(count):
        conn._next_seq_id = 1  # as after PyMySQL's own _execute_command
        conn._read_query_result()
        result = conn._result
        assert result is not None and result.rows is not None
        assert result.rows[0][0] == i and len(result.rows[0][1]) == 300000
    sender.join(60)
    assert sent.is_set()
    assert rows(conn, "SELECT 1") == [(1,)]
    assert not session.client.input_paused
    conn.close()


def test_pipelined_point_selects_on_the_fast_path_are_bounded_too(
    proxy: ProxyEnv, adv: Adversary
) -> None:
    """Small statements, pipelined: their answers, unread, pause the shard; the statements
    behind them pause the client. Others are served meanwhile, and when the client goes, its
    session ends (the paused shard connection is read again and its answer dropped: before,
    the relay waited forever for a response the shard was never let to send)."""
    conn = proxy.connect()
    rows(conn, "SELECT REPEAT('x', 300000) FROM adv_pub WHERE id = 1")  # the shape is cached
    session = proxy.server.ctx.sessions[conn.thread_id()]
    statement = _packet(0, b"\x03SELECT REPEAT('x', 300000) FROM adv_pub WHERE id = 1")
    data = statement * (16 * 1024 * 1024 // len(statement))
    sock: socket.socket = conn._sock
    sent = threading.Event()

    def send() -> None:
        try:
            sock.sendall(data)
            sent.set()
        except OSError:
            pass  # the connection is closed below while the sender is blocked

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    sent.wait(5)
    assert not sent.is_set(), "the proxy read 16 MiB of statements nobody reads answers to"
    assert session.client.input_paused
    assert len(session.client._buf) <= READ_HIGH_WATER + 256 * 1024
    with proxy.connect() as other:
        assert rows(other, "SELECT v FROM adv_pub WHERE id = 1") == [("public",)]
    conn_id = conn.thread_id()
    # The client goes away (shutdown: a close alone waits for the send blocked in the sender).
    sock.shutdown(socket.SHUT_RDWR)
    conn._force_close()  # the socket and PyMySQL's file on it
    sender.join(30)
    deadline = time.monotonic() + 30
    while conn_id in proxy.server.ctx.sessions:
        assert time.monotonic() < deadline, "the session outlived its client"
        time.sleep(0.05)


# -------------------------------------------------------------------------- analysis cost


def test_structure_too_long_to_parse_is_refused(adv: Adversary) -> None:
    columns = ", ".join(f"c{i}" for i in range(MAX_PARSED_TEXT // 6))
    conn = adv.connect(adv.user)
    try:
        assert error_of(conn, f"SELECT {columns} FROM adv_pub") == (
            1235,
            f"This version of shardgate doesn't yet support '{TOO_LONG_TO_PARSE}'",
        )
        # A bulk insert of 40,000 rows is one row to the parser: inserted.
        values = ", ".join(f"({i}, 'v{i}')" for i in range(1000, 41000))
        rows(conn, f"INSERT INTO adv_pub VALUES {values}")
        assert rows(conn, "SELECT COUNT(*) FROM adv_pub") == [(40001,)]
        rows(conn, "DELETE FROM adv_pub WHERE id >= 1000")
    finally:
        conn.close()


def test_one_tenants_analyses_do_not_queue_another_tenants(proxy: ProxyEnv, adv: Adversary) -> None:
    """easydb's administrator sends, from as many connections as there are analysis threads,
    statements whose structure takes the parser a while; otherdb's administrator,
    meanwhile, sends statements of shapes never seen (each needs a parse in an analysis
    thread). Each tenant analyses one statement at a time, tenants side by side: otherdb's
    statements are all answered before easydb's first one, which a single queue would have
    put first."""
    pool = proxy.server.ctx.analysis_pool
    tag = f"{time.monotonic_ns()}"
    heavy = [
        "SELECT " + ", ".join(f"c{n}_{i}" for i in range(12_000)) + f" FROM adv_pub AS x{tag}"
        # as many as there are threads: a shared queue would have none left for otherdb
        for n in range(ANALYSIS_THREADS)
    ]
    assert all(len(s) < MAX_PARSED_TEXT for s in heavy)  # parsed, for a second or so each
    attackers = [proxy.connect(read_timeout=300) for _ in heavy]
    victim = proxy.connect(user="otherdb", database="otherdb")
    answered: list[tuple[str, float]] = []
    lock = threading.Lock()

    def attack(conn: Any, sql: str) -> None:
        try:
            rows(conn, sql)
        except pymysql.err.MySQLError:
            pass  # unknown columns on the shard: the analysis is what this is about
        with lock:
            answered.append(("easydb", time.monotonic()))

    threads = [
        threading.Thread(target=attack, args=(c, s), daemon=True)
        for c, s in zip(attackers, heavy, strict=True)
    ]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while pool.waiting("easydb") < len(heavy) and not answered:
            assert time.monotonic() < deadline, "the statements never reached the analysis"
            time.sleep(0.01)
        assert not answered, "the parse was too quick to tell anything on this machine"
        for k in range(3):
            # a new shape each time: parsed in an analysis thread, not from the cache
            assert rows(victim, f"SELECT {k} AS v{tag}_{k}") == [(k,)]
            with lock:
                answered.append(("otherdb", time.monotonic()))
        for thread in threads:
            thread.join(300)
        order = [who for who, _ in sorted(answered, key=lambda a: a[1])]
        assert order == ["otherdb"] * 3 + ["easydb"] * len(heavy)
    finally:
        for conn in (*attackers, victim):
            conn.close()


def test_a_request_of_too_many_statements_is_refused_whole(proxy: ProxyEnv) -> None:
    """64 MiB of "SELECT 1;" would be millions of statements analysed and held at once."""
    conn = proxy.connect(client_flag=CLIENT.MULTI_STATEMENTS)
    try:
        assert error_of(conn, "SELECT 1;" * 400_000) == (
            1235,
            f"This version of shardgate doesn't yet support '{TOO_MANY_STATEMENTS}'",
        )
        with conn.cursor() as cur:
            cur.execute("SELECT 1;" * 1000 + "SELECT 2")
            answers = 1
            while cur.nextset():
                answers += 1
            assert answers == 1001 and cur.fetchall() == ((2,),)
    finally:
        conn.close()


# -------------------------------------------------------------------------- processlist

# Account statements in the spellings MariaDB accepts, each waiting on a busy catalog long
# enough to be seen in SHOW FULL PROCESSLIST by the database's administrator.
PASSWORD_STATEMENTS = [
    "CREATE USER advpw1 IDENTIFIED/**/BY 'Secret#101'",
    "SET PASSWORD\nFOR advpw1 = 'Secret#102'",
    "ALTER USER advpw1 /* ' */ IDENTIFIED BY 'Secret#103'",
    "GRANT SELECT ON adv_pub TO advpw1 IDENTIFIED  BY\t'Secret#104'",
    "SET PASSWORD FOR advpw1 = PASSWORD /**/ ('Secret#105')",
    "SET/**/PASSWORD/**/FOR/**/advpw1/**/=/**/'Secret#106'",
    "CREATE USER advpw2 /*!IDENTIFIED BY*/ 'Secret#107'",
    "CREATE USER advpw3 /*M!100000 IDENTIFIED BY 'Secret#108' */",
]


def test_processlist_never_shows_a_password(proxy: ProxyEnv, adv: Adversary) -> None:
    config = proxy.config
    runner = proxy.connect()
    watcher = proxy.connect()
    held = sqlite3.connect(sqlite_path(config.catalog.url, config.base_dir), isolation_level=None)
    try:
        for sql in PASSWORD_STATEMENTS:
            secret = sql.rsplit("'", 2)[1]
            outcome: list[object] = []
            held.execute("BEGIN EXCLUSIVE")
            thread = threading.Thread(
                target=lambda sql=sql, out=outcome: out.append(_outcome(runner, sql)),
                daemon=True,
            )
            try:
                thread.start()
                info = None
                deadline = time.monotonic() + 30
                while info is None:
                    assert time.monotonic() < deadline, f"{sql!r} never showed"
                    for row in rows(watcher, "SHOW FULL PROCESSLIST"):
                        if row[0] == runner.thread_id() and row[7] is not None:
                            info = row[7]
                assert secret not in info and "'***'" in info, info
                (row,) = [
                    r for r in rows(watcher, "SHOW PROCESSLIST") if r[0] == runner.thread_id()
                ]
                assert row[7] is not None and secret not in row[7]
            finally:
                held.execute("COMMIT")
                thread.join(30)
            assert outcome == [None], (sql, outcome)
    finally:
        held.close()
        for user in ("advpw1", "advpw2", "advpw3"):
            _outcome(runner, f"DROP USER IF EXISTS {user}")
        runner.close()
        watcher.close()


def _outcome(conn: Any, sql: str) -> object:
    try:
        rows(conn, sql)
        return None
    except pymysql.err.MySQLError as exc:
        return exc.args


# -------------------------------------------------------------------------- not UTF-8

CAPABILITIES = int(
    Capability.PROTOCOL_41
    | Capability.SECURE_CONNECTION
    | Capability.PLUGIN_AUTH
    | Capability.TRANSACTIONS
    | Capability.MULTI_RESULTS
)


def _recv_packet(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed by the proxy")
            data += chunk
        return data

    header = exactly(4)
    return header[3], exactly(int.from_bytes(header[:3], "little"))


def _raw_login(
    port: int, user: bytes, password: str, database: bytes | None
) -> tuple[socket.socket, bytes, bytes]:
    """Log in with raw bytes for the user and database names: (socket, its scramble, the
    server's last answer)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    seq, greeting = _recv_packet(sock)
    scramble = parse_handshake_v10(greeting).scramble[:20]
    caps = CAPABILITIES | (int(Capability.CONNECT_WITH_DB) if database is not None else 0)
    answer = scramble_native(password, scramble)
    response = (
        struct.pack("<IIB23x", caps, 1 << 24, 45)
        + user
        + b"\x00"
        + bytes([len(answer)])
        + answer
        + (database + b"\x00" if database is not None else b"")
        + b"mysql_native_password\x00"
    )
    sock.sendall(_packet(seq + 1, response))
    while True:
        seq, payload = _recv_packet(sock)
        if payload[:1] != b"\xfe":
            return sock, scramble, payload
        # a switch to mysql_native_password with a new scramble
        end = payload.index(0, 1)
        scramble = payload[end + 1 : end + 21]
        sock.sendall(_packet(seq + 1, scramble_native(password, scramble)))


def _command(sock: socket.socket, payload: bytes) -> bytes:
    """Send a command; its first answer packet, the rest of the answer read and dropped."""
    sock.sendall(_packet(0, payload))
    _, first = _recv_packet(sock)
    kind = payload[:1]
    if first[:1] == b"\xff":
        return first
    if kind == b"\x16":  # PREPARE_OK: parameter and column definitions, each with an EOF
        columns, params = struct.unpack("<HH", first[5:9])
        for count in (params, columns):
            for _ in range(count + 1 if count else 0):
                _recv_packet(sock)
        return first
    if first[:1] == b"\x00" or _is_eof(first):
        return first
    # a field list (definitions, EOF) or a result set (count, definitions, EOF, rows, EOF)
    eofs = 1 if kind == b"\x04" else 2
    while eofs:
        _, packet = _recv_packet(sock)
        if packet[:1] == b"\xff":
            return packet
        eofs -= _is_eof(packet)
    return first


def _is_eof(packet: bytes) -> bool:
    return packet[:1] == b"\xfe" and len(packet) < 9


def _errno(packet: bytes) -> int:
    assert packet[:1] == b"\xff", packet
    return int.from_bytes(packet[1:3], "little")


BAD_NAMES = [b"\xff\xfe", b"t_\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"a\x80b"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_names_that_are_not_utf8_get_an_error_never_a_lost_session(
    proxy: ProxyEnv, adv: Adversary, bad: bytes
) -> None:
    sock, _, answer = _raw_login(proxy.port, b"easydb", PASSWORDS["easydb"], b"easydb")
    assert answer[:1] == b"\x00"
    try:
        commands = [
            b"\x02" + bad,  # COM_INIT_DB
            b"\x04" + bad + b"\x00",  # COM_FIELD_LIST of a table
            b"\x04adv_pub\x00" + bad,  # ... with a wildcard
            b"\x03USE `" + bad + b"`",
            b"\x03SELECT * FROM `" + bad + b"`",
            b"\x03SELECT * FROM " + bad,
            b"\x03SELECT 1 AS `" + bad + b"`",
            b"\x03SET @`" + bad + b"` = 1",
            b"\x03CREATE TABLE `" + bad + b"` (id INT)",
            # (MariaDB takes some of these, e.g. an encoded surrogate: not left for others)
            b"\x03DROP TABLE IF EXISTS `" + bad + b"`",
            b"\x03GRANT SELECT ON `" + bad + b"` TO " + adv.user.encode(),
            b"\x03REVOKE SELECT ON `" + bad + b"` FROM " + adv.user.encode(),
            b"\x03CREATE USER `" + bad + b"` IDENTIFIED BY 'Abc#1234'",
            b"\x03SHOW GRANTS FOR `" + bad + b"`",
            b"\x03SHOW TABLES LIKE '" + bad + b"'",
            b"\x03SHOW DATABASES LIKE '" + bad + b"'",
            b"\x16SELECT * FROM `" + bad + b"`",  # COM_STMT_PREPARE
        ]
        for command in commands:
            answer = _command(sock, command)
            # an error packet, or an answer; then the session goes on
            assert answer, command
            if command.startswith(b"\x03GRANT"):  # no such table (it was a lost session)
                assert _errno(answer) == 1146, answer
            if command.startswith(b"\x03REVOKE"):
                assert _errno(answer) == 1147, answer
            assert _command(sock, b"\x03SELECT 1")[:1] == b"\x01", command
        # Those statements are in the query digest; its table shows them, U+FFFD for each byte
        # that is not UTF-8 (it answered 1105 to the database's administrator, for good).
        digest = _command(sock, b"\x03SHOW QUERY_DIGEST")
        assert digest[:1] not in (b"\xff", b"\x00"), digest
        # ... and in SHOW FULL PROCESSLIST while one runs (1105 too).
        sleeper, _, answer = _raw_login(proxy.port, b"easydb", PASSWORDS["easydb"], b"easydb")
        try:
            sleeper.sendall(_packet(0, b"\x03SELECT SLEEP(1), '" + bad + b"'"))
            shown = b""
            deadline = time.monotonic() + 30
            # (each byte that is not UTF-8 shows as U+FFFD: the answer is always valid UTF-8)
            expected = b"SELECT SLEEP(1), '" + bad.decode("utf-8", "replace").encode() + b"'"
            while expected not in shown:
                assert time.monotonic() < deadline, "the statement never showed"
                shown = b""
                sock.sendall(_packet(0, b"\x03SHOW FULL PROCESSLIST"))
                _, first = _recv_packet(sock)
                assert first[:1] != b"\xff", first
                eofs = 2
                while eofs:
                    _, packet = _recv_packet(sock)
                    eofs -= _is_eof(packet)
                    shown += packet
            _, first = _recv_packet(sleeper)  # the sleeper's own answer arrives
            assert first[:1] == b"\x02"
        finally:
            sleeper.close()
    finally:
        sock.close()


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_logins_with_names_that_are_not_utf8_are_refused_cleanly(
    proxy: ProxyEnv, bad: bytes
) -> None:
    # an unknown user
    sock, _, refused = _raw_login(proxy.port, bad, "Whatever#1", None)
    sock.close()
    assert _errno(refused) == 1045
    # a known user asking for a database that is not UTF-8
    sock, _, answer = _raw_login(proxy.port, b"easydb", PASSWORDS["easydb"], bad)
    sock.close()
    assert _errno(answer) in (1044, 1049)
    # the unknown user's refusal is an unknown user's, byte for byte (the name aside)
    sock, _, unknown = _raw_login(proxy.port, b"nosuchuser", "Whatever#1", None)
    sock.close()
    name = bad.decode("utf-8", "replace").encode()
    assert refused.replace(b"'" + name + b"'@", b"'?'@") == unknown.replace(
        b"'nosuchuser'@", b"'?'@"
    )
    # COM_CHANGE_USER to such a user or database: an error packet, then the proxy closes
    for user, database in ((bad, b"easydb"), (b"easydb", bad)):
        sock, scramble, answer = _raw_login(proxy.port, b"easydb", PASSWORDS["easydb"], None)
        try:
            assert answer[:1] == b"\x00"
            auth = scramble_native(PASSWORDS["easydb"], scramble)
            change = (
                b"\x11"
                + user
                + b"\x00"
                + bytes([len(auth)])
                + auth
                + database
                + b"\x00"
                + struct.pack("<H", 45)
                + b"mysql_native_password\x00"
            )
            sock.sendall(_packet(0, change))
            _, first = _recv_packet(sock)
            while first[:1] == b"\xfe":  # a switch: answer with the scramble it carries
                end = first.index(0, 1)
                salt = first[end + 1 : end + 21]
                sock.sendall(_packet(2, scramble_native(PASSWORDS["easydb"], salt)))
                _, first = _recv_packet(sock)
            assert _errno(first) in (1044, 1045, 1049), first
        finally:
            sock.close()


# -------------------------------------------------------------------------- parser differential

# Each tries to read or change adv_sec (or the sequence adv_seq) with grants on adv_pub (and
# on the names adv_new, adv_view) only. Every one must be refused by the proxy itself: the
# shard's mirrored account would stop them too, but a refusal only the shard makes is a
# classifier miss (counted), and the proxy's promise is its own.
REFUSED = [
    "SELECT * FROM adv_sec",
    "SELECT 1 /*!50000 , (SELECT v FROM adv_sec) */",
    "SELECT 1 /*M!100000 , (SELECT v FROM adv_sec) */",
    "SELECT * FROM adv_pub /*!50000 , adv_sec */",
    "SELECT * FROM adv_pub /*M! , adv_sec */",
    "SELECT * FROM adv_pub /*!M , adv_sec */",
    "SELECT * FROM adv_pub --\t\n, adv_sec",
    "SELECT * FROM adv_pub #\n, adv_sec",
    "SELECT * FROM adv_pub, LATERAL (SELECT v FROM adv_sec) x",
    "SELECT * FROM lateral, adv_sec",
    "SELECT * FROM adv_pub WINDOW w AS (ORDER BY (SELECT v FROM adv_sec))",
    "DELETE FROM adv_pub WHERE id = 99 RETURNING (SELECT v FROM adv_sec LIMIT 1)",
    "INSERT INTO adv_pub VALUES (99, 'x') RETURNING (SELECT v FROM adv_sec LIMIT 1)",
    "INSERT INTO adv_pub SELECT * FROM adv_sec RETURNING id",
    "VALUES (1), ((SELECT v FROM adv_sec))",
    "SELECT * FROM (VALUES ((SELECT v FROM adv_sec))) x",
    "TABLE adv_sec",
    "SELECT * FROM adv_pub UNION TABLE adv_sec",
    "SELECT * FROM adv_pub WHERE id IN (TABLE adv_sec)",
    "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
    "SELECT * FROM r, adv_sec",
    "WITH adv_pub AS (SELECT * FROM adv_sec) SELECT * FROM adv_pub",
    "WITH x AS (SELECT * FROM adv_pub) "
    "SELECT * FROM x, (WITH y AS (TABLE adv_sec) SELECT * FROM y) z",
    "WITH a AS (SELECT 1), adv_sec AS (SELECT * FROM adv_sec) SELECT * FROM adv_sec",
    "WITH x AS (SELECT * FROM adv_sec), adv_sec AS (SELECT 1 AS id, 'x' AS v) SELECT * FROM x",
    "WITH adv_sec AS (SELECT 1) SELECT * FROM easydb.adv_sec",
    "WITH ADV_SEC AS (SELECT 1) SELECT * FROM adv_sec",
    "WITH adv_sec AS (SELECT 1 AS id) DELETE FROM adv_sec",
    "WITH adv_sec AS (SELECT 1 AS id) UPDATE adv_sec SET id = 2",
    "SELECT * FROM (WITH adv_sec AS (SELECT 1 AS id) SELECT * FROM adv_sec) a, adv_sec",
    "INSERT INTO adv_pub (id, v) WITH x AS (SELECT * FROM adv_sec) SELECT id + 500, v FROM x",
    "HANDLER adv_sec OPEN",
    "HANDLER adv_sec READ FIRST",
    "LOAD XML LOCAL INFILE '/etc/hosts' INTO TABLE adv_sec",
    "LOAD DATA LOCAL INFILE '/etc/hosts' INTO TABLE adv_pub",
    "ANALYZE FORMAT=JSON SELECT * FROM adv_sec",
    "ANALYZE SELECT * FROM adv_sec",
    "ANALYZE TABLE adv_sec",
    "EXPLAIN FORMAT=JSON SELECT * FROM adv_sec",
    "EXPLAIN adv_sec",
    "DESCRIBE adv_sec",
    "EXECUTE IMMEDIATE 'SELECT * FROM adv_sec'",
    "EXECUTE IMMEDIATE CONCAT('SELECT * FROM ', 'adv_sec')",
    "PREPARE p FROM @q",
    "PREPARE p FROM 'SELECT * FROM adv_sec'",
    "SELECT NEXTVAL(adv_seq)",
    "SELECT NEXT VALUE FOR adv_seq",
    "SELECT LASTVAL(adv_seq)",
    "SELECT PREVIOUS VALUE FOR adv_seq",
    "SELECT SETVAL(adv_seq, 100)",
    "SELECT v INTO @v FROM adv_sec",
    "SELECT v FROM adv_sec INTO @v",
    "SELECT (SELECT v FROM adv_sec) INTO @v",
    "SET @x = (SELECT v FROM adv_sec)",
    "SET STATEMENT max_statement_time = 1 FOR SELECT * FROM adv_sec",
    "INSERT INTO adv_pub SELECT * FROM adv_sec",
    "INSERT INTO adv_pub (id, v) SELECT id + 100, v FROM adv_sec",
    "INSERT INTO adv_pub VALUES (5, 'x') ON DUPLICATE KEY UPDATE v = (SELECT v FROM adv_sec)",
    "INSERT INTO adv_pub SET id = 6, v = (SELECT v FROM adv_sec)",
    "REPLACE INTO adv_pub SELECT id + 200, v FROM adv_sec",
    "CREATE TABLE adv_new SELECT * FROM adv_sec",
    "CREATE TABLE adv_new AS (SELECT * FROM adv_sec)",
    "CREATE TABLE adv_new (id INT) IGNORE SELECT id FROM adv_sec",
    "CREATE TABLE adv_new LIKE adv_sec",
    "CREATE TABLE adv_new (LIKE adv_sec)",
    "CREATE TABLE adv_new AS TABLE adv_sec",
    "CREATE TABLE adv_new WITH x AS (SELECT * FROM adv_sec) SELECT * FROM x",
    "CREATE TEMPORARY TABLE adv_new SELECT * FROM adv_sec",
    "CREATE OR REPLACE TABLE adv_new SELECT * FROM adv_sec",
    "CREATE TABLE adv_new (id INT, FOREIGN KEY (id) REFERENCES adv_sec (id))",
    "CREATE TABLE adv_new (a INT, b INT AS ((SELECT 1 FROM adv_sec)))",
    "CREATE TABLE adv_new (a INT DEFAULT (NEXTVAL(adv_seq)))",
    "CREATE VIEW adv_view AS SELECT * FROM adv_sec",
    "CREATE VIEW adv_view AS WITH x AS (SELECT * FROM adv_sec) SELECT * FROM x",
    "CREATE DEFINER = root@localhost SQL SECURITY DEFINER VIEW adv_view AS SELECT * FROM adv_sec",
    "CREATE TRIGGER adv_tr BEFORE INSERT ON adv_pub FOR EACH ROW "
    "SET NEW.v = (SELECT v FROM adv_sec LIMIT 1)",
    "CREATE DEFINER = root@localhost PROCEDURE adv_p() SQL SECURITY DEFINER SELECT * FROM adv_sec",
    "SELECT * FROM JSON_TABLE('[1]', '$[*]' COLUMNS (a INT PATH '$')) j, adv_sec",
    "SELECT * FROM JSON_TABLE((SELECT CONCAT('[\"', v, '\"]') FROM adv_sec), '$[*]' "
    "COLUMNS (a TEXT PATH '$')) j",
    "SHOW COLUMNS FROM adv_sec",
    "SHOW COLUMNS FROM adv_sec FROM easydb",
    "SHOW KEYS IN adv_sec IN easydb",
    "SHOW CREATE TABLE adv_sec",
    "SHOW TABLES FROM otherdb",
    "SHOW TABLE STATUS FROM otherdb",
    "SHOW COLUMNS FROM t FROM otherdb",
    "CHECKSUM TABLE adv_sec",
    "SELECT * FROM adv_pub WHERE id = 1 -- x\n UNION SELECT * FROM adv_sec",
    "SELECT * FROM adv_pub WHERE v = _latin1'x' UNION SELECT * FROM adv_sec",
    "SELECT * FROM adv_pub NATURAL JOIN adv_sec",
    "SELECT * FROM (adv_pub, adv_sec)",
    "SELECT * FROM adv_pub AS adv_sec JOIN adv_sec AS adv_pub",
    "DELETE adv_sec FROM adv_sec AS adv_pub, adv_pub AS adv_sec",
    "UPDATE adv_sec AS adv_pub SET adv_pub.v = 'y' WHERE id = 999",
    "UPDATE adv_pub AS x, adv_sec AS adv_pub SET adv_pub.v = 'pwn'",
    "UPDATE adv_pub, adv_sec SET adv_pub.v = adv_sec.v",
    "DELETE FROM adv_sec USING adv_pub, adv_sec",
    "RENAME TABLE adv_sec TO adv_new",
    "ALTER TABLE adv_pub RENAME TO adv_new",
    "TRUNCATE adv_sec",
    "LOCK TABLES adv_sec READ",
    "DO (SELECT 1 FROM adv_sec)",
    "SELECT * FROM adv_pub FOR SYSTEM_TIME ALL",
    "CREATE TABLE adv_new (id INT) ENGINE=CONNECT TABLE_TYPE=MYSQL "
    "CONNECTION='mysql://root@127.0.0.1/easydb/adv_sec'",
    "CREATE TABLE adv_new (id INT, v VARCHAR(40)) ENGINE=MERGE UNION=(adv_sec)",
    "SELECT * FROM information_schema.PROCESSLIST",
    "SELECT * FROM mysql.user",
]

# Read as MariaDB reads them, these do not touch adv_sec: they run, and show no secret.
HARMLESS = [
    "WITH adv_sec AS (SELECT 1) SELECT * FROM adv_sec",
    "WITH `adv_sec` AS (SELECT 1) SELECT * FROM adv_sec",
    "WITH adv_sec (id) AS (SELECT 1) SELECT * FROM (SELECT * FROM adv_sec) q",
    "SELECT * FROM adv_pub /*!123456 , adv_sec */",
    "SELECT * FROM adv_pub /*!99999 , adv_sec */",
    "SELECT * FROM adv_pub /*M!999999 , adv_sec */",
    "SELECT * FROM adv_pub /*m! , adv_sec */",
    "SELECT * FROM adv_pub /*+ , adv_sec */",
    "SELECT * FROM adv_pub --\x0b, adv_sec",
    "SELECT * FROM adv_pub #\r, adv_sec",  # a # comment ends at \n only
    "SELECT * FROM adv_pub WHERE v = 'a\\' UNION SELECT * FROM adv_sec -- '",
    "SELECT adv_sec.v FROM adv_pub adv_sec",
    "SELECT * FROM adv_pub AS `lateral`",
    "SELECT * FROM adv_pub `, adv_sec`",
    "INSERT INTO adv_pub SELECT * FROM (SELECT 1000, 'x') AS adv_sec",
    "DELETE FROM adv_pub WHERE id = 1000",
]


@pytest.fixture(scope="module")
def differential(adv: Adversary) -> Iterator[Any]:
    adv.shard_exec("DROP SEQUENCE IF EXISTS adv_seq")
    adv.shard_exec("CREATE SEQUENCE adv_seq")
    for name in ("adv_new", "adv_view"):
        adv.grant(adv.user, "SELECT, INSERT, CREATE, DROP", name)
    adv.shard_exec("DROP TABLE IF EXISTS `lateral`")
    adv.shard_exec("CREATE TABLE `lateral` (id INT)")
    adv.grant(adv.user, "SELECT", "lateral")
    conn = adv.connect(adv.user)
    try:
        yield conn
    finally:
        conn.close()
        adv.shard_exec("DROP TABLE IF EXISTS adv_new, `lateral`")
        adv.shard_exec("DROP VIEW IF EXISTS adv_view")
        adv.shard_exec("DROP SEQUENCE IF EXISTS adv_seq")


def _misses(proxy: ProxyEnv) -> float:
    return float(proxy.server.ctx.metrics.classifier_misses_total.total())


@pytest.mark.parametrize("sql", REFUSED)
def test_refused_by_the_proxy_itself(
    proxy: ProxyEnv, adv: Adversary, differential: Any, sql: str
) -> None:
    before = _misses(proxy)
    with pytest.raises(pymysql.err.MySQLError) as info:
        rows(differential, sql)
    errno, message = info.value.args
    assert _misses(proxy) == before, (sql, errno, message)  # not the shard's refusal
    assert "sgm_" not in message
    if errno == 1142:
        assert f"'{adv.user}'@'127.0.0.1'" in message
    assert adv.on_shard("SELECT v FROM adv_sec") == [("TOPSECRET",)]
    assert adv.on_shard("SELECT COUNT(*) FROM adv_sec") == [(1,)]


@pytest.mark.parametrize("sql", HARMLESS)
def test_read_alike_and_harmless(proxy: ProxyEnv, differential: Any, sql: str) -> None:
    before = _misses(proxy)
    answer = rows(differential, sql)
    assert "TOPSECRET" not in repr(answer)
    assert _misses(proxy) == before
