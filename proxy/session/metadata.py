"""Hiding tables an account may not see from SHOW TABLES and information_schema results.

The per-database backend account sees every table of its database, so an account holding only
table-level grants would learn the names of the other tables. For such accounts the proxy
buffers these (small) metadata results, drops the rows naming invisible tables, and re-sends
the rest. A result that names no table column cannot be filtered and is refused instead.

Pure functions over packet payloads: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from proxy.wire.packets import read_lenenc_int, read_lenenc_str

# SHOW [FULL] TABLES and SHOW TABLE STATUS name the table in their first column.
SHOW_TABLES = re.compile(r"^\s*SHOW\s+(?:FULL\s+)?TABLES\b|^\s*SHOW\s+TABLE\s+STATUS\b", re.I)


@dataclass(frozen=True, slots=True)
class Column:
    org_table: str
    org_name: str


def _column(payload: bytes) -> Column:
    pos = 0
    fields: list[bytes] = []
    for _ in range(6):  # catalog, schema, table, org_table, name, org_name
        value, pos = read_lenenc_str(payload, pos)
        fields.append(value or b"")
    return Column(fields[3].decode("utf-8", "replace"), fields[5].decode("utf-8", "replace"))


_SELECT_WORD = re.compile(r"\bSELECT\b", re.I)
_JOINING = re.compile(r"\b(?:JOIN|UNION|EXCEPT|INTERSECT|STRAIGHT_JOIN)\b", re.I)
_FROM_LIST = re.compile(
    r"\bFROM\b(.*?)(?:\bWHERE\b|\bGROUP\b|\bORDER\b|\bLIMIT\b|\bHAVING\b|$)", re.I | re.S
)


def metadata_query_is_simple(text: str, show: bool) -> bool:
    """Only shapes whose visible rows are all they reveal can be filtered: one SELECT over one
    table, no subquery, join or union (a condition on a hidden table would otherwise show
    through whether rows come back). SHOW statements must not embed a SELECT at all."""
    selects = len(_SELECT_WORD.findall(text))
    if show:
        return selects == 0
    if selects != 1 or _JOINING.search(text):
        return False
    from_list = _FROM_LIST.search(text)
    return from_list is not None and "," not in from_list.group(1)


def _is_eof(payload: bytes) -> bool:
    return payload[:1] == b"\xfe" and len(payload) < 9


def _row_values(payload: bytes, count: int) -> list[bytes | None]:
    values: list[bytes | None] = []
    pos = 0
    for _ in range(count):
        value, pos = read_lenenc_str(payload, pos)
        values.append(value)
    return values


def _find(columns: list[Column], wanted: str) -> int | None:
    # The original column name, never the alias: `'t' AS TABLE_NAME` must not pass for it.
    for index, column in enumerate(columns):
        if column.org_name.upper() == wanted:
            return index
    return None


def _shown(
    values: list[bytes | None],
    table_index: int,
    schema_index: int | None,
    visible: Callable[[str], bool],
) -> bool:
    schema = values[schema_index] if schema_index is not None else None
    if schema is not None and schema.lower() == b"information_schema":
        return True  # information_schema's own tables are no tenant's secret
    table = values[table_index]
    return table is not None and visible(table.decode("utf-8", "surrogateescape"))


class Unfilterable(Exception):
    """The result has no column naming the table, so rows cannot be filtered."""


def filter_tables(
    payloads: list[bytes], visible: Callable[[str], bool], *, first_column: bool
) -> list[bytes]:
    """Drop the rows of one text result set that name a table ``visible`` rejects.

    ``first_column``: the table is named by column 0 (SHOW TABLES); otherwise by a column
    called TABLE_NAME (information_schema), rows of information_schema's own tables kept.
    OK/ERR responses pass unchanged.
    """
    if not payloads or payloads[0][:1] in (b"\x00", b"\xff"):
        return payloads
    count, _ = read_lenenc_int(payloads[0], 0)
    if count is None:
        raise Unfilterable("bad column count")
    columns = [_column(p) for p in payloads[1 : 1 + count]]
    if first_column:
        table_index: int | None = 0
        schema_index = None
    else:
        # Every column must be a plain column of the table read: an expression or aggregate
        # (GROUP_CONCAT(TABLE_NAME), a literal) could carry any row's data under a visible name.
        if any(not column.org_table or not column.org_name for column in columns):
            raise Unfilterable("a computed column")
        table_index = _find(columns, "TABLE_NAME")
        schema_index = _find(columns, "TABLE_SCHEMA")
    if table_index is None:
        raise Unfilterable("no TABLE_NAME column")
    head = payloads[: 2 + count]  # column count, definitions, EOF
    kept = list(head)
    for payload in payloads[2 + count :]:
        if _is_eof(payload) or payload[:1] == b"\xff":
            kept.append(payload)
            continue
        values = _row_values(payload, count)
        if _shown(values, table_index, schema_index, visible):
            kept.append(payload)
    return kept
