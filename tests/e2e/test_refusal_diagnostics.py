"""After a statement the proxy refuses itself (the shard never saw it), the diagnostics area
is what MariaDB leaves after its own refusal of it: SHOW WARNINGS / SHOW ERRORS / SHOW COUNT(*)
WARNINGS and @@warning_count / @@error_count list the error (level Error, its number, its text)
until a statement that reads a table starts a new area -- one that reads none (``SELECT 1``)
keeps it, as MariaDB does.

The reference: an account of the same name with the same grants made directly on the shard;
each step is sent to the shard as that account and to the proxy as the catalog's, through a
client of the wire protocol (tests/e2e/binclient.py), and the answers compared byte for byte
-- column definitions, rows, EOF status and warning counts -- but for the error's text, which
names the client as the proxy sees it (``'u'@'127.0.0.1'``, the shard ``'u'@'localhost'``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from proxy.wire.packets import lenenc_str, parse_err
from tests.e2e.binclient import CAPABILITIES, BinaryClient, ServerError
from tests.e2e.conftest import ProxyEnv
from tests.e2e.tools import twin_account

USER, PASSWORD = "dgnuser", "Diagn#pass1"


@pytest.fixture(scope="module")
def twin(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    """``USER`` may read easydb.dgn_t: in the catalog (through the proxy) and on the shard."""
    with twin_account(proxy, USER, PASSWORD, "dgn_t", "dgn_secret", "(1)") as env:
        yield env


# Statements both refuse with the same number (the proxy without asking the shard).
REFUSED = [
    "SELECT * FROM dgn_secret",
    "INSERT INTO dgn_t VALUES (1)",
    "UPDATE dgn_t SET a = 2",
    "USE mysql",
    "SET GLOBAL max_connections = 10",
    "KILL 999999",  # (answered by the proxy, not a refusal of its plan: 1094)
]
# What follows each refusal, in order: each answered alike, the error's text aside.
AFTER = [
    "SHOW WARNINGS",
    "SHOW ERRORS",
    "SHOW COUNT(*) WARNINGS",
    "SHOW COUNT(*) ERRORS",
    "SHOW WARNINGS LIMIT 0, 1",
    "SELECT @@warning_count, @@error_count",
    "SHOW WARNINGS",
    "SELECT 1",  # (reads no table: the area stays)
    "SHOW ERRORS",
    "SELECT a FROM dgn_t",  # (reads a table: a new, empty area)
    "SHOW WARNINGS",
    "SELECT @@warning_count, @@error_count",
]


def _error(payload: bytes) -> tuple[int, str]:
    assert payload[:1] == b"\xff", payload
    err = parse_err(payload, CAPABILITIES)
    return err.errno, err.message


def _answered_alike(
    ours: BinaryClient,
    theirs: BinaryClient,
    statements: list[str],
    message: str,
    their_message: str,
) -> None:
    """Each statement answered byte for byte as MariaDB answers it, the refusal's text aside
    (the proxy's names the client's account, MariaDB's its own)."""
    for statement in statements:
        expected = [
            p.replace(lenenc_str(their_message.encode()), lenenc_str(message.encode()))
            for p in theirs.query_raw(statement)
        ]
        assert ours.query_raw(statement) == expected, statement


@pytest.mark.parametrize("refused", REFUSED)
def test_diagnostics_after_a_refusal_are_mariadbs(twin: ProxyEnv, refused: str) -> None:
    ours = BinaryClient(twin.port, USER, PASSWORD, "easydb")
    theirs = BinaryClient(twin.shards[0].port, USER, PASSWORD, "easydb")
    try:
        for client in (ours, theirs):  # (a statement with a warning first: replaced after)
            client.query_raw("SELECT CAST('1x' AS SIGNED) FROM dgn_t")
        (our_err,), (their_err,) = ours.query_raw(refused), theirs.query_raw(refused)
        (errno, message), (their_errno, their_message) = _error(our_err), _error(their_err)
        assert errno == their_errno
        _answered_alike(ours, theirs, AFTER, message, their_message)
    finally:
        ours.close()
        theirs.close()


def test_diagnostics_after_a_refused_prepare_are_mariadbs(twin: ProxyEnv) -> None:
    ours = BinaryClient(twin.port, USER, PASSWORD, "easydb")
    theirs = BinaryClient(twin.shards[0].port, USER, PASSWORD, "easydb")
    try:
        refused: list[tuple[int, str]] = []
        for client in (ours, theirs):
            with pytest.raises(ServerError) as info:
                client.prepare("SELECT a FROM dgn_t JOIN dgn_secret USING (a) WHERE a = ?")
            number, text = str(info.value).split(" ", 1)
            refused.append((int(number.strip("()")), text))
        (errno, message), (their_errno, their_message) = refused
        assert errno == their_errno == 1142
        _answered_alike(ours, theirs, AFTER[:7], message, their_message)
    finally:
        ours.close()
        theirs.close()


def test_warnings_list_the_refusal_through_pymysql(twin: ProxyEnv) -> None:
    """What a client reads: the error it was just given, and nothing of the statement before."""
    with twin.connect(user=USER, password=PASSWORD) as conn, conn.cursor() as cur:
        cur.execute("SELECT CAST('1x' AS SIGNED) FROM dgn_t")
        cur.execute("SHOW WARNINGS")
        assert [row[1] for row in cur.fetchall()] == [1292]
        with pytest.raises(Exception) as info:
            cur.execute("SELECT * FROM dgn_secret")
        errno, message = info.value.args
        assert errno == 1142
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == (("Error", 1142, message),)
        cur.execute("SELECT @@warning_count, @@error_count")
        assert cur.fetchall() == ((1, 1),)
