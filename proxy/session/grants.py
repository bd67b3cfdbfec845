"""The column definitions of information_schema's privilege tables, given back.

A statement reading ``information_schema.TABLE_PRIVILEGES`` (and USER_, SCHEMA_,
COLUMN_PRIVILEGES) reads, on the shard, a derived table of the account's grants in its place
(``proxy.plan.grants``); the shard describes that table's columns as a derived table's -- no
schema, no original table, no NO_DEFAULT_VALUE flag -- where MariaDB describes the view's
own: schema ``information_schema``, original table the view's name, NO_DEFAULT_VALUE. The
types, lengths, character sets and NOT NULL are already the view's (the derived table's
columns are of the view's types, NOT NULL).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from proxy.merge.values import ColumnDefinition
from proxy.plan.grants import GRANT_VIEW_COLUMNS
from proxy.wire.packets import ProtocolError

__all__ = ["grant_column", "grant_columns"]

_NO_DEFAULT = 4096
_SCHEMA = b"information_schema"


# Each privilege table, by its name: (its name, its columns' names).
_BY_NAME: Final = {
    view.encode("ascii"): (view.encode("ascii"), frozenset(n.encode("ascii") for n, _ in columns))
    for view, columns in GRANT_VIEW_COLUMNS.items()
}


def _given_back(
    column: ColumnDefinition, found: tuple[bytes, frozenset[bytes]] | None
) -> bytes | None:
    """``column`` with the privilege table's own definition when it is one of the derived
    table standing for ``found`` (the table's name and columns); None when it is not."""
    if found is None or column.schema != b"" or column.org_table != b"":
        return None
    view, names = found
    if (column.org_name or column.name) not in names:
        return None
    return replace(column, schema=_SCHEMA, org_table=view, flags=column.flags | _NO_DEFAULT).build()


def grant_column(column: ColumnDefinition) -> bytes | None:
    """``column`` as the privilege table's own when it is one of a derived table standing for
    one under the table's own name (a sharded database's routed statements: their plans do
    not say which aliases stand for one); None when it is not."""
    return _given_back(column, _BY_NAME.get(column.table.upper()))


@functools.lru_cache(maxsize=64)
def grant_columns(
    views: tuple[tuple[str, str], ...], then: Callable[[bytes], bytes] | None = None
) -> Callable[[bytes], bytes]:
    """The rewriting of a relayed answer's column definitions (and ERR packets, by ``then``)
    for a statement reading these privilege tables: (the name the statement knows each by,
    the table's name); ``then``: the rewriting applied to every other one, if any. (The same
    function for the same arguments: the backend connection remembers heads per function.)"""
    known = {
        alias.encode("utf-8", "surrogateescape"): _BY_NAME[view.encode("ascii")]
        for alias, view in views
    }

    def rewrite(payload: bytes) -> bytes:
        if payload[:1] != b"\xff":
            try:
                column = ColumnDefinition.parse(payload)
            except (ProtocolError, ValueError, IndexError, TypeError):
                column = None
            if column is not None:
                given = _given_back(column, known.get(column.table))
                if given is not None:
                    return given
        return payload if then is None else then(payload)

    return rewrite
