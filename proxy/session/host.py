"""What a session needs from the server that runs it: a narrow, typed interface.

The server (``proxy/server.py``) implements :class:`SessionHost`; the session package never
imports the server, so the dependency runs one way: server -> session -> plan -> sql -> wire.
What the login needs is :class:`~proxy.session.login.LoginServices`; the rest is here. The
session table's type is a parameter (``SessionHost[Session]``), so this module need not import
the session it serves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

from auth.accounts import AccountManager
from auth.model import Account
from proxy.backend.connection import BackendConnection, BackendTarget
from proxy.backend.mirror import MirrorManager
from proxy.backend.pool import Owner, ShardPool
from proxy.ops.digest import DigestEntry, QueryDigest
from proxy.session.fair import FairPool
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
    def mirrors(self) -> MirrorManager:
        """The mirrored backend accounts (account statements sync them before answering)."""
        ...

    @property
    def secret(self) -> bytes:
        """The catalog secret (mirror names carry a keyed hash made with it)."""
        ...

    @property
    def analysis_pool(self) -> FairPool:
        """Where statements are analysed when that is too slow for the event loop (one
        analysis at a time per tenant)."""
        ...

    async def backend_lease(
        self, owner: Owner, account: Account, database: str | None, capabilities: int, charset: int
    ) -> tuple[BackendConnection, bool, ShardPool]:
        """A backend connection for a session (``owner``) of ``account`` in ``database`` (None:
        no database) from its shard's pool, logged in as the account's mirrored backend
        account there: the connection, whether it is new, and its pool. Raises BackendError,
        PoolExhausted."""
        ...

    async def follow_grants(
        self, conn: BackendConnection, account: Account, database: str | None
    ) -> None:
        """The catalog moved: make the session's idle connection hold the newest grants (it
        may be closed instead)."""
        ...

    def shard_refused(
        self, errno: int, database: str | None, digest: str, target: BackendTarget
    ) -> None:
        """The shard refused a statement the proxy allowed (a classifier miss)."""
        ...

    def peer_digests(self) -> Iterable[dict[tuple[str | None, str], DigestEntry]]:
        """The query digests of the other worker processes (none without workers)."""
        ...
