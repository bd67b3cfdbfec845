"""The catalog on a MySQL/MariaDB database (PyMySQL), for several proxy nodes sharing one.

URL: ``mysql://user@host:port/dbname`` (``auth.urls``). The password is never part of the URL: it
comes from an environment variable or a file, named by the query parameters ``password_env=NAME``
or ``password_file=/abs/path`` (``proxy.ops.config`` writes them from ``[catalog] password_env`` /
``password_file``). A URL that carries a password is refused, and no error ever repeats it.

Transactions (InnoDB):

- ``writing()`` is READ COMMITTED and starts by locking the ``catalog_version`` counter row
  (``SELECT ... FOR UPDATE``). Every writer on every node takes that same row lock first, so
  writers are serialized across nodes, never deadlock with each other, and each one reads the
  newest committed state once it holds the lock: two nodes' conflicting changes apply one after
  the other, each validated against the other's result.
- ``reading()`` is ``START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`` at REPEATABLE
  READ: every read inside sees one committed state.
- Outside transactions the connection autocommits, so ``current_version()`` always sees the
  newest committed version (the poll every node runs).

One connection per store, used under a lock (the catalog calls it from worker threads). A lost
connection is reopened when the next transaction or poll starts; a connection lost inside a
transaction fails that transaction (``StoreError``), never half-applies it -- except when it
is lost after COMMIT was sent, when nobody here can tell whether it was applied
(``StoreOutcomeUnknown``).

Every request is bounded by ``timeout`` (``[catalog] timeout``): connecting, each read and write
on the socket, and the catalog server's own lock waits (``lock_wait_timeout`` for a table
another client locked, ``innodb_lock_wait_timeout`` for a row), so a stopped, frozen or locked
catalog fails a request within that time instead of holding it (PyMySQL's socket timeouts and
the server's lock waits would otherwise be minutes to days). A request that timed out is not
retried on a new connection.

Schema migrations are DDL, which MySQL commits statement by statement: they run under a named
lock (``GET_LOCK``) so two nodes never migrate at once, each migration is written so that
re-running it after an interruption is safe, and ``schema_version`` is bumped after each one.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import pymysql
import pymysql.err

from auth.sql_store import SqlCatalogStore
from auth.store import (
    CATALOG_VERSION,
    CHANGE_LOG_HORIZON,
    NEXT_ACCOUNT_ID,
    StoreError,
    StoreIntegrityError,
    StoreOutcomeUnknown,
)
from auth.urls import MysqlUrl, parse_mysql_url

_T = TypeVar("_T")

_TABLE_OPTIONS = "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

# Each entry migrates the schema from version i to i + 1 (the same numbering as
# ``auth.sqlite_store.MIGRATIONS``: version N is the same logical schema on both backends).
# Statements are idempotent (IF NOT EXISTS, INSERT IGNORE) so an interrupted run can resume.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        f"""CREATE TABLE IF NOT EXISTS counters (
            name VARCHAR(64) NOT NULL PRIMARY KEY,
            value BIGINT NOT NULL
        ) {_TABLE_OPTIONS}""",
        f"""INSERT IGNORE INTO counters (name, value) VALUES
            ('{CATALOG_VERSION}', 0), ('{NEXT_ACCOUNT_ID}', 1), ('{CHANGE_LOG_HORIZON}', 0)""",
        f"""CREATE TABLE IF NOT EXISTS logical_databases (
            name_key VARCHAR(255) NOT NULL PRIMARY KEY,
            name VARCHAR(255) NOT NULL,
            shard VARCHAR(255) NOT NULL,
            physical_name VARCHAR(255) NOT NULL,
            backend_user VARCHAR(255) NOT NULL
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS accounts (
            id BIGINT NOT NULL PRIMARY KEY,
            user_name VARCHAR(255) NOT NULL,
            host_pattern VARCHAR(255) NOT NULL,
            native_hash VARBINARY(64) NOT NULL,
            password_hash VARCHAR(512) NOT NULL,
            owner_db VARCHAR(255) NULL,
            builtin VARCHAR(8) NULL CHECK (builtin IN ('admin', 'ro')),
            created_seq BIGINT NOT NULL,
            UNIQUE KEY accounts_user_host (user_name, host_pattern),
            KEY accounts_owner_db (owner_db)
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS db_grants (
            account_id BIGINT NOT NULL,
            db VARCHAR(255) NOT NULL,
            privs INT NOT NULL CHECK (privs BETWEEN 1 AND 255),
            PRIMARY KEY (account_id, db),
            KEY db_grants_db (db),
            CONSTRAINT db_grants_account FOREIGN KEY (account_id) REFERENCES accounts (id)
                ON DELETE CASCADE
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS table_grants (
            account_id BIGINT NOT NULL,
            db VARCHAR(255) NOT NULL,
            tbl VARCHAR(255) NOT NULL,
            privs INT NOT NULL CHECK (privs BETWEEN 1 AND 255),
            PRIMARY KEY (account_id, db, tbl),
            KEY table_grants_db (db),
            CONSTRAINT table_grants_account FOREIGN KEY (account_id) REFERENCES accounts (id)
                ON DELETE CASCADE
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS change_log (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            version BIGINT NOT NULL,
            account_id BIGINT NULL,
            KEY change_log_version (version)
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS audit (
            id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
            at VARCHAR(40) NOT NULL,
            actor TEXT NOT NULL,
            client VARCHAR(255) NOT NULL,
            action MEDIUMTEXT NOT NULL,
            details MEDIUMTEXT NOT NULL,
            catalog_version BIGINT NOT NULL
        ) {_TABLE_OPTIONS}""",
    ),
    # 2: dual passwords (SET PASSWORD ... RETAIN CURRENT PASSWORD): the secondary's hashes.
    # One ALTER, so it applies whole or not at all.
    (
        """ALTER TABLE accounts
            ADD COLUMN retained_native_hash VARBINARY(64) NULL,
            ADD COLUMN retained_password_hash VARCHAR(512) NULL""",
    ),
    # 3: account protections (issue #7): a per-account connection limit (0: the server's
    # default), and the consecutive failed logins and lock end (Unix time) of the lockout,
    # kept here so that every node sharing the catalog shares the lock. One ALTER.
    (
        """ALTER TABLE accounts
            ADD COLUMN max_user_connections BIGINT NOT NULL DEFAULT 0
                CHECK (max_user_connections >= 0),
            ADD COLUMN failed_logins INT NOT NULL DEFAULT 0,
            ADD COLUMN locked_until DOUBLE NULL""",
    ),
    # 4: dashboard sessions ended server-side (sign-out), shared by every node: the SHA-256 of
    # the session id, kept until the session would have expired anyway.
    (
        f"""CREATE TABLE IF NOT EXISTS revoked_sessions (
            session_hash CHAR(64) NOT NULL PRIMARY KEY,
            expires_at DOUBLE NOT NULL,
            KEY revoked_sessions_expiry (expires_at)
        ) {_TABLE_OPTIONS}""",
    ),
    # 5: the operator's day (issue #13): named settings (the verifier of the catalog secret
    # every node must share), each node's open sessions per database as it last reported them
    # (``database list``/``drop``), and when each database was created (taken from the audit
    # log for the databases that exist already).
    (
        f"""CREATE TABLE IF NOT EXISTS catalog_settings (
            name VARCHAR(64) NOT NULL PRIMARY KEY,
            value VARCHAR(255) NOT NULL
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS node_sessions (
            node VARCHAR(255) NOT NULL,
            db VARCHAR(255) NOT NULL,
            sessions BIGINT NOT NULL,
            updated_at DOUBLE NOT NULL,
            PRIMARY KEY (node, db)
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS database_created (
            name_key VARCHAR(255) NOT NULL PRIMARY KEY,
            created_at VARCHAR(40) NOT NULL
        ) {_TABLE_OPTIONS}""",
        """INSERT IGNORE INTO database_created (name_key, created_at)
            SELECT d.name_key, MAX(a.at) FROM logical_databases d
            JOIN audit a ON a.action = CONCAT('CREATE DATABASE ', d.name)
            GROUP BY d.name_key""",
    ),
    # 6: sharded databases (issue #15, sharding.md): a database's physical databases and their
    # shards, its logical tables with their rules and definitions, and its GROUP sequences
    # with the next value not yet reserved by any node.
    (
        f"""CREATE TABLE IF NOT EXISTS database_partitions (
            db_key VARCHAR(255) NOT NULL,
            idx INT NOT NULL CHECK (idx >= 0),
            physical_name VARCHAR(255) NOT NULL,
            shard VARCHAR(255) NOT NULL,
            PRIMARY KEY (db_key, idx)
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS logical_tables (
            db_key VARCHAR(255) NOT NULL,
            name_key VARCHAR(255) NOT NULL,
            name VARCHAR(255) NOT NULL,
            kind VARCHAR(16) NOT NULL CHECK (kind IN ('single', 'broadcast', 'sharded')),
            db_function VARCHAR(16) NULL CHECK (db_function IN ('HASH', 'UNI_HASH')),
            db_column VARCHAR(255) NULL,
            db_type VARCHAR(64) NULL,
            tb_function VARCHAR(16) NULL CHECK (tb_function IN ('HASH', 'UNI_HASH')),
            tb_column VARCHAR(255) NULL,
            tb_type VARCHAR(64) NULL,
            tables_per_db INT NOT NULL CHECK (tables_per_db >= 1),
            definition MEDIUMTEXT NOT NULL,
            PRIMARY KEY (db_key, name_key)
        ) {_TABLE_OPTIONS}""",
        f"""CREATE TABLE IF NOT EXISTS sequences (
            db_key VARCHAR(255) NOT NULL,
            name_key VARCHAR(255) NOT NULL,
            name VARCHAR(255) NOT NULL,
            start_with BIGINT NOT NULL,
            generation BIGINT NOT NULL,
            next_value BIGINT NOT NULL,
            PRIMARY KEY (db_key, name_key)
        ) {_TABLE_OPTIONS}""",
    ),
    # 7: the outcome of each multi-shard (XA) transaction, decided once (sqlite_store).
    (
        f"""CREATE TABLE IF NOT EXISTS xa_decisions (
            xid VARCHAR(128) NOT NULL PRIMARY KEY,
            outcome VARCHAR(8) NOT NULL CHECK (outcome IN ('commit', 'abort'))
        ) {_TABLE_OPTIONS}""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

_MIGRATION_LOCK = "shardgate_catalog_migrate"
# Client error codes meaning the connection is gone (server gone away, lost, broken pipe).
_LOST = {2003, 2006, 2013, 2055}


def _is_lost(error: BaseException) -> bool:
    if isinstance(error, pymysql.err.InterfaceError):
        return True
    return (
        isinstance(error, pymysql.err.OperationalError)
        and bool(error.args)
        and error.args[0] in _LOST
    )


def _timed_out(error: BaseException) -> bool:
    """Whether PyMySQL gave up waiting (a socket timeout) rather than seeing the connection
    end: the server may be frozen, so trying again at once would only wait again."""
    cause = getattr(error, "original_exception", None) or error.__context__
    return isinstance(cause, TimeoutError)


def _describe(error: pymysql.err.MySQLError) -> str:
    if len(error.args) >= 2:
        return f"({error.args[0]}) {error.args[1]}"
    return str(error) or type(error).__name__


class MysqlCatalogStore(SqlCatalogStore):
    """Implements ``auth.store.CatalogStore`` over one MySQL/MariaDB database."""

    code_schema_version = SCHEMA_VERSION
    set_up_when_empty = False

    def __init__(self, url: MysqlUrl, timeout: float) -> None:
        if not timeout > 0:
            raise ValueError("the catalog timeout must be positive")
        self.url = url
        self._timeout = timeout
        self._lock = threading.RLock()
        self._conn: pymysql.connections.Connection[Any] | None = None
        self._in_transaction = False

    @classmethod
    def open(cls, url: str, *, timeout: float) -> MysqlCatalogStore:
        store = cls(parse_mysql_url(url), timeout)
        store._connection()  # fail now, not at the first read
        return store

    # --- connection ---

    def _connect(self) -> pymysql.connections.Connection[Any]:
        url = self.url
        # The server's lock waits are whole seconds.
        lock_wait = max(1, math.ceil(self._timeout))
        try:
            return pymysql.connect(
                host=url.host,
                port=url.port,
                user=url.user,
                password=url.password(),
                database=url.database,
                charset="utf8mb4",
                autocommit=True,
                connect_timeout=self._timeout,
                read_timeout=self._timeout,
                write_timeout=self._timeout,
                init_command=(
                    f"SET SESSION lock_wait_timeout = {lock_wait},"
                    f" innodb_lock_wait_timeout = {lock_wait}"
                ),
            )
        except pymysql.err.MySQLError as error:
            raise StoreError(f"cannot connect to {url.display()}: {_describe(error)}") from None

    def _connection(self) -> pymysql.connections.Connection[Any]:
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def _retrying(self, action: Callable[[pymysql.connections.Connection[Any]], _T]) -> _T:
        """Run ``action`` (outside a transaction); on a connection found lost (not one that
        timed out) reconnect once."""
        try:
            return action(self._connection())
        except pymysql.err.MySQLError as error:
            if not _is_lost(error) or _timed_out(error):
                if _is_lost(error):
                    self._drop_connection()
                raise StoreError(_describe(error)) from None
        self._drop_connection()
        try:
            return action(self._connection())
        except pymysql.err.MySQLError as error:
            self._drop_connection()
            raise StoreError(_describe(error)) from None

    def close(self) -> None:
        with self._lock:
            self._drop_connection()

    # --- schema ---

    def schema_version(self) -> int:
        """The schema version of the database (0: no catalog schema yet)."""
        with self._lock:
            return self._retrying(_read_schema_version)

    def migrate(self) -> tuple[int, int]:
        """Apply the missing migrations; returns (from, to). Serialized across nodes."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT GET_LOCK(%s, 60)", (_MIGRATION_LOCK,))
                    row = cur.fetchone()
                    if row is None or row[0] != 1:
                        raise StoreError("another node is migrating the catalog; try again")
                    try:
                        cur.execute(
                            "CREATE TABLE IF NOT EXISTS schema_version"
                            f" (version INT NOT NULL) {_TABLE_OPTIONS}"
                        )
                        current = _read_schema_version(conn)
                        if current > SCHEMA_VERSION:
                            raise StoreError(
                                f"catalog schema version {current} is newer than this "
                                f"shardgate ({SCHEMA_VERSION})"
                            )
                        for version in range(current, SCHEMA_VERSION):
                            for statement in MIGRATIONS[version]:
                                cur.execute(statement)
                            cur.execute("DELETE FROM schema_version")
                            cur.execute(
                                "INSERT INTO schema_version (version) VALUES (%s)", (version + 1,)
                            )
                    finally:
                        cur.execute("SELECT RELEASE_LOCK(%s)", (_MIGRATION_LOCK,))
            except pymysql.err.MySQLError as error:
                self._drop_connection()
                raise StoreError(f"migration failed: {_describe(error)}") from None
            return current, SCHEMA_VERSION

    # --- transactions ---

    def limit_thread_write_wait(self, seconds: float) -> None:
        """Nothing to do: one connection serves every thread, and a writer waits only for
        another node's short transaction (a stopped server fails at once)."""

    def current_version(self) -> int:
        with self._lock:

            def read(conn: pymysql.connections.Connection[Any]) -> int:
                with conn.cursor() as cur:
                    cur.execute("SELECT value FROM counters WHERE name = %s", (CATALOG_VERSION,))
                    row = cur.fetchone()
                return int(row[0])

            return self._retrying(read)

    def _begin(self, *statements: str) -> None:
        def begin(conn: pymysql.connections.Connection[Any]) -> None:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)

        self._retrying(begin)
        self._in_transaction = True

    def _end(self, statement: str, *, writes: bool = False) -> None:
        """COMMIT / ROLLBACK the transaction; ``writes``: it changed something, so a connection
        lost after COMMIT was sent leaves its outcome unknown."""
        self._in_transaction = False
        conn = self._conn
        if conn is None:
            raise StoreError("lost the catalog connection inside a transaction")
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        except pymysql.err.MySQLError as error:
            self._drop_connection()
            if writes and _is_lost(error):
                # Sent, perhaps received and applied: only the catalog knows.
                raise StoreOutcomeUnknown(
                    f"the connection was lost after COMMIT was sent: {_describe(error)}"
                ) from None
            raise StoreError(f"{statement} failed: {_describe(error)}") from None

    def _abort(self) -> None:
        self._in_transaction = False
        conn = self._conn
        if conn is None:
            return
        try:
            with conn.cursor() as cur:
                cur.execute("ROLLBACK")
        except pymysql.err.MySQLError:
            self._drop_connection()

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._lock:
            self._begin(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
            )
            try:
                yield
            except BaseException:
                self._abort()
                raise
            self._end("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            self._begin("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "START TRANSACTION")
            try:
                # The cross-node write lock: every writer locks this row first.
                self._rows(
                    "SELECT value FROM counters WHERE name = ? FOR UPDATE", (CATALOG_VERSION,)
                )
                yield
            except StoreIntegrityError:
                self._abort()
                raise
            except pymysql.err.IntegrityError as error:
                self._abort()
                raise StoreIntegrityError(_describe(error)) from None
            except BaseException:
                self._abort()
                raise
            self._end("COMMIT", writes=True)

    # --- statements (the reads and writes are ``SqlCatalogStore``'s) ---

    def _cursor_run(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        conn = self._conn
        if conn is None or not self._in_transaction:
            raise StoreError("catalog store used outside a transaction")
        try:
            with conn.cursor() as cur:
                # Our statements are written with ``?`` (and hold no literal one): PyMySQL's
                # placeholder is ``%s``.
                cur.execute(sql.replace("?", "%s"), params)
                return list(cur.fetchall())
        except pymysql.err.IntegrityError as error:
            raise StoreIntegrityError(_describe(error)) from None
        except pymysql.err.MySQLError as error:
            if _is_lost(error):
                self._drop_connection()
            raise StoreError(_describe(error)) from None

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._cursor_run(sql, params)

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        rows = self._cursor_run(sql, params)
        return rows[0] if rows else None

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._cursor_run(sql, params)


def _read_schema_version(conn: pymysql.connections.Connection[Any]) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.TABLES"
            " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'schema_version'"
        )
        row = cur.fetchone()
        if row is None or int(row[0]) == 0:
            return 0
        cur.execute("SELECT MAX(version) FROM schema_version")
        row = cur.fetchone()
    return 0 if row is None or row[0] is None else int(row[0])
