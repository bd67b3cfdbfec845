"""The SQL both catalog stores share: every read and write whose statement is the same on
SQLite and MySQL/MariaDB, written once over three primitives each backend provides.

Statements here use ``?`` placeholders; the MySQL store turns them into ``%s`` before they
reach the driver (none of these statements holds a literal ``?``). What truly differs stays in
the subclasses (``auth.sqlite_store``, ``auth.mysql_store``): connecting, transactions and the
write lock, migrations, error translation and closing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any, cast

from auth.store import (
    AccountRow,
    AuditRow,
    DatabaseRow,
    DbGrantRow,
    LayoutRows,
    LoginStateRow,
    NodeSessionsRow,
    PartitionRow,
    SequenceRow,
    TableGrantRow,
    TableRow,
)

# Bound parameters per statement: the ids of one IN (...) list, the values of one multi-row
# INSERT (within SQLite's oldest limit of 999).
_CHUNK = 500

_ACCOUNT_COLUMNS = (
    "id, user_name, host_pattern, native_hash, password_hash, owner_db, builtin, created_seq,"
    " retained_native_hash, retained_password_hash, max_user_connections, failed_logins,"
    " locked_until"
)
_AUDIT_COLUMNS = "id, at, actor, client, action, details, catalog_version"
_TABLE_COLUMNS = (
    "db_key, name_key, name, kind, db_function, db_column, db_type, tb_function, tb_column,"
    " tb_type, tables_per_db, definition"
)
_SEQUENCE_COLUMNS = "db_key, name_key, name, start_with, generation"


def _chunks(ids: Collection[int]) -> Iterator[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), _CHUNK):
        yield ordered[start : start + _CHUNK]


def _marks(count: int) -> str:
    return ", ".join("?" * count)


class SqlCatalogStore(ABC):
    """The dialect-independent part of ``auth.store.CatalogStore``; a subclass adds the rest
    and the three statement primitives (each used inside ``reading()`` or ``writing()``)."""

    # --- primitives ---

    @abstractmethod
    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first row of the result (a tuple), or None."""

    @abstractmethod
    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """All rows of the result (tuples)."""

    @abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement that returns no rows."""

    # --- reads ---

    def counter(self, name: str) -> int:
        row = self._one("SELECT value FROM counters WHERE name = ?", (name,))
        return int(row[0])

    def changes_since(self, version: int) -> tuple[set[int], bool]:
        ids: set[int] = set()
        databases = False
        for (account_id,) in self._rows(
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
            self._rows("SELECT name, shard, physical_name, backend_user FROM logical_databases"),
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

    def _rows_for(self, select: str, order: str, ids: Collection[int] | None) -> list[Any]:
        """Rows of the given accounts, or of all (ordered by ``order``, whose first column is
        the account id); the ids go in chunks of ``_CHUNK`` bound parameters."""
        if ids is None:
            return self._rows(f"{select} ORDER BY {order}")
        column = order.split(",")[0]
        rows: list[Any] = []
        for chunk in _chunks(ids):
            rows.extend(self._rows(f"{select} WHERE {column} IN ({_marks(len(chunk))})", chunk))
        return rows

    def account_rows(self, ids: Collection[int] | None) -> Iterable[AccountRow]:
        rows = self._rows_for(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts", "id", ids)
        return map(AccountRow._make, rows)

    def db_grant_rows(self, ids: Collection[int] | None) -> Iterable[DbGrantRow]:
        return cast(
            Iterable[DbGrantRow],
            self._rows_for("SELECT account_id, db, privs FROM db_grants", "account_id, db", ids),
        )

    def table_grant_rows(self, ids: Collection[int] | None) -> Iterable[TableGrantRow]:
        return cast(
            Iterable[TableGrantRow],
            self._rows_for(
                "SELECT account_id, db, tbl, privs FROM table_grants", "account_id, db", ids
            ),
        )

    def account_row(self, account_id: int) -> AccountRow | None:
        row = self._one(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ?", (account_id,))
        return None if row is None else AccountRow._make(row)

    def account_row_by_name(self, user: str, host: str) -> AccountRow | None:
        row = self._one(
            f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE user_name = ? AND host_pattern = ?",
            (user, host),
        )
        return None if row is None else AccountRow._make(row)

    def account_ids_named(self, user: str) -> list[int]:
        rows = self._rows("SELECT id FROM accounts WHERE user_name = ?", (user,))
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
        rows = self._rows("SELECT id FROM accounts WHERE owner_db = ?", (owner_db,))
        return [int(r[0]) for r in rows]

    def account_ids_with_grants_on(self, db: str) -> list[int]:
        rows = self._rows(
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
        if limit is None:
            rows = self._rows(f"SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY id")
        else:
            # MySQL requires the derived table's alias; SQLite accepts it.
            rows = self._rows(
                f"SELECT {_AUDIT_COLUMNS} FROM"
                f" (SELECT {_AUDIT_COLUMNS} FROM audit ORDER BY id DESC LIMIT ?)"
                " AS recent ORDER BY id",
                (limit,),
            )
        return cast(list[AuditRow], rows)

    def session_revoked(self, session_hash: str) -> bool:
        row = self._one("SELECT 1 FROM revoked_sessions WHERE session_hash = ?", (session_hash,))
        return row is not None

    def setting(self, name: str) -> str | None:
        row = self._one("SELECT value FROM catalog_settings WHERE name = ?", (name,))
        return None if row is None else str(row[0])

    def node_session_rows(self, since: float) -> list[NodeSessionsRow]:
        rows = self._rows(
            "SELECT node, db, sessions, updated_at FROM node_sessions WHERE updated_at >= ?"
            " ORDER BY node, db",
            (since,),
        )
        return [(str(n), str(d), int(c), float(u)) for n, d, c, u in rows]

    def database_created_rows(self) -> dict[str, str]:
        rows = self._rows("SELECT name_key, created_at FROM database_created")
        return {str(key): str(at) for key, at in rows}

    def layout_rows(self) -> LayoutRows:
        partitions = self._rows(
            "SELECT db_key, idx, physical_name, shard FROM database_partitions ORDER BY db_key, idx"
        )
        tables = self._rows(f"SELECT {_TABLE_COLUMNS} FROM logical_tables")
        sequences = self._rows(f"SELECT {_SEQUENCE_COLUMNS} FROM sequences")
        return LayoutRows(
            [(str(k), int(i), str(n), str(s)) for k, i, n, s in partitions],
            [TableRow._make(row) for row in tables],
            [(str(k), str(nk), str(n), int(st), int(g)) for k, nk, n, st, g in sequences],
        )

    def partitions_of(self, db_key: str) -> list[PartitionRow]:
        rows = self._rows(
            "SELECT db_key, idx, physical_name, shard FROM database_partitions WHERE db_key = ?"
            " ORDER BY idx",
            (db_key,),
        )
        return [(str(k), int(i), str(n), str(s)) for k, i, n, s in rows]

    def table_row(self, db_key: str, name_key: str) -> TableRow | None:
        row = self._one(
            f"SELECT {_TABLE_COLUMNS} FROM logical_tables WHERE db_key = ? AND name_key = ?",
            (db_key, name_key),
        )
        return None if row is None else TableRow._make(row)

    def tables_of(self, db_key: str) -> list[TableRow]:
        rows = self._rows(
            f"SELECT {_TABLE_COLUMNS} FROM logical_tables WHERE db_key = ?", (db_key,)
        )
        return [TableRow._make(row) for row in rows]

    def sequence_row(self, db_key: str, name_key: str) -> SequenceRow | None:
        row = self._one(
            f"SELECT {_SEQUENCE_COLUMNS} FROM sequences WHERE db_key = ? AND name_key = ?",
            (db_key, name_key),
        )
        return (
            None
            if row is None
            else (str(row[0]), str(row[1]), str(row[2]), int(row[3]), int(row[4]))
        )

    def sequence_next(self, db_key: str, name_key: str) -> tuple[int, int] | None:
        row = self._one(
            "SELECT next_value, generation FROM sequences WHERE db_key = ? AND name_key = ?",
            (db_key, name_key),
        )
        return None if row is None else (int(row[0]), int(row[1]))

    def account_ids_with_table_grants_on(self, db: str) -> list[int]:
        rows = self._rows("SELECT DISTINCT account_id FROM table_grants WHERE db = ?", (db,))
        return [int(r[0]) for r in rows]

    # --- writes ---

    def set_counter(self, name: str, value: int) -> None:
        self._execute("UPDATE counters SET value = ? WHERE name = ?", (value, name))

    def insert_database(self, key: str, row: DatabaseRow, created_at: str) -> None:
        self._execute(
            "INSERT INTO logical_databases (name_key, name, shard, physical_name, backend_user)"
            " VALUES (?, ?, ?, ?, ?)",
            (key, *row),
        )
        self._execute("DELETE FROM database_created WHERE name_key = ?", (key,))
        self._execute(
            "INSERT INTO database_created (name_key, created_at) VALUES (?, ?)", (key, created_at)
        )

    def delete_database(self, key: str) -> None:
        self._execute("DELETE FROM logical_databases WHERE name_key = ?", (key,))
        self._execute("DELETE FROM database_created WHERE name_key = ?", (key,))

    def insert_partitions(self, rows: Iterable[PartitionRow]) -> None:
        for row in rows:
            self._execute(
                "INSERT INTO database_partitions (db_key, idx, physical_name, shard)"
                " VALUES (?, ?, ?, ?)",
                row,
            )

    def delete_layout(self, db_key: str) -> None:
        for table in ("database_partitions", "logical_tables", "sequences"):
            self._execute(f"DELETE FROM {table} WHERE db_key = ?", (db_key,))

    def insert_table(self, row: TableRow) -> None:
        self._execute(
            f"INSERT INTO logical_tables ({_TABLE_COLUMNS}) VALUES ({_marks(len(row))})", row
        )

    def delete_table(self, db_key: str, name_key: str) -> None:
        self._execute(
            "DELETE FROM logical_tables WHERE db_key = ? AND name_key = ?", (db_key, name_key)
        )

    def set_table_definition(self, db_key: str, name_key: str, definition: str) -> None:
        self._execute(
            "UPDATE logical_tables SET definition = ? WHERE db_key = ? AND name_key = ?",
            (definition, db_key, name_key),
        )

    def insert_sequence(self, row: SequenceRow, next_value: int) -> None:
        self._execute(
            f"INSERT INTO sequences ({_SEQUENCE_COLUMNS}, next_value) VALUES (?, ?, ?, ?, ?, ?)",
            (*row, next_value),
        )

    def xa_decision(self, xid: str) -> str | None:
        row = self._one("SELECT outcome FROM xa_decisions WHERE xid = ?", (xid,))
        return None if row is None else str(row[0])

    def insert_xa_decision(self, xid: str, outcome: str) -> None:
        self._execute("INSERT INTO xa_decisions (xid, outcome) VALUES (?, ?)", (xid, outcome))

    def delete_xa_decision(self, xid: str) -> None:
        self._execute("DELETE FROM xa_decisions WHERE xid = ?", (xid,))

    def delete_sequence(self, db_key: str, name_key: str) -> None:
        self._execute("DELETE FROM sequences WHERE db_key = ? AND name_key = ?", (db_key, name_key))

    def restart_sequence(
        self, db_key: str, name_key: str, start_with: int, generation: int
    ) -> None:
        self._execute(
            "UPDATE sequences SET start_with = ?, generation = ?, next_value = ?"
            " WHERE db_key = ? AND name_key = ?",
            (start_with, generation, start_with, db_key, name_key),
        )

    def set_sequence_next(self, db_key: str, name_key: str, next_value: int) -> None:
        self._execute(
            "UPDATE sequences SET next_value = ? WHERE db_key = ? AND name_key = ?",
            (next_value, db_key, name_key),
        )

    def insert_account(self, row: AccountRow) -> None:
        self._execute(f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}) VALUES ({_marks(len(row))})", row)

    def delete_account(self, account_id: int) -> None:
        self._execute("DELETE FROM table_grants WHERE account_id = ?", (account_id,))
        self._execute("DELETE FROM db_grants WHERE account_id = ?", (account_id,))
        self._execute("DELETE FROM accounts WHERE id = ?", (account_id,))

    def update_password(
        self,
        account_id: int,
        native_hash: bytes,
        password_hash: str,
        retained: tuple[bytes, str] | None,
    ) -> None:
        old_native, old_hash = retained if retained is not None else (None, None)
        self._execute(
            "UPDATE accounts SET native_hash = ?, password_hash = ?, retained_native_hash = ?,"
            " retained_password_hash = ? WHERE id = ?",
            (native_hash, password_hash, old_native, old_hash, account_id),
        )

    def set_login_state(
        self, account_id: int, failed_logins: int, locked_until: float | None
    ) -> None:
        self._execute(
            "UPDATE accounts SET failed_logins = ?, locked_until = ? WHERE id = ?",
            (failed_logins, locked_until, account_id),
        )

    def set_max_user_connections(self, account_id: int, limit: int) -> None:
        self._execute(
            "UPDATE accounts SET max_user_connections = ? WHERE id = ?", (limit, account_id)
        )

    def set_db_privs(self, account_id: int, db: str, privs: int) -> None:
        self._execute("DELETE FROM db_grants WHERE account_id = ? AND db = ?", (account_id, db))
        if privs:
            self._execute(
                "INSERT INTO db_grants (account_id, db, privs) VALUES (?, ?, ?)",
                (account_id, db, privs),
            )

    def set_table_privs(self, account_id: int, db: str, table: str, privs: int) -> None:
        self._execute(
            "DELETE FROM table_grants WHERE account_id = ? AND db = ? AND tbl = ?",
            (account_id, db, table),
        )
        if privs:
            self._execute(
                "INSERT INTO table_grants (account_id, db, tbl, privs) VALUES (?, ?, ?, ?)",
                (account_id, db, table, privs),
            )

    def delete_grants_on(self, db: str) -> None:
        self._execute("DELETE FROM table_grants WHERE db = ?", (db,))
        self._execute("DELETE FROM db_grants WHERE db = ?", (db,))

    def log_changes(self, version: int, account_ids: Iterable[int], databases: bool) -> None:
        rows: list[tuple[int, int | None]] = [(version, i) for i in account_ids]
        if databases:
            rows.append((version, None))
        # Multi-row INSERTs of two parameters per row, at most _CHUNK parameters each.
        per_statement = _CHUNK // 2
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            self._execute(
                "INSERT INTO change_log (version, account_id) VALUES "
                + ", ".join(["(?, ?)"] * len(chunk)),
                [value for row in chunk for value in row],
            )

    def prune_change_log(self, through_version: int) -> None:
        self._execute("DELETE FROM change_log WHERE version <= ?", (through_version,))

    def insert_audit(
        self, at: str, actor: str, client: str, action: str, details: str, version: int
    ) -> None:
        self._execute(
            "INSERT INTO audit (at, actor, client, action, details, catalog_version)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (at, actor, client, action, details, version),
        )

    def revoke_session(self, session_hash: str, expires_at: float) -> None:
        # Delete and insert: the same on both dialects (no upsert syntax in common).
        self._execute("DELETE FROM revoked_sessions WHERE session_hash = ?", (session_hash,))
        self._execute(
            "INSERT INTO revoked_sessions (session_hash, expires_at) VALUES (?, ?)",
            (session_hash, expires_at),
        )

    def prune_revoked_sessions(self, now: float) -> None:
        self._execute("DELETE FROM revoked_sessions WHERE expires_at < ?", (now,))

    def set_setting(self, name: str, value: str) -> None:
        self._execute("DELETE FROM catalog_settings WHERE name = ?", (name,))
        self._execute("INSERT INTO catalog_settings (name, value) VALUES (?, ?)", (name, value))

    def replace_node_sessions(
        self, node: str, counts: Iterable[tuple[str, int]], at: float
    ) -> None:
        self._execute("DELETE FROM node_sessions WHERE node = ?", (node,))
        for db, sessions in counts:
            self._execute(
                "INSERT INTO node_sessions (node, db, sessions, updated_at) VALUES (?, ?, ?, ?)",
                (node, db, sessions, at),
            )

    def prune_node_sessions(self, before: float) -> None:
        self._execute("DELETE FROM node_sessions WHERE updated_at < ?", (before,))
