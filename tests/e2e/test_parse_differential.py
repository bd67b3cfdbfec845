"""The analyser reads statements as MariaDB does: every keyword in every position.

See tests/parse_differential.py for the method. The default run tries every MariaDB keyword
and built-in function name, and every word sqlglot treats specially, unquoted in every
position and quoted in every role; ``SHARDGATE_PARSE_EXHAUSTIVE=1`` adds the exhaustive run
(every word, both forms, every template; several minutes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from proxy.dev.localshard import LocalMariaDB
from proxy.sql.mariadb_words import FUNCTIONS, KEYWORDS, NATIVE_FUNCTIONS, SPACED_FUNCTIONS
from tests.mariadb_words import server_call_words, server_words
from tests.parse_differential import (
    POSITIONS,
    TEMPLATES,
    DiffDatabase,
    cases,
    compare,
    mariadb_words,
    sqlglot_function_words,
    sqlglot_words,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMariaDB]:
    """A MariaDB of this module's own: the test fills it with a table per word and
    rewrites its account's privileges directly in mysql.tables_priv."""
    mariadb = LocalMariaDB(Path(tmp_path_factory.mktemp("parsediff")) / "db")
    mariadb.start()
    try:
        yield mariadb
    finally:
        mariadb.stop()


def test_shipped_word_lists_are_the_servers(server: LocalMariaDB) -> None:
    ep = server.endpoint
    conn = pymysql.connect(host=ep.host, port=ep.port, user=ep.user, password=ep.password)
    try:
        keywords, functions = server_words(conn)
        spaced, native = server_call_words(conn, keywords, functions)
    finally:
        conn.close()
    assert (sorted(KEYWORDS ^ keywords), sorted(FUNCTIONS ^ functions)) == ([], []), (
        "proxy/sql/mariadb_words.py differs from the server's lists: python -m tests.mariadb_words"
    )
    assert (sorted(SPACED_FUNCTIONS ^ spaced), sorted(NATIVE_FUNCTIONS ^ native)) == ([], []), (
        "proxy/sql/mariadb_words.py's probed call lists differ: python -m tests.mariadb_words"
    )
    assert "COUNT" in SPACED_FUNCTIONS and "ABS" in NATIVE_FUNCTIONS


def test_the_default_run_covers_every_word_in_every_position() -> None:
    words = mariadb_words() + sqlglot_words()
    selected = cases(words, exhaustive=False)
    unquoted = {(c.word, c.template.position) for c in selected if not c.quoted}
    quoted = {(c.word, c.template.role) for c in selected if c.quoted}
    roles = {t.role for t in TEMPLATES}
    assert unquoted == {(w, p) for w in words for p in POSITIONS}
    assert quoted == {(w, r) for w in words for r in roles}
    assert len(POSITIONS) >= 20 and len(words) > 1000


def _check(server: LocalMariaDB, words: list[str], exhaustive: bool) -> None:
    # the server is this module's: no need to drop the database (1000+ tables) at the end
    with DiffDatabase(server.endpoint, words, cleanup=False) as db:
        report = compare(
            db, cases(words, exhaustive), leave_one_out="all" if exhaustive else "changed"
        )
    print(report.summary())
    assert report.allowed > report.statements // 2, report.summary()
    assert not report.findings, "\n".join(map(str, report.findings)) + "\n" + report.summary()


def test_every_word_in_every_position(server: LocalMariaDB) -> None:
    _check(server, mariadb_words() + sqlglot_words(), exhaustive=False)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("SHARDGATE_PARSE_EXHAUSTIVE"),
    reason="exhaustive run: set SHARDGATE_PARSE_EXHAUSTIVE=1",
)
def test_every_word_in_every_template_exhaustively(server: LocalMariaDB) -> None:
    _check(server, mariadb_words() + sqlglot_words() + sqlglot_function_words(), exhaustive=True)
