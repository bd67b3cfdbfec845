"""Statement classification: the case table, hostile inputs, and the shape cache's equivalence."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp

from auth.privileges import Priv, Requirement
from proxy.sql import analyze as analyze_module
from proxy.sql.analyze import (
    DatabaseStatement,
    Kind,
    Statement,
    analyze,
    analyze_uncached,
    analyze_with_digest,
    cache_clear,
    cache_info,
    cached_shape,
)
from proxy.sql.lexer import LexMode, ServerFlavor, lex

CASES_FILE = Path(__file__).with_name("analyze_cases.txt")
DEFAULT_DB = "app"
MARIADB = ServerFlavor(101119, True)  # the case table's server: MariaDB 10.11.19
_MODE_FLAGS = {"ansi": "ansi_quotes", "nobs": "no_backslash_escapes", "is": "ignore_space"}


def _mode(name: str) -> LexMode:
    """A lexer mode as the case table names it: default, or flags joined by + (ansi: ANSI_QUOTES,
    nobs: NO_BACKSLASH_ESCAPES, is: IGNORE_SPACE)."""
    if name == "default":
        return LexMode()
    return LexMode(**{_MODE_FLAGS[flag]: True for flag in name.split("+")})


MODES = {
    name: _mode(name)
    for name in ("default", "ansi", "nobs", "ansi+nobs", "is", "ansi+is", "nobs+is", "ansi+nobs+is")
}


# --- the case table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    kind: Kind
    requirements: frozenset[Requirement] = frozenset()
    errno: int | None = None
    target_db: str | None = None
    kill_id: int | None = None
    kill_query: bool = False
    full: bool = False
    lex_mode: LexMode | None = None
    charset: str | None = None
    reads_is: bool = False
    lexing_unknown: bool = False  # mode=? : the new lexer mode is known once read back
    binds: frozenset[str] = frozenset()  # bind=NAME: what it leaves on the connection
    releases: frozenset[str] = frozenset()  # release=NAME: what it ends if it succeeds
    database: DatabaseStatement | None = None  # DATABASE VERB NAME|- [if_not_exists]


def _parse_expectation(text: str, db: str | None) -> Expected:
    words = text.split()
    kind = Kind[words[0]]
    rest = words[1:]
    if kind is Kind.REFUSED:
        return Expected(kind, errno=int(rest[0]))
    if kind is Kind.USE:
        return Expected(kind, target_db=text.split(None, 1)[1])
    if kind is Kind.KILL:
        return Expected(kind, kill_id=int(rest[0]), kill_query="query" in rest[1:])
    if kind is Kind.SHOW_PROCESSLIST:
        return Expected(kind, full="full" in rest)
    if kind is Kind.DATABASE:
        verb, name = rest[0].replace("_", " "), rest[1]
        database = DatabaseStatement(verb, None if name == "-" else name, "if_not_exists" in rest)
        return Expected(kind, database=database)
    requirements: set[Requirement] = set()
    lex_mode = None
    lexing_unknown = False
    charset = None
    reads_is = False
    binds: set[str] = set()
    releases: set[str] = set()
    # requirement tokens may contain spaces (quoted names): re-split on PRIV: markers
    for item in re.split(r"\s+(?=(?:[A-Z]+:|IS\b|mode=|cs=|bind=|release=))", " ".join(rest)):
        if not item:
            continue
        if item == "IS":
            reads_is = True
        elif item == "mode=?":
            lexing_unknown = True
        elif item.startswith("mode="):
            lex_mode = _mode(item[5:])
        elif item.startswith("bind="):
            binds.add(item[5:].replace("_", " "))
        elif item.startswith("release="):
            releases.add(item[8:].replace("_", " "))
        elif item.startswith("cs="):
            charset = item[3:]
        else:
            # WRITELOCK:t is what LOCK TABLES t WRITE needs besides SELECT
            name, _, target = item.partition(":")
            target, _, column = target.partition("::")  # (t::c: on column c of t)
            one_of: str | None = None
            if name == "WRITELOCK":
                priv, one_of = Priv.INSERT | Priv.UPDATE | Priv.DELETE, "LOCK TABLES"
            else:
                priv = Priv[name]
            if "/" in target:
                tdb, _, table = target.partition("/")
                requirements.add(Requirement(priv, tdb, table or None, one_of, column or None))
            else:
                assert db is not None
                requirements.add(Requirement(priv, db, target, one_of, column or None))
    return Expected(
        kind,
        frozenset(requirements),
        lex_mode=lex_mode,
        charset=charset,
        reads_is=reads_is,
        lexing_unknown=lexing_unknown,
        binds=frozenset(binds),
        releases=frozenset(releases),
    )


def _load_cases() -> list[tuple[str, str | None, LexMode, list[Expected]]]:
    cases = []
    for lineno, line in enumerate(CASES_FILE.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        sql, sep, expectation = line.partition("==>")
        assert sep, f"{CASES_FILE.name}:{lineno}: no ==>"
        sql = sql.strip()
        db: str | None = DEFAULT_DB
        mode = LexMode()
        if sql.startswith("%"):
            prefix, sql = sql.split(None, 1)
            mode = _mode(prefix[1:])
        if sql.startswith("@"):
            prefix, sql = sql.split(None, 1)
            db = None if prefix == "@-" else prefix[1:]
        expected = [_parse_expectation(e.strip(), db) for e in expectation.split(";;")]
        cases.append((sql, db, mode, expected))
    return cases


CASES = _load_cases()


def _check(statement: Statement, expected: Expected, sql: str) -> None:
    where = f"{sql!r} -> {statement}"
    assert statement.kind is expected.kind, where
    if expected.kind is Kind.REFUSED:
        assert statement.error is not None, where
        assert statement.error.errno == expected.errno, where
        assert statement.requirements == (), where
        return
    assert statement.error is None, where
    assert frozenset(statement.requirements) == expected.requirements, where
    assert len(set(statement.requirements)) == len(statement.requirements), where
    assert statement.target_db == expected.target_db, where
    assert statement.kill_id == expected.kill_id, where
    assert statement.kill_query == expected.kill_query, where
    assert statement.full == expected.full, where
    assert statement.lex_mode == expected.lex_mode, where
    assert statement.charset == expected.charset, where
    assert statement.reads_information_schema == expected.reads_is, where
    assert statement.lexing_unknown == expected.lexing_unknown, where
    assert statement.binds == expected.binds, where
    assert statement.releases == expected.releases, where
    assert statement.database == expected.database, where


@pytest.mark.parametrize(
    ("sql", "db", "mode", "expected"),
    CASES,
    ids=[("%is " if c[2].ignore_space else "") + c[0][:60] for c in CASES],
)
def test_case_table(sql: str, db: str | None, mode: LexMode, expected: list[Expected]) -> None:
    uncached = analyze_uncached(sql, db, mode, flavor=MARIADB)
    assert len(uncached) == len(expected), uncached
    for statement, exp_ in zip(uncached, expected, strict=True):
        _check(statement, exp_, sql)
    # the cached path, cold and warm, decides the same
    cache_clear()
    assert analyze(sql, db, mode, flavor=MARIADB) == uncached
    assert analyze(sql, db, mode, flavor=MARIADB) == uncached


def test_case_table_is_big_enough() -> None:
    assert len(CASES) > 350


# --- details the table does not show -------------------------------------------------------------


def test_statement_text_is_the_executable_text_and_offsets_its_source() -> None:
    sql = "/*!50001 SELECT */ a /* c */ FROM t -- x"
    [st1] = analyze_uncached(sql, "app", flavor=MARIADB)
    assert st1.text == "SELECT   a   FROM t"
    assert (st1.start, st1.end) == (0, len(sql))
    sql = "SELECT 1; /*!50001 SELECT 2 */ ; -- end"
    for statements in (
        analyze_uncached(sql, "app", flavor=MARIADB),
        analyze(sql, "app", flavor=MARIADB),
        analyze(sql, "app", flavor=MARIADB),
    ):
        a, b = statements
        assert (a.text, b.text) == ("SELECT 1", "SELECT 2")
        assert (sql[a.start : a.end], sql[b.start : b.end]) == (
            "SELECT 1;",
            " /*!50001 SELECT 2 */ ; -- end",
        )
    # a ; inside the code of an executable comment: its reading depends on the client
    [refused] = analyze_uncached("SELECT 1 /*! ; DROP TABLE t */", "app", flavor=MARIADB)
    assert refused.error is not None and refused.error.errno == 1064


def test_account_statement_text() -> None:
    [statement] = analyze_uncached(
        "/*!40101 GRANT SELECT ON app.* TO 'u'@'%' */", "app", flavor=MARIADB
    )
    assert statement.kind is Kind.ACCOUNT
    assert statement.text == "GRANT SELECT ON app.* TO 'u'@'%'"


@pytest.mark.parametrize(
    ("sql", "mode", "pattern"),
    [
        ("SHOW DATABASES", LexMode(), None),
        ("SHOW DATABASES LIKE 'e%'", LexMode(), "e%"),
        ('show schemas like "e%"', LexMode(), "e%"),
        ("SHOW DATABASES LIKE 'it''s\\_%'", LexMode(), "it's\\_%"),
        ("SHOW DATABASES LIKE 'a\\\\b\\n'", LexMode(), "a\\b\n"),
        ("SHOW DATABASES LIKE 'a\\\\b\\n'", LexMode(no_backslash_escapes=True), "a\\\\b\\n"),
    ],
)
def test_show_databases_like_pattern_is_the_literal_value(
    sql: str, mode: LexMode, pattern: str | None
) -> None:
    [statement] = analyze_uncached(sql, "app", mode)
    assert statement.kind is Kind.SHOW_DATABASES
    assert statement.like_pattern == pattern


def test_show_databases_like_an_identifier_is_refused() -> None:
    [statement] = analyze_uncached('SHOW DATABASES LIKE "e%"', "app", LexMode(ansi_quotes=True))
    assert statement.error is not None and statement.error.errno == 1064


def test_requirement_spelling() -> None:
    [statement] = analyze_uncached("SELECT * FROM MyTable JOIN APP.Other", "app")
    assert statement.requirements == (
        Requirement(Priv.SELECT, "app", "MyTable"),
        Requirement(Priv.SELECT, "APP", "Other"),
    )


def test_errors_carry_mysql_numbers_and_texts() -> None:
    [cross] = analyze_uncached("SELECT * FROM otherdb.t", "app")
    assert cross.error is not None
    assert (cross.error.errno, cross.error.sqlstate) == (1235, "42000")
    assert cross.error.message == "Cross-database queries are not supported; USE otherdb first"
    [nodb] = analyze_uncached("SELECT * FROM t", None)
    assert nodb.error is not None
    assert (nodb.error.errno, nodb.error.sqlstate, nodb.error.message) == (
        1046,
        "3D000",
        "No database selected",
    )
    [file_priv] = analyze_uncached("SELECT LOAD_FILE('/etc/passwd')", "app")
    assert file_priv.error is not None
    assert (file_priv.error.errno, file_priv.error.sqlstate) == (1227, "42000")
    assert file_priv.error.message == (
        "Access denied; you need (at least one of) the FILE privilege(s) for this operation"
    )
    [charset] = analyze_uncached("SET NAMES gbk", "app")
    assert charset.error is not None
    assert "gbk" in charset.error.message and "not supported" in charset.error.message
    [garbage] = analyze_uncached("frobnicate 'x'", "app")
    assert garbage.error is not None
    assert garbage.error.message.startswith("You have an error in your SQL syntax")
    assert "near 'frobnicate 'x''" in garbage.error.message


def test_lexer_errors_refuse_the_whole_request() -> None:
    statements = analyze_uncached("SELECT 1; SELECT 'unterminated", "app")
    assert len(statements) == 1
    assert statements[0].kind is Kind.REFUSED
    assert statements[0].error is not None and statements[0].error.errno == 1064


def test_empty_request() -> None:
    assert analyze_uncached("", "app") == []
    assert analyze(" -- nothing\n ; ", "app") == []


def test_modes_change_lexing() -> None:
    ansi = LexMode(ansi_quotes=True)
    [statement] = analyze_uncached('SELECT "a" FROM "t"', "app", ansi)
    assert statement.requirements == (Requirement(Priv.SELECT, "app", "t"),)
    [statement] = analyze_uncached('SELECT "a" FROM t', "app")
    assert statement.requirements == (Requirement(Priv.SELECT, "app", "t"),)
    # under NO_BACKSLASH_ESCAPES the backslash does not hide the quote
    nobs = LexMode(no_backslash_escapes=True)
    sql = "SELECT 'a\\' , (SELECT b FROM secret) -- '"
    [with_nobs] = analyze_uncached(sql, "app", nobs)
    assert with_nobs.requirements == (Requirement(Priv.SELECT, "app", "secret"),)
    [with_bs] = analyze_uncached(sql, "app")
    assert with_bs.kind is Kind.QUERY  # with backslash escapes it is all one string
    assert with_bs.requirements == ()


def test_sqlglot_never_sees_a_command() -> None:
    # REPLACE and others that sqlglot turns into Command are rewritten before it parses them
    [statement] = analyze_uncached("REPLACE INTO t SELECT * FROM s", "app")
    assert statement.kind is Kind.QUERY


# --- the structural check (proxy/sql/names.py) ---------------------------------------------------


def _refusal(sql: str) -> str:
    [statement] = analyze_uncached(sql, "app")
    assert statement.kind is Kind.REFUSED and statement.error is not None, statement
    assert statement.error.errno == 1235, statement.error
    return statement.error.message


def test_a_word_sqlglot_takes_as_syntax_is_refused_and_named() -> None:
    message = _refusal("SELECT a FROM t ORDER BY a NULLS FIRST")
    assert "unquoted word NULLS" in message and "backticks" in message


def test_each_name_in_the_tree_accounts_for_one_token() -> None:
    # the column NULLS is one name; the second NULLS is still sqlglot's keyword
    _refusal("SELECT NULLS FROM t ORDER BY a NULLS FIRST")
    # a variable's name is no name of the statement
    _refusal("SELECT @NULLS FROM t ORDER BY a NULLS FIRST")


def test_names_and_function_calls_sqlglot_knows_are_accounted_for() -> None:
    for sql, tables in [
        ("SELECT ARRAY_AGG(a), `status`, status FROM t", ["t"]),  # a stored function for MariaDB
        ("SELECT _utf8mb4'x' COLLATE utf8mb4_bin, CONVERT(a USING latin1) FROM t", ["t"]),
        (
            "SELECT * FROM `lateral` AS `window` WHERE `window`.a IN (SELECT a FROM s)",
            ["lateral", "s"],
        ),
    ]:
        [statement] = analyze_uncached(sql, "app")
        assert statement.kind is Kind.QUERY, statement
        assert [r.table for r in statement.requirements] == tables


# --- the shape cache -----------------------------------------------------------------------------


def test_cache_hit_returns_own_text() -> None:
    cache_clear()
    a = analyze("SELECT c FROM sbtest1 WHERE id=1", "app")
    b = analyze("SELECT c FROM sbtest1 WHERE id=2", "app")
    c = analyze("SELECT c FROM sbtest1 WHERE id=3 /* via the lexer */", "app")
    assert [s.text for s in a + b + c] == [
        "SELECT c FROM sbtest1 WHERE id=1",
        "SELECT c FROM sbtest1 WHERE id=2",
        "SELECT c FROM sbtest1 WHERE id=3",
    ]
    assert a[0].requirements == b[0].requirements == c[0].requirements
    info = cache_info()
    assert info["fast_hits"] == 1
    assert info["hits"] == 1


def test_cache_keys_on_database_and_mode() -> None:
    cache_clear()
    [a] = analyze("SELECT * FROM t", "app")
    [b] = analyze("SELECT * FROM t", "other")
    [c] = analyze("SELECT * FROM t", None)
    assert a.requirements[0].db == "app"
    assert b.requirements[0].db == "other"
    assert c.kind is Kind.REFUSED
    [d] = analyze('SELECT "x" FROM t', "app")
    [e] = analyze('SELECT "x" FROM t', "app", LexMode(ansi_quotes=True))
    assert d.requirements == e.requirements
    [f] = analyze('SELECT * FROM "x"', "app")
    [g] = analyze('SELECT * FROM "x"', "app", LexMode(ansi_quotes=True))
    assert f.kind is Kind.REFUSED and g.requirements == (Requirement(Priv.SELECT, "app", "x"),)


def test_session_statements_are_not_cached() -> None:
    cache_clear()
    [a] = analyze("SET sql_mode = 'ANSI_QUOTES'", "app")
    [b] = analyze("SET sql_mode = 'TRADITIONAL'", "app")
    assert a.lex_mode == LexMode(ansi_quotes=True)
    assert b.lex_mode == LexMode()
    [k1] = analyze("KILL 5", "app")
    [k2] = analyze("KILL 6", "app")
    assert (k1.kill_id, k2.kill_id) == (5, 6)
    [u1] = analyze("USE a", "app")
    [u2] = analyze("USE b", "app")
    assert (u1.target_db, u2.target_db) == ("a", "b")
    assert cache_info()["size"] == 0


def test_cache_is_bounded() -> None:
    cache_clear()
    for i in range(analyze_module.CACHE_SIZE + 50):
        analyze(f"SELECT c{i} FROM t WHERE id = 1", "app")
    info = cache_info()
    assert info["size"] <= analyze_module.CACHE_SIZE
    assert info["fast_size"] <= analyze_module.CACHE_SIZE
    cache_clear()


def test_parse_error_of_a_cached_shape_names_its_own_text() -> None:
    cache_clear()
    [a] = analyze("SELECT 1 FROM WHERE 1", "app")
    [b] = analyze("SELECT 2 FROM WHERE 2", "app")
    assert a.error is not None and b.error is not None
    assert "SELECT 1" in a.error.message and "SELECT 2" in b.error.message


# --- property: analyze() == analyze_uncached() ---------------------------------------------------

_IDENT_CHARS = st.sampled_from(
    [
        "t",
        "t2",
        "secret",
        "a.b",
        "x`y",
        "q'r",
        "c -- d",
        "e/*f*/",
        "#g",
        "select",
        "sbtest1",
        "information_schema",
        "otherdb",
        "app",
        "T",
    ]
)
_DBS = st.sampled_from(["app", "APP", "otherdb", "information_schema", "mysql"])


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@st.composite
def _table(draw: st.DrawFn) -> str:
    name = draw(_IDENT_CHARS)
    quoted = draw(st.booleans()) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)
    text = _quote(name) if quoted else name
    if draw(st.integers(0, 3)) == 0:
        text = f"{draw(_DBS)}.{text}"
    return text


@st.composite
def _literal(draw: st.DrawFn) -> str:
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return str(draw(st.integers(-(10**6), 10**12)))
    if choice == 1:
        return draw(
            st.sampled_from(
                ["1.5", ".5", "1e5", "3.25E-2", "0x1F", "X'4142'", "b'101'", "NULL", "TRUE"]
            )
        )
    text = "".join(
        draw(st.lists(st.sampled_from([*"ab ;'\"\\`-#/*!\n%_?", "é", "*/", "/*!"]), max_size=8))
    )
    if choice <= 4:
        return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"
    if choice == 5:
        return '"' + text.replace("\\", "\\\\").replace('"', '""') + '"'
    return "'" + text.replace("'", "\\'").replace("\\\\'", "\\'") + "'"


_COMMENTS = st.sampled_from(
    ["", " ", " /* c */ ", " -- c\n", " # c\n", "/*!*/", " /*!50001 */ ", "\n", " /*+ hint */ "]
)


def _template(draw: st.DrawFn) -> tuple[str, int]:
    """A statement template with {} holes for literals, and the number of holes."""
    t1, t2 = draw(_table()), draw(_table())
    c = draw(_COMMENTS)
    templates = [
        f"SELECT a,{c}{{}} FROM {t1} WHERE b = {{}}",
        f"SELECT * FROM {t1} JOIN {t2} ON {t1}.x = {{}}{c}LIMIT {{}}",
        f"SELECT {{}} INTO OUTFILE {{}} FROM {t1}",
        f"SELECT {{}}{c}, 'INTO OUTFILE' FROM {t1} WHERE z = {{}}",
        f"SELECT LOAD_FILE({{}}){c}FROM {t1} WHERE 1 = {{}}",
        f"INSERT INTO {t1} VALUES ({{}}, {{}}) ON DUPLICATE KEY UPDATE a = {{}}",
        f"REPLACE INTO {t1} SELECT {{}}, x FROM {t2} WHERE y = {{}}",
        f"UPDATE {t1} SET a = {{}}{c}WHERE b IN (SELECT b FROM {t2} WHERE c = {{}})",
        f"DELETE FROM {t1} WHERE a = {{}} OR b = {{}}",
        f"WITH {t1.split('.')[-1]} AS (SELECT {{}}) SELECT * FROM {t1} WHERE x = {{}}",
        f"CREATE TABLE {t1} (a INT DEFAULT {{}} COMMENT {{}}) ENGINE=InnoDB",
        f"CREATE TABLE {t1} AS SELECT {{}} AS a, b FROM {t2} WHERE c = {{}}",
        f"DROP TABLE IF EXISTS {t1}{c}, {t2} /* {{}} {{}} */",
        f"SHOW COLUMNS FROM {t1} LIKE {{}}{c}",
        f"SELECT {{}}; SELECT * FROM {t2} WHERE a = {{}}",
        f"SELECT {{}} /*! , (SELECT a FROM {t2}) */ FROM DUAL WHERE {{}}",
        f"/*!{{}} DROP TABLE {t1} */",
        f"SELECT a FROM {t1} WHERE b = {{}} LOCK IN SHARE MODE{c}-- {{}}",
        f"SET @v = (SELECT {{}} FROM {t1} WHERE a = {{}})",
        "SET sql_mode = {}, @x = {}",
        f"KILL {{}}{c}",
        f"SELECT NEXTVAL({t1}), {{}} FROM {t2} WHERE {{}}",
        f"DESCRIBE {t1} {{}}",
        f"EXPLAIN SELECT {{}} FROM {t1}, {t2} WHERE {{}}",
        f"select {{}} from {t1} where a = {{}} and `b` = 'x\\'y' -- {{}}",
    ]
    template = draw(st.sampled_from(templates))
    return template, template.count("{}")


@st.composite
def _same_shape_pair(draw: st.DrawFn) -> tuple[str, list[str]]:
    template, holes = _template(draw)
    first = template.format(*[draw(_literal()) for _ in range(holes)])
    others = [template.format(*[draw(_literal()) for _ in range(holes)]) for _ in range(3)]
    return first, others


def _decision(
    statements: list[Statement],
) -> list[tuple[Kind, tuple[Requirement, ...], int | None]]:
    return [(s.kind, s.requirements, s.error.errno if s.error else None) for s in statements]


FLAVORS = [None, MARIADB, ServerFlavor(80403, False)]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pair=_same_shape_pair(),
    db=st.sampled_from(["app", None, "information_schema"]),
    mode=st.sampled_from(list(MODES.values())),
    flavor=st.sampled_from(FLAVORS),
)
def test_cached_analysis_equals_uncached(
    pair: tuple[str, list[str]], db: str | None, mode: LexMode, flavor: ServerFlavor | None
) -> None:
    first, others = pair
    cache_clear()
    for sql in [first, *others, first]:
        shortcut = cached_shape(sql, db)  # the proxy's hot path, before analyze()
        cached = analyze(sql, db, mode, flavor)
        uncached = analyze_uncached(sql, db, mode, flavor)
        assert _decision(cached) == _decision(uncached), sql
        assert cached == uncached, sql
        if shortcut is not None:
            # The entry carries the first text's 1064 message; errno and all else must agree.
            # Its offsets are 0 (the statement is the whole of sql).
            digest, entry = shortcut
            [full] = uncached
            assert (full.start, full.end) == (0, len(sql))
            assert replace(entry, text=full.text, error=full.error, end=len(sql)) == full, sql
            assert _decision([entry]) == _decision(uncached), sql
            assert digest == analyze_with_digest(sql, db, mode, flavor)[1], sql


@settings(max_examples=300, deadline=None)
@given(pair=_same_shape_pair())
def test_same_shape_same_decision(pair: tuple[str, list[str]]) -> None:
    """Statements with equal shape keys get equal decisions, even analysed from scratch
    (for the statements analysed from their shape; SET, KILL, USE... read their values)."""
    first, others = pair
    for other in others:
        try:
            lexed_a, lexed_b = lex(first), lex(other)
        except Exception:
            continue
        if not all(analyze_module._opener([t.image for t in s.tokens]) == "shape" for s in lexed_a):
            continue
        if [s.key for s in lexed_a] == [s.key for s in lexed_b]:
            assert _decision(analyze_uncached(first, "app")) == _decision(
                analyze_uncached(other, "app")
            ), (first, other)


# The fast cache key must refine the shape key: equal fast keys imply equal shape keys and the
# text forwarded on a fast hit is the lexer's executable text.
_FAST_PIECES = st.sampled_from(
    [
        "SELECT",
        "a",
        "b1",
        "`c`",
        "`1`",
        "t",
        ".",
        ",",
        "=",
        "(",
        ")",
        "*",
        "-",
        "+",
        "?",
        "<=",
        "!=",
        "1",
        "12",
        "3.5",
        "'x'",
        "'1 2'",
        "'é'",
        "''",
        "FROM",
        "WHERE",
        "IN",
        "in",
        "VALUES",
        "value",
        "NULL",
        "x1",
        "_",
        "`a$b`",
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    pieces=st.lists(_FAST_PIECES, min_size=1, max_size=12),
    seps=st.lists(st.sampled_from(["", " ", "  ", "\n", "\t"]), min_size=13, max_size=13),
    digits=st.lists(st.integers(0, 999), min_size=12, max_size=12),
)
def test_fast_key_refines_shape_key(pieces: list[str], seps: list[str], digits: list[int]) -> None:
    sql = "".join(s + p for s, p in zip(seps, pieces, strict=False)) + seps[-1]
    variant = re.sub(
        r"(?<![A-Za-z0-9_$`.'])[0-9]+", lambda m: str(digits[len(m.group()) % 12]), sql
    )
    variant = re.sub(r"'[^']*'", "'zz 9'", variant)
    fast_a = analyze_module._fast_key(sql)
    fast_b = analyze_module._fast_key(variant)
    if fast_a is None:
        return
    try:
        lexed = lex(sql)
    except Exception:
        return
    assert len(lexed) == 1
    assert lexed[0].text == sql.strip(" \t\r\n")
    if fast_a == fast_b:
        assert [s.key for s in lex(variant)] == [lexed[0].key]


# Literal lists collapse in the shape key (proxy.sql.lexer): the analysis of the collapsed key
# must be the analysis of the full statement, and the fast key may collapse only where the
# lexer does.
_LIST_LITERALS = [
    "1", "-2", "+ 3", "4.5", "-.5", "1e3", "'a'", "'b''c'", "'x\\'y'", "NULL", "true", "FALSE",
    "?", "0x1F", "X'41'", "b'1'", "N'n'", '"d"',
]  # fmt: skip
_NOT_LITERALS = [
    "a", "t.a", "NOW()", "(SELECT b FROM s)", "@v", "1 + 2", "(1)", "- a", "- - 1", "DEFAULT",
    "LOAD_FILE('x')", "(SELECT c FROM secret)", "'a' 'b'", "`NULL`", "x'41' + 1", "NULL.a",
]  # fmt: skip
_LIST_TEMPLATES = [
    "SELECT * FROM t WHERE a IN ({l})",
    "SELECT * FROM t WHERE a NOT IN ({l}) AND b in({l})",
    "SELECT a IN ({l}), b FROM t",
    "SELECT * FROM t WHERE a IN ({l}) LOCK IN SHARE MODE",
    "DELETE FROM t WHERE (a IN ({l})) OR b = 1",
    "UPDATE t SET a = 1 WHERE b IN ({l}) LIMIT 1",
    "SELECT f({l}) FROM t",
    "SELECT * FROM t WHERE t.IN ({l})",
    "SELECT * FROM t WHERE `x`IN ({l})",
    "INSERT INTO t (a, b) VALUES {r}",
    "INSERT INTO t VALUES {r} ON DUPLICATE KEY UPDATE a = VALUES(a)",
    "REPLACE INTO t value {r}",
    "INSERT INTO t SELECT * FROM (VALUES {r}) AS v",
    "INSERT INTO t VALUES {r}, ((SELECT a FROM s))",
    "SELECT value ({l}), ({l}) FROM t",
    "CREATE TABLE t (a INT) PARTITION BY LIST (a) (PARTITION p VALUES IN ({l}))",
]


@st.composite
def _element_list(draw: st.DrawFn) -> str:
    items = draw(st.lists(st.sampled_from(_LIST_LITERALS), min_size=1, max_size=12))
    if draw(st.integers(0, 3)) == 0:
        items.insert(draw(st.integers(0, len(items))), draw(st.sampled_from(_NOT_LITERALS)))
    seps = draw(
        st.lists(
            st.sampled_from([",", ", ", " ,", " , ", ",\n"]),
            min_size=len(items) - 1,
            max_size=len(items) - 1,
        )
    )
    return "".join(sep + item for sep, item in zip(["", *seps], items, strict=True))


@st.composite
def _list_statement(draw: st.DrawFn) -> str:
    template = draw(st.sampled_from(_LIST_TEMPLATES))
    rows = draw(st.lists(_element_list(), min_size=1, max_size=6))
    return template.replace("{r}", ", ".join(f"({r})" for r in rows)).replace(
        "{l}", draw(_element_list())
    )


def _full_decision(sql: str) -> list[tuple[Kind, tuple[Requirement, ...], int | None]]:
    """The analysis of every statement of ``sql`` from its tokens' images, not collapsed."""
    decisions = []
    for lexed in lex(sql):
        images = [t.image for t in lexed.tokens]
        assert analyze_module._opener(images) == "shape"
        decisions += _decision([analyze_module._analyze_shape(images, "app")])
    return decisions


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=_list_statement(), other=_list_statement())
def test_collapsed_lists_decide_like_the_full_statement(sql: str, other: str) -> None:
    cache_clear()
    [lexed] = lex(sql)
    assert len(lexed.key) <= len(" ".join(t.image for t in lexed.tokens))
    assert _decision(analyze_uncached(sql, "app")) == _full_decision(sql), lexed.key
    assert _decision(analyze(sql, "app")) == _full_decision(sql), lexed.key
    # a statement with the same key (another list length) gets the cached decision
    assert _decision(analyze(other, "app")) == _full_decision(other), other
    fast, fast_other = analyze_module._fast_key(sql), analyze_module._fast_key(other)
    if fast is not None and fast == fast_other:
        assert [s.key for s in lex(other)] == [lexed.key], (sql, other)


def test_literal_lists_collapse_in_key_and_digest() -> None:
    cache_clear()
    keys = set()
    for n in (1, 2, 50):
        values = ", ".join(str(i) for i in range(n))
        rows = ", ".join(f"({i}, 'r{i}', NULL)" for i in range(n))
        [in_list] = lex(f"SELECT * FROM t WHERE id IN ({values})")
        [insert] = lex(f"INSERT INTO t VALUES {rows}")
        keys.add((in_list.key, insert.key))
        statements, digest = analyze_with_digest(f"SELECT * FROM t WHERE id IN ({values})", "app")
        assert digest == "SELECT * FROM t WHERE id IN (?)"
        assert statements[0].requirements == (Requirement(Priv.SELECT, "app", "t"),)
    assert keys == {
        ("SELECT * FROM t WHERE id IN ( ? )", "INSERT INTO t VALUES ( ? , '?' , NULL )")
    }
    # one analysis for all three list lengths: the first was a miss, the rest fast hits
    assert cache_info()["misses"] == 1
    assert cache_info()["fast_hits"] == 2


def test_long_in_list_hits_the_fast_cache() -> None:
    cache_clear()
    analyze("SELECT * FROM t WHERE id IN (1, 2, 3)", "app")
    sql = "SELECT * FROM t WHERE id IN (" + ", ".join(str(i) for i in range(500)) + ")"
    assert cached_shape(sql, "app") is not None


def test_a_list_with_anything_but_literals_is_kept_whole() -> None:
    [statement] = lex("SELECT * FROM t WHERE id IN (1, a, 2) AND b IN (1, (SELECT c FROM s))")
    assert statement.key == (
        "SELECT * FROM t WHERE id IN ( ? , a , ? ) AND b IN ( ? , ( SELECT c FROM s ) )"
    )
    [insert] = lex("INSERT INTO t VALUES (1), (2), (NOW()), (3), (4)")
    assert insert.key == "INSERT INTO t VALUES ( ? ) , ( NOW ( ) ) , ( ? ) , ( ? )"


# --- fuzz: never raise, garbage is refused -------------------------------------------------------

_SQLISH = st.sampled_from(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "t",
        "`t`",
        "'s'",
        '"d"',
        "1",
        "(",
        ")",
        ",",
        ";",
        "--",
        "-- ",
        "#",
        "/*",
        "*/",
        "/*!",
        "/*!50001",
        "*",
        ".",
        "@",
        "@@x",
        "?",
        "INTO",
        "OUTFILE",
        "UNION",
        "JOIN",
        "ON",
        "=",
        "DROP",
        "TABLE",
        "INSERT",
        "VALUES",
        "UPDATE",
        "SET",
        "DELETE",
        "WITH",
        "AS",
        "CREATE",
        "ALTER",
        "SHOW",
        "TABLES",
        "USE",
        "KILL",
        "GRANT",
        "LOAD_FILE",
        "\\",
        "\n",
        "otherdb.t",
        "information_schema.tables",
        "NEXT",
        "VALUE",
        "FOR",
        "é",
        "\x00",
        "{",
        "`a.b`",
    ]
)


def _assert_sane(statements: list[Statement], db: str | None) -> None:
    assert isinstance(statements, list)
    for s in statements:
        assert isinstance(s, Statement)
        assert (s.kind is Kind.REFUSED) == (s.error is not None)
        if s.kind is Kind.REFUSED:
            assert s.requirements == ()
            continue
        for r in s.requirements:
            assert isinstance(r.priv, Priv) and r.db
            assert db is not None and r.db.lower() == db.lower()
        if s.kind is Kind.QUERY:
            # whatever is relayed lexes back to itself
            again = lex(s.text)
            assert len(again) == 1
            opener = again[0].tokens[0].image.upper()
            if opener in ("SELECT", "WITH", "(", "INSERT", "REPLACE", "UPDATE", "DELETE"):
                # a query sqlglot reads (after the analyser's rewrites, from the shape key's
                # images, literal lists collapsed, as the analysis read it) without a Command
                tree, _verb = analyze_module._query_tree(list(again[0].images))
                assert not any(isinstance(n, exp.Command) for n in tree.walk())
            images = [t.image.upper() for t in again[0].tokens]
            if images[:2] == ["SET", "STATEMENT"] and "FOR" in images:
                # SET STATEMENT var = value[, ...] FOR statement: what it needs is the
                # statement's (``SET STATEMENT max_statement_time = 1 FOR SELECT 1``: nothing)
                opener = images[images.index("FOR") + 1]
            if not s.requirements and not s.reads_information_schema:
                assert opener in (
                    "SELECT",
                    "(",
                    "WITH",
                    "SHOW",
                    "EXPLAIN",
                    "DESCRIBE",
                    "DESC",
                    "ANALYZE",
                ), s


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.one_of(
        st.text(max_size=80),
        st.lists(_SQLISH, max_size=14).map(" ".join),
        st.lists(_SQLISH, max_size=14).map("".join),
        st.binary(max_size=60).map(lambda b: b.decode("latin1")),
    ),
    db=st.sampled_from(["app", None]),
)
def test_fuzz_never_raises(text: str, db: str | None) -> None:
    cached = analyze(text, db)
    uncached = analyze_uncached(text, db)
    assert cached == uncached
    _assert_sane(uncached, db)
    for mode in MODES.values():
        _assert_sane(analyze_uncached(text, db, mode), db)


# --- fuzz: mutations of real statements, checked against an independent table oracle -------------

_BASES = [
    sql
    for sql, db, mode, expected in CASES
    if db == DEFAULT_DB and mode == LexMode() and len(expected) == 1
]
_FRAGMENTS = [
    "secret",
    "otherdb.secret",
    "`sec ret`",
    ",",
    "(",
    ")",
    "SELECT",
    "FROM",
    "JOIN",
    "WHERE",
    "INTO",
    "@x",
    "AS",
    "c",
    "UNION",
    "WITH",
    "/*!",
    "*/",
    "--",
    "'",
    "`",
    "information_schema.t",
    "NEXT VALUE FOR",
    "dual",
    ";",
    "t2",
    "=",
    "1",
    "?",
]


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    words = draw(st.sampled_from(_BASES)).split()
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(words)))
        if op == 0 and words:
            del words[min(at, len(words) - 1)]
        elif op == 1:
            words.insert(at, draw(st.sampled_from(_FRAGMENTS)))
        elif op == 2 and len(words) > 1:
            j = draw(st.integers(0, len(words) - 1))
            i = min(at, len(words) - 1)
            words[i], words[j] = words[j], words[i]
        elif words:
            words.insert(at, words[min(at, len(words) - 1)])
    return " ".join(words)


def _oracle_tables(key: str) -> set[tuple[str | None, str]]:
    """Tables sqlglot itself finds in a query's shape, treating every CTE name as shadowing."""
    try:
        tree = sqlglot.parse_one(key, read="mysql")
    except Exception:
        return set()
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    found = set()
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            continue
        name, db = table.name, table.db or None
        if (db is None and name in ctes) or (db is None and name.upper() == "DUAL"):
            continue
        found.add((db.lower() if db else None, name.lower()))
    return found


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=_mutated())
def test_fuzz_mutations(sql: str) -> None:
    statements = analyze_uncached(sql, DEFAULT_DB)
    assert analyze(sql, DEFAULT_DB) == statements
    _assert_sane(statements, DEFAULT_DB)
    for statement in statements:
        if statement.kind is not Kind.QUERY:
            continue
        [lexed] = lex(statement.text)
        if lexed.tokens[0].image.upper() not in ("SELECT", "WITH", "("):
            continue
        have = {(r.db.lower(), (r.table or "").lower()) for r in statement.requirements}
        for db, name in _oracle_tables(lexed.key):
            if db == "information_schema" or name == "?":
                continue
            assert ((db or DEFAULT_DB), name) in have, (sql, statement)


@pytest.mark.parametrize(
    ("sql", "account"),
    [
        ("CREATE DEFINER=`root`@`localhost` VIEW v AS SELECT 1", "`root`@`localhost`"),
        ("/* é 😀 */ CREATE DEFINER = 'u'@'%' VIEW v AS SELECT 'ü'", "'u'@'%'"),
        (
            "/*!50001 CREATE ALGORITHM=UNDEFINED */\n/*!50013 DEFINER=`sgm_1_0a1b2c3d`@`%` SQL "
            "SECURITY DEFINER */\n/*!50001 VIEW `v` AS select 1 AS `1` */",
            "`sgm_1_0a1b2c3d`@`%`",
        ),
        ('CREATE OR REPLACE DEFINER="u"@"h" VIEW v AS SELECT 1', '"u"@"h"'),
        ("CREATE DEFINER=u VIEW v AS SELECT 1", "u"),
        ("CREATE DEFINER=CURRENT_ROLE VIEW v AS SELECT 1", "CURRENT_ROLE"),
        ("CREATE DEFINER=CURRENT_USER() VIEW v AS SELECT 1", None),
        ("CREATE DEFINER = current_user VIEW v AS SELECT 1", None),
        ("CREATE VIEW v AS SELECT 1", None),
    ],
)
def test_create_view_definer_is_the_accounts_offsets(sql: str, account: str | None) -> None:
    """What the session replaces by CURRENT_USER: exactly the DEFINER clause's account, as
    byte offsets into the request (the statement may be in executable comments)."""
    data = sql.encode("utf-8", "surrogateescape")
    for statements in (
        analyze_uncached(sql, "app", flavor=MARIADB),
        analyze(sql, "app", flavor=MARIADB),
    ):
        [statement] = statements
        assert statement.kind is Kind.QUERY, statement
        span = statement.definer
        assert (None if span is None else data[span[0] : span[1]].decode()) == account


def test_create_view_definer_offsets_in_a_multi_statement_request() -> None:
    sql = "SELECT 'ä'; CREATE DEFINER=x@y VIEW v AS SELECT 1"
    first, second = analyze_uncached(sql, "app", flavor=MARIADB)
    assert first.definer is None
    assert second.definer is not None
    start, end = second.definer  # byte offsets into the request as the session encodes it
    assert sql.encode()[start:end] == b"x@y"


def test_structure_too_long_to_parse_is_refused_before_the_parser() -> None:
    """sqlglot takes seconds over a few hundred kB of structure: above MAX_PARSED_TEXT the
    statement is refused (1235) without being parsed; literal lists do not count."""
    from proxy.sql.analyze import MAX_PARSED_TEXT, TOO_LONG_TO_PARSE

    columns = ", ".join(f"c{i}" for i in range(MAX_PARSED_TEXT // 6))
    for sql in (
        f"SELECT {columns} FROM t",
        f"INSERT INTO t ({columns}) VALUES (1)",
        f"UPDATE t SET a = 1 WHERE b IN (SELECT {columns} FROM s)",
        "SELECT CASE " + " ".join(f"WHEN a = {i} THEN b{i}" for i in range(20000)) + " END FROM t",
    ):
        (statement,) = analyze(sql, DEFAULT_DB)
        assert statement.kind is Kind.REFUSED
        assert statement.error is not None
        assert (statement.error.errno, statement.error.message) == (
            1235,
            f"This version of shardgate doesn't yet support '{TOO_LONG_TO_PARSE}'",
        )
    # A bulk insert and a long IN list are one row / one element to the parser.
    values = ", ".join(f"({i}, 'v{i}')" for i in range(100_000))
    (statement,) = analyze(f"INSERT INTO t (a, b) VALUES {values}", DEFAULT_DB)
    assert statement.kind is Kind.QUERY
    in_list = ", ".join(str(i) for i in range(100_000))
    (statement,) = analyze(f"SELECT a FROM t WHERE a IN ({in_list})", DEFAULT_DB)
    assert statement.kind is Kind.QUERY
    # Structure under the bound is parsed as usual.
    (statement,) = analyze(
        "SELECT " + ", ".join(f"c{i}" for i in range(1000)) + " FROM t", DEFAULT_DB
    )
    assert statement.kind is Kind.QUERY


@pytest.mark.parametrize(
    ("sql", "counts"),
    [
        ("SELECT 1", True),
        ("SELECT 'UPDATE' FROM t", True),
        ("(SELECT 1) UNION (SELECT 2)", True),
        ("WITH x AS (SELECT 1) SELECT * FROM x", True),
        ("SELECT a FROM t WHERE id = 3 INTO @x", True),
        ("SET STATEMENT max_statement_time = 1 FOR SELECT 1", True),
        ("SET @a = (SELECT COUNT(*) FROM t)", True),
        ("INSERT INTO t SELECT * FROM s", True),
        ("INSERT INTO t VALUES (1, (SELECT MAX(a) FROM s))", True),
        ("UPDATE t JOIN s ON s.a = t.a SET t.b = 1", True),
        ("UPDATE t, s SET t.b = 1", True),
        ("DELETE t FROM t JOIN s ON s.a = t.a", True),
        ("DELETE FROM t USING t, s WHERE t.a = s.a", True),
        ("SHOW TABLES", True),
        ("SHOW FULL COLUMNS FROM t", True),
        ("DESCRIBE t", True),
        ("SET @a = 1", False),
        ("SET @a = 'SELECT a FROM t'", False),
        ("SET @a = (SELECT 1)", False),
        ("SET @a = (SELECT 1 FROM DUAL)", False),
        ("UPDATE t SET b = 'SELECT 1 FROM s'", False),
        ("UPDATE t SET b = b WHERE a = 1", False),
        ("DELETE FROM t WHERE a = 1 ORDER BY a LIMIT 1", False),
        ("INSERT INTO t VALUES (1, (SELECT 1))", False),
        ("INSERT INTO t VALUES (1, 2) RETURNING a", False),
        ("CREATE TABLE x (a INT)", False),
        ("DROP TABLE x", False),
        ("BEGIN", False),
        ("SHOW WARNINGS", False),
        ("SHOW CREATE TABLE t", False),
        ("EXPLAIN SELECT * FROM t", False),
        ("CHECK TABLE t", False),
    ],
)
def test_whether_a_statement_sets_found_rows(sql: str, counts: bool) -> None:
    """``counts_found_rows``: MariaDB's rules (measured on 10.11), from the statement's words
    -- never a word inside a string -- and the same on every path (uncached, a shape hit, a
    fast-key hit)."""
    cache_clear()
    for _ in range(3):
        [statement] = analyze(sql, "db")
        assert statement.counts_found_rows is counts, sql
    [uncached] = analyze_uncached(sql, "db")
    assert uncached.counts_found_rows is counts, sql
