"""Authorization and routing decisions, as values.

``decide()`` is a pure function of the analysed statement, the catalog snapshot and the caller:
it returns Allow (relay to the backend), Deny (send this error) or a local action the session
carries out itself. It never performs I/O, so it is tested from tables of cases.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth.catalog import CatalogSnapshot
from auth.errors import (
    ErrorCode,
    SqlError,
    db_access_denied,
    no_database_selected,
    sql_error,
    table_access_denied,
    unknown_database,
)
from auth.model import Account
from auth.privileges import Requirement, priv_names
from proxy.sql.analyze import Kind, Statement


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the bound account, as seen from the client's address."""

    account: Account
    client_ip: str
    current_db: str | None


@dataclass(frozen=True, slots=True)
class Allow:
    """Relay the statement to the current database's shard."""


@dataclass(frozen=True, slots=True)
class Deny:
    error: SqlError


@dataclass(frozen=True, slots=True)
class UseDatabase:
    name: str  # the catalog's spelling


@dataclass(frozen=True, slots=True)
class ShowDatabases:
    names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShowProcesslist:
    full: bool


@dataclass(frozen=True, slots=True)
class ShowDigest:
    database: str


@dataclass(frozen=True, slots=True)
class KillSession:
    connection_id: int
    query_only: bool


@dataclass(frozen=True, slots=True)
class AccountStatement:
    text: str


Decision = (
    Allow
    | Deny
    | UseDatabase
    | ShowDatabases
    | ShowProcesslist
    | ShowDigest
    | KillSession
    | AccountStatement
)
ALLOW = Allow()


def check_requirements(
    requirements: tuple[Requirement, ...], snapshot: CatalogSnapshot, caller: Caller
) -> SqlError | None:
    """The first missing privilege as the error MySQL would give, or None."""
    account = caller.account
    for req in requirements:
        held = snapshot.privileges(account.id, req.db, req.table)
        if req.priv & held == req.priv:
            continue
        missing = req.priv & ~held
        if req.table is None:
            return db_access_denied(account.user, caller.client_ip, req.db)
        return table_access_denied(
            priv_names(missing)[0], account.user, caller.client_ip, req.table
        )
    return None


def may_use_database(snapshot: CatalogSnapshot, account: Account, name: str) -> bool:
    """Some privilege on the database or one of its tables, or the database's built-in."""
    return name.lower() in snapshot.grants_of(account.id).database_keys


def resolve_database(snapshot: CatalogSnapshot, caller: Caller, name: str) -> str | SqlError:
    """USE / COM_INIT_DB / the login database: 1044 before 1049, so no name leaks."""
    account = caller.account
    if not may_use_database(snapshot, account, name):
        return db_access_denied(account.user, caller.client_ip, name)
    database = snapshot.database(name)
    if database is None:
        return unknown_database(name)
    return database.name


def default_database(snapshot: CatalogSnapshot, account: Account) -> str | None:
    """With no database named at login: the only usable one, if there is exactly one."""
    usable = snapshot.usable_databases(account.id)
    return usable[0] if len(usable) == 1 else None


def decide(statement: Statement, snapshot: CatalogSnapshot, caller: Caller) -> Decision:
    kind = statement.kind
    if kind is Kind.QUERY or kind is Kind.SESSION:
        error = check_requirements(statement.requirements, snapshot, caller)
        return ALLOW if error is None else Deny(error)
    if kind is Kind.REFUSED:
        assert statement.error is not None
        return Deny(statement.error)
    if kind is Kind.USE:
        assert statement.target_db is not None
        resolved = resolve_database(snapshot, caller, statement.target_db)
        return Deny(resolved) if isinstance(resolved, SqlError) else UseDatabase(resolved)
    if kind is Kind.SHOW_DATABASES:
        return ShowDatabases(tuple(snapshot.usable_databases(caller.account.id)))
    if kind is Kind.SHOW_PROCESSLIST:
        return ShowProcesslist(statement.full)
    if kind is Kind.SHOW_DIGEST:
        # The digest shows every account's statements in the database: its administrator's.
        account = caller.account
        if caller.current_db is None:
            return Deny(no_database_selected())
        if account.builtin != "admin" or (account.owner_db or "").lower() != (
            caller.current_db.lower()
        ):
            return Deny(
                sql_error(
                    ErrorCode.SPECIFIC_ACCESS_DENIED,
                    "Access denied; you need to be the database's administrator for this operation",
                )
            )
        return ShowDigest(caller.current_db)
    if kind is Kind.KILL:
        assert statement.kill_id is not None
        return KillSession(statement.kill_id, statement.kill_query)
    if kind is Kind.ACCOUNT:
        return AccountStatement(statement.text)
    return Deny(sql_error(ErrorCode.NOT_SUPPORTED_YET, "Statement not supported by the proxy"))
