"""The catalog's SQLite storage (stdlib ``sqlite3``): schema, migrations, transactions, rows.

WAL mode with ``synchronous=FULL``; each write is one ``BEGIN IMMEDIATE`` transaction, so a
process killed at any moment leaves either all of a change or none of it. The connection runs
in autocommit mode outside explicit transactions, so a plain read always sees the newest
committed state (another process, such as the CLI, may write the same file).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from auth.store import (
    CATALOG_VERSION,
    CHANGE_LOG_HORIZON,
    NEXT_ACCOUNT_ID,
    AccountRow,
    AuditRow,
    DatabaseRow,
    DbGrantRow,
    LoginStateRow,
    StoreError,
    StoreIntegrityError,
    TableGrantRow,
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
)
SCHEMA_VERSION = len(MIGRATIONS)

# Bound parameters per IN (...) list.
_CHUNK = 500

_ACCOUNT_COLUMNS = (
    "id, user_name, host_pattern, native_hash, password_hash, owner_db, builtin, created_seq,"
    " retained_native_hash, retained_password_hash, max_user_connections, failed_logins,"
    " locked_until"
)


def _chunks(ids: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    # check_same_thread stays off only so close() can close every thread's connection.
    db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA foreign_keys=ON")
    return db


class SqliteCatalogStore:
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

    @classmethod
    def open(cls, path: Path, *, busy_timeout: float = 30.0) -> SqliteCatalogStore:
        """Open (creating the parent directories and an empty file if needed); the schema is
        ``migrate()``'s business."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = _connect(path, busy_timeout)
        except (OSError, sqlite3.Error) as error:
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
            return self.counter(CATALOG_VERSION)

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield
            finally:
                self._db.execute("COMMIT")

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except sqlite3.IntegrityError as exc:
                self._db.execute("ROLLBACK")
                raise StoreIntegrityError(str(exc)) from exc
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # --- reads ---

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._db.execute(sql, params).fetchone()

    def counter(self, name: str) -> int:
        row = self._one("SELECT value FROM counters WHERE name = ?", (name,))
        return int(row[0])

    def changes_since(self, version: int) -> tuple[set[int], bool]:
        ids: set[int] = set()
        databases = False
        for (account_id,) in self._db.execute(
            "SELECT DISTINCT account_id FROM change_log WHERE version > ?", (version,)
        ):
            if account_id is None:
                databases = True
            else:
                ids.add(int(account_id))
        return ids, databases

    def database_rows(self) -> list[DatabaseRow]:
        return cast(
            list[DatabaseRow],
            self._db.execute(
                "SELECT name, shard, physical_name, backend_user FROM logical_databases"
            ).fetchall(),
        )

    def database_row(self, key: str) -> DatabaseRow | None:
        return cast(
            DatabaseRow | None,
            self._one(
                "SELECT name, shard, physical_name, backend_user FROM logical_databases"
                " WHERE name_key = ?",
                (key,),
            ),
        )

    def _rows_for(self, select: str, column: str, ids: Collection[int] | None) -> Iterator[Any]:
        """Rows of the given accounts, or of all (a lazy cursor, ordered by ``column``)."""
        if ids is None:
            return self._db.execute(f"{select} ORDER BY {column}")
        return self._chunked(select, column, ids)

    def _chunked(self, select: str, column: str, ids: Collection[int]) -> Iterator[Any]:
        for chunk in _chunks(ids):
            yield from self._db.execute(
                f"{select} WHERE {column} IN ({_marks(len(chunk))})", chunk
            ).fetchall()

    def account_rows(self, ids: Collection[int] | None) -> Iterable[AccountRow]:
        return cast(
            Iterable[AccountRow],
            self._rows_for(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts", "id", ids),
        )

    def db_grant_rows(self, ids: Collection[int] | None) -> Iterable[DbGrantRow]:
        return cast(
            Iterable[DbGrantRow],
            self._rows_for("SELECT account_id, db, privs FROM db_grants", "account_id", ids),
        )

    def table_grant_rows(self, ids: Collection[int] | None) -> Iterable[TableGrantRow]:
        return cast(
            Iterable[TableGrantRow],
            self._rows_for(
                "SELECT account_id, db, tbl, privs FROM table_grants", "account_id", ids
            ),
        )

    def account_row(self, account_id: int) -> AccountRow | None:
        return cast(
            AccountRow | None,
            self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,)),
        )

    def account_row_by_name(self, user: str, host: str) -> AccountRow | None:
        return cast(
            AccountRow | None,
            self._one(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE user_name = ? AND host_pattern = ?",
                (user, host),
            ),
        )

    def account_ids_named(self, user: str) -> list[int]:
        rows = self._db.execute("SELECT id FROM accounts WHERE user_name = ?", (user,))
        return [int(r[0]) for r in rows]

    def login_state(self, account_id: int) -> LoginStateRow | None:
        row = self._one(
            "SELECT failed_logins, locked_until FROM accounts WHERE id = ?", (account_id,)
        )
        return None if row is None else (int(row[0]), None if row[1] is None else float(row[1]))

    def builtin_user_exists(self, user: str) -> bool:
        row = self._one(
            "SELECT 1 FROM accounts WHERE user_name = ? AND builtin IS NOT NULL LIMIT 1", (user,)
        )
        return row is not None

    def account_ids_owned_by(self, owner_db: str) -> list[int]:
        rows = self._db.execute("SELECT id FROM accounts WHERE owner_db = ?", (owner_db,))
        return [int(r[0]) for r in rows]

    def account_ids_with_grants_on(self, db: str) -> list[int]:
        rows = self._db.execute(
            "SELECT account_id FROM db_grants WHERE db = ?"
            " UNION SELECT account_id FROM table_grants WHERE db = ?",
            (db, db),
        )
        return [int(r[0]) for r in rows]

    def builtin_account_id(self, owner_db: str, builtin: str) -> int | None:
        row = self._one(
            "SELECT id FROM accounts WHERE owner_db = ? AND builtin = ?", (owner_db, builtin)
        )
        return None if row is None else int(row[0])

    def audit_rows(self, limit: int | None) -> list[AuditRow]:
        columns = "id, at, actor, client, action, details, catalog_version"
        if limit is None:
            rows = self._db.execute(f"SELECT {columns} FROM audit ORDER BY id").fetchall()
        else:
            rows = self._db.execute(
                f"SELECT {columns} FROM (SELECT {columns} FROM audit ORDER BY id DESC LIMIT ?)"
                " ORDER BY id",
                (limit,),
            ).fetchall()
        return cast(list[AuditRow], rows)

    # --- writes ---

    def set_counter(self, name: str, value: int) -> None:
        self._db.execute("UPDATE counters SET value = ? WHERE name = ?", (value, name))

    def insert_database(self, key: str, row: DatabaseRow) -> None:
        self._db.execute(
            "INSERT INTO logical_databases (name_key, name, shard, physical_name, backend_user)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, *row),
        )

    def delete_database(self, key: str) -> None:
        self._db.execute("DELETE FROM logical_databases WHERE name_key = ?", (key,))

    def insert_account(self, row: AccountRow) -> None:
        self._db.execute(
            f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}) VALUES ({_marks(len(row))})", row
        )

    def delete_account(self, account_id: int) -> None:
        self._db.execute("DELETE FROM table_grants WHERE account_id = ?", (account_id,))
        self._db.execute("DELETE FROM db_grants WHERE account_id = ?", (account_id,))
        self._db.execute("DELETE FROM accounts WHERE id = ?", (account_id,))

    def update_password(
        self,
        account_id: int,
        native_hash: bytes,
        password_hash: str,
        retained: tuple[bytes, str] | None,
    ) -> None:
        old_native, old_hash = retained if retained is not None else (None, None)
        self._db.execute(
            "UPDATE accounts SET native_hash = ?, password_hash = ?, retained_native_hash = ?,"
            " retained_password_hash = ? WHERE id = ?",
            (native_hash, password_hash, old_native, old_hash, account_id),
        )

    def set_login_state(
        self, account_id: int, failed_logins: int, locked_until: float | None
    ) -> None:
        self._db.execute(
            "UPDATE accounts SET failed_logins = ?, locked_until = ? WHERE id = ?",
            (failed_logins, locked_until, account_id),
        )

    def set_max_user_connections(self, account_id: int, limit: int) -> None:
        self._db.execute(
            "UPDATE accounts SET max_user_connections = ? WHERE id = ?", (limit, account_id)
        )

    def set_db_privs(self, account_id: int, db: str, privs: int) -> None:
        self._db.execute("DELETE FROM db_grants WHERE account_id = ? AND db = ?", (account_id, db))
        if privs:
            self._db.execute(
                "INSERT INTO db_grants (account_id, db, privs) VALUES (?, ?, ?)",
                (account_id, db, privs),
            )

    def set_table_privs(self, account_id: int, db: str, table: str, privs: int) -> None:
        self._db.execute(
            "DELETE FROM table_grants WHERE account_id = ? AND db = ? AND tbl = ?",
            (account_id, db, table),
        )
        if privs:
            self._db.execute(
                "INSERT INTO table_grants (account_id, db, tbl, privs) VALUES (?, ?, ?, ?)",
                (account_id, db, table, privs),
            )

    def delete_grants_on(self, db: str) -> None:
        self._db.execute("DELETE FROM table_grants WHERE db = ?", (db,))
        self._db.execute("DELETE FROM db_grants WHERE db = ?", (db,))

    def log_changes(self, version: int, account_ids: Iterable[int], databases: bool) -> None:
        rows: list[tuple[int, int | None]] = [(version, i) for i in account_ids]
        if databases:
            rows.append((version, None))
        self._db.executemany("INSERT INTO change_log (version, account_id) VALUES (?, ?)", rows)

    def prune_change_log(self, through_version: int) -> None:
        self._db.execute("DELETE FROM change_log WHERE version <= ?", (through_version,))

    def insert_audit(
        self, at: str, actor: str, client: str, action: str, details: str, version: int
    ) -> None:
        self._db.execute(
            "INSERT INTO audit (at, actor, client, action, details, catalog_version)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (at, actor, client, action, details, version),
        )
