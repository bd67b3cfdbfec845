"""The proxy's reading of SQL against the real MariaDB (the session's shards, through PyMySQL).

* executable comments: whatever the lexer accepts, the shard runs its executable text exactly as
  it runs the original (same result or same error), and a table hidden in a comment needs a
  privilege in the analysis exactly when the shard asks an account without it for one (1142);
* SHOW DATABASES LIKE: proxy.sql.like matches as MariaDB's LIKE in utf8mb3_general_ci (the
  comparison find_files makes with lower_case_table_names=1), and its weight table is the
  server's for every BMP character;
* passwords: the account grammar reads a string literal as the server does in each sql_mode.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Callable, Iterator

import pymysql
import pytest
from pymysql.connections import Connection

from proxy.dev.localshard import ShardEndpoint
from proxy.sql import like as like_module
from proxy.sql.account_grammar import SetPassword, parse_account_statement
from proxy.sql.analyze import Kind, analyze_uncached
from proxy.sql.lexer import LexError, LexMode, ServerFlavor, lex
from proxy.sql.like import LikePattern

Outcome = tuple[str, object]  # ("rows", rows) or ("error", errno)


def _run(conn: Connection, sql: str) -> Outcome:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return "rows", cur.fetchall()
    except pymysql.MySQLError as err:
        return "error", err.args[0]


@pytest.fixture
def shard(
    shards: list[ShardEndpoint], shard_admin: Callable[..., Connection]
) -> tuple[Connection, ServerFlavor]:
    conn = shard_admin(shards[0])
    return conn, ServerFlavor.parse(conn.get_server_info())


def _value_cases(version: int) -> list[str]:
    cases = []
    for number in (0, 32302, 50699, 50700, 80035, 99999, 100000, version, version + 1, 999999):
        for marker in ("/*!", "/*M!"):
            cases.append(f"SELECT 5 {marker}{number:05d} + 1000 */")
            cases.append(f"SELECT 5 {marker}{number:05d}+1000*/")
    return [
        *cases,
        "SELECT 5 + /*!1000007*/",  # six digits, then code
        "SELECT 5 + /*!9999997*/ 0",
        "SELECT 5 + /*!1234*/",  # fewer than five digits: code
        "SELECT 5 /*M!1234 + 1 */",
        "SELECT 5 /*! + 1 */",
        "SELECT 5 /*M! + 1 */",
        "SELECT 5 /*!*/ + 1",
        "SELECT 5 + /*!12345a */ 0",
        "SELECT 5 /*!99999 + /* x */ 1000 */ + 1",  # one nested comment inside a skipped one
        "SELECT 5 /*!99999 + /* x */ 1000 /* y */ + 1 */ + 2",
        "SELECT 5 /*!99999 + /* x /* y */ 1000 */ + 1",
        "SELECT 5 /*!99999 /*/ + 1 */ + 10 */ + 100",
        "SELECT 5 /*!99999 + 1 /*!50000 + 2 */ + 3 */ + 4",
        "SELECT 5 /*!99999 ; */ + 1",
        "SELECT 5 /*!99999 */*/ 2",
        "SELECT 5 /*!99999 + 1",  # unterminated
        "SELECT 5 /*!50000 + 1",
        "SELECT 5 /*!99999 + /* x */",
        "SELECT '/*!99999 x */', \"/*!50000 y */\", '*/'",  # inside strings
        "SELECT 5 /*!50000 , '*/' */",
        # a comment in the code: MariaDB skips it and reads on in the code
        "SELECT 5 /*!50000 + 1 /* c */ + 2 */",
        "SELECT 5 /*!50000 + 1 /*!99999 + 2 */ + 3 */",
        "SELECT 5 /*! + 1 /* c */ + 2 */",
        "SELECT 5 /*M! + 1 /* c */ + 2 */",
        "SELECT 5 /*M!100000 + 1 /* c */ + 2 */",
        "SELECT 5 /*! + 1 /* c /* d */ + 2 */",
        "SELECT 5 /*! + 1 /* c */ + 2 */ + 4 */",
        "SELECT 5 /*! + 1 /**/ + 2 */",
        "SELECT 5 /*! + 1 /*/ + 2 */ + 3 */",
        "SELECT 5 /*! + 1 /*+ hint */ + 2 */",
        "SELECT 5 /*! + 1 /*!99999 + 2 /* x */ + 7 */ + 3 */",
        "SELECT 5 /*! + 1 /*!99999 + 2 /* x /* y */ + 7 */ + 3 */",
        "SELECT 5 /*! + 1 /*M!999999 + 2 */ + 3 */",
        "SELECT 5 /*! + 1 /*!50700 + 2 */ + 3 */",
        "SELECT 5 /*! + 1 /*!99999 + 2 */ */ + 4",
        "SELECT 5 /*!99999 + 1 /*! + 2 */ + 3 */ + 4",
        "SELECT 5 /*! + 1 # c */\n + 2 */",
        "SELECT 5 /*! + 1 -- c */\n + 2 */",
        "SELECT 5 /*! + 1 # c */",
        "SELECT 5 /*! + 1 -- c */",
        "SELECT 5 /*! + 1 /* c */",
        "SELECT 5 /*! + 1 --x */",
        "SELECT 5 /*! + '/*' + 1 */",
        # an executable comment in the code: its "*/" ends both (the proxy refuses it)
        "SELECT 5 /*! + 1 /*!50000 + 2 */ + 3 */",
        "SELECT 5 /*! + 1 /*! + 2 */ + 3 */",
        "SELECT 5 /*! + 1 /*! + 2 */ */* c */ 4",
        "SELECT 5 /*! + 1 /*M! + 2 */ + 3 */",
        "SELECT 5 /*!50000 + 1; */",  # the proxy refuses ';' in code (the client decides)
        "SELECT 5 /*M!50700 + 1000 */ /*!50700 + 100 */",
        "SELECT 5 /*!40101 + 1 */ /*!101100 + 10 */ /*!900000 + 100 */",
        # "--" that is no comment right before a comment cut out of the executable text (a
        # space there) or the text's end: the text would read a comment (the proxy refuses)
        "SELECT 5 --/**/ 1",
        "SELECT 5 --/*!*/ 1",
        "SELECT 5 /*! + 1 --/* c */ 2 */",
        "SELECT 5 /*! + 1 --# c\n 2 */",
        "SELECT 5 /*! + 1 --*/ 2",
        "SELECT 5 --/*!99999 x */ 1",
        "SELECT 5 --# c\n 1",
        "SELECT 5 ----\t",
    ]


def test_executable_comments_run_as_the_proxy_reads_them(
    shard: tuple[Connection, ServerFlavor],
) -> None:
    conn, flavor = shard
    assert flavor.mariadb and flavor.version >= 101100, flavor
    checked = refused = 0
    for sql in _value_cases(flavor.version):
        direct = _run(conn, sql)
        try:
            statements = lex(sql, flavor=flavor)
        except LexError:
            refused += 1  # refusing is always safe; it must never be all there is
            continue
        assert len(statements) == 1, sql
        assert _run(conn, statements[0].text) == direct, (sql, statements[0].text)
        checked += 1
    assert checked > 60 and refused < 20, (checked, refused)


def test_comments_in_executable_code_are_refused_only_where_mariadb_fails_or_nests(
    shard: tuple[Connection, ServerFlavor],
) -> None:
    # what the proxy still refuses in the code of an executable comment: an executable
    # comment there (whose "*/" ends both), unterminated ones, and a comment right after "--"
    # that is none (see _TEXT_CASES); anything else runs
    conn, flavor = shard
    for sql in _value_cases(flavor.version):
        if "/*" not in sql[sql.find("/*") + 2 :]:
            continue  # (no comment inside another)
        try:
            lex(sql, flavor=flavor)
        except LexError as err:
            nested = "executable comment inside" in err.reason
            dashes = "right after '--'" in err.reason  # (the executable text's reading)
            assert nested or dashes or _run(conn, sql)[0] == "error", (sql, err.reason)


# MariaDB drops whitespace and semicolons at the end of a query before it reads it
# (alloc_query): a "--" that only they follow ends the query, so it starts a comment there.
_DASH_CASES = [
    "SELECT 5--;",
    "SELECT 5--;;",
    "SELECT 5 --; \t;\n",
    "SELECT 5--\n;",
    "SELECT 5-- ;",
    "SELECT 5--1;",
    "SELECT 5--x;",
    "SELECT 5--;x",
    "SELECT 5--;-1",
    "SELECT 5--;\u3000",
]


def test_a_double_dash_at_the_end_is_read_as_mariadb_reads_it(
    shard: tuple[Connection, ServerFlavor],
) -> None:
    conn, flavor = shard
    for sql in _DASH_CASES:
        direct = _run(conn, sql)
        statements = analyze_uncached(sql, "easydb", flavor=flavor)
        if any(statement.kind is Kind.REFUSED for statement in statements):
            assert direct[0] == "error", (sql, direct)  # never a refusal of what runs
            continue
        [statement] = statements
        assert _run(conn, statement.text) == direct, (sql, statement.text, direct)


_SECRET_CASES = [
    "SELECT a FROM pub /*!50000 , secret */",
    "SELECT a FROM pub /*!50700 , secret */",
    "SELECT a FROM pub /*M!50700 , secret */",
    "SELECT a FROM pub /*!99999 , secret */",
    "SELECT a FROM pub /*M!99999 , secret */",
    "SELECT a FROM pub /*!{version} , secret */",
    "SELECT a FROM pub /*!{above} , secret */",
    "SELECT a FROM pub /*M!{above} , secret */",
    "SELECT a FROM pub /*!1000000 , secret */",
    "SELECT a FROM pub /*!999999 , secret */",
    "SELECT a FROM pub /*! , secret */",
    "SELECT a FROM pub /*M! , secret */",
    "SELECT a FROM pub /*!99999 , /* x */ secret */",
    "SELECT a FROM pub /*!99999 /* x */ */ , secret",
    "SELECT a FROM pub /*!99999 , secret /* x */ , secret */ WHERE 1",
    "SELECT a FROM pub /*!50000 , /* x */ secret */",
    "SELECT a FROM pub /*! /* , pub */ , secret */",
    "SELECT a FROM pub /*! /*!99999 x */ , secret */",
    "SELECT a FROM pub /*! /*!99999 , secret */ */",
    "SELECT a FROM pub /*! # , secret */\n */",
    "SELECT a FROM pub /*M! -- x */\n , secret */",
    "SELECT a FROM pub /*!50000 /* , secret */ */",
    "SELECT a FROM pub WHERE a = '/*!50000 x' OR a IN (SELECT a FROM secret) -- */",
    "SELECT a FROM pub WHERE 1 /*!99999 AND a IN (SELECT a FROM secret) */",
    "SELECT a FROM pub WHERE 1 /*!50000 AND a IN (SELECT a FROM secret) */",
    "SELECT a FROM /*!99999 secret, */ pub",
    "SELECT a FROM /*M!100000 secret, */ pub",
    "/*!99999 SELECT a FROM secret */ SELECT a FROM pub",
    "/*!40000 SELECT a FROM secret */",
]


@pytest.fixture
def restricted(
    shard: tuple[Connection, ServerFlavor],
    shards: list[ShardEndpoint],
) -> Iterator[Connection]:
    """An account on the shard with SELECT on lexdiff.pub and nothing on lexdiff.secret."""
    admin, _flavor = shard
    password = secrets.token_hex(12)
    for sql in (
        "CREATE DATABASE IF NOT EXISTS lexdiff",
        "CREATE TABLE IF NOT EXISTS lexdiff.pub (a INT)",
        "CREATE TABLE IF NOT EXISTS lexdiff.secret (a INT)",
        "DROP USER IF EXISTS 'lexdiff'@'%'",
        f"CREATE USER 'lexdiff'@'%' IDENTIFIED BY '{password}'",
        "GRANT SELECT ON lexdiff.pub TO 'lexdiff'@'%'",
    ):
        _run(admin, sql)
    endpoint = shards[0]
    conn = pymysql.connect(
        host=endpoint.host,
        port=endpoint.port,
        user="lexdiff",
        password=password,
        database="lexdiff",
        autocommit=True,
    )
    try:
        yield conn
    finally:
        conn.close()
        _run(admin, "DROP USER IF EXISTS 'lexdiff'@'%'")
        _run(admin, "DROP DATABASE IF EXISTS lexdiff")


# A string across a line feed after "--" that is no comment and a comment: the shard reads a
# string there, the executable text (the comment cut out: "-- " a comment up to the line feed)
# the rest of the string as code.
_TEXT_CASES = [
    "SELECT a FROM pub WHERE a = 0 --/*!*/ 1 OR 'x\n OR a IN (SELECT a FROM secret) -- '",
    "SELECT a FROM pub WHERE a = 0 --/**/ 1 OR 'x\n OR a IN (SELECT a FROM secret) -- '",
    "SELECT a FROM pub WHERE a = 0 /*! --/* c */ 1 */ OR 'x\n OR a IN (SELECT a FROM secret) #'",
    "SELECT a FROM pub WHERE a = 0 /*! --*/ 1 OR 'x\n OR a IN (SELECT a FROM secret) #'",
]


def test_the_executable_text_reads_no_table_the_statement_does_not(
    shard: tuple[Connection, ServerFlavor], restricted: Connection
) -> None:
    # the executable text is what a sharded database's partitions run when the client's text
    # has executable comments (proxy.plan.plan._sharded), and what the digest and the account
    # grammar read: it must reach no table the analysis did not judge
    _admin, flavor = shard
    for template in [*_SECRET_CASES, *_TEXT_CASES]:
        sql = template.format(version=flavor.version, above=flavor.version + 1)
        [statement] = analyze_uncached(sql, "lexdiff", flavor=flavor)
        if statement.kind is Kind.REFUSED:
            continue
        needs_secret = any(r.table == "secret" for r in statement.requirements)
        text = _run(restricted, statement.text)
        assert text == _run(restricted, sql), (sql, statement.text, text)
        assert needs_secret or text != ("error", 1142), (sql, statement.text)


def test_a_table_in_a_comment_needs_a_privilege_exactly_when_the_shard_reads_it(
    shard: tuple[Connection, ServerFlavor], restricted: Connection
) -> None:
    _admin, flavor = shard
    checked = 0
    for template in _SECRET_CASES:
        sql = template.format(version=flavor.version, above=flavor.version + 1)
        direct = _run(restricted, sql)
        [statement] = analyze_uncached(sql, "lexdiff", flavor=flavor)
        if statement.kind is Kind.REFUSED:
            continue  # the proxy refuses it: the shard never sees it
        assert statement.kind is Kind.QUERY, (sql, statement)
        needs_secret = any(r.table == "secret" for r in statement.requirements)
        assert (direct == ("error", 1142)) is needs_secret, (sql, direct, statement.requirements)
        assert direct[0] == "rows" or needs_secret, (sql, direct)
        checked += 1
    assert checked >= len(_SECRET_CASES) - 3


# --- SHOW DATABASES LIKE -------------------------------------------------------------------------

_ALPHABET = ["a", "A", "b", "e", "E", "é", "É", "ß", "s", "S", "Й", "й", "_", "%", "\\", "x", "."]


def _utf8mb3(text: str) -> str:
    return f"CONVERT(X'{text.encode().hex()}' USING utf8mb3)"


@pytest.mark.parametrize("sql_mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_like_matches_as_mariadb(shard: tuple[Connection, ServerFlavor], sql_mode: str) -> None:
    conn, _flavor = shard
    _run(conn, f"SET SESSION sql_mode = '{sql_mode}'")
    rnd = random.Random(11)
    pairs = [
        (
            "".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(0, 6))),
            "".join(rnd.choice(_ALPHABET) for _ in range(rnd.randint(0, 6))),
        )
        for _ in range(600)
    ]
    pairs += [(p.replace("%", ""), p.replace("%", "")) for p, _n in pairs[:50]]
    for start in range(0, len(pairs), 100):
        batch = pairs[start : start + 100]
        expressions = ", ".join(
            f"{_utf8mb3(name)} COLLATE utf8mb3_general_ci LIKE {_utf8mb3(pattern)}"
            for pattern, name in batch
        )
        outcome = _run(conn, "SELECT " + expressions)
        assert outcome[0] == "rows", outcome
        server = outcome[1][0]  # type: ignore[index]
        ours = tuple(int(LikePattern.compile(p).matches(n)) for p, n in batch)
        assert ours == server, [
            (p, n, o, s) for (p, n), o, s in zip(batch, ours, server, strict=True) if o != s
        ]


def test_general_ci_weights_are_the_servers(shard: tuple[Connection, ServerFlavor]) -> None:
    conn, _flavor = shard
    codes = [c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]
    for start in range(0, len(codes), 2000):
        chunk = codes[start : start + 2000]
        outcome = _run(
            conn,
            "SELECT "
            + ", ".join(
                f"HEX(WEIGHT_STRING({_utf8mb3(chr(c))} COLLATE utf8mb3_general_ci))" for c in chunk
            ),
        )
        assert outcome[0] == "rows", outcome
        server = [int(h, 16) for h in outcome[1][0]]  # type: ignore[index]
        ours = [ord(like_module._weights(chr(c))) for c in chunk]
        assert ours == server


# --- passwords -----------------------------------------------------------------------------------

_PASSWORDS = [
    "'ab\\\\cd1234X'",
    "'a\\tb\\nc\\0d\\Ze\\%f\\_g\\qh'",
    "'it''s'",
    "'x\\\\'",
    '"dq\\\\1"',
    '"a""b"',
]


@pytest.mark.parametrize("sql_mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_passwords_are_read_as_mariadb_reads_them(
    shard: tuple[Connection, ServerFlavor], sql_mode: str
) -> None:
    conn, _flavor = shard
    _run(conn, f"SET SESSION sql_mode = '{sql_mode}'")
    mode = LexMode(no_backslash_escapes=bool(sql_mode))
    for literal in _PASSWORDS:
        outcome = _run(conn, f"SELECT CAST({literal} AS BINARY)")
        assert outcome[0] == "rows", (literal, outcome)
        server = outcome[1][0][0].decode()  # type: ignore[index]
        statement = parse_account_statement(f"SET PASSWORD = {literal}", mode)
        assert isinstance(statement, SetPassword)
        assert statement.password == server, (literal, sql_mode)
