"""Account operations: the ONE implementation of CREATE USER, DROP USER, SET PASSWORD, GRANT,
REVOKE and SHOW GRANTS (PolarDB-X 1.0 semantics, see README.md, "Account semantics"), and of
the CLI / dashboard user management built on the same rules.

Pure logic over the catalog: no network I/O, and no dependency on ``proxy`` (callers translate
their parsed statements into plain values). Every operation

1. refreshes the catalog and takes a snapshot,
2. validates the WHOLE request against it (raising ``SqlError`` before anything changes),
3. applies every change in ONE ``Catalog.apply`` call (all or nothing) with ``expected_version``
   set to the validated snapshot's version, retrying from step 1 if another writer got there
   first (``CatalogConflictError``).

Steps 1-3 of every changing operation run under one lock per ``Catalog`` object, so writers in
the same process (the proxy's sessions) take turns instead of invalidating each other's
snapshots: many concurrent, unrelated statements all succeed. Only writers in other processes
(the CLI on the same catalog file) can still cause a retry.

The catalog audits each applied change (actor ``'user'@'host'`` or ``operator``, the caller's IP,
and an action text built from names only, never from a password).

Order of checks (the first failing one is reported), the same in every operation:

1. who: only administrators (and the operator) manage accounts → TDDL-5107 restricted;
2. level (GRANT / REVOKE): ``*.*`` → TDDL-5107 global; routine → TDDL-5101; no database
   (``t`` or ``*`` without a current database) → 1046; another database than the administrator's
   → TDDL-5106; an unknown database (operator only) → 1049;
3. privileges, in the order written: not one of the eight / ALL, or with columns → TDDL-5101;
   ``GRANT OPTION`` (in the list or as ``WITH GRANT OPTION``) in a GRANT → TDDL-5107;
4. each account in the order written, checks that need no account state: a protected
   (built-in) user name → TDDL-5107; the name rule when the statement always creates (CREATE
   USER) → TDDL-5202; the host rule → TDDL-5109; the password rule when a password is given →
   TDDL-5203;
5. each account in the order written, against the catalog: existence, ownership (of the
   account, and of its user name when it would be created), grants held
   (1396 / 3162 / 3163 / 1133 / 1141 / 1147 / TDDL-5104; a GRANT that creates an account checks
   the name rule, TDDL-5202, here);
6. table existence for a table-level GRANT → 1146.

Decisions where the semantics page is silent (each has a test):

* An administrator manages (drops, sets the password of) only accounts its database owns. An
  existing account owned by another database (or by none) gets the error a missing account gets:
  DROP USER → 1396 ``Operation DROP USER failed for ...`` (also with ``IF EXISTS``: the account
  exists, the drop failed), SET PASSWORD FOR → 1133, and GRANT ... IDENTIFIED BY on it (a
  password change) → 1133. MySQL's per-account failure errors fit (TDDL-5107 "restricted to
  administrator" would be false for an administrator, TDDL-5106 is about granting on a database).
* A protected account's password change by SQL → TDDL-5107 ``Changes to system account <u>
  privileges are not allowed.``; CREATE USER / DROP USER of a built-in name → ``Creating or
  dropping system account <u> is not allowed.``; GRANT / REVOKE → ``Changes to ...``.
* REVOKE ON ``db.*`` fails with 1141 only when the account holds nothing at all in that database;
  if it holds only table-level grants there, the privileges are removed from them (higher level
  wins). REVOKE ALL PRIVILEGES, GRANT OPTION on an existing account that holds nothing succeeds.
* ``GRANT OPTION`` named in a REVOKE privilege list is accepted and removes nothing (nobody holds
  it); in a GRANT list it is TDDL-5107 like ``WITH GRANT OPTION``.
* Column-level privileges → TDDL-5101 ``Unsupported privilege 'SELECT (a, b)'.``; a routine level
  → TDDL-5101 naming the first privilege.
* Hosts are validated (TDDL-5109) wherever an account is named, and stored and looked up in the
  form ``normalize_host_pattern`` gives; messages show that form.
* Dual passwords (MySQL 8): ``SET PASSWORD ... RETAIN CURRENT PASSWORD`` makes the current
  password the secondary (replacing any earlier one); a change without it keeps an existing
  secondary (as MySQL does); retaining an empty password (or setting an empty one while
  retaining) → 3878 ``Empty password can not be retained as second password for user
  'u'@'h'.``; an empty new password drops the secondary. ``ALTER USER u DISCARD OLD PASSWORD``
  has exactly the permissions of ``SET PASSWORD FOR u`` (self, or the owning administrator; a
  protected account → TDDL-5107, someone else's → 1133) and succeeds when nothing is retained.
  The operator's reset of a built-in's password drops any secondary.
* SHOW GRANTS FOR / SET PASSWORD FOR the caller's own account (same user, same host pattern)
  are the caller's own, allowed to anyone.
* The operator (``Actor.account is None``) may do everything on any database (unknown ones →
  1049); accounts it creates by ``create_users`` are owned by ``Actor.current_db`` if set
  (GRANT ... IDENTIFIED BY: by the database granted on, as for an administrator);
  its REVOKE ALL applies to ``Actor.current_db`` if set, else to every database; its SHOW GRANTS
  FOR shows every database.
* The 1133 error uses MySQL's SQLSTATE 42000 (ER_PASSWORD_NO_MATCH); ``auth.errors`` lists
  28000 for it.
* ``ALTER USER u, ... [WITH MAX_USER_CONNECTIONS n] [ACCOUNT UNLOCK]`` (issue #7): only the
  administrator of the database owning each account; a built-in → TDDL-5107 ``Changes to system
  account ...``; a missing account or another database's → 1396 ``Operation ALTER USER failed
  for ...`` (MySQL's error for ALTER USER). ``GRANT ... WITH MAX_USER_CONNECTIONS n`` on an
  account another database owns → 1133, as GRANT ... IDENTIFIED BY. The operator's CLI unlock
  also unlocks built-ins. Every password change also unlocks (``auth.catalog``).
* **A user name belongs to one database** (README, "Who may do what"): the database whose
  administrator first created an account with that name (or whose built-in account it is).
  Creating an account with a name another database owns (or that an account owned by no
  database holds), at any host, fails as if that account existed: CREATE USER → 1396
  ``Operation CREATE USER failed for 'u'@'h'`` (named with the statement's other failing
  accounts; all or nothing); CREATE USER IF NOT EXISTS → OK with note 3163 ``Authorization ID
  'u'@'h' already exists.`` and nothing created (MySQL's answer for an existing account);
  GRANT ... IDENTIFIED BY that would create it → 1133 (what GRANT ... IDENTIFIED BY gives for an
  existing account another database owns); the CLI / dashboard creation →
  1396 (shown as "already exists"). The operator is held to the same rule (the new account's
  owning database decides). GRANT without IDENTIFIED BY to existing accounts of other databases
  is unchanged (the seed's multi-database accounts).
* Conflicts that persist after ``MAX_ATTEMPTS`` → 1213 (SQLSTATE 40001) "Deadlock found when
  trying to get lock; try restarting transaction".
* While the catalog cannot be reached, every change fails with ``CatalogUnavailableError``
  (nothing changed; ``CatalogOutcomeUnknownError`` when COMMIT went unconfirmed), and SHOW GRANTS
  and the user listing answer from the last snapshot -- the one logins and statements are
  checked against meanwhile.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from auth.catalog import (
    Catalog,
    CatalogConflictError,
    CatalogError,
    CatalogSnapshot,
    CatalogUnavailableError,
)
from auth.errors import (
    ErrorCode,
    SqlError,
    no_database_selected,
    restricted_to_admin,
    sql_error,
    unknown_database,
)
from auth.hosts import normalize_host_pattern, validate_host_pattern
from auth.model import (
    Account,
    AccountRef,
    Builtin,
    Change,
    CreateAccount,
    Database,
    DiscardOldPassword,
    DropAccount,
    SetMaxUserConnections,
    SetPassword,
    SetPrivileges,
    UnlockAccount,
    UserHost,
    account_name,
)
from auth.policy import PolicyProfile
from auth.privileges import ALL_PRIVILEGES, NO_PRIVILEGES, Priv, format_privs, priv_from_name

__all__ = [
    "MAX_ATTEMPTS",
    "AccountManager",
    "AccountName",
    "Actor",
    "Outcome",
    "PrivilegeSpec",
    "UserInfo",
    "UserSpec",
]

# Attempts of one operation when other writers keep moving the catalog.
MAX_ATTEMPTS = 5
OPERATOR = "operator"

PrivilegeSpec = tuple[str, tuple[str, ...]]
"""A privilege as written, upper case (``SELECT``, ``ALL``, ``CREATE VIEW``, ``GRANT OPTION``),
with its column list (empty unless column-level)."""


# --------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class AccountName:
    """An account as a statement names it; ``user`` alone means ``user@'%'``."""

    user: str
    host: str = "%"

    def __str__(self) -> str:
        return account_name(self.user, self.host)


UserSpec = tuple[AccountName, str | None]
"""An account with its optional ``IDENTIFIED BY`` password."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks. ``account`` None is the platform operator (CLI, dashboard operator paths)."""

    account: Account | None
    client_ip: str = ""
    current_db: str | None = None

    @classmethod
    def operator(cls, current_db: str | None = None, client_ip: str = "") -> Actor:
        return cls(None, client_ip, current_db)

    @property
    def is_operator(self) -> bool:
        return self.account is None

    @property
    def audit_name(self) -> str:
        return OPERATOR if self.account is None else self.account.name


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of a statement that succeeded.

    ``notes``: (code, message) notes for the client (3162 / 3163). ``affected``: the affected
    rows to report (MySQL reports 0 for account statements). ``catalog_version``: the version
    the change produced, None if nothing changed. ``generated_passwords``: passwords made for
    CREATE USER without IDENTIFIED BY under a profile that generates them (shown once, never
    logged).
    """

    notes: tuple[tuple[int, str], ...] = ()
    affected: int = 0
    catalog_version: int | None = None
    generated_passwords: tuple[tuple[AccountName, str], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class UserInfo:
    """One row of a database's user list (CLI / dashboard)."""

    user: str
    host: str
    read_only: bool  # holds exactly SELECT on the database (at database and table levels)
    protected: bool
    owner_db: str | None


# --------------------------------------------------------------------------------------- errors

NOTE_USER_ALREADY_EXISTS = ErrorCode.USER_ALREADY_EXISTS.errno  # 3163
NOTE_USER_DOES_NOT_EXIST = ErrorCode.USER_DOES_NOT_EXIST.errno  # 3162


def _cannot_user(operation: str, names: Sequence[str]) -> SqlError:
    return sql_error(ErrorCode.CANNOT_USER, f"Operation {operation} failed for {','.join(names)}")


def _empty_not_retained(user: str, host: str) -> SqlError:
    return sql_error(
        ErrorCode.SECOND_PASSWORD_CANNOT_BE_EMPTY,
        f"Empty password can not be retained as second password for user '{user}'@'{host}'.",
    )


def _password_no_match() -> SqlError:
    # MySQL's ER_PASSWORD_NO_MATCH is SQLSTATE 42000 (auth.errors lists 28000).
    return SqlError(
        ErrorCode.PASSWORD_NO_MATCH.errno, "42000", "Can't find any matching row in the user table"
    )


def _conflict() -> SqlError:
    # ER_LOCK_DEADLOCK: not in auth.errors.ErrorCode.
    return SqlError(
        1213, "40001", "Deadlock found when trying to get lock; try restarting transaction"
    )


def _no_such_grant(user: str, host: str) -> SqlError:
    return sql_error(
        ErrorCode.NONEXISTING_GRANT,
        f"There is no such grant defined for user '{user}' on host '{host}'",
    )


def _no_such_table_grant(user: str, host: str, table: str) -> SqlError:
    return sql_error(
        ErrorCode.NONEXISTING_TABLE_GRANT,
        f"There is no such grant defined for user '{user}' on host '{host}' on table '{table}'",
    )


def _no_such_table(db: str, table: str) -> SqlError:
    return sql_error(ErrorCode.NO_SUCH_TABLE, f"Table '{db}.{table}' doesn't exist")


def _not_allowed(text: str) -> SqlError:
    return sql_error(ErrorCode.TDDL_OPERATION_NOT_ALLOWED, text)


def _system_create_drop(user: str) -> SqlError:
    return _not_allowed(f"Creating or dropping system account {user} is not allowed.")


def _system_change(user: str) -> SqlError:
    return _not_allowed(f"Changes to system account {user} privileges are not allowed.")


def _global_not_allowed() -> SqlError:
    return _not_allowed("Global authorization is not allowed.")


def _grant_option_not_allowed() -> SqlError:
    return _not_allowed("Authorizing 'GRANT OPTION' is not allowed.")


def _unsupported_privilege(privilege: str) -> SqlError:
    return sql_error(ErrorCode.TDDL_UNSUPPORTED_PRIVILEGE, f"Unsupported privilege '{privilege}'.")


def _user_not_exists(user: str) -> SqlError:
    return sql_error(
        ErrorCode.TDDL_USER_NOT_EXISTS, f"User '{user}' does not exist. Please create user first."
    )


def _other_database(target: str, admin: Account, own: str) -> SqlError:
    return sql_error(
        ErrorCode.TDDL_NO_ACCESS_TO_DATABASE,
        f"Granting privileges to database '{target}' is not allowed. "
        f"User {admin.user}@'{admin.host}' can only access database '{own}'.",
    )


# --------------------------------------------------------------------------------------- helpers


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _privilege_text(name: str, columns: tuple[str, ...]) -> str:
    words = " ".join(name.upper().split())
    return f"{words} ({', '.join(columns)})" if columns else words


def _parse_privileges(privileges: Sequence[PrivilegeSpec], *, granting: bool) -> Priv:
    """The set named (TDDL-5101 for anything but the eight / ALL; GRANT OPTION: TDDL-5107 when
    granting, nothing when revoking)."""
    result = NO_PRIVILEGES
    for name, columns in privileges:
        text = _privilege_text(name, columns)
        if columns:
            raise _unsupported_privilege(text)
        if text in ("ALL", "ALL PRIVILEGES"):
            result |= ALL_PRIVILEGES
        elif text == "GRANT OPTION":
            if granting:
                raise _grant_option_not_allowed()
        else:
            priv = priv_from_name(text)
            if priv is None:
                raise _unsupported_privilege(text)
            result |= priv
    return result


def _builtin_named(snapshot: CatalogSnapshot, user: str) -> bool:
    """Whether ``user`` is the (reserved) name of a built-in account."""
    return any(a.builtin is not None for a in snapshot.accounts_named(user))


def _name_taken(snapshot: CatalogSnapshot, user: str, owner: str | None) -> bool:
    """Whether the user name ``user`` belongs to another database than ``owner``: some account
    with that name (any host) is owned by another database, or by none.

    A user name belongs to the database whose administrator first created an account with it
    (or whose built-in account it is); since only that database may add accounts with the name
    afterwards, "every account with the name is owned by ``owner``" is the same rule, and it
    also refuses a name whose accounts a catalog from before the rule split between databases.
    Without it one tenant could capture another's logins through the host-precedence rule
    (``bobby@'127.0.0.1'`` is chosen over ``bobby@'%'`` for a login from 127.0.0.1).
    """
    for account in snapshot.accounts_named(user):
        if account.owner_db is None or owner is None:
            if account.owner_db != owner:
                return True
        elif not _same_db(account.owner_db, owner):
            return True
    return False


def _host(host: str) -> str:
    """TDDL-5109 unless valid; the stored spelling."""
    validate_host_pattern(host)
    return normalize_host_pattern(host)


def _owned_by(work: _Work, user: str, host: str, database: str, not_owned: SqlError) -> _State:
    """The account ``user@host`` in ``work``, which ``database`` must own; else ``not_owned``."""
    state = work.lookup(user, host)
    if state is None or not _same_db(state.owner_db, database):
        raise not_owned
    return state


def _same_db(left: str | None, right: str | None) -> bool:
    return left is not None and right is not None and left.lower() == right.lower()


def _held_in(
    db_privs: Mapping[str, Priv], table_privs: Mapping[tuple[str, str], Priv], key: str
) -> Priv:
    """Everything held in database ``key``, at either level."""
    held = db_privs.get(key, NO_PRIVILEGES)
    for (db, _), privs in table_privs.items():
        if db == key:
            held |= privs
    return held


# --------------------------------------------------------------------------------------- planning


@dataclass(slots=True)
class _State:
    """An account as the statement being planned sees it (after its earlier changes)."""

    user: str
    host: str
    ref: AccountRef
    owner_db: str | None
    builtin: Builtin | None
    db_privs: dict[str, Priv]
    table_privs: dict[tuple[str, str], Priv]

    @property
    def name(self) -> str:
        return account_name(self.user, self.host)


class _Work:
    """A snapshot plus the changes planned so far; lookups see those changes."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self.snapshot = snapshot
        self.changes: list[Change] = []
        self._states: dict[tuple[str, str], _State | None] = {}

    def lookup(self, user: str, host: str) -> _State | None:
        key = (user, host)
        if key in self._states:
            return self._states[key]
        account = self.snapshot.find_account(user, host)
        state = None
        if account is not None:
            held = self.snapshot.grants_of(account.id)
            state = _State(
                account.user,
                account.host,
                account.id,
                account.owner_db,
                account.builtin,
                dict(held.db_privs),
                dict(held.table_privs),
            )
        self._states[key] = state
        return state

    def create(self, user: str, host: str, password: str, owner_db: str | None) -> _State:
        self.changes.append(CreateAccount(user, host, password, owner_db))
        state = _State(user, host, UserHost(user, host), owner_db, None, {}, {})
        self._states[(user, host)] = state
        return state

    def drop(self, state: _State) -> None:
        self.changes.append(DropAccount(state.ref))
        self._states[(state.user, state.host)] = None

    def set_password(self, state: _State, password: str, retain_current: bool = False) -> None:
        if retain_current:
            account = self.snapshot.find_account(state.user, state.host)
            if account is None or not account.has_password or not password:
                raise _empty_not_retained(state.user, state.host)
        self.changes.append(SetPassword(state.ref, password, retain_current))

    def discard_old_password(self, state: _State) -> None:
        self.changes.append(DiscardOldPassword(state.ref))

    def unlock(self, state: _State) -> None:
        self.changes.append(UnlockAccount(state.ref))

    def set_max_user_connections(self, state: _State, limit: int) -> None:
        self.changes.append(SetMaxUserConnections(state.ref, limit))

    def set_db_privs(self, state: _State, db: str, privs: Priv) -> None:
        if state.db_privs.get(db, NO_PRIVILEGES) == privs:
            return
        if privs:
            state.db_privs[db] = privs
        else:
            del state.db_privs[db]
        self.changes.append(SetPrivileges(state.ref, db, None, privs))

    def set_table_privs(self, state: _State, db: str, table: str, privs: Priv) -> None:
        key = (db, table)
        if state.table_privs.get(key, NO_PRIVILEGES) == privs:
            return
        if privs:
            state.table_privs[key] = privs
        else:
            del state.table_privs[key]
        self.changes.append(SetPrivileges(state.ref, db, table, privs))

    def tables_in(self, state: _State, db: str) -> list[tuple[str, Priv]]:
        return sorted((t, p) for (d, t), p in state.table_privs.items() if d == db)


@dataclass(slots=True)
class _Plan:
    work: _Work
    action: str
    notes: list[tuple[int, str]] = field(default_factory=list)
    generated: list[tuple[AccountName, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Caller:
    """A caller allowed to manage accounts: the operator (``admin`` None, any database) or the
    administrator of ``db``."""

    admin: Account | None
    db: str | None  # the administrator's database (canonical spelling)

    def owns(self, state: _State) -> bool:
        return self.admin is None or _same_db(state.owner_db, self.db)


@dataclass(frozen=True, slots=True)
class _Level:
    """Where a GRANT / REVOKE applies."""

    db: str  # as written (or the current database)
    database: Database
    table: str | None  # as written
    table_key: str | None  # lower case

    @property
    def key(self) -> str:
        return self.database.key

    @property
    def target(self) -> str:
        if self.table_key is None:
            return f"{_quote(self.key)}.*"
        return f"{_quote(self.key)}.{_quote(self.table_key)}"


# --------------------------------------------------------------------------------------- manager

# One writer lock per Catalog object, shared by every AccountManager over it.
_WRITE_LOCKS: weakref.WeakKeyDictionary[Catalog, threading.Lock] = weakref.WeakKeyDictionary()
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(catalog: Catalog) -> threading.Lock:
    with _WRITE_LOCKS_GUARD:
        lock = _WRITE_LOCKS.get(catalog)
        if lock is None:
            lock = _WRITE_LOCKS[catalog] = threading.Lock()
        return lock


class AccountManager:
    """Account operations over one catalog, under one policy profile. Thread-safe (stateless
    besides the catalog); every method blocks on the catalog (run it in a worker thread from
    asyncio)."""

    def __init__(self, catalog: Catalog, policy: PolicyProfile) -> None:
        self._catalog = catalog
        self._policy = policy
        self._write_lock = _write_lock(catalog)

    @property
    def policy(self) -> PolicyProfile:
        return self._policy

    @property
    def catalog(self) -> Catalog:
        """The catalog (sharded DDL records logical tables in it)."""
        return self._catalog

    # ------------------------------------------------------------------ running

    def _snapshot(self) -> CatalogSnapshot:
        self._catalog.refresh()
        return self._catalog.snapshot()

    def _readable_snapshot(self) -> CatalogSnapshot:
        """For answers that change nothing: the newest snapshot, or while the catalog cannot
        be read the last one -- the one the proxy checks logins and statements against."""
        try:
            self._catalog.refresh()
        except CatalogUnavailableError:
            pass
        return self._catalog.snapshot()

    def _run(
        self, actor: Actor, planner: Callable[[CatalogSnapshot], _Plan]
    ) -> tuple[_Plan, int | None]:
        """Validate against a fresh snapshot and apply all changes at once; retry on conflict.
        Returns the plan and the catalog version it produced (None if nothing changed).

        Serialized with the other writers of this process (see the module docstring); one
        that waited while the catalog failed the writer ahead of it fails the same way at once
        (``Catalog.check_available_since``)."""
        started = time.monotonic()
        with self._write_lock:
            self._catalog.check_available_since(started)
            return self._run_locked(actor, planner)

    def _run_locked(
        self, actor: Actor, planner: Callable[[CatalogSnapshot], _Plan]
    ) -> tuple[_Plan, int | None]:
        for _ in range(MAX_ATTEMPTS):
            snapshot = self._snapshot()
            plan = planner(snapshot)
            changes = plan.work.changes
            if not changes:
                return plan, None
            try:
                self._catalog.apply(
                    changes,
                    actor.audit_name,
                    actor.client_ip,
                    plan.action,
                    expected_version=snapshot.version,
                )
            except CatalogConflictError:
                continue
            return plan, snapshot.version + 1
        raise _conflict()

    def _outcome(self, actor: Actor, planner: Callable[[CatalogSnapshot], _Plan]) -> Outcome:
        plan, version = self._run(actor, planner)
        return Outcome(
            notes=tuple(plan.notes),
            catalog_version=version,
            generated_passwords=tuple(plan.generated),
        )

    # ------------------------------------------------------------------ who

    @staticmethod
    def _me(snapshot: CatalogSnapshot, actor: Actor) -> Account | None:
        """The caller's account as the snapshot has it (None if dropped meanwhile)."""
        if actor.account is None:
            return None
        return snapshot.account(actor.account.id)

    def _caller(self, snapshot: CatalogSnapshot, actor: Actor) -> _Caller:
        """TDDL-5107 unless the caller is the operator or an administrator."""
        if actor.account is None:
            return _Caller(None, None)
        me = self._me(snapshot, actor)
        administered = None if me is None else me.administered_database
        if me is None or administered is None:
            raise restricted_to_admin()
        database = snapshot.database(administered)
        return _Caller(me, database.name if database is not None else administered)

    def _is_self(self, snapshot: CatalogSnapshot, actor: Actor, target: AccountName) -> bool:
        me = self._me(snapshot, actor)
        if me is None or target.user != me.user:
            return False
        try:
            return _host(target.host) == me.host
        except SqlError:
            return False

    def _database(self, snapshot: CatalogSnapshot, caller: _Caller, name: str) -> Database:
        """The database ``name`` the caller may work on: TDDL-5106 for an administrator's
        other database (checked before existence, so other names do not leak), 1049 unknown."""
        if caller.admin is not None and not _same_db(name, caller.db):
            raise _other_database(name, caller.admin, caller.db or "")
        database = snapshot.database(name)
        if database is None:
            raise unknown_database(name)
        return database

    def _manager_of(self, snapshot: CatalogSnapshot, actor: Actor, database: str) -> Database:
        """CLI / dashboard: the operator, or the administrator of ``database``."""
        return self._database(snapshot, self._caller(snapshot, actor), database)

    def _new_owner(self, snapshot: CatalogSnapshot, caller: _Caller, actor: Actor) -> str | None:
        """Owner of accounts CREATE USER makes: the administrator's database; for the operator,
        its current database if any (1049 if unknown)."""
        if caller.admin is not None:
            return caller.db
        if actor.current_db is None:
            return None
        return self._database(snapshot, caller, actor.current_db).name

    # ------------------------------------------------------------------ levels

    def _level(
        self,
        snapshot: CatalogSnapshot,
        caller: _Caller,
        actor: Actor,
        privileges: Sequence[PrivilegeSpec],
        db: str | None,
        table: str | None,
        is_global: bool,
        routine: bool,
    ) -> _Level:
        if is_global:
            raise _global_not_allowed()
        if routine:
            first = privileges[0] if privileges else ("EXECUTE", ())
            raise _unsupported_privilege(_privilege_text(*first))
        name = db if db is not None else actor.current_db
        if name is None:
            raise no_database_selected()
        database = self._database(snapshot, caller, name)
        return _Level(name, database, table, None if table is None else table.lower())

    # ------------------------------------------------------------------ CREATE USER

    def create_users(
        self,
        actor: Actor,
        users: Sequence[UserSpec],
        if_not_exists: bool = False,
        max_user_connections: int | None = None,
    ) -> Outcome:
        """``CREATE USER [IF NOT EXISTS] u [IDENTIFIED BY 'p'], ... [WITH MAX_USER_CONNECTIONS
        n]`` (the limit applies to every account created; an existing one is left as it is)."""

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            caller = self._caller(snapshot, actor)
            specs = [self._new_account_checks(snapshot, name, password) for name, password in users]
            owner = self._new_owner(snapshot, caller, actor)
            work = _Work(snapshot)
            result = _Plan(work, self._action("CREATE USER", specs, if_not_exists, "IF NOT EXISTS"))
            failed: list[str] = []
            for user, host, password in specs:
                name = account_name(user, host)
                # A name another database owns fails as if the account existed.
                if work.lookup(user, host) is not None or _name_taken(snapshot, user, owner):
                    if not if_not_exists:
                        failed.append(name)
                    else:
                        result.notes.append(
                            (NOTE_USER_ALREADY_EXISTS, f"Authorization ID {name} already exists.")
                        )
                    continue
                if password is None:
                    if self._policy.empty_password_allowed_on_create:
                        password = ""
                    else:
                        password = self._policy.generate_password()
                        result.generated.append((AccountName(user, host), password))
                state = work.create(user, host, password, owner)
                if max_user_connections:
                    work.set_max_user_connections(state, max_user_connections)
            if failed:
                raise _cannot_user("CREATE USER", failed)
            if max_user_connections is not None:
                result.action += f" WITH MAX_USER_CONNECTIONS {max_user_connections}"
            return result

        return self._outcome(actor, plan)

    def _new_account_checks(
        self, snapshot: CatalogSnapshot, name: AccountName, password: str | None
    ) -> tuple[str, str, str | None]:
        """An account about to be created: built-in name, name, host and password rules."""
        if _builtin_named(snapshot, name.user):
            raise _system_create_drop(name.user)
        self._policy.validate_username(name.user)
        host = _host(name.host)
        if password is not None:
            self._policy.validate_password(password)
        return name.user, host, password

    @staticmethod
    def _action(
        verb: str, specs: Sequence[tuple[str, str, object]], flag: bool, flag_text: str
    ) -> str:
        names = ", ".join(account_name(user, host) for user, host, _ in specs)
        return f"{verb} {flag_text} {names}" if flag else f"{verb} {names}"

    # ------------------------------------------------------------------ DROP USER

    def drop_users(
        self, actor: Actor, users: Sequence[AccountName], if_exists: bool = False
    ) -> Outcome:
        """``DROP USER [IF EXISTS] u, ...``: only accounts the administrator's database owns."""

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            caller = self._caller(snapshot, actor)
            specs: list[tuple[str, str, None]] = []
            for named in users:
                if _builtin_named(snapshot, named.user):
                    raise _system_create_drop(named.user)
                specs.append((named.user, _host(named.host), None))
            work = _Work(snapshot)
            result = _Plan(work, self._action("DROP USER", specs, if_exists, "IF EXISTS"))
            failed: list[str] = []
            for user, host, _ in specs:
                name = account_name(user, host)
                state = work.lookup(user, host)
                if state is None:
                    if not if_exists:
                        failed.append(name)
                    else:
                        result.notes.append(
                            (NOTE_USER_DOES_NOT_EXIST, f"Authorization ID {name} does not exist.")
                        )
                elif not caller.owns(state):
                    # Exists but another database owns it: the drop fails (even IF EXISTS).
                    failed.append(name)
                else:
                    work.drop(state)
            if failed:
                raise _cannot_user("DROP USER", failed)
            return result

        return self._outcome(actor, plan)

    # ------------------------------------------------------------------ SET PASSWORD

    def set_password(
        self,
        actor: Actor,
        target: AccountName | None,
        password: str,
        retain_current: bool = False,
    ) -> Outcome:
        """``SET PASSWORD [FOR u] = ... [RETAIN CURRENT PASSWORD]``; ``target`` None (or the
        caller's own account) is the caller's own password."""
        return self._password_change(actor, target, password, retain_current)

    def discard_old_password(self, actor: Actor, target: AccountName | None) -> Outcome:
        """``ALTER USER u DISCARD OLD PASSWORD``: the same permission as SET PASSWORD FOR u;
        succeeds (changing nothing) when no old password is retained."""
        return self._password_change(actor, target, None, False)

    def _password_change(
        self,
        actor: Actor,
        target: AccountName | None,
        password: str | None,
        retain_current: bool,
    ) -> Outcome:
        """SET PASSWORD (``password`` given) or DISCARD OLD PASSWORD (``password`` None)."""

        def change(work: _Work, state: _State) -> None:
            if password is None:
                work.discard_old_password(state)
            else:
                work.set_password(state, password, retain_current)

        verb = "SET PASSWORD" if password is not None else "ALTER USER"

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            work = _Work(snapshot)
            if target is None or self._is_self(snapshot, actor, target):
                if actor.account is None:
                    raise ValueError("the operator has no password of its own")
                me = self._me(snapshot, actor)
                if me is None:
                    raise _password_no_match()
                if me.protected:
                    raise _system_change(me.user)
                if password is not None:
                    self._policy.validate_password(password)
                state = work.lookup(me.user, me.host)
                assert state is not None
                change(work, state)
                return _Plan(work, verb if password is not None else f"{verb} {state.name}")
            caller = self._caller(snapshot, actor)
            if _builtin_named(snapshot, target.user):
                raise _system_change(target.user)
            host = _host(target.host)
            if password is not None:
                self._policy.validate_password(password)
            state = work.lookup(target.user, host)
            if state is None or not caller.owns(state):
                raise _password_no_match()
            change(work, state)
            return _Plan(
                work, f"{verb} FOR {state.name}" if password is not None else f"{verb} {state.name}"
            )

        return self._outcome(actor, plan)

    # ------------------------------------------------------------------ ALTER USER

    def alter_users(
        self,
        actor: Actor,
        users: Sequence[AccountName],
        max_user_connections: int | None = None,
        unlock: bool = False,
    ) -> Outcome:
        """``ALTER USER u [, u] ... [WITH MAX_USER_CONNECTIONS n] [ACCOUNT UNLOCK]``.

        Who: the administrator of the database that owns each account (as DROP USER); anyone
        else → TDDL-5107 restricted; a built-in account → TDDL-5107 ``Changes to system account
        ...`` (the operator unlocks built-ins with the CLI, or a password reset unlocks them); a
        missing account or one another database owns → 1396 ``Operation ALTER USER failed for
        ...`` (MySQL's error for ALTER USER on a missing account), all named at once.
        """

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            caller = self._caller(snapshot, actor)
            specs = self._change_checks(snapshot, users)
            work = _Work(snapshot)
            failed: list[str] = []
            states: list[_State] = []
            for user, host in specs:
                state = work.lookup(user, host)
                if state is None or not caller.owns(state):
                    failed.append(account_name(user, host))
                else:
                    states.append(state)
            if failed:
                raise _cannot_user("ALTER USER", failed)
            for state in states:
                if max_user_connections is not None:
                    work.set_max_user_connections(state, max_user_connections)
                if unlock:
                    work.unlock(state)
            action = "ALTER USER " + ", ".join(account_name(u, h) for u, h in specs)
            if max_user_connections is not None:
                action += f" WITH MAX_USER_CONNECTIONS {max_user_connections}"
            if unlock:
                action += " ACCOUNT UNLOCK"
            return _Plan(work, action)

        return self._outcome(actor, plan)

    # ------------------------------------------------------------------ GRANT

    def grant(
        self,
        actor: Actor,
        privileges: Sequence[PrivilegeSpec],
        db: str | None,
        table: str | None,
        is_global: bool,
        routine: bool,
        users: Sequence[UserSpec],
        with_grant_option: bool = False,
        table_exists: bool | None = None,
        max_user_connections: int | None = None,
    ) -> Outcome:
        """``GRANT privs ON level TO u [IDENTIFIED BY 'p'], ... [WITH GRANT OPTION]``.

        ``db``/``table``/``is_global`` as parsed (``db.*``: (db, None); ``db.t``: (db, t);
        ``t``: (None, t); ``*``: (None, None); ``*.*``: is_global). ``table_exists``: whether
        the proxy found the table on the shard (required for a table-level grant).
        """

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            caller = self._caller(snapshot, actor)
            level = self._level(snapshot, caller, actor, privileges, db, table, is_global, routine)
            privs = _parse_privileges(privileges, granting=True)
            if with_grant_option:
                raise _grant_option_not_allowed()
            specs: list[tuple[str, str, str | None]] = []
            for name, password in users:
                if _builtin_named(snapshot, name.user):
                    raise _system_change(name.user)
                host = _host(name.host)
                if password is not None:
                    self._policy.validate_password(password)
                specs.append((name.user, host, password))
            # An account created here belongs to the database granted on.
            owner = level.database.name
            work = _Work(snapshot)
            targets: list[_State] = []
            for user, host, password in specs:
                state = work.lookup(user, host)
                if state is None:
                    if password is None:
                        raise _user_not_exists(user)
                    self._policy.validate_username(user)
                    if _name_taken(snapshot, user, owner):
                        # As if the account existed, owned by another database.
                        raise _password_no_match()
                    state = work.create(user, host, password, owner)
                elif password is not None:
                    if not caller.owns(state):
                        raise _password_no_match()
                    work.set_password(state, password)
                targets.append(state)
            if level.table is not None:
                if table_exists is None:
                    raise ValueError("a table-level GRANT needs table_exists")
                if not table_exists:
                    raise _no_such_table(level.db, level.table)
            if max_user_connections is not None:
                # A property of the account, like its password: only of accounts one owns.
                for state in targets:
                    if not caller.owns(state):
                        raise _password_no_match()
            for state in targets:
                self._add(work, state, level, privs)
                if max_user_connections is not None:
                    work.set_max_user_connections(state, max_user_connections)
            names = ", ".join(account_name(u, h) for u, h, _ in specs)
            action = f"GRANT {self._privs_text(privileges)} ON {level.target} TO {names}"
            if max_user_connections is not None:
                action += f" WITH MAX_USER_CONNECTIONS {max_user_connections}"
            return _Plan(work, action)

        return self._outcome(actor, plan)

    @staticmethod
    def _privs_text(privileges: Sequence[PrivilegeSpec]) -> str:
        return ", ".join(_privilege_text(name, columns) for name, columns in privileges)

    @staticmethod
    def _add(work: _Work, state: _State, level: _Level, privs: Priv) -> None:
        """Grant ``privs`` at ``level``; the higher level wins."""
        on_db = state.db_privs.get(level.key, NO_PRIVILEGES)
        if level.table_key is None:
            on_db |= privs
            work.set_db_privs(state, level.key, on_db)
            for table, held in work.tables_in(state, level.key):
                work.set_table_privs(state, level.key, table, held & ~on_db)
        else:
            held = state.table_privs.get((level.key, level.table_key), NO_PRIVILEGES)
            work.set_table_privs(state, level.key, level.table_key, held | (privs & ~on_db))

    # ------------------------------------------------------------------ REVOKE

    def revoke(
        self,
        actor: Actor,
        privileges: Sequence[PrivilegeSpec],
        db: str | None,
        table: str | None,
        is_global: bool,
        routine: bool,
        users: Sequence[AccountName],
    ) -> Outcome:
        """``REVOKE privs ON level FROM u, ...``; REVOKE on ``db.*`` also removes the privileges
        from the table-level grants in db."""

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            caller = self._caller(snapshot, actor)
            level = self._level(snapshot, caller, actor, privileges, db, table, is_global, routine)
            privs = _parse_privileges(privileges, granting=False)
            specs = self._change_checks(snapshot, users)
            work = _Work(snapshot)
            for user, host in specs:
                state = work.lookup(user, host)
                if state is None:
                    raise _no_such_grant(user, host)
                if level.table_key is None:
                    if not _held_in(state.db_privs, state.table_privs, level.key):
                        raise _no_such_grant(user, host)
                    held = state.db_privs.get(level.key, NO_PRIVILEGES)
                    work.set_db_privs(state, level.key, held & ~privs)
                    for name, on_table in work.tables_in(state, level.key):
                        work.set_table_privs(state, level.key, name, on_table & ~privs)
                else:
                    key = (level.key, level.table_key)
                    if key not in state.table_privs:
                        raise _no_such_table_grant(user, host, level.table or "")
                    work.set_table_privs(
                        state, level.key, level.table_key, state.table_privs[key] & ~privs
                    )
            names = ", ".join(account_name(u, h) for u, h in specs)
            text = self._privs_text(privileges)
            return _Plan(work, f"REVOKE {text} ON {level.target} FROM {names}")

        return self._outcome(actor, plan)

    @staticmethod
    def _change_checks(
        snapshot: CatalogSnapshot, users: Sequence[AccountName]
    ) -> list[tuple[str, str]]:
        """Accounts whose privileges change: not built-in (TDDL-5107), valid hosts (5109)."""
        specs: list[tuple[str, str]] = []
        for name in users:
            if _builtin_named(snapshot, name.user):
                raise _system_change(name.user)
            specs.append((name.user, _host(name.host)))
        return specs

    def revoke_all(self, actor: Actor, users: Sequence[AccountName]) -> Outcome:
        """``REVOKE ALL PRIVILEGES, GRANT OPTION FROM u, ...``: everything held on the
        administrator's database and its tables (operator: ``current_db``, or every database)."""

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            caller = self._caller(snapshot, actor)
            scope: str | None = None
            if caller.admin is not None:
                scope = (caller.db or "").lower()
            elif actor.current_db is not None:
                scope = self._database(snapshot, caller, actor.current_db).key
            specs = self._change_checks(snapshot, users)
            work = _Work(snapshot)
            for user, host in specs:
                state = work.lookup(user, host)
                if state is None:
                    raise _no_such_grant(user, host)
                for key in sorted(state.db_privs):
                    if scope is None or key == scope:
                        work.set_db_privs(state, key, NO_PRIVILEGES)
                for d, t in sorted(state.table_privs):
                    if scope is None or d == scope:
                        work.set_table_privs(state, d, t, NO_PRIVILEGES)
            names = ", ".join(account_name(u, h) for u, h in specs)
            where = "" if scope is None else f" ON {_quote(scope)}.*"
            return _Plan(work, f"REVOKE ALL PRIVILEGES, GRANT OPTION{where} FROM {names}")

        return self._outcome(actor, plan)

    # ------------------------------------------------------------------ SHOW GRANTS

    def show_grants(self, actor: Actor, target: AccountName | None) -> tuple[str, list[str]]:
        """(column header ``Grants for u@h``, rows). ``target`` None (``FOR CURRENT_USER()``)
        or the caller's own account: the caller's grants everywhere. Another account: only an
        administrator (its database only) or the operator (everything)."""
        snapshot = self._readable_snapshot()
        if target is None or self._is_self(snapshot, actor, target):
            if actor.account is None:
                raise ValueError("the operator has no grants of its own")
            me = self._me(snapshot, actor)
            if me is None:
                raise _no_such_grant(actor.account.user, actor.account.host)
            return self._grants_table(snapshot, me, None)
        caller = self._caller(snapshot, actor)
        host = _host(target.host)
        account = snapshot.find_account(target.user, host)
        if account is None:
            raise _no_such_grant(target.user, host)
        return self._grants_table(snapshot, account, None if caller.db is None else caller.db)

    @staticmethod
    def _grants_table(
        snapshot: CatalogSnapshot, account: Account, only_db: str | None
    ) -> tuple[str, list[str]]:
        to = account_name(account.user, account.host)
        scope = None if only_db is None else only_db.lower()
        held = snapshot.grants_of(account.id)

        def shown(key: str) -> str:
            database = snapshot.database(key)
            return _quote(key if database is None else database.name)

        usage = f"GRANT USAGE ON *.* TO {to}"
        if account.max_user_connections:
            # As MySQL 5.7 / MariaDB show an account's resource limit.
            usage += f" WITH MAX_USER_CONNECTIONS {account.max_user_connections}"
        rows = [usage]
        for key in sorted(held.db_privs):
            if scope is None or key == scope:
                privs = format_privs(held.db_privs[key])
                rows.append(f"GRANT {privs} ON {shown(key)}.* TO {to}")
        for key, table in sorted(held.table_privs):
            if scope is None or key == scope:
                privs = format_privs(held.table_privs[(key, table)])
                rows.append(f"GRANT {privs} ON {shown(key)}.{_quote(table)} TO {to}")
        return f"Grants for {account.user}@{account.host}", rows

    # ------------------------------------------------------------------ CLI / dashboard

    def list_users(self, actor: Actor, database: str) -> list[UserInfo]:
        """Accounts owned by or holding privileges on ``database``, in creation order."""
        snapshot = self._readable_snapshot()
        key = self._manager_of(snapshot, actor, database).key
        users: list[UserInfo] = []
        for account in snapshot.accounts():
            held = snapshot.grants_of(account.id)
            on_db = _held_in(held.db_privs, held.table_privs, key)
            if on_db or _same_db(account.owner_db, key):
                users.append(
                    UserInfo(
                        account.user,
                        account.host,
                        on_db == Priv.SELECT,
                        account.protected,
                        account.owner_db,
                    )
                )
        return users

    def create_user_for_database(
        self,
        actor: Actor,
        database: str,
        user: str,
        host: str = "%",
        password: str | None = None,
        read_only: bool = False,
        max_user_connections: int = 0,
    ) -> tuple[Account, str | None]:
        """Create ``user@host`` owned by ``database`` with SELECT (read-only) or the eight
        privileges on ``database.*``. Returns the account and the generated password (when
        ``password`` is None; shown once), else None."""

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            target = self._manager_of(snapshot, actor, database)
            checked_user, checked_host, given = self._new_account_checks(
                snapshot, AccountName(user, host), password
            )
            work = _Work(snapshot)
            name = account_name(checked_user, checked_host)
            if work.lookup(checked_user, checked_host) is not None or _name_taken(
                snapshot, checked_user, target.name
            ):
                raise _cannot_user("CREATE USER", [name])
            result = _Plan(
                work,
                f"CREATE USER {name} ON {_quote(target.name)}"
                + (" (read-only)" if read_only else ""),
            )
            if given is None:
                given = self._policy.generate_password()
                result.generated.append((AccountName(checked_user, checked_host), given))
            state = work.create(checked_user, checked_host, given, target.name)
            work.set_db_privs(state, target.key, Priv.SELECT if read_only else ALL_PRIVILEGES)
            if max_user_connections:
                work.set_max_user_connections(state, max_user_connections)
                result.action += f" WITH MAX_USER_CONNECTIONS {max_user_connections}"
            return result

        plan_done, _ = self._run(actor, plan)
        created = plan_done.work.changes[0]
        assert isinstance(created, CreateAccount)
        account = self._catalog.snapshot().find_account(created.user, created.host)
        if account is None:  # created, but the catalog became unreadable right after
            raise CatalogError(
                f"{account_name(created.user, created.host)} was created, but the catalog "
                "could not be read back; it shows once it can be"
            )
        generated = plan_done.generated[0][1] if plan_done.generated else None
        return account, generated

    def update_password(
        self,
        actor: Actor,
        database: str,
        user: str,
        host: str = "%",
        password: str | None = None,
        retain_current: bool = False,
    ) -> str | None:
        """Set the password of an account ``database`` owns; generate one when None (returned,
        shown once). ``retain_current``: the current password stays valid as the secondary
        until ``discard_old_password_of``."""

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            self._manager_of(snapshot, actor, database)
            if _builtin_named(snapshot, user):
                raise _system_change(user)
            checked_host = _host(host)
            if password is not None:
                self._policy.validate_password(password)
            work = _Work(snapshot)
            state = _owned_by(work, user, checked_host, database, _password_no_match())
            result = _Plan(work, f"SET PASSWORD FOR {state.name}")
            new = password
            if new is None:
                new = self._policy.generate_password()
                result.generated.append((AccountName(user, checked_host), new))
            work.set_password(state, new, retain_current)
            return result

        plan_done, _ = self._run(actor, plan)
        return plan_done.generated[0][1] if plan_done.generated else None

    def discard_old_password_of(
        self, actor: Actor, database: str, user: str, host: str = "%"
    ) -> None:
        """Forget the retained (old) password of an account ``database`` owns."""

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            self._manager_of(snapshot, actor, database)
            if _builtin_named(snapshot, user):
                raise _system_change(user)
            checked_host = _host(host)
            work = _Work(snapshot)
            state = _owned_by(work, user, checked_host, database, _password_no_match())
            work.discard_old_password(state)
            return _Plan(work, f"ALTER USER {state.name} DISCARD OLD PASSWORD")

        self._run(actor, plan)

    def unlock_user(self, actor: Actor, database: str, user: str, host: str = "%") -> bool:
        """End the lock after failed logins of an account ``database`` owns (built-ins
        included: unlocking changes nothing the account is, and a locked administrator could
        not log in to do it). Returns whether it was locked."""
        locked = False

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            nonlocal locked
            self._manager_of(snapshot, actor, database)
            checked_host = _host(host)
            account = snapshot.find_account(user, checked_host)
            if account is None or not _same_db(account.owner_db, database):
                raise _cannot_user("ALTER USER", [account_name(user, checked_host)])
            locked = account.locked_at(time.time())
            work = _Work(snapshot)
            state = work.lookup(user, checked_host)
            assert state is not None
            work.unlock(state)
            return _Plan(work, f"ALTER USER {state.name} ACCOUNT UNLOCK")

        self._run(actor, plan)
        return locked

    def set_user_limit(
        self, actor: Actor, database: str, user: str, limit: int, host: str = "%"
    ) -> None:
        """Set ``MAX_USER_CONNECTIONS`` of an account ``database`` owns (0: the server's
        default); built-ins are refused as for every other change."""
        if limit < 0:
            raise ValueError("a connection limit is not negative")

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            self._manager_of(snapshot, actor, database)
            if _builtin_named(snapshot, user):
                raise _system_change(user)
            checked_host = _host(host)
            work = _Work(snapshot)
            not_owned = _cannot_user("ALTER USER", [account_name(user, checked_host)])
            state = _owned_by(work, user, checked_host, database, not_owned)
            work.set_max_user_connections(state, limit)
            return _Plan(work, f"ALTER USER {state.name} WITH MAX_USER_CONNECTIONS {limit}")

        self._run(actor, plan)

    def delete_user(self, actor: Actor, database: str, user: str, host: str = "%") -> None:
        """Drop an account ``database`` owns."""

        def plan(snapshot: CatalogSnapshot) -> _Plan:
            self._manager_of(snapshot, actor, database)
            if _builtin_named(snapshot, user):
                raise _system_create_drop(user)
            checked_host = _host(host)
            work = _Work(snapshot)
            name = account_name(user, checked_host)
            state = _owned_by(work, user, checked_host, database, _cannot_user("DROP USER", [name]))
            work.drop(state)
            return _Plan(work, f"DROP USER {name}")

        self._run(actor, plan)
