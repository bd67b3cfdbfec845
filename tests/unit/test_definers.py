"""Views' definers as the client knows them (proxy.session.definers): which names are mirrors
of the session's database, and how the account is written in their place."""

from __future__ import annotations

from typing import Any

import pytest

from auth.model import Account
from proxy.backend.mirror import mirror_user
from proxy.session.definers import (
    Definers,
    may_show_definers,
    renamed_create_view,
    renamed_definer,
)
from proxy.sql.analyze import analyze

SECRET = b"s" * 32


class _Snapshot:
    def __init__(self, accounts: dict[int, Account]) -> None:
        self._accounts = accounts

    def account(self, account_id: int) -> Account | None:
        return self._accounts.get(account_id)


def _account(account_id: int, user: str, host: str = "%") -> Account:
    return Account(account_id, user, host, b"", "", None, None, account_id)


@pytest.fixture
def definers() -> Definers:
    snapshot: Any = _Snapshot({5: _account(5, "alice"), 6: _account(6, "bob", "10.0.%")})
    return Definers(snapshot, SECRET, ("easydb",))


def mirror(account_id: int, database: str = "easydb") -> str:
    return mirror_user(SECRET, account_id, database)


def test_a_mirror_of_the_sessions_database_is_its_account(definers: Definers) -> None:
    assert definers.account(mirror(5), "%") == ("alice", "%")
    assert definers.account(mirror(6), "%") == ("bob", "10.0.%")


@pytest.mark.parametrize(
    ("user", "host"),
    [
        (mirror(5), "localhost"),  # a mirror is made at '%'
        (mirror(5, "otherdb"), "%"),  # another database's mirror
        ("sgm_5_0badf00d", "%"),  # a look-alike
        ("sgm_5_", "%"),
        ("root", "localhost"),
        (mirror(7), "%"),  # no such account (dropped)
    ],
)
def test_other_names_are_unchanged(definers: Definers, user: str, host: str) -> None:
    assert definers.account(user, host) is None


def test_information_schema_value(definers: Definers) -> None:
    assert renamed_definer(f"{mirror(5)}@%".encode(), definers) == b"alice@%"
    for value in (b"root@localhost", b"nobody", f"{mirror(5, 'otherdb')}@%".encode()):
        assert renamed_definer(value, definers) == value


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("`{m}`@`%`", "`alice`@`%`"),  # sql_quote_show_create = 1
        ('"{m}"@"%"', '"alice"@"%"'),  # ANSI_QUOTES
        ("{m}@`%`", "alice@`%`"),  # sql_quote_show_create = 0: quoted where needed only
    ],
)
def test_show_create_view_text(definers: Definers, written: str, expected: str) -> None:
    tail = " SQL SECURITY DEFINER VIEW `v` AS select 'DEFINER=`x`@`%`' AS `a`"
    text = f"CREATE ALGORITHM=UNDEFINED DEFINER={written.format(m=mirror(5))}{tail}"
    renamed = renamed_create_view(text.encode(), definers)
    assert renamed == f"CREATE ALGORITHM=UNDEFINED DEFINER={expected}{tail}".encode()


def test_show_create_view_quotes_what_needs_quotes() -> None:
    snapshot: Any = _Snapshot({5: _account(5, "select"), 6: _account(6, "we`ird", "h")})
    definers = Definers(snapshot, SECRET, ("easydb",))
    for account_id, written, expected in (
        (5, "{m}@`%`", "`select`@`%`"),  # a keyword
        (6, "{m}@`%`", "`we``ird`@h"),
        (6, "`{m}`@`%`", "`we``ird`@`h`"),
    ):
        text = f"CREATE DEFINER={written.format(m=mirror(account_id))} SQL SECURITY INVOKER VIEW"
        assert renamed_create_view(text.encode(), definers) == (
            f"CREATE DEFINER={expected} SQL SECURITY INVOKER VIEW".encode()
        )


def test_a_text_without_a_mirror_is_unchanged(definers: Definers) -> None:
    for text in (
        b"CREATE ALGORITHM=UNDEFINED DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW",
        b'CREATE VIEW "v" AS select 1',  # sql_mode ANSI: no definer clause
        b"CREATE TABLE `t` (`id` int)",
    ):
        assert renamed_create_view(text, definers) == text


def test_which_statements_may_show_a_definer() -> None:
    def shows(sql: str) -> bool:
        [statement] = analyze(sql, "easydb")
        return statement.shows_definers

    assert shows("SHOW CREATE VIEW v")
    assert shows("show create table easydb.t")
    assert shows("SELECT DEFINER FROM information_schema.VIEWS")
    assert shows("SELECT 1 FROM t WHERE EXISTS (SELECT 1 FROM `INFORMATION_SCHEMA`.`views` v)")
    assert not shows("SELECT * FROM information_schema.TABLES")
    assert not shows("SELECT * FROM views")
    assert not shows("SHOW CREATE DATABASE easydb")
    assert may_show_definers("SELECT * FROM (SELECT 1 FROM information_schema.VIEWS) AS x")
    assert may_show_definers("  SHOW CREATE VIEW `sales_0000`.`v`")
    assert not may_show_definers("SELECT * FROM information_schema.TABLES")
