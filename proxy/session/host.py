"""What a session needs from the server that runs it: a narrow, typed interface.

The server (``proxy/server.py``) implements :class:`SessionHost`; the session package never
imports the server, so the dependency runs one way: server -> session -> plan -> sql -> wire.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

from auth.accounts import AccountManager
from auth.catalog import Catalog, CatalogSnapshot
from auth.model import Account
from proxy.backend.connection import BackendTarget
from proxy.ops.config import Config
from proxy.ops.digest import DigestEntry, QueryDigest
from proxy.ops.metrics import Metrics
from proxy.session.authn import Keys, Sha2Cache

if TYPE_CHECKING:
    from proxy.session.session import Session


class SessionHost(Protocol):
    """The server as its sessions see it."""

    config: Config  # replaced as a whole by a reload: read it at the point of use
    catalog: Catalog
    accounts: AccountManager
    metrics: Metrics
    digest: QueryDigest
    sha2_cache: Sha2Cache
    ssl_context: ssl.SSLContext | None
    server_version: str
    draining: bool
    sessions: dict[int, Session]

    @property
    def rsa_keys(self) -> Keys: ...

    def snapshot(self) -> CatalogSnapshot: ...

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
