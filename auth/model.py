"""The catalog's values: accounts, databases, grants, audit records and changes.

Frozen dataclasses only; no I/O. Database and table names in grants are lower-case keys (the
catalog compares them case-insensitively); ``Database.name`` keeps the spelling it was created
with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
class PhysicalDatabase:
    """One physical database of a logical database: its index (0 .. D-1), its name on the
    shard, and the shard."""

    index: int
    name: str
    shard: str


@dataclass(frozen=True, slots=True)
class Database:
    """A logical database and where it lives.

    An unsharded database (``shardgate database create NAME --shard s0``) is one physical
    database ``physical_name`` on ``shard`` and has no ``partitions``. A sharded one (``--shards
    s0,s1``) has D physical databases ``NAME_0000`` ... in ``partitions``, laid contiguously over
    its shards (``sharding.md``); ``shard`` and ``physical_name`` are then those of physical
    database 0, where single tables live.
    """

    name: str
    shard: str
    physical_name: str
    backend_user: str
    partitions: tuple[PhysicalDatabase, ...] = ()

    @property
    def key(self) -> str:
        """The case-insensitive lookup key."""
        return self.name.lower()

    @property
    def sharded(self) -> bool:
        """Created over physical databases ``NAME_0000`` ... (even a single one)."""
        return bool(self.partitions)

    @property
    def physical_databases(self) -> tuple[PhysicalDatabase, ...]:
        """Every physical database, in index order (one for an unsharded database)."""
        if self.partitions:
            return self.partitions
        return (PhysicalDatabase(0, self.physical_name, self.shard),)

    @property
    def shards(self) -> tuple[str, ...]:
        """The shards holding its physical databases, in the order they were named."""
        return tuple(dict.fromkeys(p.shard for p in self.physical_databases))

    def physical_database(self, name: str) -> PhysicalDatabase | None:
        """The physical database called ``name`` (compared case-insensitively), if it is one
        of this database's."""
        lowered = name.lower()
        for physical in self.physical_databases:
            if physical.name.lower() == lowered:
                return physical
        return None


def physical_database_name(database: str, index: int) -> str:
    """Physical database ``index`` of sharded database ``database``: ``NAME_<4 digits>``."""
    return f"{database}_{index:04d}"


def partition_layout(
    database: str, shards: Sequence[str], count: int
) -> tuple[PhysicalDatabase, ...]:
    """The D = ``count`` physical databases of a sharded database over ``shards`` (D a
    positive multiple of the number of shards): contiguous ranges, ``[k*D/S, (k+1)*D/S)`` on
    the k-th shard named (``sharding.md``). ValueError for a layout that cannot be."""
    if not shards or len(set(shards)) != len(shards):
        raise ValueError("name each shard once")
    if count < 1 or count % len(shards):
        raise ValueError(
            f"the number of physical databases ({count}) must be a positive multiple of the"
            f" number of shards ({len(shards)})"
        )
    per_shard = count // len(shards)
    return tuple(
        PhysicalDatabase(index, physical_database_name(database, index), shards[index // per_shard])
        for index in range(count)
    )


# --- Sharded databases: logical tables, their rules, sequences (sharding.md). ---

TableKind = Literal["single", "broadcast", "sharded"]
HashFunction = Literal["HASH", "UNI_HASH"]
KeyFamily = Literal["integer", "string"]

# Integer column types, by MariaDB's canonical name, and their width in bits.
INTEGER_BITS: Mapping[str, int] = MappingProxyType(
    {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "bigint": 64}
)
STRING_TYPES = frozenset({"char", "varchar"})
# MariaDB (and MySQL) name lengths: a physical table name must fit.
MAX_NAME_LENGTH = 64


@dataclass(frozen=True, slots=True)
class KeyType:
    """A shard key column's type, as far as placement cares: an integer type (its width and
    signedness bound the values a row can hold) or a character string type."""

    name: str  # canonical, lower-case: one of INTEGER_BITS or STRING_TYPES
    unsigned: bool = False

    def __post_init__(self) -> None:
        if self.name not in INTEGER_BITS and self.name not in STRING_TYPES:
            raise ValueError(f"not a shard key type: {self.name!r}")
        if self.unsigned and self.name in STRING_TYPES:
            raise ValueError(f"{self.name} cannot be unsigned")

    @property
    def family(self) -> KeyFamily:
        return "integer" if self.name in INTEGER_BITS else "string"

    @property
    def bounds(self) -> tuple[int, int]:
        """The smallest and largest value an integer column of this type holds."""
        bits = INTEGER_BITS[self.name]
        if self.unsigned:
            return 0, (1 << bits) - 1
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def __str__(self) -> str:
        return f"{self.name} unsigned" if self.unsigned else self.name

    @classmethod
    def parse(cls, text: str) -> KeyType:
        """The type ``str()`` wrote (``"bigint unsigned"``, ``"varchar"``)."""
        name, _, rest = text.partition(" ")
        if rest not in ("", "unsigned"):
            raise ValueError(f"not a shard key type: {text!r}")
        return cls(name, rest == "unsigned")


@dataclass(frozen=True, slots=True)
class ShardKey:
    """One level of a table's partitioning: the function and the column it hashes."""

    function: HashFunction
    column: str
    type: KeyType

    def same_as(self, other: ShardKey) -> bool:
        """The same function of the same column (names compare case-insensitively)."""
        return self.function == other.function and self.column.lower() == other.column.lower()

    def clause(self) -> str:
        """``hash(`id`)``, as DRDS's SHOW CREATE TABLE writes it."""
        column = "`" + self.column.replace("`", "``") + "`"
        return f"{self.function.lower()}({column})"


@dataclass(frozen=True, slots=True)
class TableRule:
    """How a logical table of a sharded database is laid out (``sharding.md``).

    * ``single``: one table, in physical database 0.
    * ``broadcast``: a full copy in every physical database.
    * ``sharded``: split by ``db_key`` over the physical databases and, with ``tb_key``
      (``TBPARTITION BY``), into ``tables_per_db`` (T) tables in each.
    """

    kind: TableKind
    db_key: ShardKey | None = None
    tb_key: ShardKey | None = None
    tables_per_db: int = 1

    def __post_init__(self) -> None:
        if self.tables_per_db < 1:
            raise ValueError("TBPARTITIONS must be at least 1")
        if self.kind == "sharded":
            if self.db_key is None:
                raise ValueError("a sharded table needs a database shard key")
        elif self.db_key is not None or self.tb_key is not None:
            raise ValueError(f"a {self.kind} table has no shard key")
        if self.tb_key is None and self.tables_per_db != 1:
            raise ValueError("TBPARTITIONS without TBPARTITION BY")

    @property
    def split_tables(self) -> bool:
        """Whether the physical tables are ``t_<global index>`` (``TBPARTITION BY``) rather
        than ``t`` in each physical database."""
        return self.tb_key is not None

    def drds_clause(self) -> str:
        """The clause as DRDS's SHOW CREATE TABLE writes it (empty for a single table)."""
        if self.kind == "broadcast":
            return "broadcast"
        if self.db_key is None:
            return ""
        text = f"dbpartition by {self.db_key.clause()}"
        if self.tb_key is not None:
            text += f" tbpartition by {self.tb_key.clause()} tbpartitions {self.tables_per_db}"
        return text


def physical_table_name(table: str, index: int, total: int) -> str:
    """Physical table ``index`` (global, 0 .. total-1) of a table split into ``total``:
    ``t_<index>`` zero-padded to the width of the largest index, at least 2 digits
    (``t_00`` ... ``t_15`` for 16, ``t_000`` ... ``t_127`` for 128)."""
    width = max(2, len(str(total - 1)))
    return f"{table}_{index:0{width}d}"


@dataclass(frozen=True, slots=True)
class LogicalTable:
    """A table of a sharded database as clients see it: its name, rule, and the definition
    SHOW CREATE TABLE shows (the client's CREATE TABLE, DRDS clause included)."""

    name: str
    rule: TableRule
    definition: str

    @property
    def key(self) -> str:
        return self.name.lower()

    def physical_tables(self, databases: int) -> tuple[tuple[int, str], ...]:
        """Every physical table as (physical database index, table name), in order, for a
        database of ``databases`` physical databases."""
        rule = self.rule
        if rule.kind == "single":
            return ((0, self.name),)
        if not rule.split_tables:
            return tuple((index, self.name) for index in range(databases))
        per_db = rule.tables_per_db
        total = databases * per_db
        return tuple((g // per_db, physical_table_name(self.name, g, total)) for g in range(total))

    def physical_names_in(self, database_index: int, databases: int) -> tuple[str, ...]:
        """The names of its physical tables in physical database ``database_index``."""
        return tuple(n for i, n in self.physical_tables(databases) if i == database_index)


# DRDS's name for the implicit sequence of a table's AUTO_INCREMENT column.
AUTO_SEQUENCE_PREFIX = "AUTO_SEQ_"
# DRDS: a GROUP sequence starts at 100001 unless told otherwise.
DEFAULT_SEQUENCE_START = 100001
SEQUENCE_MAX = (1 << 63) - 1  # sequence values are signed BIGINTs


def auto_sequence_name(table: str) -> str:
    """The implicit GROUP sequence of ``table``'s AUTO_INCREMENT column (``AUTO_SEQ_t``)."""
    return AUTO_SEQUENCE_PREFIX + table


@dataclass(frozen=True, slots=True)
class GroupSequence:
    """A DRDS GROUP sequence: values unique across every node, not consecutive (each node
    takes ranges reserved in the catalog). ``generation`` moves with ``ALTER SEQUENCE ... START
    WITH``: ranges a node reserved under an older generation are no longer handed out."""

    name: str
    start_with: int
    generation: int = 1

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class SequenceRange:
    """Values ``start`` .. ``end - 1`` of a sequence, reserved for one node."""

    start: int
    end: int
    generation: int

    def __len__(self) -> int:
        return max(0, self.end - self.start)


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
