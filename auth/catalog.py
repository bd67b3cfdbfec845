"""The account catalog: durable storage, and the immutable snapshot every check reads.

``Catalog`` owns the store (SQLite or MySQL, opened by ``auth.stores``) and a cached
``CatalogSnapshot``. Every change is one transaction that also bumps the catalog version,
records which accounts it touched (so readers reload only those) and appends an audit row.
Passwords are hashed here, before the transaction; they are never stored, audited or shown in
an error in plaintext.

Rules about *who* may change *what* belong to the statement layer; the catalog keeps only
integrity: accounts and databases that changes name exist, (user, host) is unique, built-in
accounts exist exactly while their database does and their privileges are fixed, and the
built-in user names stay reserved to them.

**Outages.** Every store request is bounded by the catalog's ``timeout`` (``auth.stores``). A
request that cannot be served raises ``CatalogUnavailableError`` -- nothing was changed -- or,
when the connection was lost after COMMIT was sent, ``CatalogOutcomeUnknownError`` (logged on
the audit logger with ``result="unknown"`` and counted in ``outcomes_unknown``; the catalog's
own audit table has the change exactly when it was applied). Requests queue for the one store
connection; one that waited while the request ahead of it failed fails the same way at once
instead of waiting out the same outage again, so a caller waits about one ``timeout`` at most.
"""

from __future__ import annotations

import gc
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from types import MappingProxyType
from typing import cast

from auth.errors import ErrorCode, SqlError, sql_error
from auth.hosts import choose_account
from auth.model import (
    DEFAULT_SEQUENCE_START,
    MAX_NAME_LENGTH,
    SEQUENCE_MAX,
    Account,
    AccountGrants,
    AccountRef,
    AuditRecord,
    Builtin,
    Change,
    CreateAccount,
    Database,
    DiscardOldPassword,
    DropAccount,
    GroupSequence,
    HashFunction,
    KeyType,
    LogicalTable,
    PhysicalDatabase,
    SequenceRange,
    SetMaxUserConnections,
    SetPassword,
    SetPrivileges,
    ShardKey,
    TableKind,
    TableRule,
    UnlockAccount,
    UserHost,
    account_name,
    auto_sequence_name,
)
from auth.passwords import hash_password, native_hash
from auth.privileges import ALL_PRIVILEGES, NO_PRIVILEGES, Priv, format_privs
from auth.store import (
    CATALOG_VERSION,
    CHANGE_LOG_HORIZON,
    NEXT_ACCOUNT_ID,
    AccountRow,
    CatalogStore,
    DatabaseRow,
    DbGrantRow,
    LayoutRows,
    SequenceRow,
    StoreError,
    StoreIntegrityError,
    StoreOutcomeUnknown,
    TableGrantRow,
    TableRow,
)
from auth.stores import open_store

__all__ = [
    "AccountExistsError",
    "Catalog",
    "CatalogConflictError",
    "CatalogError",
    "CatalogOutcomeUnknownError",
    "CatalogSecretError",
    "CatalogSnapshot",
    "CatalogUnavailableError",
    "Change",
    "CreateAccount",
    "DatabaseExistsError",
    "DiscardOldPassword",
    "DropAccount",
    "LoginLock",
    "ProtectedAccountError",
    "SchemaVersionError",
    "SequenceExistsError",
    "SetMaxUserConnections",
    "SetPassword",
    "SetPrivileges",
    "TableExistsError",
    "UnknownAccountError",
    "UnknownDatabaseError",
    "UnknownSequenceError",
    "UnknownTableError",
    "UnlockAccount",
    "UserHost",
    "secret_verifier",
]

# The audit logger (proxy/ops/logs.py formats it; the name is shared, not the module).
_audit_log = logging.getLogger("shardgate.audit")
log = logging.getLogger("shardgate.catalog")

OPERATOR = "operator"
RO_SUFFIX = "_RO"
# Versions of change log kept for readers catching up incrementally.
CHANGE_LOG_RETENTION = 10_000
# Above this many changed accounts a reader reloads everything instead.
INCREMENTAL_RELOAD_LIMIT = 5_000
# Seconds one store request may take (connecting, an answer, a lock held by another client) when
# the caller does not say (the proxy's is ``[catalog] timeout``).
DEFAULT_TIMEOUT = 5.0
# Migrations: DDL on a large catalog, and another node's migration to wait for.
MIGRATION_TIMEOUT = 120.0

# The setting holding the verifier of the catalog secret (schema 5).
SECRET_VERIFIER = "secret_verifier"
_VERIFIER_LABEL = b"shardgate catalog secret verifier v1"
# A node's session report counts while it is this recent (nodes report every few seconds and
# at least every NODE_REPORT_REFRESH); reports older than NODE_REPORT_FORGET are deleted.
NODE_REPORT_FRESH = 30.0
NODE_REPORT_FORGET = 3600.0

# Priv values by bit pattern: building an IntFlag per row would dominate loading time.
_PRIVS: tuple[Priv, ...] = tuple(Priv(bits) for bits in range(256))
_BUILTIN_PRIVS: dict[str, Priv] = {"admin": ALL_PRIVILEGES, "ro": Priv.SELECT}


class CatalogError(Exception):
    """An operator-level catalog error (not a MySQL error)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DatabaseExistsError(CatalogError):
    pass


class UnknownDatabaseError(CatalogError):
    pass


class AccountExistsError(CatalogError):
    pass


class UnknownAccountError(CatalogError):
    pass


class ProtectedAccountError(CatalogError):
    """A built-in account (or its reserved user name) was the target of a change."""


class CatalogSecretError(CatalogError):
    """This process's catalog secret is not the one the catalog was set up with."""


class CatalogUnavailableError(CatalogError):
    """The store could not be used just now (SQLite locked by another writer for longer than
    the wait, MySQL unreachable, frozen or its tables locked): nothing was changed, and trying
    again later may succeed. ``message`` is for the operator (it may name the catalog server);
    ``client_error()`` is what a client is told."""

    def client_error(self) -> SqlError:
        return sql_error(
            ErrorCode.UNKNOWN_ERROR,
            "The account catalog is unavailable: nothing was changed. Try again later.",
        )


class CatalogOutcomeUnknownError(CatalogUnavailableError):
    """The connection to the catalog was lost after COMMIT was sent: the change may or may not
    have been applied (the catalog's audit table has it exactly when it was)."""

    def client_error(self) -> SqlError:
        return sql_error(
            ErrorCode.ERROR_DURING_COMMIT,
            'Got error 2013 "Lost connection to the account catalog" during COMMIT: the change '
            "may or may not have been applied. Check (SHOW GRANTS) before trying again.",
        )


class CatalogConflictError(CatalogError):
    """``apply(expected_version=...)``: the catalog changed since that version."""


class SchemaVersionError(CatalogError):
    """The catalog's schema is older or newer than this code's."""


class TableExistsError(CatalogError):
    """A logical table of that name exists (or a physical table would take its name)."""


class UnknownTableError(CatalogError):
    pass


class SequenceExistsError(CatalogError):
    pass


class UnknownSequenceError(CatalogError):
    pass


def _open_store(url: str, base_dir: Path, timeout: float) -> CatalogStore:
    try:
        return open_store(url, base_dir, timeout)
    except StoreError as error:
        raise CatalogError(str(error)) from error


# --- The snapshot ---


def _account_from_row(row: AccountRow) -> Account:
    retained_native, locked_until = row.retained_native_hash, row.locked_until
    return Account(
        id=row.id,
        user=row.user,
        host=row.host,
        native_hash=bytes(row.native_hash),
        password_hash=row.password_hash,
        owner_db=row.owner_db,
        builtin=cast("Builtin | None", row.builtin),
        created_seq=row.created_seq,
        retained_native_hash=None if retained_native is None else bytes(retained_native),
        retained_password_hash=row.retained_password_hash,
        max_user_connections=int(row.max_user_connections),
        failed_logins=int(row.failed_logins),
        locked_until=None if locked_until is None else float(locked_until),
    )


def _new_account_row(
    account_id: int,
    user: str,
    host: str,
    hashes: _Hashes,
    *,
    owner_db: str | None,
    builtin: str | None = None,
) -> AccountRow:
    """A new account's row: no retained password, the default connection limit, unlocked."""
    return AccountRow(
        id=account_id,
        user=user,
        host=host,
        native_hash=hashes.native,
        password_hash=hashes.slow,
        owner_db=owner_db,
        builtin=builtin,
        created_seq=account_id,
        retained_native_hash=None,
        retained_password_hash=None,
        max_user_connections=0,
        failed_logins=0,
        locked_until=None,
    )


_creation_order = attrgetter("created_seq")


_EMPTY_TABLES: Mapping[str, LogicalTable] = MappingProxyType({})
_EMPTY_SEQUENCES: Mapping[str, GroupSequence] = MappingProxyType({})
_NO_LAYOUT = LayoutRows([], [], [])


def _shard_key(function: str | None, column: str | None, key_type: str | None) -> ShardKey | None:
    if function is None or column is None or key_type is None:
        return None
    return ShardKey(cast(HashFunction, function), column, KeyType.parse(key_type))


def _table_from_row(row: TableRow) -> LogicalTable:
    rule = TableRule(
        cast(TableKind, row.kind),
        _shard_key(row.db_function, row.db_column, row.db_type),
        _shard_key(row.tb_function, row.tb_column, row.tb_type),
        int(row.tables_per_db),
    )
    return LogicalTable(row.name, rule, row.definition)


def _table_row(db_key: str, table: LogicalTable) -> TableRow:
    rule = table.rule
    db, tb = rule.db_key, rule.tb_key
    return TableRow(
        db_key=db_key,
        name_key=table.key,
        name=table.name,
        kind=rule.kind,
        db_function=None if db is None else db.function,
        db_column=None if db is None else db.column,
        db_type=None if db is None else str(db.type),
        tb_function=None if tb is None else tb.function,
        tb_column=None if tb is None else tb.column,
        tb_type=None if tb is None else str(tb.type),
        tables_per_db=rule.tables_per_db,
        definition=table.definition,
    )


def _sequence_from_row(row: SequenceRow) -> GroupSequence:
    return GroupSequence(row[2], row[3], row[4])


@dataclass(frozen=True, slots=True)
class _Layouts:
    """The databases of a snapshot with their physical databases, tables and sequences."""

    databases: dict[str, Database]
    tables: dict[str, Mapping[str, LogicalTable]]
    sequences: dict[str, Mapping[str, GroupSequence]]


def _layouts(database_rows: Iterable[DatabaseRow], layout: LayoutRows) -> _Layouts:
    partitions: dict[str, list[PhysicalDatabase]] = {}
    for db_key, index, physical, shard in layout.partitions:
        partitions.setdefault(db_key, []).append(PhysicalDatabase(index, physical, shard))
    databases: dict[str, Database] = {}
    for row in database_rows:
        database = Database(*row)
        parts = partitions.get(database.key)
        if parts:
            database = replace(database, partitions=tuple(sorted(parts, key=_by_index)))
        databases[database.key] = database
    tables: dict[str, dict[str, LogicalTable]] = {}
    for table_row in layout.tables:
        table = _table_from_row(table_row)
        tables.setdefault(table_row.db_key, {})[table.key] = table
    sequences: dict[str, dict[str, GroupSequence]] = {}
    for sequence_row in layout.sequences:
        sequence = _sequence_from_row(sequence_row)
        sequences.setdefault(sequence_row[0], {})[sequence.key] = sequence
    return _Layouts(
        databases,
        {key: MappingProxyType(found) for key, found in tables.items()},
        {key: MappingProxyType(found) for key, found in sequences.items()},
    )


_by_index = attrgetter("index")


def _grants_of(account: Account, rows: _GrantRows) -> AccountGrants | None:
    """The account's grants, with a built-in's implicit grant on its database; None if none."""
    db_privs = rows.db_privs.get(account.id)
    table_privs = rows.table_privs.get(account.id)
    if account.builtin is not None and account.owner_db is not None:
        key = account.owner_db.lower()
        db_privs = dict(db_privs or {})
        db_privs[key] = db_privs.get(key, NO_PRIVILEGES) | _BUILTIN_PRIVS[account.builtin]
    if not db_privs and not table_privs:
        return None
    return AccountGrants.of(
        account.id, db_privs or {}, table_privs or {}, rows.table_databases.get(account.id)
    )


@dataclass(slots=True)
class _GrantRows:
    """Grant rows grouped per account, as plain dicts (before freezing)."""

    db_privs: dict[int, dict[str, Priv]]
    table_privs: dict[int, dict[tuple[str, str], Priv]]
    table_databases: dict[int, set[str]]  # databases named by each account's table grants


def _collect(db_rows: Iterable[DbGrantRow], table_rows: Iterable[TableGrantRow]) -> _GrantRows:
    """Group grant rows per account. Any row order works; rows sorted by account and database
    (as the store returns them) take the fast path. This is the hot loop of a full load."""
    privs = _PRIVS
    names: dict[str, str] = {}  # one string object per database name
    by_db: dict[int, dict[str, Priv]] = {}
    for account_id, db, bits in db_rows:
        per_account = by_db.get(account_id)
        if per_account is None:
            per_account = by_db[account_id] = {}
        per_account[names.setdefault(db, db)] = privs[bits]
    by_table: dict[int, dict[tuple[str, str], Priv]] = {}
    databases: dict[int, set[str]] = {}
    current_id = None
    current: dict[tuple[str, str], Priv] = {}
    current_databases: set[str] = set()
    last_db = ""  # database names are never empty
    for account_id, db, table, bits in table_rows:
        if account_id != current_id:
            current_id = account_id
            found = by_table.get(account_id)
            if found is None:
                current = by_table[account_id] = {}
                current_databases = databases[account_id] = set()
            else:
                current, current_databases = found, databases[account_id]
            last_db = ""
        if db != last_db:
            last_db = names.setdefault(db, db)
            current_databases.add(last_db)
        current[(last_db, table)] = privs[bits]
    return _GrantRows(by_db, by_table, databases)


class CatalogSnapshot:
    """One catalog version, immutable, with every lookup a dict access.

    Database and table names are compared case-insensitively; user names and host patterns
    exactly.
    """

    __slots__ = (
        "_accounts",
        "_by_user",
        "_by_user_host",
        "_databases",
        "_grants",
        "_sequences",
        "_tables",
        "_version",
    )

    def __init__(
        self,
        version: int,
        layouts: _Layouts,
        accounts: dict[int, Account],
        by_user: dict[str, tuple[Account, ...]],
        by_user_host: dict[tuple[str, str], Account],
        grants: dict[int, AccountGrants],
    ) -> None:
        """Internal: use ``build`` (or ``empty``); the dicts become the snapshot's own."""
        self._version = version
        self._databases = layouts.databases
        self._tables = layouts.tables
        self._sequences = layouts.sequences
        self._accounts = accounts
        self._by_user = by_user
        self._by_user_host = by_user_host
        self._grants = grants

    @property
    def version(self) -> int:
        """The catalog version this snapshot shows."""
        return self._version

    @classmethod
    def empty(cls) -> CatalogSnapshot:
        return cls(0, _Layouts({}, {}, {}), {}, {}, {}, {})

    @classmethod
    def build(
        cls,
        version: int,
        database_rows: Iterable[DatabaseRow],
        account_rows: Iterable[AccountRow],
        db_grant_rows: Iterable[DbGrantRow],
        table_grant_rows: Iterable[TableGrantRow],
        layout_rows: LayoutRows = _NO_LAYOUT,
    ) -> CatalogSnapshot:
        layouts = _layouts(database_rows, layout_rows)
        accounts = {a.id: a for a in map(_account_from_row, account_rows)}
        rows = _collect(db_grant_rows, table_grant_rows)
        grants: dict[int, AccountGrants] = {}
        by_user_lists: dict[str, list[Account]] = {}
        by_user_host: dict[tuple[str, str], Account] = {}
        # In creation order, so each user's accounts come out sorted (linear on sorted input).
        for account in sorted(accounts.values(), key=_creation_order):
            held = _grants_of(account, rows)
            if held is not None:
                grants[account.id] = held
            same = by_user_lists.get(account.user)
            if same is None:
                by_user_lists[account.user] = [account]
            else:
                same.append(account)
            by_user_host[(account.user, account.host)] = account
        by_user = {user: tuple(same) for user, same in by_user_lists.items()}
        return cls(version, layouts, accounts, by_user, by_user_host, grants)

    def updated(
        self,
        version: int,
        database_rows: Iterable[DatabaseRow] | None,
        changed_ids: Collection[int],
        account_rows: Iterable[AccountRow],
        db_grant_rows: Iterable[DbGrantRow],
        table_grant_rows: Iterable[TableGrantRow],
        layout_rows: LayoutRows = _NO_LAYOUT,
    ) -> CatalogSnapshot:
        """A new snapshot: this one with ``changed_ids`` replaced by the given rows (an id
        without a row was dropped) and, if given, the databases (with ``layout_rows``, their
        physical databases, tables and sequences) replaced."""
        layouts = (
            _Layouts(self._databases, self._tables, self._sequences)
            if database_rows is None
            else _layouts(database_rows, layout_rows)
        )
        changed = set(changed_ids)
        accounts = dict(self._accounts)
        by_user_host = dict(self._by_user_host)
        grants = dict(self._grants)
        users: set[str] = set()
        for account_id in changed:
            old = accounts.pop(account_id, None)
            grants.pop(account_id, None)
            if old is not None:
                users.add(old.user)
                del by_user_host[(old.user, old.host)]
        rows = _collect(db_grant_rows, table_grant_rows)
        fresh_by_user: dict[str, list[Account]] = {}
        for account in map(_account_from_row, account_rows):
            accounts[account.id] = account
            by_user_host[(account.user, account.host)] = account
            users.add(account.user)
            fresh_by_user.setdefault(account.user, []).append(account)
            held = _grants_of(account, rows)
            if held is not None:
                grants[account.id] = held
        by_user = dict(self._by_user)
        for user in users:
            same = [a for a in by_user.get(user, ()) if a.id not in changed]
            same.extend(fresh_by_user.get(user, ()))
            if same:
                by_user[user] = tuple(sorted(same, key=_creation_order))
            else:
                del by_user[user]
        return CatalogSnapshot(version, layouts, accounts, by_user, by_user_host, grants)

    # --- databases ---

    def database(self, name: str) -> Database | None:
        return self._databases.get(name.lower())

    def databases(self) -> list[Database]:
        """All logical databases, sorted by name."""
        return sorted(self._databases.values(), key=lambda d: d.name)

    # --- sharded databases: logical tables and sequences ---

    def tables(self, db: str) -> Mapping[str, LogicalTable]:
        """The logical tables of sharded database ``db``, by lower-case name (empty for an
        unsharded database, whose tables the catalog does not record)."""
        return self._tables.get(db.lower(), _EMPTY_TABLES)

    def table(self, db: str, name: str) -> LogicalTable | None:
        return self.tables(db).get(name.lower())

    def sequences(self, db: str) -> Mapping[str, GroupSequence]:
        """The GROUP sequences of database ``db``, by lower-case name."""
        return self._sequences.get(db.lower(), _EMPTY_SEQUENCES)

    def sequence(self, db: str, name: str) -> GroupSequence | None:
        return self.sequences(db).get(name.lower())

    # --- accounts ---

    def account(self, account_id: int) -> Account | None:
        return self._accounts.get(account_id)

    def accounts(self) -> list[Account]:
        """Every account, in creation order (O(n): for listings, not for checks)."""
        return sorted(self._accounts.values(), key=_creation_order)

    def accounts_named(self, user: str) -> tuple[Account, ...]:
        """Accounts with exactly this (case-sensitive) user name, in creation order."""
        return self._by_user.get(user, ())

    def find_account(self, user: str, host: str) -> Account | None:
        """The account ``user@host`` with exactly this host pattern."""
        return self._by_user_host.get((user, host))

    def login_account(self, user: str, ip: str) -> Account | None:
        """The account a login by ``user`` from ``ip`` binds to (see ``choose_account``)."""
        return choose_account(self._by_user.get(user, ()), ip)

    # --- privileges ---

    def grants_of(self, account_id: int) -> AccountGrants:
        """What the account holds (empty for an unknown account)."""
        held = self._grants.get(account_id)
        return held if held is not None else AccountGrants(account_id)

    def privileges(self, account_id: int, db: str, table: str | None = None) -> Priv:
        """Privileges held on ``db`` (database level), plus on ``db.table`` if a table is given."""
        held = self._grants.get(account_id)
        if held is None:
            return NO_PRIVILEGES
        key = db.lower()
        on_db = held.db_privs.get(key)
        if table is None:
            return NO_PRIVILEGES if on_db is None else on_db
        on_table = held.table_privs.get((key, table.lower()))
        if on_table is None:
            return NO_PRIVILEGES if on_db is None else on_db
        return on_table if on_db is None else _PRIVS[on_db | on_table]

    def usable_databases(self, account_id: int) -> list[str]:
        """Names (sorted) of existing databases where the account holds any privilege."""
        held = self._grants.get(account_id)
        if held is None:
            return []
        return sorted(
            self._databases[key].name for key in held.database_keys if key in self._databases
        )

    def __len__(self) -> int:
        return len(self._accounts)


# --- The catalog ---


@dataclass(frozen=True, slots=True)
class _Hashes:
    native: bytes
    slow: str


def _hashes(password: str) -> _Hashes:
    return _Hashes(native_hash(password), hash_password(password))


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: a full load allocates millions of objects (none in
    cycles), and collections triggered along the way cost a third of the load time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return text


def _locked_row(row: AccountRow) -> bool:
    """Whether the stored row is locked after failed logins now."""
    locked_until = row.locked_until
    return locked_until is not None and time.time() < locked_until


@dataclass(frozen=True, slots=True)
class _Outcome:
    """How the latest store request ended: when (``time.monotonic()``), and why it failed (None:
    it did not)."""

    at: float
    failure: str | None


@dataclass(frozen=True, slots=True)
class LoginLock:
    """An account locked after failed logins: until when (Unix time), for how long."""

    locked_until: float
    lock_seconds: float


# A change committed while the catalog then became unreadable (``Catalog._write``).
_NOT_REREAD = "{} was created, but the catalog could not be read back; it shows once it can be"


def secret_verifier(secret: bytes) -> str:
    """What the catalog keeps to tell whether a process holds the secret it was set up with:
    an HMAC-SHA256 of a fixed label keyed with the secret -- never the secret, and nothing it
    can be recovered from."""
    return hmac.new(secret, _VERIFIER_LABEL, hashlib.sha256).hexdigest()


def _check_partitions(
    partitions: Sequence[PhysicalDatabase], shard: str, physical_name: str
) -> None:
    if not partitions:
        return
    if [p.index for p in partitions] != list(range(len(partitions))):
        raise CatalogError("physical databases must be numbered 0, 1, ... in order")
    first = partitions[0]
    if (first.shard, first.name) != (shard, physical_name):
        raise CatalogError("the database's shard and physical name are its physical database 0")
    if len({p.name.lower() for p in partitions}) != len(partitions):
        raise CatalogError("physical database names must differ")


def _placement(
    name: str, shard: str, physical_name: str, partitions: Sequence[PhysicalDatabase]
) -> str:
    if not partitions:
        return f"create database `{name}` on shard {shard} as {physical_name}"
    by_shard: dict[str, list[str]] = {}
    for p in partitions:
        by_shard.setdefault(p.shard, []).append(p.name)
    where = "; ".join(f"{s}: {', '.join(names)}" for s, names in by_shard.items())
    return f"create sharded database `{name}` with {len(partitions)} physical databases ({where})"


def _new_generation(store: CatalogStore) -> int:
    """Inside a write: the generation of a sequence made, restarted or renamed now -- the
    catalog version this write produces, so newer than any generation a sequence of the same
    name had before (one dropped and made again, a database dropped and made again): a node
    drops the ranges it holds of the older one once it sees it (``SequenceAllocator``)."""
    return store.counter(CATALOG_VERSION) + 1


def _check_start(start_with: int) -> None:
    if not 1 <= start_with < SEQUENCE_MAX:
        raise CatalogError(f"a sequence starts between 1 and {SEQUENCE_MAX - 1}")


def _target(db: str, table: str | None) -> str:
    return f"`{db}`.*" if table is None else f"`{db}`.`{table}`"


class Catalog:
    """The durable catalog and its current snapshot. Thread-safe; every method blocks (run it
    in a worker thread from asyncio)."""

    def __init__(self, store: CatalogStore) -> None:
        self._store = store
        self._lock = threading.RLock()
        # Audit rows of the write in progress, logged once it commits.
        self._audited: list[tuple[str, str, str]] = []
        self._last: _Outcome | None = None
        # Threads that chose to give up early on a busy store (limit_thread_write_wait): their
        # failures say nothing about the catalog.
        self._impatient = threading.local()
        # Writes whose COMMIT was sent but not confirmed (a metric).
        self.outcomes_unknown = 0
        self._snapshot = self._load(None)

    @classmethod
    def open(cls, url: str, base_dir: Path, *, timeout: float = DEFAULT_TIMEOUT) -> Catalog:
        """Open the catalog at ``url`` (``sqlite:///...`` or ``mysql://...``); each store request
        waits at most ``timeout`` seconds (see ``auth.stores.open_store``).

        The schema must be exactly this code's version (``SchemaVersionError`` otherwise,
        telling the user to run ``shardgate catalog migrate``), with one exception: a new, empty
        SQLite catalog is created at the current version, so the embedded default needs no
        set-up step. A MySQL catalog is always set up and upgraded explicitly, because several
        nodes share it and none may change its schema behind the others' backs.
        """
        store = _open_store(url, base_dir, timeout)
        try:
            found, expected = store.schema_version(), store.code_schema_version
            if found == 0 and store.set_up_when_empty:
                store.migrate()
            elif found < expected:
                raise SchemaVersionError(
                    f"the catalog schema is at version {found} but this shardgate needs "
                    f"version {expected}: run `shardgate --config FILE catalog migrate`"
                    + (" (it sets up a new catalog database)" if found == 0 else "")
                )
            elif found > expected:
                raise SchemaVersionError(
                    f"the catalog schema version {found} is newer than this shardgate "
                    f"({expected}): upgrade shardgate"
                )
            return cls(store)
        except StoreError as error:
            store.close()
            raise CatalogError(f"cannot open the catalog: {error}") from error
        except BaseException:
            store.close()
            raise

    @staticmethod
    def migrate(url: str, base_dir: Path) -> tuple[int, int]:
        """Bring the catalog at ``url`` to this code's schema version: (from, to)."""
        store = _open_store(url, base_dir, MIGRATION_TIMEOUT)
        try:
            return store.migrate()
        except StoreError as error:
            raise CatalogError(f"cannot migrate the catalog: {error}") from error
        finally:
            store.close()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- snapshots ---

    def snapshot(self) -> CatalogSnapshot:
        """The cached snapshot (call ``refresh()`` to pick up other processes' changes)."""
        return self._snapshot

    def refresh(self) -> bool:
        """Reload if the catalog version moved (one indexed query when it did not).
        CatalogUnavailableError (the snapshot stays as it was) if the store cannot be read."""
        with self._request():
            if self._store.current_version() == self._snapshot.version:
                return False
            self._snapshot = self._load(self._snapshot)
            return True

    def changed_since(self, version: int) -> frozenset[int] | None:
        """Ids of the accounts changed after ``version`` (dropped ones included), from the
        change log; None when the log no longer reaches back that far."""
        store = self._store
        with self._request(), store.reading():
            if store.counter(CHANGE_LOG_HORIZON) > version:
                return None
            ids, _ = store.changes_since(version)
            return frozenset(ids)

    # --- outages ---

    @contextmanager
    def _request(self) -> Iterator[None]:
        """One use of the store, under the catalog's lock; a StoreError becomes
        CatalogUnavailableError. A request that waited for the lock while the one ahead of it
        failed fails the same way at once, and each outcome is recorded for those behind."""
        started = time.monotonic()
        with self._lock:
            self.check_available_since(started)
            try:
                yield
            except StoreIntegrityError:
                self._last = _Outcome(time.monotonic(), None)  # the store answered
                raise
            except StoreError as error:
                unknown = isinstance(error, StoreOutcomeUnknown)
                reason = f"catalog {'outcome unknown' if unknown else 'unavailable'}: {error}"
                if not getattr(self._impatient, "on", False):
                    self._last = _Outcome(time.monotonic(), reason)
                if unknown:
                    raise CatalogOutcomeUnknownError(reason) from error
                raise CatalogUnavailableError(reason) from error
            except BaseException:
                self._last = _Outcome(time.monotonic(), None)
                raise
            self._last = _Outcome(time.monotonic(), None)

    def check_available_since(self, started: float) -> None:
        """CatalogUnavailableError if the latest store request failed after ``started`` (a
        ``time.monotonic()`` reading): a caller that waited meanwhile shares that outcome
        rather than waiting out the same outage again."""
        last = self._last
        if last is not None and last.failure is not None and last.at >= started:
            raise CatalogUnavailableError(last.failure)

    def _load(self, current: CatalogSnapshot | None) -> CatalogSnapshot:
        """Read a consistent snapshot: only the changed accounts if the change log covers the
        gap since ``current``, everything otherwise."""
        store = self._store
        with store.reading():
            version = store.counter(CATALOG_VERSION)
            if current is not None:
                if version == current.version:
                    return current
                if store.counter(CHANGE_LOG_HORIZON) <= current.version < version:
                    ids, databases_changed = store.changes_since(current.version)
                    if len(ids) <= INCREMENTAL_RELOAD_LIMIT:
                        return current.updated(
                            version,
                            store.database_rows() if databases_changed else None,
                            ids,
                            store.account_rows(ids),
                            store.db_grant_rows(ids),
                            store.table_grant_rows(ids),
                            store.layout_rows() if databases_changed else _NO_LAYOUT,
                        )
            with _gc_paused():
                return CatalogSnapshot.build(
                    version,
                    store.database_rows(),
                    store.account_rows(None),
                    store.db_grant_rows(None),
                    store.table_grant_rows(None),
                    store.layout_rows(),
                )

    def _commit_version(
        self,
        touched: Iterable[int],
        databases_changed: bool,
        actor: str,
        client: str,
        action: str,
        details: Sequence[str],
    ) -> None:
        """Inside a write: bump the version, log what changed, append the audit row."""
        store = self._store
        version = store.counter(CATALOG_VERSION) + 1
        store.set_counter(CATALOG_VERSION, version)
        store.log_changes(version, touched, databases_changed)
        horizon = version - CHANGE_LOG_RETENTION
        if horizon > store.counter(CHANGE_LOG_HORIZON):
            store.prune_change_log(horizon)
            store.set_counter(CHANGE_LOG_HORIZON, horizon)
        store.insert_audit(_now(), actor, client, action, "\n".join(details), version)
        self._audited.append((actor, client, action))

    def _bump_version(self, touched: Iterable[int]) -> None:
        """Inside a write: a new version that readers reload ``touched`` for, with no audit row
        (login bookkeeping; the changes an administrator or a lock makes are audited)."""
        store = self._store
        version = store.counter(CATALOG_VERSION) + 1
        store.set_counter(CATALOG_VERSION, version)
        store.log_changes(version, touched, False)

    # --- failed logins (the lockout of issue #7) ---

    def record_login_failure(
        self,
        account_id: int,
        max_failures: int,
        lock_seconds: float,
        client: str,
        *,
        now: float | None = None,
    ) -> LoginLock | None:
        """Count one failed login of an account whose host pattern matched the client (a wrong
        password); after ``max_failures`` consecutive ones, lock it for ``lock_seconds``.

        Returns the lock if the account is locked now (by this failure, or already, e.g. by
        another node whose lock this node's snapshot does not show yet; such an attempt is not
        counted), else None. The count and the lock are in the catalog, so every node sharing
        it shares them. Cheap on purpose: one short write transaction; the version moves (so
        every node reloads this one account, incrementally) only when the count leaves zero and
        when the lock starts, not on every failure. A lock is audited (never a password).
        """
        if max_failures <= 0:
            return None
        at = time.time() if now is None else now
        store = self._store
        with self._write():
            state = store.login_state(account_id)
            if state is None:
                return None
            failures, locked_until = state
            clean = failures == 0 and locked_until is None
            if locked_until is not None:
                if at < locked_until:
                    return LoginLock(locked_until, lock_seconds)
                failures = 0  # the lock has expired: counting starts again
            failures += 1
            if failures < max_failures:
                store.set_login_state(account_id, failures, None)
                if clean:
                    self._bump_version([account_id])
                return None
            until = at + lock_seconds
            store.set_login_state(account_id, failures, until)
            row = store.account_row(account_id)
            name = account_name(row.user, row.host) if row is not None else f"#{account_id}"
            self._commit_version(
                [account_id],
                False,
                name,
                client,
                f"LOCK ACCOUNT {name}",
                [
                    f"lock account {name} for {lock_seconds:g} seconds after {failures}"
                    " consecutive failed logins"
                ],
            )
            return LoginLock(until, lock_seconds)

    def login_succeeded(
        self, account_id: int, lock_seconds: float, *, now: float | None = None
    ) -> LoginLock | None:
        """A right password: reset the failed-login count (call it only when the snapshot
        shows failures or a lock, so a normal login writes nothing). Returns the lock instead,
        changing nothing, if the catalog has the account locked (by another node, not yet in
        this node's snapshot)."""
        at = time.time() if now is None else now
        store = self._store
        with self._write():
            state = store.login_state(account_id)
            if state is None or state == (0, None):
                return None
            locked_until = state[1]
            if locked_until is not None and at < locked_until:
                return LoginLock(locked_until, lock_seconds)
            store.set_login_state(account_id, 0, None)
            self._bump_version([account_id])
            return None

    # --- dashboard sessions ended server-side (schema version 4) ---

    def revoke_session(
        self, session_hash: str, expires_at: float, *, now: float | None = None
    ) -> None:
        """Record that the dashboard session whose id hashes to ``session_hash`` (SHA-256, hex)
        has ended, until ``expires_at`` (when its cookie would stop working anyway); every
        node sharing the catalog then refuses it. Records past their expiry are pruned here."""
        at = time.time() if now is None else now
        with self._write():
            self._store.revoke_session(session_hash, expires_at)
            self._store.prune_revoked_sessions(at)

    def session_revoked(self, session_hash: str) -> bool:
        """Whether that dashboard session was ended (one indexed read)."""
        with self._request(), self._store.reading():
            return self._store.session_revoked(session_hash)

    def limit_thread_write_wait(self, seconds: float) -> None:
        """Writes from the calling thread give up (CatalogUnavailableError) after waiting
        ``seconds`` for another writer of a SQLite catalog (for a retrying background writer
        that must not sit on the catalog's lock while another process holds the file's). Its
        failures are then its own: they do not fail the requests queued behind it."""
        with self._lock:
            self._store.limit_thread_write_wait(seconds)
        self._impatient.on = True

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One store transaction under the catalog's lock; once it commits, the snapshot
        catches up with the store."""
        with self._request():
            first = len(self._audited)
            try:
                with self._store.writing():
                    yield
            except StoreIntegrityError as error:
                del self._audited[first:]
                raise CatalogError(f"catalog integrity: {error}") from error
            except StoreOutcomeUnknown as error:
                self._outcome_unknown(self._audited[first:], error)
                del self._audited[first:]
                raise
            except BaseException:
                del self._audited[first:]  # rolled back: nothing to report
                raise
            try:
                self._snapshot = self._load(self._snapshot)
            except StoreError as error:
                # Committed: the change stands; the next refresh brings it into the snapshot.
                log.warning("catalog change committed; re-reading the catalog failed: %s", error)
            # Committed: echo the audit rows to the log (already free of passwords).
            committed, self._audited[first:] = self._audited[first:], []
            for actor, client, action in committed:
                _audit_log.info(
                    "account change by %s from %s: %s",
                    actor,
                    client,
                    action,
                    extra={"event": "account_change", "result": "ok"},
                )

    def _outcome_unknown(self, audited: list[tuple[str, str, str]], error: StoreError) -> None:
        """A write whose COMMIT was not confirmed: count it, and say so where the operator
        reads account changes (the audit log)."""
        self.outcomes_unknown += 1
        for actor, client, action in audited:
            _audit_log.warning(
                "account change by %s from %s: %s -- outcome unknown (%s); the catalog's audit "
                "table has it only if it was applied",
                actor,
                client,
                action,
                error,
                extra={"event": "account_change", "result": "unknown"},
            )
        if not audited:
            _audit_log.warning(
                "catalog write (login bookkeeping) -- outcome unknown (%s)",
                error,
                extra={"event": "catalog_write", "result": "unknown"},
            )

    # --- the catalog secret's verifier (schema version 5) ---

    def check_secret(self, secret: bytes, *, claim: bool) -> bool:
        """Refuse (``CatalogSecretError``) a secret other than the one the catalog was set up
        with: every node derives the shard accounts' passwords from it, so a node with another
        one would lock sessions out. A catalog without a verifier yet takes this secret's when
        ``claim`` is set (the first node to start, ``catalog migrate``, ``shardgate dev``):
        returns True then, else False."""
        verifier = secret_verifier(secret)
        store = self._store
        try:
            with self._lock, store.reading():
                stored = store.setting(SECRET_VERIFIER)
        except StoreError as error:
            raise CatalogUnavailableError(f"catalog unavailable: {error}") from error
        claimed = False
        if stored is None and claim:
            with self._write():
                stored = store.setting(SECRET_VERIFIER)
                if stored is None:
                    # Not an account change: no catalog version, no audit row (one per version).
                    store.set_setting(SECRET_VERIFIER, verifier)
                    stored, claimed = verifier, True
        if claimed:
            log.debug("catalog secret recorded: its verifier, which every node must match")
        if stored is not None and not hmac.compare_digest(stored, verifier):
            raise CatalogSecretError(
                "this node's catalog secret is not the one the catalog was set up with: every "
                "node sharing a catalog needs the same secret (copy it from a node that serves "
                "this catalog)"
            )
        return claimed

    # --- what each node reports of its sessions (schema version 5) ---

    def publish_sessions(
        self, node: str, counts: Mapping[str, int], *, now: float | None = None
    ) -> None:
        """Replace ``node``'s report of its open sessions per database (lookup keys); reports
        of nodes that went away long ago are deleted on the way. No new catalog version."""
        at = time.time() if now is None else now
        rows = sorted((db.lower(), n) for db, n in counts.items() if n > 0)
        with self._write():
            self._store.replace_node_sessions(node, rows, at)
            self._store.prune_node_sessions(at - NODE_REPORT_FORGET)

    def open_sessions(self, *, now: float | None = None) -> dict[str, dict[str, int]]:
        """Sessions open per database (lookup key), per node, as the nodes last reported them
        (reports older than ``NODE_REPORT_FRESH`` seconds are ignored)."""
        at = time.time() if now is None else now
        try:
            with self._lock, self._store.reading():
                rows = self._store.node_session_rows(at - NODE_REPORT_FRESH)
        except StoreError as error:
            raise CatalogUnavailableError(f"catalog unavailable: {error}") from error
        found: dict[str, dict[str, int]] = {}
        for node, db, sessions, _ in rows:
            found.setdefault(db, {})[node] = sessions
        return found

    def databases_created(self) -> dict[str, str]:
        """When each database was created (UTC, ISO 8601), by lookup key."""
        try:
            with self._lock, self._store.reading():
                return self._store.database_created_rows()
        except StoreError as error:
            raise CatalogUnavailableError(f"catalog unavailable: {error}") from error

    # --- audit ---

    def audit(self, limit: int | None = None) -> list[AuditRecord]:
        """Audit records, oldest first (the newest ``limit`` if given)."""
        with self._request(), self._store.reading():
            return [AuditRecord(*row) for row in self._store.audit_rows(limit)]

    # --- operator changes ---

    def create_database(
        self,
        name: str,
        shard: str,
        physical_name: str,
        backend_user: str,
        admin_password: str,
        ro_password: str,
        actor: str = OPERATOR,
        client: str = "",
        *,
        partitions: Sequence[PhysicalDatabase] = (),
    ) -> Database:
        """Register a logical database with its protected built-ins ``name@'%'`` (administrator)
        and ``name_RO@'%'`` (read-only).

        ``partitions``: a sharded database's physical databases, indexes 0 .. D-1 in order
        (``auth.model.partition_layout``); ``shard`` and ``physical_name`` must then be those
        of physical database 0."""
        if not name:
            raise CatalogError("a database needs a name")
        _check_partitions(partitions, shard, physical_name)
        admin_hashes, ro_hashes = _hashes(admin_password), _hashes(ro_password)
        key = name.lower()
        builtins = ((name, "admin", admin_hashes), (name + RO_SUFFIX, "ro", ro_hashes))
        store = self._store
        with self._write():
            if store.database_row(key) is not None:
                raise DatabaseExistsError(f"database {name!r} already exists")
            for user, _, _ in builtins:
                if store.account_ids_named(user):
                    raise AccountExistsError(
                        f"accounts named {user!r} exist; the built-in account name is taken"
                    )
            store.insert_database(key, (name, shard, physical_name, backend_user), _now())
            store.insert_partitions((key, p.index, p.name, p.shard) for p in partitions)
            touched = []
            for user, kind, hashes in builtins:
                account_id = self._next_account_id()
                store.insert_account(
                    _new_account_row(account_id, user, "%", hashes, owner_db=name, builtin=kind)
                )
                touched.append(account_id)
            self._commit_version(
                touched,
                True,
                actor,
                client,
                f"CREATE DATABASE {name}",
                [
                    _placement(name, shard, physical_name, partitions)
                    + f" (backend user {backend_user})",
                    *(
                        f"create built-in {kind} account {account_name(u, '%')}"
                        for u, kind, _ in builtins
                    ),
                ],
            )
        database = self._snapshot.database(name)
        if database is None:
            raise CatalogError(_NOT_REREAD.format(f"database {name!r}"))
        return database

    def drop_database(self, name: str, actor: str = OPERATOR, client: str = "") -> None:
        """Remove a database, its built-ins, every grant on it, and the accounts it owns."""
        store = self._store
        with self._write():
            row = store.database_row(name.lower())
            if row is None:
                raise UnknownDatabaseError(f"unknown database {name!r}")
            canonical = row[0]
            owned = store.account_ids_owned_by(canonical)
            granted = store.account_ids_with_grants_on(canonical.lower())
            store.delete_grants_on(canonical.lower())
            for account_id in owned:
                store.delete_account(account_id)
            store.delete_layout(canonical.lower())
            store.delete_database(canonical.lower())
            self._commit_version(
                set(owned) | set(granted),
                True,
                actor,
                client,
                f"DROP DATABASE {canonical}",
                [
                    f"drop database `{canonical}` with {len(owned)} accounts it owns"
                    f" and the grants on it of {len(granted)} accounts"
                ],
            )

    # --- sharded databases: logical tables (schema version 5) ---

    def create_table(
        self,
        db: str,
        table: LogicalTable,
        *,
        auto_sequence_start: int | None = None,
        actor: str = OPERATOR,
        client: str = "",
    ) -> LogicalTable:
        """Record a logical table of sharded database ``db``, after its physical tables were
        created. ``auto_sequence_start``: also create the implicit GROUP sequence of its
        AUTO_INCREMENT column (``AUTO_SEQ_<table>``), starting there, unless it exists.

        Refused (TableExistsError) when the name is taken, or when a physical table name
        of it would be another table's name or physical name (or the other way round): in
        each physical database every name stands for exactly one logical table."""
        store = self._store
        with self._write():
            database = self._sharded(db)
            key = database.key
            if len(table.name) > MAX_NAME_LENGTH:
                raise CatalogError(f"table name {table.name!r} is too long")
            if store.table_row(key, table.key) is not None:
                raise TableExistsError(f"table {table.name!r} already exists")
            count = len(database.physical_databases)
            # Every name, logical or physical, stands for one logical table in the database.
            in_use: dict[str, str] = {}
            for other in map(_table_from_row, store.tables_of(key)):
                in_use[other.key] = other.name
                for _, physical in other.physical_tables(count):
                    in_use[physical.lower()] = other.name
            for _, physical in table.physical_tables(count):
                if len(physical) > MAX_NAME_LENGTH:
                    raise CatalogError(f"physical table name {physical!r} is too long")
            for name in {table.key} | {p.lower() for _, p in table.physical_tables(count)}:
                clash = in_use.get(name)
                if clash is not None:
                    raise TableExistsError(
                        f"table {table.name!r}: the name {name!r} belongs to table {clash!r}"
                    )
            store.insert_table(_table_row(key, table))
            details = [
                f"create {table.rule.kind} table `{table.name}` in `{database.name}`"
                + (f" ({table.rule.drds_clause()})" if table.rule.db_key else "")
            ]
            if auto_sequence_start is not None:
                sequence = auto_sequence_name(table.name)
                if store.sequence_row(key, sequence.lower()) is None:
                    _check_start(auto_sequence_start)
                    store.insert_sequence(
                        (
                            key,
                            sequence.lower(),
                            sequence,
                            auto_sequence_start,
                            _new_generation(store),
                        ),
                        auto_sequence_start,
                    )
                    details.append(f"create sequence `{sequence}` start with {auto_sequence_start}")
            self._commit_version(
                store.account_ids_with_table_grants_on(key),
                True,
                actor,
                client,
                f"CREATE TABLE {database.name}.{table.name}",
                details,
            )
        found = self._snapshot.table(db, table.name)
        assert found is not None
        return found

    def drop_table(
        self, db: str, table: str, *, actor: str = OPERATOR, client: str = ""
    ) -> LogicalTable:
        """Forget a logical table (after its physical tables were dropped) and its implicit
        sequence; returns what it was."""
        store = self._store
        with self._write():
            database = self._sharded(db)
            row = store.table_row(database.key, table.lower())
            if row is None:
                raise UnknownTableError(f"unknown table {table!r} in {database.name!r}")
            store.delete_table(database.key, row.name_key)
            store.delete_sequence(database.key, auto_sequence_name(row.name).lower())
            self._commit_version(
                store.account_ids_with_table_grants_on(database.key),
                True,
                actor,
                client,
                f"DROP TABLE {database.name}.{row.name}",
                [f"drop {row.kind} table `{row.name}` of `{database.name}`"],
            )
        return _table_from_row(row)

    def rename_table(
        self, db: str, old: str, new: str, *, actor: str = OPERATOR, client: str = ""
    ) -> LogicalTable:
        """``RENAME TABLE old TO new`` of a logical table (after its physical tables were
        renamed): its implicit sequence follows it, keeping its next value; grants stay on the
        old name, as MariaDB's do. TableExistsError when a name of the new table (logical or
        physical) belongs to another table."""
        store = self._store
        with self._write():
            database = self._sharded(db)
            key = database.key
            row = store.table_row(key, old.lower())
            if row is None:
                raise UnknownTableError(f"unknown table {old!r} in {database.name!r}")
            if len(new) > MAX_NAME_LENGTH:
                raise CatalogError(f"table name {new!r} is too long")
            before = _table_from_row(row)
            renamed = LogicalTable(new, before.rule, before.definition)
            count = len(database.physical_databases)
            in_use: dict[str, str] = {}
            for other in map(_table_from_row, store.tables_of(key)):
                if other.key == before.key:
                    continue
                in_use[other.key] = other.name
                for _, physical in other.physical_tables(count):
                    in_use[physical.lower()] = other.name
            for name in {renamed.key} | {p.lower() for _, p in renamed.physical_tables(count)}:
                clash = in_use.get(name)
                if clash is not None:
                    raise TableExistsError(
                        f"table {new!r}: the name {name!r} belongs to table {clash!r}"
                    )
            store.delete_table(key, row.name_key)
            store.insert_table(_table_row(key, renamed))
            old_sequence = auto_sequence_name(row.name).lower()
            sequence = store.sequence_row(key, old_sequence)
            found = store.sequence_next(key, old_sequence)
            details = [f"rename table `{row.name}` of `{database.name}` to `{new}`"]
            if sequence is not None and found is not None:
                new_sequence = auto_sequence_name(new)
                store.delete_sequence(key, old_sequence)
                # (a new generation: a node may hold ranges of a sequence of the new name
                # dropped before; none of this one's values were reserved under that name)
                store.insert_sequence(
                    (key, new_sequence.lower(), new_sequence, sequence[3], _new_generation(store)),
                    found[0],
                )
                details.append(f"rename sequence `{sequence[2]}` to `{new_sequence}`")
            self._commit_version(
                store.account_ids_with_table_grants_on(key),
                True,
                actor,
                client,
                f"RENAME TABLE {database.name}.{row.name} TO {new}",
                details,
            )
        found_table = self._snapshot.table(db, new)
        assert found_table is not None
        return found_table

    def set_table_definition(
        self,
        db: str,
        table: str,
        definition: str,
        *,
        auto_sequence_start: int | None = None,
        actor: str = OPERATOR,
        client: str = "",
    ) -> None:
        """Replace the definition SHOW CREATE TABLE shows (after an ALTER TABLE).
        ``auto_sequence_start``: the definition has an AUTO_INCREMENT column now; its implicit
        GROUP sequence is created, starting there, unless it exists (as by create_table)."""
        store = self._store
        with self._write():
            database = self._sharded(db)
            row = store.table_row(database.key, table.lower())
            if row is None:
                raise UnknownTableError(f"unknown table {table!r} in {database.name!r}")
            store.set_table_definition(database.key, row.name_key, definition)
            details = [f"new definition of table `{row.name}` of `{database.name}`"]
            if auto_sequence_start is not None:
                sequence = auto_sequence_name(row.name)
                if store.sequence_row(database.key, sequence.lower()) is None:
                    _check_start(auto_sequence_start)
                    generation = _new_generation(store)
                    store.insert_sequence(
                        (database.key, sequence.lower(), sequence, auto_sequence_start, generation),
                        auto_sequence_start,
                    )
                    details.append(f"create sequence `{sequence}` start with {auto_sequence_start}")
            self._commit_version(
                (), True, actor, client, f"ALTER TABLE {database.name}.{row.name}", details
            )

    def _sharded(self, db: str) -> Database:
        """Inside a write: the sharded database ``db``, from the store."""
        database = self._database_in_store(db)
        if not database.sharded:
            raise CatalogError(
                f"database {database.name!r} is not sharded: the catalog keeps no tables of it"
            )
        return database

    def _database_in_store(self, db: str) -> Database:
        """Inside a write: database ``db`` as the store has it now."""
        store = self._store
        row = store.database_row(db.lower())
        if row is None:
            raise UnknownDatabaseError(f"unknown database {db!r}")
        layout = LayoutRows(store.partitions_of(db.lower()), [], [])
        return _layouts([row], layout).databases[db.lower()]

    # --- GROUP sequences (schema version 5) ---

    def create_sequence(
        self,
        db: str,
        name: str,
        start_with: int = DEFAULT_SEQUENCE_START,
        *,
        actor: str = OPERATOR,
        client: str = "",
    ) -> GroupSequence:
        """``CREATE [GROUP] SEQUENCE name [START WITH n]`` in sharded database ``db`` (an
        unsharded database's sequences are MariaDB's own)."""
        _check_start(start_with)
        if not name or len(name) > MAX_NAME_LENGTH:
            raise CatalogError(f"invalid sequence name {name!r}")
        store = self._store
        with self._write():
            database = self._sharded(db)
            if store.sequence_row(database.key, name.lower()) is not None:
                raise SequenceExistsError(f"sequence {name!r} already exists")
            store.insert_sequence(
                (database.key, name.lower(), name, start_with, _new_generation(store)), start_with
            )
            self._commit_version(
                (),
                True,
                actor,
                client,
                f"CREATE SEQUENCE {database.name}.{name}",
                [f"create sequence `{name}` of `{database.name}` start with {start_with}"],
            )
        found = self._snapshot.sequence(db, name)
        assert found is not None
        return found

    def alter_sequence(
        self, db: str, name: str, start_with: int, *, actor: str = OPERATOR, client: str = ""
    ) -> GroupSequence:
        """``ALTER SEQUENCE name START WITH n``: the next range starts there, and the ranges
        nodes hold of the sequence are no longer handed out (its generation moves on)."""
        _check_start(start_with)
        store = self._store
        with self._write():
            database = self._sharded(db)
            row = store.sequence_row(database.key, name.lower())
            if row is None:
                raise UnknownSequenceError(f"unknown sequence {name!r}")
            store.restart_sequence(database.key, row[1], start_with, _new_generation(store))
            self._commit_version(
                (),
                True,
                actor,
                client,
                f"ALTER SEQUENCE {database.name}.{row[2]}",
                [f"restart sequence `{row[2]}` of `{database.name}` with {start_with}"],
            )
        found = self._snapshot.sequence(db, name)
        assert found is not None
        return found

    def sequence_position(self, db: str, name: str) -> int | None:
        """Where sequence ``name`` of ``db`` stands: the first value no node has reserved
        (every value any node handed out or holds is below it; None: no such sequence). What
        SHOW CREATE TABLE shows as a table's ``AUTO_INCREMENT=n``, so that a dump restored
        starts the sequence past every value given. A read of the store, not the snapshot."""
        store = self._store
        with self._request(), store.reading():
            found = store.sequence_next(db.lower(), name.lower())
        return None if found is None else found[0]

    def move_sequence(
        self, db: str, name: str, at_least: int, *, actor: str = OPERATOR, client: str = ""
    ) -> int:
        """``ALTER TABLE t AUTO_INCREMENT = n`` (and a CREATE TABLE's, of a sequence there
        already): the sequence restarts at ``at_least`` in a new generation when that is past
        every value reserved (nodes drop the older ranges they hold once they see it); else it
        stays (as MariaDB keeps a counter past the values in use): never below a value any node
        holds or handed out, so no value is given twice. Returns where it stands."""
        _check_start(at_least)
        store = self._store
        with self._write():
            database = self._sharded(db)
            row = store.sequence_row(database.key, name.lower())
            found = store.sequence_next(database.key, name.lower())
            if row is None or found is None:
                raise UnknownSequenceError(f"unknown sequence {name!r}")
            if at_least <= found[0]:
                return found[0]
            store.restart_sequence(database.key, row[1], at_least, _new_generation(store))
            self._commit_version(
                (),
                True,
                actor,
                client,
                f"ALTER SEQUENCE {database.name}.{row[2]}",
                [f"move sequence `{row[2]}` of `{database.name}` to {at_least}"],
            )
        return at_least

    def drop_sequence(self, db: str, name: str, *, actor: str = OPERATOR, client: str = "") -> None:
        store = self._store
        with self._write():
            database = self._sharded(db)
            row = store.sequence_row(database.key, name.lower())
            if row is None:
                raise UnknownSequenceError(f"unknown sequence {name!r}")
            store.delete_sequence(database.key, row[1])
            self._commit_version(
                (),
                True,
                actor,
                client,
                f"DROP SEQUENCE {database.name}.{row[2]}",
                [f"drop sequence `{row[2]}` of `{database.name}`"],
            )

    def reserve_sequence_range(self, db: str, name: str, count: int) -> SequenceRange:
        """Reserve the next ``count`` values of a sequence for this node, in one catalog
        transaction: every node sharing the catalog gets ranges of its own, so no value is
        handed out twice. Not a change of the catalog's version (no node reloads anything).

        The range may be shorter than asked at the end of the sequence's values; none left
        (the largest value is ``SEQUENCE_MAX - 1``): CatalogError."""
        if count < 1:
            raise CatalogError(f"not a number of values: {count}")
        store = self._store
        with self._write():
            key = db.lower()
            found = store.sequence_next(key, name.lower())
            if found is None:
                raise UnknownSequenceError(f"unknown sequence {name!r}")
            start, generation = found
            if start >= SEQUENCE_MAX:
                raise CatalogError(f"sequence {name!r} has no values left")
            end = min(start + count, SEQUENCE_MAX)
            store.set_sequence_next(key, name.lower(), end)
        return SequenceRange(start, end, generation)

    # --- multi-shard transactions (schema version 7) ---

    def decide_xa(self, xid: str, outcome: str) -> str:
        """Record the outcome of XA transaction ``xid`` unless one is recorded already, in one
        catalog transaction; returns the outcome that holds. The node that prepared every
        branch records "commit" before its first XA COMMIT; a node recovering prepared
        branches records "abort" for those with no outcome: whichever comes first decides, so
        a transaction is never committed on one shard and rolled back on another. Not a change
        of the catalog's version."""
        if outcome not in ("commit", "abort"):
            raise CatalogError(f"not an XA outcome: {outcome!r}")
        store = self._store
        with self._write():
            found = store.xa_decision(xid)
            if found is not None:
                return found
            store.insert_xa_decision(xid, outcome)
        return outcome

    def forget_xa(self, xid: str) -> None:
        """Every branch of ``xid`` is finished: its outcome is no longer needed."""
        with self._write():
            self._store.delete_xa_decision(xid)

    def reset_builtin_password(
        self,
        db: str,
        read_only: bool,
        new_password: str,
        actor: str = OPERATOR,
        client: str = "",
    ) -> None:
        """The operator's reset of a built-in account's password."""
        hashes = _hashes(new_password)
        kind = "ro" if read_only else "admin"
        store = self._store
        with self._write():
            row = store.database_row(db.lower())
            if row is None:
                raise UnknownDatabaseError(f"unknown database {db!r}")
            account_id = store.builtin_account_id(row[0], kind)
            account = None if account_id is None else store.account_row(account_id)
            if account_id is None or account is None:
                raise UnknownAccountError(f"database {row[0]!r} has no built-in {kind} account")
            store.update_password(account_id, hashes.native, hashes.slow, None)
            store.set_login_state(account_id, 0, None)  # a password reset also unlocks
            name = account_name(account.user, account.host)
            self._commit_version(
                [account_id],
                False,
                actor,
                client,
                f"RESET PASSWORD {name}",
                [f"set password of built-in {kind} account {name}"],
            )

    # --- account changes ---

    def create_account(
        self, user: str, host: str, password: str, owner_db: str | None, actor: str, client: str
    ) -> Account:
        (account_id,) = self.apply(
            [CreateAccount(user, host, password, owner_db)],
            actor,
            client,
            f"CREATE ACCOUNT {account_name(user, host)}",
        )
        account = self._snapshot.account(account_id)
        if account is None:
            raise CatalogError(_NOT_REREAD.format(account_name(user, host)))
        return account

    def drop_account(self, account_id: int, actor: str, client: str) -> None:
        self.apply([DropAccount(account_id)], actor, client, f"DROP ACCOUNT #{account_id}")

    def set_password(self, account_id: int, password: str, actor: str, client: str) -> None:
        self.apply(
            [SetPassword(account_id, password)], actor, client, f"SET PASSWORD #{account_id}"
        )

    def set_privileges(
        self,
        account_id: int,
        db: str,
        table: str | None,
        privs: Priv,
        actor: str,
        client: str,
    ) -> None:
        self.apply(
            [SetPrivileges(account_id, db, table, privs)],
            actor,
            client,
            f"SET PRIVILEGES #{account_id} ON {_target(db, table)}",
        )

    def apply(
        self,
        changes: Sequence[Change],
        actor: str,
        client: str,
        action: str,
        *,
        expected_version: int | None = None,
    ) -> tuple[int, ...]:
        """Run ``changes`` in order in ONE transaction: all of them or none.

        Returns the ids of the accounts created, in order. ``action`` (the statement, say) is
        audited with any password of the changes blanked out. With ``expected_version``, raises
        CatalogConflictError if the catalog is no longer at that version (so a caller that
        validated against a snapshot can refresh and validate again). An empty list changes
        nothing and records nothing.
        """
        if not changes:
            return ()
        # Hash outside the transaction: slow hashing must not hold the write lock.
        hashes: list[_Hashes | None] = [
            _hashes(c.password) if isinstance(c, CreateAccount | SetPassword) else None
            for c in changes
        ]
        passwords = [c.password for c in changes if isinstance(c, CreateAccount | SetPassword)]
        created: list[int] = []
        touched: set[int] = set()
        details: list[str] = []
        with self._write():
            if expected_version is not None:
                current = self._store.counter(CATALOG_VERSION)
                if current != expected_version:
                    raise CatalogConflictError(
                        f"the catalog changed (version {current}, expected {expected_version})"
                    )
            for change, change_hashes in zip(changes, hashes, strict=True):
                account_id = self._apply_one(change, change_hashes, details)
                touched.add(account_id)
                if isinstance(change, CreateAccount):
                    created.append(account_id)
            self._commit_version(touched, False, actor, client, _redact(action, passwords), details)
        return tuple(created)

    def _next_account_id(self) -> int:
        account_id = self._store.counter(NEXT_ACCOUNT_ID)
        self._store.set_counter(NEXT_ACCOUNT_ID, account_id + 1)
        return account_id

    def _resolve(self, ref: AccountRef) -> AccountRow:
        if isinstance(ref, UserHost):
            row = self._store.account_row_by_name(ref.user, ref.host)
            if row is None:
                raise UnknownAccountError(f"unknown account {ref}")
        else:
            row = self._store.account_row(ref)
            if row is None:
                raise UnknownAccountError(f"unknown account #{ref}")
        return row

    def _apply_one(self, change: Change, hashes: _Hashes | None, details: list[str]) -> int:
        """One change inside the write transaction; returns the account id it touched."""
        store = self._store
        if isinstance(change, CreateAccount):
            assert hashes is not None
            name = account_name(change.user, change.host)
            if not change.user or not change.host:
                raise CatalogError("an account needs a user name and a host")
            if store.builtin_user_exists(change.user):
                raise ProtectedAccountError(f"{change.user!r} is a built-in account name")
            if store.account_row_by_name(change.user, change.host) is not None:
                raise AccountExistsError(f"account {name} already exists")
            owner = None
            if change.owner_db is not None:
                owner_row = store.database_row(change.owner_db.lower())
                if owner_row is None:
                    raise UnknownDatabaseError(f"unknown database {change.owner_db!r}")
                owner = owner_row[0]
            account_id = self._next_account_id()
            store.insert_account(
                _new_account_row(account_id, change.user, change.host, hashes, owner_db=owner)
            )
            details.append(f"create account {name} owned by {owner or '(none)'}")
            return account_id
        row = self._resolve(change.account)
        account_id, name, builtin = row.id, account_name(row.user, row.host), row.builtin
        if isinstance(change, DropAccount):
            if builtin is not None:
                raise ProtectedAccountError(
                    f"built-in account {name} is dropped only with its database"
                )
            store.delete_account(account_id)
            details.append(f"drop account {name}")
        elif isinstance(change, SetPassword):
            assert hashes is not None
            retained_native, retained_slow = row.retained_native_hash, row.retained_password_hash
            retained: tuple[bytes, str] | None
            if change.retain_current:
                if not row.password_hash or not change.password:
                    raise CatalogError(f"an empty password cannot be retained for {name}")
                retained = (bytes(row.native_hash), row.password_hash)
            elif not change.password or retained_native is None or retained_slow is None:
                retained = None
            else:
                retained = (bytes(retained_native), retained_slow)
            store.update_password(account_id, hashes.native, hashes.slow, retained)
            # A new password also ends a lock after failed logins and resets the count.
            store.set_login_state(account_id, 0, None)
            details.append(
                f"set password of {name}"
                + (", retaining the current one" if change.retain_current else "")
                + (", unlocking it" if _locked_row(row) else "")
            )
        elif isinstance(change, DiscardOldPassword):
            store.update_password(account_id, bytes(row.native_hash), row.password_hash, None)
            details.append(f"discard the old password of {name}")
        elif isinstance(change, UnlockAccount):
            was = "locked" if _locked_row(row) else "not locked"
            store.set_login_state(account_id, 0, None)
            details.append(f"unlock account {name} ({was}; failed logins were {row.failed_logins})")
        elif isinstance(change, SetMaxUserConnections):
            if change.limit < 0:
                raise CatalogError(f"not a connection limit: {change.limit}")
            store.set_max_user_connections(account_id, change.limit)
            shown = str(change.limit) if change.limit else "the server default"
            details.append(f"set max_user_connections of {name} to {shown}")
        else:
            if builtin is not None:
                raise ProtectedAccountError(f"privileges of built-in account {name} are fixed")
            bits = int(change.privs)
            if bits & ~int(ALL_PRIVILEGES) or bits < 0:
                raise CatalogError(f"not a privilege set: {bits}")
            db_row = store.database_row(change.db.lower())
            if db_row is None:
                raise UnknownDatabaseError(f"unknown database {change.db!r}")
            db = change.db.lower()
            if change.table is None:
                store.set_db_privs(account_id, db, bits)
            elif not change.table:
                raise CatalogError("a table grant needs a table name")
            else:
                store.set_table_privs(account_id, db, change.table.lower(), bits)
            shown = format_privs(_PRIVS[bits]) if bits else "nothing"
            details.append(
                f"set privileges of {name} on {_target(db, change.table and change.table.lower())}"
                f" to {shown}"
            )
        return account_id
