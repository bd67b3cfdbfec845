"""Differential testing of the analyser's reading of statements against MariaDB's.

Every word MariaDB knows (``information_schema.KEYWORDS`` and ``SQL_FUNCTIONS``, shipped as
:mod:`proxy.sql.mariadb_words`) and every word sqlglot's MySQL parser treats as syntax (its
tokenizer's keywords and the words its parser matches as text) is put, unquoted and
backquoted, into the statement positions the analyser handles (:data:`TEMPLATES`: SELECT lists,
FROM/JOIN/ON/USING, WHERE, subqueries, derived tables, CTEs, UNION; INSERT/REPLACE in all
forms, UPDATE and DELETE single- and multi-table, SHOW, DESCRIBE, EXPLAIN, CREATE/ALTER/
RENAME/DROP/TRUNCATE TABLE, CREATE/DROP INDEX) as a table name, a table alias, a column name,
a column alias or an index name. For each statement the proxy's analysis
(:func:`~proxy.sql.analyze.analyze_uncached`) is compared with what MariaDB does with it:

* **Full run.** A plain MariaDB account holding exactly the privileges the proxy says the
  statement needs runs it. An access error (1142, 1143, 1044, 1227, 1370, ...) means MariaDB
  needs something the proxy did not count: a *disagreement* (``table`` if MariaDB names a
  table the proxy did not list, ``privilege`` if another privilege on a listed one). One
  exception is told apart: a SELECT denied on a table the proxy lists with a write privilege
  is MariaDB's column-read rule (``UPDATE t SET a = b`` needs SELECT on ``t``), which the
  analyser does not model; the statement is then run again with SELECT added on its written
  tables, so that the rule cannot hide a table the proxy missed.
* **Leave-one-out.** When the full run got past MariaDB's privilege checks (it succeeded, or
  failed on something checked later: a lock wait, an existing table, an unknown column), it
  is run once more per table the proxy listed, with every privilege on that table withdrawn.
  MariaDB must then deny access; if it does not (and the statement does not fail the same way
  with no privileges at all), the proxy counted a table MariaDB does not read: ``over-ask``.

Statements the proxy refuses are not run (a refusal is always safe; ``--refusals`` counts
those MariaDB would accept). MariaDB's own syntax errors (1064) after a proxy "allow" are fine:
the shard refuses them.

The default run tries every word unquoted at least once in every *position* (a group of
templates: "table after FROM in a SELECT", "column in an UPDATE", ...) and quoted at least once
in every role, about 32,000 statements; the exhaustive run every word in both forms in every
template, sqlglot's function names included (about 650,000; 25 minutes).

The test database holds a table named by every word (created quoted), narrow tables ``t1``,
``t2`` and wide ones ``c1``, ``c2`` with a column named by every word, all BLACKHOLE (writes
store nothing). Another connection holds a metadata lock on every table (see
:meth:`DiffDatabase.lock_for`; the account has ``lock_wait_timeout = 0``), so that DDL passes
its privilege checks and then fails before changing anything. The account's privileges are
rows of ``mysql.tables_priv`` written directly (:class:`Grants`); statements are sorted so that
they change rarely.

``python -m tests.parse_differential [--exhaustive] [--refusals]`` runs it against a throwaway
MariaDB and prints the report; ``tests/e2e/test_parse_differential.py`` runs it in the suite.
"""

from __future__ import annotations

import argparse
import inspect
import multiprocessing
import os
import re
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from pymysql.constants import CLIENT
from sqlglot import parser as sqlglot_parser
from sqlglot.dialects import mysql as sqlglot_mysql
from sqlglot.dialects.mysql import MySQL

from auth.privileges import Priv, Requirement
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint
from proxy.sql.analyze import Kind, analyze_uncached
from proxy.sql.mariadb_words import FUNCTIONS, KEYWORDS

DB = "sg_parsediff"
USER = "sg_parsediff"
HOST = "127.0.0.1"
PASSWORD = "Diff#erential1"
NARROW_TABLES = ("t1", "t2")  # (a, b)
WIDE_TABLES = ("c1", "c2")  # (a, b, and a column named by every word)
NEUTRAL = "zz_neutral"  # a word no parser knows: the reading every template is written for
ANCHOR = "zz_anchor"  # the account's one permanent grant (SELECT), so that it may USE the database

# --------------------------------------------------------------------------------------------
# Statement templates: {w} is the word (unquoted or backquoted).


@dataclass(frozen=True)
class Template:
    position: str  # the coverage unit: every word is tried at least once per position
    role: str  # table | alias | column | calias | index
    text: str


def _t(position: str, role: str, *texts: str) -> list[Template]:
    return [Template(position, role, text) for text in texts]


TEMPLATES: tuple[Template, ...] = tuple(
    # --- the word as a table name ---
    _t(
        "select from",
        "table",
        "SELECT * FROM {w}",
        "SELECT a FROM {w} AS x",
        "SELECT a FROM {w} x",
        "SELECT {w}.a FROM {w}",
        "SELECT * FROM {w} WHERE a = 1",
        "SELECT * FROM {w} LIMIT 1",
        "SELECT * FROM {w} FOR UPDATE",
        "SELECT * FROM {w} USE INDEX (ix)",
        "SELECT a FROM {w} GROUP BY a",
        "SELECT * FROM {w}, t1",
        "SELECT * FROM t1, {w}",
        f"SELECT * FROM {DB}.{{w}}",
    )
    + _t(
        "select join",
        "table",
        "SELECT * FROM t1 JOIN {w} ON t1.a = {w}.a",
        "SELECT * FROM t1 LEFT JOIN {w} USING (a)",
        "SELECT * FROM {w} JOIN t1 ON t1.a = {w}.a",
        "SELECT * FROM {w} RIGHT JOIN t1 USING (a)",
        "SELECT * FROM t1 NATURAL JOIN {w}",
        "SELECT * FROM t1 STRAIGHT_JOIN {w}",
        "SELECT * FROM t1 CROSS JOIN {w}",
        "SELECT * FROM t1 JOIN ({w} JOIN t2 ON {w}.a = t2.a) ON t1.a = t2.a",
        "SELECT * FROM t1 JOIN {w}",
    )
    + _t(
        "select subquery",
        "table",
        "SELECT * FROM t1 WHERE a IN (SELECT a FROM {w})",
        "SELECT (SELECT MAX(a) FROM {w}) FROM t1",
        "SELECT * FROM t1 WHERE EXISTS (SELECT 1 FROM {w} WHERE {w}.a = t1.a)",
        "SELECT * FROM (SELECT a FROM {w}) AS d",
        "SELECT * FROM (SELECT a FROM {w}) d",
        "WITH c AS (SELECT a FROM {w}) SELECT a FROM c",
        "SELECT a FROM t1 UNION SELECT a FROM {w}",
        "SELECT a FROM {w} UNION ALL SELECT a FROM t1",
        "(SELECT a FROM {w})",
        "EXPLAIN SELECT * FROM {w}",
    )
    + _t(
        "insert",
        "table",
        "INSERT INTO {w} VALUES (1, 2)",
        "INSERT {w} (a) VALUES (1)",
        "INSERT INTO {w} SET a = 1",
        "INSERT INTO {w} (a) SELECT a FROM t1",
        "INSERT INTO t1 (a) SELECT a FROM {w}",
        "INSERT INTO {w} (a) VALUES (1) ON DUPLICATE KEY UPDATE b = 2",
        "INSERT INTO t1 (a) VALUES (1) ON DUPLICATE KEY UPDATE a = (SELECT MAX(a) FROM {w})",
        "INSERT IGNORE INTO {w} (a) VALUES (1)",
        "INSERT INTO {w} (a) VALUES (1) RETURNING a",
    )
    + _t(
        "replace",
        "table",
        "REPLACE INTO {w} (a) VALUES (1)",
        "REPLACE {w} SET a = 1",
        "REPLACE INTO t1 (a) SELECT a FROM {w}",
    )
    + _t(
        "update",
        "table",
        "UPDATE {w} SET a = 1",
        "UPDATE {w} SET a = 1 WHERE b = 2",
        "UPDATE t1 JOIN {w} ON t1.a = {w}.a SET t1.b = 1",
        "UPDATE t1, {w} SET {w}.b = 1",
        "UPDATE {w}, t1 SET t1.b = 1",
        "UPDATE t1 SET a = (SELECT MAX(a) FROM {w})",
        "UPDATE {w} SET a = 1 ORDER BY a LIMIT 1",
    )
    + _t(
        "delete",
        "table",
        "DELETE FROM {w}",
        "DELETE FROM {w} WHERE a = 1",
        "DELETE {w} FROM {w} JOIN t1 ON {w}.a = t1.a",
        "DELETE t1 FROM t1 JOIN {w} ON t1.a = {w}.a",
        "DELETE FROM {w} USING {w} JOIN t1",
        "DELETE FROM t1 USING t1, {w} WHERE t1.a = {w}.a",
        "DELETE FROM t1 WHERE a IN (SELECT a FROM {w})",
        "DELETE {w}.* FROM {w}, t1",
    )
    + _t(
        "show",
        "table",
        "SHOW COLUMNS FROM {w}",
        "SHOW FULL COLUMNS FROM {w}",
        "SHOW INDEX FROM {w}",
        "SHOW CREATE TABLE {w}",
        "DESCRIBE {w}",
        "DESC {w} a",
        "SHOW COLUMNS FROM t1 WHERE Field IN (SELECT a FROM {w})",
    )
    + _t(
        "ddl",
        "table",
        "CREATE TABLE t1 LIKE {w}",
        "CREATE TABLE {w} LIKE t1",
        "CREATE TABLE t1 AS SELECT a FROM {w}",
        "CREATE TABLE {w} (a INT)",
        "CREATE TABLE t1 (a INT, FOREIGN KEY (a) REFERENCES {w} (a))",
        "CREATE INDEX ix2 ON {w} (a)",
        "DROP INDEX ix ON {w}",
        "ALTER TABLE {w} ADD COLUMN c INT",
        "ALTER TABLE {w} RENAME TO t2",
        "RENAME TABLE {w} TO t2",
        "RENAME TABLE t2 TO {w}",
        "DROP TABLE {w}",
        "DROP TABLE IF EXISTS t1, {w}",
        "TRUNCATE TABLE {w}",
        "TRUNCATE {w}",
    )
    # --- the word as a table alias (and derived table, CTE name) ---
    + _t(
        "select alias",
        "alias",
        "SELECT * FROM t1 AS {w}",
        "SELECT * FROM t1 {w}",
        "SELECT {w}.a FROM t1 AS {w}",
        "SELECT {w}.a FROM t1 {w}",
        "SELECT * FROM t1 {w} WHERE {w}.a = 1",
        "SELECT * FROM t1 {w}, t2",
        "SELECT * FROM t1 {w} LIMIT 1",
        "SELECT * FROM t1 {w} ORDER BY a",
        "SELECT * FROM t1 {w} GROUP BY a",
        "SELECT * FROM t1 {w} FOR UPDATE",
        "SELECT * FROM t1 {w} USE INDEX (ix)",
        "SELECT a FROM t1 {w} UNION SELECT a FROM t2",
    )
    + _t(
        "join alias",
        "alias",
        "SELECT * FROM t1 {w} JOIN t2 ON {w}.a = t2.a",
        "SELECT * FROM t1 JOIN t2 {w} ON t1.a = {w}.a",
        "SELECT * FROM t1 JOIN t2 AS {w} USING (a)",
        "SELECT * FROM t1 {w} NATURAL JOIN t2",
        "SELECT * FROM t1 {w} LEFT JOIN t2 USING (a)",
        "SELECT * FROM t1 {w} STRAIGHT_JOIN t2",
        "SELECT * FROM t1 {w} CROSS JOIN t2",
        "SELECT * FROM t1 {w} JOIN t2",
    )
    + _t(
        "derived alias",
        "alias",
        "SELECT * FROM (SELECT a FROM t1) AS {w}",
        "SELECT * FROM (SELECT a FROM t1) {w}",
        "SELECT {w}.a FROM (SELECT a FROM t1) {w}",
        "WITH {w} AS (SELECT a FROM t1) SELECT a FROM {w}",
        "WITH {w} (x) AS (SELECT a FROM t1) SELECT x FROM {w}",
        "SELECT * FROM t1 WHERE a IN (SELECT {w}.a FROM t2 {w})",
    )
    + _t(
        "dml alias",
        "alias",
        "INSERT INTO t1 (a) SELECT {w}.a FROM t2 {w}",
        "UPDATE t1 {w} SET {w}.a = 1",
        "UPDATE t1 AS {w} SET a = 1",
        "UPDATE t1 {w} JOIN t2 ON {w}.a = t2.a SET {w}.b = 1",
        "UPDATE t1 JOIN t2 {w} ON t1.a = {w}.a SET {w}.b = 1",
        "DELETE {w} FROM t1 {w}",
        "DELETE {w} FROM t1 AS {w} JOIN t2 ON {w}.a = t2.a",
        "DELETE FROM {w} USING t1 AS {w}",
        "DELETE FROM {w} USING t1 {w} JOIN t2",
        "DELETE t1 FROM t1 JOIN t2 {w} ON t1.a = {w}.a",
    )
    # --- the word as a column name ---
    + _t(
        "select column",
        "column",
        "SELECT {w} FROM c1",
        "SELECT c1.{w} FROM c1",
        "SELECT {w}, a FROM c1",
        "SELECT a, {w} FROM c1",
        "SELECT {w} + 1 FROM c1",
        "SELECT COUNT({w}) FROM c1",
        "SELECT {w} FROM c1 FOR UPDATE",
        "SELECT DISTINCT {w} FROM c1",
    )
    + _t(
        "clause column",
        "column",
        "SELECT a FROM c1 WHERE {w} = 1",
        "SELECT a FROM c1 WHERE {w} IS NULL",
        "SELECT a FROM c1 WHERE a = {w}",
        "SELECT a FROM c1 WHERE {w} IN (SELECT a FROM c2)",
        "SELECT a FROM c1 GROUP BY {w}",
        "SELECT a FROM c1 ORDER BY {w}",
        "SELECT a FROM c1 ORDER BY {w} DESC",
        "SELECT a FROM c1 GROUP BY a HAVING MAX({w}) > 0",
        "SELECT c1.a FROM c1 JOIN c2 USING ({w})",
        "SELECT c1.a FROM c1 JOIN c2 ON c1.a = {w}",
        "SELECT c1.a FROM c1 JOIN c2 ON {w} = c2.a",
    )
    + _t(
        "subquery column",
        "column",
        "SELECT c1.a FROM c1 WHERE a IN (SELECT {w} FROM c2)",
        "SELECT (SELECT {w} FROM c2 LIMIT 1) FROM c1",
        "SELECT * FROM (SELECT {w} FROM c1) AS d",
        "WITH c ({w}) AS (SELECT a FROM c1) SELECT {w} FROM c",
        "WITH c AS (SELECT {w} FROM c1) SELECT * FROM c",
        "SELECT {w} FROM c1 UNION SELECT a FROM c2",
        "SELECT a FROM c1 UNION SELECT {w} FROM c2",
    )
    + _t(
        "dml column",
        "column",
        "INSERT INTO c1 ({w}) VALUES (1)",
        "INSERT INTO c1 (a, {w}) VALUES (1, 2)",
        "INSERT INTO c1 SET {w} = 1",
        "INSERT INTO c1 (a) SELECT {w} FROM c2",
        "INSERT INTO c1 (a) VALUES (1) ON DUPLICATE KEY UPDATE {w} = 2",
        "INSERT INTO c1 (a) VALUES (1) ON DUPLICATE KEY UPDATE a = {w}",
        "REPLACE INTO c1 ({w}) VALUES (1)",
        "UPDATE c1 SET {w} = 1",
        "UPDATE c1 SET a = {w}",
        "UPDATE c1 SET a = 1 WHERE {w} = 2",
        "UPDATE c1, c2 SET c1.{w} = 1",
        "UPDATE c1 JOIN c2 ON c1.a = c2.a SET c2.a = {w}",
        "DELETE FROM c1 WHERE {w} = 1",
        "DELETE c1 FROM c1 JOIN c2 ON c1.a = c2.{w}",
        "DELETE FROM c1 ORDER BY {w} LIMIT 1",
    )
    + _t(
        "ddl column",
        "column",
        "DESCRIBE c1 {w}",
        "SHOW COLUMNS FROM c1 WHERE Field IN (SELECT {w} FROM c2)",
        "CREATE TABLE c1 ({w} INT)",
        "CREATE TABLE c1 (a INT, {w} INT)",
        "CREATE TABLE c1 AS SELECT {w} FROM c2",
        "CREATE INDEX ix2 ON c1 ({w})",
        "ALTER TABLE c1 ADD COLUMN {w} INT",
        "ALTER TABLE c1 ADD {w} INT",
        "ALTER TABLE c1 DROP COLUMN {w}",
        "ALTER TABLE c1 MODIFY {w} BIGINT",
    )
    # --- the word as a column alias ---
    + _t(
        "column alias",
        "calias",
        "SELECT a AS {w} FROM t1",
        "SELECT a {w} FROM t1",
        "SELECT a {w}, b FROM t1",
        "SELECT 1 {w}",
        "SELECT 'x' {w}",
        "SELECT a + 1 {w} FROM t1",
        "SELECT COUNT(*) {w} FROM t1",
        "SELECT (SELECT a FROM t2 LIMIT 1) {w} FROM t1",
        "SELECT a AS {w} FROM t1 ORDER BY {w}",
        "SELECT a {w} FROM t1 WHERE a = 1",
        "SELECT a {w} FROM t1 GROUP BY a",
        "SELECT a {w} FROM t1 LIMIT 1",
        "SELECT a {w} FROM t1 UNION SELECT a FROM t2",
    )
    + _t(
        "nested column alias",
        "calias",
        "SELECT * FROM (SELECT a AS {w} FROM t1) AS d",
        "SELECT * FROM (SELECT a {w} FROM t1) d",
        "WITH c AS (SELECT a {w} FROM t1) SELECT * FROM c",
        "SELECT a FROM t1 WHERE a IN (SELECT a {w} FROM t2)",
        "INSERT INTO t1 (a) SELECT a {w} FROM t2",
        "CREATE TABLE t1 AS SELECT a {w} FROM t2",
    )
    # --- the word as an index name ---
    + _t(
        "index",
        "index",
        "CREATE INDEX {w} ON t1 (a)",
        "CREATE UNIQUE INDEX {w} ON t1 (a)",
        "DROP INDEX {w} ON t1",
        "ALTER TABLE t1 DROP INDEX {w}",
        "ALTER TABLE t1 ADD INDEX {w} (a)",
        "CREATE TABLE t1 (a INT, KEY {w} (a))",
        "SELECT * FROM t1 USE INDEX ({w})",
        "SELECT * FROM t1 FORCE INDEX ({w}) WHERE a = 1",
        "SELECT * FROM t1 IGNORE INDEX ({w})",
    )
)

_WORD = re.compile(r"[A-Z_][A-Z0-9_]*")
POSITIONS: tuple[str, ...] = tuple(dict.fromkeys(t.position for t in TEMPLATES))


def mariadb_words() -> list[str]:
    """Every keyword and built-in function name MariaDB knows, lower-cased, sorted."""
    return sorted(w.lower() for w in KEYWORDS | FUNCTIONS)


def _sqlglot_texts() -> set[str]:
    """Words sqlglot's MySQL parser treats specially: its tokenizer's keywords and the words
    its parser matches as text (``_match_text_seq("FINAL")`` and the like)."""
    tokenizer = MySQL.tokenizer_class
    words = {k for k in tokenizer.KEYWORDS if _WORD.fullmatch(k)}
    source = inspect.getsource(sqlglot_parser) + inspect.getsource(sqlglot_mysql)
    for call in re.finditer(r"_match_texts?(?:_seq)?\(([^)]*)\)", source):
        words.update(re.findall(r'"([A-Z_][A-Z0-9_]*)"', call.group(1)))
    return words


def sqlglot_words() -> list[str]:
    """Words sqlglot reads as keywords that MariaDB does not know, lower-cased, sorted."""
    return sorted(w.lower() for w in _sqlglot_texts() - KEYWORDS - FUNCTIONS)


def sqlglot_function_words() -> list[str]:
    """Function names sqlglot knows that are no other list's, lower-cased, sorted."""
    parser = MySQL.parser_class
    names = {k for k in [*parser.FUNCTIONS, *parser.FUNCTION_PARSERS] if _WORD.fullmatch(k)}
    return sorted(w.lower() for w in names - _sqlglot_texts() - KEYWORDS - FUNCTIONS)


_DDL_VERBS = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "TRUNCATE"})


def is_ddl(sql: str) -> bool:
    return sql.split(None, 1)[0].upper() in _DDL_VERBS


def quote(word: str) -> str:
    return "`" + word.replace("`", "``") + "`"


@dataclass(frozen=True)
class Case:
    sql: str
    template: Template
    word: str
    quoted: bool


def cases(words: Sequence[str], exhaustive: bool) -> list[Case]:
    """The statements to try.

    Exhaustive: every word, unquoted and quoted, in every template. Otherwise every word
    unquoted at least once in every position (the words of a position are dealt round-robin
    over its templates, each template starting at another offset) and quoted at least once in
    every role.
    """
    out: list[Case] = []
    if exhaustive:
        for template in TEMPLATES:
            for word in words:
                for quoted in (False, True):
                    form = quote(word) if quoted else word
                    out.append(Case(template.text.format(w=form), template, word, quoted))
        return out
    by_position: dict[str, list[Template]] = defaultdict(list)
    by_role: dict[str, list[Template]] = defaultdict(list)
    for template in TEMPLATES:
        by_position[template.position].append(template)
        by_role[template.role].append(template)
    for group, quoted in [(by_position, False), (by_role, True)]:
        for templates in group.values():
            n = len(templates)
            for i, word in enumerate(words):
                template = templates[(i * 7 + len(word)) % n]
                form = quote(word) if quoted else word
                out.append(Case(template.text.format(w=form), template, word, quoted))
    return out


# --------------------------------------------------------------------------------------------
# The test database and the account

_ACCESS_ERRORS = frozenset({1044, 1045, 1142, 1143, 1227, 1370, 1410, 1449, 3530})
_TABLE_DENIED = re.compile(
    r"^(?P<privs>[A-Z ,]+) command denied to user '.*' for table `(?P<db>(?:[^`]|``)*)`"
    r"\.`(?P<table>(?:[^`]|``)*)`$"
)
_COLUMN_DENIED = re.compile(
    r"^(?P<privs>[A-Z ,]+) command denied to user '.*' for column '(?:.*)' in table "
    r"'(?P<table>.*)'$"
)
_NAME_TOKEN = re.compile(r"`((?:[^`]|``)*)`|([A-Za-z_$][A-Za-z0-9_$]*)")


def _connect(endpoint: ShardEndpoint, **kwargs: Any) -> Any:
    kwargs.setdefault("user", endpoint.user)
    kwargs.setdefault("password", endpoint.password)
    return pymysql.connect(
        host=endpoint.host,
        port=endpoint.port,
        autocommit=True,
        connect_timeout=10,
        client_flag=CLIENT.MULTI_STATEMENTS,
        **kwargs,
    )


def _run_all(cur: Any, sql: str) -> None:
    cur.execute(sql)
    while cur.nextset():
        pass


def _sql_str(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class Outcome:
    errno: int  # 0: success
    message: str = ""

    def __str__(self) -> str:
        return "OK" if self.errno == 0 else f"{self.errno} {self.message}"


Privs = tuple[str, ...]  # MariaDB's spelling in mysql.tables_priv: ("Insert", "Select")


@dataclass(frozen=True, order=True)
class Grants:
    """The account's table privileges: ``broadcast`` on every word table, except the tables
    of ``exact`` (word or fixed tables), which have exactly their entry.

    A statement can only touch tables it names, and the only word it names is its own (other
    names in it are fixed tables or no table at all): ``broadcast`` stands for the privileges
    on that word's table, and the word tables it does not name do not matter. Giving them the
    same privileges lets thousands of statements share one grant set.
    """

    broadcast: Privs = ()
    exact: tuple[tuple[str, Privs], ...] = ()

    def of(self, table: str, words: frozenset[str]) -> Privs:
        for name, privs in self.exact:
            if name == table:
                return privs
        return self.broadcast if table in words else ()

    def without(self, table: str, word: str | None) -> Grants:
        if table == word:
            return Grants((), self.exact)
        exact = dict(self.exact)
        exact[table] = ()
        return Grants(self.broadcast, tuple(sorted(exact.items())))


class DiffDatabase:
    """The test database on one MariaDB server, its account and the lock holder.

    The account's privileges are rows of ``mysql.tables_priv`` (one per table, written
    directly, then ``FLUSH PRIVILEGES``): one UPDATE moves the privileges of every word table
    at once, which GRANT cannot do.
    """

    def __init__(self, endpoint: ShardEndpoint, words: Sequence[str], cleanup: bool = True) -> None:
        self.endpoint = endpoint
        self.cleanup = cleanup  # drop the database and the account at the end
        self.fold_case = False  # lower_case_table_names: names compare case-insensitively
        self.words = frozenset([*words, NEUTRAL])
        self.fixed = frozenset([*NARROW_TABLES, *WIDE_TABLES])
        self.tables = self.words | self.fixed
        self.admin = _connect(endpoint)
        self.holder: Any = None
        self.user: Any = None
        self.grants = Grants()
        self.grant_changes = 0
        self.ddl_lock: bool | None = None

    def __enter__(self) -> DiffDatabase:
        self.setup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def setup(self) -> None:
        """Create the database, its tables and the account (on a throwaway server: this also
        installs BLACKHOLE if needed and enlarges the table caches)."""
        with self.admin.cursor() as cur:
            cur.execute("SELECT @@lower_case_table_names")
            (lctn,) = cur.fetchone()
            self.fold_case = int(lctn) != 0
            cur.execute("SELECT ENGINE FROM information_schema.ENGINES WHERE SUPPORT <> 'NO'")
            if "BLACKHOLE" not in {row[0].upper() for row in cur.fetchall()}:
                cur.execute("INSTALL SONAME 'ha_blackhole'")
            _run_all(
                cur,
                f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB};"
                f" DROP USER IF EXISTS '{USER}'@'{HOST}';"
                f" CREATE USER '{USER}'@'{HOST}' IDENTIFIED BY '{PASSWORD}'",
            )
            statements = [
                f"CREATE TABLE {DB}.{t} (a INT, b INT, KEY ix (a)) ENGINE=BLACKHOLE"
                for t in sorted(self.words | set(NARROW_TABLES) | {ANCHOR})
            ]
            columns = ", ".join(f"{quote(w)} INT" for w in sorted(self.words))
            statements += [
                f"CREATE TABLE {DB}.{t} (a INT, b INT, {columns}, KEY ix (a)) ENGINE=BLACKHOLE"
                for t in WIDE_TABLES
            ]
            rows = [
                f"('{HOST}', '{DB}', '{USER}', {_sql_str(t)}, 'root@localhost',"
                f" '{'Select' if t == ANCHOR else ''}')"
                for t in sorted(self.tables | {ANCHOR})
            ]
            for i in range(0, len(statements), 200):
                _run_all(cur, "; ".join(statements[i : i + 200]))
            for i in range(0, len(rows), 500):
                cur.execute(
                    "INSERT INTO mysql.tables_priv (Host, Db, User, Table_name, Grantor,"
                    " Table_priv) VALUES " + ", ".join(rows[i : i + 500])
                )
            cur.execute("FLUSH PRIVILEGES")
            cur.execute("SET GLOBAL table_open_cache = 4000, table_definition_cache = 4000")
        self.holder = _connect(self.endpoint, database=DB)
        self.lock_for(ddl=False)
        self.user = self._connect_user()

    def lock_for(self, ddl: bool) -> None:
        """Hold a metadata lock on every table, so that statements get past their privilege
        checks and then fail (1205) before they change the schema.

        For DML a shared read lock (an open transaction that read every table): writes go
        through (to BLACKHOLE tables: nothing is stored), so the privilege checks MariaDB makes
        late (multi-table UPDATE, column privileges) are reached. For DDL ``LOCK TABLES ...
        WRITE``: ALTER TABLE would otherwise copy the table before failing on the lock.
        """
        if self.ddl_lock is ddl:
            return
        names = sorted(self.tables)
        with self.holder.cursor() as cur:
            if ddl:
                cur.execute("COMMIT")
                cur.execute("LOCK TABLES " + ", ".join(f"{quote(t)} WRITE" for t in names))
            else:
                cur.execute("UNLOCK TABLES")
                cur.execute("START TRANSACTION")
                for i in range(0, len(names), 200):
                    batch = names[i : i + 200]
                    _run_all(cur, "; ".join(f"SELECT a FROM {quote(t)}" for t in batch))
        self.ddl_lock = ddl

    def _connect_user(self) -> Any:
        user = _connect(self.endpoint, user=USER, password=PASSWORD, database=DB)
        with user.cursor() as cur:
            cur.execute("SET SESSION lock_wait_timeout = 0, max_statement_time = 5")
        return user

    def close(self) -> None:
        for conn in (self.user, self.holder):
            if conn is not None and conn.open:
                conn.close()
        if self.cleanup:
            with self.admin.cursor() as cur:
                _run_all(
                    cur, f"DROP DATABASE IF EXISTS {DB}; DROP USER IF EXISTS '{USER}'@'{HOST}'"
                )
        self.admin.close()

    def name(self, table: str) -> str:
        """``table`` as the server compares table names."""
        return table.lower() if self.fold_case else table

    def set_grants(self, grants: Grants) -> None:
        """Make the account's table privileges ``grants``."""
        old = self.grants
        if grants == old:
            return
        where = f"Host = '{HOST}' AND User = '{USER}' AND Db = '{DB}'"
        sql: list[str] = []
        bulk = grants.broadcast != old.broadcast
        if bulk:  # every word table, then the exceptions again
            keep = ", ".join(_sql_str(t) for t in sorted(self.fixed | {ANCHOR}))
            sql.append(
                f"UPDATE mysql.tables_priv SET Table_priv = '{','.join(grants.broadcast)}'"
                f" WHERE {where} AND Table_name NOT IN ({keep})"
            )
        for table in sorted({t for t, _ in old.exact} | {t for t, _ in grants.exact}):
            privs = grants.of(table, self.words)
            if bulk or privs != old.of(table, self.words):
                sql.append(
                    f"UPDATE mysql.tables_priv SET Table_priv = '{','.join(privs)}'"
                    f" WHERE {where} AND Table_name = {_sql_str(table)}"
                )
        sql.append("FLUSH PRIVILEGES")
        with self.admin.cursor() as cur:
            _run_all(cur, "; ".join(sql))
        self.grant_changes += 1
        self.grants = grants

    def run(self, sql: str) -> Outcome:
        """``sql`` as the account."""
        self.lock_for(ddl=is_ddl(sql))
        try:
            with self.user.cursor() as cur:
                cur.execute(sql)
            return Outcome(0)
        except pymysql.MySQLError as err:
            errno = err.args[0] if err.args and isinstance(err.args[0], int) else -1
            message = str(err.args[1]) if len(err.args) > 1 else str(err)
            if errno >= 2000 or errno < 0 or not self.user.open:
                self.user = self._connect_user()
            return Outcome(errno, message)


# --------------------------------------------------------------------------------------------
# Comparison


@dataclass(frozen=True)
class Finding:
    kind: str  # table | privilege | access | over-ask
    case: Case
    proxy: str
    mariadb: str

    def __str__(self) -> str:
        return (
            f"[{self.kind}] {self.case.sql}\n    proxy: {self.proxy}\n    MariaDB: {self.mariadb}"
        )


@dataclass
class Report:
    statements: int = 0
    refused: int = 0
    allowed: int = 0
    runs: int = 0
    grant_changes: int = 0
    mariadb: Counter[int] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    refused_but_valid: Counter[str] = field(default_factory=Counter)
    refused_examples: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        top = ", ".join(f"{e or 'OK'}: {n}" for e, n in self.mariadb.most_common(8))
        return (
            f"{self.statements} statements ({self.refused} refused by the proxy, {self.allowed}"
            f" allowed), {self.runs} MariaDB runs, {self.grant_changes} grant changes,"
            f" {self.seconds:.1f} s; MariaDB on allowed statements: {top};"
            f" {len(self.findings)} disagreements"
        )


_WRITES = frozenset({Priv.INSERT, Priv.UPDATE, Priv.DELETE})


@dataclass
class _Run:
    case: Case
    word: str | None  # the case's word, if it is a table of the test database
    reqs: tuple[Requirement, ...]
    tables: frozenset[str]  # the tables the proxy listed, as the server names them
    grants: Grants
    retried: bool = False
    outcome: Outcome | None = None  # of the full run, when it got past the privilege checks


def _grants(db: DiffDatabase, case: Case, reqs: Sequence[Requirement], plus: bool) -> Grants:
    """The account's privileges for ``case``: exactly ``reqs`` on the tables the statement
    names (with SELECT added on written tables if ``plus``)."""
    word = db.name(case.word)
    by_table: dict[str, set[str]] = defaultdict(set)
    for r in reqs:
        assert r.table is not None
        assert r.priv.name is not None  # one privilege per requirement
        by_table[db.name(r.table)].add(r.priv.name.capitalize())
        if plus and r.priv in _WRITES:
            by_table[db.name(r.table)].add("Select")
    # Word tables other than the case's own that the statement names keep exact privileges.
    named = {db.name(a.replace("``", "`") if a else b) for a, b in _NAME_TOKEN.findall(case.sql)}
    exact: dict[str, tuple[str, ...]] = {t: () for t in (named & db.words) - {word}}
    for table, privs in by_table.items():
        if table in db.tables and table != word:
            exact[table] = tuple(sorted(privs))
    broadcast = tuple(sorted(by_table.get(word, ()))) if word in db.words else ()
    return Grants(broadcast, tuple(sorted(exact.items())))


def _denied(db: DiffDatabase, outcome: Outcome) -> tuple[str, set[str]] | None:
    """``(table, privileges)`` of a table or column access denial."""
    m = _TABLE_DENIED.match(outcome.message) or _COLUMN_DENIED.match(outcome.message)
    if m is None:
        return None
    return db.name(m["table"].replace("``", "`")), {p.strip() for p in m["privs"].split(",")}


def _describe(reqs: Sequence[Requirement]) -> str:
    return " ".join(f"{r.priv.name}:{r.table}" for r in reqs) or "(nothing)"


def _neutral_tables(template: Template, db: DiffDatabase) -> frozenset[str] | None:
    """The tables the proxy lists for ``template`` with the neutral word (None if refused)."""
    statements = analyze_uncached(template.text.format(w=NEUTRAL), DB)
    if len(statements) != 1 or statements[0].kind is not Kind.QUERY:
        return None
    return frozenset(db.name(r.table) for r in statements[0].requirements if r.table)


Analysis = tuple[Requirement, ...] | str  # the requirements, or the refusal's message


def _analyse(sqls: Sequence[str]) -> list[Analysis]:
    """The proxy's analysis of each statement (run in worker processes)."""
    out: list[Analysis] = []
    for sql in sqls:
        statements = analyze_uncached(sql, DB)
        if len(statements) == 1 and statements[0].kind is Kind.QUERY:
            out.append(statements[0].requirements)
        else:
            error = statements[0].error if statements else None
            out.append(error.message if error is not None else "refused")
    return out


_CHUNK = 2000


def _analysed(case_list: Sequence[Case]) -> Iterator[tuple[Sequence[Case], list[Analysis]]]:
    """``(cases, analyses)`` chunk by chunk, analysed by worker processes while the caller
    runs the previous chunk on MariaDB (spawned: the caller may have threads)."""
    chunks = [case_list[i : i + _CHUNK] for i in range(0, len(case_list), _CHUNK)]
    workers = max(1, min(3, (os.cpu_count() or 1) - 1))
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = pool.imap(_analyse, [[c.sql for c in chunk] for chunk in chunks])
        yield from zip(chunks, results, strict=True)


def compare(
    db: DiffDatabase,
    case_list: Sequence[Case],
    leave_one_out: str = "all",
    refusals: bool = False,
) -> Report:
    """Analyse every case, run the allowed ones on MariaDB, and collect the disagreements.

    ``leave_one_out``: ``"all"`` runs it for every allowed statement; ``"changed"`` only for
    those whose tables differ from what the proxy lists with the neutral word in the same
    template (and for the neutral statements themselves); ``"none"`` never. ``refusals``:
    also run the statements the proxy refuses, with every privilege, and count those MariaDB
    accepts (:attr:`Report.refused_but_valid`: not disagreements, the cost of refusing).
    """
    started = time.monotonic()
    neutral = {t: _neutral_tables(t, db) for t in TEMPLATES}
    # by template: statements of one template mostly need the same grants; DDL last, so that
    # the lock holder changes its lock once (DiffDatabase.lock_for)
    order = {t: (is_ddl(t.text), i) for i, t in enumerate(TEMPLATES)}
    case_list = sorted(
        [*(Case(t.text.format(w=NEUTRAL), t, NEUTRAL, False) for t in TEMPLATES), *case_list],
        key=lambda case: order[case.template],
    )
    report = Report(statements=len(case_list))
    second: list[tuple[Grants, _Run, str]] = []
    refused: list[tuple[Case, str]] = []
    for chunk, analyses in _analysed(case_list):
        pending: list[_Run] = []
        for case, analysis in zip(chunk, analyses, strict=True):
            if isinstance(analysis, str):
                report.refused += 1
                refused.append((case, analysis))
                continue
            reqs = analysis
            if any(r.table is None or r.db != DB for r in reqs):
                report.findings.append(
                    Finding("access", case, _describe(reqs), "not emulated (database-level grant)")
                )
                continue
            report.allowed += 1
            word = db.name(case.word)
            pending.append(
                _Run(
                    case,
                    word if word in db.words else None,
                    reqs,
                    frozenset(db.name(r.table) for r in reqs if r.table is not None),
                    _grants(db, case, reqs, plus=False),
                )
            )
        for item in _full_runs(db, pending, report):
            expected = neutral[item.case.template]
            if expected is not None and item.word is not None:
                expected = frozenset(item.word if t == NEUTRAL else t for t in expected)
            if leave_one_out == "all" or (
                leave_one_out == "changed"
                and (item.case.word == NEUTRAL or item.tables != expected)
            ):
                for table in sorted(item.tables & db.tables):
                    second.append((item.grants.without(table, item.word), item, table))
    _leave_one_out(db, second, report)
    if refusals:
        _refused_runs(db, refused, report)
    db.set_grants(Grants())
    report.grant_changes = db.grant_changes
    report.seconds = time.monotonic() - started
    return report


def _full_runs(db: DiffDatabase, pending: list[_Run], report: Report) -> list[_Run]:
    """Run each statement with the proxy's privileges; record disagreements; return the runs
    that got past MariaDB's privilege checks (leave-one-out candidates)."""
    passed: list[_Run] = []
    while pending:
        retry: list[_Run] = []
        for item in sorted(pending, key=lambda run: (is_ddl(run.case.sql), run.grants)):
            db.set_grants(item.grants)
            outcome = db.run(item.case.sql)
            report.runs += 1
            if not item.retried:
                report.mariadb[outcome.errno] += 1
            if outcome.errno not in _ACCESS_ERRORS:
                if outcome.errno != 1064:
                    item.outcome = outcome
                    passed.append(item)
                continue
            denied = _denied(db, outcome)
            proxy_view = _describe(item.reqs)
            if denied is None:
                report.findings.append(Finding("access", item.case, proxy_view, str(outcome)))
            elif denied[0] not in item.tables:
                report.findings.append(Finding("table", item.case, proxy_view, str(outcome)))
            elif (
                denied[1] == {"SELECT"}
                and not item.retried
                and any(
                    r.table and db.name(r.table) == denied[0] and r.priv in _WRITES
                    for r in item.reqs
                )
            ):
                # MariaDB's column-read rule: run again with SELECT on the written tables
                item.retried = True
                item.grants = _grants(db, item.case, item.reqs, plus=True)
                retry.append(item)
            else:
                report.findings.append(Finding("privilege", item.case, proxy_view, str(outcome)))
        pending = retry
    return passed


def _leave_one_out(
    db: DiffDatabase, second: list[tuple[Grants, _Run, str]], report: Report
) -> None:
    """Each statement without the privileges on one of its tables must be denied access; if it
    is not, the proxy listed a table MariaDB does not read -- unless the statement fails the
    same way with no privileges at all (an error MariaDB raises before checking privileges,
    such as ``DISTINCT ALL``'s 1221)."""
    suspects: list[tuple[_Run, str, Outcome]] = []
    for grants, item, table in sorted(second, key=lambda e: (is_ddl(e[1].case.sql), e[0])):
        db.set_grants(grants)
        outcome = db.run(item.case.sql)
        report.runs += 1
        if outcome.errno not in _ACCESS_ERRORS:
            suspects.append((item, table, outcome))
    db.set_grants(Grants())
    for item, table, outcome in suspects:
        bare = db.run(item.case.sql)
        report.runs += 1
        if item.outcome is not None and bare.errno == item.outcome.errno != 0:
            continue
        report.findings.append(
            Finding(
                "over-ask",
                item.case,
                _describe(item.reqs),
                f"without privileges on {table}: {outcome}",
            )
        )


_ALL_PRIVILEGES: Privs = (
    "Alter",
    "Create",
    "Delete",
    "Drop",
    "Index",
    "Insert",
    "Select",
    "Update",
)


def _refused_runs(db: DiffDatabase, refused: list[tuple[Case, str]], report: Report) -> None:
    """Run the statements the proxy refuses with every privilege on every table; count those
    MariaDB accepts, by the proxy's reason."""
    db.set_grants(Grants(_ALL_PRIVILEGES, tuple((t, _ALL_PRIVILEGES) for t in sorted(db.fixed))))
    for case, reason in sorted(refused, key=lambda entry: is_ddl(entry[0].sql)):
        outcome = db.run(case.sql)
        report.runs += 1
        if outcome.errno != 1064:
            report.refused_but_valid[_reason(reason)] += 1
            report.refused_examples.setdefault(_reason(reason), case.sql)


def _reason(message: str) -> str:
    """A refusal's message without the statement text a 1064 quotes."""
    return message.split(" near ")[0][:120]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Differential test of the analyser")
    parser.add_argument("--exhaustive", action="store_true")
    parser.add_argument("--leave-one-out", choices=["all", "changed", "none"], default=None)
    parser.add_argument("--words", help="comma-separated words instead of all of them")
    parser.add_argument("--port", type=int, help="use a running server (root password below)")
    parser.add_argument("--password", default="")
    parser.add_argument("--refusals", action="store_true", help="count refusals MariaDB accepts")
    args = parser.parse_args(argv)
    if args.words:
        words = args.words.split(",")
    else:
        words = mariadb_words() + sqlglot_words()
        if args.exhaustive:
            words += sqlglot_function_words()
    case_list = cases(words, args.exhaustive)

    def go(endpoint: ShardEndpoint) -> Report:
        with DiffDatabase(endpoint, words) as db:
            mode = args.leave_one_out or ("all" if args.exhaustive else "changed")
            return compare(db, case_list, leave_one_out=mode, refusals=args.refusals)

    if args.port:
        report = go(ShardEndpoint(HOST, args.port, "root", args.password))
    else:
        with tempfile.TemporaryDirectory() as tmp, LocalMariaDB(Path(tmp) / "db") as server:
            report = go(server.endpoint)
    for finding in report.findings:
        print(finding)
    for reason, count in report.refused_but_valid.most_common():
        example = report.refused_examples[reason]
        print(f"refused, valid for MariaDB: {count:6} {reason}\n    e.g. {example}")
    print(report.summary())
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())
