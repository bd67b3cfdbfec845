"""User management of one logical database, for the CLI and the dashboard.

Thin wrappers over ``AccountManager``'s CLI / dashboard operations (and the catalog's reset of
a built-in password) that turn every refusal into ``UserAdminError``: one plain sentence, plus
the HTTP status the API answers with. A catalog that cannot be reached is 503 and says whether
anything changed (nothing, or unknown when COMMIT went unconfirmed). Blocking (the catalog): call
from a worker thread in asyncio code. No password ever appears in an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from auth.accounts import AccountManager, Actor
from auth.catalog import (
    RO_SUFFIX,
    Catalog,
    CatalogError,
    CatalogUnavailableError,
    UnknownAccountError,
    UnknownDatabaseError,
)
from auth.errors import ErrorCode, SqlError
from auth.policy import PolicyProfile

__all__ = [
    "UserAdmin",
    "UserAdminError",
    "UserRow",
    "display_name",
    "refusals",
    "reset_builtin_password",
]

Operation = Literal["list", "create", "update-password", "delete", "reset", "unlock", "set-limit"]

_TDDL_PREFIX = re.compile(r"^ERR-CODE: \[TDDL-\d+\]\[\w+\] ")


class UserAdminError(Exception):
    """A refused request: ``message`` is one sentence for a person, ``status`` an HTTP code;
    ``detail`` what the operator may also see (the CLI shows it; the dashboard does not)."""

    def __init__(self, message: str, status: int = 400, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.detail = detail


def unavailable(error: CatalogUnavailableError) -> UserAdminError:
    """The catalog could not be used: 503, saying whether anything changed."""
    return UserAdminError(plain(error.client_error()), 503, error.message)


@dataclass(frozen=True, slots=True)
class UserRow:
    """One line of a database's user list."""

    username: str
    host: str
    read_only: bool
    protected: bool

    def as_json(self) -> dict[str, str | bool]:
        return {
            "username": self.username,
            "host": self.host,
            "read_only": self.read_only,
            "protected": self.protected,
        }


def display_name(user: str, host: str = "%") -> str:
    """``user`` for ``user@'%'`` (the usual case), else ``user@host``."""
    return user if host == "%" else f"{user}@{host}"


def plain(error: SqlError) -> str:
    """The error's text without the ``ERR-CODE: [TDDL-n][KEY]`` prefix."""
    return _TDDL_PREFIX.sub("", error.message)


def explain(
    error: SqlError, operation: Operation, database: str, user: str, host: str
) -> UserAdminError:
    """The refusal ``error`` (raised by ``AccountManager``) in plain words."""
    name = display_name(user, host)
    errno = error.errno
    if errno in (
        ErrorCode.TDDL_INVALID_USERNAME.errno,
        ErrorCode.TDDL_INVALID_PASSWORD.errno,
        ErrorCode.TDDL_INVALID_HOST.errno,
    ):
        return UserAdminError(plain(error), 400)
    if errno == ErrorCode.TDDL_OPERATION_NOT_ALLOWED.errno:
        if "system account" in error.message:
            if operation == "create":
                text = f'"{user}" is the name of a protected account; choose another name.'
            elif operation == "delete":
                text = f'User "{user}" is protected and cannot be deleted.'
            elif operation == "set-limit":
                text = f'User "{user}" is protected: its connection limit is not changed.'
            else:
                text = (
                    f'User "{user}" is protected: only the operator can reset its password '
                    "(shardgate database reset-password)."
                )
            return UserAdminError(text, 403)
        if "restricted to administrator" in error.message:
            return UserAdminError("Only the administrator of a database can manage its users.", 403)
        return UserAdminError(plain(error), 403)
    if errno == ErrorCode.TDDL_NO_ACCESS_TO_DATABASE.errno:
        return UserAdminError(
            f'You can only manage the users of your own database, not of "{database}".', 403
        )
    if errno == ErrorCode.BAD_DB.errno:
        return UserAdminError(f'Unknown database "{database}".', 404)
    if errno == ErrorCode.CANNOT_USER.errno and operation == "create":
        return UserAdminError(f'User "{name}" already exists.', 409)
    if errno in (ErrorCode.CANNOT_USER.errno, ErrorCode.PASSWORD_NO_MATCH.errno):
        return UserAdminError(f'No user "{name}" in database "{database}".', 404)
    if errno == 1213:
        return UserAdminError("The account catalog is busy; please try again.", 409)
    return UserAdminError(plain(error), 400)


@contextmanager
def refusals(operation: Operation, database: str, user: str, host: str) -> Iterator[None]:
    """Every refusal of ``AccountManager`` as ``UserAdminError``."""
    try:
        yield
    except SqlError as error:
        raise explain(error, operation, database, user, host) from None
    except CatalogUnavailableError as error:
        raise unavailable(error) from None


class UserAdmin:
    """The user-management operations, as the platform offers them."""

    def __init__(self, accounts: AccountManager) -> None:
        self._accounts = accounts

    @property
    def policy(self) -> PolicyProfile:
        return self._accounts.policy

    def list_users(self, actor: Actor, database: str) -> list[UserRow]:
        with refusals("list", database, "", "%"):
            users = self._accounts.list_users(actor, database)
        return [UserRow(u.user, u.host, u.read_only, u.protected) for u in users]

    def create_user(
        self,
        actor: Actor,
        database: str,
        user: str,
        host: str = "%",
        password: str | None = None,
        read_only: bool = False,
        max_user_connections: int = 0,
    ) -> tuple[UserRow, str | None]:
        """The new user's row and its generated password (when ``password`` is None)."""
        with refusals("create", database, user, host):
            account, generated = self._accounts.create_user_for_database(
                actor, database, user, host, password, read_only, max_user_connections
            )
        return UserRow(account.user, account.host, read_only, account.protected), generated

    def update_password(
        self, actor: Actor, database: str, user: str, host: str = "%", password: str | None = None
    ) -> str | None:
        """The generated password when ``password`` is None."""
        with refusals("update-password", database, user, host):
            return self._accounts.update_password(actor, database, user, host, password)

    def unlock_user(self, actor: Actor, database: str, user: str, host: str = "%") -> bool:
        """End a lock after failed logins; whether the account was locked (or had failures)."""
        with refusals("unlock", database, user, host):
            return self._accounts.unlock_user(actor, database, user, host)

    def set_user_limit(
        self, actor: Actor, database: str, user: str, limit: int, host: str = "%"
    ) -> None:
        with refusals("set-limit", database, user, host):
            self._accounts.set_user_limit(actor, database, user, limit, host)

    def delete_user(self, actor: Actor, database: str, user: str, host: str = "%") -> None:
        with refusals("delete", database, user, host):
            self._accounts.delete_user(actor, database, user, host)


def reset_builtin_password(
    catalog: Catalog, policy: PolicyProfile, database: str, read_only: bool, password: str | None
) -> tuple[str, str | None]:
    """The operator's reset of a built-in account's password (``<db>`` or ``<db>_RO``).

    Returns the account's user name and the generated password (when ``password`` is None).
    A chosen password must satisfy the policy, as when the database was created.
    """
    generated = None
    if password is None:
        password = generated = policy.generate_password()
    else:
        try:
            policy.validate_password(password)
        except SqlError as error:
            raise UserAdminError(plain(error), 400) from None
    try:
        catalog.reset_builtin_password(database, read_only, password)
    except UnknownDatabaseError:
        raise UserAdminError(f'Unknown database "{database}".', 404) from None
    except UnknownAccountError as error:
        raise UserAdminError(error.message, 404) from None
    except CatalogUnavailableError as error:
        raise unavailable(error) from None
    except CatalogError as error:
        raise UserAdminError(error.message, 500) from None
    found = catalog.snapshot().database(database)
    name = found.name if found is not None else database
    return (name + RO_SUFFIX if read_only else name), generated
