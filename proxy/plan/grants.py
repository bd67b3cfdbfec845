"""information_schema's privilege tables as the account's own grants, from the catalog.

``USER_PRIVILEGES``, ``SCHEMA_PRIVILEGES``, ``TABLE_PRIVILEGES`` and ``COLUMN_PRIVILEGES`` on a
shard show its own accounts' grants: a session's backend login is its mirrored account, whose
name and derived privileges (SHOW VIEW, REFERENCES, LOCK TABLES, ...) are not the client's.
The relay puts a derived table in place of each reference (at the lexer's token positions:
``proxy.sql.analyze`` lists them with the identity calls, ``proxy.plan.rewrite`` splices):
one ``SELECT`` of literals per row the account's grants give -- as MariaDB 10.11 shows them to
an account without access to the ``mysql`` schema (its own rows only; ``USAGE`` when it holds
no global privilege; IS_GRANTABLE ``NO``: the catalog has no grant option, as SHOW GRANTS
shows), the database names as the client knows them (a sharded database's logical name) --
of columns CAST to the view's own types, so the shard evaluates the client's WHERE, joins,
aggregates and ORDER BY on them as on the view. Every value is a hexadecimal literal: it reads
the same in every sql_mode (ANSI_QUOTES, NO_BACKSLASH_ESCAPES) and character set. The result's
column definitions get the view's own back (``GRANT_VIEW_COLUMNS``, the session's relay).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from auth.catalog import CatalogSnapshot
from auth.model import Account
from auth.privileges import priv_names

__all__ = ["GRANT_VIEW_COLUMNS", "grant_view_table"]

# Each view's columns (MariaDB 10.11, in order) and their VARCHAR lengths (all utf8mb3, NOT
# NULL, no default).
GRANT_VIEW_COLUMNS: Final[dict[str, tuple[tuple[str, int], ...]]] = {
    "USER_PRIVILEGES": (
        ("GRANTEE", 385),
        ("TABLE_CATALOG", 512),
        ("PRIVILEGE_TYPE", 64),
        ("IS_GRANTABLE", 3),
    ),
    "SCHEMA_PRIVILEGES": (
        ("GRANTEE", 385),
        ("TABLE_CATALOG", 512),
        ("TABLE_SCHEMA", 64),
        ("PRIVILEGE_TYPE", 64),
        ("IS_GRANTABLE", 3),
    ),
    "TABLE_PRIVILEGES": (
        ("GRANTEE", 385),
        ("TABLE_CATALOG", 512),
        ("TABLE_SCHEMA", 64),
        ("TABLE_NAME", 64),
        ("PRIVILEGE_TYPE", 64),
        ("IS_GRANTABLE", 3),
    ),
    "COLUMN_PRIVILEGES": (
        ("GRANTEE", 385),
        ("TABLE_CATALOG", 512),
        ("TABLE_SCHEMA", 64),
        ("TABLE_NAME", 64),
        ("COLUMN_NAME", 64),
        ("PRIVILEGE_TYPE", 64),
        ("IS_GRANTABLE", 3),
    ),
}


def _hex(value: str) -> str:
    return "X'" + value.encode("utf-8").hex() + "'"


def grantee(account: Account) -> str:
    """``'u'@'h'`` as information_schema's GRANTEE spells the account."""
    return f"'{account.user}'@'{account.host}'"


def grant_rows(view: str, snapshot: CatalogSnapshot, account: Account) -> list[tuple[str, ...]]:
    """The rows of information_schema.``view`` (upper case) for ``account``."""
    held = snapshot.grants_of(account.id)
    who = grantee(account)

    def shown(key: str) -> str:
        # A sharded database: its logical name, as its TABLES and SCHEMATA show it. Else the
        # shard's: lower case (shards run with lower_case_table_names=1; MariaDB keeps grants
        # and shows schemas in lower case there).
        database = snapshot.database(key)
        return database.name if database is not None and database.sharded else key

    if view == "USER_PRIVILEGES":
        return [(who, "def", "USAGE", "NO")]
    if view == "SCHEMA_PRIVILEGES":
        return [
            (who, "def", shown(key), name, "NO")
            for key in sorted(held.db_privs)
            for name in priv_names(held.db_privs[key])
        ]
    if view == "TABLE_PRIVILEGES":
        return [
            (who, "def", shown(key), table, name, "NO")
            for key, table in sorted(held.table_privs)
            for name in priv_names(held.table_privs[(key, table)])
        ]
    return []  # COLUMN_PRIVILEGES: the catalog has no column grants


def _value(value: str | None, length: int) -> str:
    """A column value of the view's type: VARCHAR(length) utf8mb3 (utf8mb3_general_ci; a
    CAST to CHAR(n) is a VARCHAR(n), and reads in sqlglot too: a sharded database's joins),
    NOT NULL (IFNULL with a NOT NULL second argument is NOT NULL, and so is the derived
    table's column: the shard then says NOT NULL where the view's column is, and not on an
    outer join's nullable side, as for the view)."""
    literal = "NULL" if value is None else _hex(value)
    return f"IFNULL(CAST({literal} AS CHAR({length}) CHARACTER SET utf8mb3), _utf8mb3'')"


def derived_table(view: str, rows: Sequence[tuple[str, ...]]) -> str:
    """A parenthesized SELECT standing for information_schema.``view`` with these rows. Always
    a UNION (an empty SELECT of the same columns last): MariaDB merges a derived table of one
    SELECT into the statement, where its columns would stay NOT NULL on an outer join's
    nullable side; a UNION is materialized, a table as the view is."""
    columns = GRANT_VIEW_COLUMNS[view]
    empty = ", ".join(f"{_value(None, length)} AS `{name}`" for name, length in columns)
    selects = []
    for row in rows:
        items = ", ".join(
            f"{_value(value, length)} AS `{name}`"
            for value, (name, length) in zip(row, columns, strict=True)
        )
        selects.append(f"SELECT {items}")
    if not selects:
        selects.append(f"SELECT {empty} WHERE 0")
    selects.append(f"SELECT {empty} WHERE 0")
    return "(" + " UNION ALL ".join(selects) + ")"


def grant_view_table(view: str, snapshot: CatalogSnapshot, account: Account) -> str:
    """The derived table standing for information_schema.``view`` for ``account``."""
    return derived_table(view, grant_rows(view, snapshot, account))
