"""What a session needs from the server that runs it: a narrow, typed interface.

The server (``proxy/server.py``) implements :class:`SessionHost`; the session package never
imports the server, so the dependency runs one way: server -> session -> plan -> sql -> wire.
What the login needs is :class:`~proxy.session.login.LoginServices`; the rest is here. The
session table's type is a parameter (``SessionHost[Session]``), so this module need not import
the session it serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Protocol, TypeVar

from auth.accounts import AccountManager
from auth.model import Account
from proxy.backend.connection import BackendTarget
from proxy.ops.digest import DigestEntry, QueryDigest
from proxy.session.login import LoginServices, Seated

S = TypeVar("S", bound=Seated)


class SessionHost(LoginServices, Protocol[S]):
    """The server as its sessions (of type ``S``) see it."""

    @property
    def accounts(self) -> AccountManager: ...
    @property
    def digest(self) -> QueryDigest: ...
    @property
    def draining(self) -> bool: ...
    @property
    def sessions(self) -> dict[int, S]: ...
    @property
    def analysis_pool(self) -> Executor:
        """Where statements are analysed when that is too slow for the event loop."""
        ...

    async def backend_target(self, account: Account, database: str | None) -> BackendTarget:
        """Where and as whom a session of ``account`` reaches ``database`` (None: no database,
        the shard's privilege-less usage account). Raises BackendError."""
        ...

    async def table_exists(self, database: str, table: str) -> bool:
        """Whether ``table`` exists in the logical ``database`` (asked of its shard)."""
        ...

    def peer_digests(self) -> Iterable[dict[tuple[str | None, str], DigestEntry]]:
        """The query digests of the other worker processes (none without workers)."""
        ...
