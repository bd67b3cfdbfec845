"""Mirrored backend accounts: the shard itself enforces each caller's grants.

A session reaches its database's shard through a *mirror*: a MariaDB account made for one
(proxy account, logical database) pair that holds, on that database, exactly the caller's
privileges there plus the few that using them needs (``shard_privileges``, ``mirror_grants``)
-- nothing global, no routines, triggers or events, no GRANT OPTION, no roles. A
statement the proxy wrongly allows therefore reaches no further than the caller's own grants:
the shard refuses the rest, and the session counts it (``shard_refused``).

Pure parts (no I/O, unit-tested): the mirror's name and password (``mirror_user``,
``mirror_password``), its desired grants (``mirror_grants``), the shard's grant tables as
values (``ShardAccount``, ``shard_accounts``) and the statements that turn what the shard has
into what is desired (``plan``).

``MirrorManager`` (asyncio, one per process) does the I/O, as the shard's administrator
(``[[shards]] user``):

* ``sync(ids)`` / ``catalog_changed(before)`` after an account change (SQL, CLI, dashboard,
  another node's change seen by the catalog poller): creates, re-grants (REVOKE what is extra,
  GRANT what is missing) and drops mirrors.
* ``reconcile()`` at start-up and every ``RECONCILE_SECONDS``: compares every mirror of this
  catalog on each shard with the catalog and fixes the differences, drops mirrors of accounts
  that no longer hold anything there, retries failed syncs, and drops the all-privileges
  ``sg_<db>`` accounts older versions made.
* ``target_for`` (sessions connect only through a mirror verified for the current catalog
  snapshot; otherwise they wait for a sync, bounded by ``VERIFY_WAIT``, and are refused if it
  fails), ``verified`` (the cheap check) and ``follow`` (an open backend connection follows a
  grant change).

Concurrency across nodes: every change on a shard happens while holding that shard's named
lock (``GET_LOCK``) and after re-reading the catalog inside the lock, so whichever node applies
last applies the newest catalog state; an old snapshot can never re-grant something revoked.
The lock's name is derived from the catalog secret: ``GET_LOCK`` is open to every tenant, who
must not be able to take it. Work per shard is queued and coalesced: a burst of requests (many
first logins after a restart) becomes a few rounds.

Names carry a keyed hash of the physical database (``sgm_<account id>_<8 hex>``), so two
clusters (catalogs with their own secrets) sharing a shard never touch each other's mirrors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Collection, Coroutine, Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from auth.catalog import Catalog, CatalogError, CatalogSnapshot
from auth.model import Account, AccountGrants, Database, LogicalTable, PhysicalDatabase
from auth.passwords import native_hash
from auth.privileges import NO_PRIVILEGES, Priv, priv_names
from proxy.backend.connection import (
    BackendConnection,
    BackendError,
    BackendQueryError,
    BackendTarget,
    QueryResult,
    backend_password,
    quote_name,
    quote_string,
    shard_admin,
    usage_target,
)
from proxy.backend.grants import MirrorGrants
from proxy.ops.config import Config, ConfigError, ShardConfig
from proxy.ops.metrics import Metrics
from proxy.wire.packets import ProtocolError, parse_ok_status

log = logging.getLogger("shardgate.mirror")

_NO_TABLES: Mapping[str, LogicalTable] = MappingProxyType({})

MIRROR_PREFIX = "sgm_"
RECONCILE_SECONDS = 45.0
VERIFY_WAIT = 3.0  # how long a session waits for its mirror to be verified
LOCK_WAIT = 10  # seconds GET_LOCK waits for another node's round on the shard
ROUND_TIMEOUT = 60.0  # one round on one shard, connect to unlock
_IDS_PER_ROUND = 500  # account ids named in one round's queries
_NO_SUCH_TABLE = 1146
_ACCESS_DENIED = 1045

# Errors a shard answers when its own privilege checks refuse a statement: in the answer to a
# statement the proxy allowed, a classifier miss (or a grant change racing the statement).
SHARD_REFUSALS = frozenset({1044, 1045, 1142, 1143, 1227, 1370})

LOCK_TABLES = "LOCK TABLES"
CREATE_TEMPORARY_TABLES = "CREATE TEMPORARY TABLES"
SHOW_VIEW = "SHOW VIEW"
CREATE_VIEW = "CREATE VIEW"
REFERENCES = "REFERENCES"
_NATIVE = "mysql_native_password"


# --- names and passwords ---------------------------------------------------------------------


def mirror_suffix(secret: bytes, physical: str) -> str:
    """``_`` and 8 hex digits of a keyed hash of the physical database name."""
    digest = hmac.new(
        secret, f"shardgate-mirror-db:{physical.lower()}".encode(), hashlib.sha256
    ).hexdigest()
    return "_" + digest[:8]


def mirror_user(secret: bytes, account_id: int, physical: str) -> str:
    """The mirror of one account on one physical database: ``sgm_<id>_<8 hex>``, at most 32
    characters (MySQL 8's limit) for any 64-bit account id."""
    return f"{MIRROR_PREFIX}{account_id}{mirror_suffix(secret, physical)}"


def mirror_account_id(user: str) -> int | None:
    """The account id in a mirror's name (None: not a mirror's name)."""
    if not user.startswith(MIRROR_PREFIX):
        return None
    number, sep, suffix = user[len(MIRROR_PREFIX) :].partition("_")
    if not sep or not number.isdigit() or len(suffix) != 8:
        return None
    return int(number)


# A backend account in a shard's error text (``execute command denied to user
# 'sgm_5_6e1abf3a'@'%' for routine ...``): a mirror, or the privilege-less usage account, at
# its account's host (1370) or at the host the proxy connects from (1142: ``@'localhost'``).
_BACKEND_ACCOUNT = re.compile(
    rb"'(?:" + MIRROR_PREFIX.encode() + rb"\d+_[0-9a-f]{8}|sgu_[0-9a-f]{12})'@'[^'\n]{0,255}'"
)


def client_account_named(message: bytes, user: str, client_ip: str) -> bytes:
    """A shard's error text with the backend account it names (a mirror's or the usage
    account's ``'sgm_5_6e1abf3a'@'%'``, at whichever host) replaced by the client's own
    ``'user'@'ip'``, as MariaDB names the session's account in its errors (and as the
    proxy's own 1142 does): a client never sees the account the proxy reaches the shard as,
    and which partition's mirror answered."""
    if b"'sg" not in message:
        return message
    named = b"'%s'@'%s'" % (user.encode(), client_ip.encode())
    return _BACKEND_ACCOUNT.sub(lambda _: named, message)


def mirror_password(secret: bytes, shard: str, user: str) -> str:
    """The mirror's password on ``shard``, derived from the catalog secret (never stored)."""
    return backend_password(secret, shard, f"*mirror*{user}")


def native_password_hash(password: str) -> str:
    """The ``mysql_native_password`` hash as the shard stores it (``*`` and 40 hex digits):
    mirrors are created with it, so the password never appears in the shard's processlist."""
    return "*" + native_hash(password).hex().upper()


# --- what a mirror should hold ---------------------------------------------------------------


def shard_privileges(privs: Priv) -> frozenset[str]:
    """The shard privileges standing for ``privs`` at one level (a database or a table).

    The eight proxy privileges map 1:1. With SELECT, at the same level (so they widen no
    table's visibility, which MariaDB grants for any table-level privilege):

    * ``SHOW VIEW``: ``SHOW CREATE VIEW`` and ``SHOW CREATE TABLE`` of a view, which the proxy
      allows with SELECT, need it on the shard (mariadb-dump reads views this way).
    * ``REFERENCES``: a ``FOREIGN KEY ... REFERENCES p``, which the proxy allows with SELECT on
      ``p``, needs it on a MySQL 8 shard (MariaDB does not check it).

    With CREATE, at the same level, ``CREATE VIEW``: the proxy allows ``CREATE VIEW v`` with
    CREATE on ``v`` and SELECT on what it reads, and has the mirror made the view's definer
    (``DEFINER = CURRENT_USER``), so a view runs with at most its creator's grants.
    """
    names = set(priv_names(privs))
    if Priv.SELECT in privs:
        names.update((SHOW_VIEW, REFERENCES))
    if Priv.CREATE in privs:
        names.add(CREATE_VIEW)
    return frozenset(names)


def physical_table_privileges(
    database: Database,
    physical: PhysicalDatabase,
    tables: Mapping[str, LogicalTable],
    on_tables: Iterable[tuple[str, Priv]],
) -> list[tuple[str, Priv]]:
    """Table-level privileges on logical tables (lower-case names) as the physical tables of
    ``physical`` they cover: a privilege on a logical table covers each of its physical tables
    there (``t`` in every physical database for a broadcast table or one sharded over the
    databases only, ``t_00`` ... for one split by TBPARTITION BY, ``t`` in physical database 0
    for a single one). A table the catalog does not know (every table of an unsharded database,
    or one not created yet) is taken to be where a single table would be, in physical database
    0; a name that is a physical table of another logical table is never granted as such."""
    count = len(database.physical_databases)
    hidden: set[str] | None = None  # the physical names that are not logical ones (lazily)
    found: dict[str, Priv] = {}
    for name, privs in on_tables:
        table = tables.get(name)
        if table is not None:
            names = [n.lower() for n in table.physical_names_in(physical.index, count)]
        elif physical.index != 0:
            names = []
        else:
            if hidden is None:
                hidden = {
                    n.lower()
                    for other in tables.values()
                    if other.rule.split_tables
                    for _, n in other.physical_tables(count)
                }
            names = [] if name in hidden else [name]
        for physical_name in names:
            found[physical_name] = found.get(physical_name, NO_PRIVILEGES) | privs
    return sorted(found.items())


def mirror_grants(
    account_id: int,
    user: str,
    database: Database,
    grants: AccountGrants,
    physical: PhysicalDatabase | None = None,
    tables: Mapping[str, LogicalTable] = _NO_TABLES,
) -> MirrorGrants | None:
    """The mirror ``user`` of an account holding ``grants``, on ``physical`` (one of
    ``database``'s physical databases; by default its first, an unsharded database's only
    one) whose logical tables are ``tables`` (``CatalogSnapshot.tables``); None when the
    account holds nothing there (it has no mirror there).

    Every physical database of a logical database is that database: a privilege on the
    database holds on each of them, one on a table on each of its physical tables
    (``physical_table_privileges``).

    Besides ``shard_privileges`` at each level, at the database level (the only level MariaDB
    has for them):

    * ``LOCK TABLES`` when SELECT is held anywhere in the database: MySQL 8 needs it (or UPDATE
      or DELETE) for ``SELECT ... FOR UPDATE``, which the proxy allows with SELECT, and
      ``LOCK TABLES`` needs it (the proxy requires SELECT on each table locked, and INSERT,
      UPDATE or DELETE for a WRITE lock; the shard requires SELECT on each table too).
    * ``CREATE TEMPORARY TABLES`` when CREATE is held anywhere in the database: the proxy allows
      ``CREATE TEMPORARY TABLE t`` with CREATE on ``t``; the shard needs this privilege, and a
      temporary table is private to its connection.
    """
    key = database.key
    where = database.physical_databases[0] if physical is None else physical
    on_db = grants.db_privs.get(key, NO_PRIVILEGES)
    on_tables = physical_table_privileges(
        database,
        where,
        tables,
        (
            (table, privs)
            for (db, table), privs in grants.table_privs.items()
            if db == key and privs
        ),
    )
    if not on_db and not on_tables:
        return None
    anywhere = on_db
    for _, privs in on_tables:
        anywhere |= privs
    db_level = set(shard_privileges(on_db))
    if Priv.SELECT in anywhere:
        db_level.add(LOCK_TABLES)
    if Priv.CREATE in anywhere:
        db_level.add(CREATE_TEMPORARY_TABLES)
    return MirrorGrants(
        account_id,
        user,
        where.name.lower(),
        frozenset(db_level),
        tuple((table, shard_privileges(privs)) for table, privs in on_tables),
    )


def desired_on_shard(
    snapshot: CatalogSnapshot, secret: bytes, shard: str, account_ids: Iterable[int]
) -> dict[str, MirrorGrants]:
    """The mirrors ``account_ids`` should have on ``shard``, by user name."""
    desired: dict[str, MirrorGrants] = {}
    clashes: set[str] = set()
    for account_id in account_ids:
        grants = snapshot.grants_of(account_id)
        for key in grants.database_keys:
            database = snapshot.database(key)
            if database is None:
                continue
            tables = snapshot.tables(key)
            for physical in database.physical_databases:
                if physical.shard != shard:
                    continue
                user = mirror_user(secret, account_id, physical.name)
                wanted = mirror_grants(account_id, user, database, grants, physical, tables)
                if wanted is None:
                    continue
                if user in desired:  # two databases whose 32-bit hashes collide: serve neither
                    clashes.add(user)
                desired[user] = wanted
    for user in clashes:
        log.error("mirror name %s stands for two databases on shard '%s'", user, shard)
        del desired[user]
    return desired


# --- what the shard has ----------------------------------------------------------------------

# mysql.db columns and tables_priv.Table_priv values, as privilege names GRANT/REVOKE take.
_DB_COLUMNS = {
    "SELECT_PRIV": "SELECT",
    "INSERT_PRIV": "INSERT",
    "UPDATE_PRIV": "UPDATE",
    "DELETE_PRIV": "DELETE",
    "CREATE_PRIV": "CREATE",
    "DROP_PRIV": "DROP",
    "GRANT_PRIV": "GRANT OPTION",
    "REFERENCES_PRIV": REFERENCES,
    "INDEX_PRIV": "INDEX",
    "ALTER_PRIV": "ALTER",
    "CREATE_TMP_TABLE_PRIV": CREATE_TEMPORARY_TABLES,
    "LOCK_TABLES_PRIV": LOCK_TABLES,
    "CREATE_VIEW_PRIV": CREATE_VIEW,
    "SHOW_VIEW_PRIV": SHOW_VIEW,
    "CREATE_ROUTINE_PRIV": "CREATE ROUTINE",
    "ALTER_ROUTINE_PRIV": "ALTER ROUTINE",
    "EXECUTE_PRIV": "EXECUTE",
    "EVENT_PRIV": "EVENT",
    "TRIGGER_PRIV": "TRIGGER",
    "DELETE_HISTORY_PRIV": "DELETE HISTORY",
}
_TABLE_PRIVS = {
    "GRANT": "GRANT OPTION",
    "DELETE VERSIONING ROWS": "DELETE HISTORY",
}


@dataclass(frozen=True, slots=True)
class ShardAccount:
    """One account as the shard's grant tables show it.

    ``anomalies`` names what a mirror never has and plain REVOKEs do not undo one by one
    (global, column, routine or proxy privileges, roles, a privilege this code does not know):
    such an account is dropped and made again."""

    user: str
    host: str
    plugin: str = _NATIVE
    authentication: str = field(default="", repr=False)
    db_privs: Mapping[str, frozenset[str]] = field(default_factory=dict)
    table_privs: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    anomalies: frozenset[str] = frozenset()


def _text(value: bytes | None) -> str:
    return "" if value is None else value.decode("utf-8", "replace")


def _named(result: QueryResult) -> list[dict[str, str]]:
    upper = [name.upper() for name in result.columns]
    return [dict(zip(upper, map(_text, row), strict=True)) for row in result.rows]


def shard_accounts(
    users: QueryResult, dbs: QueryResult, tables: QueryResult, others: QueryResult
) -> dict[tuple[str, str], ShardAccount]:
    """The accounts of ``mysql.user`` rows (``SELECT *``), with their ``mysql.db`` rows
    (``SELECT *``), ``mysql.tables_priv`` rows (at least Db, User, Host, Table_name,
    Table_priv, Column_priv) and ``others``: (User, Host, what) rows naming any other grant
    they have. Database and table names lower-case."""
    found: dict[tuple[str, str], ShardAccount] = {}
    for row in _named(users):
        anomalies = {
            f"global {name[:-5].replace('_', ' ')}"
            for name, value in row.items()
            if name.endswith("_PRIV") and value.upper() == "Y"
        }
        if row.get("DEFAULT_ROLE"):
            anomalies.add("a default role")
        if row.get("IS_ROLE", "N").upper() == "Y":
            anomalies.add("it is a role")
        found[(row["USER"], row["HOST"])] = ShardAccount(
            row["USER"],
            row["HOST"],
            row.get("PLUGIN") or _NATIVE,
            row.get("AUTHENTICATION_STRING") or row.get("PASSWORD", ""),
            {},
            {},
            frozenset(anomalies),
        )
    db_privs: dict[tuple[str, str], dict[str, frozenset[str]]] = {}
    extra: dict[tuple[str, str], set[str]] = {}
    for row in _named(dbs):
        key = (row["USER"], row["HOST"])
        held = set()
        for name, value in row.items():
            if name.endswith("_PRIV") and value.upper() == "Y":
                known = _DB_COLUMNS.get(name)
                if known is None:
                    extra.setdefault(key, set()).add(f"database {name[:-5].replace('_', ' ')}")
                else:
                    held.add(known)
        if held:
            literal = _literal_database(row["DB"])
            if literal is None:  # a pattern: the account is made again, its grants escaped
                extra.setdefault(key, set()).add(f"database pattern {row['DB']}")
            else:
                db_privs.setdefault(key, {})[literal.lower()] = frozenset(held)
    table_privs: dict[tuple[str, str], dict[tuple[str, str], frozenset[str]]] = {}
    for row in _named(tables):
        key = (row["USER"], row["HOST"])
        names = {
            _TABLE_PRIVS.get(value.strip().upper(), value.strip().upper())
            for value in row["TABLE_PRIV"].split(",")
            if value.strip()
        }
        if row.get("COLUMN_PRIV"):
            extra.setdefault(key, set()).add("column privileges")
        if names:
            table_privs.setdefault(key, {})[(row["DB"].lower(), row["TABLE_NAME"].lower())] = (
                frozenset(names)
            )
    for values in others.rows:
        user, host, what = (_text(value) for value in values[:3])
        extra.setdefault((user, host), set()).add(what)
    for key, account in list(found.items()):
        found[key] = replace(
            account,
            db_privs=db_privs.get(key, {}),
            table_privs=table_privs.get(key, {}),
            anomalies=account.anomalies | frozenset(extra.get(key, ())),
        )
    return found


# --- from what the shard has to what is desired ----------------------------------------------

# Privileges in the order statements list them (others after, alphabetically).
_ORDER = {
    name: index
    for index, name in enumerate(
        (
            "SELECT",
            "INSERT",
            "UPDATE",
            "DELETE",
            "CREATE",
            "DROP",
            REFERENCES,
            "INDEX",
            "ALTER",
            CREATE_TEMPORARY_TABLES,
            LOCK_TABLES,
            CREATE_VIEW,
            SHOW_VIEW,
        )
    )
}


def _privilege_list(privs: Collection[str]) -> str:
    return ", ".join(sorted(privs, key=lambda name: (_ORDER.get(name, len(_ORDER)), name)))


def db_pattern(database: str) -> str:
    """``database`` as a database-level GRANT names it literally: MariaDB (and MySQL) read
    ``_`` and ``%`` there as wildcards, so ```wc_a1`.*`` holds on ``wcXa1`` too -- another
    tenant's database on the shard. (A table-level grant's database is literal.)"""
    return database.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")


def _literal_database(pattern: str) -> str | None:
    """The one database a ``mysql.db`` row's ``Db`` pattern matches (:func:`db_pattern`
    undone), or None when it holds a wildcard (``_`` or ``%`` not escaped)."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "_%":
            return None
        else:
            out.append(char)
    return None if escaped else "".join(out)


def _level(database: str, table: str | None) -> str:
    if table is None:
        return f"{quote_name(db_pattern(database))}.*"
    return f"{quote_name(database)}.{quote_name(table)}"


def _account(user: str, host: str = "%") -> str:
    return f"{quote_string(user)}@{quote_string(host)}"


@dataclass(frozen=True, slots=True)
class CreateUser:
    user: str
    password_hash: str = field(repr=False)

    @property
    def sql(self) -> str:
        return (
            f"CREATE USER {_account(self.user)} IDENTIFIED WITH {_NATIVE} "
            f"AS {quote_string(self.password_hash)}"
        )


@dataclass(frozen=True, slots=True)
class SetPassword:
    user: str
    password_hash: str = field(repr=False)

    @property
    def sql(self) -> str:
        return (
            f"ALTER USER {_account(self.user)} IDENTIFIED WITH {_NATIVE} "
            f"AS {quote_string(self.password_hash)}"
        )


@dataclass(frozen=True, slots=True)
class DropUser:
    user: str
    host: str = "%"

    @property
    def sql(self) -> str:
        return f"DROP USER IF EXISTS {_account(self.user, self.host)}"


@dataclass(frozen=True, slots=True)
class Grant:
    user: str
    database: str
    table: str | None
    privileges: frozenset[str]

    @property
    def sql(self) -> str:
        level = _level(self.database, self.table)
        return f"GRANT {_privilege_list(self.privileges)} ON {level} TO {_account(self.user)}"


@dataclass(frozen=True, slots=True)
class Revoke:
    user: str
    database: str
    table: str | None
    privileges: frozenset[str]

    @property
    def sql(self) -> str:
        level = _level(self.database, self.table)
        return f"REVOKE {_privilege_list(self.privileges)} ON {level} FROM {_account(self.user)}"


Step = CreateUser | SetPassword | DropUser | Grant | Revoke


def _grants(want: MirrorGrants) -> list[Step]:
    steps: list[Step] = []
    if want.db_privs:
        steps.append(Grant(want.user, want.database, None, want.db_privs))
    steps += [Grant(want.user, want.database, t, privs) for t, privs in want.table_privs]
    return steps


def plan(
    desired: Mapping[str, MirrorGrants],
    actual: Mapping[tuple[str, str], ShardAccount],
    password_hash: Callable[[str], str],
) -> list[Step]:
    """The statements that make the shard's mirrors (``actual``, every account the round
    looked at) exactly ``desired``: accounts nothing desires (or at a host other than ``%``)
    are dropped, missing ones created, and for the others the extra privileges revoked before
    the missing ones are granted. ``password_hash(user)``: the mirror's password hash."""
    steps: list[Step] = [
        DropUser(user, host)
        for (user, host) in sorted(actual)
        if host != "%" or user not in desired
    ]
    for user, want in sorted(desired.items()):
        expected_hash = password_hash(user)
        have = actual.get((user, "%"))
        if have is not None and have.anomalies:
            steps.append(DropUser(user))
            have = None
        if have is None:
            steps.append(CreateUser(user, expected_hash))
            steps += _grants(want)
            continue
        if have.plugin != _NATIVE or have.authentication.upper() != expected_hash:
            steps.append(SetPassword(user, expected_hash))
        wanted_tables = dict(want.table_privs)
        revokes: list[Step] = []
        grants: list[Step] = []
        for db, privs in sorted(have.db_privs.items()):
            wanted = want.db_privs if db == want.database else frozenset()
            if privs - wanted:
                revokes.append(Revoke(user, db, None, privs - wanted))
        for (db, table), privs in sorted(have.table_privs.items()):
            wanted = wanted_tables.get(table, frozenset()) if db == want.database else frozenset()
            if privs - wanted:
                revokes.append(Revoke(user, db, table, privs - wanted))
        missing = want.db_privs - have.db_privs.get(want.database, frozenset())
        if missing:
            grants.append(Grant(user, want.database, None, missing))
        for table, privs in want.table_privs:
            missing = privs - have.table_privs.get((want.database, table), frozenset())
            if missing:
                grants.append(Grant(user, want.database, table, missing))
        steps += revokes + grants
    return steps


# --- classifier misses -----------------------------------------------------------------------


def shard_refused(metrics: Metrics, errno: int, database: str | None, digest: str) -> None:
    """The shard refused (``errno`` in SHARD_REFUSALS) a statement the proxy allowed and
    relayed: the answer went to the client unchanged; count it and log the statement's shape
    (its digest text: literals replaced, so never a value or password)."""
    metrics.classifier_miss(errno)
    log.warning(
        "classifier miss: the shard refused with error %d a statement the proxy allowed "
        "(database %s): %s",
        errno,
        database,
        digest[:500],
    )


# --- the manager -----------------------------------------------------------------------------


class MirrorError(Exception):
    """A round of mirror changes on a shard could not be carried out."""


class MirrorUnavailable(BackendError):
    """A session's mirror could not be verified for the current catalog: the session is
    refused (its error is what the client sees), never served through another account."""


_ShardKey = tuple[str, str, int]  # name, host, port: a shard moved by a reload is another one


def _shard_key(shard: ShardConfig) -> _ShardKey:
    return (shard.name, shard.host, shard.port)


class _Queue:
    """The work waiting for one shard: account ids (or everything), and the future the next
    round resolves with its error (None: done)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self.everything = False
        self.waiter: asyncio.Future[str | None] | None = None
        self.task: asyncio.Task[None] | None = None


# The cache of ``MirrorManager.desired``: what it was computed from, and its value.
_DesiredEntry = tuple[AccountGrants, Database, Mapping[str, LogicalTable], MirrorGrants | None]


class MirrorManager:
    """Mirrors of one catalog's accounts on the configured shards (see the module docstring).

    ``config`` returns the current configuration (reloads change shard addresses and
    credentials). The verified state is per process."""

    def __init__(
        self, config: Callable[[], Config], catalog: Catalog, metrics: Metrics | None = None
    ) -> None:
        """``metrics``: where sessions' backend connection failures are counted (``connect``;
        the CLI has none)."""
        self._config = config
        self._catalog = catalog
        self._metrics = metrics
        self._secret = config().catalog_secret()
        # (shard, account id) -> physical database -> the grants verified on the shard.
        self._verified: dict[tuple[_ShardKey, int], dict[str, MirrorGrants]] = {}
        # (shard, account id) -> when its mirror there was last suspected (``_forget``), on the
        # clock ``_suspicions`` counts: a round that read the shard before then (its grants may
        # be the ones a refusal just proved stale) does not mark the mirror verified.
        self._suspected: dict[tuple[_ShardKey, int], int] = {}
        self._suspicions = 0
        # Shard name -> accounts whose last sync failed (the reconciler retries them).
        self._dirty: dict[str, set[int]] = {}
        self._queues: dict[str, _Queue] = {}
        self._desired: dict[tuple[int, str, int], _DesiredEntry] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def snapshot(self) -> CatalogSnapshot:
        return self._catalog.snapshot()

    # -- sessions ---------------------------------------------------------------------------

    def desired(
        self,
        snapshot: CatalogSnapshot,
        account_id: int,
        database: Database,
        physical: PhysicalDatabase | None = None,
    ) -> MirrorGrants | None:
        """``mirror_grants`` for the account on ``physical`` (by default physical database 0:
        an unsharded database's only one) of ``database`` in ``snapshot`` (cached while the
        account's grants object, the database and its tables stay the same)."""
        where = database.physical_databases[0] if physical is None else physical
        grants = snapshot.grants_of(account_id)
        tables = snapshot.tables(database.key)
        key = (account_id, database.key, where.index)
        hit = self._desired.get(key)
        if hit is not None and hit[0] is grants and hit[1] == database and hit[2] is tables:
            return hit[3]
        user = mirror_user(self._secret, account_id, where.name)
        value = mirror_grants(account_id, user, database, grants, where, tables)
        if len(self._desired) >= 100_000:
            self._desired.clear()
        self._desired[key] = (grants, database, tables, value)
        return value

    def verified(
        self, snapshot: CatalogSnapshot, account_id: int, database: str, partition: int = 0
    ) -> bool:
        """Whether the account's mirror on physical database ``partition`` of ``database``
        holds, as far as this process has seen on the shard, exactly what ``snapshot`` says."""
        found = snapshot.database(database)
        if found is None or not 0 <= partition < len(found.physical_databases):
            return False
        physical = found.physical_databases[partition]
        desired = self.desired(snapshot, account_id, found, physical)
        return desired is not None and self._is_verified(physical.shard, desired)

    def _is_verified(self, shard_name: str, desired: MirrorGrants) -> bool:
        try:
            shard = self._config().shard(shard_name)
        except ConfigError:
            return False
        held = self._verified.get((_shard_key(shard), desired.account_id))
        return held is not None and held.get(desired.database) == desired

    async def target_for(
        self,
        snapshot: CatalogSnapshot,
        account: Account,
        database: str | None,
        select_database: bool = True,
        partition: int | None = None,
    ) -> BackendTarget:
        """Where and as whom a session of ``account`` in ``database`` connects: its mirror
        there, verified for the newest catalog snapshot (a sync is triggered and awaited, at
        most VERIFY_WAIT, when it is not); the shard's privilege-less usage account when the
        account holds nothing there, or for no database (the first database's shard).

        A sharded database is reached one physical database at a time: ``partition`` says
        which (its index); without one, physical database 0.

        Raises MirrorUnavailable (a BackendError) when the mirror cannot be verified."""
        config = self._config()
        if database is None:
            databases = snapshot.databases()
            if not databases:
                raise BackendError("no database exists yet")
            return usage_target(config.shard(databases[0].shard), self._secret)
        physical, desired = await self._verified_grants(snapshot, account, database, partition)
        shard = config.shard(physical.shard)
        if desired is None:
            return usage_target(shard, self._secret)
        return BackendTarget(
            shard=shard.name,
            host=shard.host,
            port=shard.port,
            user=desired.user,
            password=mirror_password(self._secret, shard.name, desired.user),
            database=physical.name if select_database else None,
            grants=desired,
        )

    async def connect(
        self,
        snapshot: CatalogSnapshot,
        account: Account,
        database: str | None,
        select_database: bool,
        client_capabilities: int,
        charset: int,
        partition: int | None = None,
    ) -> BackendConnection:
        """A session's backend connection, through ``target_for`` (``partition``: which
        physical database of a sharded database). A mirror's login the shard refuses (dropped
        or changed behind this process's back, e.g. by another node or the CLI for an account
        this snapshot still shows) loses its verification and is tried once more after a sync.
        Failures count as backend errors of the shard."""
        target = await self.target_for(snapshot, account, database, select_database, partition)
        try:
            return await self._connect(target, client_capabilities, charset)
        except BackendError as exc:
            if exc.errno != _ACCESS_DENIED or target.grants is None:
                raise
            self._forget(target, target.grants)
        target = await self.target_for(
            self._catalog.snapshot(), account, database, select_database, partition
        )
        return await self._connect(target, client_capabilities, charset)

    async def _connect(
        self, target: BackendTarget, client_capabilities: int, charset: int
    ) -> BackendConnection:
        try:
            return await BackendConnection.connect(
                target,
                client_capabilities=client_capabilities,
                charset=charset,
                timeout=self._config().server.backend_connect_timeout,
            )
        except BackendError:
            if self._metrics is not None:
                self._metrics.backend_error(target.shard)
            raise

    def suspect(self, target: BackendTarget) -> None:
        """The shard refused a statement the proxy allowed on a connection to ``target``: its
        mirror may have been changed behind this process's back (a DBA, another node): verify
        it again before the next connection is served."""
        if target.grants is not None:
            self._forget(target, target.grants)

    def _forget(self, target: BackendTarget, grants: MirrorGrants) -> None:
        key = ((target.shard, target.host, target.port), grants.account_id)
        self._suspicions += 1
        self._suspected[key] = self._suspicions
        held = self._verified.get(key)
        if held is not None:
            held.pop(grants.database, None)

    async def _verified_grants(
        self, snapshot: CatalogSnapshot, account: Account, database: str, partition: int | None
    ) -> tuple[PhysicalDatabase, MirrorGrants | None]:
        """The account's verified mirror on physical database ``partition`` of ``database``
        (None: it holds nothing there)."""
        for attempt in range(2):
            found = snapshot.database(database)
            if found is None:
                raise BackendError(f"database '{database}' no longer exists")
            physical = _physical(found, partition)
            desired = self.desired(snapshot, account.id, found, physical)
            if desired is None or self._is_verified(physical.shard, desired):
                return physical, desired
            if attempt == 0:
                waiter = self._request(physical.shard, frozenset({account.id}))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(waiter), VERIFY_WAIT)
                snapshot = self._catalog.snapshot()  # the round re-read the catalog
        raise MirrorUnavailable(
            f"the shard account serving {account.name} on database '{database}' could not be "
            "verified; try again later"
        )

    async def follow(
        self,
        backend: BackendConnection,
        snapshot: CatalogSnapshot,
        account: Account,
        database: str | None,
    ) -> None:
        """The session's catalog snapshot changed while ``backend`` (its connection, idle) is
        open in ``database``: make the connection hold what the new snapshot says.

        Table privileges take effect on the shard at once, but MariaDB keeps a connection's
        privileges on its current database from the moment it selected it (even once the
        account is dropped), so after a change at the database level the database is selected
        again (COM_INIT_DB, one round trip). When the account holds nothing in the database
        any more, the connection selects ``information_schema`` instead: it keeps its
        transaction, prepared statements and settings, and holds nothing. A connection that
        cannot follow -- its mirror cannot be verified, or it ran on the usage account and
        the account now has a mirror -- is closed; the session's next statement connects again
        through ``target_for``."""
        if database is None or backend.broken:
            return
        found = snapshot.database(database)
        if found is None:
            return
        held = backend.target.grants
        on = held.database if held is not None else backend.target.database
        physical = found.physical_database(on) if on is not None else None
        if physical is None:
            physical = found.physical_databases[0]
        desired = self.desired(snapshot, account.id, found, physical)
        if desired == held and (
            desired is None or self.verified(snapshot, account.id, database, physical.index)
        ):
            return
        now: MirrorGrants | None = None
        if desired is not None:
            try:
                physical, now = await self._verified_grants(
                    snapshot, account, database, physical.index
                )
            except BackendError as exc:
                log.warning("closing a backend connection of %s: %s", account.name, exc)
                await _retire(backend)
                return
        if now is None:
            await _select(backend, "information_schema", None)
        elif backend.target.user != now.user:
            await _retire(backend)
        elif held is None or now.db_privs != held.db_privs:
            await _select(backend, physical.name, now)
        else:
            backend.target = replace(backend.target, grants=now)

    # -- changes ------------------------------------------------------------------------------

    async def catalog_changed(self, before: CatalogSnapshot) -> None:
        """This process changed the catalog since ``before``: sync the accounts whose grants
        changed. Never raises; failures are logged and left to the reconciler."""
        changed = await self._changed_since(before)
        if changed is None:
            await self.reconcile()
            return
        after = self._catalog.snapshot()
        if after.version > before.version + 1:
            # Other processes changed the catalog between ``before`` and this change: what the
            # accounts held in between is unknown here (another node may have made the mirror
            # this DROP USER or REVOKE must remove), so ``before`` cannot tell which mirrors
            # differ or where they are: every changed account is synced on every shard.
            await self.sync(sorted(changed), before, everywhere=True)
        else:
            await self.sync(
                [i for i in sorted(changed) if _mirrors_differ(before, after, i)], before
            )

    def catalog_moved(self, before: CatalogSnapshot) -> None:
        """The catalog poller saw the catalog move on from ``before`` (changes by other
        processes, and this one's): in the background, sync the accounts whose grants changed
        and whose mirrors this process has not already seen in step."""

        async def work() -> None:
            ids = await self._changed(before)
            if ids is None:
                await self.reconcile()
                return
            snapshot = self._catalog.snapshot()
            await self.sync([i for i in ids if not self._in_step(snapshot, i)], before)

        self._spawn(work())

    async def _changed(self, before: CatalogSnapshot) -> list[int] | None:
        """Accounts whose grants differ between ``before`` and now (None: the change log no
        longer reaches back to ``before``, or cannot be read)."""
        changed = await self._changed_since(before)
        if changed is None:
            return None
        after = self._catalog.snapshot()
        return [i for i in sorted(changed) if _mirrors_differ(before, after, i)]

    async def _changed_since(self, before: CatalogSnapshot) -> frozenset[int] | None:
        """Accounts changed since ``before`` by anyone, from the catalog's change log (None: it
        no longer reaches back to ``before``; empty when it cannot be read)."""
        try:
            return await asyncio.to_thread(self._catalog.changed_since, before.version)
        except Exception as exc:  # the catalog is unreachable: the reconciler catches up
            log.warning("mirror sync skipped: reading the catalog's change log failed: %s", exc)
            return frozenset()

    def _in_step(self, snapshot: CatalogSnapshot, account_id: int) -> bool:
        """Whether this process has seen the account's mirrors on every configured shard
        holding exactly what ``snapshot`` says (and no others)."""
        wanted: dict[str, dict[str, MirrorGrants]] = {}
        for key in snapshot.grants_of(account_id).database_keys:
            database = snapshot.database(key)
            if database is None:
                continue
            for physical in database.physical_databases:
                found = self.desired(snapshot, account_id, database, physical)
                if found is not None:
                    wanted.setdefault(physical.shard, {})[found.database] = found
        return all(
            self._verified.get((_shard_key(shard), account_id), {}) == wanted.get(shard.name, {})
            for shard in self._config().shards
        )

    async def sync(
        self,
        account_ids: Collection[int],
        before: CatalogSnapshot | None = None,
        *,
        everywhere: bool = False,
    ) -> None:
        """Make the mirrors of ``account_ids`` match the catalog on every shard where they
        hold anything now (or held anything in ``before``; ``everywhere``: on every shard
        holding a database now or in ``before``). Returns once done; never raises: a failure
        is logged and the accounts are left to the reconciler."""
        ids = frozenset(account_ids)
        if not ids:
            return
        snapshot = self._catalog.snapshot()
        if everywhere:
            shards = {s for db in snapshot.databases() for s in db.shards}
            if before is not None:
                shards |= {s for db in before.databases() for s in db.shards}
        else:
            shards = self._shards_holding(snapshot, ids)
            if before is not None:
                shards |= self._shards_holding(before, ids)
        # A database on a shard this configuration lacks is served by nobody here.
        shards &= {shard.name for shard in self._config().shards}
        if shards:
            await _all(self._request(name, ids) for name in sorted(shards))

    async def reconcile(self) -> None:
        """Check every mirror of this catalog on every shard holding its databases (and
        retry failed syncs); never raises."""
        configured = {shard.name for shard in self._config().shards}
        shards = {s for db in self._catalog.snapshot().databases() for s in db.shards}
        shards |= set(self._dirty)
        await _all(self._request(name, None) for name in sorted(shards & configured))

    async def run(self) -> None:
        """Reconcile at start-up and every RECONCILE_SECONDS (a task of the server)."""
        while True:
            await self.reconcile()
            await asyncio.sleep(RECONCILE_SECONDS)

    async def stop(self) -> None:
        """Cancel rounds and background syncs in progress (the server is stopping)."""
        tasks = list(self._tasks) + [q.task for q in self._queues.values() if q.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _shards_holding(self, snapshot: CatalogSnapshot, ids: Iterable[int]) -> set[str]:
        shards: set[str] = set()
        for account_id in ids:
            for key in snapshot.grants_of(account_id).database_keys:
                database = snapshot.database(key)
                if database is not None:
                    shards.update(database.shards)
        return shards

    async def retire_database(self, database: Database) -> list[str]:
        """``database`` has left the catalog (``shardgate database drop``): on its shard, end
        the connections of its mirrors (and of the all-privileges ``sg_<db>`` account older
        versions made), then drop those accounts -- under the shard's mirror lock, so that no
        round that began before the catalog change can make one again after. The reconciler
        never sees these mirrors once the database is gone (their names carry its keyed hash),
        so this is their one way out. Returns the accounts dropped; raises BackendError,
        BackendQueryError or MirrorError."""
        config = self._config()
        shard = config.shard(database.shard)
        admin = await shard_admin(shard, config.server.backend_connect_timeout)
        try:
            lock = quote_string(self._lock_name(shard.name))
            got = await admin.query(f"SELECT GET_LOCK({lock}, {LOCK_WAIT})")
            if not got.rows or got.rows[0][0] != b"1":
                raise MirrorError(f"another node held the mirror lock for {LOCK_WAIT} s")
            try:
                suffixes = [mirror_suffix(self._secret, database.physical_name)]
                legacy = [database.backend_user]
                users = await admin.query(
                    "SELECT User, Host FROM mysql.user WHERE "
                    + _user_filter("User", suffixes, None, legacy)
                )
                accounts = sorted((_text(user), _text(host)) for user, host in users.rows)
                threads = await admin.query(
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE "
                    + _user_filter("USER", suffixes, None, legacy)
                )
                for (thread,) in threads.rows:
                    # Gone meanwhile: 1094, fine.
                    with contextlib.suppress(BackendQueryError):
                        await admin.query(f"KILL CONNECTION {int(_text(thread))}")
                for user, host in accounts:
                    await admin.query(DropUser(user, host).sql)
            finally:
                with contextlib.suppress(BackendError, BackendQueryError):
                    await admin.query(f"SELECT RELEASE_LOCK({lock})")
        finally:
            await admin.quit()
        return [user for user, _ in accounts]

    # -- rounds -------------------------------------------------------------------------------

    def _request(self, shard: str, ids: frozenset[int] | None) -> asyncio.Future[str | None]:
        """Queue ``ids`` (None: everything) for ``shard``; the future resolves when a round
        covering them is over, with its error (None: done)."""
        queue = self._queues.get(shard)
        if queue is None:
            queue = self._queues[shard] = _Queue()
        if ids is None:
            queue.everything = True
        else:
            queue.ids |= ids
        if queue.waiter is None:
            queue.waiter = asyncio.get_running_loop().create_future()
        waiter = queue.waiter
        if queue.task is None or queue.task.done():
            queue.task = asyncio.get_running_loop().create_task(self._drain(shard, queue))
        return waiter

    async def _drain(self, shard: str, queue: _Queue) -> None:
        while queue.waiter is not None:
            waiter, queue.waiter = queue.waiter, None
            everything, queue.everything = queue.everything, False
            ids, queue.ids = frozenset(queue.ids), set()
            error: str | None = None
            try:
                if everything:
                    await asyncio.wait_for(self._round(shard, None), ROUND_TIMEOUT)
                for chunk in _chunks(sorted(ids), _IDS_PER_ROUND):
                    await asyncio.wait_for(self._round(shard, frozenset(chunk)), ROUND_TIMEOUT)
            except asyncio.CancelledError:
                _resolve(waiter, "cancelled")
                raise
            except (
                BackendError,
                BackendQueryError,
                MirrorError,
                ConfigError,
                CatalogError,
                TimeoutError,
            ) as exc:
                error = f"{exc.__class__.__name__}: {exc}"
            except Exception as exc:  # a bug must not leave waiters hanging
                log.exception("mirror round on shard '%s' failed", shard)
                error = f"{exc.__class__.__name__}: {exc}"
            if error is not None:
                self._dirty.setdefault(shard, set()).update(ids)
                log.warning("mirror sync on shard '%s' failed: %s", shard, error)
            _resolve(waiter, error)

    async def _round(self, name: str, ids: frozenset[int] | None) -> None:
        """One round on one shard, under its lock: ``ids``' mirrors, or (None) all of them."""
        config = self._config()
        shard = config.shard(name)
        admin = await shard_admin(shard, config.server.backend_connect_timeout)
        try:
            lock = quote_string(self._lock_name(shard.name))
            got = await admin.query(f"SELECT GET_LOCK({lock}, {LOCK_WAIT})")
            if not got.rows or got.rows[0][0] != b"1":
                raise MirrorError(f"another node held the mirror lock for {LOCK_WAIT} s")
            try:
                await self._apply_round(admin, shard, ids)
            finally:
                with contextlib.suppress(BackendError, BackendQueryError):
                    await admin.query(f"SELECT RELEASE_LOCK({lock})")
        finally:
            await admin.quit()

    def _lock_name(self, shard: str) -> str:
        digest = hmac.new(self._secret, f"shardgate-mirror-lock:{shard}".encode(), "sha256")
        return "shardgate-mirrors-" + digest.hexdigest()[:24]

    async def _apply_round(
        self, admin: BackendConnection, shard: ShardConfig, ids: frozenset[int] | None
    ) -> None:
        # Inside the lock: the newest catalog, so the last node to apply applies it.
        await asyncio.to_thread(self._catalog.refresh)
        snapshot = self._catalog.snapshot()
        databases = snapshot.databases()
        read_at = self._suspicions  # before reading the shard
        suffixes = sorted(
            {
                mirror_suffix(self._secret, physical.name)
                for db in databases
                for physical in db.physical_databases
                if physical.shard == shard.name
            }
        )
        # The all-privileges accounts of older versions (unsharded databases only).
        legacy = sorted(
            {db.backend_user for db in databases if not db.sharded and db.shard == shard.name}
            if ids is None
            else set()
        )
        found = await _read_accounts(admin, suffixes, ids, legacy)
        actual = {key: account for key, account in found.items() if key[0] not in legacy}
        key = _shard_key(shard)
        if ids is None:
            ids = frozenset(
                {i for user, _ in actual if (i := mirror_account_id(user)) is not None}
                | self._dirty.get(shard.name, set())
                | {account_id for (k, account_id) in self._verified if k == key}
            )
        # Pure, and proportional to the mirrors in the round: off the event loop.
        desired, steps = await asyncio.to_thread(
            self._desired_steps, snapshot, shard.name, ids, actual
        )
        steps += [DropUser(user, host) for user, host in sorted(found) if user in legacy]
        # Mirrors read in step are verified now; those being changed once every step applied.
        changing = {i for step in steps if (i := mirror_account_id(step.user)) is not None}
        self._record(key, [i for i in ids if i not in changing], desired, read_at)
        for account_id in changing:
            self._verified.pop((key, account_id), None)
        for step in steps:
            await _apply(admin, step)
        self._record(key, [i for i in ids if i in changing], desired, read_at)
        self._dirty.get(shard.name, set()).difference_update(ids)
        if steps:
            log.info(
                "shard '%s': %d mirror change(s): %s",
                shard.name,
                len(steps),
                "; ".join(_describe(step) for step in steps[:20]),
            )

    def _record(
        self,
        key: _ShardKey,
        account_ids: Iterable[int],
        desired: Mapping[str, MirrorGrants],
        read_at: int,
    ) -> None:
        """The accounts' mirrors on the shard ``key`` are ``desired`` (theirs among them), as
        read when ``_suspicions`` was ``read_at``; one suspected since (a statement refused
        while the round was under way) is left unverified: what was read may be what the
        refusal proved stale, and the next session to need it has it verified again."""
        held: dict[int, dict[str, MirrorGrants]] = {}
        for want in desired.values():
            held.setdefault(want.account_id, {})[want.database] = want
        suspected = self._suspected
        for account_id in account_ids:
            if suspected.get((key, account_id), 0) > read_at:
                self._verified.pop((key, account_id), None)
            elif account_id in held:
                self._verified[(key, account_id)] = held[account_id]
            else:
                self._verified.pop((key, account_id), None)

    def _desired_steps(
        self,
        snapshot: CatalogSnapshot,
        shard: str,
        ids: Iterable[int],
        actual: Mapping[tuple[str, str], ShardAccount],
    ) -> tuple[dict[str, MirrorGrants], list[Step]]:
        def password_hash(user: str) -> str:
            return native_password_hash(mirror_password(self._secret, shard, user))

        desired = desired_on_shard(snapshot, self._secret, shard, ids)
        return desired, plan(desired, actual, password_hash)


def _physical(database: Database, partition: int | None) -> PhysicalDatabase:
    """Physical database ``partition`` of ``database``; when None, physical database 0 (an
    unsharded database's only one; a sharded database's, where its single tables live: the
    session routes statements on sharded and broadcast tables to their partitions itself,
    proxy/session/sharded.py). BackendError for a partition it does not have."""
    if partition is None:
        return database.physical_databases[0]
    if not 0 <= partition < len(database.physical_databases):
        raise BackendError(f"database '{database.name}' has no partition {partition}")
    return database.physical_databases[partition]


def _mirrors_differ(before: CatalogSnapshot, after: CatalogSnapshot, account_id: int) -> bool:
    """Whether the account's mirrors may differ between the snapshots: its grants changed, or
    a database it holds anything in changed its physical databases or tables (a privilege on
    a logical table covers that table's physical tables)."""
    grants = after.grants_of(account_id)
    if before.grants_of(account_id) != grants:
        return True
    return any(
        before.database(key) != after.database(key) or before.tables(key) != after.tables(key)
        for key in grants.database_keys
    )


def _resolve(waiter: asyncio.Future[str | None], error: str | None) -> None:
    if not waiter.done():
        waiter.set_result(error)


async def _all(waiters: Iterable[asyncio.Future[str | None]]) -> None:
    """Wait for rounds; a caller cancelled meanwhile does not cancel them for the others."""
    await asyncio.gather(*(asyncio.shield(waiter) for waiter in waiters))


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _describe(step: Step) -> str:
    """A step for the log: never a password hash."""
    if isinstance(step, CreateUser | SetPassword):
        return f"{step.__class__.__name__} {step.user}"
    return step.sql


async def _retire(backend: BackendConnection) -> None:
    await backend.quit()
    backend.broken = True


async def _select(backend: BackendConnection, database: str, grants: MirrorGrants | None) -> None:
    """COM_INIT_DB ``database`` on ``backend``, which then holds ``grants``; if the shard
    refuses, the connection is closed (it may still hold the privileges it had)."""
    try:
        answer = await backend.command(b"\x02" + database.encode())
        backend.status = parse_ok_status(answer, backend.capabilities)
    except (BackendError, ProtocolError):  # ProtocolError: an ERR, not an OK
        await _retire(backend)
        return
    backend.target = replace(backend.target, grants=grants)


async def _apply(admin: BackendConnection, step: Step) -> None:
    try:
        await admin.query(step.sql)
    except BackendQueryError as exc:
        if not (isinstance(step, Grant) and step.table is not None and exc.errno == _NO_SUCH_TABLE):
            raise
        # The table was dropped since it was granted (its grant outlives it, as in MySQL) and
        # the mirror is being made again. MariaDB grants on a missing table only together with
        # CREATE: grant with it, then take it back (the mirror holds it only in between, within
        # this lock, for a table that does not exist).
        await admin.query(replace(step, privileges=step.privileges | {"CREATE"}).sql)
        if "CREATE" not in step.privileges:
            await admin.query(
                Revoke(step.user, step.database, step.table, frozenset({"CREATE"})).sql
            )


def _user_filter(
    column: str, suffixes: Collection[str], ids: frozenset[int] | None, legacy: Collection[str]
) -> str:
    """SQL: ``column`` names a mirror of this catalog (of ``ids`` only, unless None) or one of
    the ``legacy`` users."""
    terms = []
    if suffixes:
        term = (
            f"(LEFT({column}, {len(MIRROR_PREFIX)}) = {quote_string(MIRROR_PREFIX)} "
            f"AND RIGHT({column}, 9) IN ({', '.join(map(quote_string, suffixes))})"
        )
        if ids is not None:
            prefixes = ", ".join(quote_string(f"{MIRROR_PREFIX}{i}") for i in sorted(ids))
            term += f" AND SUBSTRING_INDEX({column}, '_', 2) IN ({prefixes})"
        terms.append(term + ")")
    if legacy:
        terms.append(f"{column} IN ({', '.join(map(quote_string, legacy))})")
    return " OR ".join(terms) or "FALSE"


async def _read_accounts(
    admin: BackendConnection,
    suffixes: Collection[str],
    ids: frozenset[int] | None,
    legacy: Collection[str],
) -> dict[tuple[str, str], ShardAccount]:
    """The shard's accounts that ``_user_filter`` selects, with all their grants: four
    queries whatever their number."""

    def where(column: str = "User") -> str:
        return _user_filter(column, suffixes, ids, legacy)

    users = await admin.query(f"SELECT * FROM mysql.user WHERE {where()}")
    if not users.rows:
        empty = QueryResult([], [])
        return shard_accounts(users, empty, empty, empty)
    dbs = await admin.query(f"SELECT * FROM mysql.db WHERE {where()}")
    tables = await admin.query(
        "SELECT Db, User, Host, Table_name, Table_priv, Column_priv FROM mysql.tables_priv "
        f"WHERE {where()}"
    )
    others = [
        f"SELECT User, Host, 'column privileges' FROM mysql.columns_priv WHERE {where()}",
        f"SELECT User, Host, 'routine privileges' FROM mysql.procs_priv WHERE {where()}",
        f"SELECT User, Host, 'proxy privileges' FROM mysql.proxies_priv WHERE {where()}",
    ]
    if "mariadb" in admin.server_version.lower():
        others.append(f"SELECT User, Host, 'roles' FROM mysql.roles_mapping WHERE {where()}")
    else:  # MySQL 8
        others += [
            f"SELECT TO_USER, TO_HOST, 'roles' FROM mysql.role_edges WHERE {where('TO_USER')}",
            f"SELECT USER, HOST, 'dynamic privileges' FROM mysql.global_grants "
            f"WHERE {where('USER')}",
            f"SELECT USER, HOST, 'default roles' FROM mysql.default_roles WHERE {where('USER')}",
        ]
    other = await admin.query(" UNION ALL ".join(others))
    return shard_accounts(users, dbs, tables, other)
