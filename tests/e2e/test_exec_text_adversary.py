"""The executable text of a statement with executable comments, through the proxy: on a sharded
database the partitions run it (proxy.plan.plan._sharded), so it must reach no table the
analysis did not judge. An account with SELECT on ``pub`` only tries to read ``secret`` with
"--" that is no comment followed by a comment cut out of that text (a space there, so that the
text's "-- " is a comment up to the line feed inside a string the statement has), in the code
of an executable comment and around it; the same against an unsharded database, where the
client's own text is relayed. Every such form is refused (1064: the lexer refuses the form), and
no row of ``secret`` comes back. (Before that refusal the sharded routing, which reads the
executable text, still checked the account's access to the tables it found there: 1142, or
1235 for what it does not route; unsharded, the shard read the client's text: a string.)"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

from tests.e2e.conftest import ProxyEnv
from tests.e2e.sharded import sharded_database

DB = "advlexdb"
PASSWORD = "Advlex#pass1"
READER = ("advlexr", "Reader#pass1")  # SELECT on advlexdb.pub only
PLAIN_READER = ("advlexp", "Reader#pass2")  # SELECT on easydb.advlex_pub only
SECRET = "TOPSECRET"

# each one, as MariaDB reads it, selects pub's rows and a string; its executable text (were it
# accepted) reads secret's v
_FORMS = [
    "SELECT a --/*!*/ 1, 'x\n, (SELECT MAX(v) FROM secret) #'\nFROM pub",
    "SELECT a --/**/ 1, 'x\n, (SELECT MAX(v) FROM secret) #'\nFROM pub",
    "SELECT a /*! --/* c */ 1 */, 'x\n, (SELECT MAX(v) FROM secret) #'\nFROM pub",
    "SELECT a /*! --*/ 1, 'x\n, (SELECT MAX(v) FROM secret) #'\nFROM pub",
    "SELECT a /*! --# c\n 1 */, 'x\n, (SELECT MAX(v) FROM secret) #'\nFROM pub",
    "SELECT a --/*!99999 x */ 1, 'x\n, (SELECT MAX(v) FROM secret) #'\nFROM pub",
    "SELECT a FROM pub WHERE id = 1 --/*!*/ 1 OR 'x\n UNION SELECT v FROM secret #'",
    "SELECT a FROM pub WHERE id = 1 /*!50000 --/**/ 1 */ OR 'x\n UNION SELECT v FROM secret #'",
    # forms the sharded routing supports (a subquery tied to the shard key)
    "SELECT a, 'y' --/*!*/ 1, 'x\n, (SELECT v FROM secret WHERE secret.id = pub.id) #'\n"
    "FROM pub WHERE id = 1",
    "SELECT a, 'y' /*! --*/ 1, 'x\n, (SELECT v FROM secret WHERE secret.id = pub.id) #'\n"
    "FROM pub WHERE id = 1",
    "SELECT a FROM pub WHERE id = 1 --/*!*/ 1 OR 'x\n AND EXISTS (SELECT 1 FROM secret"
    " WHERE secret.id = pub.id AND secret.v LIKE CHAR(84, 37)) #'",
]


@pytest.fixture(scope="module")
def sharded(proxy: ProxyEnv) -> Iterator[ProxyEnv]:
    setup = [
        "CREATE TABLE pub (id int NOT NULL PRIMARY KEY, a varchar(20)) DBPARTITION BY HASH(id)",
        "CREATE TABLE secret (id int NOT NULL PRIMARY KEY, v varchar(20)) DBPARTITION BY HASH(id)",
        "INSERT INTO pub VALUES (1, 'p1'), (2, 'p2')",
        f"INSERT INTO secret VALUES (1, '{SECRET}'), (2, '{SECRET}')",
        f"CREATE USER '{READER[0]}'@'%' IDENTIFIED BY '{READER[1]}'",
        f"GRANT SELECT ON {DB}.pub TO '{READER[0]}'@'%'",
    ]
    with sharded_database(proxy, DB, PASSWORD, setup=setup) as env:
        yield env


def _outcome(conn: pymysql.connections.Connection, sql: str) -> tuple[str, object]:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return "rows", cur.fetchall()
    except pymysql.MySQLError as err:
        return "error", err.args[0]


def test_the_sharded_executable_text_reads_no_table_the_account_lacks(sharded: ProxyEnv) -> None:
    conn = sharded.connect(READER[0], READER[1], database=DB)
    try:
        assert _outcome(conn, "SELECT a FROM pub ORDER BY id") == ("rows", (("p1",), ("p2",)))
        assert _outcome(conn, "SELECT v FROM secret") == ("error", 1142)
        for sql in _FORMS:
            outcome = _outcome(conn, sql)
            assert SECRET not in repr(outcome), (sql, outcome)
            assert outcome == ("error", 1064), (sql, outcome)
    finally:
        conn.close()


def test_the_unsharded_relay_reads_no_table_the_account_lacks(proxy: ProxyEnv) -> None:
    admin = proxy.connect()  # easydb's administrator
    try:
        with admin.cursor() as cur:
            for sql in (
                "DROP TABLE IF EXISTS advlex_pub, advlex_secret",
                "CREATE TABLE advlex_pub (id int PRIMARY KEY, a varchar(20))",
                "CREATE TABLE advlex_secret (id int PRIMARY KEY, v varchar(20))",
                "INSERT INTO advlex_pub VALUES (1, 'p1')",
                f"INSERT INTO advlex_secret VALUES (1, '{SECRET}')",
                f"CREATE USER IF NOT EXISTS '{PLAIN_READER[0]}'@'%'"
                f" IDENTIFIED BY '{PLAIN_READER[1]}'",
                f"GRANT SELECT ON easydb.advlex_pub TO '{PLAIN_READER[0]}'@'%'",
            ):
                cur.execute(sql)
        conn = proxy.connect(PLAIN_READER[0], PLAIN_READER[1], database="easydb")
        try:
            for form in _FORMS:
                sql = form.replace("secret", "advlex_secret").replace("pub", "advlex_pub")
                outcome = _outcome(conn, sql)
                assert SECRET not in repr(outcome), (sql, outcome)
                assert outcome == ("error", 1064), (sql, outcome)
        finally:
            conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{PLAIN_READER[0]}'@'%'")
            cur.execute("DROP TABLE IF EXISTS advlex_pub, advlex_secret")
        admin.close()


# Comments nested in the code of executable comments (read as MariaDB reads them since
# 3d9c88f) that hide ``secret`` or a DROP from a reader that gets the comment's end wrong.
_NESTED = [
    "SELECT a FROM pub /*! /* c */ , secret */",
    "SELECT a FROM pub /*! /* c /* d */ , secret */",
    "SELECT a FROM pub /*! /*/ , pub */ , secret */",
    "SELECT a FROM pub /*! /**/ , secret */",
    "SELECT a FROM pub /*! # c */\n , secret */",
    "SELECT a FROM pub /*! # c */\r , secret */\n */",
    "SELECT a FROM pub /*! # c */\r\n , secret */",
    "SELECT a FROM pub /*! -- c */\n , secret */",
    "SELECT a FROM pub /*! -- c */\r , secret */\n */",
    "SELECT a FROM pub /*! --\t*/\n , secret */",
    "SELECT a FROM pub /*! --x */ , secret",
    "SELECT a FROM pub /*! /*!99999 c */ , secret */",
    "SELECT a FROM pub /*! /*!99999 /* c */ */ , secret */",
    "SELECT a FROM pub /*! /*!99999 /*! */ , secret */ */",
    "SELECT a FROM pub /*! /*M!999999 c */ , secret */",
    "SELECT a FROM pub /*! /*!50700 c */ , secret */",
    "SELECT a FROM pub /*!99999 /*! , secret */ */",
    "SELECT a FROM pub /*!99999 /* , secret */ , secret */",
    "SELECT a FROM pub /*! /*! , secret */ */",
    "SELECT a FROM pub /*! /*!1234 , secret */ */",
    "SELECT a FROM pub /*! /*M! , secret */ */",
    "SELECT a FROM pub /*M!100000 /* c */ , secret */",
    "SELECT a FROM pub /*!50000 /* c */ , secret */",
    "SELECT a FROM pub /*! '/*' , secret */",
    "SELECT a FROM pub /*! /* ' */ , secret /* ' */ */",
    'SELECT a FROM pub /*! /* " */ , secret /* " */ */',
    "SELECT a FROM pub /*! /* ` */ , secret /* ` */ */",
    "SELECT a FROM pub /*! , '*/' , secret */",
    "SELECT a FROM pub /*! /* c */ ; SELECT v FROM secret */",
    "SELECT a FROM pub /*! # c */\n ; DROP TABLE pub */",
    "SELECT a FROM pub /*! /* c */ */ ; DROP TABLE pub",
    "SELECT a FROM pub /*! /* c */ UNION SELECT v FROM secret */",
    "SELECT a FROM pub WHERE 1 /*! /* c */ AND EXISTS (SELECT 1 FROM secret) */",
    "/*! /* c */ DROP TABLE pub */",
    "/*! # c\n DROP TABLE pub */",
    "/*!99999 /* c */ SELECT 1 */ DROP TABLE pub",
    "/*M! -- c\n DROP TABLE pub */",
]


def _reach_nothing(conn: pymysql.connections.Connection, pub: str, secret: str) -> None:
    for form in _NESTED:
        sql = form.replace("secret", secret).replace("pub", pub)
        outcome = _outcome(conn, sql)
        assert SECRET not in repr(outcome), (sql, outcome)
        # refused, denied, or what reads pub alone (its rows)
        assert outcome in (("error", 1064), ("error", 1142)) or outcome[0] == "rows", (sql, outcome)
        assert _outcome(conn, f"SELECT COUNT(*) FROM {pub}")[0] == "rows", (sql, "dropped")


def test_nested_comment_forms_reach_no_other_table_sharded(sharded: ProxyEnv) -> None:
    conn = sharded.connect(READER[0], READER[1], database=DB)
    try:
        _reach_nothing(conn, "pub", "secret")
    finally:
        conn.close()


def test_nested_comment_forms_reach_no_other_table_unsharded(proxy: ProxyEnv) -> None:
    admin = proxy.connect()
    try:
        with admin.cursor() as cur:
            for sql in (
                "DROP TABLE IF EXISTS advlex_pub2, advlex_secret2",
                "CREATE TABLE advlex_pub2 (a varchar(20))",
                "CREATE TABLE advlex_secret2 (v varchar(20))",
                "INSERT INTO advlex_pub2 VALUES ('p1')",
                f"INSERT INTO advlex_secret2 VALUES ('{SECRET}')",
                f"CREATE USER IF NOT EXISTS '{PLAIN_READER[0]}'@'%'"
                f" IDENTIFIED BY '{PLAIN_READER[1]}'",
                f"GRANT SELECT ON easydb.advlex_pub2 TO '{PLAIN_READER[0]}'@'%'",
            ):
                cur.execute(sql)
        conn = proxy.connect(PLAIN_READER[0], PLAIN_READER[1], database="easydb")
        try:
            _reach_nothing(conn, "advlex_pub2", "advlex_secret2")
        finally:
            conn.close()
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{PLAIN_READER[0]}'@'%'")
            cur.execute("DROP TABLE IF EXISTS advlex_pub2, advlex_secret2")
        admin.close()


# Under IGNORE_SPACE, a built-in's name of sql_functions[] then a comment then "(": MariaDB
# (and the analysis) call a stored function of that name, the executable text -- the comment a
# space there -- the built-in: SYSTEM_USER() on a partition named the proxy's own account there.
_SPACED = [
    "SELECT a, system_user /*!*/ () FROM pub",
    "SELECT a, system_user/*!*/() FROM pub WHERE id = 1",
    "SELECT a, session_user /*! () */ FROM pub",
    "SELECT a, /*! system_user */ () FROM pub",
    "SELECT a, system_user /* c */ () FROM pub",
    "SELECT a, system_user # c\n () FROM pub",
]


def test_a_builtins_name_then_a_comment_never_calls_the_shards_builtin(sharded: ProxyEnv) -> None:
    conn = sharded.connect(READER[0], READER[1], database=DB)
    try:
        assert _outcome(conn, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',IGNORE_SPACE')")[0] == (
            "rows"
        )
        for sql in _SPACED:
            outcome = _outcome(conn, sql)
            assert "sgm_" not in repr(outcome), (sql, outcome)  # the proxy's shard account
            assert outcome == ("error", 1064), (sql, outcome)
    finally:
        conn.close()
