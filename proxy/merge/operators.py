"""The merge of the partitions' result streams into the answer one MariaDB would send.

:func:`merge_text_results` takes a :class:`~proxy.merge.rewrite.MergePlan` and, per partition,
the payloads of the text result set the partition sent for the plan's statement (column count,
column definitions, EOF, rows, EOF — as read from the backend, without frame headers), and
yields the client's payloads (column count, column definitions, EOF unless DEPRECATE_EOF, rows,
EOF or OK). Rows stream through: an ORDER BY is a k-way merge (a heap of one row per partition),
LIMIT stops early, groups arriving sorted merge as they arrive; only a GROUP BY whose ORDER BY
needs the finished groups holds them, under ``MergeLimits.max_groups``.
"""

from __future__ import annotations

import enum
import heapq
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any, Final, TypeVar

from proxy.merge.partition import ResultPayloads
from proxy.merge.rewrite import (
    DEFAULT_LIMITS,
    Column,
    Expr,
    InList,
    Lit,
    MergeLimits,
    MergePlan,
    Op,
    Ref,
    Unary,
)
from proxy.merge.rows import BinaryRows, RowCodec, TextRows, sort_key_with
from proxy.merge.values import (
    ColumnDefinition,
    Descending,
    Kind,
    decode_decimal,
    general_ci_key,
    time_value,
    unicode_bin_key,
)
from proxy.wire.packets import (
    Capability,
    build_column_count,
    build_eof,
    build_err,
    build_ok,
    is_eof_packet,
    is_err_packet,
    parse_eof,
    read_lenenc_int,
)
from proxy.wire.stream import RowMerge

ER_NOT_SUPPORTED_YET = 1235
Row = list[bytes | None]
_T = TypeVar("_T")


class MergeError(Exception):
    """The merge cannot go on: answered to the client as this MySQL error."""

    def __init__(self, message: str, errno: int = ER_NOT_SUPPORTED_YET, sqlstate: str = "42000"):
        super().__init__(message)
        self.errno = errno
        self.sqlstate = sqlstate
        self.message = message


class _PartitionFailed(Exception):
    """A partition answered an ERR packet: the client gets it as it is."""

    def __init__(self, payload: bytes) -> None:
        super().__init__("partition error")
        self.payload = payload


class _NotReady(enum.Enum):
    NOT_READY = enum.auto()  # a partition's next row is not received yet


NOT_READY: Final = _NotReady.NOT_READY


class _Partition:
    """One partition's result set, read packet by packet."""

    def __init__(self, index: int, payloads: AsyncIterator[bytes]) -> None:
        self.index = index
        self._payloads = payloads
        self._pending: bytes | None = None
        self.columns: list[ColumnDefinition] = []
        self.raw_columns: list[bytes] = []
        self.warnings = 0
        self.status = 2
        self.done = False
        self.opened = False
        self.codec: RowCodec | None = None
        # The reader's buffered next payload without a coroutine, when it has one.
        self._reader = payloads if isinstance(payloads, ResultPayloads) else None
        self._nowait = payloads.next_nowait if isinstance(payloads, ResultPayloads) else None
        # The largest packet its reader takes (a RowMerge leaves larger ones to the reader).
        self.max_packet = payloads.max_packet if isinstance(payloads, ResultPayloads) else 0

    async def _next(self) -> bytes:
        if self._pending is not None:
            payload, self._pending = self._pending, None
            return payload
        try:
            return await anext(self._payloads)
        except StopAsyncIteration:
            raise MergeError(f"partition {self.index} ended its result early") from None

    async def open(self) -> None:
        self.opened = True
        first = await self._next()
        if is_err_packet(first):
            self.done = True
            raise _PartitionFailed(first)
        if first[:1] in (b"\x00", b"\xfe"):
            raise MergeError(f"partition {self.index} sent no result set")
        count, pos = read_lenenc_int(first, 0)
        if count is None or (pos < len(first) and first[pos] == 0):
            raise MergeError(f"partition {self.index} skipped its column definitions")
        for _ in range(count):
            raw = await self._next()
            self.raw_columns.append(raw)
            self.columns.append(ColumnDefinition.parse(raw))
        after = await self._next()
        if is_eof_packet(after):
            self.warnings, self.status = parse_eof(after)
        else:
            self._pending = after  # DEPRECATE_EOF: no EOF between definitions and rows

    def take_row(self) -> bytes | _NotReady | None:
        """:meth:`row` when the next row is already received (the merge's inner loop calls
        this first: no coroutine per row), else ``NOT_READY``."""
        if self.done:
            return None
        if self._nowait is None or self._pending is not None:
            return NOT_READY
        payload = self._nowait()
        return NOT_READY if payload is None else self._row(payload)

    def rows_buffer(self) -> bytearray | None:
        """The receive buffer a ``RowMerge`` may cut this partition's next rows from (None:
        rows come only through :meth:`row`)."""
        if self.done or self._reader is None or self._pending is not None:
            return None
        return self._reader.rows_buffer()

    def consumed(self) -> None:
        if self._reader is not None:
            self._reader.consumed()

    async def row(self) -> bytes | None:
        """The next row's payload, or None at the end of the result set."""
        if self.done:
            return None
        return self._row(await self._next())

    def _row(self, payload: bytes) -> bytes | None:
        if is_err_packet(payload):
            self.done = True
            raise _PartitionFailed(payload)
        if payload[:1] == b"\xfe" and len(payload) < 0xFFFFFF:
            self.done = True
            if len(payload) < 9:
                self.warnings, self.status = parse_eof(payload)
            return None
        return payload

    async def rows(self) -> AsyncIterator[Row]:
        count = len(self.columns)
        codec = self.codec
        assert codec is not None
        while (payload := await self.row()) is not None:
            yield codec.parse(payload, count)

    async def drain(self) -> None:
        while await self.row() is not None:
            pass


# ------------------------------------------------------------------------------- ordering


def _row_key_function(
    order: Sequence[tuple[int, bool]], codec: RowCodec
) -> Callable[[Row], tuple[Any, ...]]:
    parts = [(col, desc, sort_key_with(codec, col)) for col, desc in order]

    def key(row: Row) -> tuple[Any, ...]:
        return tuple(Descending(k(row[c])) if d else k(row[c]) for c, d, k in parts)

    return key


async def _k_way(
    sources: Sequence[AsyncIterator[_T]], key: Callable[[_T], tuple[Any, ...]]
) -> AsyncIterator[_T]:
    """The sources' items, each source already sorted by ``key``, merged in order (ties keep
    the sources' order: stable). Holds one item per source."""
    heap: list[tuple[tuple[Any, ...], int, _T]] = []
    for i, it in enumerate(sources):
        item = await anext(it, None)
        if item is not None:
            heap.append((key(item), i, item))
    heapq.heapify(heap)
    while heap:
        _, i, item = heap[0]
        yield item
        nxt = await anext(sources[i], None)
        if nxt is None:
            heapq.heappop(heap)
        else:
            heapq.heapreplace(heap, (key(nxt), i, nxt))


async def _concatenate(sources: Sequence[AsyncIterator[_T]]) -> AsyncIterator[_T]:
    for it in sources:
        async for item in it:
            yield item


def _payload_key_function(
    order: Sequence[tuple[int, bool]], codec: RowCodec
) -> Callable[[bytes], tuple[Any, ...]]:
    """The sort key of a raw row, decoding only the columns up to the last key."""
    return codec.payload_key(order)


# ----------------------------------------------------------------------------- grouping


@dataclass
class _Group:
    key: tuple[Any, ...]
    values: list[Any]  # per column: accumulated (Python values for aggregates)


def _group_key_function(codec: RowCodec, keys: Sequence[int]) -> Callable[[Row], tuple[Any, ...]]:
    """Equality of group keys as the server decides it (collation, numeric value)."""
    funcs = [(c, sort_key_with(codec, c)) for c in keys]
    return lambda row: tuple(k(row[c]) for c, k in funcs)


class _Aggregator:
    def __init__(self, plan: MergePlan, codec: RowCodec) -> None:
        self.plan = plan
        self.codec = codec
        self.columns = codec.columns
        self.ops = plan.columns
        self.min_max_keys = [
            sort_key_with(codec, i) if c.op in (Op.MIN, Op.MAX) else None
            for i, c in enumerate(self.ops)
        ]

    def start(self, key: tuple[Any, ...], row: Row) -> _Group:
        values: list[Any] = []
        for i, c in enumerate(self.ops):
            values.append(self._initial(i, c, row[i]))
        return _Group(key, values)

    def _number(self, i: int, raw: bytes) -> Decimal | float:
        return self.codec.number(i, raw)

    def _count(self, i: int, raw: bytes | None) -> int:
        return 0 if raw is None else int(self.codec.number(i, raw))

    def _initial(self, i: int, c: Column, raw: bytes | None) -> Any:
        if c.op is Op.COUNT:
            return self._count(i, raw)
        if c.op is Op.SUM:
            return None if raw is None else self._number(i, raw)
        return raw  # KEY, FIRST, MIN, MAX keep text; AVG is computed at the end

    def add(self, group: _Group, row: Row) -> None:
        values = group.values
        for i, c in enumerate(self.ops):
            raw = row[i]
            op = c.op
            if op is Op.COUNT:
                if raw is not None:
                    values[i] += self._count(i, raw)
            elif op is Op.SUM:
                if raw is not None:
                    n = self._number(i, raw)
                    values[i] = n if values[i] is None else values[i] + n
            elif op is Op.MIN or op is Op.MAX:
                if raw is None:
                    continue
                if values[i] is None:
                    values[i] = raw
                    continue
                k = self.min_max_keys[i]
                assert k is not None
                if (k(raw) < k(values[i])) if op is Op.MIN else (k(raw) > k(values[i])):
                    values[i] = raw
            elif op is Op.FIRST and values[i] is None and raw is not None:
                values[i] = raw

    def finish(self, group: _Group) -> Row:
        values = group.values
        out: Row = []
        for i, c in enumerate(self.ops):
            v = values[i]
            col = self.columns[i]
            if c.op is Op.COUNT:
                out.append(self.codec.encode_count(i, v))
            elif c.op is Op.SUM:
                out.append(None if v is None else self.codec.encode_number(i, v))
            elif c.op is Op.AVG:
                total, count = values[c.sum_column], values[c.count_column]
                if total is None or not count:
                    out.append(None)
                elif isinstance(total, float) or col.kind is Kind.FLOAT:
                    out.append(self.codec.encode_number(i, float(total) / count))
                else:
                    with localcontext() as ctx:
                        ctx.prec = 200
                        avg = (total / Decimal(count)).quantize(
                            Decimal(1).scaleb(-col.decimals), rounding=ROUND_HALF_UP
                        )
                    out.append(self.codec.encode_number(i, avg))
            else:
                out.append(v)
        return out


async def _grouped(
    rows: AsyncIterator[Row], plan: MergePlan, codec: RowCodec
) -> AsyncIterator[Row]:
    """Adjacent rows with equal group keys combined (rows arrive sorted on the keys; with no
    key, every row is one group — an aggregate without GROUP BY)."""
    agg = _Aggregator(plan, codec)
    group_key = _group_key_function(codec, plan.group_columns)
    current: _Group | None = None
    async for row in rows:
        key = group_key(row)
        if current is not None and current.key == key:
            agg.add(current, row)
            continue
        if current is not None:
            yield agg.finish(current)
        current = agg.start(key, row)
    if current is not None:
        yield agg.finish(current)


# ------------------------------------------------------------------------------- HAVING


@dataclass(frozen=True)
class _Value:
    value: Any  # Decimal | float | str | None
    collation: Kind | None = None  # for strings from a column


def _column_value(raw: bytes | None, index: int, codec: RowCodec) -> _Value:
    if raw is None:
        return _Value(None)
    raw = codec.text(index, raw)
    kind = codec.columns[index].kind
    if kind in (Kind.INTEGER, Kind.DECIMAL):
        return _Value(decode_decimal(raw))
    if kind is Kind.FLOAT:
        return _Value(float(raw))
    text = raw.decode("utf-8", "surrogateescape")
    if kind in (Kind.DATETIME, Kind.TIME):
        return _Value(text, kind)
    return _Value(text, kind if kind in (Kind.GENERAL_CI, Kind.UNICODE_BIN) else None)


_DATETIME_TEXT = re.compile(r"\s*(\d+)-(\d+)-(\d+)(?:[ T](\d+):(\d+):(\d+)(?:\.(\d{1,6}))?)?\s*$")
_TIME_TEXT = re.compile(r"\s*-?\d+:\d\d:\d\d(?:\.\d{1,6})?\s*$")


def _temporal_key(text: str, kind: Kind) -> Any:
    """A DATETIME's or TIME's value from its text (a column's, or a literal compared with
    one, which the server converts to the column's type), or None if it is not one."""
    if kind is Kind.TIME:
        return time_value(text.strip().encode()) if _TIME_TEXT.match(text) else None
    m = _DATETIME_TEXT.match(text)
    if m is None:
        return None
    parts = [int(g) if g else 0 for g in m.groups()[:6]]
    return (*parts, int((m.group(7) or "").ljust(6, "0")))


def _as_number(v: Any) -> Decimal | float:
    if isinstance(v, Decimal | float):
        return v
    text = str(v).strip()
    end = 0
    while end < len(text) and (text[end].isdigit() or text[end] in "+-.eE"):
        end += 1
    for cut in range(end, 0, -1):
        try:
            return Decimal(text[:cut])
        except ArithmeticError:
            continue
    return Decimal(0)


def _compare(a: _Value, b: _Value) -> int | None:
    if a.value is None or b.value is None:
        return None
    x, y = a.value, b.value
    if isinstance(x, str) and isinstance(y, str):
        collation = a.collation or b.collation
        if collation in (Kind.DATETIME, Kind.TIME):
            tx, ty = _temporal_key(x, collation), _temporal_key(y, collation)
            if tx is not None and ty is not None:
                return int(tx > ty) - int(tx < ty)
        if collation is Kind.GENERAL_CI:
            kx, ky = general_ci_key(x), general_ci_key(y)
            return (kx > ky) - (kx < ky)
        if collation is Kind.UNICODE_BIN:
            kx, ky = unicode_bin_key(x), unicode_bin_key(y)
            return (kx > ky) - (kx < ky)
        return (x > y) - (x < y)
    nx, ny = _as_number(x), _as_number(y)
    if isinstance(nx, float) or isinstance(ny, float):
        fx, fy = float(nx), float(ny)
        return (fx > fy) - (fx < fy)
    return (nx > ny) - (nx < ny)


def _truth(v: _Value) -> bool | None:
    if v.value is None:
        return None
    return bool(_as_number(v.value))


def _bool(b: bool | None) -> _Value:
    return _Value(None if b is None else Decimal(1 if b else 0))


def _evaluate(expr: Expr, row: Row, columns: RowCodec) -> _Value:
    if isinstance(expr, Ref):
        return _column_value(row[expr.column], expr.column, columns)
    if isinstance(expr, Lit):
        return _Value(expr.value)
    if isinstance(expr, Unary):
        v = _evaluate(expr.arg, row, columns)
        if expr.op == "isnull":
            return _bool(v.value is None)
        if expr.op == "notnull":
            return _bool(v.value is not None)
        if expr.op == "neg":
            return _Value(None if v.value is None else -_as_number(v.value))
        t = _truth(v)
        return _bool(None if t is None else not t)
    if isinstance(expr, InList):
        v = _evaluate(expr.arg, row, columns)
        seen_null = False
        for item in expr.items:
            c = _compare(v, _evaluate(item, row, columns))
            if c == 0:
                return _bool(not expr.negated)
            seen_null = seen_null or c is None
        return _bool(None if seen_null or v.value is None else expr.negated)
    left = _evaluate(expr.left, row, columns)
    right = _evaluate(expr.right, row, columns)
    op = expr.op
    if op in ("and", "or", "xor"):
        a, b = _truth(left), _truth(right)
        if op == "and":
            if a is False or b is False:
                return _bool(False)
            return _bool(None if a is None or b is None else True)
        if op == "or":
            if a or b:
                return _bool(True)
            return _bool(None if a is None or b is None else False)
        return _bool(None if a is None or b is None else a != b)
    if op == "<=>":
        if left.value is None or right.value is None:
            return _bool(left.value is None and right.value is None)
        return _bool(_compare(left, right) == 0)
    if op in ("=", "<>", "<", "<=", ">", ">="):
        c = _compare(left, right)
        if c is None:
            return _Value(None)
        return _bool(
            {"=": c == 0, "<>": c != 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
        )
    if left.value is None or right.value is None:
        return _Value(None)
    x, y = _as_number(left.value), _as_number(right.value)
    if isinstance(x, float) or isinstance(y, float):
        x, y = float(x), float(y)
    with localcontext() as ctx:
        ctx.prec = 200
        if op == "+":
            return _Value(x + y)  # type: ignore[operator]
        if op == "-":
            return _Value(x - y)  # type: ignore[operator]
        if op == "*":
            return _Value(x * y)  # type: ignore[operator]
        if not y:
            return _Value(None)
        return _Value(x / y)  # type: ignore[operator]


async def _having(rows: AsyncIterator[Row], expr: Expr, columns: RowCodec) -> AsyncIterator[Row]:
    async for row in rows:
        if _truth(_evaluate(expr, row, columns)):
            yield row


# ---------------------------------------------------------------------------- the merge


def _check_columns(plan: MergePlan, partitions: Sequence[_Partition]) -> list[ColumnDefinition]:
    columns = partitions[0].columns
    expected = plan.visible + plan.hidden
    for p in partitions:
        if len(p.columns) != expected:
            raise MergeError(
                f"partition {p.index} answered {len(p.columns)} columns, the plan has {expected}"
            )
    needs_order = {k.column for k in (*plan.order, *plan.partition_order)}
    needs_order |= {i for i, c in enumerate(plan.columns) if c.op in (Op.MIN, Op.MAX, Op.KEY)}
    for i in sorted(needs_order):
        column = columns[i]
        if not column.sortable:
            raise MergeError(f"ordering or grouping across partitions on {column.describe()}")
    return columns


async def _sorted_groups(
    rows: AsyncIterator[Row], plan: MergePlan, codec: RowCodec, limits: MergeLimits
) -> AsyncIterator[Row]:
    held: list[Row] = []
    async for row in rows:
        held.append(row)
        if len(held) > limits.max_groups:
            raise MergeError(
                f"a GROUP BY ordered by an aggregate across partitions with more than "
                f"{limits.max_groups} groups (the proxy's cap)"
            )
    key = _row_key_function([(k.column, k.descending) for k in plan.order], codec)
    held.sort(key=key)
    for row in held:
        yield row


async def _window(items: AsyncIterator[_T], offset: int, limit: int | None) -> AsyncIterator[_T]:
    if limit == 0:
        return
    skipped = 0
    sent = 0
    async for item in items:
        if skipped < offset:
            skipped += 1
            continue
        yield item
        sent += 1
        if limit is not None and sent >= limit:
            return


# Rows a merge hands on at once (a list): the merge's loop runs without a coroutine per row.
BATCH = 1024


async def _row_payloads(
    plan: MergePlan, partitions: Sequence[_Partition], codec: RowCodec
) -> AsyncIterator[list[bytes]]:
    """Rows that are not combined, in lists: the partitions' payloads as they came (a k-way
    merge decodes only the sort keys), cut to the client's columns when hidden ones follow.
    No generator per stage: this is the path of large results."""
    skip = plan.offset
    left = -1 if plan.limit is None else plan.limit
    if left == 0:
        return
    cut = codec.cut if plan.hidden else None
    visible = plan.visible
    batch: list[bytes]
    if not plan.partition_order:
        for p in partitions:
            batch = []
            while True:
                payload = p.take_row()
                if payload is NOT_READY:
                    if batch:
                        yield batch
                        batch = []
                    payload = await p.row()
                if payload is None:
                    break
                if skip:
                    skip -= 1
                    continue
                batch.append(payload if cut is None else cut(payload, visible))
                left -= 1
                if not left or len(batch) >= BATCH:
                    yield batch
                    batch = []
                    if not left:
                        return
            if batch:
                yield batch
        return
    order = [(k.column, k.descending) for k in plan.partition_order]
    if isinstance(codec, TextRows):
        upto, parts = codec.key_parts(order)
        key = None
    else:
        upto, parts, key = 0, (), _payload_key_function(order, codec)
    heads = [await p.row() for p in partitions]
    merge = RowMerge(
        [p.rows_buffer() for p in partitions],
        min([p.max_packet for p in partitions]),
        upto,
        parts,
        key,
    )
    for i, head in enumerate(heads):
        merge.set_head(i, head)
    while True:
        batch = []
        waiting = merge.run(batch, BATCH if left < 0 else min(left, BATCH))
        for p in partitions:
            p.consumed()
        if skip:
            dropped = min(skip, len(batch))
            del batch[:dropped]
            skip -= dropped
        if batch:
            if cut is not None:
                batch = [cut(payload, visible) for payload in batch]
            if left > 0:
                left -= len(batch)
            yield batch
            if not left:
                return
        if waiting == -1:
            return
        if waiting >= 0:
            merge.set_head(waiting, await partitions[waiting].row())


async def _group_payloads(
    plan: MergePlan, partitions: Sequence[_Partition], codec: RowCodec, limits: MergeLimits
) -> AsyncIterator[bytes]:
    """Rows combined into groups (aggregates, GROUP BY, DISTINCT), encoded anew."""
    sources = [p.rows() for p in partitions]
    rows: AsyncIterator[Row]
    if plan.partition_order:
        order = [(k.column, k.descending) for k in plan.partition_order]
        rows = _k_way(sources, _row_key_function(order, codec))
    else:
        rows = _concatenate(sources)
    rows = _grouped(rows, plan, codec)
    if plan.having is not None:
        rows = _having(rows, plan.having, codec)
    if plan.sort_after_merge:
        rows = _sorted_groups(rows, plan, codec, limits)
    visible = plan.visible
    async for row in _window(rows, plan.offset, plan.limit):
        yield codec.build(row[:visible])


def merge_text_results(
    plan: MergePlan,
    partitions: Sequence[AsyncIterator[bytes]],
    *,
    capabilities: int,
    limits: MergeLimits = DEFAULT_LIMITS,
    schema: bytes | None = None,
    tables: Mapping[bytes, bytes] | None = None,
) -> AsyncIterator[bytes]:
    """:func:`merge_results` of text result sets (COM_QUERY)."""
    return merge_results(
        plan, partitions, capabilities=capabilities, limits=limits, schema=schema, tables=tables
    )


async def merge_results(
    plan: MergePlan,
    partitions: Sequence[AsyncIterator[bytes]],
    *,
    capabilities: int,
    binary: bool = False,
    limits: MergeLimits = DEFAULT_LIMITS,
    schema: bytes | None = None,
    tables: Mapping[bytes, bytes] | None = None,
) -> AsyncIterator[bytes]:
    """:func:`merge_batches`, one payload at a time."""
    async for batch in merge_batches(
        plan,
        partitions,
        capabilities=capabilities,
        binary=binary,
        limits=limits,
        schema=schema,
        tables=tables,
    ):
        for payload in batch:
            yield payload


async def merge_batches(
    plan: MergePlan,
    partitions: Sequence[AsyncIterator[bytes]],
    *,
    capabilities: int,
    binary: bool = False,
    limits: MergeLimits = DEFAULT_LIMITS,
    schema: bytes | None = None,
    tables: Mapping[bytes, bytes] | None = None,
) -> AsyncIterator[list[bytes]]:
    """The client's payloads for ``plan``, merged from the partitions' result sets.

    ``partitions``: per partition, its answer to ``plan.sql`` as payloads (a result set, or an
    ERR packet): text rows for COM_QUERY, binary rows (``binary=True``) for a COM_STMT_EXECUTE
    of the statement prepared on each partition. ``capabilities``: the client's
    (DEPRECATE_EOF, CACHE_METADATA). ``schema`` and
    ``tables`` rename the physical database and table names in the column definitions to the
    logical ones. A partition's ERR packet is passed on as the answer (or ends the row stream,
    as a server's error mid-result does); an error of the merge itself is sent as an ERR
    packet. When the generator is exhausted every partition's result has been read to its end.
    The payloads come in lists (as many rows as the merge had at hand: write them at once).
    """
    opened = [_Partition(i, it) for i, it in enumerate(partitions)]
    try:
        for p in opened:
            await p.open()
        plan = plan.bound(len(opened[0].columns))
        columns = _check_columns(plan, opened)
        codec: RowCodec = BinaryRows(columns) if binary else TextRows(columns)
        for p in opened:
            p.codec = codec
        renames = {bytes(k): bytes(v) for k, v in (tables or {}).items()}
        count = build_column_count(plan.visible)
        if capabilities & Capability.MARIADB_CLIENT_CACHE_METADATA:
            count += b"\x01"
        header = [count]
        for raw, column in zip(opened[0].raw_columns[: plan.visible], columns, strict=False):
            if schema is None and not renames:
                header.append(raw)
            else:
                header.append(column.renamed(schema, renames).build())
        deprecate_eof = bool(capabilities & Capability.DEPRECATE_EOF)
        if not deprecate_eof:
            header.append(build_eof(status=opened[0].status))
        yield header
        if plan.aggregate or plan.distinct:
            async for row in _group_payloads(plan, opened, codec, limits):
                yield [row]
        else:
            async for batch in _row_payloads(plan, opened, codec):
                yield batch
        for p in opened:
            await p.drain()
        warnings = min(sum(p.warnings for p in opened), 0xFFFF)
        status = opened[0].status
        if deprecate_eof:
            yield [
                build_ok(capabilities=capabilities, status=status, warnings=warnings, header=0xFE)
            ]
        else:
            yield [build_eof(warnings=warnings, status=status)]
    except _PartitionFailed as failed:
        await _drain_quietly(opened)
        yield [failed.payload]
    except MergeError as exc:
        await _drain_quietly(opened)
        yield [
            build_err(
                errno=exc.errno,
                sqlstate=exc.sqlstate,
                message=exc.message,
                capabilities=capabilities,
            )
        ]


async def _drain_quietly(partitions: Sequence[_Partition]) -> None:
    """Read every partition's answer to its end (the connections stay usable)."""
    for p in partitions:
        try:
            if not p.opened:
                await p.open()
            await p.drain()
        except (_PartitionFailed, MergeError, ValueError):
            continue
