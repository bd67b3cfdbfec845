"""What a mirrored backend account holds: a value, shared by the connection that logs in as it
(``BackendTarget.grants``) and the manager that keeps it in step (``proxy.backend.mirror``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MirrorGrants:
    """What one account's mirror holds on one database: MariaDB privilege names at the
    database level and per table (tables sorted, lower-case; no empty set)."""

    account_id: int
    user: str
    database: str  # the physical database, lower-case
    db_privs: frozenset[str]
    table_privs: tuple[tuple[str, frozenset[str]], ...]
