"""Account statements answered by the proxy itself, never forwarded to a shard.

Parsed by ``proxy.sql.account_grammar``, carried out by ``auth.accounts.AccountManager`` (the
same operations the CLI and dashboard use), answered with an OK (plus notes) or a result set.
A statement that changed grants answers once the mirrored accounts on the shards follow
(``proxy.backend.mirror``): a REVOKE is in force on the shard before the client hears OK.

A catalog that cannot be reached, answers too slowly or has its tables locked fails the
statement within ``[catalog] timeout`` with 1105 saying nothing was changed; a connection lost
after COMMIT was sent fails it with 1180 saying the outcome is unknown. Either way the session
goes on; the operator finds the cause in the log (the client is not told where the catalog is).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from auth.accounts import AccountManager, AccountName, Actor, Outcome
from auth.catalog import CatalogOutcomeUnknownError, CatalogUnavailableError
from auth.errors import not_supported
from proxy.backend.mirror import MirrorManager
from proxy.sql.account_grammar import (
    AlterUser,
    CreateUser,
    CurrentUser,
    DiscardOldPassword,
    DropUser,
    FlushPrivileges,
    Grant,
    Revoke,
    RevokeAll,
    SetPassword,
    ShowGrants,
    UnsupportedAccountStatement,
    UserRef,
    UserSpec,
    parse_account_statement,
)
from proxy.sql.lexer import DEFAULT_MODE, LexMode

log = logging.getLogger("shardgate.session")

TableExists = Callable[[str, str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class OkReply:
    notes: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ResultReply:
    column: str
    rows: tuple[str, ...]


AccountReply = OkReply | ResultReply


def _name(ref: UserRef) -> AccountName:
    return AccountName(ref.user, ref.host)


def _spec(spec: UserSpec) -> tuple[AccountName, str | None]:
    return (_name(spec.user), spec.password)


def _administers(actor: Actor, db: str) -> bool:
    account = actor.account
    if account is None:
        return True  # the operator
    return account.is_admin_of(db)


async def execute_account_statement(
    manager: AccountManager,
    text: str,
    actor: Actor,
    table_exists: TableExists,
    mirrors: MirrorManager,
    mode: LexMode = DEFAULT_MODE,
) -> AccountReply:
    """Run one account statement (``text``: the analyser's executable text, read in the
    session's lexer ``mode``, so passwords are what MariaDB would read); raises SqlError with
    the exact MySQL/PolarDB-X error.

    After a change, the mirrors of the accounts whose grants changed are synced before the
    reply (a sync failure is logged and left to the reconciler: the change stays applied)."""
    before = mirrors.snapshot()
    try:
        result = await _execute(manager, text, actor, table_exists, mode)
    except CatalogUnavailableError as error:
        if isinstance(error, CatalogOutcomeUnknownError):
            log.error("account statement of %s: %s", actor.audit_name, error.message)
        else:
            log.warning("account statement of %s not applied: %s", actor.audit_name, error.message)
        raise error.client_error() from None
    if isinstance(result, ResultReply):
        return result
    if result.catalog_version is not None:
        await mirrors.catalog_changed(before)
    return OkReply(result.notes)


async def _execute(
    manager: AccountManager, text: str, actor: Actor, table_exists: TableExists, mode: LexMode
) -> Outcome | ResultReply:
    statement = parse_account_statement(text, mode)
    run = asyncio.to_thread
    if isinstance(statement, CreateUser):
        specs = [_spec(s) for s in statement.users]
        return await run(
            manager.create_users,
            actor,
            specs,
            statement.if_not_exists,
            statement.max_user_connections,
        )
    if isinstance(statement, DropUser):
        names = [_name(u) for u in statement.users]
        return await run(manager.drop_users, actor, names, statement.if_exists)
    if isinstance(statement, SetPassword):
        target = None if statement.user is None else _name(statement.user)
        return await run(
            manager.set_password, actor, target, statement.password, statement.retain_current
        )
    if isinstance(statement, DiscardOldPassword):
        target = None if statement.user is None else _name(statement.user)
        return await run(manager.discard_old_password, actor, target)
    if isinstance(statement, AlterUser):
        names = [_name(u) for u in statement.users]
        return await run(
            manager.alter_users,
            actor,
            names,
            statement.max_user_connections,
            statement.unlock,
        )
    if isinstance(statement, Grant):
        level = statement.level
        privileges = [(p.name, p.columns) for p in statement.privileges]
        exists: bool | None = None
        if level.table is not None and not level.is_global and not statement.routine:
            db = level.db or actor.current_db
            # Ask a shard only about the caller's own database: the manager refuses every
            # other case (5107 / 5106) before it looks at table existence.
            exists = (
                await table_exists(db, level.table) if db and _administers(actor, db) else False
            )
        return await run(
            manager.grant,
            actor,
            privileges,
            level.db,
            level.table,
            level.is_global,
            statement.routine,
            [_spec(s) for s in statement.users],
            statement.with_grant_option,
            exists,
            statement.max_user_connections,
        )
    if isinstance(statement, Revoke):
        level = statement.level
        return await run(
            manager.revoke,
            actor,
            [(p.name, p.columns) for p in statement.privileges],
            level.db,
            level.table,
            level.is_global,
            statement.routine,
            [_name(u) for u in statement.users],
        )
    if isinstance(statement, RevokeAll):
        return await run(manager.revoke_all, actor, [_name(u) for u in statement.users])
    if isinstance(statement, ShowGrants):
        target = (
            None
            if statement.user is None or isinstance(statement.user, CurrentUser)
            else (_name(statement.user))
        )
        header, rows = await run(manager.show_grants, actor, target)
        return ResultReply(header, tuple(rows))
    if isinstance(statement, FlushPrivileges):
        return Outcome()  # privileges are always the catalog's: nothing to reload
    if isinstance(statement, UnsupportedAccountStatement):
        raise not_supported(statement.verb)
    raise AssertionError(statement)  # pragma: no cover
