"""The session's fast path: what :class:`FastPath` reads per statement and the code that reads it.

The fast hook (see ClientConnection) serves a command that arrives as one packet straight from
the client connection's ``data_received``: a COM_QUERY whose statement's analysis is cached (the
fast key), or a COM_STMT_EXECUTE, whose plan -- :func:`relayed_statement`, memoized per
statement for the current grant view -- is a relay with no effect on the session, on a live
backend connection; :meth:`FastPath.done` completes it when the answer is relayed. It is the
command loop's decision, cached, not a second decision procedure: anything else returns False
and the command loop (proxy/session/session.py) handles the packet.

Compiled (setup.py's COMPILED_MODULES) as an extension type typed by fast.pxd, together with the
code that reads its fields: the link's, the connection's and the client connection's fields and
the give-back are C reads and calls from here. The .py file is the code and the reference
(SHARDGATE_PURE_PYTHON=1 runs it).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from auth.catalog import CatalogSnapshot
from auth.errors import SqlError
from auth.model import Account, PhysicalDatabase
from proxy.backend.connection import BackendConnection, BackendError
from proxy.ops.metrics import ShardMetrics
from proxy.plan.plan import (
    COM_STMT_EXECUTE,
    NO_EFFECTS,
    Lexing,
    Plan,
    Prepared,
    Relay,
    SessionView,
    Sharded,
    relayed_statement,
)
from proxy.session.host import SessionHost
from proxy.session.link import BackendLink, client_codec
from proxy.shard.placement import IntegerHash, Placement
from proxy.shard.route import KeySlots, Layout, Target, TextShape
from proxy.sql.analyze import Statement, cached_shape, fast_literals
from proxy.sql.lexer import LexMode, ServerFlavor
from proxy.wire.stream import ClientConnection, ResponseKind, ResponseScanner

log = logging.getLogger("shardgate.session")

_COM_QUERY = 0x03
_CURSOR_FLAGS = 0x07  # CURSOR_TYPE_READ_ONLY | FOR_UPDATE | SCROLLABLE
# Plans the fast path remembers per grant view (by statement shape).
MEMO_SIZE = 1024
# On CPython 3.11 reading a member off an enum class (``ResponseKind.QUERY``) goes through
# EnumType.__getattr__'s slot, and an enum member's ``.value`` through a Python property: each
# several hundred instructions, not specialized. The fast path reads module constants and
# ``_value_`` (the member's value, the attribute ``.value`` returns) instead.
_QUERY = ResponseKind.QUERY
_monotonic = time.monotonic
# text_target's "not learnt yet" (ShardedExecutor.learn_text: this statement cannot tell).
UNLEARNT = object()
SHAPES_KEPT = 256  # a sharded database's text shapes a session remembers (each holds tokens)


class Activity:
    """What SHOW PROCESSLIST shows of a session."""

    def __init__(self, command: str = "Sleep", since: float = 0.0, info: str | None = None) -> None:
        self.command = command
        self.since = since
        self.info = info

    def __repr__(self) -> str:
        return f"Activity(command={self.command!r}, since={self.since!r}, info={self.info!r})"


class FastRoute:
    """The fast path's entry for one global table of a prepared statement on a sharded
    database routed by one integer key (``ShardedStatement.fast``; for the catalog snapshot
    and codec its targets are for): the target, its partition and its physical statement; the
    connection that statement was last found prepared on, its id there (4 bytes,
    little-endian; ``same_id``: the client's id) and whether that connection was sent the
    statement's parameter types; and the column-definition renaming for the plan's
    ``layout``. One lookup per execution (:meth:`FastPath.routed_execute`) instead of the
    target's, the physical statement's and the weak mappings'. Dropped with the statement's
    targets (``ShardedExecutor.refresh``), when its physical statements are closed and when
    its parameter types change (``_new_types``): a connection's entries in
    ``PhysicalStatement.on`` and ``typed`` are only ever added otherwise, so the memo stays
    what they say."""

    def __init__(
        self,
        target: Target,
        physical: Any,  # proxy/session/sharded.py's PhysicalStatement
        conn: BackendConnection,
        statement_id: bytes,
        same_id: bool,
        typed: bool,
        layout: Layout,
        columns: Callable[[bytes], bytes],
    ) -> None:
        self.target = target
        self.partition = target.partition
        self.physical = physical
        self.conn = conn
        self.statement_id = statement_id
        self.same_id = same_id
        self.typed = typed
        self.layout = layout
        self.columns = columns


class ShardedStatement:
    """A client's prepared statement on sharded or broadcast tables (proxy/session/sharded.py
    carries its executions out; an extension type, so :meth:`FastPath.routed_execute` reads
    its fields in C). Each execution is routed by its parameters; the physical statements it
    needs (the client's text with physical names, or a multi-row INSERT's rows of one
    partition) are prepared on a partition's connection the first time they run there."""

    def __init__(self, client_id: int, text: str, params: int, slots: KeySlots | None) -> None:
        self.client_id = client_id
        self.text = text  # the statement as routed (parameter markers kept)
        self.params = params
        self.slots = slots  # routed by key alone (no routing per execution), else None
        # The parameter types the last execution that sent them sent.
        self.types: bytes | None = None
        # Its physical statements by text (proxy/session/sharded.py's PhysicalStatement).
        self.physical: dict[str, Any] = {}
        # KeySlots' targets by placement, for one catalog snapshot.
        self.placed: dict[Placement, Target] = {}
        # ... by global table (IntegerHash.table), the fast path's, for the same snapshot.
        self.hashed: dict[int, Target] = {}
        # For what they were made: (catalog snapshot, session state, its version, handshake
        # collation, the client's codec they read).
        self.placed_for: tuple[object, object, int, int, str | None] | None = None
        self.failed: SqlError | None = None  # long data sent: the next execution's answer
        # The key is the one parameter, of a table sharded by HASH of an integer column.
        self.integer: IntegerHash | None = None
        # The fast path's entries by global table (``integer``'s; FastRoute), for the same
        # snapshot as ``hashed``.
        self.fast: dict[int, FastRoute] = {}
        # An execution sending no types whose one parameter is an integer of ``types``: its
        # packet's length (frame header included; -1: ``types`` are not one integer's) and,
        # for a signed one, 2 ** (bits - 1) (0: unsigned).
        self.fast_length = -1
        self.fast_half = 0


class TextRoute:
    """A text statement shape the fast path routes (:meth:`FastPath.text_target`; made by
    ``ShardedExecutor.learn_text``): the shape, the analysis of its statements (what the
    command loop's would be: the cached one of their fast key), their digest text and the
    layout the shape was made for; for a shape that reads rows, the renaming of its answers'
    column definitions (the logical database and tables where they name the physical ones)
    by physical database, made as they are met (``names``: proxy/session/sharded.py's
    LogicalNames).

    A shape keyed by an integer (HASH of an integer column, ``integer``: its IntegerHash)
    is placed in a few C operations (:meth:`table`); ``own_text`` remembers, by global
    table, where the physical text is the client's own: the physical database and the
    renaming (as ``columns``)."""

    def __init__(
        self,
        shape: TextShape,
        statement: Statement,
        digest: str,
        layout: Layout,
        names: Any,
        integer: IntegerHash | None,
    ) -> None:
        self.shape = shape
        self.statement = statement
        self.digest = digest
        self.layout = layout
        self.reads_rows = shape.reads_rows
        self.names = names
        self.kind = statement.kind.value  # (an Enum's value is a Python-level property)
        self.columns: dict[str, Callable[[bytes], bytes]] = {}
        self.own_text: dict[int, tuple[PhysicalDatabase, Callable[[bytes], bytes] | None]] = {}
        # TextShape.physical's reading of an integer key: the index of its literal's start
        # in the fast key's spans (-1: not an integer key), IntegerHash's low, high and
        # modulus, and whether a minus sign precedes it.
        self.key_at = -1
        self.low = self.high = self.modulus = 0
        self.negative = False
        if integer is not None and not shape.string:
            self.key_at = 2 * shape.key
            self.low, self.high, self.modulus = integer.low, integer.high, integer.modulus
            self.negative = shape.negative

    def table(self, sql: str, spans: tuple[int, ...]) -> int:
        """The global table of this statement's integer key (IntegerHash.table of the value
        TextShape.placement reads: decimal digits, a minus sign before them when the shape
        has one), for TextShape.on_table; -1: not an integer key, or one of more than 18
        digits or out of the column's range (TextShape.physical places those)."""
        at = self.key_at
        if at < 0:
            return -1
        start = spans[at]
        end = spans[at + 1]
        if not 0 < end - start <= 18:  # (below 10**18: no overflow of a C long long)
            return -1
        value = 0
        i = start
        while i < end:
            digit = ord(sql[i]) - 48
            if not 0 <= digit <= 9:
                return -1
            value = value * 10 + digit
            i += 1
        if self.negative:
            value = -value
        if not self.low <= value <= self.high:
            return -1
        return (value if value >= 0 else -value) % self.modulus


class FastSession(Protocol):
    """What the fast path reads of its session (proxy/session/session.py's Session)."""

    ctx: SessionHost[Any]
    client: ClientConnection
    link: BackendLink
    # (proxy/session/sharded.py's ShardedExecutor, which imports this module)
    sharded: Any
    account: Account | None
    current_db: str | None
    charset: int
    notes: list[tuple[str, int, str]]
    killed: bool
    prepared: dict[int, Prepared]
    activity: Activity
    checked_snapshot: CatalogSnapshot | None

    def lexing(self) -> Lexing: ...
    def view(self) -> SessionView: ...
    def fast_failed(self, conn: BackendConnection, error: BackendError) -> None: ...
    def fast_partition_failed(
        self, conn: BackendConnection, partition: int, error: BackendError
    ) -> None: ...
    def drained_after_fast(self) -> None: ...


def execute_types(payload: bytes, params: int, base: int = 0) -> tuple[int, bytes | None]:
    """Where a COM_STMT_EXECUTE's ``new_params_bound_flag`` is (its offset in ``payload``,
    whose command byte is at ``base``), and the types it sends (None: flag 0, "the types of
    the last execution"). (-1, None) without parameters or for a packet too short to hold
    them."""
    if params == 0:
        return -1, None
    flag_at = base + 10 + (params + 7) // 8
    if len(payload) <= flag_at:
        return -1, None
    if payload[flag_at] != 1:
        return flag_at, None
    end = flag_at + 1 + 2 * params
    return flag_at, payload[flag_at + 1 : end] if len(payload) >= end else None


def uint_le(packet: bytes, at: int) -> int:
    """The unsigned little-endian integer of ``packet[at:]`` (at most 8 bytes: a parameter's
    value), without the slice ``int.from_bytes`` would need."""
    value = 0
    i = len(packet)
    while i > at:  # (most significant byte first: no shift wider than a C int)
        i -= 1
        value = value * 256 + packet[i]
    return value


def opens_cursor(payload: bytes, base: int = 0) -> bool:
    """Whether a COM_STMT_EXECUTE asks for a cursor (its rows then wait for COM_STMT_FETCH)."""
    return len(payload) > base + 5 and bool(payload[base + 5] & _CURSOR_FLAGS)


def calls(statement: Statement) -> bool:
    """A CALL (its answer may have several result sets)."""
    return statement.text.lstrip()[:4].upper() == "CALL"


class HeldConnections:
    """The connections a sharded database's session holds to its physical databases other
    than 0 (``SessionPartitions``'), by index: the session state version each was given
    (``versions``), the catalog snapshot they follow and whether they hold LOCK TABLES'
    locks. ``ready`` is the fast path's test (compiled: it runs for every fast statement on
    another partition than the session's own)."""

    def __init__(self) -> None:
        self.conns: dict[int, BackendConnection] = {}
        self.versions: dict[int, int] = {}  # ... as of this version of the session state
        self.snapshot: object = None
        self.locked = False
        # Where the session's last statement ran besides its own connection: physical
        # database k's connection (k), several statements (partitions, physical tables:
        # -1), none (0). ROW_COUNT() and FOUND_ROWS() ask about it (ShardedExecutor).
        self.ran_on = 0

    def ready(self, index: int, snapshot: object, version: int) -> BackendConnection | None:
        """Physical database ``index``'s connection when it can run a statement now without
        any preparation (held, healthy, idle, with the session's state as of ``version``,
        for the catalog ``snapshot``). Under LOCK TABLES: None (the long way checks the
        tables locked)."""
        if index == 0 or self.locked or snapshot is not self.snapshot:
            return None
        conn = self.conns.get(index)
        if conn is None or conn.broken or conn.relaying or conn.is_closing():
            return None
        if self.versions.get(index) != version:
            return None
        return conn


class FastPath:
    """A session's fast path (one per session): the state it reads per statement."""

    def __init__(self, session: FastSession) -> None:
        self.session = session
        self.ctx = session.ctx
        self.client = session.client
        self.link = session.link
        self.sharded = session.sharded
        self.held: HeldConnections = session.sharded.source.held
        # The memoized plans, by statement object, for one grant view (catalog snapshot,
        # account, current database, session state and its version).
        self.memo: dict[int, tuple[Statement, Plan]] = {}
        self.memo_snapshot: object = None
        self.memo_account: object = None
        self.memo_db: str | None = None
        self.memo_state: object = None
        self.memo_version: object = 0
        # The fast command in flight: its digest text and when it was sent.
        self.digest = ""
        self.started = 0.0
        # The metrics of the shards it relayed statements from, by name (``Metrics.shard``
        # keeps one per shard for the process's life).
        self.shard_metrics: dict[str, ShardMetrics] = {}
        # ... on a sharded database, another partition's connection (and its index) it runs on.
        self.fast_conn: BackendConnection | None = None
        self.fast_partition = 0
        # On a sharded database, the connection to another partition than the session's own
        # whose diagnostics area is the session's (the last statement that started one ran
        # there: SHOW WARNINGS answers from it, proxy/session/session.py); None: the session's
        # own connection's. (A plain relay to the session's own connection waits for the
        # command loop while it is set: whether that statement starts a new area is decided
        # there.)
        self.area: BackendConnection | None = None
        # ``done`` and ``partition_done``, bound once (the relay's completion of a fast
        # statement on the session's own connection, on another partition's).
        self.relay_done = self.done
        self.relay_partition_done = self.partition_done
        # A sharded database's text statements' shapes by fast key (text_target), for the
        # catalog snapshot, current database and lexer state in ``shapes_for``; None: the
        # shape's statements go the long way.
        self.shapes: dict[str, Any] = {}  # (TextRoute, None or UNLEARNT)
        self.shapes_for: tuple[object, str | None, LexMode, ServerFlavor | None] = (
            None,
            None,
            LexMode(),
            None,
        )

    def hook(self, packet: bytes) -> bool:
        """The fast hook: serve a command without waking the session's task (False: the
        command loop handles it)."""
        session = self.session
        if packet[3] != 0 or session.notes or session.killed or self.ctx.draining:
            return False
        sharded = self.sharded
        if sharded.in_charge():
            return False  # the proxy runs a transaction on a sharded database: the loop does
        code = packet[4]
        if code == COM_STMT_EXECUTE and sharded.statements:
            found = self.sharded_execute(packet)
            if found is not None:
                return found
        elif code == _COM_QUERY and sharded.database_sharded():
            return self.sharded_text(packet)
        if self.area is not None:
            return False  # (see ``area``)
        conn = self.link.reclaim()
        if conn is None or conn.broken:
            return False
        snapshot = self.ctx.snapshot()
        if snapshot is not session.checked_snapshot:
            return False  # the command loop checks the account against the new snapshot
        if code == COM_STMT_EXECUTE:
            statement_id = int.from_bytes(packet[5:9], "little")
            prepared = session.prepared.get(statement_id)
            wire = self.link.statements.by_id.get(statement_id)
            if prepared is None or wire is None or wire.cursor or wire.long_data or wire.failed:
                return False
            if prepared.lexing is not None and prepared.lexing != session.lexing():
                return False  # read otherwise now: the command loop refuses it
            backend_id = wire.id_on(conn)
            if backend_id is None or opens_cursor(packet, 4):
                return False  # prepared again, or a cursor opened: the command loop's
            flag_at, types = execute_types(packet, wire.params, 4)
            if types is not None:
                wire.took_types(types, conn)
            elif flag_at >= 0 and wire.types is not None and not wire.has_types_on(conn):
                return False  # the types are inserted by the command loop
            if backend_id != statement_id:
                packet = packet[:5] + backend_id.to_bytes(4, "little") + packet[9:]
            statement = prepared.statement
            digest = prepared.digest
            label = "execute"
            activity = session.activity
            info = activity.info
            command_name = "Execute"
        elif code == _COM_QUERY:
            sql = packet[5:].decode("utf-8", "surrogateescape")
            hit = cached_shape(sql, session.current_db)
            if hit is None:
                return False
            digest, statement = hit
            if statement.identity:
                return False  # rewritten at positions the command loop's analysis finds
            label = statement.kind._value_  # (see _QUERY)
            info = sql
            command_name = "Query"
        else:
            return False
        decided = self.memoized(statement, snapshot, False, None)
        if not isinstance(decided, Relay) or decided.effects is not NO_EFFECTS:
            return False
        self.ctx.metrics.statement(label)
        activity = session.activity
        activity.command = command_name
        # (one clock read for both: time.monotonic is the clock the latency is measured on)
        now = _monotonic()
        activity.since = now
        self.started = now
        activity.info = info
        conn.write_raw(packet)  # the client's bytes, unchanged
        client = self.client
        client.hold = True
        self.digest = digest
        columns = sharded.link_columns(snapshot)
        every = columns is not None and calls(statement)
        conn.start_relay(client, _QUERY, self.relay_done, columns, every)
        return True

    def sharded_execute(self, packet: bytes) -> bool | None:
        """The fast hook for an execution of a statement on a sharded database's tables
        (None: not one): routed by its key alone (:meth:`routed_execute`), authorized
        as the command loop would (memoized per grant view), relayed verbatim."""
        session = self.session
        statement_id = int.from_bytes(packet[5:9], "little")
        sharded = self.sharded.statements.get(statement_id)
        if sharded is None:
            return None
        prepared = session.prepared.get(statement_id)
        snapshot = self.ctx.snapshot()
        if prepared is None or snapshot is not session.checked_snapshot:
            return False
        if prepared.lexing is not None and prepared.lexing != session.lexing():
            return False  # read otherwise now: the command loop refuses it
        decided = self.memoized(prepared.statement, snapshot, True, None)
        if not isinstance(decided, Sharded):
            return False
        found = self.routed_execute(sharded, decided, packet, snapshot)
        if found is None:
            return False
        conn, partition, framed, columns = found
        self.ctx.metrics.statement("execute")
        activity = session.activity
        activity.command = "Execute"
        # (one clock read for both: time.monotonic is the clock the latency is measured on)
        now = _monotonic()
        activity.since = now
        self.started = now
        conn.write_raw(framed)
        self.relay_routed(conn, partition, columns, prepared.digest)
        return True

    def sharded_text(self, packet: bytes) -> bool:
        """The fast hook for a text statement on a sharded database: one whose shape is
        routed by one literal (:meth:`text_target`), authorized as the command loop would
        (memoized per grant view), sent to its partition -- the client's packet itself when
        the physical text is the client's -- and its answer relayed as the command loop
        relays a routed statement's."""
        session = self.session
        sql = packet[5:].decode("utf-8", "surrogateescape")
        if not sql.isascii():
            if client_codec(self.link.state, session.charset) != "utf-8":
                return False  # read in the client's character set: the command loop's
            try:
                sql.encode()
            except UnicodeEncodeError:
                return False  # not UTF-8: the command loop's
        snapshot = self.ctx.snapshot()
        if snapshot is not session.checked_snapshot:
            return False
        found = self.text_target(sql, snapshot)
        if found is None:
            return False
        known, physical, physical_sql, columns = found
        decided = self.memoized(known.statement, snapshot, False, known.shape)
        if not isinstance(decided, Sharded):
            return False
        partition = physical.index
        conn = self.serving(partition, snapshot)
        if conn is None:
            return False
        self.ctx.metrics.routed(known.kind)
        # (a command of its own, as the command loop's: FOUND_ROWS() after it is its
        # partition's when it sets it, else what it was -- an UPDATE or DELETE leaves it.
        # A SELECT after statements that set it needs no bookkeeping: where it runs is
        # where the next command finds it.)
        sharded = session.sharded
        if not known.statement.counts_found_rows:
            sharded.begin_command()
            sharded.left_found_rows()
        elif sharded.found_left or sharded.answered is not None:
            sharded.begin_command()
        activity = session.activity
        activity.command = "Query"
        now = _monotonic()
        activity.since = now
        self.started = now
        activity.info = sql
        if physical_sql is sql:
            conn.write_raw(packet)  # the client's bytes, unchanged
        else:
            conn.send(b"\x03" + physical_sql.encode())
        self.relay_routed(conn, partition, columns, known.digest)
        return True

    def text_target(
        self, sql: str, snapshot: CatalogSnapshot
    ) -> tuple[Any, PhysicalDatabase, str, Callable[[bytes], bytes] | None] | None:
        """The target of a text statement on a sharded database (no await: the text hook):
        one of a shape routed by one literal (a :class:`TextShape`; its ``TextRoute``, of
        proxy/session/sharded.py, learnt by ``ShardedExecutor.learn_text``), its target for
        this statement's literal (its physical database and physical text) and the renaming
        of its answer's column definitions (None: it reads no rows); None: the command loop
        routes it (its shape is not one, not analysed yet, or its key is not placeable)."""
        executor = self.sharded
        if executor.locked is not None:
            return None  # (under LOCK TABLES: the command loop's checks and texts)
        found = fast_literals(sql)
        if found is None:
            return None
        key, spans = found
        session = self.session
        state = self.link.state
        if not state.known:
            return None  # the shard's sql_mode is not read yet: the command loop's
        seen = self.shapes_for
        mode, flavor = state.lex_mode, state.flavor
        shapes = self.shapes
        if (
            seen[0] is not snapshot
            or seen[1] != session.current_db
            or (seen[2] is not mode and seen[2] != mode)
            or (seen[3] is not flavor and seen[3] != flavor)
        ):
            shapes.clear()
            self.shapes_for = (snapshot, session.current_db, mode, flavor)
        known: Any = shapes.get(key, UNLEARNT)  # (a TextRoute, None or UNLEARNT)
        if known is UNLEARNT:
            known = executor.learn_text(sql, key, spans, snapshot)
            if known is UNLEARNT:
                return None
            if len(shapes) >= SHAPES_KEPT:
                shapes.clear()
            shapes[key] = known
        if known is None:
            return None
        route: TextRoute = known
        g = route.table(sql, spans)
        placed: tuple[PhysicalDatabase, str] | None
        if g >= 0:
            own = route.own_text.get(g)
            if own is not None:
                return route, own[0], sql, own[1]
            placed = route.shape.on_table(g, sql, spans)
        else:
            placed = route.shape.physical(sql, spans)
            if placed is None:
                return None
        database = placed[0]
        columns = None
        if route.reads_rows:
            columns = route.columns.get(database.name)
            if columns is None:
                columns = route.columns[database.name] = route.names.rewrite(database.name)
        if g >= 0 and placed[1] is sql:
            # (a rewrite object of the entry's own: see ShardedExecutor.fast_general)
            columns = None if columns is None else functools.partial(columns)
            route.own_text[g] = (database, columns)
        return route, database, placed[1], columns

    def routed_execute(
        self, statement: ShardedStatement, plan: Sharded, packet: bytes, snapshot: CatalogSnapshot
    ) -> tuple[BackendConnection, int, bytes, Callable[[bytes], bytes]] | None:
        """The target of an execution of ``statement`` on a sharded database's tables (no
        await: a transaction of the proxy's is not in charge): its connection, its physical
        database, the frame to write there (``packet``: the client's COM_STMT_EXECUTE, frame
        header first) and the renaming of the answer's column definitions; None: the command
        loop carries the execution out.

        An execution of a statement keyed by one integer parameter that sends no types (what
        a client sends once it has sent them) is read and placed in a few operations and
        finds everything else in its global table's :class:`FastRoute`; the others (and that
        one the first time) go the general way (``ShardedExecutor.fast_general``)."""
        executor = self.sharded
        if executor.locked is not None:
            return None  # (under LOCK TABLES: the command loop's checks and texts)
        state = self.link.state
        placed_for = statement.placed_for
        if (
            placed_for is None
            or placed_for[0] is not snapshot
            or placed_for[1] is not state
            or placed_for[2] != state.version
            or placed_for[3] != self.session.charset
        ):
            executor.refresh(statement, plan.layout, snapshot)
        integer = statement.integer
        if (
            integer is not None
            and len(packet) == statement.fast_length
            and packet[15] == 0  # no types: "as last time" (statement.types)
            and not packet[9] & _CURSOR_FLAGS
            and not packet[14] & 1  # not NULL
            and statement.failed is None
        ):
            # peek_integer's reading and IntegerHash.table's placing, inline.
            value = uint_le(packet, 16)
            half = statement.fast_half
            if half and value >= half:
                value -= half << 1
            if integer.low <= value <= integer.high:
                route = statement.fast.get(abs(value) % integer.modulus)
                if route is not None and route.typed and route.layout is plan.layout:
                    partition = route.partition
                    conn = self.serving(partition, snapshot)
                    if conn is not None and conn is route.conn:
                        if not route.same_id:
                            # The client's frame with the partition's statement id.
                            packet = packet[:5] + route.statement_id + packet[9:]
                        return conn, partition, packet, route.columns
        found: tuple[BackendConnection, int, bytes, Callable[[bytes], bytes]] | None
        found = executor.fast_general(statement, plan, packet, snapshot)
        return found

    def serving(self, partition: int, snapshot: CatalogSnapshot) -> BackendConnection | None:
        """The connection a sharded database's fast statement for physical database
        ``partition`` is sent on: the session's own (partition 0) when it is sound and free,
        another partition's when the session holds it ready (``HeldConnections.ready``);
        None: the command loop sends it."""
        if partition == 0:
            conn = self.link.reclaim()
            if conn is None or conn.broken or conn.relaying:
                return None
            return conn
        return self.held.ready(partition, snapshot, self.link.state.version)

    def relay_routed(
        self,
        conn: BackendConnection,
        partition: int,
        columns: Callable[[bytes], bytes] | None,
        digest: str,
    ) -> None:
        """A sharded database's fast statement is sent to physical database ``partition``
        on ``conn``: its answer is relayed (``columns``: its column definitions name the
        logical database and tables, as the executor's), completed by :meth:`done` on the
        session's own connection (partition 0), by :meth:`partition_done` on another's."""
        client = self.client
        client.hold = True
        self.digest = digest
        if partition == 0:
            conn.start_relay(client, _QUERY, self.relay_done, columns)
        else:
            self.fast_conn = conn
            self.fast_partition = partition
            conn.start_relay(client, _QUERY, self.relay_partition_done, columns)

    def memoized(
        self,
        statement: Statement,
        snapshot: CatalogSnapshot,
        prepared: bool = False,
        original: TextShape | None = None,
    ) -> Plan:
        """relayed_statement(statement, view, snapshot), remembered for this grant view; for a
        sharded database's text statement of a shape (``original``), routed as the statement
        the shape was made from."""
        session = self.session
        state = self.link.state
        account = session.account
        current_db = session.current_db
        memo = self.memo
        if (
            self.memo_snapshot is not snapshot
            or self.memo_account is not account
            or self.memo_db != current_db
            or self.memo_state is not state
            or self.memo_version != state.version
        ):
            # (the session's state: a sharded database's routing reads the statement in its
            # sql_mode, server flavor and character set -- SessionView's lexing)
            memo.clear()
            self.memo_snapshot = snapshot
            self.memo_account = account
            self.memo_db = current_db
            self.memo_state = state
            self.memo_version = state.version
        # (a sharded database's routing: -id prepared, ~id routed from a shape's text)
        key = id(statement)
        if prepared:
            key = -key
        elif original is not None:
            key = ~key
        entry = memo.get(key)
        if entry is not None and entry[0] is statement:
            return entry[1]
        decided = relayed_statement(
            statement,
            session.view(),
            snapshot,
            original.sql if original is not None else "",
            prepared=prepared,
        )
        if len(memo) >= MEMO_SIZE:
            memo.clear()
        memo[key] = (statement, decided)
        return decided

    def _idle(self) -> float:
        """The fast statement's answer is relayed: the session shows as sleeping from now
        (returned: the clock its latency is measured on)."""
        activity = self.session.activity
        activity.command = "Sleep"
        now = _monotonic()
        activity.since = now
        activity.info = None
        return now

    def done(self, scanner: ResponseScanner, error: BackendError | None) -> None:
        """A fast statement's answer on the session's own connection is relayed (or its
        connection failed)."""
        session = self.session
        now = self._idle()
        link = self.link
        conn = link.conn
        if error is not None:
            if conn is not None:
                session.fast_failed(conn, error)
            # (else the session ended with the answer on its way: the connection was closed)
        elif conn is not None:
            self.area = None  # (a routed statement, or a relay while it was None)
            self.record(conn, self.digest, now - self.started, scanner)
            link.release()
        self.held.ran_on = 0
        if self.ctx.draining:
            session.drained_after_fast()
        self.client.release()

    def partition_done(self, scanner: ResponseScanner, error: BackendError | None) -> None:
        """A fast statement's answer from another partition's connection than the session's
        own (``fast_conn``) is relayed (or its connection failed)."""
        conn = self.fast_conn
        assert conn is not None
        self.fast_conn = None
        session = self.session
        now = self._idle()
        ctx = self.ctx
        self.held.ran_on = self.fast_partition
        if error is not None:
            session.fast_partition_failed(conn, self.fast_partition, error)
        else:
            self.area = conn  # (a statement of its tables: its area is the session's now)
            seconds = now - self.started
            ctx.digest.record(session.current_db, self.digest, seconds, scanner.rows)
            self._latency(conn.target.shard, seconds)
            if scanner.error:
                self.sharded.refused_by_shard(conn, self.fast_partition, scanner, self.digest)
        if ctx.draining:
            session.drained_after_fast()
        self.client.release()

    def _latency(self, shard: str, seconds: float) -> None:
        """A statement relayed from ``shard`` took ``seconds``."""
        bound = self.shard_metrics.get(shard)
        if bound is None:
            bound = self.shard_metrics[shard] = self.ctx.metrics.shard(shard)
        bound.latency.observe(seconds)

    def record(
        self, conn: BackendConnection, digest: str, seconds: float, scanner: ResponseScanner
    ) -> None:
        """A relayed statement is complete (in ``seconds``): the query digest and the shard's
        latency."""
        session = self.session
        ctx = self.ctx
        ctx.digest.record(session.current_db, digest, seconds, scanner.rows)
        self._latency(conn.target.shard, seconds)
        if scanner.error:
            # (a refusal of the shard's: its grants may be stale, the connection not handed on)
            self.sharded.refused_by_shard(conn, 0, scanner, digest)
