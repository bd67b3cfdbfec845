"""A client whose character set is not UTF-8 and the bytes MariaDB reads as a space in it
beyond ASCII's (0xA0 in latin1): the proxy reads the client's text as UTF-8, where that byte
is no space, so a statement with one outside its string literals could mean one thing to the
proxy and another to the shard (``--<A0>`` starts a comment there, ``/*!100000<A0>`` is a
six-digit version). Such a statement is refused (1235, saying why) -- never a syntax error the
shard would not find, never relayed -- and one with the byte inside a string literal or a
comment runs as on the shard. The reference: an account of the same name and grants made on
the shard, in latin1 too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from proxy.wire.packets import parse_err
from tests.e2e.binclient import CAPABILITIES, BinaryClient
from tests.e2e.conftest import ProxyEnv
from tests.e2e.tools import twin_account

USER, PASSWORD = "latspuser", "Latsp#pass1"


@pytest.fixture(scope="module")
def twin(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    """``USER`` may read easydb.lsp_t: in the catalog (through the proxy) and on the shard."""
    with twin_account(proxy, USER, PASSWORD, "lsp_t", "lsp_secret", "(1), (2)") as env:
        yield env


def _answer(conn: Any, sql: bytes) -> tuple[Any, ...]:
    with conn.cursor() as cur:
        try:
            cur.execute(sql)
        except pymysql.err.MySQLError as exc:
            return ("error", exc.args[0])
        return ("rows", cur.fetchall())


# MariaDB reads the byte 0xA0 as a space in each (latin1: it runs them, but the last: no
# call without IGNORE_SPACE).
SPACED = [
    b"SELECT\xa01",
    b"SELECT a FROM lsp_t WHERE a =\xa01",
    b"SELECT a FROM lsp_t\xa0WHERE a = 1",
    b"SELECT 1 --\xa0UNION SELECT a FROM lsp_secret",
    b"SELECT a FROM lsp_t WHERE a = 1 /*!100000\xa0OR 1 = 1*/",
    b"SELECT COUNT\xa0(*) FROM lsp_t",
]
# 0xA0 in a string literal or a comment: the same text for both.
NOT_SPACED = [
    b"SELECT 'x\xa0y', a FROM lsp_t ORDER BY a",
    b"SELECT a FROM lsp_t /* \xa0 */ ORDER BY a",
    b"SELECT a FROM lsp_t WHERE a = 1 -- \xa0",
]


@pytest.mark.parametrize("charset", ["latin1", "latin2", "cp1250", "greek"])
def test_a_space_the_proxy_cannot_read_is_refused(twin: ProxyEnv, charset: str) -> None:
    ours = twin.connect(user=USER, password=PASSWORD, charset=charset, use_unicode=False)
    shard = twin.shards[0]
    theirs = pymysql.connect(
        host=shard.host,
        port=shard.port,
        user=USER,
        password=PASSWORD,
        database="easydb",
        charset=charset,
        use_unicode=False,
        autocommit=True,
    )
    try:
        for _ in range(3):  # (a shape the fast path knows)
            assert _answer(ours, b"SELECT a FROM lsp_t WHERE a = 1") == ("rows", ((1,),))
        for sql in SPACED:
            answer = _answer(theirs, sql)  # (a space for MariaDB)
            if b"COUNT" in sql:
                assert answer == ("error", 1064)
            else:
                assert answer[0] == "rows", sql
            with ours.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as info:
                cur.execute(sql)
            errno, message = info.value.args
            assert errno == 1235, (sql, message)
            assert "the byte 0xA0" in message and "ASCII space" in message
        for sql in NOT_SPACED:
            assert _answer(ours, sql) == _answer(theirs, sql), sql
            assert _answer(ours, sql)[0] == "rows"
        # (and for a UTF-8 client the lone byte is what MariaDB says it is: no character)
        with twin.connect(user=USER, password=PASSWORD) as utf8:
            assert _answer(utf8, SPACED[0])[1] == 1064
    finally:
        ours.close()
        theirs.close()


def test_a_prepared_statement_is_refused_alike(twin: ProxyEnv) -> None:
    """COM_STMT_PREPARE of such a text: 1235 too (the shard prepares ``SELECT 1``)."""
    ours = BinaryClient(twin.port, USER, PASSWORD, "easydb")
    theirs = BinaryClient(twin.shards[0].port, USER, PASSWORD, "easydb")
    try:
        for client in (ours, theirs):
            client.query("SET NAMES latin1")
        answers = []
        for client in (ours, theirs):
            client._send(b"\x16" + b"SELECT\xa01 FROM lsp_t WHERE a = ?")
            answers.append(client._read()[1])
        assert answers[1][:1] == b"\x00"  # (MariaDB prepared it)
        assert answers[0][:1] == b"\xff"
        err = parse_err(answers[0], CAPABILITIES)
        assert err.errno == 1235 and "the byte 0xA0" in err.message
    finally:
        ours.close()
        theirs.close()
