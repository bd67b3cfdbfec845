"""Tests for proxy.sql.account_grammar: account statements -> frozen values.

The first table holds every example statement of seed 003 (PolarDB-X 1.0 account and permission
system), copied exactly.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auth.errors import SqlError
from proxy.sql.account_grammar import (
    AccountStatement,
    AlterUser,
    CreateUser,
    CurrentUser,
    DiscardOldPassword,
    DropUser,
    FlushPrivileges,
    Grant,
    PrivItem,
    PrivLevel,
    Revoke,
    RevokeAll,
    SetPassword,
    ShowGrants,
    UnsupportedAccountStatement,
    UserRef,
    UserSpec,
    parse_account_statement,
)
from proxy.sql.lexer import LexMode, ServerFlavor

MARIADB = ServerFlavor(101119, True)  # MariaDB 10.11.19, the shards' server
ANSI = LexMode(ansi_quotes=True)
NOBS = LexMode(no_backslash_escapes=True)


def U(user: str, host: str = "%") -> UserRef:
    return UserRef(user, host)


def S(user: str, host: str = "%", password: str | None = None) -> UserSpec:
    return UserSpec(UserRef(user, host), password)


def P(*names: str) -> tuple[PrivItem, ...]:
    return tuple(PrivItem(name) for name in names)


ALL = P("ALL")
DB_STAR = PrivLevel("easydb", None)


def db(name: str) -> PrivLevel:
    return PrivLevel(name, None)


def tbl(database: str | None, table: str) -> PrivLevel:
    return PrivLevel(database, table)


STAR = PrivLevel(None, None)
GLOBAL = PrivLevel(None, None, is_global=True)


def grant(
    privs: tuple[PrivItem, ...],
    level: PrivLevel,
    *users: UserSpec,
    wgo: bool = False,
    routine: bool = False,
) -> Grant:
    return Grant(privs, level, users, wgo, routine)


def revoke(
    privs: tuple[PrivItem, ...], level: PrivLevel, *users: UserRef, routine: bool = False
) -> Revoke:
    return Revoke(privs, level, users, routine)


def assert_parse_error(sql: str) -> SqlError:
    with pytest.raises(SqlError) as info:
        parse_account_statement(sql)
    err = info.value
    assert (err.errno, err.sqlstate) == (1064, "42000"), err
    assert err.message.startswith("You have an error in your SQL syntax;"), err
    return err


def assert_not_supported(sql: str) -> SqlError:
    with pytest.raises(SqlError) as info:
        parse_account_statement(sql)
    err = info.value
    assert (err.errno, err.sqlstate) == (1235, "42000"), err
    return err


# ------------------------------------------------------------------ seed 003 examples, exactly

SEED_EXAMPLES: list[tuple[str, AccountStatement]] = [
    (
        "CREATE USER lily@30.9.73.96 IDENTIFIED BY '123456';",
        CreateUser((S("lily", "30.9.73.96", "123456"),), False),
    ),
    ("CREATE USER david@'%';", CreateUser((S("david", "%"),), False)),
    ("DROP USER lily@30.9.73.96;", DropUser((U("lily", "30.9.73.96"),), False)),
    (
        "SET PASSWORD FOR lily@30.9.73.96 = PASSWORD('123456');",
        SetPassword(U("lily", "30.9.73.96"), "123456"),
    ),
    (
        "-- Two-step: create account, then grant\n"
        "CREATE USER david@'%' IDENTIFIED BY 'your#password';",
        CreateUser((S("david", "%", "your#password"),), False),
    ),
    (
        "CREATE USER david@'%' IDENTIFIED BY 'your#password';",
        CreateUser((S("david", "%", "your#password"),), False),
    ),
    ("GRANT ALL PRIVILEGES ON easydb.* TO david@'%';", grant(ALL, DB_STAR, S("david"))),
    (
        "-- One-step: create account and grant together\n"
        "GRANT ALL PRIVILEGES ON easydb.* TO david@'%' IDENTIFIED BY 'your#password';",
        grant(ALL, DB_STAR, S("david", "%", "your#password")),
    ),
    (
        "GRANT ALL PRIVILEGES ON easydb.* TO david@'%' IDENTIFIED BY 'your#password';",
        grant(ALL, DB_STAR, S("david", "%", "your#password")),
    ),
    (
        "GRANT ALL PRIVILEGES ON easydb.employees TO hanson@'%'\nIDENTIFIED BY 'your#password';",
        grant(ALL, tbl("easydb", "employees"), S("hanson", "%", "your#password")),
    ),
    (
        "GRANT INSERT, SELECT ON easydb.emp TO hanson@'192.168.3.10'\n"
        "IDENTIFIED BY 'your#password';",
        grant(
            P("INSERT", "SELECT"),
            tbl("easydb", "emp"),
            S("hanson", "192.168.3.10", "your#password"),
        ),
    ),
    (
        "GRANT SELECT ON easydb.* TO actro@'%' IDENTIFIED BY 'your#password';",
        grant(P("SELECT"), DB_STAR, S("actro", "%", "your#password")),
    ),
    (
        "REVOKE CREATE, DROP, INDEX ON easydb.emp FROM hanson@'%';",
        revoke(P("CREATE", "DROP", "INDEX"), tbl("easydb", "emp"), U("hanson")),
    ),
    (
        "REVOKE ALL PRIVILEGES, GRANT OPTION FROM lily@30.9.73.96;",
        RevokeAll((U("lily", "30.9.73.96"),)),
    ),
    ("SHOW GRANTS FOR actro@'%';", ShowGrants(U("actro"))),
    # Syntax lines and account names the seed mentions.
    ("SHOW GRANTS;", ShowGrants(None)),
    ("SHOW GRANTS FOR lily@'30.9.%.%';", ShowGrants(U("lily", "30.9.%.%"))),
    ("DROP USER lily@30.9.73.100;", DropUser((U("lily", "30.9.73.100"),), False)),
    ("SHOW GRANTS FOR david@'30.9.12_.xxx';", ShowGrants(U("david", "30.9.12_.xxx"))),
    ("SHOW GRANTS FOR david@'30.9.1%.234';", ShowGrants(U("david", "30.9.1%.234"))),
    (
        "GRANT SELECT ON easydb.* TO new_user@'%';",
        grant(P("SELECT"), DB_STAR, S("new_user")),
    ),
    ("DROP USER easydb_RO;", DropUser((U("easydb_RO"),), False)),
]


@pytest.mark.parametrize(("sql", "expected"), SEED_EXAMPLES)
def test_seed_examples(sql: str, expected: AccountStatement) -> None:
    assert parse_account_statement(sql) == expected


# ------------------------------------------------------------------ more valid statements

VALID: list[tuple[str, AccountStatement]] = [
    # CREATE USER: several accounts, quoting, escapes, case, comments.
    (
        "create user lily@30.9.73.96 identified by '123456'",
        CreateUser((S("lily", "30.9.73.96", "123456"),), False),
    ),
    ("CrEaTe UsEr Lily", CreateUser((S("Lily"),), False)),
    (
        "CREATE USER IF NOT EXISTS u1@'%', u2@'10.0.0.%' IDENTIFIED BY \"pw\", `u3`",
        CreateUser((S("u1"), S("u2", "10.0.0.%", "pw"), S("u3")), True),
    ),
    (
        "CREATE USER 'da''vid'@'%' IDENTIFIED BY 'a\\'b'",
        CreateUser((S("da'vid", "%", "a'b"),), False),
    ),
    ('CREATE USER "x"@"30.9.%.%"', CreateUser((S("x", "30.9.%.%"),), False)),
    ('CREATE USER "a""b"@"h" IDENTIFIED BY "p\\"q"', CreateUser((S('a"b', "h", 'p"q'),), False)),
    ("CREATE USER `na``me`@`%`", CreateUser((S("na`me", "%"),), False)),
    ("CREATE USER lily @'1.2.3.4'", CreateUser((S("lily", "1.2.3.4"),), False)),
    ("CREATE USER lily @localhost", CreateUser((S("lily", "localhost"),), False)),
    ("CREATE USER 'lily' @'1.2.3.4'", CreateUser((S("lily", "1.2.3.4"),), False)),
    ("CREATE USER lily@localhost", CreateUser((S("lily", "localhost"),), False)),
    ("CREATE USER lily@h.x_y$z", CreateUser((S("lily", "h.x_y$z"),), False)),
    ("CREATE USER lily@`::1`", CreateUser((S("lily", "::1"),), False)),
    ("CREATE USER lily@'%' IDENTIFIED BY ''", CreateUser((S("lily", "%", ""),), False)),
    ("CREATE USER ''@'%'", CreateUser((S("", "%"),), False)),
    (
        "CREATE USER u IDENTIFIED BY 'a\\nb\\\\c\\%d\\_e\\zf\\0'",
        CreateUser((S("u", "%", "a\nb\\c\\%d\\_ezf\0"),), False),
    ),
    (
        "CREATE USER u IDENTIFIED BY 'p#w-- /*x*/;'",
        CreateUser((S("u", "%", "p#w-- /*x*/;"),), False),
    ),
    (
        "CREATE /* c */ USER -- c\n u # c\n IDENTIFIED/**/BY\t'x' ; -- done",
        CreateUser((S("u", "%", "x"),), False),
    ),
    ("CREATE USER usér", CreateUser((S("usér"),), False)),
    ("CREATE USER a$b, _x, `1abc`", CreateUser((S("a$b"), S("_x"), S("1abc")), False)),
    ("CREATE USER user, grants, role", CreateUser((S("user"), S("grants"), S("role")), False)),
    ("CREATE\r\nUSER\r\nu\r\n", CreateUser((S("u"),), False)),
    # DROP USER
    (
        "DROP USER IF EXISTS a, b@'h', 'c'@\"d\"",
        DropUser((U("a"), U("b", "h"), U("c", "d")), True),
    ),
    (
        "drop user lily@30.9.73.96, lily@30.9.73.100",
        DropUser((U("lily", "30.9.73.96"), U("lily", "30.9.73.100")), False),
    ),
    # SET PASSWORD
    ("SET PASSWORD = PASSWORD('abc123')", SetPassword(None, "abc123")),
    ("SET PASSWORD = 'abc123';", SetPassword(None, "abc123")),
    ("SET PASSWORD FOR u = 'x'", SetPassword(U("u"), "x")),
    ("SET PASSWORD FOR CURRENT_USER() = 'x'", SetPassword(None, "x")),
    ("SET PASSWORD FOR current_user = PASSWORD('x')", SetPassword(None, "x")),
    ("SET PASSWORD FOR u@'%' := \"x\"", SetPassword(U("u"), "x")),
    ("set password for 'u'@'h'=password ( 'x' )", SetPassword(U("u", "h"), "x")),
    # GRANT
    (
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON easydb.* TO a@'%', b",
        grant(
            P("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "INDEX", "ALTER"),
            DB_STAR,
            S("a"),
            S("b"),
        ),
    ),
    (
        "GRANT CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE TEMPORARY TABLES, "
        "LOCK TABLES, EXECUTE, EVENT, TRIGGER, REFERENCES ON db.* TO u",
        grant(
            P(
                "CREATE VIEW",
                "SHOW VIEW",
                "CREATE ROUTINE",
                "ALTER ROUTINE",
                "CREATE TEMPORARY TABLES",
                "LOCK TABLES",
                "EXECUTE",
                "EVENT",
                "TRIGGER",
                "REFERENCES",
            ),
            db("db"),
            S("u"),
        ),
    ),
    (
        "grant replication slave, Replication Client, create user, show databases, super, "
        "process, reload, file, shutdown, usage, create tablespace, create role, drop role "
        "on *.* to u",
        grant(
            P(
                "REPLICATION SLAVE",
                "REPLICATION CLIENT",
                "CREATE USER",
                "SHOW DATABASES",
                "SUPER",
                "PROCESS",
                "RELOAD",
                "FILE",
                "SHUTDOWN",
                "USAGE",
                "CREATE TABLESPACE",
                "CREATE ROLE",
                "DROP ROLE",
            ),
            GLOBAL,
            S("u"),
        ),
    ),
    (
        "GRANT CREATE  \n TEMPORARY /* x */ TABLES ON db.* TO u",
        grant(P("CREATE TEMPORARY TABLES"), db("db"), S("u")),
    ),
    ("GRANT GRANT OPTION ON db.* TO u", grant(P("GRANT OPTION"), db("db"), S("u"))),
    ("GRANT ALL ON * TO u", grant(ALL, STAR, S("u"))),
    ("GRANT ALL ON *.* TO u", grant(ALL, GLOBAL, S("u"))),
    ("GRANT ALL ON * . * TO u", grant(ALL, GLOBAL, S("u"))),
    ("GRANT SELECT ON t TO u", grant(P("SELECT"), tbl(None, "t"), S("u"))),
    ("GRANT SELECT ON TABLE db.t TO u", grant(P("SELECT"), tbl("db", "t"), S("u"))),
    ("GRANT SELECT ON table t TO u", grant(P("SELECT"), tbl(None, "t"), S("u"))),
    ("GRANT SELECT ON TABLE db.* TO u", grant(P("SELECT"), db("db"), S("u"))),
    (
        "GRANT EXECUTE ON PROCEDURE db.p TO u",
        grant(P("EXECUTE"), tbl("db", "p"), S("u"), routine=True),
    ),
    (
        "GRANT EXECUTE, ALTER ROUTINE ON function f TO u",
        grant(P("EXECUTE", "ALTER ROUTINE"), tbl(None, "f"), S("u"), routine=True),
    ),
    (
        "GRANT SELECT ON `my db`.`my``t` TO u",
        grant(P("SELECT"), tbl("my db", "my`t"), S("u")),
    ),
    ("GRANT SELECT ON `db`.* TO u", grant(P("SELECT"), db("db"), S("u"))),
    ("GRANT SELECT ON db.select TO u", grant(P("SELECT"), tbl("db", "select"), S("u"))),
    ("GRANT SELECT ON DB.T TO U", grant(P("SELECT"), tbl("DB", "T"), S("U"))),
    ("GRANT SELECT ON db . * TO u", grant(P("SELECT"), db("db"), S("u"))),
    (
        "GRANT SELECT (a, `b c`), INSERT (a) , UPDATE, REFERENCES(x) ON db.t TO u",
        grant(
            (
                PrivItem("SELECT", ("a", "b c")),
                PrivItem("INSERT", ("a",)),
                PrivItem("UPDATE"),
                PrivItem("REFERENCES", ("x",)),
            ),
            tbl("db", "t"),
            S("u"),
        ),
    ),
    (
        "GRANT SELECT ON db.t TO u WITH GRANT OPTION",
        grant(P("SELECT"), tbl("db", "t"), S("u"), wgo=True),
    ),
    (
        "GRANT SELECT ON db.t TO u WITH GRANT OPTION GRANT OPTION;",
        grant(P("SELECT"), tbl("db", "t"), S("u"), wgo=True),
    ),
    (
        "GRANT SELECT ON db.t TO u IDENTIFIED BY 'pw' WITH GRANT OPTION",
        grant(P("SELECT"), tbl("db", "t"), S("u", "%", "pw"), wgo=True),
    ),
    ("GRANT BACKUP_ADMIN ON *.* TO u", grant(P("BACKUP_ADMIN"), GLOBAL, S("u"))),
    ("GRANT foo ON db.* TO u", grant(P("FOO"), db("db"), S("u"))),
    ("GRANT foo (c) ON db.t TO u", grant((PrivItem("FOO", ("c",)),), tbl("db", "t"), S("u"))),
    (
        "GRANT SELECT ON db.* TO a IDENTIFIED BY 'p1', b@'h' IDENTIFIED BY 'p2', c",
        grant(P("SELECT"), db("db"), S("a", "%", "p1"), S("b", "h", "p2"), S("c")),
    ),
    ("/*+ hint */ GRANT SELECT ON db.* TO u", grant(P("SELECT"), db("db"), S("u"))),
    ("GRANT SELECT ON db.*/* c */TO u", grant(P("SELECT"), db("db"), S("u"))),
    ("GRANT SELECT ON db.* TO u@h-- c", grant(P("SELECT"), db("db"), S("u", "h"))),
    ("GRANT SELECT ON db.* TO u;;", grant(P("SELECT"), db("db"), S("u"))),
    ("GRANT SELECT ON db.* TO u@h#c", grant(P("SELECT"), db("db"), S("u", "h"))),
    ("GRANT SELECT ON db.* TO u--", grant(P("SELECT"), db("db"), S("u"))),
    # REVOKE
    (
        "REVOKE SELECT ON db.t FROM a, b@'h'",
        revoke(P("SELECT"), tbl("db", "t"), U("a"), U("b", "h")),
    ),
    ("REVOKE ALL ON db.* FROM u", revoke(ALL, db("db"), U("u"))),
    ("REVOKE ALL PRIVILEGES ON db.t FROM u", revoke(ALL, tbl("db", "t"), U("u"))),
    ("REVOKE ALL, GRANT OPTION FROM u, v@'%'", RevokeAll((U("u"), U("v")))),
    ("revoke all privileges , grant option from 'u'@'h'", RevokeAll((U("u", "h"),))),
    ("REVOKE GRANT OPTION ON db.* FROM u", revoke(P("GRANT OPTION"), db("db"), U("u"))),
    ("REVOKE USAGE ON *.* FROM u", revoke(P("USAGE"), GLOBAL, U("u"))),
    (
        "REVOKE EXECUTE ON PROCEDURE db.p FROM u",
        revoke(P("EXECUTE"), tbl("db", "p"), U("u"), routine=True),
    ),
    (
        "REVOKE SELECT (a) ON db.t FROM u",
        revoke((PrivItem("SELECT", ("a",)),), tbl("db", "t"), U("u")),
    ),
    # SHOW GRANTS
    ("SHOW GRANTS", ShowGrants(None)),
    ("show grants ;", ShowGrants(None)),
    ("SHOW GRANTS FOR CURRENT_USER", ShowGrants(CurrentUser())),
    ("SHOW GRANTS FOR CURRENT_USER()", ShowGrants(CurrentUser())),
    ("show grants for current_user ( ) ;", ShowGrants(CurrentUser())),
    ("SHOW GRANTS FOR u", ShowGrants(U("u"))),
    ("SHOW GRANTS FOR `current_user`", ShowGrants(U("current_user"))),
    ("SHOW GRANTS FOR 'u'@'30.9.%.%'", ShowGrants(U("u", "30.9.%.%"))),
]


@pytest.mark.parametrize(("sql", "expected"), VALID)
def test_valid_statements(sql: str, expected: AccountStatement) -> None:
    assert parse_account_statement(sql) == expected


# Executable comments as the shards' MariaDB 10.11.19 reads them (proxy.sql.lexer).
EXECUTABLE: list[tuple[str, AccountStatement]] = [
    ("/*!GRANT SELECT ON db.* TO u*/", grant(P("SELECT"), db("db"), S("u"))),
    ("/*!50100 GRANT*/ SELECT ON db.* TO u", grant(P("SELECT"), db("db"), S("u"))),
    ("/*!50100GRANT SELECT ON db.* TO u */;", grant(P("SELECT"), db("db"), S("u"))),
    (
        "GRANT SELECT ON db.* TO u /*!40101 WITH GRANT OPTION */",
        grant(P("SELECT"), db("db"), S("u"), wgo=True),
    ),
    (
        "GRANT SELECT ON db.* TO u /*!101119 WITH GRANT OPTION */",
        grant(P("SELECT"), db("db"), S("u"), wgo=True),
    ),
    (
        "GRANT SELECT ON db.* TO u /*!101120 WITH GRANT OPTION */",
        grant(P("SELECT"), db("db"), S("u")),
    ),
    (
        "GRANT SELECT ON db.* TO u /*!90000 WITH GRANT OPTION */",
        grant(P("SELECT"), db("db"), S("u")),
    ),
    (
        "GRANT SELECT ON db.* TO u /*!80035 WITH GRANT OPTION */",  # MySQL's range: skipped
        grant(P("SELECT"), db("db"), S("u")),
    ),
    (
        "GRANT SELECT ON db.* TO u /*M!80035 WITH GRANT OPTION */",
        grant(P("SELECT"), db("db"), S("u"), wgo=True),
    ),
    ("/*M!100100 GRANT SELECT ON db.* TO u */", grant(P("SELECT"), db("db"), S("u"))),
    ("/*M! GRANT SELECT ON db.* TO u */", grant(P("SELECT"), db("db"), S("u"))),
    # a comment inside the code: skipped, the code goes on
    ("/*! GRANT /* inner */ SELECT ON db.* TO u */", grant(P("SELECT"), db("db"), S("u"))),
]


@pytest.mark.parametrize(("sql", "expected"), EXECUTABLE)
def test_executable_comments_as_the_server_reads_them(sql: str, expected: AccountStatement) -> None:
    assert parse_account_statement(sql, flavor=MARIADB) == expected


@pytest.mark.parametrize(
    ("sql", "flavor"),
    [
        # whether it is code depends on the server, which is not known
        ("/*!50100 GRANT SELECT ON db.* TO u */", None),
        ("/*M! GRANT SELECT ON db.* TO u */", None),
        # a ';' inside the code of an executable comment (its reading depends on the client)
        ("/*!40000 DROP USER u; */", MARIADB),
        # an executable comment inside the code of one (its "*/" ends both): refused
        ("/*! GRANT /*! SELECT */ ON db.* TO u */", MARIADB),
    ],
)
def test_executable_comments_the_proxy_cannot_be_sure_of(
    sql: str, flavor: ServerFlavor | None
) -> None:
    with pytest.raises(SqlError) as info:
        parse_account_statement(sql, flavor=flavor)
    assert info.value.errno == 1064


# ------------------------------------------------------------------ recognised, refused by caller

UNSUPPORTED: list[tuple[str, str]] = [
    ("RENAME USER a TO b", "RENAME USER"),
    ("rename user a@'%' to b@'%';", "RENAME USER"),
    ("ALTER USER u IDENTIFIED BY 'x' PASSWORD EXPIRE", "ALTER USER"),
    ("ALTER USER USER() IDENTIFIED BY 'x'", "ALTER USER"),
    ("CREATE ROLE r", "CREATE ROLE"),
    ("CREATE ROLE IF NOT EXISTS r1, r2", "CREATE ROLE"),
    ("DROP ROLE r", "DROP ROLE"),
    ("GRANT r1, r2 TO u", "GRANT ROLE"),
    ("GRANT 'r'@'%' TO u@'%', v WITH ADMIN OPTION;", "GRANT ROLE"),
    ("GRANT `r` TO u", "GRANT ROLE"),
    ("REVOKE r FROM u", "REVOKE ROLE"),
    ("REVOKE r1, 'r2'@h FROM u, v", "REVOKE ROLE"),
    ("SET DEFAULT ROLE ALL TO u", "SET DEFAULT ROLE"),
    ("SET ROLE r", "SET ROLE"),
    ("SHOW CREATE USER u", "SHOW CREATE USER"),
    ("GRANT PROXY ON a@'%' TO b WITH GRANT OPTION", "GRANT PROXY"),
    ("REVOKE PROXY ON a FROM b, c", "REVOKE PROXY"),
]


@pytest.mark.parametrize(("sql", "verb"), UNSUPPORTED)
def test_unsupported_statements_are_recognised(sql: str, verb: str) -> None:
    assert parse_account_statement(sql) == UnsupportedAccountStatement(verb)


# ------------------------------------------------------------------ 1235: recognised syntax refused

NOT_SUPPORTED: list[tuple[str, str]] = [
    ("CREATE USER u IDENTIFIED WITH sha256_password BY 'x'", "IDENTIFIED WITH sha256_password"),
    ("CREATE USER u IDENTIFIED WITH caching_sha2_password", "IDENTIFIED WITH a plugin alone"),
    ("CREATE USER u IDENTIFIED WITH mysql_native_password AS '*AB'", "IDENTIFIED WITH ... AS"),
    ("ALTER USER u IDENTIFIED WITH auth_socket", "IDENTIFIED WITH auth_socket"),
    ("ALTER USER u IDENTIFIED BY 'x', v IDENTIFIED BY 'y'", "several accounts"),
    ("ALTER USER u IDENTIFIED BY 'y' REPLACE 'x'", "REPLACE"),
    ("ALTER USER u IDENTIFIED BY RANDOM PASSWORD", "RANDOM PASSWORD"),
    (
        "CREATE USER u IDENTIFIED BY PASSWORD '*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9'",
        "IDENTIFIED BY PASSWORD",
    ),
    ("CREATE USER u IDENTIFIED BY RANDOM PASSWORD", "IDENTIFIED BY RANDOM PASSWORD"),
    ("CREATE USER u PASSWORD EXPIRE", "PASSWORD EXPIRE"),
    ("CREATE USER u IDENTIFIED BY 'x' PASSWORD HISTORY 5", "PASSWORD HISTORY"),
    ("CREATE USER u ACCOUNT LOCK", "ACCOUNT LOCK"),
    ("CREATE USER u WITH MAX_QUERIES_PER_HOUR 5", "WITH MAX_QUERIES_PER_HOUR"),
    ("CREATE USER u REQUIRE SSL", "REQUIRE SSL"),
    ("CREATE USER u DEFAULT ROLE r", "DEFAULT ROLE"),
    ("CREATE USER u COMMENT 'x'", "COMMENT"),
    ("CREATE USER u ATTRIBUTE '{}'", "ATTRIBUTE"),
    ("CREATE USER u FAILED_LOGIN_ATTEMPTS 3", "FAILED_LOGIN_ATTEMPTS"),
    ("CREATE USER u PASSWORD_LOCK_TIME 2", "PASSWORD_LOCK_TIME"),
    ("GRANT SELECT ON db.* TO u IDENTIFIED WITH p", "IDENTIFIED WITH"),
    ("GRANT SELECT ON db.* TO u IDENTIFIED BY PASSWORD '*AB'", "IDENTIFIED BY PASSWORD"),
    ("GRANT SELECT ON db.* TO u REQUIRE SSL", "REQUIRE"),
    ("GRANT SELECT ON db.* TO u WITH MAX_QUERIES_PER_HOUR 2", "WITH MAX_QUERIES_PER_HOUR"),
    ("GRANT SELECT ON db.* TO u WITH GRANT OPTION MAX_UPDATES_PER_HOUR 2", "MAX_UPDATES_PER_HOUR"),
    ("CREATE USER u WITH MAX_USER_CONNECTIONS 2 MAX_CONNECTIONS_PER_HOUR 1", "PER_HOUR"),
    ("ALTER USER u ACCOUNT LOCK", "ACCOUNT LOCK"),
    ("ALTER USER u WITH MAX_QUERIES_PER_HOUR 3", "WITH MAX_QUERIES_PER_HOUR"),
    ("GRANT SELECT ON db.* TO u AS v", "AS"),
    ("SET PASSWORD FOR u TO RANDOM", "TO RANDOM"),
    ("SET PASSWORD = 'x' REPLACE 'y'", "REPLACE"),
    ("DROP USER CURRENT_USER()", "CURRENT_USER"),
    ("CREATE USER CURRENT_USER", "CURRENT_USER"),
    ("GRANT SELECT ON db.* TO CURRENT_USER", "CURRENT_USER"),
    ("REVOKE SELECT ON db.* FROM CURRENT_USER()", "CURRENT_USER"),
]


@pytest.mark.parametrize(("sql", "what"), NOT_SUPPORTED)
def test_recognised_but_not_supported(sql: str, what: str) -> None:
    err = assert_not_supported(sql)
    assert what in err.message


# ------------------------------------------------------------------ 1064: malformed

MALFORMED: list[str] = [
    # empty / not an account statement
    "",
    "   \n ",
    "/* only a comment */",
    "-- GRANT SELECT ON db.* TO u",
    "# GRANT SELECT ON db.* TO u",
    ";",
    "SELECT 1",
    "USE db",
    "(GRANT SELECT ON db.* TO u)",
    "RENAME TABLE a TO b",
    "ALTER TABLE t ADD c INT",
    "SHOW TABLES",
    "SET autocommit = 1",
    "SET @x = 1",
    # CREATE USER
    "CREATE",
    "CREATE USER",
    "CREATE USER ;",
    "CREATE TABLE t (a int)",
    "CREATE USER u,",
    "CREATE USER u,,v",
    "CREATE USER u u2",
    "CREATE USER u IDENTIFIED",
    "CREATE USER u IDENTIFIED BY",
    "CREATE USER u IDENTIFIED BY 123456",
    "CREATE USER u IDENTIFIED BY `x`",
    "CREATE USER u IDENTIFIED 'x'",
    "CREATE USER u IDENTIFIED BY 'x' 'y'",
    "CREATE USER u IDENTIFIED BY 'x' AND IDENTIFIED BY 'y'",
    "CREATE USER IF EXISTS u",
    "CREATE USER IF NOT u",
    "CREATE USER IF NOT EXISTS",
    "CREATE USER select",
    "CREATE USER 123",
    "CREATE USER u@",
    "CREATE USER u@ ",
    "CREATE USER u@;",
    "CREATE USER u@@h",
    "CREATE USER u@'h'@'x'",
    "CREATE USER @h",
    "CREATE USER u@h IDENTIFIED BY 'x' garbage",
    "CREATE USER 'unterminated",
    'CREATE USER "unterminated',
    "CREATE USER `unterminated",
    "CREATE USER u IDENTIFIED BY 'abc\\'",
    "CREATE USER u IDENTIFIED BY 'abc\\",
    "CREATE USER u@(h)",
    "CREATE USER u@h.com,",
    # DROP USER
    "DROP",
    "DROP USER",
    "DROP USER IF u",
    "DROP USER IF EXISTS",
    "DROP USER IF NOT EXISTS u",
    "DROP USER u IDENTIFIED BY 'x'",
    "DROP USER u,,v",
    "DROP USER u v",
    "DROP TABLE t",
    "DROP USER u@",
    # SET PASSWORD
    "SET",
    "SET PASSWORD",
    "SET PASSWORD =",
    "SET PASSWORD FOR = 'x'",
    "SET PASSWORD FOR u 'x'",
    "SET PASSWORD FOR u == 'x'",
    "SET PASSWORD FOR u = PASSWORD 'x'",
    "SET PASSWORD FOR u = PASSWORD('x'",
    "SET PASSWORD FOR u = PASSWORD()",
    "SET PASSWORD FOR u = PASSWORD(x)",
    "SET PASSWORD = OLD_PASSWORD('x')",
    "SET PASSWORD = x",
    "SET PASSWORD = 'x', autocommit = 1",
    "SET PASSWORD FOR u@ = 'x'",
    "SET PASSWORD FOR CURRENT_USER( = 'x'",
    # GRANT
    "GRANT",
    "GRANT SELECT",
    "GRANT SELECT ON",
    "GRANT SELECT ON db.*",
    "GRANT SELECT ON db.* TO",
    "GRANT SELECT ON db.* TO u,",
    "GRANT SELECT db.* TO u",
    "GRANT SELECT ON db.* u",
    "GRANT SELECT ON db.* FROM u",
    "GRANT ON db.* TO u",
    "GRANT SELECT, ON db.* TO u",
    "GRANT SELECT,, INSERT ON db.* TO u",
    "GRANT , SELECT ON db.* TO u",
    "GRANT ALL, SELECT ON db.* TO u",
    "GRANT SELECT, ALL ON db.* TO u",
    "GRANT ALL PRIVILEGES PRIVILEGES ON db.* TO u",
    "GRANT ALL (a) ON db.t TO u",
    "GRANT SHOW ON db.* TO u",
    "GRANT LOCK ON db.* TO u",
    "GRANT GRANT ON db.* TO u",
    "GRANT REPLICATION ON *.* TO u",
    "GRANT CREATE TEMPORARY ON db.* TO u",
    "GRANT FOO BAR ON db.* TO u",
    "GRANT SELECT INSERT ON db.* TO u",
    "GRANT SELECT () ON db.t TO u",
    "GRANT SELECT (a ON db.t TO u",
    "GRANT SELECT (a,) ON db.t TO u",
    "GRANT SELECT ('a') ON db.t TO u",
    "GRANT DELETE (a) ON db.t TO u",
    "GRANT SELECT ON db.*.* TO u",
    "GRANT SELECT ON db.t.c TO u",
    "GRANT SELECT ON *.db TO u",
    "GRANT SELECT ON *. TO u",
    "GRANT SELECT ON db. TO u",
    "GRANT SELECT ON .t TO u",
    "GRANT SELECT ON 'db'.* TO u",
    'GRANT SELECT ON "db".* TO u',
    "GRANT SELECT ON ``.* TO u",
    "GRANT SELECT ON db.`` TO u",
    "GRANT SELECT ON select.* TO u",
    "GRANT SELECT ON TABLE TO u",
    "GRANT SELECT ON PROCEDURE TO u",
    "GRANT SELECT ON TABLE TABLE t TO u",
    "GRANT SELECT ON db.* TO u WITH",
    "GRANT SELECT ON db.* TO u WITH GRANT",
    "GRANT SELECT ON db.* TO u WITH ADMIN OPTION",
    "GRANT SELECT ON db.* TO u GRANT OPTION",
    "GRANT SELECT ON db.* TO u; DROP TABLE x",
    # hosts are MariaDB's host names: the name right after '@' ([0-9A-Za-z._$]), or quoted
    "CREATE USER lily @ '1.2.3.4'",
    "CREATE USER lily@ 1.2.3.4",
    "CREATE USER lily@%",
    "CREATE USER lily@30.9.%.%",
    "CREATE USER lily@::1",
    "CREATE USER lily@fe80::1:a-b",
    "GRANT SELECT ON db.* TO u@h--x",
    "GRANT SELECT ON db.* TO u; GRANT SELECT ON db.* TO v",
    "GRANT SELECT ON db.* TO u IDENTIFIED BY 'x' IDENTIFIED BY 'y'",
    "GRANT SELECT TO u",
    "GRANT ALL PRIVILEGES TO u",
    "GRANT SELECT, r TO u",
    "GRANT 'r' ON db.* TO u",
    "GRANT r@h ON db.* TO u",
    "GRANT r (a) TO u",
    "GRANT PROXY, SELECT ON db.* TO u",
    "GRANT SELECT, PROXY ON db.* TO u",
    "GRANT PROXY ON a TO",
    "GRANT PROXY ON db.* TO u",
    "GRANT r TO u WITH GRANT OPTION",
    "GRANT r TO u IDENTIFIED BY 'x'",
    "GRANT r TO",
    "GRANT SELECT ON db.* TO u */",
    "GRANT SELECT ON db.* TO u /* unterminated",
    "/*! GRANT SELECT ON db.* TO u",
    "/*!50100 GRANT SELECT ON db.* TO u",
    "/*! GRANT /*! SELECT */ ON db.* TO u */",
    "/*!90000 GRANT SELECT ON db.* TO u */",
    "/*!50100 GRANT SELECT ON db.*/ TO u",
    "GRANT SELECT ON db.* TO u -- x\n garbage",
    "GRANT SELECT ON db.* TO u@'%' IDENTIFIED BY 'pw' extra",
    "GRANT SELECT ON db.* TO u\x00",
    "GRANT SELECT ON db.* TO u @",
    "GRANT SELECT ON db.* TO u@h@h",
    "GRANT SELECT ON db.* TO 'u'x",
    # REVOKE
    "REVOKE",
    "REVOKE SELECT",
    "REVOKE SELECT ON",
    "REVOKE SELECT ON db.*",
    "REVOKE SELECT ON db.* FROM",
    "REVOKE SELECT ON db.* TO u",
    "REVOKE SELECT db.* FROM u",
    "REVOKE SELECT FROM u",
    "REVOKE ALL PRIVILEGES FROM u",
    "REVOKE ALL FROM lily@30.9.73.96;",
    "REVOKE ALL PRIVILEGES, GRANT OPTION",
    "REVOKE ALL PRIVILEGES, GRANT OPTION FROM",
    "REVOKE ALL PRIVILEGES, GRANT OPTION ON db.* FROM u",
    "REVOKE ALL PRIVILEGES, GRANT FROM u",
    "REVOKE ALL PRIVILEGES, SELECT FROM u",
    "REVOKE ALL PRIVILEGES GRANT OPTION FROM u",
    "REVOKE GRANT OPTION, ALL FROM u",
    "REVOKE GRANT OPTION, ALL PRIVILEGES FROM u",
    "REVOKE ALL PRIVILEGES, GRANT OPTION FROM u IDENTIFIED BY 'x'",
    "REVOKE ALL PRIVILEGES, GRANT OPTION FROM u; DROP TABLE x",
    "REVOKE SELECT ON db.* FROM u WITH GRANT OPTION",
    "REVOKE SELECT ON db.* FROM u IDENTIFIED BY 'x'",
    "REVOKE PROXY ON a TO b",
    # SHOW GRANTS
    "SHOW",
    "SHOW GRANT",
    "SHOW GRANTS FOR",
    "SHOW GRANTS FOR u@",
    "SHOW GRANTS FOR u@'%' USING r",
    "SHOW GRANTS u",
    "SHOW GRANTS FOR u, v",
    "SHOW GRANTS FOR CURRENT_USER(",
    "SHOW GRANTS FOR CURRENT_USER(u)",
    "SHOW GRANTS FOR CURRENT_USER@h",
    "SHOW GRANTS FOR CURRENT_USER()()",
    "SHOW GRANTS FOR select",
]


@pytest.mark.parametrize("sql", MALFORMED)
def test_malformed_statements_raise_1064(sql: str) -> None:
    assert_parse_error(sql)


NEAR: list[tuple[str, str, int]] = [
    ("GRANT SELECT ON db.* TO u; DROP TABLE x", "DROP TABLE x", 1),
    ("GRANT SELECT db.* TO u", "db.* TO u", 1),
    ("GRANT SELECT ON db.* u", "u", 1),
    ("GRANT SELECT TO u", "TO u", 1),
    ("REVOKE ALL PRIVILEGES FROM u@'%'", "FROM u@'%'", 1),
    ("REVOKE ALL PRIVILEGES, GRANT OPTION ON db.* FROM u", "ON db.* FROM u", 1),
    ("CREATE USER u@", "@", 1),
    ("CREATE USER 'abc", "'abc", 1),
    ("CREATE USER u /* never closed", "/* never closed", 1),
    ("GRANT SELECT ON db.*\nTO u\nextra stuff", "extra stuff", 3),
    ("SHOW GRANTS FOR u@'%' USING r", "USING r", 1),
    ("SELECT 1", "SELECT 1", 1),
    ("CREATE TABLE t (a int)", "TABLE t (a int)", 1),
    ("", "", 1),
    ("\n\n", "", 3),
    ("DROP USER u,\n", "", 2),
]


@pytest.mark.parametrize(("sql", "near", "line"), NEAR)
def test_near_text_is_the_rest_of_the_input_from_the_failing_token(
    sql: str, near: str, line: int
) -> None:
    err = assert_parse_error(sql)
    assert err.message.endswith(f"near '{near}' at line {line}"), err.message


def test_near_text_is_cut_to_80_characters() -> None:
    err = assert_parse_error("GRANT SELECT ON db.* TO u " + "x" * 200)
    assert err.message.endswith(f"near '{'x' * 80}' at line 1")


# ------------------------------------------------------------------ values


def test_values_are_frozen_and_hashable() -> None:
    stmt = parse_account_statement("GRANT SELECT (a) ON db.t TO u@'%' IDENTIFIED BY 'x'")
    assert isinstance(stmt, Grant)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stmt.routine = True  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        stmt.users[0].user.host = "h"  # type: ignore[misc]
    assert hash(stmt) == hash(
        parse_account_statement("grant select(a) on db.t to u identified by 'x'")
    )
    assert {CurrentUser(), CurrentUser()} == {CurrentUser()}
    assert PrivLevel(None, None) != PrivLevel(None, None, is_global=True)


# ------------------------------------------------------------------ fuzzing

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _parse_or_sql_error(sql: str) -> None:
    try:
        parse_account_statement(sql)
    except SqlError as err:
        assert err.errno in (1064, 1235), err


@FUZZ
@given(st.text(max_size=200))
def test_random_text_raises_only_sql_error(sql: str) -> None:
    _parse_or_sql_error(sql)


def _words(text: str) -> list[str]:
    return text.split()


VOCAB = [
    *_words(
        "CREATE USER DROP SET PASSWORD FOR GRANT REVOKE SHOW GRANTS ON TO FROM WITH OPTION ALL "
        "PRIVILEGES IDENTIFIED BY IF NOT EXISTS TABLE PROCEDURE FUNCTION SELECT INSERT VIEW "
        "CURRENT_USER ROLE RENAME ALTER ADMIN REQUIRE AS USING TEMPORARY TABLES PROXY RANDOM "
        "u db t "
        "lily easydb"
    ),
    *list(",.*@();=`'\"#-/!%:\\"),
    ":=",
    "'x'",
    '"y"',
    "`z`",
    "'%'",
    "30.9.73.96",
    "/*",
    "*/",
    "/*!",
    "/*!50100",
    "/*M!",
    "-- ",
    "\n",
    "''",
]


@FUZZ
@given(
    st.lists(st.sampled_from(VOCAB), max_size=30),
    st.sampled_from([" ", "", "\n"]),
)
def test_token_soup_raises_only_sql_error(words: list[str], joiner: str) -> None:
    _parse_or_sql_error(joiner.join(words))


@FUZZ
@given(
    st.sampled_from([sql for sql, _ in SEED_EXAMPLES + VALID]),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=200),
            st.integers(min_value=0, max_value=3),
            st.sampled_from(VOCAB),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_mutated_statements_raise_only_sql_error(
    sql: str, edits: list[tuple[int, int, str]]
) -> None:
    for pos, delete, insert in edits:
        pos = min(pos, len(sql))
        sql = sql[:pos] + insert + sql[pos + delete :]
    _parse_or_sql_error(sql)


# Round trip: generate a statement value, render it as SQL with random letter case, quoting,
# whitespace and comments, and parse it back.

_BARE_NAME = r"[qQ][A-Za-z0-9_$]{0,12}"  # never a reserved word, never all digits
_BARE_HOST = r"[0-9A-Za-z._$]+"  # MariaDB's host name after '@'
_NO_NUL = st.characters(blacklist_characters="\x00")  # the lexer refuses NUL in quoted names

names = st.one_of(st.from_regex(_BARE_NAME, fullmatch=True), st.text(_NO_NUL, max_size=10))
hosts = st.one_of(
    st.just("%"),
    st.from_regex(r"[0-9A-Za-z._:%$-]{1,15}", fullmatch=True),
    st.text(_NO_NUL, max_size=10),
)
identifiers = st.one_of(
    st.from_regex(_BARE_NAME, fullmatch=True), st.text(_NO_NUL, min_size=1, max_size=10)
)
passwords = st.text(max_size=16)
user_refs = st.builds(UserRef, names, hosts)
user_specs = st.builds(UserSpec, user_refs, st.one_of(st.none(), passwords))

PRIV_NAMES = [
    "SELECT", "INSERT", "UPDATE", "REFERENCES", "DELETE", "CREATE", "DROP", "ALTER", "INDEX",
    "USAGE", "EXECUTE", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE",
    "CREATE TEMPORARY TABLES", "LOCK TABLES", "REPLICATION SLAVE", "REPLICATION CLIENT",
    "CREATE USER", "GRANT OPTION", "SHOW DATABASES", "EVENT", "TRIGGER", "FILE", "PROCESS",
    "RELOAD", "SHUTDOWN", "SUPER", "CREATE TABLESPACE", "CREATE ROLE", "DROP ROLE", "QQ_ADMIN",
]  # fmt: skip
COLUMN_PRIVS = {"SELECT", "INSERT", "UPDATE", "REFERENCES", "QQ_ADMIN"}


@st.composite
def priv_items(draw: st.DrawFn) -> PrivItem:
    name = draw(st.sampled_from(PRIV_NAMES))
    columns: tuple[str, ...] = ()
    if name in COLUMN_PRIVS:
        columns = tuple(draw(st.lists(identifiers, max_size=3)))
    return PrivItem(name, columns)


privilege_lists = st.one_of(
    st.just((PrivItem("ALL"),)), st.lists(priv_items(), min_size=1, max_size=4).map(tuple)
)
levels = st.one_of(
    st.just(PrivLevel(None, None)),
    st.just(PrivLevel(None, None, is_global=True)),
    st.builds(PrivLevel, identifiers, st.none()),
    st.builds(PrivLevel, identifiers, identifiers),
    st.builds(PrivLevel, st.none(), identifiers),
)


T = TypeVar("T")


def _tuples(elements: st.SearchStrategy[T]) -> st.SearchStrategy[tuple[T, ...]]:
    return st.lists(elements, min_size=1, max_size=3).map(tuple)


statements = st.one_of(
    st.builds(CreateUser, _tuples(user_specs), st.booleans()),
    st.builds(DropUser, _tuples(user_refs), st.booleans()),
    st.builds(SetPassword, st.one_of(st.none(), user_refs), passwords),
    st.builds(Grant, privilege_lists, levels, _tuples(user_specs), st.booleans(), st.booleans()),
    st.builds(Revoke, privilege_lists, levels, _tuples(user_refs), st.booleans()),
    st.builds(RevokeAll, _tuples(user_refs)),
    st.builds(ShowGrants, st.one_of(st.none(), st.just(CurrentUser()), user_refs)),
)

SEPARATORS = [" ", "  ", "\n", "\t", "\r\n", " /* c */ ", "/**/", " -- c\n", " # c\n"]
SEPARATORS_IN_EXEC_COMMENT = [" ", "\n", "\t", "\r\n"]  # no comments inside: the lexer refuses


class _Renderer:
    def __init__(self, rnd: random.Random, separators: list[str]) -> None:
        self.rnd = rnd
        self.separators = separators

    def sep(self) -> str:
        return self.rnd.choice(self.separators)

    def tight(self) -> str:
        """Where a token boundary needs no blank."""
        return self.rnd.choice(["", "", self.sep()])

    def kw(self, words: str) -> str:
        out = []
        for word in words.split():
            out.append("".join(self.rnd.choice((c.lower(), c.upper())) for c in word))
        return self.sep().join(out)

    def string(self, value: str) -> str:
        quote = self.rnd.choice("'\"")
        body = value.replace("\\", "\\\\")
        body = body.replace(quote, self.rnd.choice([quote * 2, "\\" + quote]))
        return quote + body + quote

    def backquoted(self, value: str) -> str:
        return "`" + value.replace("`", "``") + "`"

    def name(self, value: str) -> str:
        if re.fullmatch(_BARE_NAME, value) and self.rnd.random() < 0.6:
            return value
        return self.backquoted(value) if self.rnd.random() < 0.3 else self.string(value)

    def ident(self, value: str) -> str:
        if re.fullmatch(_BARE_NAME, value) and self.rnd.random() < 0.6:
            return value
        return self.backquoted(value)

    def host(self, value: str) -> str:
        if re.fullmatch(_BARE_HOST, value) and self.rnd.random() < 0.5:
            return value
        return self.backquoted(value) if self.rnd.random() < 0.3 else self.string(value)

    def user(self, ref: UserRef) -> str:
        name = self.name(ref.user)
        if ref.host == "%" and self.rnd.random() < 0.3:
            return name
        return name + self.tight() + "@" + self.host(ref.host)  # the host right after @

    def user_spec(self, spec: UserSpec) -> str:
        text = self.user(spec.user)
        if spec.password is not None:
            text += self.sep() + self.kw("IDENTIFIED BY") + self.sep() + self.string(spec.password)
        return text

    def join_list(self, items: list[str]) -> str:
        return "".join(
            (self.tight() + "," + self.tight() if i else "") + item for i, item in enumerate(items)
        )

    def priv(self, item: PrivItem) -> str:
        if item.name == "ALL":
            return self.kw(self.rnd.choice(["ALL", "ALL PRIVILEGES"]))
        text = self.kw(item.name)
        if item.columns:
            columns = self.join_list([self.ident(c) for c in item.columns])
            text += self.tight() + "(" + self.tight() + columns + self.tight() + ")"
        return text

    def level(self, level: PrivLevel, routine: bool) -> str:
        if routine:
            prefix = self.kw(self.rnd.choice(["PROCEDURE", "FUNCTION"])) + self.sep()
        else:
            prefix = self.rnd.choice(["", self.kw("TABLE") + self.sep()])
        dot = self.tight() + "." + self.tight()
        if level.is_global:
            body = "*" + dot + "*"
        elif level.db is None and level.table is None:
            body = "*"
        elif level.db is None:
            assert level.table is not None
            body = self.ident(level.table)
        elif level.table is None:
            body = self.ident(level.db) + dot + "*"
        else:
            body = self.ident(level.db) + dot + self.ident(level.table)
        return prefix + body

    def statement(self, stmt: AccountStatement) -> str:
        s = self.sep
        if isinstance(stmt, CreateUser):
            head = self.kw("CREATE USER") + s()
            if stmt.if_not_exists:
                head += self.kw("IF NOT EXISTS") + s()
            return head + self.join_list([self.user_spec(u) for u in stmt.users])
        if isinstance(stmt, DropUser):
            head = self.kw("DROP USER") + s()
            if stmt.if_exists:
                head += self.kw("IF EXISTS") + s()
            return head + self.join_list([self.user(u) for u in stmt.users])
        if isinstance(stmt, SetPassword):
            head = self.kw("SET PASSWORD")
            if stmt.user is not None:
                head += s() + self.kw("FOR") + s() + self.user(stmt.user)
            elif self.rnd.random() < 0.3:
                head += s() + self.kw("FOR") + s() + self.kw("CURRENT_USER")
                head += self.rnd.choice(["", "()", self.tight() + "(" + self.tight() + ")"])
            head += s() + self.rnd.choice(["=", ":="]) + s()
            if self.rnd.random() < 0.5:
                pw = self.tight() + "(" + self.tight() + self.string(stmt.password) + self.tight()
                return head + self.kw("PASSWORD") + pw + ")"
            return head + self.string(stmt.password)
        if isinstance(stmt, Grant):
            text = (
                self.kw("GRANT")
                + s()
                + self.join_list([self.priv(p) for p in stmt.privileges])
                + s()
                + self.kw("ON")
                + s()
                + self.level(stmt.level, stmt.routine)
                + s()
                + self.kw("TO")
                + s()
                + self.join_list([self.user_spec(u) for u in stmt.users])
            )
            if stmt.with_grant_option:
                text += s() + self.kw("WITH GRANT OPTION")
            return text
        if isinstance(stmt, Revoke):
            return (
                self.kw("REVOKE")
                + s()
                + self.join_list([self.priv(p) for p in stmt.privileges])
                + s()
                + self.kw("ON")
                + s()
                + self.level(stmt.level, stmt.routine)
                + s()
                + self.kw("FROM")
                + s()
                + self.join_list([self.user(u) for u in stmt.users])
            )
        if isinstance(stmt, RevokeAll):
            return (
                self.kw(self.rnd.choice(["REVOKE ALL", "REVOKE ALL PRIVILEGES"]))
                + self.tight()
                + ","
                + self.tight()
                + self.kw("GRANT OPTION FROM")
                + s()
                + self.join_list([self.user(u) for u in stmt.users])
            )
        if isinstance(stmt, ShowGrants):
            text = self.kw("SHOW GRANTS")
            if isinstance(stmt.user, CurrentUser):
                text += s() + self.kw("FOR") + s() + self.kw("CURRENT_USER")
                text += self.rnd.choice(["", "()"])
            elif stmt.user is not None:
                text += s() + self.kw("FOR") + s() + self.user(stmt.user)
            return text
        raise AssertionError(stmt)


def render(stmt: AccountStatement, rnd: random.Random) -> str:
    in_exec = rnd.random() < 0.2
    renderer = _Renderer(rnd, SEPARATORS_IN_EXEC_COMMENT if in_exec else SEPARATORS)
    text = renderer.statement(stmt)
    if in_exec:
        text = rnd.choice(["/*!", "/*!50100 ", "/*M!", "/*M!100100"]) + " " + text + " */"
    return (
        rnd.choice(["", " ", "\n", "/* lead */ "])
        + text
        + rnd.choice(["", ";", " ;", ";\n", "; -- end", " # end"])
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(statements, st.randoms(use_true_random=False))
def test_generated_statements_round_trip(stmt: AccountStatement, rnd: random.Random) -> None:
    sql = render(stmt, rnd)
    assert parse_account_statement(sql, flavor=MARIADB) == stmt, sql


# --- dual passwords ---


@pytest.mark.parametrize(
    "sql, expected",
    [
        ("SET PASSWORD = 'New#pw1' RETAIN CURRENT PASSWORD", SetPassword(None, "New#pw1", True)),
        (
            "set password for lily@'10.%' = PASSWORD('New#pw1') retain current password;",
            SetPassword(UserRef("lily", "10.%"), "New#pw1", True),
        ),
        ("SET PASSWORD FOR lily = 'New#pw1'", SetPassword(UserRef("lily", "%"), "New#pw1")),
        ("ALTER USER lily DISCARD OLD PASSWORD", DiscardOldPassword(UserRef("lily", "%"))),
        (
            "alter user 'lily'@'10.0.0.1' discard old password ;",
            DiscardOldPassword(UserRef("lily", "10.0.0.1")),
        ),
        ("ALTER USER CURRENT_USER() DISCARD OLD PASSWORD", DiscardOldPassword(None)),
    ],
)
def test_dual_password_statements(sql: str, expected: object) -> None:
    assert parse_account_statement(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SET PASSWORD = 'x' RETAIN CURRENT",
        "SET PASSWORD = 'x' RETAIN OLD PASSWORD",
        "ALTER USER lily DISCARD OLD PASSWORD extra",
    ],
)
def test_dual_password_syntax_errors(sql: str) -> None:
    with pytest.raises(SqlError) as caught:
        parse_account_statement(sql)
    assert caught.value.errno in (1064, 1235)


def test_other_alter_user_forms_stay_unsupported() -> None:
    for sql in (
        "ALTER USER IF EXISTS lily IDENTIFIED BY 'x'",
        "ALTER USER IF EXISTS lily DISCARD OLD PASSWORD",
        "ALTER USER lily DISCARD OLD",
        "ALTER USER USER() IDENTIFIED BY 'x'",
    ):
        statement = parse_account_statement(sql)
        assert statement == UnsupportedAccountStatement("ALTER USER")


# --- issue #7: MAX_USER_CONNECTIONS and ACCOUNT UNLOCK ---


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER USER lily ACCOUNT UNLOCK", AlterUser((U("lily"),), None, True)),
        (
            "alter user lily@'10.%', `bob` with max_user_connections 3 account unlock;",
            AlterUser((U("lily", "10.%"), U("bob")), 3, True),
        ),
        ("ALTER USER lily WITH MAX_USER_CONNECTIONS 0", AlterUser((U("lily"),), 0, False)),
        (
            "CREATE USER lily IDENTIFIED BY 'p' WITH MAX_USER_CONNECTIONS 5",
            CreateUser((S("lily", password="p"),), False, 5),
        ),
        (
            "CREATE USER IF NOT EXISTS a, b WITH MAX_USER_CONNECTIONS 4294967295",
            CreateUser((S("a"), S("b")), True, 4294967295),
        ),
    ],
)
def test_limits_and_unlock(sql: str, expected: AccountStatement) -> None:
    assert parse_account_statement(sql) == expected


def test_grant_with_max_user_connections() -> None:
    statement = parse_account_statement(
        "GRANT SELECT ON db.* TO u WITH GRANT OPTION MAX_USER_CONNECTIONS 2"
    )
    assert isinstance(statement, Grant)
    assert (statement.with_grant_option, statement.max_user_connections) == (True, 2)
    plain = parse_account_statement("GRANT SELECT ON db.* TO u WITH MAX_USER_CONNECTIONS 7")
    assert isinstance(plain, Grant)
    assert (plain.with_grant_option, plain.max_user_connections) == (False, 7)
    assert parse_account_statement("GRANT SELECT ON db.* TO u") == grant(
        P("SELECT"), db("db"), S("u")
    )


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE USER u WITH MAX_USER_CONNECTIONS",
        "CREATE USER u WITH MAX_USER_CONNECTIONS -1",
        "CREATE USER u WITH MAX_USER_CONNECTIONS 4294967296",
        "ALTER USER u WITH MAX_USER_CONNECTIONS x",
        "GRANT SELECT ON db.* TO u WITH MAX_USER_CONNECTIONS 'a'",
    ],
)
def test_bad_limits_are_syntax_errors(sql: str) -> None:
    assert_parse_error(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER USER lily",
        "ALTER USER lily ACCOUNT UNLOCK PASSWORD EXPIRE",
        "ALTER USER CURRENT_USER() ACCOUNT UNLOCK",
        "ALTER USER IF EXISTS lily ACCOUNT UNLOCK",
    ],
)
def test_alter_user_with_other_options_stays_unsupported(sql: str) -> None:
    assert parse_account_statement(sql) == UnsupportedAccountStatement("ALTER USER")


# --- sql_mode: the one lexer reads strings and quoted names as MariaDB does ---

MODES: list[tuple[str, LexMode, AccountStatement]] = [
    ("SET PASSWORD = 'ab\\\\cd1234X'", LexMode(), SetPassword(None, "ab\\cd1234X")),
    ("SET PASSWORD = 'ab\\\\cd1234X'", NOBS, SetPassword(None, "ab\\\\cd1234X")),
    ("SET PASSWORD = 'a\\tb\\%'", LexMode(), SetPassword(None, "a\tb\\%")),
    ("SET PASSWORD = 'a\\tb\\%'", NOBS, SetPassword(None, "a\\tb\\%")),
    ("SET PASSWORD = 'it''s'", NOBS, SetPassword(None, "it's")),
    ('SET PASSWORD = "a\\"b"', LexMode(), SetPassword(None, 'a"b')),
    ('SET PASSWORD = "a\\\\"', NOBS, SetPassword(None, "a\\\\")),
    (
        "CREATE USER u IDENTIFIED BY 'x\\\\'",
        NOBS,
        CreateUser((S("u", "%", "x\\\\"),), False),
    ),
    ('CREATE USER "u"@"h" IDENTIFIED BY \'p\'', ANSI, CreateUser((S("u", "h", "p"),), False)),
    ('GRANT SELECT ON "db"."t" TO "u"', ANSI, grant(P("SELECT"), tbl("db", "t"), S("u"))),
    ('SHOW GRANTS FOR "u"@"h"', ANSI, ShowGrants(U("u", "h"))),
]


@pytest.mark.parametrize(("sql", "mode", "expected"), MODES)
def test_strings_and_names_are_read_in_the_sessions_mode(
    sql: str, mode: LexMode, expected: AccountStatement
) -> None:
    assert parse_account_statement(sql, mode) == expected


@pytest.mark.parametrize(
    ("sql", "mode"),
    [
        ("SET PASSWORD = 'a\\'b'", NOBS),  # the backslash does not escape: 'a\' then b'...
        ('SET PASSWORD = "pw"', ANSI),  # a quoted name is no password
        ('CREATE USER u IDENTIFIED BY "pw"', ANSI),
        ("SET PASSWORD = N'pw'", LexMode()),  # MariaDB wants a plain string here
        ('GRANT SELECT ON "db".* TO u', LexMode()),  # a string is no database name
    ],
)
def test_mode_dependent_syntax_errors(sql: str, mode: LexMode) -> None:
    with pytest.raises(SqlError) as info:
        parse_account_statement(sql, mode)
    assert info.value.errno == 1064


# --- the operator's day (issue #13): ALTER USER ... IDENTIFIED, FLUSH PRIVILEGES, digit names ---


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("ALTER USER lily IDENTIFIED BY 'New#pw1'", SetPassword(U("lily"), "New#pw1")),
        (
            "alter user 'lily'@'10.%' identified with mysql_native_password by 'New#pw1';",
            SetPassword(UserRef("lily", "10.%"), "New#pw1"),
        ),
        (
            "ALTER USER lily IDENTIFIED WITH 'caching_sha2_password' BY 'New#pw1'",
            SetPassword(U("lily"), "New#pw1"),
        ),
        (
            "ALTER USER lily IDENTIFIED WITH `CACHING_SHA2_PASSWORD` BY 'New#pw1' RETAIN CURRENT "
            "PASSWORD",
            SetPassword(U("lily"), "New#pw1", True),
        ),
        ("ALTER USER CURRENT_USER() IDENTIFIED BY 'New#pw1'", SetPassword(None, "New#pw1")),
        ("ALTER USER CURRENT_USER IDENTIFIED BY ''", SetPassword(None, "")),
        (
            "CREATE USER u IDENTIFIED WITH mysql_native_password BY 'x'",
            CreateUser((UserSpec(U("u"), "x"),), False),
        ),
        (
            "GRANT SELECT ON db.* TO u IDENTIFIED WITH caching_sha2_password BY 'x'",
            Grant(
                (PrivItem("SELECT"),), PrivLevel("db", None), (UserSpec(U("u"), "x"),), False, False
            ),
        ),
        ("FLUSH PRIVILEGES", FlushPrivileges()),
        ("flush no_write_to_binlog privileges;", FlushPrivileges()),
        ("FLUSH LOCAL PRIVILEGES", FlushPrivileges()),
    ],
)
def test_alter_user_identified_and_flush_privileges(sql: str, expected: AccountStatement) -> None:
    assert parse_account_statement(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER USER lily IDENTIFIED",
        "ALTER USER lily IDENTIFIED BY",
        "ALTER USER lily IDENTIFIED WITH",
        "ALTER USER lily IDENTIFIED BY 'x' RETAIN",
        "FLUSH PRIVILEGES TABLES",
        "FLUSH",
        "FLUSH TABLES",
    ],
)
def test_alter_user_identified_and_flush_syntax_errors(sql: str) -> None:
    with pytest.raises(SqlError) as caught:
        parse_account_statement(sql)
    assert caught.value.errno == 1064


def test_names_may_start_with_a_digit() -> None:
    """MySQL reads ``1abcd`` as an identifier: the name rules, not the syntax, judge it."""
    assert parse_account_statement("CREATE USER 1abcd@'%' IDENTIFIED BY 'Abc#123'") == CreateUser(
        (UserSpec(U("1abcd"), "Abc#123"),), False
    )
    assert parse_account_statement("DROP USER 9x, 0xzz@'10.%', 1e5x") == DropUser(
        (U("9x"), UserRef("0xzz", "10.%"), U("1e5x")), False
    )
    assert parse_account_statement("GRANT SELECT ON 1db.t TO u2") == Grant(
        (PrivItem("SELECT"),), PrivLevel("1db", "t"), (UserSpec(U("u2"), None),), False, False
    )
    # Numbers stay numbers, and elsewhere such a token is still the lexer's syntax error.
    for sql, near in (
        ("CREATE USER 123", "123"),
        ("CREATE USER u WITH MAX_USER_CONNECTIONS 5x", "5x"),
        ("CREATE USER u IDENTIFIED BY 1abc", "1abc"),
        ("CREATE USER u IDENTIFIED BY 'x' 1abc", "1abc"),
    ):
        with pytest.raises(SqlError) as caught:
            parse_account_statement(sql)
        assert caught.value.errno == 1064 and f"near '{near}" in caught.value.message, sql
