"""information_schema's USER_PRIVILEGES, SCHEMA_PRIVILEGES, TABLE_PRIVILEGES and
COLUMN_PRIVILEGES show the account's own grants, from the catalog, as MariaDB shows them.

The reference: an account of the same name with the same grants, made directly on the shard
(the catalog's eight privileges, as SHOW GRANTS lists them); each statement is sent to the
shard as that account and to the proxy as the catalog's, and the answers compared byte for
byte -- column definitions (types, lengths, character sets, flags, schema / table / original
names) and rows -- through a client of the wire protocol (tests/e2e/binclient.py), text and
prepared. The session's mirrored backend account never shows (its name, or the privileges
it holds beside the account's: SHOW VIEW, LOCK TABLES, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest

from proxy.backend.mirror import mirror_user
from proxy.manage.provision import create_database
from tests.conftest import connect_admin
from tests.e2e.binclient import BinaryClient
from tests.e2e.conftest import PASSWORDS, ProxyEnv
from tests.e2e.sharded import sharded_database

PASSWORD = "Privs#pass1"
VIEWS = ("USER_PRIVILEGES", "SCHEMA_PRIVILEGES", "TABLE_PRIVILEGES", "COLUMN_PRIVILEGES")
ALL = "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER"
# Accounts: (user, password, the grants the catalog holds, as granted on the shard).
ACCOUNTS = {
    "database": ("pvdbuser", PASSWORD, ["GRANT SELECT, INSERT ON easydb.* TO {}"]),
    "tables": (
        "pvtabuser",
        PASSWORD,
        ["GRANT SELECT, UPDATE ON easydb.pv_t1 TO {}", "GRANT SELECT ON easydb.pv_t2 TO {}"],
    ),
    "admin": ("easydb", PASSWORDS["easydb"], [f"GRANT {ALL} ON easydb.* TO {{}}"]),
    "read-only": ("easydb_RO", PASSWORDS["easydb_RO"], ["GRANT SELECT ON easydb.* TO {}"]),
}


def _sql(conn: Any, *statements: str) -> None:
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


@pytest.fixture(scope="module")
def accounts(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    """The accounts above in the catalog (through the proxy) and on the shard (directly)."""
    with proxy.connect() as conn:
        _sql(
            conn,
            "CREATE TABLE IF NOT EXISTS pv_t1 (a INT)",
            "CREATE TABLE IF NOT EXISTS pv_t2 (a INT)",
            "DROP USER IF EXISTS pvdbuser, pvtabuser",
            f"CREATE USER pvdbuser IDENTIFIED BY '{PASSWORD}'",
            f"CREATE USER pvtabuser IDENTIFIED BY '{PASSWORD}'",
            *(
                grant.format(user)
                for user, _, grants in ACCOUNTS.values()
                if user.startswith("pv")
                for grant in grants
            ),
        )
    shard = connect_admin(proxy.shards[0])
    try:
        for user, password, grants in ACCOUNTS.values():
            name = f"'{user}'@'%'"
            _sql(
                shard,
                f"DROP USER IF EXISTS {name}",
                f"CREATE USER {name} IDENTIFIED BY '{password}'",
                *(grant.format(name) for grant in grants),
            )
        yield proxy
    finally:
        for user, _, _ in ACCOUNTS.values():
            _sql(shard, f"DROP USER IF EXISTS '{user}'@'%'")
        shard.close()
        with proxy.connect() as conn:
            _sql(conn, "DROP USER IF EXISTS pvdbuser, pvtabuser")


def _clients(env: ProxyEnv, account: str) -> tuple[BinaryClient, BinaryClient]:
    """(through the proxy as the catalog's account, on the shard as the reference one)."""
    user, password, _ = ACCOUNTS[account]
    shard = env.shards[0]
    return (
        BinaryClient(env.port, user, password, "easydb"),
        BinaryClient(shard.port, user, password, "easydb"),
    )


def _mirror(env: ProxyEnv, user: str) -> bytes:
    with env.catalog() as catalog:
        found = catalog.snapshot().find_account(user, "%")
    assert found is not None
    return mirror_user(env.config.catalog_secret(), found.id, "easydb").encode()


_INDEX_FLAGS = 0x10 | 0x20  # SERVER_QUERY_NO_GOOD_INDEX_USED, SERVER_QUERY_NO_INDEX_USED


def _status_masked(payloads: list[bytes]) -> list[bytes]:
    """The answer with its EOF packets' index-use status bits cleared: how MariaDB read the
    rows (a view's table scan, a derived table of literals), not what they are."""
    out = []
    for payload in payloads:
        if payload[:1] == b"\xfe" and len(payload) == 5:
            status = int.from_bytes(payload[3:5], "little") & ~_INDEX_FLAGS
            payload = payload[:3] + status.to_bytes(2, "little")
        out.append(payload)
    return out


def _same(proxied: list[bytes], reference: list[bytes], mirror: bytes, sorted_rows: bool) -> None:
    """Two answers of a text query or an execution: byte for byte (the rows as a multiset
    when the statement has no ORDER BY: the shard's order of its own grants is its own)."""
    assert all(mirror not in payload and b"sgm_" not in payload for payload in proxied)
    proxied, reference = _status_masked(proxied), _status_masked(reference)
    if sorted_rows:
        assert proxied == reference
    else:
        assert sorted(proxied) == sorted(reference)


STATEMENTS = [
    *(f"SELECT * FROM information_schema.{view}" for view in VIEWS),
    *(f"select * from information_schema.{view.lower()} AS v" for view in VIEWS),
    "SELECT GRANTEE, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES"
    " WHERE TABLE_SCHEMA = 'easydb' AND IS_GRANTABLE = 'NO' ORDER BY PRIVILEGE_TYPE",
    "SELECT COUNT(*), MAX(TABLE_CATALOG) FROM information_schema.TABLE_PRIVILEGES",
    "SELECT TABLE_NAME, GROUP_CONCAT(PRIVILEGE_TYPE ORDER BY PRIVILEGE_TYPE) AS p"
    " FROM `information_schema`.`TABLE_PRIVILEGES` tp GROUP BY TABLE_NAME ORDER BY TABLE_NAME",
    "SELECT u.GRANTEE, u.PRIVILEGE_TYPE, s.PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES"
    " u LEFT JOIN information_schema.SCHEMA_PRIVILEGES s ON s.GRANTEE = u.GRANTEE"
    " ORDER BY 3",
    "SELECT t.TABLE_NAME, p.PRIVILEGE_TYPE FROM information_schema.TABLES t"
    " JOIN information_schema.TABLE_PRIVILEGES p USING (TABLE_SCHEMA, TABLE_NAME)"
    " WHERE t.TABLE_SCHEMA = DATABASE() ORDER BY 1, 2",
    "SELECT information_schema.USER_PRIVILEGES.GRANTEE FROM information_schema.USER_PRIVILEGES",
    "SELECT 1 FROM DUAL WHERE EXISTS (SELECT * FROM information_schema.SCHEMA_PRIVILEGES"
    " WHERE PRIVILEGE_TYPE = 'SHOW VIEW')",
    # (a scalar subquery's column: MariaDB describes it otherwise over a derived table than
    # over the view -- an expression, no column of the view: compared by its rows below)
    "SELECT PRIVILEGE_TYPE, (SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES t2"
    " WHERE t2.PRIVILEGE_TYPE = t1.PRIVILEGE_TYPE) AS n"
    " FROM information_schema.TABLE_PRIVILEGES t1 ORDER BY 1, 2",
    "SELECT CURRENT_USER() = TRIM(BOTH '''' FROM SUBSTRING_INDEX(GRANTEE, '@', 1)),"
    " LENGTH(GRANTEE) FROM information_schema.USER_PRIVILEGES",
]


@pytest.mark.parametrize("account", list(ACCOUNTS))
def test_text_answers_are_mariadbs(accounts: ProxyEnv, account: str) -> None:
    proxied, reference = _clients(accounts, account)
    mirror = _mirror(accounts, ACCOUNTS[account][0])
    try:
        for statement in STATEMENTS:
            if "CURRENT_USER" in statement:
                continue  # (the shard's CURRENT_USER() is u@%, the proxy's too: below)
            ordered = "ORDER BY" in statement or "COUNT" in statement
            ours, theirs = proxied.query_raw(statement), reference.query_raw(statement)
            if " AS n" in statement:
                count = ours[0][0]
                ours, theirs = ours[count + 1 :], theirs[count + 1 :]
            _same(ours, theirs, mirror, ordered)
    finally:
        proxied.close()
        reference.close()


@pytest.mark.parametrize("account", ["database", "tables"])
def test_prepared_answers_are_mariadbs(accounts: ProxyEnv, account: str) -> None:
    proxied, reference = _clients(accounts, account)
    mirror = _mirror(accounts, ACCOUNTS[account][0])
    try:
        for statement in STATEMENTS[:4] + STATEMENTS[8:10]:
            ours, theirs = proxied.prepare(statement), reference.prepare(statement)
            assert proxied.columns == reference.columns  # the PREPARE_OK's definitions
            for _ in range(2):  # (the second execution: the fast path's, were it relayed)
                columns, rows = proxied.execute_raw(ours)
                expected_columns, expected_rows = reference.execute_raw(theirs)
                assert columns == expected_columns
                _same(rows, expected_rows, mirror, "ORDER BY" in statement)
    finally:
        proxied.close()
        reference.close()


def test_rows_and_names_through_pymysql(accounts: ProxyEnv) -> None:
    """What a tool reads: the account's own name and grants, never the mirror's privileges."""
    with accounts.connect(user="pvtabuser", password=PASSWORD) as conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM information_schema.USER_PRIVILEGES")
        assert cur.fetchall() == (("'pvtabuser'@'%'", "def", "USAGE", "NO"),)
        cur.execute("SELECT * FROM information_schema.SCHEMA_PRIVILEGES")
        assert cur.fetchall() == ()
        cur.execute(
            "SELECT TABLE_SCHEMA, TABLE_NAME, PRIVILEGE_TYPE"
            " FROM information_schema.TABLE_PRIVILEGES ORDER BY 2, 3"
        )
        assert cur.fetchall() == (
            ("easydb", "pv_t1", "SELECT"),
            ("easydb", "pv_t1", "UPDATE"),
            ("easydb", "pv_t2", "SELECT"),
        )
        assert cur._result is not None
        fields = cur._result.fields
        assert [(f.db, f.table_name, f.org_table, f.flags) for f in fields[:1]] == [
            (b"information_schema", "TABLE_PRIVILEGES", "TABLE_PRIVILEGES", 4097)
        ]
        cur.execute("SELECT CURRENT_USER(), GRANTEE FROM information_schema.USER_PRIVILEGES")
        assert cur.fetchall() == (("pvtabuser@%", "'pvtabuser'@'%'"),)
    with accounts.connect(user="easydb") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT GROUP_CONCAT(PRIVILEGE_TYPE) FROM information_schema.SCHEMA_PRIVILEGES"
            " WHERE GRANTEE = CONCAT('''', 'easydb', '''@''%''')"
        )
        assert cur.fetchall() == (("SELECT,INSERT,UPDATE,DELETE,CREATE,DROP,INDEX,ALTER",),)


def test_under_every_sql_mode(accounts: ProxyEnv) -> None:
    """The derived tables read the same under ANSI_QUOTES and NO_BACKSLASH_ESCAPES."""
    with accounts.connect(user="pvtabuser", password=PASSWORD) as conn, conn.cursor() as cur:
        cur.execute("SET sql_mode = 'ANSI_QUOTES,NO_BACKSLASH_ESCAPES,PIPES_AS_CONCAT'")
        cur.execute(
            'SELECT "GRANTEE" || \'\\\' FROM "information_schema"."TABLE_PRIVILEGES"'
            " WHERE \"TABLE_NAME\" = 'pv_t2'"
        )
        assert cur.fetchall() == (("'pvtabuser'@'%'\\",),)


def test_stored_definitions_are_refused(accounts: ProxyEnv) -> None:
    """A view (trigger, routine) keeps its text: it would read the mirror's grants."""
    with accounts.connect() as conn, conn.cursor() as cur:
        for statement in (
            "CREATE VIEW pv_v AS SELECT * FROM information_schema.TABLE_PRIVILEGES",
            "CREATE TABLE pv_copy AS SELECT * FROM information_schema.SCHEMA_PRIVILEGES",
        ):
            with pytest.raises(pymysql.err.NotSupportedError) as info:
                cur.execute(statement)
            assert info.value.args[0] == 1235
            assert "PRIVILEGES in a stored definition" in info.value.args[1]


def test_grants_follow_the_catalog(accounts: ProxyEnv) -> None:
    """A grant made through the proxy shows at once in an open session's next statement."""
    with accounts.connect(user="pvdbuser", password=PASSWORD) as conn, conn.cursor() as cur:
        query = "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES ORDER BY 1"
        cur.execute(query)
        assert cur.fetchall() == (("INSERT",), ("SELECT",))
        with accounts.connect() as admin:
            _sql(admin, "GRANT DELETE ON easydb.* TO pvdbuser")
        try:
            cur.execute(query)
            assert cur.fetchall() == (("DELETE",), ("INSERT",), ("SELECT",))
        finally:
            with accounts.connect() as admin:
                _sql(admin, "REVOKE DELETE ON easydb.* FROM pvdbuser")


def test_prepared_statements_follow_the_catalog(accounts: ProxyEnv) -> None:
    """A statement prepared before a GRANT / REVOKE (by the database's administrator, on
    another connection) shows the grants of its execution, as MariaDB's does: the proxy
    prepares it again on the shard with the account's grants when they changed."""
    proxied, reference = _clients(accounts, "database")
    shard = connect_admin(accounts.shards[0])
    texts = (
        "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES ORDER BY 1",
        "SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES WHERE PRIVILEGE_TYPE <> ?",
    )
    try:
        ours = [proxied.prepare(text) for text in texts]
        theirs = [reference.prepare(text) for text in texts]

        def same(expected: list[tuple[Any, ...]]) -> None:
            count, other = len(expected), len([e for e in expected if e != ("INSERT",)])
            for _ in range(2):  # (the second execution: nothing to prepare again)
                assert proxied.execute(ours[0], []) == reference.execute(theirs[0], [])
                assert reference.execute(theirs[0], []) == expected
                answers = (proxied.execute(ours[1], ["x"]), reference.execute(theirs[1], ["x"]))
                assert answers == ([(count,)], [(count,)])
                # ("the types of the last execution": sent to a statement prepared again too)
                answers = (
                    proxied.execute(ours[1], ["INSERT"], send_types=False),
                    reference.execute(theirs[1], ["INSERT"], send_types=False),
                )
                assert answers == ([(other,)], [(other,)])

        same([("INSERT",), ("SELECT",)])
        with accounts.connect() as admin:
            _sql(admin, "GRANT DELETE, UPDATE ON easydb.* TO pvdbuser")
        _sql(shard, "GRANT DELETE, UPDATE ON easydb.* TO 'pvdbuser'@'%'")
        same([("DELETE",), ("INSERT",), ("SELECT",), ("UPDATE",)])
        with accounts.connect() as admin:
            _sql(admin, "REVOKE DELETE, UPDATE, INSERT ON easydb.* FROM pvdbuser")
        _sql(shard, "REVOKE DELETE, UPDATE, INSERT ON easydb.* FROM 'pvdbuser'@'%'")
        same([("SELECT",)])
    finally:
        proxied.close()
        reference.close()
        with accounts.connect() as admin:
            _sql(admin, "REVOKE ALL PRIVILEGES ON easydb.* FROM pvdbuser")
            _sql(admin, "GRANT SELECT, INSERT ON easydb.* TO pvdbuser")
        _sql(shard, "REVOKE ALL PRIVILEGES ON easydb.* FROM 'pvdbuser'@'%'")
        _sql(shard, "GRANT SELECT, INSERT ON easydb.* TO 'pvdbuser'@'%'")
        shard.close()


SHARDED = "pvshard"
SHARDED_USER = ("pvshuser", "Pvsh#pass1")


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    """A database sharded over both shards (a sharded table, a single one) with an account
    holding a table grant and a database grant there; the reference: a plain database of the
    same name on shard 0 with the same tables, the same accounts with the same grants."""
    with sharded_database(proxy, SHARDED, PASSWORD) as env:
        with env.connect(SHARDED, PASSWORD, database=SHARDED) as conn:
            _sql(
                conn,
                "CREATE TABLE sp (id bigint NOT NULL PRIMARY KEY) DBPARTITION BY HASH(id)",
                "CREATE TABLE single (id int)",
                "INSERT INTO sp VALUES (1), (2), (3)",
                f"CREATE USER {SHARDED_USER[0]} IDENTIFIED BY '{SHARDED_USER[1]}'",
                f"GRANT SELECT ON {SHARDED}.sp TO {SHARDED_USER[0]}",
                f"GRANT INSERT ON {SHARDED}.* TO {SHARDED_USER[0]}",
            )
        shard = connect_admin(env.shards[0])
        users = ((SHARDED, PASSWORD), SHARDED_USER)
        try:
            _sql(
                shard,
                f"DROP DATABASE IF EXISTS {SHARDED}",
                f"CREATE DATABASE {SHARDED}",
                f"CREATE TABLE {SHARDED}.sp (id bigint NOT NULL PRIMARY KEY)",
                f"CREATE TABLE {SHARDED}.single (id int)",
                f"INSERT INTO {SHARDED}.sp VALUES (1), (2), (3)",
                *(f"DROP USER IF EXISTS '{user}'@'%'" for user, _ in users),
                *(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{pw}'" for user, pw in users),
                f"GRANT {ALL} ON {SHARDED}.* TO '{SHARDED}'@'%'",
                f"GRANT SELECT ON {SHARDED}.sp TO '{SHARDED_USER[0]}'@'%'",
                f"GRANT INSERT ON {SHARDED}.* TO '{SHARDED_USER[0]}'@'%'",
            )
            yield env
        finally:
            _sql(
                shard,
                f"DROP DATABASE IF EXISTS {SHARDED}",
                *(f"DROP USER IF EXISTS '{user}'@'%'" for user, _ in users),
            )
            shard.close()
            with env.connect(SHARDED, PASSWORD, database=SHARDED) as conn:
                _sql(conn, f"DROP USER IF EXISTS {SHARDED_USER[0]}")


@pytest.mark.parametrize("user", [SHARDED, SHARDED_USER[0]])
def test_sharded_database_shows_logical_names(sharded: ProxyEnv, user: str) -> None:
    password = PASSWORD if user == SHARDED else SHARDED_USER[1]
    proxied = BinaryClient(sharded.port, user, password, SHARDED)
    reference = BinaryClient(sharded.shards[0].port, user, password, SHARDED)
    try:
        for statement in (
            *STATEMENTS[:4],
            "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES"
            " WHERE TABLE_SCHEMA = DATABASE() ORDER BY 2",
            # With a table of information_schema the sharded path makes logical (under their
            # own names: the sharded path gives back the definitions of those only).
            "SELECT TABLES.TABLE_SCHEMA, TABLES.TABLE_NAME, TABLE_PRIVILEGES.PRIVILEGE_TYPE"
            " FROM information_schema.TABLES JOIN information_schema.TABLE_PRIVILEGES"
            " USING (TABLE_SCHEMA, TABLE_NAME) WHERE TABLES.TABLE_SCHEMA = DATABASE()"
            " ORDER BY 1, 2, 3",
        ):
            ours, theirs = proxied.query_raw(statement), reference.query_raw(statement)
            assert not any(f"{SHARDED}_0".encode() in payload for payload in ours)
            _same(ours, theirs, b"sgm_", "ORDER BY" in statement)
        prepared = proxied.prepare("SELECT * FROM information_schema.SCHEMA_PRIVILEGES")
        expected = reference.prepare("SELECT * FROM information_schema.SCHEMA_PRIVILEGES")
        assert proxied.columns == reference.columns
        columns, rows = proxied.execute_raw(prepared)
        expected_columns, expected_rows = reference.execute_raw(expected)
        assert columns == expected_columns
        _same(rows, expected_rows, b"sgm_", False)
    finally:
        proxied.close()
        reference.close()


def test_sharded_tables_joined_with_a_privilege_table(sharded: ProxyEnv) -> None:
    """Routed to the partitions with the derived table in every physical statement."""
    statements = (
        "SELECT sp.id, p.PRIVILEGE_TYPE FROM sp JOIN information_schema.TABLE_PRIVILEGES p"
        " ON p.TABLE_NAME = 'sp' ORDER BY 1, 2",
        "SELECT id FROM sp WHERE id = 2 AND EXISTS (SELECT 1 FROM"
        " information_schema.SCHEMA_PRIVILEGES WHERE PRIVILEGE_TYPE = 'INSERT')",
        "SELECT COUNT(*) FROM sp WHERE id IN (1, 2, 3) AND 'SHOW VIEW' IN"
        " (SELECT PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES)",
    )
    user, password = SHARDED_USER
    with (
        sharded.connect(user, password, database=SHARDED) as proxied,
        pymysql.connect(
            host=sharded.shards[0].host,
            port=sharded.shards[0].port,
            user=user,
            password=password,
            database=SHARDED,
        ) as reference,
    ):
        for statement in statements:
            with proxied.cursor() as ours, reference.cursor() as theirs:
                ours.execute(statement)
                theirs.execute(statement)
                assert ours.fetchall() == theirs.fetchall()


def _answers(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    """Each result set of ``sql``: its column definitions as pymysql reads them, and rows."""
    out: list[tuple[Any, ...]] = []
    with conn.cursor() as cur:
        cur.execute(sql)
        while True:
            fields = cur._result.fields if cur._result is not None else []
            described = [
                (f.db, f.table_name, f.org_table, f.name, f.org_name, f.charsetnr) for f in fields
            ] + [(f.length, f.type_code, f.flags, f.scale) for f in fields]
            out.append((described, sorted(cur.fetchall())))
            if not cur.nextset():
                return out


def test_multi_statement_packet(accounts: ProxyEnv) -> None:
    """Every result set of a multi-statement packet: the account's grants, the views'
    column definitions."""
    user, password, _ = ACCOUNTS["tables"]
    sql = (
        "SELECT * FROM information_schema.USER_PRIVILEGES;"
        " SELECT 1; SELECT * FROM information_schema.TABLE_PRIVILEGES tp"
    )
    flag = pymysql.constants.CLIENT.MULTI_STATEMENTS
    shard = accounts.shards[0]
    with (
        accounts.connect(user=user, password=password, client_flag=flag) as proxied,
        pymysql.connect(
            host=shard.host,
            port=shard.port,
            user=user,
            password=password,
            database="easydb",
            client_flag=flag,
        ) as reference,
    ):
        ours = _answers(proxied, sql)
        assert ours == _answers(reference, sql)
        assert "sgm_" not in str(ours) and len(ours) == 3


def test_database_named_in_mixed_case(proxy: ProxyEnv) -> None:
    """An unsharded database named ``PvMixed`` lives on a shard with
    lower_case_table_names=1, where MariaDB keeps and shows grants in lower case."""
    name, password = "PvMixed", "Mixed#pass1"
    with proxy.catalog() as catalog:
        asyncio.run(create_database(proxy.config, catalog, name, "s0", password, password))
    shard = connect_admin(proxy.shards[0])
    try:
        _sql(
            shard,
            f"DROP USER IF EXISTS '{name}'@'%'",
            f"CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'",
            f"GRANT {ALL} ON `{name}`.* TO '{name}'@'%'",
        )
        deadline = time.monotonic() + 10
        while proxy.server.ctx.catalog.snapshot().database(name) is None:
            assert time.monotonic() < deadline, "the proxy never saw the new database"
            time.sleep(0.1)
        proxied = BinaryClient(proxy.port, name, password, name)
        reference = BinaryClient(proxy.shards[0].port, name, password, name)
        try:
            for statement in STATEMENTS[:4]:
                _same(proxied.query_raw(statement), reference.query_raw(statement), b"sgm_", False)
        finally:
            proxied.close()
            reference.close()
    finally:
        _sql(shard, f"DROP USER IF EXISTS '{name}'@'%'", f"DROP DATABASE IF EXISTS `{name}`")
        shard.close()
        with proxy.catalog() as catalog:
            catalog.drop_database(name)


# A comment's end inside what the proxy answers in place (the view's name, an identity call):
# replaced, the other end stays and moves the shard's comments -- ``*/*`` then opened one
# where the proxy read the rest as the statement, and the shard read, past a ``*/`` the
# proxy read inside a string, the real view and CURRENT_USER(): the mirror's name.
COMMENT_CUTS = [
    "SELECT information_schema/*!.USER_PRIVILEGES.GRANTEE*/*1, 'a'"
    " FROM information_schema.USER_PRIVILEGES"
    " WHERE 'x*/ 1, GRANTEE FROM information_schema.USER_PRIVILEGES -- ' = 'y'",
    "SELECT CURRENT_USER/*!()*/*1, 'a' FROM DUAL WHERE 'x*/ 1, CURRENT_USER() -- ' = 'y'",
    "SELECT * FROM information_schema/*!.TABLE_PRIVILEGES*/",
    "SELECT * FROM /*M!information_schema.*/TABLE_PRIVILEGES",
]
# Comments wholly inside or around the name: answered as MariaDB answers them.
COMMENTS_AROUND = [
    "SELECT * FROM /*!information_schema.TABLE_PRIVILEGES*/",
    "SELECT * FROM information_schema/*!.*/TABLE_PRIVILEGES",
    "SELECT * FROM /*M!100000 information_schema . TABLE_PRIVILEGES */ tp",
    "SELECT * FROM information_schema /* . */ . -- x\n TABLE_PRIVILEGES",
    "SELECT CURRENT_USER/*!(*/)",
]


def test_comment_cut_by_the_answer_is_refused(accounts: ProxyEnv) -> None:
    proxied, reference = _clients(accounts, "tables")
    mirror = _mirror(accounts, ACCOUNTS["tables"][0])
    try:
        for statement in COMMENT_CUTS:
            answer = proxied.query_raw(statement)
            assert all(mirror not in payload and b"sgm_" not in payload for payload in answer)
            assert answer[-1][:3] == b"\xff\xd3\x04", statement  # 1235
            assert b"across a comment's end" in answer[-1]
        for statement in COMMENTS_AROUND:
            ours, theirs = proxied.query_raw(statement), reference.query_raw(statement)
            if "CURRENT_USER" in statement:
                assert b"pvtabuser@%" in ours[-2], ours
                continue
            _same(ours, theirs, mirror, False)
    finally:
        proxied.close()
        reference.close()


DOTTED = "\u0130"  # LATIN CAPITAL LETTER I WITH DOT ABOVE


def test_information_schema_names_beyond_ascii_are_refused(accounts: ProxyEnv) -> None:
    """MariaDB finds an information_schema table by its name folded its own way:
    ``USER_PR\u0130V\u0130LEGES`` (U+0130) is USER_PRIVILEGES, ``PROCESSL\u0130ST`` PROCESSLIST.
    Relayed, the first showed the mirror's grants and the second every session of the shared
    backend account (the PROCESS check is by name); every such table is named in ASCII, so a
    name beyond it is refused (1235)."""
    proxied, reference = _clients(accounts, "tables")
    mirror = _mirror(accounts, ACCOUNTS["tables"][0])
    try:
        theirs = reference.query_raw(
            "SELECT GRANTEE FROM information_schema.USER_PR\u0130V\u0130LEGES"
        )
        assert b"'pvtabuser'@'%'" in theirs[-2]  # MariaDB's own reading of the name
        for statement in (
            f"SELECT GRANTEE FROM information_schema.USER_PR{DOTTED}V{DOTTED}LEGES",
            f"SELECT * FROM information_schema.TABLE_PR{DOTTED}VILEGES t",
            f"SELECT USER FROM information_schema.PROCESSL{DOTTED}ST",
            "SELECT 1 FROM DUAL WHERE EXISTS"
            f" (SELECT * FROM information_schema.SESS{DOTTED}ON_STATUS)",
        ):
            answer = proxied.query_raw(statement)
            assert all(mirror not in payload and b"sgm_" not in payload for payload in answer)
            assert answer[-1][:3] == b"\xff\xd3\x04", statement  # 1235
            assert b"named beyond ASCII" in answer[-1]
    finally:
        proxied.close()
        reference.close()


def test_definer_cut_by_a_comment_is_refused(accounts: ProxyEnv) -> None:
    """The DEFINER account the proxy replaces by CURRENT_USER, cut by an executable comment's
    end: the replacement left a stray ``*/`` (MariaDB's 1064 for a view it creates from the
    client's text); refused as the other cut splices are."""
    with accounts.connect() as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.NotSupportedError) as info:
            cur.execute("CREATE DEFINER = easydb/*!@'%'*/ VIEW pv_cut AS SELECT 1 AS a")
        assert info.value.args[0] == 1235
        assert "across a comment's end" in info.value.args[1]
        cur.execute("CREATE DEFINER = /*!easydb@'%'*/ VIEW pv_cut AS SELECT 1 AS a")
        try:
            cur.execute("SELECT a FROM pv_cut")
            assert cur.fetchall() == ((1,),)
        finally:
            cur.execute("DROP VIEW pv_cut")


def test_sharded_prepared_statements_follow_the_catalog(sharded: ProxyEnv) -> None:
    """On a sharded database too (physical database 0's connection answers; prepared with a
    sharded table, a privilege table is refused)."""
    user, password = SHARDED_USER
    proxied = BinaryClient(sharded.port, user, password, SHARDED)
    text = (
        "SELECT PRIVILEGE_TYPE, TABLE_SCHEMA FROM information_schema.SCHEMA_PRIVILEGES ORDER BY 1"
    )
    try:
        prepared = proxied.prepare(text)
        assert proxied.execute(prepared, []) == [("INSERT", SHARDED)]
        with sharded.connect(SHARDED, PASSWORD, database=SHARDED) as admin:
            _sql(admin, f"GRANT DELETE ON {SHARDED}.* TO {user}")
        try:
            for _ in range(2):
                assert proxied.execute(prepared, []) == [("DELETE", SHARDED), ("INSERT", SHARDED)]
        finally:
            with sharded.connect(SHARDED, PASSWORD, database=SHARDED) as admin:
                _sql(admin, f"REVOKE DELETE ON {SHARDED}.* FROM {user}")
        assert proxied.execute(prepared, []) == [("INSERT", SHARDED)]
    finally:
        proxied.close()
