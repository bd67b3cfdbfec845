"""Rewriting at token positions (proxy.plan.rewrite), the identity calls the analysis finds for it,
the handshake's collation ids (proxy.sql.charsets), 1064 worded for MariaDB, and the scanner's
MariaDB metadata-follows byte."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auth.errors import SqlError, parse_error, worded_for
from proxy.plan.rewrite import (
    IdentityValues,
    Splice,
    apply_splices,
    identity_splices,
    quote_identifier,
    sql_string,
)
from proxy.sql.analyze import (
    GRANT_VIEWS,
    Identity,
    IdentityCall,
    Kind,
    analyze,
    analyze_uncached,
    cache_clear,
    cached_shape,
)
from proxy.sql.charsets import UTF8MB4_GENERAL_CI, client_collation
from proxy.sql.lexer import LexMode, ServerFlavor, lex
from proxy.wire.packets import (
    Capability,
    build_column_count,
    build_column_definition,
    build_eof,
    build_text_row,
    frame,
    parse_ok,
)
from proxy.wire.stream import ResponseKind, ResponseScanner

MARIADB = ServerFlavor(101119, True)
MYSQL = ServerFlavor(80036, False)
VALUES = IdentityValues("u@10.0.%", "u@10.0.0.7", 42, "proxyhost", 3307, "/srv/sg/", "")


def rewritten(sql: str) -> str:
    statements = analyze(sql, "db", LexMode(), MARIADB)
    data = sql.encode("utf-8", "surrogateescape")
    return apply_splices(data, identity_splices(tuple(statements), VALUES)).decode()


# -- apply_splices -------------------------------------------------------------------------------


def test_splices_keep_tokens_apart_and_never_make_a_comment() -> None:
    data = b"SELECT@@port,1-@@port,1--@@port FROM t"
    splices = (Splice(6, 12, b"3307"), Splice(15, 21, b"3307"), Splice(25, 31, b"3307"))
    assert apply_splices(data, splices) == b"SELECT 3307 ,1-3307 ,1--3307 FROM t"
    # offsets of a command packet's payload count from its statement text
    assert apply_splices(b"\x03SELECT x", (Splice(7, 8, b"'v'"),), base=1) == b"\x03SELECT 'v'"
    assert apply_splices(b"abc", ()) == b"abc"


def test_splices_must_be_in_order() -> None:
    with pytest.raises(ValueError):
        apply_splices(b"abcdef", (Splice(3, 4, b"x"), Splice(1, 2, b"y")))
    with pytest.raises(ValueError):
        apply_splices(b"abc", (Splice(2, 9, b"x"),))


def test_literals_read_the_same_in_every_mode() -> None:
    assert sql_string("u@10.0.%") == b"'u@10.0.%'"
    assert sql_string('it\'s "x"') == b"'it''s \"x\"'"
    assert sql_string("a\\b") == b"CONVERT(X'615c62' USING utf8mb4)"
    assert sql_string("ü") == b"CONVERT(X'c3bc' USING utf8mb4)"
    assert quote_identifier(b"a`b") == b"`a``b`"


# -- the identity calls the analysis finds -------------------------------------------------------


def test_identity_calls_replaced_with_the_sessions_values() -> None:
    assert rewritten("SELECT USER(), current_user, CURRENT_USER() cu FROM t") == (
        "SELECT 'u@10.0.0.7' AS `USER()` , 'u@10.0.%' AS `current_user` , 'u@10.0.%' cu FROM t"
    )
    assert rewritten("select connection_id()+1, @@GLOBAL.hostname") == (
        "select 42 +1 AS `connection_id()+1` , 'proxyhost' AS `@@GLOBAL.hostname`"
    )
    assert rewritten("SELECT DISTINCT SESSION_USER() AS s, SYSTEM_USER( ) FROM t") == (
        "SELECT DISTINCT 'u@10.0.0.7' AS s, 'u@10.0.0.7' AS `SYSTEM_USER( )` FROM t"
    )
    assert rewritten("SELECT @@datadir, @@socket; SELECT 1 WHERE @@port = 1") == (
        "SELECT '/srv/sg/' AS `@@datadir` , '' AS `@@socket` ; SELECT 1 WHERE 3307 = 1"
    )
    assert rewritten("SET @a = CURRENT_USER") == "SET @a = 'u@10.0.%'"
    assert rewritten("SELECT é, USER()") == "SELECT é, 'u@10.0.0.7' AS `USER()`"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT user FROM t",  # a column
        "SELECT t.user FROM t",
        "SELECT `user`() FROM t",  # a stored function, not the built-in
        "SELECT SYSTEM_USER ( ) FROM t",  # a stored function too (sql_functions[]: "(" at once)
        "SELECT session_user/**/() FROM t",
        "SELECT db.user() FROM t",
        "SELECT CURRENT_USER(1)",  # not the call (the shard's error)
        "SELECT @@session.port, @@local.hostname",  # session scope: the shard's error
        "SELECT 'USER()', \"@@port\", `CONNECTION_ID`",
        "SELECT 1 /* USER() */",
        "CREATE TABLE t (u VARCHAR(99) DEFAULT CURRENT_USER())",  # DDL keeps the call
        "ALTER TABLE t ALTER u SET DEFAULT USER()",
    ],
)
def test_not_identity_calls(sql: str) -> None:
    for statement in analyze(sql, "db", LexMode(), MARIADB):
        assert statement.identity == ()


def test_identity_positions_are_resolved_on_every_path() -> None:
    """The cached fact carries no positions; analyze() always returns them, in bytes, equal to
    the uncached analysis; cached_shape (the fast path's lookup) shows the unresolved fact, so
    the fast path leaves such statements to the command loop."""
    cache_clear()
    sql = "SELECT 'ü' AS a, USER() FROM t WHERE id = 5"
    expected = (IdentityCall(Identity.USER, True, 18, 24, "USER()", items=((24, "USER()"),)),)
    for _ in range(3):  # miss, shape hit, fast-key hit
        [statement] = analyze(sql, "db", LexMode(), MARIADB)
        assert statement.identity == expected
    [uncached] = analyze_uncached(sql, "db", LexMode(), MARIADB)
    assert uncached.identity == expected
    hit = cached_shape("SELECT 'x' AS a, USER() FROM t WHERE id = 6", "db")
    assert hit is not None and hit[1].identity == (IdentityCall(Identity.USER, True),)
    with pytest.raises(ValueError):
        identity_splices((hit[1],), VALUES)


NAMES = st.sampled_from(["USER()", "CURRENT_USER", "@@port", "CONNECTION_ID()", "a", "'s'", "1"])


@settings(max_examples=200, deadline=None)
@given(items=st.lists(NAMES, min_size=1, max_size=5), sep=st.sampled_from([",", " , ", ",\n  "]))
def test_rewritten_text_lexes_as_the_original_with_values(items: list[str], sep: str) -> None:
    """Whatever surrounds them, the calls become exactly one literal token each (plus an
    alias) and every other token stays as it was."""
    sql = "SELECT " + sep.join(items) + " FROM t"
    [statement] = analyze_uncached(sql, "db", LexMode(), MARIADB)
    assert statement.kind is Kind.QUERY
    before = [t.image for t in lex(sql, LexMode(), MARIADB)[0].tokens]
    after = [t.image for t in lex(rewritten(sql), LexMode(), MARIADB)[0].tokens]
    calls = sum(1 for i in items if i in ("USER()", "CURRENT_USER", "@@port", "CONNECTION_ID()"))
    assert after.count("AS") == calls  # each a select item of its own: named as written
    literals = ("?", "'?'")
    call_tokens = ("USER", "CURRENT_USER", "@@port", "CONNECTION_ID", "(", ")")
    assert [i for i in after if i != "AS" and i not in literals and i[0] != "`"] == [
        i for i in before if i not in literals and i not in call_tokens
    ]


# -- handshake character sets --------------------------------------------------------------------


def test_client_collations() -> None:
    assert client_collation(8) == 8  # latin1_swedish_ci
    assert client_collation(51) == 51  # cp1251_general_ci
    assert client_collation(7) == 7  # koi8r_general_ci
    assert client_collation(224) == 224  # utf8mb4_unicode_ci
    assert client_collation(255) == UTF8MB4_GENERAL_CI  # MySQL 8's: unknown to MariaDB 10.11
    assert client_collation(35) == UTF8MB4_GENERAL_CI  # ucs2: never a client character set
    assert client_collation(1057) == UTF8MB4_GENERAL_CI  # utf8mb3, an id past one byte
    for unsafe in (28, 1, 13, 95, 24):  # gbk, big5, sjis, cp932, gb2312
        refused = client_collation(unsafe)
        assert isinstance(refused, SqlError) and refused.errno == 1235


# -- 1064 worded as the shard words it -----------------------------------------------------------


@pytest.mark.parametrize("sql", ["SELEC 1", "SELECT 'unterminated", "SELECT 1 FROM WHERE 2"])
def test_syntax_errors_name_the_shards_server(sql: str) -> None:
    for _ in range(2):  # also from the cache
        [mariadb] = analyze(sql, "db", LexMode(), MARIADB)
        [mysql] = analyze(sql, "db", LexMode(), MYSQL)
        assert mariadb.error is not None and mysql.error is not None
        assert "to your MariaDB server version" in mariadb.error.message
        assert "to your MySQL server version" in mysql.error.message


# -- the scanner and MARIADB_CLIENT_CACHE_METADATA -----------------------------------------------


def test_scanner_follows_the_metadata_follows_byte() -> None:
    """With metadata caching negotiated, a column count carries MariaDB's metadata-follows byte:
    1 for a text result, 0 for a re-executed prepared statement whose columns the client has
    (then the EOF follows the count at once; captured from MariaDB 10.11)."""
    caps = int(Capability.PROTOCOL_41 | Capability.MARIADB_CLIENT_CACHE_METADATA)
    skipped = [b"\x02\x00", build_eof(), b"\x00\x00\x01\x00\x00\x00\x02{}", build_eof()]
    with_metadata = [
        build_column_count(2) + b"\x01",
        build_column_definition(name="a", type_code=3),
        build_column_definition(name="b", type_code=253),
        build_eof(),
        build_text_row(["1", "x"]),
        build_eof(),
    ]
    for payloads, rows in ((skipped, 1), (with_metadata, 1)):
        data = b"".join(frame(i + 1, p) for i, p in enumerate(payloads))
        scanner = ResponseScanner(ResponseKind.QUERY, caps)
        assert scanner.feed(data) == len(data)
        assert scanner.rows == rows


def test_the_account_grammars_1064_reworded_for_the_shard() -> None:
    error = parse_error("x", 2)
    assert worded_for(error, "MySQL") is error
    assert worded_for(error, "MariaDB") == parse_error("x", 2, "MariaDB")
    other = SqlError(1235, "42000", "not supported")
    assert worded_for(other, "MariaDB") is other


def test_scanner_and_parse_ok_read_an_ok_with_session_state() -> None:
    """MariaDB 10.11's OK to ``SET NAMES latin1`` with CLIENT_SESSION_TRACK (captured): the
    scanner ends the response there with its status, the proxy's own parser reads it whole."""
    captured = bytes.fromhex(
        "00000002400000005f0020186368617261637465725f7365745f636f6e6e656374696f6e066c6174696e"
        "31001d156368617261637465725f7365745f726573756c7473066c6174696e31001c1463686172616374"
        "65725f7365745f636c69656e74066c6174696e31"
    )
    caps = int(Capability.PROTOCOL_41 | Capability.SESSION_TRACK)
    scanner = ResponseScanner(ResponseKind.QUERY, caps)
    data = frame(1, captured)
    assert scanner.feed(data) == len(data)
    assert scanner.status == 0x4002
    ok = parse_ok(captured, caps)
    assert (ok.status, ok.info) == (0x4002, b"")


def test_every_identity_names_a_field_of_the_values() -> None:
    """IdentityValues.value reads the field an Identity's value names (information_schema's
    privilege tables: the account's grants, not a value of the session)."""
    fields = {f.name for f in dataclasses.fields(IdentityValues)}
    grants = {*GRANT_VIEWS, Identity.GRANTS_QUALIFIER}
    assert {identity.value for identity in Identity if identity not in grants} <= fields
    assert VALUES.value(Identity.PORT) == 3307 and VALUES.value(Identity.FOUND_ROWS) is None


def _granted(sql: str, mode: LexMode | None = None) -> str:
    """``sql`` with information_schema's privilege tables replaced by ``<T>``."""
    statement = analyze(sql, "db", mode or LexMode())[0]
    splices = identity_splices((statement,), VALUES, lambda view: f"<{view}>")
    return apply_splices(sql.encode(), splices).decode()


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT * FROM information_schema.TABLE_PRIVILEGES",
            "SELECT * FROM <TABLE_PRIVILEGES> AS `TABLE_PRIVILEGES`",
        ),
        (
            "select grantee from `INFORMATION_SCHEMA`.`user_privileges` where 1",
            "select grantee from <USER_PRIVILEGES> AS `user_privileges` where 1",
        ),
        (
            "SELECT 1 FROM information_schema . SCHEMA_PRIVILEGES AS s, information_schema."
            "COLUMN_PRIVILEGES c",
            "SELECT 1 FROM <SCHEMA_PRIVILEGES> AS s, <COLUMN_PRIVILEGES> c",
        ),
        (
            "SELECT information_schema.USER_PRIVILEGES.GRANTEE FROM information_schema."
            "USER_PRIVILEGES",
            "SELECT  USER_PRIVILEGES.GRANTEE FROM <USER_PRIVILEGES> AS `USER_PRIVILEGES`",
        ),
        (
            "SELECT (SELECT COUNT(*) FROM information_schema.TABLE_PRIVILEGES)",
            "SELECT (SELECT COUNT(*) FROM <TABLE_PRIVILEGES> AS `TABLE_PRIVILEGES` )",
        ),
        # Its structure alone (no rows): the shard answers.
        (
            "DESCRIBE information_schema.TABLE_PRIVILEGES",
            "DESCRIBE information_schema.TABLE_PRIVILEGES",
        ),
        (
            "SHOW COLUMNS FROM information_schema.USER_PRIVILEGES",
            "SHOW COLUMNS FROM information_schema.USER_PRIVILEGES",
        ),
        (
            "SHOW CREATE TABLE information_schema.USER_PRIVILEGES",
            "SHOW CREATE TABLE information_schema.USER_PRIVILEGES",
        ),
        (
            "EXPLAIN SELECT * FROM information_schema.USER_PRIVILEGES",
            "EXPLAIN SELECT * FROM <USER_PRIVILEGES> AS `USER_PRIVILEGES`",
        ),
        # Not a privilege table: the shard answers.
        ("SELECT * FROM information_schema.TABLES", "SELECT * FROM information_schema.TABLES"),
        (
            "SELECT 'information_schema.TABLE_PRIVILEGES'",
            "SELECT 'information_schema.TABLE_PRIVILEGES'",
        ),
    ],
)
def test_privilege_tables_are_replaced(sql: str, expected: str) -> None:
    assert _granted(sql) == expected


def test_privilege_tables_under_ansi_quotes() -> None:
    sql = 'SELECT "GRANTEE" FROM "information_schema"."TABLE_PRIVILEGES" "t"'
    assert (
        _granted(sql, LexMode(ansi_quotes=True)) == 'SELECT "GRANTEE" FROM <TABLE_PRIVILEGES> "t"'
    )


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE VIEW v AS SELECT * FROM information_schema.TABLE_PRIVILEGES",
        "CREATE TABLE t AS SELECT GRANTEE FROM information_schema.USER_PRIVILEGES",
        "CREATE OR REPLACE VIEW v AS SELECT 1 FROM information_schema.SCHEMA_PRIVILEGES",
    ],
)
def test_privilege_tables_in_stored_definitions_are_refused(sql: str) -> None:
    statement = analyze(sql, "db", LexMode())[0]
    assert statement.kind is Kind.REFUSED and statement.error is not None
    assert statement.error.errno == 1235 and "stored definition" in statement.error.message
    assert all(call.identity not in GRANT_VIEWS for call in statement.identity)


@pytest.mark.parametrize(
    ("sql", "spliced"),
    [
        ("SELECT USER() + 'é' FROM t", "SELECT 'u@10.0.0.7' + 'é' AS `USER() + 'é'` FROM t"),
        (
            "SELECT CONCAT(USER(), `x`)",
            "SELECT CONCAT( 'u@10.0.0.7' , `x`) AS `CONCAT(USER(), ``x``)`",
        ),
        ("SELECT USER() - a.b, 1", "SELECT 'u@10.0.0.7' - a.b AS `USER() - a.b` , 1"),
        ("SELECT USER() x, USER() AS y", "SELECT 'u@10.0.0.7' x, 'u@10.0.0.7' AS y"),
        ("SELECT USER() 'x'", "SELECT 'u@10.0.0.7' 'x'"),  # (a string alias: left)
        (
            "SELECT CASE WHEN USER() THEN 1 END",
            "SELECT CASE WHEN 'u@10.0.0.7' THEN 1 END AS `CASE WHEN USER() THEN 1 END`",
        ),
        (
            "SELECT (SELECT USER()) + 1",
            "SELECT (SELECT 'u@10.0.0.7' AS `USER()` ) + 1 AS `(SELECT USER()) + 1`",
        ),
        ("SELECT USER() + USER()", "SELECT 'u@10.0.0.7' + 'u@10.0.0.7' AS `USER() + USER()`"),
        (
            "SELECT DISTINCT USER() = 1 FROM t",
            "SELECT DISTINCT 'u@10.0.0.7' = 1 AS `USER() = 1` FROM t",
        ),
        ("SELECT USER() /*! + 1 */", "SELECT 'u@10.0.0.7' /*! + 1 */"),  # (cut by a comment)
        ("SET @a = USER()", "SET @a = 'u@10.0.0.7'"),
        ("SELECT 1 FROM t WHERE a = USER()", "SELECT 1 FROM t WHERE a = 'u@10.0.0.7'"),
    ],
)
def test_a_select_item_around_an_answered_call_keeps_its_name(sql: str, spliced: str) -> None:
    """MariaDB names a select item without an alias by its text as written: each such item
    around a call the proxy answers gets that text as its alias (backquotes doubled), once;
    an item with an alias, or one whose end is not certain to be no alias, is left."""
    statements = tuple(analyze(sql, "db", LexMode(), MARIADB))
    data = sql.encode()
    assert apply_splices(data, identity_splices(statements, VALUES)).decode() == spliced
