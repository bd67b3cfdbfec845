"""The storage interface the catalog runs on, so a second backend can slot in beside SQLite.

A store only moves rows: every rule (what may change, what a change means, versioning) lives
in ``auth.catalog``. All reads and writes happen inside ``reading()`` or ``writing()``; a
``writing()`` block is one transaction that commits on normal exit and rolls back on an
exception. Names of databases and tables reaching the grant tables are already lower-case.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

# Counter names.
CATALOG_VERSION = "catalog_version"
NEXT_ACCOUNT_ID = "next_account_id"
# Change-log rows with version <= this have been pruned.
CHANGE_LOG_HORIZON = "change_log_horizon"

# (name, shard, physical_name, backend_user)
DatabaseRow = tuple[str, str, str, str]
# (db_key, index, physical_name, shard): one physical database of a sharded database
PartitionRow = tuple[str, int, str, str]
# (db_key, name_key, name, start_with, generation): a sequence's definition
SequenceRow = tuple[str, str, str, int, int]
# (failed_logins, locked_until) of one account.
LoginStateRow = tuple[int, float | None]
# (account_id, db, privs)
DbGrantRow = tuple[int, str, int]
# (account_id, db, table, privs)
TableGrantRow = tuple[int, str, str, int]
# (id, at, actor, client, action, details, catalog_version)
AuditRow = tuple[int, str, str, str, str, str, int]
# (node, db, sessions, updated_at): a node's open sessions in one database, as last reported
NodeSessionsRow = tuple[str, str, int, float]


class AccountRow(NamedTuple):
    """One row of the accounts table, its columns in order (``auth.sql_store``)."""

    id: int
    user: str
    host: str
    native_hash: bytes
    password_hash: str
    owner_db: str | None
    builtin: str | None  # "admin" / "ro" for a database's built-in accounts
    created_seq: int
    # The secondary password kept by SET PASSWORD ... RETAIN CURRENT PASSWORD (both None when
    # there is none).
    retained_native_hash: bytes | None
    retained_password_hash: str | None
    max_user_connections: int  # 0: the server's default
    failed_logins: int  # consecutive failed logins
    locked_until: float | None  # Unix time a lock after failed logins ends; None: not locked


class TableRow(NamedTuple):
    """One logical table of a sharded database (schema 5), its columns in order: the rule's
    parts (``auth.model.TableRule``) and the definition SHOW CREATE TABLE shows."""

    db_key: str
    name_key: str
    name: str
    kind: str  # single / broadcast / sharded
    db_function: str | None  # HASH / UNI_HASH (sharded tables)
    db_column: str | None
    db_type: str | None  # auth.model.KeyType as text
    tb_function: str | None  # TBPARTITION BY (None: one table per physical database)
    tb_column: str | None
    tb_type: str | None
    tables_per_db: int
    definition: str


class LayoutRows(NamedTuple):
    """Everything about the sharded databases' layout a snapshot holds besides the
    ``logical_databases`` rows (schema 5)."""

    partitions: list[PartitionRow]
    tables: list[TableRow]
    sequences: list[SequenceRow]


class StoreError(Exception):
    """The store cannot be used (unreadable file, schema from a newer version, ...)."""


class StoreIntegrityError(StoreError):
    """A write broke a constraint of the store (unique key, foreign key, check)."""


class StoreOutcomeUnknown(StoreError):
    """The connection was lost after COMMIT was sent: the transaction may or may not have been
    applied (only the store itself can tell, once it is reachable again)."""


class CatalogStore(Protocol):
    # The schema version this code reads and writes (the length of its migration list).
    code_schema_version: int
    # Whether opening the catalog on an empty store of this kind sets its schema up (SQLite's
    # embedded default needs no set-up step); a MySQL catalog, which several nodes share, is
    # always set up and upgraded explicitly (``shardgate catalog migrate``).
    set_up_when_empty: bool

    def close(self) -> None: ...

    def schema_version(self) -> int:
        """The version of the schema in the store (0: none yet)."""
        ...

    def migrate(self) -> tuple[int, int]:
        """Apply the missing migrations in order; returns (from, to). Refuses a newer schema."""
        ...

    def current_version(self) -> int:
        """The catalog version, read on its own (cheap; outside any transaction)."""
        ...

    def reading(self) -> AbstractContextManager[None]:
        """A read transaction: everything read inside sees one consistent state."""
        ...

    def writing(self) -> AbstractContextManager[None]:
        """A write transaction holding the store's write lock; all or nothing."""
        ...

    def limit_thread_write_wait(self, seconds: float) -> None:
        """Writes started by the calling thread give up (StoreError) after waiting this long
        for another writer, where the store can tell threads apart."""
        ...

    # Reads.
    def counter(self, name: str) -> int: ...
    def changes_since(self, version: int) -> tuple[set[int], bool]:
        """Account ids changed after ``version``, and whether the databases changed."""
        ...

    def database_rows(self) -> list[DatabaseRow]: ...
    def database_row(self, key: str) -> DatabaseRow | None: ...
    def account_rows(self, ids: Collection[int] | None) -> Iterable[AccountRow]:
        """Rows of these accounts (those that exist), or of all accounts."""
        ...

    def db_grant_rows(self, ids: Collection[int] | None) -> Iterable[DbGrantRow]: ...
    def table_grant_rows(self, ids: Collection[int] | None) -> Iterable[TableGrantRow]: ...
    def account_row(self, account_id: int) -> AccountRow | None: ...
    def account_row_by_name(self, user: str, host: str) -> AccountRow | None: ...
    def account_ids_named(self, user: str) -> list[int]: ...
    def login_state(self, account_id: int) -> LoginStateRow | None:
        """The account's failed-login count and lock end (None: no such account)."""
        ...

    def builtin_user_exists(self, user: str) -> bool: ...
    def account_ids_owned_by(self, owner_db: str) -> list[int]: ...
    def account_ids_with_grants_on(self, db: str) -> list[int]: ...
    def builtin_account_id(self, owner_db: str, builtin: str) -> int | None: ...
    def audit_rows(self, limit: int | None) -> list[AuditRow]: ...
    def session_revoked(self, session_hash: str) -> bool:
        """Whether this dashboard session (the SHA-256 of its id) was ended (schema 4)."""
        ...

    def setting(self, name: str) -> str | None:
        """A named setting (schema 5), None if unset."""
        ...

    def node_session_rows(self, since: float) -> list[NodeSessionsRow]:
        """The session reports of every node updated at ``since`` or later (schema 5)."""
        ...

    def database_created_rows(self) -> dict[str, str]:
        """When each database was created, by lookup key (schema 5)."""
        ...

    def layout_rows(self) -> LayoutRows:
        """Physical databases, logical tables and sequences of every database (schema 6)."""
        ...

    def partitions_of(self, db_key: str) -> list[PartitionRow]: ...
    def table_row(self, db_key: str, name_key: str) -> TableRow | None: ...
    def tables_of(self, db_key: str) -> list[TableRow]: ...
    def sequence_row(self, db_key: str, name_key: str) -> SequenceRow | None: ...
    def sequence_next(self, db_key: str, name_key: str) -> tuple[int, int] | None:
        """The sequence's next unreserved value and its generation (None: no such one)."""
        ...

    def account_ids_with_table_grants_on(self, db: str) -> list[int]: ...
    def xa_decision(self, xid: str) -> str | None:
        """The recorded outcome of an XA transaction (schema 7), if any."""
        ...

    def insert_xa_decision(self, xid: str, outcome: str) -> None: ...
    def delete_xa_decision(self, xid: str) -> None: ...

    # Writes.
    def set_counter(self, name: str, value: int) -> None: ...
    def insert_database(self, key: str, row: DatabaseRow, created_at: str) -> None: ...
    def delete_database(self, key: str) -> None:
        """The database's row and its creation time."""
        ...

    def insert_partitions(self, rows: Iterable[PartitionRow]) -> None: ...
    def delete_layout(self, db_key: str) -> None:
        """The physical databases, logical tables and sequences of a database."""
        ...

    def insert_table(self, row: TableRow) -> None: ...
    def delete_table(self, db_key: str, name_key: str) -> None: ...
    def set_table_definition(self, db_key: str, name_key: str, definition: str) -> None: ...
    def insert_sequence(self, row: SequenceRow, next_value: int) -> None: ...
    def delete_sequence(self, db_key: str, name_key: str) -> None: ...
    def restart_sequence(
        self, db_key: str, name_key: str, start_with: int, generation: int
    ) -> None:
        """A new start and generation; the next value to reserve is the start."""
        ...

    def set_sequence_next(self, db_key: str, name_key: str, next_value: int) -> None: ...
    def insert_account(self, row: AccountRow) -> None: ...
    def delete_account(self, account_id: int) -> None:
        """The account and all its grants."""
        ...

    def update_password(
        self,
        account_id: int,
        native_hash: bytes,
        password_hash: str,
        retained: tuple[bytes, str] | None,
    ) -> None:
        """Set the primary password's hashes and the retained (secondary) pair, or clear it."""
        ...

    def set_login_state(
        self, account_id: int, failed_logins: int, locked_until: float | None
    ) -> None:
        """Set the failed-login count and the lock end (None: not locked)."""
        ...

    def set_max_user_connections(self, account_id: int, limit: int) -> None:
        """The account's own connection limit per proxy node (0: the server's default)."""
        ...

    def set_db_privs(self, account_id: int, db: str, privs: int) -> None:
        """Replace the set (0 removes the row)."""
        ...

    def set_table_privs(self, account_id: int, db: str, table: str, privs: int) -> None:
        """Replace the set (0 removes the row)."""
        ...

    def delete_grants_on(self, db: str) -> None:
        """Every grant, at either level, on database ``db``."""
        ...

    def log_changes(self, version: int, account_ids: Iterable[int], databases: bool) -> None: ...
    def prune_change_log(self, through_version: int) -> None: ...
    def insert_audit(
        self, at: str, actor: str, client: str, action: str, details: str, version: int
    ) -> None: ...
    def revoke_session(self, session_hash: str, expires_at: float) -> None:
        """Record an ended session (replacing an earlier record of it)."""
        ...

    def prune_revoked_sessions(self, now: float) -> None:
        """Forget ended sessions that would have expired by ``now``."""
        ...

    def set_setting(self, name: str, value: str) -> None: ...
    def replace_node_sessions(
        self, node: str, counts: Iterable[tuple[str, int]], at: float
    ) -> None:
        """The node's report: one row per database with sessions open, replacing its last."""
        ...

    def prune_node_sessions(self, before: float) -> None:
        """Forget reports not updated since ``before`` (nodes that went away)."""
        ...
