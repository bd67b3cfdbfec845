"""The eight PolarDB-X 1.0 privileges and the requirement values statements are checked against.

Pure values: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag


class Priv(IntFlag):
    SELECT = 1
    INSERT = 2
    UPDATE = 4
    DELETE = 8
    CREATE = 16
    DROP = 32
    INDEX = 64
    ALTER = 128

    @classmethod
    def all(cls) -> Priv:
        return ALL_PRIVILEGES


NO_PRIVILEGES = Priv(0)
ALL_PRIVILEGES = (
    Priv.SELECT
    | Priv.INSERT
    | Priv.UPDATE
    | Priv.DELETE
    | Priv.CREATE
    | Priv.DROP
    | Priv.INDEX
    | Priv.ALTER
)

# SHOW GRANTS lists privileges in this order.
DISPLAY_ORDER: tuple[Priv, ...] = (
    Priv.SELECT,
    Priv.INSERT,
    Priv.UPDATE,
    Priv.DELETE,
    Priv.CREATE,
    Priv.DROP,
    Priv.INDEX,
    Priv.ALTER,
)

_BY_NAME = {p.name: p for p in DISPLAY_ORDER if p.name is not None}


def priv_from_name(name: str) -> Priv | None:
    """``'select'`` -> Priv.SELECT; None for anything that is not one of the eight."""
    return _BY_NAME.get(name.upper())


def priv_names(privs: Priv) -> list[str]:
    """Names in display order."""
    return [p.name for p in DISPLAY_ORDER if p in privs and p.name is not None]


def format_privs(privs: Priv) -> str:
    """``SELECT, INSERT`` or ``ALL PRIVILEGES`` when all eight are held."""
    if privs == ALL_PRIVILEGES:
        return "ALL PRIVILEGES"
    return ", ".join(priv_names(privs))


@dataclass(frozen=True, slots=True)
class Requirement:
    """A privilege a statement needs: on a table (``table`` set) or on the database itself.

    ``db`` and ``table`` are as written by the client (case is preserved for error texts);
    the catalog compares them case-insensitively. Every privilege in ``priv`` is needed, unless
    ``one_of`` names a command: then any one of them suffices, and holding none is a 1142 for
    that command (``LOCK TABLES t WRITE`` needs INSERT, UPDATE or DELETE on ``t``).
    ``column``: the column MariaDB names when it is missing (1143, checked per column: the
    catalog's privileges are table-level, so holding ``priv`` on the table suffices); ``*``
    is the table's first column (``RETURNING *``), named where the proxy knows the table's
    definition.
    """

    priv: Priv
    db: str
    table: str | None = None
    one_of: str | None = None
    column: str | None = None
