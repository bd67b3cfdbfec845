"""Grant checks: pure functions of the catalog snapshot and the caller.

Used by :func:`proxy.plan.plan.plan` (every statement's requirements, USE) and by the login
(the login database). They never perform I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from auth.catalog import CatalogSnapshot
from auth.errors import (
    CrossDatabaseError,
    SqlError,
    column_access_denied,
    db_access_denied,
    table_access_denied,
    unknown_database,
)
from auth.model import Account
from auth.privileges import Requirement, priv_names

# The server's own schemas: no account may use them, whatever the catalog says.
SYSTEM_SCHEMAS = frozenset({"mysql", "performance_schema", "sys"})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: the bound account, as seen from the client's address."""

    account: Account
    client_ip: str
    current_db: str | None


def check_requirements(
    requirements: tuple[Requirement, ...], snapshot: CatalogSnapshot, caller: Caller
) -> SqlError | None:
    """The first missing privilege as the error MySQL would give, or None (a column's, 1143,
    when the requirement names one; ``*``, a first column not known, the table's 1142)."""
    account = caller.account
    # (MariaDB checks the tables when it opens them, the columns once it resolves them)
    for req in sorted(requirements, key=lambda r: r.column is not None):
        held = snapshot.privileges(account.id, req.db, req.table)
        if req.priv & held == req.priv or (req.one_of is not None and req.priv & held):
            continue
        if req.table is None:
            return db_access_denied(account.user, caller.client_ip, req.db)
        command = req.one_of or priv_names(req.priv & ~held)[0]
        if req.column is not None and req.column != "*":
            return column_access_denied(
                command, account.user, caller.client_ip, req.column, req.table
            )
        return table_access_denied(command, account.user, caller.client_ip, req.table)
    return None


def may_use_database(snapshot: CatalogSnapshot, account: Account, name: str) -> bool:
    """Some privilege on the database or one of its tables, or the database's built-in
    (never a system schema)."""
    key = name.lower()
    return key not in SYSTEM_SCHEMAS and key in snapshot.grants_of(account.id).database_keys


def refusal_for(error: SqlError, snapshot: CatalogSnapshot, caller: Caller) -> SqlError:
    """A statement's refusal as this caller gets it: naming another database is 1235 ("USE it
    first") only when the caller may use that database; otherwise -- a system schema, or a
    database it holds nothing on -- 1044, as ``USE`` answers (whether or not it exists, so
    no name leaks)."""
    if isinstance(error, CrossDatabaseError) and not may_use_database(
        snapshot, caller.account, error.database
    ):
        return db_access_denied(caller.account.user, caller.client_ip, error.database)
    return error


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
