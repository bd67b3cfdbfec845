"""The catalog's values: accounts, databases, grants, audit records and changes.

Frozen dataclasses only; no I/O. Database and table names in grants are lower-case keys (the
catalog compares them case-insensitively); ``Database.name`` keeps the spelling it was created
with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from auth.privileges import Priv

Builtin = Literal["admin", "ro"]


def account_name(user: str, host: str) -> str:
    """``'u'@'h'``, as MySQL spells an account in messages."""
    return f"'{user}'@'{host}'"


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    user: str
    host: str
    # SHA1(SHA1(password)) for mysql_native_password; b"" for the empty password.
    native_hash: bytes = field(repr=False)
    # ``pbkdf2_sha256$...`` (auth.passwords.hash_password); "" for the empty password.
    password_hash: str = field(repr=False)
    # The logical database whose administrator made it, or the database of a built-in.
    owner_db: str | None
    builtin: Builtin | None
    # Creation order (never reused); login precedence ties go to the lowest.
    created_seq: int
    # The secondary password kept by SET PASSWORD ... RETAIN CURRENT PASSWORD (both None when
    # there is none): logins accept it as well as the primary until it is discarded.
    retained_native_hash: bytes | None = field(default=None, repr=False)
    retained_password_hash: str | None = field(default=None, repr=False)
    # The account's own connection limit per proxy node (MAX_USER_CONNECTIONS); 0: the
    # server's ``max_user_connections`` applies (as in MySQL).
    max_user_connections: int = 0
    # Consecutive failed logins as of the last reload. Exact only as zero / non-zero: the first
    # failure and every reset bump the catalog version, later failures do not (see
    # ``Catalog.record_login_failure``).
    failed_logins: int = 0
    # Unix time at which the lock after too many failed logins ends (None: never locked, or
    # unlocked). A time in the past means the lock has expired.
    locked_until: float | None = None

    @property
    def protected(self) -> bool:
        """Built-in accounts: not created, dropped, granted to or changed by SQL."""
        return self.builtin is not None

    @property
    def has_password(self) -> bool:
        return self.password_hash != ""

    @property
    def name(self) -> str:
        return account_name(self.user, self.host)

    @property
    def has_retained_password(self) -> bool:
        return self.retained_password_hash is not None

    @property
    def administered_database(self) -> str | None:
        """The database this account is the built-in administrator of (None: not one)."""
        return self.owner_db if self.builtin == "admin" else None

    def is_admin_of(self, db: str) -> bool:
        """Whether this is the built-in administrator of ``db`` (database names compare
        case-insensitively)."""
        administered = self.administered_database
        return administered is not None and administered.lower() == db.lower()

    def locked_at(self, now: float) -> bool:
        """Whether logins are refused at Unix time ``now`` because of failed logins."""
        return self.locked_until is not None and now < self.locked_until


@dataclass(frozen=True, slots=True)
class Database:
    """A logical database and where it lives."""

    name: str
    shard: str
    physical_name: str
    backend_user: str

    @property
    def key(self) -> str:
        """The case-insensitive lookup key."""
        return self.name.lower()


_EMPTY_DB_PRIVS: Mapping[str, Priv] = MappingProxyType({})
_EMPTY_TABLE_PRIVS: Mapping[tuple[str, str], Priv] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class AccountGrants:
    """What one account holds. Keys are lower-case; no entry holds an empty set.

    For a built-in account the implicit grant on its database (ALL for the administrator,
    SELECT for the read-only account) is included in ``db_privs``.
    """

    account_id: int
    db_privs: Mapping[str, Priv] = field(default_factory=lambda: _EMPTY_DB_PRIVS)
    table_privs: Mapping[tuple[str, str], Priv] = field(default_factory=lambda: _EMPTY_TABLE_PRIVS)
    # Lower-case names of the databases with any privilege at either level.
    database_keys: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        account_id: int,
        db_privs: dict[str, Priv],
        table_privs: dict[tuple[str, str], Priv],
        table_databases: set[str] | None = None,
    ) -> AccountGrants:
        """Wrap freshly built dicts (which the caller must not keep mutating).

        ``table_databases``, the databases of ``table_privs`` if the caller already knows them.
        """
        keys = set(db_privs)
        keys.update({db for db, _ in table_privs} if table_databases is None else table_databases)
        return cls(
            account_id,
            MappingProxyType(db_privs) if db_privs else _EMPTY_DB_PRIVS,
            MappingProxyType(table_privs) if table_privs else _EMPTY_TABLE_PRIVS,
            frozenset(keys),
        )

    @property
    def empty(self) -> bool:
        return not self.db_privs and not self.table_privs


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    at: str  # ISO 8601, UTC
    actor: str  # user@host of the caller, or 'operator'
    client: str  # the client's address ("" for the operator's CLI)
    action: str  # what was asked (never a password)
    details: str  # the changes applied, one per line (never a password)
    catalog_version: int  # the version this change produced


# --- Changes: the low-level operations Catalog.apply() runs in one transaction. ---


@dataclass(frozen=True, slots=True)
class UserHost:
    """An account named by user and exact host pattern (e.g. one created earlier in the same
    ``apply``)."""

    user: str
    host: str

    def __str__(self) -> str:
        return account_name(self.user, self.host)


AccountRef = int | UserHost  # an account id, or user and host


@dataclass(frozen=True, slots=True)
class CreateAccount:
    user: str
    host: str
    password: str = field(repr=False)
    owner_db: str | None


@dataclass(frozen=True, slots=True)
class DropAccount:
    account: AccountRef


@dataclass(frozen=True, slots=True)
class SetPassword:
    """A new primary password. ``retain_current``: the current one becomes the secondary
    (replacing any secondary); otherwise an existing secondary stays, except that an empty new
    password discards it."""

    account: AccountRef
    password: str = field(repr=False)
    retain_current: bool = False


@dataclass(frozen=True, slots=True)
class DiscardOldPassword:
    """Forget the secondary password (ALTER USER ... DISCARD OLD PASSWORD)."""

    account: AccountRef


@dataclass(frozen=True, slots=True)
class UnlockAccount:
    """End a lock after failed logins and reset the count (ALTER USER ... ACCOUNT UNLOCK)."""

    account: AccountRef


@dataclass(frozen=True, slots=True)
class SetMaxUserConnections:
    """The account's own connection limit per proxy node (0: the server's default)."""

    account: AccountRef
    limit: int


@dataclass(frozen=True, slots=True)
class SetPrivileges:
    """Replace the set held at one level: on ``db.*`` when ``table`` is None, else on
    ``db.table``. An empty set removes the grant."""

    account: AccountRef
    db: str
    table: str | None
    privs: Priv


Change = (
    CreateAccount
    | DropAccount
    | SetPassword
    | SetPrivileges
    | DiscardOldPassword
    | UnlockAccount
    | SetMaxUserConnections
)
