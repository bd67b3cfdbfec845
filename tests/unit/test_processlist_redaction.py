"""SHOW PROCESSLIST's Info never shows a password, however the statement is spelt: literals
are found by the lexer (in every sql_mode that changes lexing), not by a pattern."""

from __future__ import annotations

import pytest

from auth.model import Account
from proxy.session.local import REDACT_LEX_LIMIT, SessionInfo, processlist_rows, redact_statement
from proxy.sql.lexer import ServerFlavor

MARIADB = ServerFlavor(101106, True)
SECRET = "Secret#42"

SPELLINGS = [
    f"CREATE USER u IDENTIFIED BY '{SECRET}'",
    f"CREATE USER u IDENTIFIED/**/BY '{SECRET}'",
    f"create user u identified\n\tby '{SECRET}'",
    f"CREATE USER u /* ' */ IDENTIFIED BY '{SECRET}'",
    f"CREATE USER u -- '\n IDENTIFIED BY '{SECRET}'",
    f"CREATE USER u # '\n IDENTIFIED BY '{SECRET}'",
    f"CREATE USER `u'` IDENTIFIED BY '{SECRET}'",
    f"CREATE USER u /*!IDENTIFIED BY*/ '{SECRET}'",
    f"CREATE USER u /*!50000 IDENTIFIED BY '{SECRET}' */",
    f"CREATE USER u /*M!100000 IDENTIFIED BY '{SECRET}' */",
    f'CREATE USER u IDENTIFIED BY "{SECRET}"',
    f"CREATE USER u IDENTIFIED WITH mysql_native_password AS PASSWORD('{SECRET}')",
    f"CREATE USER u IDENTIFIED VIA ed25519 USING PASSWORD('{SECRET}')",
    f"SET PASSWORD = '{SECRET}'",
    f"SET PASSWORD\nFOR u = '{SECRET}'",
    f"SET/**/PASSWORD/**/FOR/**/u/**/=/**/'{SECRET}'",
    f"SET PASSWORD FOR `a=b`@'%' = '{SECRET}'",
    f"SET PASSWORD FOR u@'%=' = '{SECRET}'",
    f"SET PASSWORD FOR u = PASSWORD /**/ ('{SECRET}')",
    f"SET PASSWORD FOR u = _utf8mb4'{SECRET}'",
    f"SET PASSWORD FOR u = N'{SECRET}'",
    f"SET PASSWORD FOR u = 'a''{SECRET}'",
    f"SET PASSWORD FOR u = 'a\\'{SECRET}'",
    f"SET PASSWORD FOR u = X'{SECRET.encode().hex()}'",
    f"ALTER USER u IDENTIFIED BY '{SECRET}' RETAIN CURRENT PASSWORD",
    f"GRANT SELECT ON t TO u IDENTIFIED BY '{SECRET}'",
    f"GRANT SELECT ON t TO u IDENTIFIED BY PASSWORD '{SECRET}'",
    f"SELECT SLEEP(5), PASSWORD('{SECRET}')",
    f"SELECT SLEEP(5), password /* x */ ('{SECRET}')",
    f"SET PASSWORD FOR u = '{SECRET}",  # unterminated
    f"CREATE USER u IDENTIFIED BY '{SECRET}' /*",  # unterminated comment
    f"CREATE USER u /*!99999 x */ IDENTIFIED BY '{SECRET}'",
]


@pytest.mark.parametrize("sql", SPELLINGS)
@pytest.mark.parametrize("flavor", [MARIADB, None])
def test_no_spelling_shows_the_password(sql: str, flavor: ServerFlavor | None) -> None:
    shown = redact_statement(sql, flavor)
    assert SECRET not in shown and SECRET.encode().hex() not in shown
    assert "'***'" in shown


def test_only_literals_are_masked() -> None:
    assert (
        redact_statement("CREATE USER 'u'@'%' IDENTIFIED BY 'p1'", MARIADB)
        == "CREATE USER '***'@'%' IDENTIFIED BY '***'"
    )
    assert (
        redact_statement("SET PASSWORD FOR u@h = PASSWORD('x')", MARIADB)
        == "SET PASSWORD FOR u@h = PASSWORD('***')"
    )
    # Statements that do not mention passwords are shown as they are.
    assert redact_statement("SELECT 'a', 1 FROM t", MARIADB) == "SELECT 'a', 1 FROM t"


def test_a_long_text_is_cut_after_the_word() -> None:
    sql = "CREATE USER u IDENTIFIED BY '" + "x" * REDACT_LEX_LIMIT + "'"
    assert redact_statement(sql, MARIADB) == "CREATE USER u IDENTIFIED '***'"


def test_processlist_cuts_then_redacts() -> None:
    account = Account(1, "u", "%", b"", "", "db", None, 1)
    sql = "SELECT 1 /* " + "x" * 80 + f" */, 2; SET PASSWORD = '{SECRET}'"
    info = SessionInfo(7, account, "u", "127.0.0.1:1", "db", "Query", 0, sql, MARIADB)
    for full in (False, True):
        (row,) = processlist_rows([info], 1, full)
        assert row[7] is not None and SECRET not in row[7] and SECRET[:3] not in row[7]
        assert len(row[7]) <= (len(sql) if full else 100)
