"""The MySQL/MariaDB-faithful lexer: tokens, executable text, shape keys, errors."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import proxy.sql.lexer as lexer_module
from proxy.sql.lexer import (
    DEFAULT_MODE,
    LexedStatement,
    LexError,
    LexMode,
    ServerFlavor,
    TokenKind,
    lex,
    shapes,
    spaced_call,
    unescape_string,
    utf8_offsets,
)

DEFAULT = LexMode()
ANSI = LexMode(ansi_quotes=True)
NOBS = LexMode(no_backslash_escapes=True)
BOTH = LexMode(ansi_quotes=True, no_backslash_escapes=True)
MARIADB = ServerFlavor(101119, True)  # MariaDB 10.11.19
MYSQL80 = ServerFlavor(80035, False)  # MySQL 8.0.35: 5-digit versions only
MYSQL84 = ServerFlavor(80403, False)  # MySQL 8.4.3: 6 digits when a space follows


def one(sql: str, mode: LexMode = DEFAULT) -> LexedStatement:
    statements = lex(sql, mode)
    assert len(statements) == 1, statements
    return statements[0]


def kinds_values(sql: str, mode: LexMode = DEFAULT) -> list[tuple[str, str]]:
    return [(t.kind.name, t.value) for t in one(sql, mode).tokens]


# --- quoting and escapes -------------------------------------------------------------------------

STRING_CASES = [
    # (sql, mode, expected (kind, value) tokens)
    ("SELECT 'a''b'", DEFAULT, [("WORD", "SELECT"), ("STRING", "a'b")]),
    ("SELECT 'a\\'b'", DEFAULT, [("WORD", "SELECT"), ("STRING", "a'b")]),
    (
        "SELECT 'a\\nb\\0\\Z\\%\\_\\q'",
        DEFAULT,
        [("WORD", "SELECT"), ("STRING", "a\nb\0\x1a\\%\\_q")],
    ),
    ("SELECT 'a\\'", NOBS, [("WORD", "SELECT"), ("STRING", "a\\")]),
    ("SELECT 'a\\''b'", NOBS, [("WORD", "SELECT"), ("STRING", "a\\'b")]),
    ('SELECT "a""b"', DEFAULT, [("WORD", "SELECT"), ("STRING", 'a"b')]),
    ('SELECT "a\\"b"', DEFAULT, [("WORD", "SELECT"), ("STRING", 'a"b')]),
    ('SELECT "a""b"', ANSI, [("WORD", "SELECT"), ("IDENT", 'a"b')]),
    ('SELECT "a\\"', ANSI, [("WORD", "SELECT"), ("IDENT", "a\\")]),
    ('SELECT "a\\"', BOTH, [("WORD", "SELECT"), ("IDENT", "a\\")]),
    ("SELECT `a``b`", DEFAULT, [("WORD", "SELECT"), ("IDENT", "a`b")]),
    ("SELECT `a.b'--#/*`", DEFAULT, [("WORD", "SELECT"), ("IDENT", "a.b'--#/*")]),
    ("SELECT `a\\`", DEFAULT, [("WORD", "SELECT"), ("IDENT", "a\\")]),
    ("SELECT N'x'", DEFAULT, [("WORD", "SELECT"), ("STRING", "x")]),
    ("SELECT 'a\x00\x01\udcff'", DEFAULT, [("WORD", "SELECT"), ("STRING", "a\x00\x01\udcff")]),
    (
        "SELECT X'4142', x'', 0x4F",
        DEFAULT,
        [
            ("WORD", "SELECT"),
            ("HEX", "X'4142'"),
            ("OP", ","),
            ("HEX", "x''"),
            ("OP", ","),
            ("HEX", "0x4F"),
        ],
    ),
    (
        "SELECT B'101', 0b1",
        DEFAULT,
        [("WORD", "SELECT"), ("BIT", "B'101'"), ("OP", ","), ("BIT", "0b1")],
    ),
    ("SELECT x 'a'", DEFAULT, [("WORD", "SELECT"), ("WORD", "x"), ("STRING", "a")]),
    ("SELECT _utf8mb4'a'", DEFAULT, [("WORD", "SELECT"), ("WORD", "_utf8mb4"), ("STRING", "a")]),
    (
        "SELECT @a, @'b c', @`d`, @\"e\", @a.b$c",
        DEFAULT,
        [
            ("WORD", "SELECT"),
            ("USER_VAR", "a"),
            ("OP", ","),
            ("USER_VAR", "b c"),
            ("OP", ","),
            ("USER_VAR", "d"),
            ("OP", ","),
            ("USER_VAR", "e"),
            ("OP", ","),
            ("USER_VAR", "a.b$c"),
        ],
    ),
    (
        "SELECT @@sql_mode, @@SESSION.autocommit",
        DEFAULT,
        [
            ("WORD", "SELECT"),
            ("SYS_VAR", "sql_mode"),
            ("OP", ","),
            ("SYS_VAR", "session.autocommit"),
        ],
    ),
    (
        "SELECT 1, 1.5, .5, 1e5, 1.5E-3, 00",
        DEFAULT,
        [
            ("WORD", "SELECT"),
            ("NUMBER", "1"),
            ("OP", ","),
            ("NUMBER", "1.5"),
            ("OP", ","),
            ("NUMBER", ".5"),
            ("OP", ","),
            ("NUMBER", "1e5"),
            ("OP", ","),
            ("NUMBER", "1.5E-3"),
            ("OP", ","),
            ("NUMBER", "00"),
        ],
    ),
    (
        "SELECT a<=>b, a<<1, !a, a:=1, a||b, a&&b",
        DEFAULT,
        [
            ("WORD", "SELECT"),
            ("WORD", "a"),
            ("OP", "<=>"),
            ("WORD", "b"),
            ("OP", ","),
            ("WORD", "a"),
            ("OP", "<<"),
            ("NUMBER", "1"),
            ("OP", ","),
            ("OP", "!"),
            ("WORD", "a"),
            ("OP", ","),
            ("WORD", "a"),
            ("OP", ":="),
            ("NUMBER", "1"),
            ("OP", ","),
            ("WORD", "a"),
            ("OP", "||"),
            ("WORD", "b"),
            ("OP", ","),
            ("WORD", "a"),
            ("OP", "&&"),
            ("WORD", "b"),
        ],
    ),
    ("SELECT ?", DEFAULT, [("WORD", "SELECT"), ("PARAM", "?")]),
    (
        "SELECT tbl$x, é",
        DEFAULT,
        [("WORD", "SELECT"), ("WORD", "tbl$x"), ("OP", ","), ("IDENT", "é")],
    ),
]


@pytest.mark.parametrize(("sql", "mode", "expected"), STRING_CASES)
def test_tokens(sql: str, mode: LexMode, expected: list[tuple[str, str]]) -> None:
    got = kinds_values(sql, mode)
    # a word that can only be an identifier is reported as IDENT; compare kinds loosely there
    assert [
        (k if k != "IDENT" or e[0] != "WORD" else "WORD", v)
        for (k, v), e in zip(got, expected, strict=True)
    ] == expected


def test_unescape_string() -> None:
    assert unescape_string("a\\tb''", "'", True) == "a\tb'"
    assert unescape_string("a\\tb''", "'", False) == "a\\tb'"


# --- reserved words next to a dot are identifiers ------------------------------------------------

DOT_CASES = [
    ("SELECT t.select FROM t", ["SELECT", "t", ".", "`select`", "FROM", "t"]),
    ("SELECT * FROM select.t", ["SELECT", "*", "FROM", "`select`", ".", "`t`"]),
    ("SELECT * FROM db . t", ["SELECT", "*", "FROM", "db", ".", "t"]),
    ("SELECT `t`.`c` FROM t", ["SELECT", "`t`", ".", "`c`", "FROM", "t"]),
]


@pytest.mark.parametrize(("sql", "images"), DOT_CASES)
def test_dot_identifiers(sql: str, images: list[str]) -> None:
    got = [t.image for t in one(sql).tokens]
    # an ordinary word next to a dot may be shown either way; reserved ones must be quoted
    assert [g.strip("`") for g in got] == [i.strip("`") for i in images]
    for g, i in zip(got, images, strict=True):
        if i.startswith("`") and i.strip("`").upper() in ("SELECT",):
            assert g == i


# --- comments ------------------------------------------------------------------------------------

COMMENT_CASES = [
    # (sql, keys of the statements, executable texts)
    ("SELECT 1 -- comment\n + 2", ["SELECT ? + ?"], ["SELECT 1  \n + 2"]),
    ("SELECT 1 --x", ["SELECT ? - - x"], ["SELECT 1 --x"]),
    ("SELECT 1--1", ["SELECT ? - - ?"], ["SELECT 1--1"]),
    ("SELECT 1 --\tx\n", ["SELECT ?"], ["SELECT 1"]),
    ("SELECT 1 --", ["SELECT ?"], ["SELECT 1"]),
    ("SELECT 1 # comment ; DROP TABLE t\n, 2", ["SELECT ? , ?"], ["SELECT 1  \n, 2"]),
    ("SELECT 1 /* ; DROP TABLE t */ + 2", ["SELECT ? + ?"], ["SELECT 1   + 2"]),
    ("SELECT 1 /* /* not nested */ + 2", ["SELECT ? + ?"], ["SELECT 1   + 2"]),
    (
        "SELECT '-- not a comment', '/* nor this */', '# nor'",
        ["SELECT '?' , '?' , '?'"],
        ["SELECT '-- not a comment', '/* nor this */', '# nor'"],
    ),
    ("SELECT 2*/*c*/3", ["SELECT ? * ?"], ["SELECT 2* 3"]),
    ("/* leading */ SELECT 1 /* trailing */", ["SELECT ?"], ["SELECT 1"]),
    ("SELECT 1 /*+ hint */", ["SELECT ?"], ["SELECT 1"]),
]


@pytest.mark.parametrize(("sql", "keys", "texts"), COMMENT_CASES)
def test_comments(sql: str, keys: list[str], texts: list[str]) -> None:
    statements = lex(sql)
    assert [s.key for s in statements] == keys
    assert [s.text for s in statements] == texts


# --- executable comments -------------------------------------------------------------------------

Flavor = ServerFlavor | None

EXEC_CASES: list[tuple[str, Flavor, list[str], list[str]]] = [
    # (sql, server, keys of the statements, executable texts)
    ("/*! DROP TABLE t */", None, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*! DROP TABLE t */", MYSQL84, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*!50001 DROP TABLE t */", MARIADB, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*!50001 DROP TABLE t */", MYSQL80, ["DROP TABLE t"], ["DROP TABLE t"]),
    # MariaDB skips MySQL's 5.7+ versions unless written /*M!
    ("/*!50700 DROP TABLE t */", MARIADB, [], []),
    ("/*!50700 DROP TABLE t */", MYSQL80, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*!99999 DROP TABLE t */", MARIADB, [], []),
    ("/*!99999 DROP TABLE t */", ServerFlavor(100000, False), ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*M!99999 DROP TABLE t */", MARIADB, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*M!50700 DROP TABLE t */", MARIADB, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*!100101 DROP TABLE t */", MARIADB, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*!101119 DROP TABLE t */", MARIADB, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*!101120 DROP TABLE t */", MARIADB, [], []),
    ("/*M!101120 DROP TABLE t */", MARIADB, [], []),
    ("/*M!100101 DROP TABLE t */", MARIADB, ["DROP TABLE t"], ["DROP TABLE t"]),
    # /*M! is MariaDB's: an ordinary comment on MySQL (no nesting there)
    ("/*M! DROP TABLE t */", MARIADB, ["DROP TABLE t"], ["DROP TABLE t"]),
    ("/*M! DROP TABLE t */", MYSQL84, [], []),
    ("SELECT 1 /*M! /* x */ + 2", MYSQL84, ["SELECT ? + ?"], ["SELECT 1   + 2"]),
    # six digits: always on MariaDB; on MySQL 8.1+ only before whitespace; never before 8.1
    ("SELECT 5 + /*!1000007*/", MARIADB, ["SELECT ? + ?"], ["SELECT 5 +  7"]),
    ("SELECT 5 + /*!800001 */", MYSQL84, ["SELECT ? +"], ["SELECT 5 +"]),
    ("SELECT 5 + /*!800001 */", MYSQL80, ["SELECT ? + ?"], ["SELECT 5 +  1"]),
    ("SELECT 5 + /*!8000017*/", MYSQL84, ["SELECT ? + ?"], ["SELECT 5 +  17"]),
    ("SELECT 5 + /*!8000017*/", MARIADB, ["SELECT ? +"], ["SELECT 5 +"]),
    ("SELECT 5 + /*!800001*/", MYSQL84, ["SELECT ? + ?"], ["SELECT 5 +  1"]),
    # fewer than five digits: not versioned, the digits are code
    ("SELECT 5 + /*!1234*/", None, ["SELECT ? + ?"], ["SELECT 5 +  1234"]),
    ("SELECT 5 + /*M!1234*/", MARIADB, ["SELECT ? + ?"], ["SELECT 5 +  1234"]),
    ("SELECT 5 + /*!12345a*/", MARIADB, ["SELECT ? + a"], ["SELECT 5 +  a"]),
    # a skipped comment may hold one nested /* */ (consume_comment(1)), and only one level
    ("SELECT 5 /*!99999 + /* x */ 1000 */ + 1", MARIADB, ["SELECT ? + ?"], ["SELECT 5   + 1"]),
    (
        "SELECT 5 /*!99999 + /* x */ 1 /* y */ + 2 */ + 3",
        MARIADB,
        ["SELECT ? + ?"],
        ["SELECT 5   + 3"],
    ),
    ("SELECT 5 /*!99999 /*/ + 1 */ + 10 */ + 100", MARIADB, ["SELECT ? + ?"], ["SELECT 5   + 100"]),
    ("SELECT 5 /*!99999 ; */ + 1", MARIADB, ["SELECT ? + ?"], ["SELECT 5   + 1"]),
    ("SELECT 1 /*!, 2 */", None, ["SELECT ? , ?"], ["SELECT 1  , 2"]),
    ("SELECT 1/*!-1*/", None, ["SELECT ? - ?"], ["SELECT 1 -1"]),
    ("SELECT 1-/*!- 1*/", None, ["SELECT ? - - ?"], ["SELECT 1- - 1"]),
    ("SELECT /*!'*/'*/ x", None, ["SELECT '?' x"], ["SELECT  '*/'  x"]),
    ("/*!SELECT*/ 1", None, ["SELECT ?"], ["SELECT  1"]),
    ("SeLeCt /*!*/ 1", None, ["SELECT ?"], ["SeLeCt    1"]),
    # what follows a skipped comment's end is code: here '*' and '/'
    ("SELECT 5 /*!99999 */*/ 2", MARIADB, ["SELECT ? * / ?"], ["SELECT 5  */ 2"]),
    ("SELECT '/*!99999 x */'", None, ["SELECT '?'"], ["SELECT '/*!99999 x */'"]),
    # MariaDB skips a comment in the code of an executable comment and reads on in the code
    # (/* */ to its first */, # and -- to the end of the line, a skipped versioned comment
    # with its one nested level)
    (
        "SELECT 5 /*!50000 + 1 /* c */ + 2 */",
        MARIADB,
        ["SELECT ? + ? + ?"],
        ["SELECT 5   + 1   + 2"],
    ),
    (
        "SELECT 5 /*M! + 1 /* c /* d */ + 2 */",
        MARIADB,
        ["SELECT ? + ? + ?"],
        ["SELECT 5   + 1   + 2"],
    ),
    ("SELECT 5 /*! + 1 /*/ + 2 */ + 3 */", MARIADB, ["SELECT ? + ? + ?"], ["SELECT 5   + 1   + 3"]),
    ("SELECT 5 /*! + 1 # c */\n + 2 */", MARIADB, ["SELECT ? + ? + ?"], ["SELECT 5   + 1  \n + 2"]),
    (
        "SELECT 5 /*! + 1 -- c */\n + 2 */",
        MARIADB,
        ["SELECT ? + ? + ?"],
        ["SELECT 5   + 1  \n + 2"],
    ),
    (
        "SELECT 5 /*!50000 + 1 /*!99999 + 2 /* x */ + 7 */ + 3 */",
        MARIADB,
        ["SELECT ? + ? + ?"],
        ["SELECT 5   + 1   + 3"],
    ),
    (
        "SELECT 5 /*! + 1 /*M!999999 + 2 */ */ + 4",
        MARIADB,
        ["SELECT ? + ? + ?"],
        ["SELECT 5   + 1     + 4"],
    ),
    (
        "SELECT 5 /*! + 1 /*!50700 + 2 */ + 3 */",
        MARIADB,
        ["SELECT ? + ? + ?"],
        ["SELECT 5   + 1   + 3"],
    ),
]


@pytest.mark.parametrize(("sql", "flavor", "keys", "texts"), EXEC_CASES)
def test_executable_comments(sql: str, flavor: Flavor, keys: list[str], texts: list[str]) -> None:
    statements = lex(sql, flavor=flavor)
    assert [s.key for s in statements] == keys
    assert [s.text for s in statements] == texts
    assert [(s.key, s.text) for s in shapes(sql, flavor=flavor)] == list(
        zip(keys, texts, strict=True)
    )


EXEC_ERRORS: list[tuple[str, Flavor]] = [
    # the reading depends on the server, which is not known
    ("/*!50001 DROP TABLE t */", None),
    ("/*!1234567 SELECT 1 */", None),
    ("/*M! DROP TABLE t */", None),
    ("/*M!100101 DROP TABLE t */", None),
    # Galera executes /*!99997 ...*/
    ("SELECT 1 /*!99997 , 2 */", MARIADB),
    # a ';' in the code of an executable comment: MariaDB's reading depends on the client
    ("SELECT 1 /*!; DROP TABLE t */", MARIADB),
    ("/*!50000 SELECT 6; */", MARIADB),
    ("SELECT 5 /*!50000 + 1 ;", MARIADB),
    # an executable comment in the code of one (on MariaDB its "*/" ends both), and any
    # comment there for a server not known to be MariaDB
    ("SELECT 5 /*! + 1 /*! + 2 */ + 3 */", MARIADB),
    ("SELECT 5 /*! + 1 /*!50000 + 2 */ */* c */ 4", MARIADB),
    ("SELECT 5 /*! + 1 /*M! + 2 */ + 3 */", MARIADB),
    ("SELECT 5 /*! + 1 /*!101119 + 2 */ + 3 */", MARIADB),
    ("SELECT 5 /*!50000 + 1 /* c */ + 2 */", MYSQL84),
    ("SELECT 5 /*! + 1 /* c */ + 2 */", None),
    ("SELECT 5 /*! + 1 /* c */ + 2 */", ServerFlavor(120100, True)),  # (not checked there)
    ("SELECT 5 /*! + 1 # c \n + 2 */", MYSQL80),
    # a comment in the code running to the end: the executable comment is unterminated
    ("SELECT 5 /*! + 1 # c */", MARIADB),
    ("SELECT 5 /*! + 1 -- c */", MARIADB),
    ("SELECT 5 /*! + 1 /* c */", MARIADB),
    ("SELECT 5 /*! + 1 /*!99999 c */", MARIADB),
    ("SELECT 5 /*! + 1 /* c \x00 */ */", MARIADB),
    # unterminated, also when skipped or nested
    ("SELECT 5 /*!99999 + 1 ", MARIADB),
    ("SELECT 5 /*!99999 /* x */", MARIADB),
    ("SELECT 5 /*!99999 /* x ", MARIADB),
    ("SELECT 5 /*M! x ", MYSQL84),
    ("SELECT 5 /*!50000 + 1 ", MARIADB),
    # dollar-quoted strings of MySQL 9
    ("SELECT $$x$$", ServerFlavor(90100, False)),
    # "--" that is no comment, then a comment cut out of the executable text (a space there)
    # or the statement's end (the end of the text): the text would read a comment there
    (
        "SELECT a FROM pub WHERE a = 0 --/*!*/ 1 OR 'x\n OR a IN (SELECT a FROM secret) -- '",
        MARIADB,
    ),
    ("SELECT 0 --/**/ 1, 'x\n, (SELECT a FROM secret) -- '", None),
    ("SELECT 0 --/*!*/ 1", MARIADB),
    ("SELECT 0 /*! --/* c */ 1 */", MARIADB),
    ("SELECT 0 /*! + 1 --# c\n 1 */", MARIADB),
    ("SELECT 0 /*! + 1 --*/ 1", MARIADB),
    ("SELECT 0 --/*!99999 x */ 1", MARIADB),
    ("SELECT 0 --# c\n 1", None),
    ("SELECT 0----\t", None),
    ("SELECT 0--;SELECT 1", None),
    ("SELECT 0--/* c */;SELECT 1", None),
]


def test_a_comment_in_executable_code_is_read_on_the_checked_mariadb_series() -> None:
    for flavor in (ServerFlavor(100600, True), MARIADB, ServerFlavor(110402, True)):
        [statement] = lex("SELECT 5 /*! + 1 /* c */ + 2 */", flavor=flavor)
        assert statement.key == "SELECT ? + ? + ?"


@pytest.mark.parametrize(("sql", "flavor"), EXEC_ERRORS)
def test_executable_comment_errors(sql: str, flavor: Flavor) -> None:
    with pytest.raises(LexError) as info:
        lex(sql, flavor=flavor)
    assert info.value.error.errno == 1064
    with pytest.raises(LexError):
        shapes(sql, flavor=flavor)


def test_executable_text_relexes_to_the_same_key() -> None:
    cases = [(sql, flavor) for sql, flavor, _k, _t in EXEC_CASES]
    cases += [(sql, None) for sql, _k, _t in COMMENT_CASES]
    for sql, flavor in cases:
        for statement in lex(sql, flavor=flavor):
            again = lex(statement.text)
            assert [s.key for s in again] == [statement.key]


def test_executable_text_relexes_to_the_same_key_around_dashes_and_cuts() -> None:
    # every text of up to four of these pieces after "SELECT 0" that the lexer accepts: its
    # executable text reads as its tokens (a cut comment is a space there, which after "--"
    # would make it a comment; the end of a statement's text is the end of the input)
    pieces = ["-", "--", "-- ", "/**/", "/*!", "*/", "/*!99999 x */", "#c\n", "1", " ", "'a\nb'"]
    pieces += [";", "\n", "/*! 1 */"]
    checked = 0
    for count in range(1, 5):
        for combo in itertools.product(pieces, repeat=count):
            sql = "SELECT 0" + "".join(combo)
            try:
                statements = lex(sql, flavor=MARIADB)
            except LexError:
                continue
            for statement in statements:
                again = lex(statement.text, flavor=MARIADB)
                assert [s.key for s in again] == [statement.key], (sql, statement.text)
                checked += 1
    assert checked > 5000


IGNORE_SPACE_CUTS = [
    "SELECT system_user /*!*/ () FROM t",
    "SELECT count/**/(a) FROM t",
    "SELECT count /*! (a) */ FROM t",
    "SELECT /*! count */(a) FROM t",
    "SELECT session_user#c\n() FROM t",
    "SELECT max -- c\n (a) FROM t",
    "SELECT a.sum /**/ FROM a",
]


@pytest.mark.parametrize("sql", IGNORE_SPACE_CUTS)
def test_a_comment_after_a_builtins_name_is_refused_under_ignore_space(sql: str) -> None:
    # MariaDB reads the name (a comment separates it from "("), the executable text -- the
    # comment a space there -- would call the built-in under IGNORE_SPACE
    mode = LexMode(ignore_space=True)
    with pytest.raises(LexError):
        lex(sql, mode, flavor=MARIADB)
    with pytest.raises(LexError):
        shapes(sql, mode, flavor=MARIADB)
    lex(sql, flavor=MARIADB)  # (without IGNORE_SPACE the text reads the name too)


def test_executable_text_relexes_to_the_same_key_after_builtin_names() -> None:
    mode = LexMode(ignore_space=True)
    pieces = ["count", "`count`", " ", "/**/", "/*!", "*/", "#c\n", "(1)", "(", ")", "1"]
    checked = 0
    for count in range(1, 5):
        for combo in itertools.product(pieces, repeat=count):
            sql = "SELECT " + "".join(combo)
            for flavor_mode in (mode, LexMode()):
                try:
                    statements = lex(sql, flavor_mode, flavor=MARIADB)
                except LexError:
                    continue
                for statement in statements:
                    again = lex(statement.text, flavor_mode, flavor=MARIADB)
                    assert [s.key for s in again] == [statement.key], (sql, statement.text)
                    checked += 1
    assert checked > 3000


FLAVORS = [
    ("10.11.19-MariaDB-0+deb12u1", ServerFlavor(101119, True)),
    ("5.5.5-10.11.19-MariaDB-log", ServerFlavor(101119, True)),
    ("5.5.5-10.11.0-MariaDB-shardgate", ServerFlavor(101100, True)),
    ("11.4.2-MariaDB", ServerFlavor(110402, True)),
    ("8.4.3", ServerFlavor(80403, False)),
    ("8.0.36-log", ServerFlavor(80036, False)),
    ("5.7.44-0ubuntu0.18.04.1", ServerFlavor(50744, False)),
]


@pytest.mark.parametrize(("version", "flavor"), FLAVORS)
def test_server_flavor_from_the_handshake(version: str, flavor: ServerFlavor) -> None:
    assert ServerFlavor.parse(version) == flavor


@pytest.mark.parametrize("version", ["", "MariaDB", "10.11", "10.1234.1", "x10.11.19"])
def test_server_flavor_refuses_what_is_no_version(version: str) -> None:
    with pytest.raises(ValueError):
        ServerFlavor.parse(version)


# --- splitting -----------------------------------------------------------------------------------

SPLIT_CASES = [
    ("SELECT 1; SELECT 2", ["SELECT ?", "SELECT ?"]),
    ("SELECT 1;", ["SELECT ?"]),
    (";;SELECT 1;; ;SELECT 2;", ["SELECT ?", "SELECT ?"]),
    ("SELECT ';'; SELECT `;`", ["SELECT '?'", "SELECT `;`"]),
    ("", []),
    ("  -- only a comment", []),
    ("/* c */ ; ;", []),
]


@pytest.mark.parametrize(("sql", "keys"), SPLIT_CASES)
def test_split(sql: str, keys: list[str]) -> None:
    assert [s.key for s in lex(sql)] == keys
    assert [s.key for s in shapes(sql)] == keys


def test_statements_partition_the_input() -> None:
    sql = "SELECT 1;  SELECT 2 ; ;; -- end"
    first, second = lex(sql)
    assert sql[first.start : first.end] == "SELECT 1;"
    assert sql[second.start : second.end] == "  SELECT 2 ; ;; -- end"
    sql = ";; /*!50001 SELECT 1 */;SELECT 2"
    first, second = lex(sql, flavor=MARIADB)
    assert sql[first.start : first.end] == ";; /*!50001 SELECT 1 */;"
    assert sql[second.start : second.end] == "SELECT 2"
    assert [(s.start, s.end) for s in shapes(sql, flavor=MARIADB)] == [(0, 24), (24, 32)]


def test_utf8_offsets() -> None:
    sql = "SELECT 'é';SELECT '\udcff€'; SELECT 1"
    statements = lex(sql)
    encoded = sql.encode("utf-8", "surrogateescape")
    spans = utf8_offsets(sql, [o for s in statements for o in (s.start, s.end)])
    pieces = [encoded[spans[i] : spans[i + 1]] for i in range(0, len(spans), 2)]
    assert pieces == [b"SELECT '\xc3\xa9';", b"SELECT '\xff\xe2\x82\xac';", b" SELECT 1"]
    assert utf8_offsets("SELECT 1", [0, 8]) == [0, 8]


# --- shapes --------------------------------------------------------------------------------------

SAME_SHAPE = [
    ("SELECT c FROM t WHERE id = 1", "SELECT c FROM t WHERE id = 99999"),
    ("SELECT c FROM t WHERE id = 1", "select c from t where id=2.5e3"),
    ("SELECT 'a' FROM t", "SELECT 'it''s \\' -- /* ; ' FROM t"),
    ("SELECT 'a'", 'SELECT "b"'),
    ("SELECT X'41'", "SELECT 0b1"),
    ("SELECT * FROM t WHERE a IN (1, 2)", "SELECT * FROM t -- c\n WHERE a IN (3, /* x */ 4)"),
    ("SELECT `t`", "SELECT `t` /* x */"),
]


@pytest.mark.parametrize(("a", "b"), SAME_SHAPE)
def test_same_shape(a: str, b: str) -> None:
    assert one(a).key == one(b).key


DIFFERENT_SHAPE = [
    ("SELECT c FROM t1", "SELECT c FROM t2"),
    ("SELECT c FROM t", "SELECT c FROM T"),
    ("SELECT c FROM t", "SELECT c FROM `t.x`"),
    ("SELECT * FROM `select`", "SELECT * FROM select"),
    ("SELECT a.b FROM t", "SELECT `a.b` FROM t"),
    ("SELECT 1", "SELECT '1'"),
    ("SELECT 1", "SELECT -1"),
    ("SELECT @a", "SELECT @b"),
    ("SELECT 1 FROM t", "SELECT 1 FROM t /*! WHERE 0 */"),
]


@pytest.mark.parametrize(("a", "b"), DIFFERENT_SHAPE)
def test_different_shape(a: str, b: str) -> None:
    assert one(a).key != one(b).key


def test_keywords_upper_cased_identifiers_kept() -> None:
    assert one("select Col from MyTable where x = 1").key == "SELECT Col FROM MyTable WHERE x = ?"


def test_shape_is_mode_sensitive_where_lexing_is() -> None:
    assert one('SELECT "a"', DEFAULT).key == "SELECT '?'"
    assert one('SELECT "a"', ANSI).key == "SELECT `a`"
    assert one("SELECT 'a\\'' , 1", DEFAULT).key == "SELECT '?' , ?"
    assert one("SELECT 'a\\' , 1", NOBS).key == "SELECT '?' , ?"
    with pytest.raises(LexError):
        lex("SELECT 'a\\' , 1", DEFAULT)


# --- errors --------------------------------------------------------------------------------------

ERROR_CASES = [
    ("SELECT 'abc", DEFAULT),
    ("SELECT 'abc\\'", DEFAULT),
    ('SELECT "abc', DEFAULT),
    ('SELECT "abc', ANSI),
    ("SELECT `abc", DEFAULT),
    ("SELECT 1 /* abc", DEFAULT),
    ("/*! SELECT 1", DEFAULT),
    ("/*!1234567 SELECT 1 */", DEFAULT),
    ("/*! SELECT 1 /* nested */ */", DEFAULT),
    ("/*! SELECT 1 # x */", DEFAULT),
    ("/*! SELECT 1 -- x */", DEFAULT),
    ("SELECT 1abc", DEFAULT),
    ("SELECT 0x1g", DEFAULT),
    ("SELECT 1e5x", DEFAULT),
    ("SELECT t.5", DEFAULT),
    ("SELECT t. 5", DEFAULT),
    ("SELECT 1.a", DEFAULT),
    ("SELECT X'4'", DEFAULT),
    ("SELECT X'zz'", DEFAULT),
    ("SELECT B'12'", DEFAULT),
    ("SELECT \\N", DEFAULT),
    ("SELECT {d '2020-01-01'}", DEFAULT),
    ("SELECT a[1]", DEFAULT),
    ("SELECT a:b", DEFAULT),
    ("SELECT ?a", DEFAULT),
    ("SELECT @", DEFAULT),
    ("SELECT @ a", DEFAULT),
    ("SELECT @abc\u00e9", DEFAULT),  # MariaDB's variable is @abc\u00e9; never @ab and a name
    ("SELECT @@", DEFAULT),
    ("SELECT @@a.b.c", DEFAULT),
    ("SELECT 1\x00", DEFAULT),
    ("SELECT `a\x00b`", DEFAULT),
    ('SELECT "a\x00b"', ANSI),
    ("SELECT 1 -- a\x00b", DEFAULT),
    ("SELECT 1 # a\x00b", DEFAULT),
    ("SELECT 1 /* a\x00b */", DEFAULT),
    ("SELECT @'a\x00b'", DEFAULT),
    ("SELECT 1\x01", DEFAULT),
    ("SELECT a\u00a0b", DEFAULT),
    ("SELECT \u2028", DEFAULT),
]


@pytest.mark.parametrize(("sql", "mode"), ERROR_CASES)
def test_errors(sql: str, mode: LexMode) -> None:
    with pytest.raises(LexError) as info:
        lex(sql, mode)
    assert info.value.error.errno == 1064
    assert info.value.error.sqlstate == "42000"
    assert "You have an error in your SQL syntax" in info.value.error.message
    with pytest.raises(LexError):
        shapes(sql, mode)


def test_error_names_the_place() -> None:
    with pytest.raises(LexError) as info:
        lex("SELECT 1,\n 'abc")
    assert "near ''abc' at line 2" in info.value.error.message


def test_token_kinds_cover_the_shape() -> None:
    statement = one("SELECT a, 'x', 1, ?, @v, @@w, `q` FROM t")
    assert statement.key == " ".join(t.image for t in statement.tokens)
    assert {t.kind for t in statement.tokens} >= {
        TokenKind.WORD,
        TokenKind.STRING,
        TokenKind.NUMBER,
        TokenKind.PARAM,
        TokenKind.USER_VAR,
        TokenKind.SYS_VAR,
        TokenKind.IDENT,
        TokenKind.OP,
    }


# --- properties ----------------------------------------------------------------------------------

_numbers = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.decimals(min_value=0, max_value=10**6, allow_nan=False, places=3).map(str),
    st.sampled_from(["1e5", ".5", "0x1F", "X'4142'", "b'1'"]),
)
_strings = st.text(alphabet=st.characters(exclude_characters="\x00"), max_size=12)


@settings(max_examples=200, deadline=None)
@given(
    numbers=st.lists(_numbers, min_size=4, max_size=4),
    strings=st.lists(_strings, min_size=4, max_size=4),
    mode=st.sampled_from([DEFAULT, NOBS, ANSI, BOTH]),
)
def test_literals_never_change_the_rest_of_the_shape(
    numbers: list[str], strings: list[str], mode: LexMode
) -> None:
    def quote(text: str) -> str:
        if mode.no_backslash_escapes:
            return "'" + text.replace("'", "''") + "'"
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    template = "SELECT c, {} FROM t WHERE x = {} -- {{}}\n AND `y;z` = {} /* ; */ OR w IN ({}, {})"
    first = template.format(numbers[0], quote(strings[0]), quote(strings[1]), numbers[1], "?")
    second = template.format(numbers[2], quote(strings[2]), quote(strings[3]), numbers[3], "7")
    [a] = lex(first, mode)
    [b] = lex(second, mode)
    assert a.key == b.key
    assert a.key.count("?") == 4  # the IN list keeps one element
    assert a.key.endswith("OR w IN ( ? )")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_lexer_never_crashes(text: str) -> None:
    for mode in (DEFAULT, BOTH):
        try:
            statements = lex(text, mode)
        except LexError as err:
            assert err.error.errno == 1064
            continue
        assert [(s.key, s.images, s.text, s.start, s.end) for s in statements] == [
            (k, tuple(i), t, s, e) for k, i, t, s, e in shapes(text, mode)
        ]
        if statements:
            assert statements[0].start == 0 and statements[-1].end == len(text)
            assert all(a.end == b.start for a, b in itertools.pairwise(statements))
        for s in statements:
            assert s.key == " ".join(s.images)
            # the executable text lexes to the same shape: forwarding it loses nothing
            assert [x.key for x in lex(s.text, mode)] == [s.key]


# shapes() skips over literal list elements and VALUES rows with one regular expression; it must
# cut exactly where lex() cuts, and refuse exactly what lex() refuses.
_LIST_PIECES = st.sampled_from(
    [
        "IN", "in", "VALUES", "value", "(", ")", ",", ", ", " ,", "1", "-", "+", "- ", "2.5",
        ".5", "1e3", "1e", "0x1F", "0x", "X'41'", "x'4'", "b'10'", "N'n'", "'s'", "'a''b'",
        "'c\\\\'d'", "'e\\\\'", '"d"', "?", "NULL", "null.x", "TRUE", "a", "`q`", "@v", "/* c */",
        "-- c\n", "#c\n", "/*!", "*/", ";", " ", "\n", "SELECT", "é", "1a", "'",
    ]
)  # fmt: skip


_ELEMENTS = st.sampled_from(
    ["1", "-2", "+ 3", "4.5", "'s'", "'a''b'", "'c\\'d'", '"d"', "NULL", "?", "0x1F", "X'41'",
     "b'1'", "N'n'", "a", "1a", "x'4'", "'", "/* c */ 1", "- - 1", "NULL.x", "-- c\n1", "(1)"]
)  # fmt: skip
_SEPARATORS = st.sampled_from([",", ", ", " ,", ",\n", " , ", ",/**/", ";", ""])


@st.composite
def _literal_list(draw: st.DrawFn) -> str:
    elements = draw(st.lists(_ELEMENTS, min_size=1, max_size=6))
    seps = draw(st.lists(_SEPARATORS, min_size=len(elements), max_size=len(elements)))
    return "(" + "".join(e + sep for e, sep in zip(elements, seps, strict=True))[:-1] + ")"


@st.composite
def _list_chunk(draw: st.DrawFn) -> str:
    keyword = draw(st.sampled_from(["IN ", "in", "VALUES ", "value", " ", "f"]))
    rows = draw(st.lists(_literal_list(), min_size=1, max_size=5))
    joiners = draw(st.lists(_SEPARATORS, min_size=len(rows), max_size=len(rows)))
    return keyword + "".join(r + j for r, j in zip(rows, joiners, strict=True))


@settings(max_examples=600, deadline=None)
@given(
    pieces=st.lists(st.one_of(_LIST_PIECES, _list_chunk()), max_size=12),
    mode=st.sampled_from([DEFAULT, NOBS, ANSI, BOTH]),
)
def test_shapes_cut_like_lex_around_literal_lists(pieces: list[str], mode: LexMode) -> None:
    sql = "".join(pieces)
    try:
        statements = lex(sql, mode)
    except LexError as err:
        with pytest.raises(LexError) as info:
            shapes(sql, mode)
        assert info.value.pos == err.pos
        return
    assert [(s.key, s.images, s.text, s.start, s.end) for s in statements] == [
        (k, tuple(i), t, s, e) for k, i, t, s, e in shapes(sql, mode)
    ]


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.one_of(_LIST_PIECES, _list_chunk()), max_size=12),
    mode=st.sampled_from([DEFAULT, NOBS, ANSI, BOTH]),
    slice_=st.integers(1, 12),
)
def test_shapes_skip_literal_lists_in_slices_like_whole(
    pieces: list[str], mode: LexMode, slice_: int
) -> None:
    """shapes() matches its bulk patterns one slice of the text at a time (so no regex call
    holds the interpreter lock for long): tiny slices, which cut units anywhere, cut the text
    exactly as lex() does."""
    sql = "".join(pieces)
    saved = lexer_module._SKIP_SLICE
    lexer_module._SKIP_SLICE = slice_
    try:
        sliced = shapes(sql, mode)
    except LexError as err:
        with pytest.raises(LexError) as info:
            lex(sql, mode)
        assert info.value.pos == err.pos
        return
    finally:
        lexer_module._SKIP_SLICE = saved
    assert [(s.key, s.images, s.text, s.start, s.end) for s in lex(sql, mode)] == [
        (k, tuple(i), t, s, e) for k, i, t, s, e in sliced
    ]


def test_a_request_holds_at_most_max_statements() -> None:
    """Each statement costs analysis and memory while the request is authorized whole: more
    than MAX_STATEMENTS in one request is refused (1235) as soon as the lexer meets the next
    one, whatever the length of the rest."""
    from proxy.sql.lexer import MAX_STATEMENTS, TOO_MANY_STATEMENTS, LexError, ServerFlavor

    assert len(lex("SELECT 1;" * MAX_STATEMENTS)) == MAX_STATEMENTS
    assert len(lex("SELECT 1;" * (MAX_STATEMENTS - 1) + "SELECT 2")) == MAX_STATEMENTS
    assert len(lex("SELECT 1;" * MAX_STATEMENTS + ";;; -- trailing")) == MAX_STATEMENTS
    for sql in ("SELECT 1;" * MAX_STATEMENTS + "SELECT 2", "DO 1;" * 10 * MAX_STATEMENTS):
        for flavor in (None, ServerFlavor(101106, True)):
            with pytest.raises(LexError) as info:
                lex(sql, flavor=flavor)
            assert (info.value.error.errno, info.value.error.message) == (
                1235,
                f"This version of shardgate doesn't yet support '{TOO_MANY_STATEMENTS}'",
            )


def test_a_statement_holds_at_most_max_tokens_of_structure() -> None:
    """Literal lists collapse and do not count; anything else beyond MAX_TOKENS is refused
    (1235) as soon as the lexer meets it, not after lexing 64 MiB."""
    from proxy.sql.lexer import MAX_TOKENS, TOO_MANY_TOKENS, LexError

    in_list = ", ".join(["1"] * MAX_TOKENS)
    (statement,) = lex(f"SELECT a FROM t WHERE a IN ({in_list})")
    assert len(statement.images) < 20
    rows = ", ".join(["(1, 'x')"] * MAX_TOKENS)
    assert len(shapes(f"INSERT INTO t VALUES {rows}")[0].images) < 20
    columns = ",".join(["a"] * (MAX_TOKENS // 2 - 2))
    assert len(lex(f"SELECT {columns} FROM t")[0].images) <= MAX_TOKENS
    for sql in (
        "SELECT " + ",".join(["a"] * (MAX_TOKENS // 2 + 1)) + " FROM t",
        "SELECT " + "+".join(["1"] * 10 * MAX_TOKENS),
    ):
        for scan in (lex, shapes):
            with pytest.raises(LexError) as info:
                scan(sql)
            assert (info.value.error.errno, info.value.error.message) == (
                1235,
                f"This version of shardgate doesn't yet support '{TOO_MANY_TOKENS}'",
            )


def test_lex_remembers_short_texts_per_mode_and_flavor() -> None:
    """A short text's statements are remembered (the same objects, in a new list each time,
    for the same mode and flavor); another mode lexes on its own, a text that does not lex
    raises every time, a long one is lexed anew each time."""
    sql = 'SELECT "a" FROM t WHERE id = 1; SELECT 2'
    first, again = lex(sql), lex(sql)
    assert first == again and first is not again
    assert all(a is b for a, b in zip(first, again, strict=True))
    ansi = lex(sql, ANSI)
    assert ansi[0].tokens[1].kind is TokenKind.IDENT  # "a" is a name under ANSI_QUOTES
    assert first[0].tokens[1].kind is TokenKind.STRING
    assert lex(sql, ANSI, MARIADB) == ansi and lex(sql, ANSI, MARIADB)[0] is not ansi[0]
    for _ in range(2):
        with pytest.raises(LexError):
            lex("SELECT 'unterminated")
    long_sql = "SELECT " + ", ".join(str(n) for n in range(lexer_module._LEXED_LONGEST))
    assert len(long_sql) > lexer_module._LEXED_LONGEST
    long_first, long_again = lex(long_sql), lex(long_sql)
    assert long_first == long_again and long_first[0] is not long_again[0]


# -- MariaDB's sql_functions[]: a built-in only when "(" follows at once (or IGNORE_SPACE) ------

_IS = LexMode(ignore_space=True)


@pytest.mark.parametrize(
    ("sql", "mode", "called"),
    [
        ("SELECT count(v) FROM t", DEFAULT_MODE, True),
        ("SELECT count (v) FROM t", DEFAULT_MODE, False),
        ("SELECT COUNT\t(v) FROM t", DEFAULT_MODE, False),
        ("SELECT Count\n(v) FROM t", DEFAULT_MODE, False),
        ("SELECT count/**/(v) FROM t", DEFAULT_MODE, False),
        ("SELECT count -- c\n(v) FROM t", DEFAULT_MODE, False),
        ("SELECT count#c\n(v) FROM t", DEFAULT_MODE, False),
        ("SELECT count FROM t", DEFAULT_MODE, False),
        ("SELECT count(v) FROM t", _IS, True),
        ("SELECT count (v) FROM t", _IS, True),
        ("SELECT count \t\r\n\x0b\x0c(v) FROM t", _IS, True),
        ("SELECT count/**/(v) FROM t", _IS, None),
        ("SELECT count/*!*/(v) FROM t", _IS, None),
        ("SELECT /*!count */(v) FROM t", _IS, None),
        ("SELECT /*!count (v)*/ FROM t", _IS, True),
        ("SELECT count -- c\n(v) FROM t", _IS, None),
        ("SELECT count FROM t", _IS, False),
    ],
)
def test_a_spaced_function_name_is_a_name(sql: str, mode: LexMode, called: bool | None) -> None:
    """MariaDB's ``scan_ident_middle``: COUNT, SUM, NOW, TRIM... are the built-in only with
    ``(`` right after them -- under IGNORE_SPACE after whitespace only, never after a comment;
    else an identifier (a stored function ``count``, a column ``count``), quoted in the key.
    (None: under IGNORE_SPACE a comment after the name is refused -- the executable text, the
    comment a space there, would call the built-in.)"""
    if called is None:
        with pytest.raises(LexError):
            lex(sql, mode, ServerFlavor(101119, True))
        return
    [statement] = lex(sql, mode, ServerFlavor(101119, True))
    token = statement.tokens[1]
    assert token.value.upper() == "COUNT"
    assert token.kind is (TokenKind.WORD if called else TokenKind.IDENT)
    assert statement.images[1] == (token.value if called else f"`{token.value}`")


def test_only_sql_functions_names_depend_on_the_space() -> None:
    for name in ("concat", "abs", "myfunc", "user", "if"):
        [statement] = lex(f"SELECT {name} (v) FROM t")
        assert statement.tokens[1].kind is TokenKind.WORD, name
    # a word before a dot, or after one, was a name anyway
    [statement] = lex("SELECT t.count (v), count.x FROM t")
    assert [t.kind for t in statement.tokens[1:4]] == [
        TokenKind.IDENT,
        TokenKind.OP,
        TokenKind.IDENT,
    ]


def test_spaced_call_tells_the_texts_ignore_space_reads_otherwise() -> None:
    assert spaced_call("SELECT count (v)")
    assert spaced_call("SELECT SUM\n(v)")
    assert not spaced_call("SELECT count(v), xcount (v), counts (v), count/**/(v)")
    assert not spaced_call("SELECT concat (v)")
