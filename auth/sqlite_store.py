"""The catalog's SQLite storage (stdlib ``sqlite3``): schema, migrations, transactions, rows.

WAL mode with ``synchronous=FULL``; each write is one ``BEGIN IMMEDIATE`` transaction, so a
process killed at any moment leaves either all of a change or none of it. The connection runs
in autocommit mode outside explicit transactions, so a plain read always sees the newest
committed state (another process, such as the CLI, may write the same file).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auth.files import create_private_file, exposure, make_private_dirs
from auth.sql_store import SqlCatalogStore
from auth.store import (
    CATALOG_VERSION,
    CHANGE_LOG_HORIZON,
    NEXT_ACCOUNT_ID,
    StoreError,
    StoreIntegrityError,
)

# Each entry migrates the schema from version i to i + 1, in one transaction.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE counters (
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        )""",
        f"""INSERT INTO counters (name, value) VALUES
            ('{CATALOG_VERSION}', 0), ('{NEXT_ACCOUNT_ID}', 1), ('{CHANGE_LOG_HORIZON}', 0)""",
        """CREATE TABLE logical_databases (
            name_key TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            shard TEXT NOT NULL,
            physical_name TEXT NOT NULL,
            backend_user TEXT NOT NULL
        )""",
        """CREATE TABLE accounts (
            id INTEGER PRIMARY KEY,
            user_name TEXT NOT NULL,
            host_pattern TEXT NOT NULL,
            native_hash BLOB NOT NULL,
            password_hash TEXT NOT NULL,
            owner_db TEXT,
            builtin TEXT CHECK (builtin IN ('admin', 'ro')),
            created_seq INTEGER NOT NULL,
            UNIQUE (user_name, host_pattern)
        )""",
        "CREATE INDEX accounts_owner_db ON accounts (owner_db)",
        """CREATE TABLE db_grants (
            account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            db TEXT NOT NULL,
            privs INTEGER NOT NULL CHECK (privs BETWEEN 1 AND 255),
            PRIMARY KEY (account_id, db)
        ) WITHOUT ROWID""",
        "CREATE INDEX db_grants_db ON db_grants (db)",
        """CREATE TABLE table_grants (
            account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
            db TEXT NOT NULL,
            tbl TEXT NOT NULL,
            privs INTEGER NOT NULL CHECK (privs BETWEEN 1 AND 255),
            PRIMARY KEY (account_id, db, tbl)
        ) WITHOUT ROWID""",
        "CREATE INDEX table_grants_db ON table_grants (db)",
        # One row per account touched by a version (account_id NULL: the databases changed),
        # so a reader can reload only what changed.
        """CREATE TABLE change_log (
            version INTEGER NOT NULL,
            account_id INTEGER
        )""",
        "CREATE INDEX change_log_version ON change_log (version)",
        """CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            client TEXT NOT NULL,
            action TEXT NOT NULL,
            details TEXT NOT NULL,
            catalog_version INTEGER NOT NULL
        )""",
    ),
    # 2: dual passwords (SET PASSWORD ... RETAIN CURRENT PASSWORD): the secondary's hashes.
    (
        "ALTER TABLE accounts ADD COLUMN retained_native_hash BLOB",
        "ALTER TABLE accounts ADD COLUMN retained_password_hash TEXT",
    ),
    # 3: account protections (issue #7): a per-account connection limit (0: the server's
    # default), and the consecutive failed logins and lock end (Unix time) of the lockout,
    # kept here so that every node sharing the catalog shares the lock.
    (
        "ALTER TABLE accounts ADD COLUMN max_user_connections INTEGER NOT NULL DEFAULT 0"
        " CHECK (max_user_connections >= 0)",
        "ALTER TABLE accounts ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE accounts ADD COLUMN locked_until REAL",
    ),
    # 4: dashboard sessions ended server-side (sign-out), shared by every node: the SHA-256 of
    # the session id, kept until the session would have expired anyway.
    (
        """CREATE TABLE IF NOT EXISTS revoked_sessions (
            session_hash TEXT PRIMARY KEY,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID""",
        "CREATE INDEX IF NOT EXISTS revoked_sessions_expiry ON revoked_sessions (expires_at)",
    ),
    # 5: the operator's day (issue #13): named settings (the verifier of the catalog secret
    # every node must share), each node's open sessions per database as it last reported them
    # (``database list``/``drop``), and when each database was created (taken from the audit
    # log for the databases that exist already).
    (
        """CREATE TABLE IF NOT EXISTS catalog_settings (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS node_sessions (
            node TEXT NOT NULL,
            db TEXT NOT NULL,
            sessions INTEGER NOT NULL,
            updated_at REAL NOT NULL,
            PRIMARY KEY (node, db)
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS database_created (
            name_key TEXT PRIMARY KEY,
            created_at TEXT NOT NULL
        ) WITHOUT ROWID""",
        """INSERT OR IGNORE INTO database_created (name_key, created_at)
            SELECT d.name_key, MAX(a.at) FROM logical_databases d
            JOIN audit a ON a.action = 'CREATE DATABASE ' || d.name
            GROUP BY d.name_key""",
    ),
    # 6: sharded databases (issue #15, sharding.md): a database's physical databases and their
    # shards, its logical tables with their rules and definitions, and its GROUP sequences
    # with the next value not yet reserved by any node.
    (
        """CREATE TABLE IF NOT EXISTS database_partitions (
            db_key TEXT NOT NULL,
            idx INTEGER NOT NULL CHECK (idx >= 0),
            physical_name TEXT NOT NULL,
            shard TEXT NOT NULL,
            PRIMARY KEY (db_key, idx)
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS logical_tables (
            db_key TEXT NOT NULL,
            name_key TEXT NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('single', 'broadcast', 'sharded')),
            db_function TEXT CHECK (db_function IN ('HASH', 'UNI_HASH')),
            db_column TEXT,
            db_type TEXT,
            tb_function TEXT CHECK (tb_function IN ('HASH', 'UNI_HASH')),
            tb_column TEXT,
            tb_type TEXT,
            tables_per_db INTEGER NOT NULL CHECK (tables_per_db >= 1),
            definition TEXT NOT NULL,
            PRIMARY KEY (db_key, name_key)
        ) WITHOUT ROWID""",
        """CREATE TABLE IF NOT EXISTS sequences (
            db_key TEXT NOT NULL,
            name_key TEXT NOT NULL,
            name TEXT NOT NULL,
            start_with INTEGER NOT NULL,
            generation INTEGER NOT NULL,
            next_value INTEGER NOT NULL,
            PRIMARY KEY (db_key, name_key)
        ) WITHOUT ROWID""",
    ),
    # 7: the outcome of each multi-shard (XA) transaction, decided once: "commit" by the node
    # that prepared every branch, or "abort" by a node recovering prepared branches first.
    (
        """CREATE TABLE IF NOT EXISTS xa_decisions (
            xid TEXT PRIMARY KEY,
            outcome TEXT NOT NULL CHECK (outcome IN ('commit', 'abort'))
        ) WITHOUT ROWID""",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)
# The database file and the side files SQLite keeps beside it (same mode as the database).
SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    # check_same_thread stays off only so close() can close every thread's connection.
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


class SqliteCatalogStore(SqlCatalogStore):
    """Implements ``auth.store.CatalogStore`` over one SQLite file."""

    def __init__(self, connection: sqlite3.Connection, path: Path, busy_timeout: float) -> None:
        # One SQLite connection per thread: sqlite3 objects shared between threads can be
        # finalised by the garbage collector in one thread while another uses the connection.
        self.path = path
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._local.db = connection
        self._connections = [connection]
        self._lock = threading.RLock()

    @property
    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = _connect(self.path, self._busy_timeout)
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    code_schema_version = SCHEMA_VERSION
    set_up_when_empty = True

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float = 30.0) -> SqliteCatalogStore:
        """Open (creating the parent directories 0700 and an empty file 0600 if needed, see
        ``auth.files``); the schema is ``migrate()``'s business. The file and its side files
        must be private (``StoreError`` naming the ``chmod`` otherwise): they hold password
        hashes."""
        try:
            make_private_dirs(path.parent)
            create_private_file(path)
        except OSError as error:
            raise StoreError(str(error)) from error
        problem = exposure(path.with_name(path.name + suffix) for suffix in SIDE_FILES)
        if problem is not None:
            raise StoreError(problem)
        try:
            connection = _connect(path, busy_timeout)
        except sqlite3.Error as error:
            raise StoreError(str(error)) from error
        try:
            connection.execute("PRAGMA journal_mode=WAL").fetchone()
            store = cls(connection, path, busy_timeout)
            store.schema_version()  # a file that is not a database fails here
        except sqlite3.Error as error:
            connection.close()
            raise StoreError(str(error)) from error
        except BaseException:
            connection.close()
            raise
        return store

    def schema_version(self) -> int:
        """The schema version of the file (0: no catalog schema yet)."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
                ).fetchone()
                if row is None:
                    return 0
                row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
            except sqlite3.Error as error:
                raise StoreError(str(error)) from error
            return 0 if row is None or row[0] is None else int(row[0])

    def migrate(self) -> tuple[int, int]:
        """Apply the missing migrations in one transaction; returns (from, to)."""
        try:
            with self.writing():
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
                )
                row = self._db.execute("SELECT MAX(version) FROM schema_version").fetchone()
                current = 0 if row is None or row[0] is None else int(row[0])
                if current > SCHEMA_VERSION:
                    raise StoreError(
                        f"catalog schema version {current} is newer than this shardgate "
                        f"({SCHEMA_VERSION})"
                    )
                for statements in MIGRATIONS[current:]:
                    for statement in statements:
                        self._db.execute(statement)
                self._db.execute("DELETE FROM schema_version")
                self._db.execute(
                    "INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,)
                )
        except StoreIntegrityError:
            raise
        except sqlite3.Error as error:
            raise StoreError(f"migration failed: {error}") from error
        return current, SCHEMA_VERSION

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()

    def current_version(self) -> int:
        with self._lock:
            try:
                return self.counter(CATALOG_VERSION)
            except sqlite3.Error as error:
                raise StoreError(str(error)) from error

    def limit_thread_write_wait(self, seconds: float) -> None:
        """Writes from the calling thread wait at most ``seconds`` for another connection's
        write lock (this thread's connection's busy timeout) before failing with StoreError."""
        self._db.execute(f"PRAGMA busy_timeout = {max(0, int(seconds * 1000))}")

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._lock:
            try:
                self._db.execute("BEGIN")
            except sqlite3.Error as error:
                raise StoreError(str(error)) from error
            try:
                yield
            except sqlite3.Error as error:
                raise StoreError(str(error)) from error
            finally:
                self._db.execute("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:  # "database is locked": another writer held it
                raise StoreError(str(error)) from error
            try:
                yield
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK")
                raise StoreIntegrityError(str(exc)) from exc
            except sqlite3.Error as error:
                self._db.execute("ROLLBACK")
                raise StoreError(str(error)) from error
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- statements (the reads and writes are ``SqlCatalogStore``'s) ---

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._db.execute(sql, params).fetchone()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self._db.execute(sql, params).fetchall()

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._db.execute(sql, params)
