"""Account statements end to end, one test per rule of README.md's "Account semantics":
exact errno, SQLSTATE and text through real clients (PyMySQL, mysql-connector, the mariadb
CLI), notes through SHOW WARNINGS, all-or-nothing multi-account statements, and privileges
that really take effect on new and already open connections.

The proxy is shared by every e2e test: each test uses account and table names of its own
(a prefix per test) and never touches easydb / otherdb themselves.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import warnings
from collections.abc import Iterator
from typing import TypeAlias

import mysql.connector
import pymysql
import pytest

from auth.privileges import Priv
from auth.urls import sqlite_path
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import CONNECTOR_IMPLEMENTATIONS, PASSWORDS, ProxyEnv, run_isolated

Conn: TypeAlias = pymysql.connections.Connection

RESTRICTED = (
    5107,
    "ERR-CODE: [TDDL-5107][ERR_OPERATION_NOT_ALLOWED] "
    "The authorization operations is restricted to administrator only.",
)
INVALID_HOST = (
    5109,
    "ERR-CODE: [TDDL-5109][ERR_INVALID_HOST] Invalid host. Please use IP address instead.",
)
INVALID_USERNAME = (
    5202,
    "ERR-CODE: [TDDL-5202][ERR_INVALID_USERNAME] Invalid username. Username requirements: "
    "1. Must be 4-20 characters; 2. Must start with an alphabetic letter; 3. Characters are "
    "limited to uppercase and lowercase letters, and numerical digits.",
)
INVALID_PASSWORD = (
    5203,
    "ERR-CODE: [TDDL-5203][ERR_INVALID_PASSWORD] Invalid password. Password requirements: "
    "1. Must be 6-20 characters; 2. Characters are limited to uppercase and lowercase "
    "alphabetic letters, numerical digits, and special characters(@#$%^&+=).",
)
GLOBAL_NOT_ALLOWED = (
    5107,
    "ERR-CODE: [TDDL-5107][ERR_OPERATION_NOT_ALLOWED] Global authorization is not allowed.",
)
GRANT_OPTION_NOT_ALLOWED = (
    5107,
    "ERR-CODE: [TDDL-5107][ERR_OPERATION_NOT_ALLOWED] Authorizing 'GRANT OPTION' is not allowed.",
)
NO_PASSWORD_ROW = (1133, "Can't find any matching row in the user table")


def tddl(code: int, key: str, text: str) -> tuple[int, str]:
    return code, f"ERR-CODE: [TDDL-{code}][{key}] {text}"


def system_create_drop(user: str) -> tuple[int, str]:
    return tddl(
        5107,
        "ERR_OPERATION_NOT_ALLOWED",
        f"Creating or dropping system account {user} is not allowed.",
    )


def system_change(user: str) -> tuple[int, str]:
    return tddl(
        5107,
        "ERR_OPERATION_NOT_ALLOWED",
        f"Changes to system account {user} privileges are not allowed.",
    )


def unsupported(priv: str) -> tuple[int, str]:
    return tddl(5101, "ERR_UNSUPPORTED_PRIVILEGE", f"Unsupported privilege '{priv}'.")


def other_database(target: str, admin: str, own: str) -> tuple[int, str]:
    return tddl(
        5106,
        "ERR_NO_ACCESS_TO_DATABASE",
        f"Granting privileges to database '{target}' is not allowed. "
        f"User {admin}@'%' can only access database '{own}'.",
    )


def user_not_exists(user: str) -> tuple[int, str]:
    return tddl(
        5104, "ERR_USER_NOT_EXISTS", f"User '{user}' does not exist. Please create user first."
    )


def no_such_grant(user: str, host: str = "%") -> tuple[int, str]:
    return 1141, f"There is no such grant defined for user '{user}' on host '{host}'"


def no_such_table_grant(user: str, host: str, table: str) -> tuple[int, str]:
    return (
        1147,
        f"There is no such grant defined for user '{user}' on host '{host}' on table '{table}'",
    )


def denied(priv: str, user: str, ip: str, table: str) -> tuple[int, str]:
    return 1142, f"{priv} command denied to user '{user}'@'{ip}' for table '{table}'"


def access_denied(user: str, ip: str = "127.0.0.1", password: bool = True) -> tuple[int, str]:
    yes_no = "YES" if password else "NO"
    return 1045, f"Access denied for user '{user}'@'{ip}' (using password: {yes_no})"


# ------------------------------------------------------------------------------------ helpers


def ok(conn: Conn, *statements: str) -> None:
    with conn.cursor() as cur:
        for sql in statements:
            cur.execute(sql)


def rows(conn: Conn, sql: str) -> list[tuple[object, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


def err(conn: Conn, sql: str) -> tuple[int, str]:
    with conn.cursor() as cur, pytest.raises(pymysql.err.MySQLError) as info:
        cur.execute(sql)
    return info.value.args  # type: ignore[no-any-return]


def show_grants(conn: Conn, sql: str) -> tuple[str, list[str]]:
    """(header, rows) of a SHOW GRANTS statement."""
    with conn.cursor() as cur:
        cur.execute(sql)
        assert cur.description is not None and len(cur.description) == 1
        return cur.description[0][0], [row[0] for row in cur.fetchall()]


def grants_of(conn: Conn, account: str) -> list[str]:
    return show_grants(conn, f"SHOW GRANTS FOR {account}")[1]


def usage(account: str) -> str:
    return f"GRANT USAGE ON *.* TO {account}"


def login_error(proxy: ProxyEnv, **kwargs: object) -> tuple[int, str]:
    with pytest.raises(pymysql.err.OperationalError) as info:
        proxy.connect(**kwargs).close()  # type: ignore[arg-type]
    return info.value.args  # type: ignore[no-any-return]


def version(proxy: ProxyEnv) -> int:
    return proxy.server.ctx.catalog.snapshot().version


def exists(proxy: ProxyEnv, user: str, host: str = "%") -> bool:
    return proxy.server.ctx.catalog.snapshot().find_account(user, host) is not None


@pytest.fixture
def otheradmin(proxy: ProxyEnv) -> Iterator[Conn]:
    conn = proxy.connect(user="otherdb", database="otherdb")
    try:
        yield conn
    finally:
        conn.close()


# ------------------------------------------------------------------------------------ accounts


def test_user_alone_means_any_host_and_names_are_case_sensitive(
    proxy: ProxyEnv, admin: Conn
) -> None:
    ok(
        admin,
        "CREATE USER acCase1 IDENTIFIED BY 'Upper#pass1'",
        "CREATE USER accase1 IDENTIFIED BY 'lower#pass1'",
    )
    assert exists(proxy, "acCase1", "%") and exists(proxy, "accase1", "%")
    assert grants_of(admin, "acCase1@'%'") == [usage("'acCase1'@'%'")]
    assert grants_of(admin, "'accase1'") == [usage("'accase1'@'%'")]
    ok(admin, "GRANT SELECT ON easydb.* TO acCase1")
    assert grants_of(admin, "'acCase1'@'%'")[1] == "GRANT SELECT ON `easydb`.* TO 'acCase1'@'%'"
    assert grants_of(admin, "accase1") == [usage("'accase1'@'%'")]
    ok(admin, "GRANT SELECT ON easydb.* TO accase1")
    proxy.connect(user="acCase1", password="Upper#pass1", database=None).close()
    proxy.connect(user="accase1", password="lower#pass1", database=None).close()
    assert login_error(proxy, user="ACCASE1", password="Upper#pass1", database=None) == (
        access_denied("ACCASE1")
    )
    assert login_error(proxy, user="acCase1", password="lower#pass1", database=None) == (
        access_denied("acCase1")
    )


@pytest.mark.parametrize("host", ["localhost", "a.com", "10.0.0.0/8", "%.example.org"])
def test_hosts_are_ip_patterns_only(proxy: ProxyEnv, admin: Conn, host: str) -> None:
    before = version(proxy)
    assert err(admin, f"CREATE USER achost1@'{host}' IDENTIFIED BY 'Host#pass1'") == INVALID_HOST
    assert (
        err(admin, f"GRANT SELECT ON easydb.* TO achost1@'{host}' IDENTIFIED BY 'Host#pass1'")
        == INVALID_HOST
    )
    assert err(admin, f"DROP USER achost1@'{host}'") == INVALID_HOST
    assert version(proxy) == before
    # Wildcards and IPv6 are fine.
    ok(
        admin,
        "CREATE USER IF NOT EXISTS achost1@'30.9.%.%', achost1@'30.9.12_.1', achost1@'fe80::1'",
    )


@pytest.mark.parametrize(
    "user",
    # A bare 1abcd is an identifier to MySQL: the name rule judges it, as a quoted one.
    ["abc", "a" * 21, "'1abcd'", "1abcd", "`ab_cd`", "'ab-cd'", "`abcé`", "`_abcd`", "'ab cd'"],
)
def test_user_name_rule_5202(proxy: ProxyEnv, admin: Conn, user: str) -> None:
    assert err(admin, f"CREATE USER {user}@'%' IDENTIFIED BY 'Name#pass1'") == INVALID_USERNAME
    # A GRANT that would create the account checks the rule too.
    assert (
        err(admin, f"GRANT SELECT ON easydb.* TO {user} IDENTIFIED BY 'Name#pass1'")
        == INVALID_USERNAME
    )


def test_user_name_rule_boundaries(proxy: ProxyEnv, admin: Conn) -> None:
    ok(admin, "CREATE USER acnm IDENTIFIED BY 'Name#pass1', Acnm4567890123456789")
    assert exists(proxy, "acnm") and exists(proxy, "Acnm4567890123456789")


def test_create_user_without_password_has_an_empty_one(proxy: ProxyEnv, admin: Conn) -> None:
    ok(admin, "CREATE USER acempty1@'%'", "GRANT SELECT ON easydb.* TO acempty1")
    with proxy.connect(user="acempty1", password="", database=None) as conn:
        assert show_grants(conn, "SHOW GRANTS") == (
            "Grants for acempty1@%",
            [usage("'acempty1'@'%'"), "GRANT SELECT ON `easydb`.* TO 'acempty1'@'%'"],
        )
    assert login_error(proxy, user="acempty1", password="anything1", database=None) == (
        access_denied("acempty1")
    )


def test_account_without_privileges_can_connect_and_show_its_grants(
    proxy: ProxyEnv, admin: Conn
) -> None:
    ok(admin, "CREATE USER IF NOT EXISTS acnopriv1 IDENTIFIED BY 'Nopriv#p1'")
    with proxy.connect(user="acnopriv1", password="Nopriv#p1", database=None) as conn:
        assert show_grants(conn, "SHOW GRANTS") == (
            "Grants for acnopriv1@%",
            [usage("'acnopriv1'@'%'")],
        )
        assert rows(conn, "SELECT 1") == [(1,)]


@pytest.mark.parametrize(
    "password", ["12345", "a" * 21, "abc def1", "abc!defg", "pässwort1", "abc*defg", ""]
)
def test_password_rule_5203(proxy: ProxyEnv, admin: Conn, password: str) -> None:
    ok(admin, "CREATE USER IF NOT EXISTS acpw1 IDENTIFIED BY 'Good#pass1'")
    before = version(proxy)
    for sql in (
        f"CREATE USER acpw2 IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON easydb.* TO acpw2 IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON easydb.* TO acpw1 IDENTIFIED BY '{password}'",
        f"SET PASSWORD FOR acpw1 = PASSWORD('{password}')",
        f"SET PASSWORD FOR acpw1 = '{password}'",
    ):
        code, message = err(admin, sql)
        assert (code, message) == INVALID_PASSWORD, sql
    assert version(proxy) == before
    assert not exists(proxy, "acpw2")


def test_password_rule_boundaries(proxy: ProxyEnv, admin: Conn) -> None:
    six, twenty = "Ab1@#$", "Zz9%^&+=" + "x" * 12
    ok(
        admin,
        f"GRANT SELECT ON easydb.* TO acpwb1 IDENTIFIED BY '{six}', "
        f"acpwb2 IDENTIFIED BY '{twenty}'",
    )
    proxy.connect(user="acpwb1", password=six, database=None).close()
    proxy.connect(user="acpwb2", password=twenty, database=None).close()


# ------------------------------------------------------------------------ built-in accounts


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("CREATE USER easydb_RO IDENTIFIED BY 'Builtin#1'", system_create_drop("easydb_RO")),
        ("CREATE USER easydb@'10.%' IDENTIFIED BY 'Builtin#1'", system_create_drop("easydb")),
        ("CREATE USER IF NOT EXISTS otherdb_RO", system_create_drop("otherdb_RO")),
        ("DROP USER easydb_RO", system_create_drop("easydb_RO")),
        ("DROP USER IF EXISTS easydb@'%'", system_create_drop("easydb")),
        ("DROP USER otherdb", system_create_drop("otherdb")),
        ("GRANT INSERT ON easydb.* TO easydb_RO", system_change("easydb_RO")),
        ("GRANT SELECT ON easydb.* TO otherdb_RO@'%'", system_change("otherdb_RO")),
        (
            "GRANT SELECT ON easydb.* TO easydb_RO IDENTIFIED BY 'Builtin#1'",
            system_change("easydb_RO"),
        ),
        ("REVOKE SELECT ON easydb.* FROM easydb_RO", system_change("easydb_RO")),
        ("REVOKE ALL PRIVILEGES, GRANT OPTION FROM easydb_RO", system_change("easydb_RO")),
        ("SET PASSWORD FOR easydb_RO = PASSWORD('Builtin#1')", system_change("easydb_RO")),
        ("SET PASSWORD FOR otherdb = 'Builtin#1'", system_change("otherdb")),
        # Its own password: the operator resets it with the CLI.
        ("SET PASSWORD = PASSWORD('Builtin#1')", system_change("easydb")),
        ("SET PASSWORD FOR easydb@'%' = 'Builtin#1'", system_change("easydb")),
    ],
)
def test_protected_accounts(proxy: ProxyEnv, admin: Conn, sql: str, expected: object) -> None:
    before = version(proxy)
    assert err(admin, sql) == expected
    assert version(proxy) == before


def test_protected_read_only_account_stays_as_it_was(proxy: ProxyEnv) -> None:
    with proxy.connect(user="easydb_RO") as ro:
        assert err(ro, "SET PASSWORD = PASSWORD('Builtin#1')") == system_change("easydb_RO")
        assert err(ro, "SET PASSWORD FOR CURRENT_USER() = 'Builtin#1'") == system_change(
            "easydb_RO"
        )
        assert show_grants(ro, "SHOW GRANTS") == (
            "Grants for easydb_RO@%",
            [usage("'easydb_RO'@'%'"), "GRANT SELECT ON `easydb`.* TO 'easydb_RO'@'%'"],
        )
    proxy.connect(user="easydb_RO").close()  # the password did not change


def test_administrator_is_bound_to_its_database(proxy: ProxyEnv, admin: Conn) -> None:
    denied_other = (1044, "Access denied for user 'easydb'@'127.0.0.1' to database 'otherdb'")
    assert err(admin, "USE otherdb") == denied_other
    assert login_error(proxy, user="easydb", database="otherdb") == denied_other
    with pytest.raises(pymysql.err.OperationalError) as info:
        admin.select_db("otherdb")  # COM_INIT_DB
    assert info.value.args == denied_other


# --------------------------------------------------------------------------- who may do what


def test_only_administrators_manage_accounts(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "GRANT ALL PRIVILEGES ON easydb.* TO whoall1 IDENTIFIED BY 'Who#pass1', "
        "whoother1 IDENTIFIED BY 'Who#pass2'",
    )
    statements = [
        "CREATE USER whonew1 IDENTIFIED BY 'Who#pass3'",
        "CREATE USER IF NOT EXISTS whoother1",
        "DROP USER whoother1",
        "DROP USER IF EXISTS whonew1",
        "GRANT SELECT ON easydb.* TO whoother1",
        "GRANT SELECT ON easydb.* TO whonew1 IDENTIFIED BY 'Who#pass3'",
        "GRANT SELECT ON *.* TO whoother1",
        "REVOKE SELECT ON easydb.* FROM whoother1",
        "REVOKE ALL PRIVILEGES, GRANT OPTION FROM whoother1",
        "SET PASSWORD FOR whoother1 = PASSWORD('Who#pass4')",
        "SET PASSWORD FOR easydb = 'Who#pass4'",
        "SHOW GRANTS FOR whoother1",
        "SHOW GRANTS FOR easydb@'%'",
    ]
    before = version(proxy)
    for user, password in (("whoall1", "Who#pass1"), ("easydb_RO", PASSWORDS["easydb_RO"])):
        with proxy.connect(user=user, password=password) as conn:
            for sql in statements:
                assert err(conn, sql) == RESTRICTED, (user, sql)
            # Managing itself is still managing accounts.
            assert err(conn, f"GRANT SELECT ON easydb.* TO {user}") == RESTRICTED
    assert version(proxy) == before
    assert not exists(proxy, "whonew1")
    assert grants_of(admin, "whoother1") == [
        usage("'whoother1'@'%'"),
        "GRANT ALL PRIVILEGES ON `easydb`.* TO 'whoother1'@'%'",
    ]


def test_administrator_manages_only_accounts_its_database_owns(
    proxy: ProxyEnv, admin: Conn, otheradmin: Conn
) -> None:
    ok(admin, "GRANT SELECT ON easydb.* TO ownea1 IDENTIFIED BY 'Own#pass1'")
    before = version(proxy)
    assert err(otheradmin, "DROP USER ownea1") == (
        1396,
        "Operation DROP USER failed for 'ownea1'@'%'",
    )
    assert err(otheradmin, "DROP USER IF EXISTS ownea1") == (
        1396,
        "Operation DROP USER failed for 'ownea1'@'%'",
    )
    assert err(otheradmin, "SET PASSWORD FOR ownea1 = PASSWORD('Own#pass2')") == NO_PASSWORD_ROW
    assert (
        err(otheradmin, "GRANT SELECT ON otherdb.* TO ownea1 IDENTIFIED BY 'Own#pass2'")
        == NO_PASSWORD_ROW
    )
    assert version(proxy) == before
    proxy.connect(user="ownea1", password="Own#pass1", database=None).close()
    # Granting on its own database to any non-protected account is allowed.
    ok(otheradmin, "GRANT SELECT ON otherdb.* TO ownea1")
    assert grants_of(otheradmin, "ownea1") == [
        usage("'ownea1'@'%'"),
        "GRANT SELECT ON `otherdb`.* TO 'ownea1'@'%'",
    ]
    # The owner still manages it.
    ok(admin, "SET PASSWORD FOR ownea1 = PASSWORD('Own#pass3')", "DROP USER ownea1")
    assert not exists(proxy, "ownea1")


def test_a_user_name_belongs_to_one_database(
    proxy: ProxyEnv, admin: Conn, otheradmin: Conn
) -> None:
    """otherdb owns capt1: easydb's administrator cannot add capt1 at a more specific host,
    which would capture capt1@'%''s logins by host precedence (ten patterns 0%...9% would cover
    every IPv4 address)."""
    ok(otheradmin, "CREATE USER capt1@'%' IDENTIFIED BY 'Capt#pass1'")
    ok(otheradmin, "GRANT SELECT ON otherdb.* TO capt1")
    before = version(proxy)
    for host in ("127.0.0.1", "127.0.0.%", "127.%", "1%"):
        assert err(admin, f"CREATE USER capt1@'{host}' IDENTIFIED BY 'Evil#pass1'") == (
            1396,
            f"Operation CREATE USER failed for 'capt1'@'{host}'",
        )
    digits = ", ".join(f"capt1@'{d}%' IDENTIFIED BY 'Evil#pass1'" for d in range(10))
    assert err(admin, f"CREATE USER {digits}") == (
        1396,
        "Operation CREATE USER failed for " + ",".join(f"'capt1'@'{d}%'" for d in range(10)),
    )
    # All or nothing: a free name in the same statement is not created either.
    assert err(admin, "CREATE USER captfree1, capt1@'127.0.0.2'") == (
        1396,
        "Operation CREATE USER failed for 'capt1'@'127.0.0.2'",
    )
    assert not exists(proxy, "captfree1")
    assert (
        err(admin, "GRANT SELECT ON easydb.* TO capt1@'127.0.0.3' IDENTIFIED BY 'Evil#pass1'")
        == NO_PASSWORD_ROW
    )
    with admin.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS capt1@'127.0.0.4' IDENTIFIED BY 'Evil#pass1'")
        assert cur.warning_count == 1
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == (
            ("Note", 3163, "Authorization ID 'capt1'@'127.0.0.4' already exists."),
        )
    assert version(proxy) == before
    assert [a.host for a in proxy.server.ctx.catalog.snapshot().accounts_named("capt1")] == ["%"]
    # capt1 logs in as capt1@'%' from every address, the easydb administrator's password is no
    # use, and granting on easydb to the existing account is still allowed.
    ok(admin, "GRANT SELECT ON easydb.* TO capt1")
    for ip in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"):
        assert login_error(
            proxy, user="capt1", password="Evil#pass1", database=None, bind_address=ip
        ) == access_denied("capt1", ip)
        with _bound(proxy, "capt1", "Capt#pass1", ip) as conn:
            assert show_grants(conn, "SHOW GRANTS")[0] == "Grants for capt1@%"
    # The owner still adds hosts to its own name.
    ok(otheradmin, "CREATE USER capt1@'127.0.0.5' IDENTIFIED BY 'Capt#pass5'")
    with proxy.connect(
        user="capt1", password="Capt#pass5", database=None, bind_address="127.0.0.5"
    ) as conn:
        assert show_grants(conn, "SHOW GRANTS")[0] == "Grants for capt1@127.0.0.5"
    ok(otheradmin, "DROP USER capt1, capt1@'127.0.0.5'")


def test_granting_on_another_database_5106(proxy: ProxyEnv, admin: Conn, otheradmin: Conn) -> None:
    ok(admin, "CREATE USER IF NOT EXISTS nodb1 IDENTIFIED BY 'Nodb#pass1'")
    ok(otheradmin, "CREATE TABLE IF NOT EXISTS nodb_t (id INT)")
    before = version(proxy)
    from_easy = other_database("otherdb", "easydb", "easydb")
    for sql in (
        "GRANT SELECT ON otherdb.* TO nodb1",
        "GRANT ALL PRIVILEGES ON otherdb.nodb_t TO nodb1",
        "GRANT SELECT ON otherdb.* TO nodb2 IDENTIFIED BY 'Nodb#pass2'",
        "REVOKE SELECT ON otherdb.* FROM nodb1",
        "REVOKE SELECT ON otherdb.nodb_t FROM nodb1",
    ):
        assert err(admin, sql) == from_easy, sql
    # An unknown database gets the same answer: no name leaks.
    assert err(admin, "GRANT SELECT ON nosuchdb.* TO nodb1") == other_database(
        "nosuchdb", "easydb", "easydb"
    )
    assert err(otheradmin, "GRANT SELECT ON easydb.* TO nodb1") == other_database(
        "easydb", "otherdb", "otherdb"
    )
    assert version(proxy) == before
    assert not exists(proxy, "nodb2")


# ------------------------------------------------------------------------------- privileges


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("GRANT SELECT ON *.* TO privl1", GLOBAL_NOT_ALLOWED),
        ("GRANT ALL PRIVILEGES ON *.* TO privl1 IDENTIFIED BY 'Priv#pass2'", GLOBAL_NOT_ALLOWED),
        ("REVOKE SELECT ON *.* FROM privl1", GLOBAL_NOT_ALLOWED),
        ("GRANT USAGE ON easydb.* TO privl1", unsupported("USAGE")),
        ("GRANT USAGE ON easydb.privl_t TO privl1", unsupported("USAGE")),
        ("GRANT SELECT, USAGE ON easydb.* TO privl1", unsupported("USAGE")),
        ("GRANT CREATE VIEW ON easydb.* TO privl1", unsupported("CREATE VIEW")),
        ("GRANT EXECUTE ON easydb.* TO privl1", unsupported("EXECUTE")),
        ("GRANT FILE ON easydb.* TO privl1", unsupported("FILE")),
        ("GRANT SUPER ON easydb.* TO privl1", unsupported("SUPER")),
        ("GRANT SELECT (id) ON easydb.privl_t TO privl1", unsupported("SELECT (id)")),
        (
            "GRANT SELECT (id, v), INSERT ON easydb.privl_t TO privl1",
            unsupported("SELECT (id, v)"),
        ),
        ("GRANT UPDATE (v) ON easydb.privl_t TO privl1", unsupported("UPDATE (v)")),
        ("GRANT EXECUTE ON PROCEDURE easydb.p1 TO privl1", unsupported("EXECUTE")),
        ("GRANT ALTER ROUTINE ON FUNCTION easydb.f1 TO privl1", unsupported("ALTER ROUTINE")),
        ("REVOKE USAGE ON easydb.* FROM privl1", unsupported("USAGE")),
        ("GRANT SELECT ON easydb.* TO privl1 WITH GRANT OPTION", GRANT_OPTION_NOT_ALLOWED),
        ("GRANT GRANT OPTION ON easydb.* TO privl1", GRANT_OPTION_NOT_ALLOWED),
        ("GRANT SELECT, GRANT OPTION ON easydb.privl_t TO privl1", GRANT_OPTION_NOT_ALLOWED),
    ],
)
def test_unsupported_levels_and_privileges(
    proxy: ProxyEnv, admin: Conn, sql: str, expected: tuple[int, str]
) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS privl_t (id INT, v INT)",
        "CREATE USER IF NOT EXISTS privl1 IDENTIFIED BY 'Priv#pass1'",
    )
    before = version(proxy)
    assert err(admin, sql) == expected
    assert version(proxy) == before
    assert grants_of(admin, "privl1") == [usage("'privl1'@'%'")]


def test_the_eight_privileges_and_all(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS eight_t (id INT)",
        "GRANT CREATE, DROP, ALTER, INDEX ON easydb.eight_t TO eight1 IDENTIFIED BY 'Eight#p1'",
        "GRANT INSERT, DELETE, UPDATE ON eight_t TO eight1",  # t: in the current database
    )
    assert grants_of(admin, "eight1") == [
        usage("'eight1'@'%'"),
        "GRANT INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON `easydb`.`eight_t` "
        "TO 'eight1'@'%'",
    ]
    ok(admin, "GRANT SELECT ON TABLE eight_t TO eight1")
    assert grants_of(admin, "eight1")[1] == (
        "GRANT ALL PRIVILEGES ON `easydb`.`eight_t` TO 'eight1'@'%'"
    )
    ok(admin, "GRANT ALL ON * TO eight1")  # *: the current database
    assert grants_of(admin, "eight1") == [
        usage("'eight1'@'%'"),
        "GRANT ALL PRIVILEGES ON `easydb`.* TO 'eight1'@'%'",
    ]


def test_table_grant_needs_the_table_1146(
    proxy: ProxyEnv, admin: Conn, shard_admin: object
) -> None:
    ok(admin, "DROP TABLE IF EXISTS nosuch_t", "CREATE USER IF NOT EXISTS tbl1")
    before = version(proxy)
    assert err(admin, "GRANT SELECT ON easydb.nosuch_t TO tbl1") == (
        1146,
        "Table 'easydb.nosuch_t' doesn't exist",
    )
    assert err(admin, "GRANT SELECT ON nosuch_t TO tbl1") == (
        1146,
        "Table 'easydb.nosuch_t' doesn't exist",
    )
    # The account it would have created is not created either.
    assert err(admin, "GRANT SELECT ON easydb.nosuch_t TO tbl2 IDENTIFIED BY 'Table#p1'") == (
        1146,
        "Table 'easydb.nosuch_t' doesn't exist",
    )
    assert version(proxy) == before
    assert not exists(proxy, "tbl2")
    # A table of the same name in another database of the same shard does not count.
    with shard_admin(proxy.shards[0]) as direct, direct.cursor() as cur:  # type: ignore[operator]
        cur.execute("CREATE DATABASE IF NOT EXISTS sg_spare")
        cur.execute("CREATE TABLE IF NOT EXISTS sg_spare.nosuch_t (id INT)")
    assert err(admin, "GRANT SELECT ON easydb.nosuch_t TO tbl1") == (
        1146,
        "Table 'easydb.nosuch_t' doesn't exist",
    )
    ok(admin, "CREATE TABLE nosuch_t (id INT)", "GRANT SELECT ON easydb.nosuch_t TO tbl1")
    assert grants_of(admin, "tbl1")[1] == "GRANT SELECT ON `easydb`.`nosuch_t` TO 'tbl1'@'%'"


def test_higher_level_wins(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS hl_a (id INT)",
        "CREATE TABLE IF NOT EXISTS hl_b (id INT)",
        "GRANT SELECT, INSERT ON easydb.hl_a TO hlwin1 IDENTIFIED BY 'High#pass1'",
        "GRANT SELECT, DELETE ON easydb.hl_b TO hlwin1",
    )
    to = "'hlwin1'@'%'"
    assert grants_of(admin, "hlwin1") == [
        usage(to),
        f"GRANT SELECT, INSERT ON `easydb`.`hl_a` TO {to}",
        f"GRANT SELECT, DELETE ON `easydb`.`hl_b` TO {to}",
    ]
    # GRANT P ON db.* removes P from every table-level grant in db.
    ok(admin, "GRANT SELECT ON easydb.* TO hlwin1")
    after_db_select = [
        usage(to),
        f"GRANT SELECT ON `easydb`.* TO {to}",
        f"GRANT INSERT ON `easydb`.`hl_a` TO {to}",
        f"GRANT DELETE ON `easydb`.`hl_b` TO {to}",
    ]
    assert grants_of(admin, "hlwin1") == after_db_select
    # A table grant of what the database level holds adds nothing.
    before = version(proxy)
    ok(admin, "GRANT SELECT ON easydb.hl_a TO hlwin1")
    assert version(proxy) == before
    assert grants_of(admin, "hlwin1") == after_db_select
    # REVOKE P ON db.* removes P from the table-level grants too; an emptied grant goes.
    ok(admin, "REVOKE INSERT ON easydb.* FROM hlwin1")
    assert grants_of(admin, "hlwin1") == [
        usage(to),
        f"GRANT SELECT ON `easydb`.* TO {to}",
        f"GRANT DELETE ON `easydb`.`hl_b` TO {to}",
    ]
    ok(admin, "GRANT ALL PRIVILEGES ON easydb.* TO hlwin1")
    assert grants_of(admin, "hlwin1") == [usage(to), f"GRANT ALL PRIVILEGES ON `easydb`.* TO {to}"]
    ok(admin, "REVOKE SELECT ON easydb.* FROM hlwin1")
    assert grants_of(admin, "hlwin1") == [
        usage(to),
        f"GRANT INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON `easydb`.* TO {to}",
    ]
    # Only table-level grants left: REVOKE ON db.* still reaches them.
    ok(
        admin,
        "REVOKE ALL PRIVILEGES ON easydb.* FROM hlwin1",
        "GRANT SELECT, UPDATE ON easydb.hl_a TO hlwin1",
        "REVOKE UPDATE ON easydb.* FROM hlwin1",
    )
    assert grants_of(admin, "hlwin1") == [usage(to), f"GRANT SELECT ON `easydb`.`hl_a` TO {to}"]
    ok(admin, "REVOKE SELECT ON easydb.* FROM hlwin1")
    assert grants_of(admin, "hlwin1") == [usage(to)]
    assert err(admin, "REVOKE SELECT ON easydb.* FROM hlwin1") == no_such_grant("hlwin1")


def test_grant_identified_by_creates_or_changes_the_password(proxy: ProxyEnv, admin: Conn) -> None:
    ok(admin, "GRANT SELECT ON easydb.* TO gid1@'%' IDENTIFIED BY 'First#pass1'")
    proxy.connect(user="gid1", password="First#pass1").close()
    ok(admin, "GRANT INSERT ON easydb.* TO gid1@'%' IDENTIFIED BY 'Second#pass1'")
    proxy.connect(user="gid1", password="Second#pass1").close()
    assert login_error(proxy, user="gid1", password="First#pass1") == access_denied("gid1")
    assert grants_of(admin, "gid1")[1] == "GRANT SELECT, INSERT ON `easydb`.* TO 'gid1'@'%'"


def test_grant_to_missing_account_without_password_5104(proxy: ProxyEnv, admin: Conn) -> None:
    before = version(proxy)
    assert err(admin, "GRANT SELECT ON easydb.* TO gmiss1") == user_not_exists("gmiss1")
    assert err(admin, "GRANT SELECT ON easydb.* TO gmiss1@'10.%'") == user_not_exists("gmiss1")
    assert version(proxy) == before


def test_granting_what_is_held_changes_nothing(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS idem_t (id INT)",
        "GRANT SELECT, INSERT ON easydb.* TO idem1 IDENTIFIED BY 'Idem#pass1'",
        "GRANT UPDATE ON easydb.idem_t TO idem1",
    )
    expected = grants_of(admin, "idem1")
    before, audits = version(proxy), len(proxy.catalog().audit())
    ok(
        admin,
        "GRANT SELECT, INSERT ON easydb.* TO idem1",
        "GRANT INSERT ON easydb.* TO idem1",
        "GRANT UPDATE, SELECT ON easydb.idem_t TO idem1",
        "GRANT SELECT ON EASYDB.* TO idem1",
    )
    assert grants_of(admin, "idem1") == expected
    assert version(proxy) == before
    assert len(proxy.catalog().audit()) == audits


def test_database_and_table_names_are_case_insensitive(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS ci_t (id INT)",
        "GRANT SELECT ON EasyDB.* TO cins1 IDENTIFIED BY 'Case#pass1'",
        "GRANT INSERT ON EASYDB.ci_t TO cins1",
    )
    assert grants_of(admin, "cins1") == [
        usage("'cins1'@'%'"),
        "GRANT SELECT ON `easydb`.* TO 'cins1'@'%'",
        "GRANT INSERT ON `easydb`.`ci_t` TO 'cins1'@'%'",
    ]
    ok(admin, "REVOKE INSERT ON easydb.CI_T FROM cins1", "REVOKE SELECT ON EASYDB.* FROM cins1")
    assert grants_of(admin, "cins1") == [usage("'cins1'@'%'")]


# ------------------------------------------------------------------ all or nothing, errors


def test_multi_account_statements_are_all_or_nothing(
    proxy: ProxyEnv, admin: Conn, otheradmin: Conn
) -> None:
    ok(
        admin,
        "CREATE USER aonold1 IDENTIFIED BY 'Aon#pass1', aonold2 IDENTIFIED BY 'Aon#pass2'",
        "GRANT SELECT ON easydb.* TO aonold1",
    )
    ok(otheradmin, "GRANT SELECT ON otherdb.* TO aonold2")  # nothing on easydb
    before = version(proxy)
    failing = [
        (
            "CREATE USER aonnew1 IDENTIFIED BY 'Aon#pass3', aonold1 IDENTIFIED BY 'Aon#pass4'",
            (1396, "Operation CREATE USER failed for 'aonold1'@'%'"),
        ),
        (
            "CREATE USER aonold1, aonnew1, aonold2",
            (1396, "Operation CREATE USER failed for 'aonold1'@'%','aonold2'@'%'"),
        ),
        ("CREATE USER aonnew1, aonnew2@'localhost'", INVALID_HOST),
        (
            "CREATE USER aonnew1 IDENTIFIED BY 'Aon#pass3', aonnew2 IDENTIFIED BY 'bad'",
            INVALID_PASSWORD,
        ),
        ("CREATE USER aonnew1, aon_new2", INVALID_USERNAME),
        ("DROP USER aonold1, aonmiss1", (1396, "Operation DROP USER failed for 'aonmiss1'@'%'")),
        (
            "DROP USER aonmiss1, aonold1, aonmiss2@'10.%'",
            (1396, "Operation DROP USER failed for 'aonmiss1'@'%','aonmiss2'@'10.%'"),
        ),
        (
            "GRANT INSERT ON easydb.* TO aonnew1 IDENTIFIED BY 'Aon#pass3', aonold2, aonmiss1",
            user_not_exists("aonmiss1"),
        ),
        (
            "GRANT INSERT ON easydb.* TO aonold1, aonnew1 IDENTIFIED BY 'Aon#pass3', "
            "aon_new2 IDENTIFIED BY 'Aon#pass3'",
            INVALID_USERNAME,
        ),
        (
            "GRANT INSERT ON easydb.* TO aonold1, aonnew1 IDENTIFIED BY 'Aon#pass3', easydb_RO",
            system_change("easydb_RO"),
        ),
        ("REVOKE SELECT ON easydb.* FROM aonold1, aonold2", no_such_grant("aonold2")),
        ("REVOKE ALL PRIVILEGES, GRANT OPTION FROM aonold1, aonmiss1", no_such_grant("aonmiss1")),
    ]
    for sql, expected in failing:
        assert err(admin, sql) == expected, sql
        assert version(proxy) == before, sql
    assert not exists(proxy, "aonnew1") and not exists(proxy, "aonnew2", "localhost")
    assert grants_of(admin, "aonold1") == [
        usage("'aonold1'@'%'"),
        "GRANT SELECT ON `easydb`.* TO 'aonold1'@'%'",
    ]
    assert grants_of(admin, "aonold2") == [usage("'aonold2'@'%'")]
    proxy.connect(user="aonold2", password="Aon#pass2", database=None).close()
    # The same statements succeed whole once every account is fine.
    ok(
        admin,
        "GRANT INSERT ON easydb.* TO aonold1, aonold2, aonnew1 IDENTIFIED BY 'Aon#pass3'",
        "DROP USER aonold1, aonold2, aonnew1",
    )
    assert not any(exists(proxy, u) for u in ("aonold1", "aonold2", "aonnew1"))


def test_create_user_if_not_exists_note_3163(proxy: ProxyEnv, admin: Conn) -> None:
    ok(admin, "GRANT SELECT ON easydb.* TO notec1 IDENTIFIED BY 'Note#pass1'")
    with admin.cursor() as cur:
        cur.execute("CREATE USER IF NOT EXISTS notec1 IDENTIFIED BY 'Note#pass9', notec2@'10.%'")
        assert cur.warning_count == 1
        cur.execute("SHOW WARNINGS")
        assert [c[0] for c in cur.description] == ["Level", "Code", "Message"]
        assert cur.fetchall() == (("Note", 3163, "Authorization ID 'notec1'@'%' already exists."),)
        # Two notes, one per existing account.
        cur.execute("CREATE USER IF NOT EXISTS notec2@'10.%', notec1")
        assert cur.warning_count == 2
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == (
            ("Note", 3163, "Authorization ID 'notec2'@'10.%' already exists."),
            ("Note", 3163, "Authorization ID 'notec1'@'%' already exists."),
        )
        # Notes belong to the diagnostics area of the statement that made them, which MariaDB
        # keeps through a statement that names no table and raises nothing ...
        cur.execute("SELECT 1")
        cur.execute("SHOW WARNINGS")
        assert [row[1] for row in cur.fetchall()] == [3163, 3163]
        # ... and replaces for one that names a table.
        cur.execute("SELECT COUNT(*) FROM information_schema.ENGINES")
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == ()
    assert exists(proxy, "notec2", "10.%")
    # The existing account's password is untouched.
    proxy.connect(user="notec1", password="Note#pass1", database=None).close()


def test_drop_user_if_exists_note_3162(proxy: ProxyEnv, admin: Conn) -> None:
    ok(admin, "CREATE USER noted1 IDENTIFIED BY 'Note#pass1'")
    with admin.cursor() as cur:
        cur.execute("DROP USER IF EXISTS noted1, notedmiss1@'30.9.%'")
        assert cur.warning_count == 1
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall() == (
            ("Note", 3162, "Authorization ID 'notedmiss1'@'30.9.%' does not exist."),
        )
    assert not exists(proxy, "noted1")
    assert err(admin, "DROP USER noted1") == (1396, "Operation DROP USER failed for 'noted1'@'%'")


def test_set_password_for_missing_account_1133(proxy: ProxyEnv, admin: Conn) -> None:
    assert err(admin, "SET PASSWORD FOR spmiss1 = PASSWORD('Miss#pass1')") == NO_PASSWORD_ROW
    assert err(admin, "SET PASSWORD FOR spmiss1@'10.%' = 'Miss#pass1'") == NO_PASSWORD_ROW


def test_revoke_errors_1141_and_1147(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS rv_a (id INT)",
        "CREATE TABLE IF NOT EXISTS rv_b (id INT)",
        "GRANT SELECT ON easydb.rv_a TO revk1@'30.9.%' IDENTIFIED BY 'Revk#pass1'",
        "CREATE USER revk2 IDENTIFIED BY 'Revk#pass2'",
        "GRANT SELECT ON easydb.* TO revk3 IDENTIFIED BY 'Revk#pass3'",
    )
    assert err(admin, "REVOKE SELECT ON easydb.* FROM revkmiss1") == no_such_grant("revkmiss1")
    assert err(admin, "REVOKE SELECT ON easydb.rv_a FROM revkmiss1") == no_such_grant("revkmiss1")
    assert err(admin, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM revkmiss1") == no_such_grant(
        "revkmiss1"
    )
    # An existing account with no grant on that database.
    assert err(admin, "REVOKE SELECT ON easydb.* FROM revk2") == no_such_grant("revk2")
    # Table level: no grant on that table (a database-level grant does not count).
    assert err(admin, "REVOKE SELECT ON easydb.rv_b FROM revk1@'30.9.%'") == (
        no_such_table_grant("revk1", "30.9.%", "rv_b")
    )
    assert err(admin, "REVOKE SELECT ON rv_a FROM revk3") == no_such_table_grant(
        "revk3", "%", "rv_a"
    )
    # REVOKE ALL on an account holding nothing here succeeds.
    ok(admin, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM revk2")
    ok(admin, "REVOKE SELECT ON easydb.rv_a FROM revk1@'30.9.%'")
    assert grants_of(admin, "revk1@'30.9.%'") == [usage("'revk1'@'30.9.%'")]


def test_revoke_all_touches_only_the_administrators_database(
    proxy: ProxyEnv, admin: Conn, otheradmin: Conn
) -> None:
    ok(admin, "CREATE TABLE IF NOT EXISTS ra_t (id INT)")
    ok(otheradmin, "CREATE TABLE IF NOT EXISTS ra_o (id INT)")
    ok(
        admin,
        "GRANT SELECT, INSERT ON easydb.* TO revall1 IDENTIFIED BY 'Rall#pass1'",
        "GRANT DELETE ON easydb.ra_t TO revall1",
    )
    ok(
        otheradmin,
        "GRANT SELECT ON otherdb.* TO revall1",
        "GRANT UPDATE ON otherdb.ra_o TO revall1",
    )
    ok(admin, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM revall1")
    assert grants_of(admin, "revall1") == [usage("'revall1'@'%'")]
    with proxy.connect(user="revall1", password="Rall#pass1", database="otherdb") as conn:
        assert show_grants(conn, "SHOW GRANTS")[1] == [
            usage("'revall1'@'%'"),
            "GRANT SELECT ON `otherdb`.* TO 'revall1'@'%'",
            "GRANT UPDATE ON `otherdb`.`ra_o` TO 'revall1'@'%'",
        ]
    ok(otheradmin, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM revall1")
    assert grants_of(otheradmin, "revall1") == [usage("'revall1'@'%'")]


# --------------------------------------------------------------------------------- SHOW GRANTS


def test_show_grants_format(proxy: ProxyEnv, admin: Conn, otheradmin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS sg_b (id INT)",
        "CREATE TABLE IF NOT EXISTS sg_a (id INT)",
    )
    ok(otheradmin, "CREATE TABLE IF NOT EXISTS sg_c (id INT)")
    ok(
        admin,
        "GRANT ALTER, SELECT, DROP, INSERT ON easydb.sg_b TO sgfmt1 IDENTIFIED BY 'Show#pass1'",
        "GRANT INDEX, DELETE, UPDATE, CREATE ON easydb.sg_a TO sgfmt1",
        "GRANT SELECT, ALTER, INSERT, DROP ON easydb.sg_a TO sgfmt1",
        "GRANT INDEX, CREATE ON easydb.* TO sgfmt1",
    )
    ok(otheradmin, "GRANT SELECT ON otherdb.* TO sgfmt1", "GRANT UPDATE ON otherdb.sg_c TO sgfmt1")
    to = "'sgfmt1'@'%'"
    easy_rows = [
        usage(to),
        f"GRANT CREATE, INDEX ON `easydb`.* TO {to}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE, DROP, ALTER ON `easydb`.`sg_a` TO {to}",
        f"GRANT SELECT, INSERT, DROP, ALTER ON `easydb`.`sg_b` TO {to}",
    ]
    # An administrator sees the grants on its own database only.
    assert show_grants(admin, f"SHOW GRANTS FOR {to}") == ("Grants for sgfmt1@%", easy_rows)
    assert show_grants(otheradmin, "SHOW GRANTS FOR sgfmt1") == (
        "Grants for sgfmt1@%",
        [
            usage(to),
            f"GRANT SELECT ON `otherdb`.* TO {to}",
            f"GRANT UPDATE ON `otherdb`.`sg_c` TO {to}",
        ],
    )
    # The account itself sees everything: database rows, then table rows, sorted by name.
    own = (
        "Grants for sgfmt1@%",
        [
            usage(to),
            f"GRANT CREATE, INDEX ON `easydb`.* TO {to}",
            f"GRANT SELECT ON `otherdb`.* TO {to}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE, DROP, ALTER ON `easydb`.`sg_a` TO {to}",
            f"GRANT SELECT, INSERT, DROP, ALTER ON `easydb`.`sg_b` TO {to}",
            f"GRANT UPDATE ON `otherdb`.`sg_c` TO {to}",
        ],
    )
    with proxy.connect(user="sgfmt1", password="Show#pass1") as conn:
        for sql in (
            "SHOW GRANTS",
            "SHOW GRANTS FOR CURRENT_USER()",
            "show grants for current_user",
            "SHOW GRANTS FOR sgfmt1@'%';",
            "SHOW GRANTS FOR 'sgfmt1'",
        ):
            assert show_grants(conn, sql) == own, sql
        # Anyone else's grants are for administrators only.
        assert err(conn, "SHOW GRANTS FOR easydb_RO") == RESTRICTED
        assert err(conn, "SHOW GRANTS FOR sgfmt1@'10.%'") == RESTRICTED
    # All eight at the table level: ALL PRIVILEGES.
    ok(
        admin,
        "REVOKE CREATE, INDEX ON easydb.* FROM sgfmt1",
        "GRANT CREATE, INDEX ON easydb.sg_a TO sgfmt1",
    )
    assert grants_of(admin, to)[1] == f"GRANT ALL PRIVILEGES ON `easydb`.`sg_a` TO {to}"
    assert err(admin, "SHOW GRANTS FOR sgmiss1@'%'") == no_such_grant("sgmiss1")


# ------------------------------------------------------------------------------ own password


def test_anyone_may_set_their_own_password(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "GRANT SELECT ON easydb.* TO selfpw1@'127.0.0.2' IDENTIFIED BY 'First#pw1'",
        "GRANT SELECT ON easydb.* TO selfpwo1 IDENTIFIED BY 'Other#pw1'",
    )
    kw = {"user": "selfpw1", "bind_address": "127.0.0.2"}
    with proxy.connect(password="First#pw1", **kw) as conn:
        for sql, new in (
            ("SET PASSWORD = PASSWORD('Second#pw1')", "Second#pw1"),
            ("SET PASSWORD = 'Third#pw1'", "Third#pw1"),
            ("SET PASSWORD FOR selfpw1@'127.0.0.2' = PASSWORD('Fourth#pw1')", "Fourth#pw1"),
            ("SET PASSWORD FOR CURRENT_USER() = 'Fifth#pw1'", "Fifth#pw1"),
        ):
            ok(conn, sql)
            proxy.connect(password=new, **kw).close()
        assert err(conn, "SET PASSWORD = 'short'") == INVALID_PASSWORD
        # Another account's password is for administrators.
        assert err(conn, "SET PASSWORD FOR selfpwo1 = 'Other#pw2'") == RESTRICTED
        assert err(conn, "SET PASSWORD FOR selfpw1 = 'Other#pw2'") == RESTRICTED  # @'%'
        # The open session carries on.
        assert rows(conn, "SELECT 1") == [(1,)]
    for old in ("First#pw1", "Second#pw1", "Fourth#pw1"):
        assert login_error(proxy, password=old, **kw) == access_denied("selfpw1", "127.0.0.2")
    proxy.connect(password="Fifth#pw1", **kw).close()
    proxy.connect(user="selfpwo1", password="Other#pw1", database=None).close()


def test_alter_user_identified_by_is_set_password_for(proxy: ProxyEnv, admin: Conn) -> None:
    """ALTER USER u IDENTIFIED [WITH plugin] BY 'p': SET PASSWORD FOR u, its rules and errors."""
    ok(
        admin,
        "GRANT SELECT ON easydb.* TO altpw1 IDENTIFIED BY 'First#pw1'",
        "GRANT SELECT ON easydb.* TO altpw2@'127.0.0.2' IDENTIFIED BY 'First#pw1'",
    )
    for sql, new in (
        ("ALTER USER altpw1 IDENTIFIED BY 'Second#pw1'", "Second#pw1"),
        ("ALTER USER altpw1@'%' IDENTIFIED WITH mysql_native_password BY 'Third#pw1'", "Third#pw1"),
        ("ALTER USER 'altpw1' IDENTIFIED WITH caching_sha2_password BY 'Fourth#pw1'", "Fourth#pw1"),
    ):
        ok(admin, sql)
        proxy.connect(user="altpw1", password=new, database=None).close()
        assert login_error(proxy, user="altpw1", password="First#pw1", database=None) == (
            access_denied("altpw1")
        )
    # SET PASSWORD FOR's errors: the password rule, a missing account, a protected one, a
    # caller who is not the administrator, another plugin.
    assert err(admin, "ALTER USER altpw1 IDENTIFIED BY 'short'") == INVALID_PASSWORD
    assert err(admin, "ALTER USER altpwnone IDENTIFIED BY 'Some#pw12'") == NO_PASSWORD_ROW
    assert err(admin, "ALTER USER altpw2 IDENTIFIED BY 'Some#pw12'") == NO_PASSWORD_ROW  # @'%'
    assert err(admin, "ALTER USER easydb_RO IDENTIFIED BY 'Some#pw12'") == system_change(
        "easydb_RO"
    )
    assert err(admin, "ALTER USER altpw1 IDENTIFIED WITH sha256_password BY 'Some#pw12'") == (
        1235,
        "This version of shardgate doesn't yet support 'IDENTIFIED WITH sha256_password'",
    )
    with proxy.connect(user="altpw1", password="Fourth#pw1", database=None) as own:
        assert err(own, "ALTER USER altpw2@'127.0.0.2' IDENTIFIED BY 'Other#pw12'") == RESTRICTED
        ok(own, "ALTER USER CURRENT_USER() IDENTIFIED BY 'Fifth#pw1'")
    proxy.connect(user="altpw1", password="Fifth#pw1", database=None).close()
    proxy.connect(
        user="altpw2", password="First#pw1", database=None, bind_address="127.0.0.2"
    ).close()


def test_flush_privileges_is_ok_and_other_flush_forms_are_refused(
    proxy: ProxyEnv, admin: Conn
) -> None:
    before = version(proxy)
    with proxy.connect(user="easydb_RO", database=None) as reader:
        for conn in (admin, reader):
            ok(conn, "FLUSH PRIVILEGES", "flush local privileges")
            for sql in ("FLUSH TABLES", "FLUSH PRIVILEGES, TABLES", "FLUSH STATUS"):
                assert err(conn, sql) == (
                    1227,
                    "Access denied; you need (at least one of) the RELOAD privilege(s) for this "
                    "operation",
                ), sql
    assert version(proxy) == before


# ------------------------------------------------------------------------------ unparseable


@pytest.mark.parametrize(
    "sql, near",
    [
        ("CREATE USER fwdone1@'%' IDENTIFIED BY", ""),
        ("CREATE OR REPLACE USER fwdtwo1@'%'", "OR REPLACE USER fwdtwo1@'%'"),
        ("GRANT SELECT ON easydb.* TO fwdthree1@'%' IDENTIFIED VIA ed25519", "VIA ed25519"),
        ("SET PASSWORD FOR fwdfour1 = OLD_PASSWORD('abcdef')", "OLD_PASSWORD('abcdef')"),
        ("GRANT SELECT ON easydb.* TO fwdfive1 IDENTIFIED BY 'Fwd#pass1' extra", "extra"),
        ("DROP USER", ""),
        ("REVOKE SELECT ON easydb.* FROM", ""),
        ("SHOW GRANTS FOR", ""),
        (
            "GRANT SELECT ON easydb.* TO fwdsix1@ IDENTIFIED BY 'Fwd#pass1'",
            "@ IDENTIFIED BY 'Fwd#pass1'",
        ),
    ],
)
def test_unparseable_account_statements_1064_and_nothing_forwarded(
    proxy: ProxyEnv, admin: Conn, shard_admin: object, sql: str, near: str
) -> None:
    before = version(proxy)
    # The proxy's own answer, worded as the (MariaDB) shard words it.
    assert err(admin, sql) == (
        1064,
        "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB "
        f"server version for the right syntax to use near '{near}' at line 1",
    )
    assert version(proxy) == before
    names = ("fwdone1", "fwdtwo1", "fwdthree1", "fwdfour1", "fwdfive1", "fwdsix1")
    for shard in proxy.shards:
        with shard_admin(shard) as direct, direct.cursor() as cur:  # type: ignore[operator]
            cur.execute(
                f"SELECT COUNT(*) FROM mysql.user WHERE user IN ({', '.join(['%s'] * len(names))})",
                names,
            )
            assert cur.fetchone() == (0,)
    # The session carries on.
    assert rows(admin, "SELECT 1") == [(1,)]


def test_recognised_but_unsupported_account_statements_1235(proxy: ProxyEnv, admin: Conn) -> None:
    ok(admin, "GRANT SELECT ON easydb.* TO unsup1 IDENTIFIED BY 'Unsup#pass1'")
    for sql, verb in (
        ("RENAME USER unsup1 TO unsup2", "RENAME USER"),
        ("ALTER USER unsup1 IDENTIFIED BY 'Unsup#pass2' PASSWORD EXPIRE", "ALTER USER"),
        ("CREATE ROLE unsuprole", "CREATE ROLE"),
    ):
        assert err(admin, sql) == (
            1235,
            f"This version of shardgate doesn't yet support '{verb}'",
        ), sql
    proxy.connect(user="unsup1", password="Unsup#pass1", database=None).close()


# ------------------------------------------------------------------- privileges take effect


def _bound(proxy: ProxyEnv, user: str, password: str, ip: str = "127.0.0.2") -> Conn:
    return proxy.connect(user=user, password=password, bind_address=ip)


def test_table_grant_takes_effect(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS pe_t1 (id INT PRIMARY KEY)",
        "CREATE TABLE IF NOT EXISTS pe_t2 (id INT PRIMARY KEY)",
        "REPLACE INTO pe_t1 VALUES (1)",
        "CREATE USER petab1@'127.0.0.2' IDENTIFIED BY 'Tab#pass1'",
        "GRANT SELECT ON easydb.pe_t1 TO petab1@'127.0.0.2'",
    )
    # The account matches 127.0.0.2 only.
    assert login_error(proxy, user="petab1", password="Tab#pass1") == access_denied("petab1")
    with _bound(proxy, "petab1", "Tab#pass1") as conn:
        assert rows(conn, "SELECT id FROM pe_t1") == [(1,)]
        assert err(conn, "INSERT INTO pe_t1 VALUES (2)") == denied(
            "INSERT", "petab1", "127.0.0.2", "pe_t1"
        )
        assert err(conn, "SELECT * FROM pe_t2") == denied("SELECT", "petab1", "127.0.0.2", "pe_t2")
        assert err(conn, "SELECT * FROM pe_t1 JOIN pe_t2 USING (id)") == denied(
            "SELECT", "petab1", "127.0.0.2", "pe_t2"
        )
        assert err(conn, "SELECT * FROM pe_t1 WHERE id IN (SELECT id FROM pe_t2)") == denied(
            "SELECT", "petab1", "127.0.0.2", "pe_t2"
        )
        # Now a second grant, seen by the already open connection on its next statement.
        ok(admin, "GRANT INSERT ON pe_t1 TO petab1@'127.0.0.2'")
        ok(conn, "INSERT INTO pe_t1 VALUES (2)")
        assert rows(conn, "SELECT COUNT(*) FROM pe_t1") == [(2,)]
        assert err(conn, "DELETE FROM pe_t1") == denied("DELETE", "petab1", "127.0.0.2", "pe_t1")
    ok(admin, "DELETE FROM pe_t1 WHERE id = 2")


def test_database_grant_allows_exactly_the_granted_verbs(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS pd_t (id INT PRIMARY KEY, v INT)",
        "DELETE FROM pd_t",
        "GRANT SELECT, INSERT ON easydb.* TO pedb1@'127.0.0.%' IDENTIFIED BY 'Db#pass1'",
    )
    ip = "127.0.0.2"
    with _bound(proxy, "pedb1", "Db#pass1", ip) as conn:
        ok(conn, "INSERT INTO pd_t VALUES (1, 1)")
        assert rows(conn, "SELECT v FROM pd_t") == [(1,)]
        ok(conn, "INSERT INTO pd_t SELECT id + 1, v FROM pd_t")
        for sql, priv in (
            ("UPDATE pd_t SET v = 2", "UPDATE"),
            ("DELETE FROM pd_t", "DELETE"),
            ("REPLACE INTO pd_t VALUES (1, 3)", "DELETE"),
            ("INSERT INTO pd_t VALUES (1, 1) ON DUPLICATE KEY UPDATE v = 5", "UPDATE"),
            ("TRUNCATE TABLE pd_t", "DROP"),
            ("DROP TABLE pd_t", "DROP"),
            ("ALTER TABLE pd_t ADD COLUMN w INT", "ALTER"),
            ("CREATE INDEX pd_i ON pd_t (v)", "INDEX"),
            ("CREATE TABLE pd_new (id INT)", "CREATE"),
        ):
            table = "pd_new" if "pd_new" in sql else "pd_t"
            assert err(conn, sql) == denied(priv, "pedb1", ip, table), sql
        ok(admin, "GRANT UPDATE ON easydb.* TO pedb1@'127.0.0.%'")
        ok(conn, "UPDATE pd_t SET v = 7")
        assert rows(conn, "SELECT DISTINCT v FROM pd_t") == [(7,)]
        assert err(conn, "DELETE FROM pd_t") == denied("DELETE", "pedb1", ip, "pd_t")


def test_revoke_takes_effect_on_the_open_connection(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE TABLE IF NOT EXISTS prv_t (id INT)",
        "GRANT SELECT, INSERT ON easydb.prv_t TO perev1@'127.0.0.2' IDENTIFIED BY 'Rev#pass1'",
        "GRANT SELECT ON easydb.* TO perev2@'127.0.0.2' IDENTIFIED BY 'Rev#pass2'",
    )
    with (
        _bound(proxy, "perev1", "Rev#pass1") as conn1,
        _bound(proxy, "perev2", "Rev#pass2") as conn2,
    ):
        ok(admin, "DELETE FROM prv_t")
        ok(conn1, "INSERT INTO prv_t VALUES (1)")
        assert rows(conn1, "SELECT COUNT(*) FROM prv_t") == [(1,)]
        assert rows(conn2, "SELECT COUNT(*) FROM prv_t") == [(1,)]
        ok(admin, "REVOKE INSERT ON easydb.prv_t FROM perev1@'127.0.0.2'")
        assert err(conn1, "INSERT INTO prv_t VALUES (1)") == denied(
            "INSERT", "perev1", "127.0.0.2", "prv_t"
        )
        ok(conn1, "SELECT COUNT(*) FROM prv_t")
        ok(admin, "REVOKE SELECT ON easydb.* FROM perev2@'127.0.0.2'")
        assert err(conn2, "SELECT COUNT(*) FROM prv_t") == denied(
            "SELECT", "perev2", "127.0.0.2", "prv_t"
        )
        ok(admin, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM perev1@'127.0.0.2'")
        assert err(conn1, "SELECT COUNT(*) FROM prv_t") == denied(
            "SELECT", "perev1", "127.0.0.2", "prv_t"
        )
        # No privilege left on easydb: USE easydb is refused too.
        assert err(conn1, "USE easydb") == (
            1044,
            "Access denied for user 'perev1'@'127.0.0.2' to database 'easydb'",
        )


def test_drop_user_takes_effect_on_open_connections_and_logins(
    proxy: ProxyEnv, admin: Conn
) -> None:
    ok(admin, "GRANT SELECT ON easydb.* TO pedrop1@'127.0.0.2' IDENTIFIED BY 'Drop#pass1'")
    conn = _bound(proxy, "pedrop1", "Drop#pass1")
    later = _bound(proxy, "pedrop1", "Drop#pass1")
    try:
        assert rows(conn, "SELECT 1") == [(1,)]
        ok(admin, "DROP USER pedrop1@'127.0.0.2'")
        with pytest.raises(pymysql.err.MySQLError) as info:
            rows(conn, "SELECT 1")
        assert info.value.args[0] == 1045
        # ... and the connection is gone.
        with pytest.raises(pymysql.err.MySQLError):
            rows(conn, "SELECT 1")
        assert login_error(
            proxy, user="pedrop1", password="Drop#pass1", bind_address="127.0.0.2"
        ) == access_denied("pedrop1", "127.0.0.2")
        # Re-creating the name makes a new account, with none of the old grants; a session
        # of the dropped account is not revived by it.
        ok(
            admin,
            "GRANT SELECT ON easydb.* TO pedrop1@'127.0.0.2' IDENTIFIED BY 'Drop#pass1'",
            "REVOKE SELECT ON easydb.* FROM pedrop1@'127.0.0.2'",
        )
        assert grants_of(admin, "pedrop1@'127.0.0.2'") == [usage("'pedrop1'@'127.0.0.2'")]
        with pytest.raises(pymysql.err.MySQLError) as info:
            rows(later, "SELECT 1")
        assert info.value.args[0] == 1045
    finally:
        conn.close()
        later.close()


def test_login_precedence_of_accounts_made_by_sql(proxy: ProxyEnv, admin: Conn) -> None:
    ok(
        admin,
        "CREATE USER sqlprec@'%' IDENTIFIED BY 'Wide#pass1', "
        "sqlprec@'127.0.0.%' IDENTIFIED BY 'Narrow#pass1', "
        "sqlprec@'127.0.0.3' IDENTIFIED BY 'Exact#pass1'",
        "GRANT SELECT ON easydb.* TO sqlprec@'%', sqlprec@'127.0.0.%', sqlprec@'127.0.0.3'",
    )

    def header(ip: str, password: str) -> str:
        with proxy.connect(user="sqlprec", password=password, bind_address=ip) as conn:
            return show_grants(conn, "SHOW GRANTS")[0]

    assert header("127.0.0.3", "Exact#pass1") == "Grants for sqlprec@127.0.0.3"
    assert header("127.0.0.4", "Narrow#pass1") == "Grants for sqlprec@127.0.0.%"
    assert header("127.0.1.4", "Wide#pass1") == "Grants for sqlprec@%"
    # Only the matching account's password works.
    for ip, wrong in (
        ("127.0.0.3", "Narrow#pass1"),
        ("127.0.0.3", "Wide#pass1"),
        ("127.0.0.4", "Exact#pass1"),
        ("127.0.0.4", "Wide#pass1"),
        ("127.0.1.4", "Narrow#pass1"),
    ):
        assert login_error(proxy, user="sqlprec", password=wrong, bind_address=ip) == access_denied(
            "sqlprec", ip
        ), (ip, wrong)
    # A session stays bound to the account it matched, even when a better match appears.
    with proxy.connect(user="sqlprec", password="Narrow#pass1", bind_address="127.0.0.4") as conn:
        ok(
            admin,
            "GRANT SELECT ON easydb.* TO sqlprec@'127.0.0.4' IDENTIFIED BY 'Four#pass1'",
        )
        assert show_grants(conn, "SHOW GRANTS")[0] == "Grants for sqlprec@127.0.0.%"
        assert header("127.0.0.4", "Four#pass1") == "Grants for sqlprec@127.0.0.4"
        ok(admin, "DROP USER sqlprec@'127.0.0.4'")
        assert show_grants(conn, "SHOW GRANTS")[0] == "Grants for sqlprec@127.0.0.%"
    assert header("127.0.0.4", "Narrow#pass1") == "Grants for sqlprec@127.0.0.%"


# ------------------------------------------------------------------------------------ audit


def test_audit_log_records_who_from_where_what_and_never_a_password(
    proxy: ProxyEnv, admin: Conn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = [f"AuditSecret#{i}" for i in range(1, 9)]
    start = len(proxy.catalog().audit())
    ok(
        admin,
        f"CREATE USER audit1@'%' IDENTIFIED BY '{secrets[0]}'",
        f"GRANT SELECT ON easydb.* TO audit1 IDENTIFIED BY '{secrets[1]}', "
        f"audit2@'127.0.0.2' IDENTIFIED BY '{secrets[2]}'",
        f"SET PASSWORD FOR audit2@'127.0.0.2' = PASSWORD('{secrets[3]}')",
    )
    with _bound(proxy, "audit2", secrets[3]) as conn:
        ok(conn, f"SET PASSWORD = '{secrets[4]}'")
    # Failures are not audited, and their messages carry no password either.
    for sql in (
        f"CREATE USER audit1 IDENTIFIED BY '{secrets[5]}'",
        f"GRANT SELECT ON easydb.* TO auditmiss1, audit3 IDENTIFIED BY '{secrets[6]}'",
        "CREATE USER audit4 IDENTIFIED BY 'Bad pass 7'",
    ):
        _, message = err(admin, sql)
        assert not any(s in message for s in [*secrets, "Bad pass 7"]), message
    ok(
        admin,
        "REVOKE SELECT ON easydb.* FROM audit1",
        "DROP USER audit1, audit2@'127.0.0.2'",
    )
    records = proxy.catalog().audit()[start:]
    mine = [
        (r.actor, r.client, r.action)
        for r in records
        if "audit1" in r.action + r.details or "audit2" in r.action + r.details
    ]
    admin_actor = ("'easydb'@'%'", "127.0.0.1")
    assert mine == [
        (*admin_actor, "CREATE USER 'audit1'@'%'"),
        (*admin_actor, "GRANT SELECT ON `easydb`.* TO 'audit1'@'%', 'audit2'@'127.0.0.2'"),
        (*admin_actor, "SET PASSWORD FOR 'audit2'@'127.0.0.2'"),
        ("'audit2'@'127.0.0.2'", "127.0.0.2", "SET PASSWORD"),
        (*admin_actor, "REVOKE SELECT ON `easydb`.* FROM 'audit1'@'%'"),
        (*admin_actor, "DROP USER 'audit1'@'%', 'audit2'@'127.0.0.2'"),
    ]
    grant = next(r for r in records if r.action.startswith("GRANT SELECT ON `easydb`.* TO 'audit1"))
    assert grant.details.splitlines() == [
        "set password of 'audit1'@'%'",
        "create account 'audit2'@'127.0.0.2' owned by easydb",
        "set privileges of 'audit1'@'%' on `easydb`.* to SELECT",
        "set privileges of 'audit2'@'127.0.0.2' on `easydb`.* to SELECT",
    ]
    # No password anywhere: audit records, the catalog files, the proxy's log.
    everything = "\n".join(
        f"{r.actor} {r.client} {r.action} {r.details}" for r in proxy.catalog().audit()
    )
    catalog_file = sqlite_path(proxy.config.catalog.url, proxy.config.base_dir)
    stored = b"".join(
        p.read_bytes() for p in catalog_file.parent.glob(catalog_file.name + "*") if p.is_file()
    )
    for secret in secrets:
        assert secret not in everything
        assert secret.encode() not in stored
        assert secret not in caplog.text


# -------------------------------------------------------------------- other clients: SQLSTATE


@pytest.mark.parametrize("use_pure", CONNECTOR_IMPLEMENTATIONS)
def test_errno_sqlstate_and_notes_through_mysql_connector(proxy: ProxyEnv, use_pure: bool) -> None:
    if use_pure:
        _errno_sqlstate_scenario(proxy, use_pure)
    else:
        run_isolated(_errno_sqlstate_scenario, proxy, use_pure)


def _errno_sqlstate_scenario(proxy: ProxyEnv, use_pure: bool) -> None:
    tag = "p" if use_pure else "c"

    def connect(user: str, database: str | None = "easydb", **kw: object):  # type: ignore[no-untyped-def]
        return mysql.connector.connect(
            host=proxy.host,
            port=proxy.port,
            user=user,
            password=kw.pop("password", PASSWORDS.get(user, "")),
            database=database,
            use_pure=use_pure,
            autocommit=True,
            **kw,
        )

    with pytest.raises(mysql.connector.Error) as info:
        connect("easydb", password="wrong#pass1")
    assert (info.value.errno, info.value.sqlstate, info.value.msg) == (
        1045,
        "28000",
        "Access denied for user 'easydb'@'127.0.0.1' (using password: YES)",
    )

    admin = connect("easydb")
    ro = connect("easydb_RO")
    try:
        acur, rcur = admin.cursor(), ro.cursor()
        acur.execute("CREATE TABLE IF NOT EXISTS sqst_t (id INT)")
        acur.execute(f"CREATE USER IF NOT EXISTS sqst{tag}1 IDENTIFIED BY 'Sqst#pass1'")
        acur.execute(f"GRANT SELECT ON easydb.sqst_t TO sqst{tag}1")
        u = f"sqst{tag}1"
        cases = [
            (rcur, "USE otherdb", 1044, "42000"),
            (rcur, "INSERT INTO sqst_t VALUES (1)", 1142, "42000"),
            (acur, "SELECT * FROM otherdb.sqst_t", 1044, "42000"),
            (rcur, f"DROP USER {u}", 5107, "HY000"),
            (acur, f"CREATE USER {u}", 1396, "HY000"),
            (acur, f"DROP USER sqst{tag}miss", 1396, "HY000"),
            (acur, f"GRANT SELECT ON easydb.sqst_nosuch TO {u}", 1146, "42S02"),
            (acur, f"SET PASSWORD FOR sqst{tag}miss = PASSWORD('Sqst#pass2')", 1133, "42000"),
            (acur, f"REVOKE SELECT ON easydb.* FROM sqst{tag}miss", 1141, "42000"),
            (acur, f"REVOKE INSERT ON easydb.sqst_other FROM {u}", 1147, "42000"),
            (acur, f"GRANT SELECT ON otherdb.* TO {u}", 5106, "HY000"),
            (acur, f"GRANT USAGE ON easydb.* TO {u}", 5101, "HY000"),
            (acur, f"GRANT SELECT ON *.* TO {u}", 5107, "HY000"),
            (acur, f"GRANT SELECT ON easydb.* TO sqst{tag}miss", 5104, "HY000"),
            (acur, f"CREATE USER sqst{tag}2@'localhost'", 5109, "HY000"),
            (acur, "CREATE USER sqs", 5202, "HY000"),
            (acur, f"CREATE USER sqst{tag}3 IDENTIFIED BY 'short'", 5203, "HY000"),
            (acur, "CREATE USER", 1064, "42000"),
        ]
        for cur, sql, errno, sqlstate in cases:
            with pytest.raises(mysql.connector.Error) as info:
                cur.execute(sql)
            assert (info.value.errno, info.value.sqlstate) == (errno, sqlstate), sql
        # Notes: the client fetches them itself with SHOW WARNINGS.
        admin.get_warnings = True
        with warnings.catch_warnings():  # the c-ext also raises each note as a Python warning
            warnings.simplefilter("ignore")
            acur.execute(f"CREATE USER IF NOT EXISTS {u}")
        assert acur.warning_count == 1
        assert [tuple(w) for w in acur.warnings] == [
            ("Note", 3163, f"Authorization ID '{u}'@'%' already exists.")
        ]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            acur.execute(f"DROP USER IF EXISTS sqst{tag}miss@'10.%'")
        assert [tuple(w) for w in acur.warnings] == [
            ("Note", 3162, f"Authorization ID 'sqst{tag}miss'@'10.%' does not exist.")
        ]
        acur.execute(f"SHOW GRANTS FOR {u}")
        assert acur.column_names == (f"Grants for {u}@%",)
        assert acur.fetchall() == [
            (usage(f"'{u}'@'%'"),),
            (f"GRANT SELECT ON `easydb`.`sqst_t` TO '{u}'@'%'",),
        ]
        # The binary protocol is no way around the proxy's own handling: prepared, these are
        # answered by it with the same rules (never relayed), decided at each execution.
        pcur = admin.cursor(prepared=True)
        pcur.execute(f"CREATE USER sqst{tag}prep IDENTIFIED BY 'Sqst#pass1'")
        acur.execute(f"SHOW GRANTS FOR sqst{tag}prep")
        assert acur.fetchall() == [(usage(f"'sqst{tag}prep'@'%'"),)]
        with pytest.raises(mysql.connector.Error) as info:
            pcur.execute(f"CREATE USER sqst{tag}prep IDENTIFIED BY 'Sqst#pass1'")
        assert info.value.errno == 1396
        acur.execute("SHOW GRANTS")
        text = [tuple(row) for row in acur.fetchall()]
        pcur.execute("SHOW GRANTS")
        assert [tuple(row) for row in pcur.fetchall()] == text
        pcur.execute(f"SET PASSWORD FOR {u} = 'Sqst#pass2'")
        with connect(u, password="Sqst#pass2"):  # the password changed
            pass
        pcur.execute(f"DROP USER sqst{tag}prep")
        with pytest.raises(mysql.connector.Error) as info:
            acur.execute(f"SHOW GRANTS FOR sqst{tag}prep")
        assert info.value.errno == 1141
    finally:
        admin.close()
        ro.close()


# ------------------------------------------------------------------------- the mariadb CLI


@pytest.mark.skipif(shutil.which("mariadb") is None, reason="mariadb client not installed")
def test_account_statements_through_the_mariadb_cli(proxy: ProxyEnv) -> None:
    def cli(user: str, password: str, sql: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "mariadb",
                "-h",
                proxy.host,
                "-P",
                str(proxy.port),
                "-u",
                user,
                f"-p{password}",
                "--batch",
                "--skip-ssl",
                *extra,
                "easydb",
                "-e",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )

    out = cli(
        "easydb",
        PASSWORDS["easydb"],
        "CREATE USER IF NOT EXISTS clinote1@'%' IDENTIFIED BY 'Cli#pass1'; "
        "CREATE USER IF NOT EXISTS clinote1@'%'; SHOW WARNINGS; "
        "GRANT SELECT ON easydb.* TO clinote1; SHOW GRANTS FOR clinote1",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "Level\tCode\tMessage",
        "Note\t3163\tAuthorization ID 'clinote1'@'%' already exists.",
        "Grants for clinote1@%",
        "GRANT USAGE ON *.* TO 'clinote1'@'%'",
        "GRANT SELECT ON `easydb`.* TO 'clinote1'@'%'",
    ]
    # --show-warnings: the client asks for the notes itself.
    out = cli("easydb", PASSWORDS["easydb"], "DROP USER IF EXISTS clinomiss1", "--show-warnings")
    assert out.returncode == 0, out.stderr
    assert "Note (Code 3162): Authorization ID 'clinomiss1'@'%' does not exist." in (
        out.stdout + out.stderr
    )
    # Errors: the CLI prints errno, SQLSTATE and text.
    out = cli("clinote1", "Cli#pass1", "SHOW GRANTS; CREATE USER clinote2")
    assert out.returncode != 0
    assert out.stdout.splitlines() == [
        "Grants for clinote1@%",
        "GRANT USAGE ON *.* TO 'clinote1'@'%'",
        "GRANT SELECT ON `easydb`.* TO 'clinote1'@'%'",
    ]
    assert out.stderr.strip().splitlines()[-1] == (
        "ERROR 5107 (HY000) at line 1: ERR-CODE: [TDDL-5107][ERR_OPERATION_NOT_ALLOWED] "
        "The authorization operations is restricted to administrator only."
    )
    out = cli("easydb", PASSWORDS["easydb"], "GRANT SELECT ON otherdb.* TO clinote1")
    assert out.stderr.strip().splitlines()[-1] == (
        "ERROR 5106 (HY000) at line 1: ERR-CODE: [TDDL-5106][ERR_NO_ACCESS_TO_DATABASE] "
        "Granting privileges to database 'otherdb' is not allowed. "
        "User easydb@'%' can only access database 'easydb'."
    )
    out = cli("clinote1", "wrong#pass1", "SELECT 1")
    assert out.returncode != 0
    assert (
        "ERROR 1045 (28000): Access denied for user 'clinote1'@'127.0.0.1' (using password: YES)"
        in out.stderr
    )


def test_concurrent_account_statements_all_succeed(proxy: ProxyEnv) -> None:
    """Many sessions changing unrelated accounts at once: each statement is applied exactly
    once, none fails with a spurious 1213 (writers of one proxy take turns on the catalog)."""
    sessions, per_session = 8, 2
    errors: list[object] = []
    start_version = version(proxy)

    def worker(n: int) -> None:
        try:
            with proxy.connect() as conn, conn.cursor() as cur:
                for i in range(per_session):
                    cur.execute(
                        f"GRANT SELECT ON easydb.* TO conc{n}x{i} IDENTIFIED BY 'Conc#pass1', "
                        f"conc{n}y{i}@'10.%' IDENTIFIED BY 'Conc#pass2'"
                    )
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert version(proxy) - start_version >= sessions * per_session
    snapshot = proxy.server.ctx.catalog.snapshot()
    for n in range(sessions):
        for i in range(per_session):
            for user, host in ((f"conc{n}x{i}", "%"), (f"conc{n}y{i}", "10.%")):
                account = snapshot.find_account(user, host)
                assert account is not None, (user, host)
                assert snapshot.privileges(account.id, "easydb") == Priv.SELECT


def test_notes_of_an_account_statement_have_mariadbs_columns(proxy: ProxyEnv) -> None:
    """SHOW WARNINGS / SHOW COUNT(*) WARNINGS answered from the proxy's own notes (3163):
    MariaDB's column definitions byte for byte -- as MariaDB's own CREATE USER IF NOT EXISTS
    note (1973) is shown by the shard -- in the client's character set."""
    home = proxy.shards[0]
    create = "CREATE USER IF NOT EXISTS notecols@'%' IDENTIFIED BY 'Cols#pass1'"
    ours = BinaryClient(proxy.port, "easydb", PASSWORDS["easydb"], "easydb")
    theirs = BinaryClient(home.port, home.user, home.password, "easydb")
    try:
        for names in ("utf8mb4", "latin1"):
            answers = []
            for client in (ours, theirs):
                client.query_raw(f"SET NAMES {names}")
                client.query_raw(create)
                client.query_raw(create)
                shown = client.query_raw("SHOW WARNINGS")
                counted = client.query_raw("SHOW COUNT(*) WARNINGS")
                answers.append((shown[:4], counted))
            assert answers[0] == answers[1], names
    finally:
        ours.query_raw("DROP USER IF EXISTS notecols@'%'")
        theirs.query_raw("DROP USER IF EXISTS notecols@'%'")
        ours.close()
        theirs.close()
