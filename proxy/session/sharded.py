"""Carrying out a sharded database's plans (:class:`proxy.plan.plan.Sharded`).

The session calls :meth:`ShardedExecutor.execute` from one place (``Session._execute``). The
decision (``proxy.shard.statements``) already holds every target: a physical database and the
statement to run there. This module only does the I/O:

* **Connections.** A scatter takes its partitions' backend connections through the
  :class:`PartitionSource` protocol, in the targets' fixed order (shard name, then physical
  database index: the same for every session, so concurrent scatters taking connections from
  bounded pools cannot deadlock each other). :class:`SessionPartitions` is the implementation
  for now: each session opens and holds one connection per physical database it used (as the
  account's mirror there, with the session's state applied), physical database 0 being the
  session's own link connection (single tables, session statements, transactions). A backend
  connection pool plugs in behind the same protocol.
* **Reads.** One target: its answer is relayed verbatim. Several: the result sets are
  concatenated as they stream in -- the first target's column definitions, every target's rows,
  the last one's end -- with nothing buffered (:meth:`ShardedExecutor._scatter_read`). A
  SELECT whose results need merging (ORDER BY, GROUP BY, aggregates, LIMIT, DISTINCT: routing
  says why in ``Route.merge``) goes through the merge engine (:meth:`ShardedExecutor._merged`,
  ``proxy.merge``): its per-partition rewrite, routed again for the physical names, every
  physical table one merge input (a physical database with several, TBPARTITION BY, reads
  them at once on spare connections: :meth:`ShardedExecutor.merge_readers`).
* **Writes.** One target: relayed verbatim (an INSERT that took GROUP sequence values answers
  with the first as its insert id). Several statements (partitions, or physical tables of one
  partition): an XA transaction, one branch per physical database -- ``XA START``, the
  statements, ``XA END``, ``XA PREPARE`` on every branch, then ``XA COMMIT`` on every branch;
  any failure before the commits rolls every branch back and reports the error. The commit
  decision is recorded in the catalog before the first ``XA COMMIT`` (``proxy.backend.xa``: the
  next proxy to start finishes what a dead one left prepared).
* **Transactions.** The client's transactions (``BEGIN``, ``autocommit=0``) are the proxy's:
  :class:`ClientTransaction`, an XA transaction whose branches are the physical databases it
  reaches, each started (``XA START``) when first reached -- by a routed statement
  (:meth:`ShardedExecutor._acquire`) or one the session relays to physical database 0
  (:meth:`ShardedExecutor.before_relay`). ``COMMIT`` commits one branch in one phase, several
  in two with the decision recorded as for a multi-partition write (each XA step on every
  branch at once, as there: :meth:`ShardedExecutor._finish`); ``ROLLBACK``, a deadlock on
  a branch and the session's end roll every branch back. Transaction statements are read by
  ``proxy.shard.transaction``.
* **Prepared statements** (:class:`ShardedStatement`): prepared on physical database 0 for the
  client's answer; each execution routed by its decoded parameters (``keyed``: by the key's
  parameter alone, or ``decide`` with the values), its physical statements prepared on each
  partition's connection when first needed, then relayed, concatenated, merged (binary rows)
  or written (XA) as a text statement is; ``fast_general`` serves the session's fast hook where its
  ``FastRoute`` does not (proxy/session/fast.py).
* **DDL** fans out to every physical table, in order, and reports each partition that failed;
  CREATE TABLE records the logical table in the catalog only once every physical table exists
  (and drops the ones it made when another failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import signal
import time
import weakref
from collections import Counter, deque
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field, replace
from itertools import count
from typing import TYPE_CHECKING, Any, Protocol

from auth.accounts import Actor
from auth.catalog import (
    Catalog,
    CatalogError,
    CatalogUnavailableError,
    SequenceExistsError,
    UnknownSequenceError,
)
from auth.errors import ErrorCode, SqlError, not_supported, sql_error
from auth.model import LogicalTable, PhysicalDatabase, auto_sequence_name
from proxy.backend.connection import (
    MAX_BACKEND_PACKET,
    BackendConnection,
    BackendError,
    BackendQueryError,
    quote_name,
    quote_string,
)
from proxy.backend.mirror import SHARD_REFUSALS, client_account_named
from proxy.backend.xa import XID_PREFIX
from proxy.merge import (
    MergeError,
    MergePlan,
    Refusal,
    merge_batches,
    plan_select,
    result_payloads,
)
from proxy.merge.values import ColumnDefinition
from proxy.plan.plan import (
    COM_STMT_CLOSE,
    COM_STMT_FETCH,
    COM_STMT_RESET,
    COM_STMT_SEND_LONG_DATA,
    Deny,
    Plan,
    Prepared,
    Sharded,
    ShardedPacket,
    StatementCommand,
    prepared_lexing,
    sharded_layout,
)
from proxy.plan.rewrite import IdentityValues
from proxy.session.definers import Definers, RowRenamer, may_show_definers, row_renamer
from proxy.session.fair import INLINE_ANALYSIS_LIMIT
from proxy.session.fast import (
    UNLEARNT,
    FastPath,
    FastRoute,
    HeldConnections,
    ShardedStatement,
    TextRoute,
    execute_types,
)
from proxy.session.grants import grant_column
from proxy.session.link import (
    OWN_STATEMENT,
    BackendUnavailable,
    SessionLost,
    client_codec,
    lost_error,
    results_codec,
)
from proxy.session.statements import with_id, with_types
from proxy.shard.ddl import AlterSequence, CreateSequence, nextval_references
from proxy.shard.metadata import (
    STATISTICS_QUERIES,
    Statistics,
    derived_column,
    logical_text,
    sequenced_tables,
    statistic_column,
    text_column_length,
)
from proxy.shard.placement import Placement, PlacementError, integer_hash, place
from proxy.shard.route import (
    Layout,
    NeedsSequence,
    Returning,
    Route,
    Target,
    copy_target,
    key_slots,
    placed_targets,
)
from proxy.shard.sequences import SequenceAllocator, next_values
from proxy.shard.statements import (
    VIEWS_PROBE,
    CreateShardedTable,
    Decision,
    FanOut,
    FieldListing,
    LocalRows,
    Maintenance,
    NeedsNextval,
    NeedsStatistics,
    RenamedRows,
    SequenceDdl,
    TableLocks,
    TableStatus,
    altered_sequence_start,
    decide,
    maintenance_rows,
    shaped,
    shown_counter,
    with_counter,
)
from proxy.shard.transaction import (
    TransactionControl,
    autocommit_assignment,
    commits_implicitly,
    reads_tables,
)
from proxy.shard.values import NotPlaceable, shard_key
from proxy.sql.analyze import BIND_TABLE_LOCK, Statement, cached_shape
from proxy.sql.lexer import LexMode, ServerFlavor, TokenKind, lex
from proxy.sql.like import shows_database
from proxy.wire.packets import (
    Capability,
    OkPacket,
    ProtocolError,
    ServerStatus,
    build_column_definition,
    build_err,
    build_ok,
    build_text_resultset,
    build_text_row,
    err_message_at,
    frame,
    lenenc_int,
    lenenc_str,
    parse_eof,
    parse_err,
    parse_ok,
    parse_stmt_prepare_ok,
    read_lenenc_int,
    read_lenenc_str,
)
from proxy.wire.params import (
    ExecuteParams,
    ParamValue,
    build_execute,
    decode_param,
    decode_text,
    integer_layout,
    parse_execute,
    peek_integer,
    peek_params,
)
from proxy.wire.stream import ConnectionLost, ResponseKind, ResponseScanner, text_row_values

if TYPE_CHECKING:
    from auth.catalog import CatalogSnapshot
    from auth.model import Account
    from proxy.session.host import SessionHost
    from proxy.session.link import BackendLink, Lease
    from proxy.wire.stream import ClientConnection


class Session(Protocol):
    """What the executor reads of its session (proxy/session/session.py)."""

    @property
    def ctx(self) -> SessionHost[Any]: ...
    async def relay_definers(
        self,
        conn: BackendConnection,
        columns: Callable[[bytes], bytes] | None,
        statement_id: int | None = None,
    ) -> ResponseScanner: ...
    def definers(self) -> Definers: ...
    @property
    def client(self) -> ClientConnection: ...
    @property
    def link(self) -> BackendLink: ...
    @property
    def account(self) -> Account | None: ...
    @property
    def current_db(self) -> str | None: ...
    @property
    def capabilities(self) -> int: ...
    @property
    def charset(self) -> int: ...
    @property
    def client_ip(self) -> str: ...
    @property
    def connection_id(self) -> int: ...
    @property
    def prepared(self) -> dict[int, Any]: ...
    @property
    def fast(self) -> FastPath: ...  # (its ``area``: the connection holding the diagnostics)
    def tenant(self) -> str: ...  # (whose turn in the analysis threads its work takes)

    # The notes SHOW WARNINGS shows of the proxy's own last statement (level, code, message).
    notes: list[tuple[str, int, str]]


class OkReply(Protocol):
    """An OK packet to the client, with the statement's warning count."""

    def __call__(self, warnings: int = 0) -> None: ...


@dataclass(frozen=True)
class Replies:
    """How the executor answers the client, through the session (its sequence numbers and
    status flags): the session's own methods."""

    error: Callable[[SqlError], None]
    ok: OkReply
    write: Callable[[bytes], None]
    result_set: Callable[[list[str], list[list[str | None]], frozenset[str]], None]
    status: Callable[[], int]
    lease: Lease  # the session's connection to physical database 0, from the pool
    # Several payloads at once (a merge's batch of rows: one vectored write); None: each
    # through ``write``.
    write_many: Callable[[list[bytes]], None] | None = None


log = logging.getLogger("shardgate.sharded")

# GROUP sequence values this process holds (ranges reserved in the catalog).
SEQUENCES = SequenceAllocator()
_XIDS = count(1)
# This process in XA transaction ids (unique across nodes and restarts).
_NODE = os.urandom(4).hex()
_XAER_NOTA = 1397
# How long rolling back a transaction of a client that went away may take.
_CLOSE_SECONDS = 10.0
# A fault point for the crash-recovery tests: the process kills itself (SIGKILL) there.
_CRASH_AT = os.environ.get("SHARDGATE_TEST_XA_CRASH", "")
_PAUSE_SECONDS = 4.0
_IN_TRANSACTION = int(ServerStatus.IN_TRANS)
_READ_ONLY = int(ServerStatus.IN_TRANS_READONLY)
_DEADLOCK = 1213
_CANT_CHANGE_TX = 1568
_TABLE_NOT_LOCKED = 1100
# Why the session's connection to physical database 0 is bound while it holds a branch.
_BRANCH_BIND = "an XA transaction branch"
_STATEMENT_SAVEPOINT = "shardgate_statement"
_SP_DOES_NOT_EXIST = 1305
_DEPRECATE_EOF = int(Capability.DEPRECATE_EOF)
_CACHE_METADATA = int(Capability.MARIADB_CLIENT_CACHE_METADATA)
_RENAMES_KEPT = 4096  # column definitions rewritten, remembered (LogicalNames)
# The column flags a derived information_schema column gets back.
_NOT_NULL = 1
_NO_DEFAULT = 4096
_LAYOUTS_KEPT = 64  # plans' layouts whose renamings a session remembers (columns_for)
_BINARY = 128
_BIGINT_LENGTH = 21  # information_schema's BIGINT(21) statistics
_BLOB = 16
_TEXT_TYPE = 252  # MYSQL_TYPE_BLOB: information_schema's TEXT columns
# The shapes every session learned, for one catalog snapshot each, by (fast key, database,
# lexer mode, server flavor): a new session's statements of a known shape need not teach it
# again (a shape is a function of those; each session still authorizes its statements).
_SHARED_SHAPES_KEPT = 512
_SHARED_SHAPES: dict[
    tuple[str, str | None, LexMode, ServerFlavor | None], tuple[object, TextRoute | None]
] = {}


class PartitionSource(Protocol):
    """Where a sharded statement gets the backend connections of its physical databases.

    ``acquire`` takes them in the order given -- the targets' (shard, physical database) order,
    the same for every session -- and returns them by physical database index; ``release``
    gives them back after the statement (``broken``: those that must not be reused)."""

    async def acquire(
        self, partitions: Sequence[PhysicalDatabase]
    ) -> dict[int, BackendConnection]: ...

    def release(
        self, conns: Mapping[int, BackendConnection], broken: Sequence[int] = ()
    ) -> None: ...

    async def spares(self, physical: PhysicalDatabase, count: int) -> list[BackendConnection]:
        """``count`` more connections to ``physical`` besides the one ``acquire`` gives (a
        merge reads the physical tables of a table split by TBPARTITION BY at once)."""
        ...

    async def close(self) -> None: ...

    # The connections it holds (physical databases but 0), whose readiness the fast path
    # tests (FastPath.serving).
    held: HeldConnections

    def running(self) -> list[BackendConnection]:
        """The open connections besides the session's link connection, which a statement may
        be running on (KILL QUERY is sent to each: on one that is idle it does nothing -- the
        shard does not carry it over to the next statement)."""
        ...


class SessionPartitions:
    """A :class:`PartitionSource` holding one connection per physical database for the
    session's lifetime (physical database 0: the session's link connection)."""

    def __init__(self, session: Session, lease: Lease) -> None:
        self._session = session
        self._lease = lease
        # (its connections, the session state version each was given, the catalog snapshot)
        self.held = HeldConnections()
        self._applied: dict[int, list[str]] = {}  # the session state each connection got
        # A transaction holds branches on the connections: they are kept (the mirrors follow
        # a newer catalog once it ends). So are connections holding LOCK TABLES' locks.
        self.in_transaction = False
        # More connections per physical database, for merges over split tables (``spares``).
        self._spares: dict[int, list[BackendConnection]] = {}
        self._spare_applied: dict[int, list[str]] = {}  # by id() of the connection

    @property
    def locked(self) -> bool:
        """Its connections hold LOCK TABLES' locks."""
        return self.held.locked

    @locked.setter
    def locked(self, locked: bool) -> None:
        self.held.locked = locked

    async def acquire(self, partitions: Sequence[PhysicalDatabase]) -> dict[int, BackendConnection]:
        session = self._session
        snapshot = session.ctx.snapshot()
        held = self.held
        if snapshot is not held.snapshot and not self.in_transaction and not self.locked:
            # New grants or tables: reconnect (the mirrors follow the newest catalog).
            await self.close()
            held.snapshot = snapshot
        wanted = session.link.state.statements()
        conns: dict[int, BackendConnection] = {}
        for physical in partitions:
            if physical.index in conns:
                continue
            if physical.index == 0:
                conn0 = await session.link.connection(self._lease)
                conns[0] = conn0
                continue
            conn = held.conns.get(physical.index)
            if conn is not None and (conn.broken or conn.is_closing()):
                held.conns.pop(physical.index, None)
                conn = None
                if self.locked:
                    # Its table locks went with it: a new connection would run unlocked.
                    raise SessionLost(
                        lost_error(
                            ["table locks"], f"{_where(physical.index, physical.shard)} reconnected"
                        )
                    )
            if conn is None:
                conn = held.conns[physical.index] = await self._open(physical, snapshot)
                self._applied[physical.index] = []
            if self._applied.get(physical.index) != wanted:
                await _apply(conn, physical, wanted)  # (a broken one is replaced next time)
                self._applied[physical.index] = list(wanted)
            held.versions[physical.index] = session.link.state.version
            conns[physical.index] = conn
        return conns

    async def _open(
        self, physical: PhysicalDatabase, snapshot: CatalogSnapshot
    ) -> BackendConnection:
        """A new connection to ``physical`` as the session's mirror account there."""
        session = self._session
        assert session.account is not None and session.current_db is not None
        try:
            return await session.ctx.mirrors.connect(
                snapshot,
                session.account,
                session.current_db,
                True,
                session.capabilities,
                session.charset,
                partition=physical.index,
            )
        except BackendError as exc:
            raise BackendUnavailable(
                sql_error(
                    ErrorCode.SERVER_GONE,
                    f"Backend unavailable for {_where(physical.index, physical.shard)}: {exc}",
                )
            ) from None

    def running(self) -> list[BackendConnection]:
        conns = list(self.held.conns.values())
        for spares in self._spares.values():
            conns += spares
        return [conn for conn in conns if not conn.gone]

    def release(self, conns: Mapping[int, BackendConnection], broken: Sequence[int] = ()) -> None:
        for index in broken:
            if index == 0:
                continue  # the link's own connection: the session handles its loss
            conn = self.held.conns.pop(index, None)
            if conn is not None:
                conn.broken = True
                conn.close()

    async def spares(self, physical: PhysicalDatabase, count: int) -> list[BackendConnection]:
        """Kept for the session like the others (state applied when it changed); a broken one
        is replaced. Taken after ``acquire`` (same snapshot), in the targets' order."""
        session = self._session
        wanted = session.link.state.statements()
        kept = []
        for conn in self._spares.get(physical.index, []):
            if conn.broken or conn.is_closing():
                self._spare_applied.pop(id(conn), None)
                conn.close()
            else:
                kept.append(conn)
        while len(kept) < count:
            # (acquire() just followed the newest snapshot, closing the spares of older ones)
            conn = await self._open(physical, session.ctx.snapshot())
            self._spare_applied[id(conn)] = []
            kept.append(conn)
        self._spares[physical.index] = kept
        for conn in kept[:count]:
            if self._spare_applied.get(id(conn)) != wanted:
                await _apply(conn, physical, wanted)
                self._spare_applied[id(conn)] = list(wanted)
        return kept[:count]

    async def close(self) -> None:
        held, self.held.conns = self.held.conns, {}
        self._applied.clear()
        self.held.versions.clear()
        spares, self._spares = self._spares, {}
        self._spare_applied.clear()
        for conn in held.values():
            await conn.quit()
        for conns in spares.values():
            for conn in conns:
                if conn.broken or conn.is_closing():
                    conn.close()
                else:
                    await conn.quit()


@dataclass(eq=False)
class PhysicalStatement:
    """One physical statement text of a client's prepared statement, prepared on some
    connections (its id on each), and the connections that were sent its parameter types."""

    on: weakref.WeakKeyDictionary[BackendConnection, int] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    typed: weakref.WeakSet[BackendConnection] = field(default_factory=weakref.WeakSet)


def _new_types(statement: ShardedStatement, types: bytes) -> None:
    """The client sent parameter types: an execution that leaves them out means these now.
    The partitions' connections sent older ones read its values with those: they are sent
    these with their next execution (``PhysicalStatement.typed`` forgotten)."""
    if types != statement.types:
        for physical in statement.physical.values():
            physical.typed = weakref.WeakSet()
        statement.fast.clear()
        integer = integer_layout(types)
        if integer is None:
            statement.fast_length, statement.fast_half = -1, 0
        else:
            # (frame header, command, id, flags, iterations, NULL bitmap, "types sent" flag)
            statement.fast_length, statement.fast_half = 16 + integer[0], integer[1]
    statement.types = types


class _MoreResults:
    """The answer of a multi-statement packet's statement that is not its last: written as it
    comes but for its last packet, held until the statement is done and then sent with
    SERVER_MORE_RESULTS_EXISTS (an error is sent as it is, and ends the packet)."""

    def __init__(self, real: Replies, capabilities: int) -> None:
        self.real = real
        self.capabilities = capabilities
        self.held: bytes | None = None

    def write(self, payload: bytes) -> None:
        if self.held is not None:
            self.real.write(self.held)
        self.held = payload

    def error(self, error: SqlError) -> None:
        self.write(_err_packet(self.capabilities, error))

    def ok(self, warnings: int = 0) -> None:
        self.write(
            build_ok(capabilities=self.capabilities, status=self.real.status(), warnings=warnings)
        )

    def result_set(
        self, columns: list[str], rows: list[list[str | None]], numeric: frozenset[str]
    ) -> None:
        self.error(not_supported("a result set of the proxy's in a multi-statement packet"))

    def replies(self) -> Replies:
        real = self.real
        return Replies(self.error, self.ok, self.write, self.result_set, real.status, real.lease)

    def finish(self) -> bool:
        """Send the held end; whether the packet goes on."""
        held, self.held = self.held, None
        if held is None:
            return False
        if held[:1] == b"\xff":
            self.real.write(held)
            return False
        self.real.write(_more_results(held))
        return True


def _more_results(packet: bytes) -> bytes:
    """An EOF or OK packet with SERVER_MORE_RESULTS_EXISTS set."""
    if packet[:1] == b"\xfe" and len(packet) < 9:
        at = 3
    else:
        _, at = read_lenenc_int(packet, 1)
        _, at = read_lenenc_int(packet, at)
    status = int.from_bytes(packet[at : at + 2], "little") | _MORE_RESULTS
    return packet[:at] + status.to_bytes(2, "little") + packet[at + 2 :]


_MORE_RESULTS = int(ServerStatus.MORE_RESULTS_EXISTS)

# An integer column's type code and display width (signed), as MariaDB describes it.
_INTEGER_COLUMNS = {
    "tinyint": (1, 4),
    "smallint": (2, 6),
    "mediumint": (9, 9),
    "int": (3, 11),
    "bigint": (8, 20),
}
_UNSIGNED_FLAG = 0x0020
_ZEROFILL_FLAG = 0x0040
_BINARY_CHARSET = 63


@dataclass
class _Failure:
    target: Target
    errno: int
    sqlstate: str
    message: str


@dataclass
class ClientTransaction:
    """The client's transaction on a sharded database: an XA transaction whose branches are
    the physical databases it reached (``XA START`` there when it first did), in order."""

    gtrid: str
    explicit: bool  # BEGIN / START TRANSACTION (else autocommit=0 opened it)
    read_only: bool | None  # START TRANSACTION READ ONLY / READ WRITE
    isolation: str | None = None  # SET TRANSACTION ISOLATION LEVEL before it
    branches: dict[int, BackendConnection] = field(default_factory=dict)
    # The client's savepoints, oldest first: set on every branch, and on a branch that
    # starts later right after its XA START (so ROLLBACK TO undoes its work there too).
    savepoints: list[str] = field(default_factory=list)

    def savepoint_at(self, name: str) -> int | None:
        """Where savepoint ``name`` is (names compare as MariaDB's: case-insensitively)."""
        folded = name.casefold()
        for index, held in enumerate(self.savepoints):
            if held.casefold() == folded:
                return index
        return None


# autocommit's value off, as the state holds it (a set: one hash, not three string compares)
_AUTOCOMMIT_OFF = frozenset({"0", "'OFF'", "'0'"})


def _autocommit_off(variables: Mapping[str, str]) -> bool:
    return variables.get("autocommit", "1") in _AUTOCOMMIT_OFF


class ShardedExecutor:
    """Carries out :class:`Sharded` plans for one session."""

    def __init__(
        self, session: Session, replies: Replies, source: PartitionSource | None = None
    ) -> None:
        self.session = session
        self.replies = replies
        self.source: PartitionSource = source or SessionPartitions(session, replies.lease)
        self._sent = False  # a scatter read has written to the client
        self._digest = ""  # the query digest text of the statement running now
        # The physical statements of the statement running now if it is a scatter (every
        # physical table: concatenated or merged), for its digest entry; 0 otherwise.
        self._scatter = 0
        self.tx: ClientTransaction | None = None  # the client's transaction, when one is open
        # LOCK TABLES of sharded or broadcast tables: the lower-case logical names locked and
        # the physical databases whose connections hold locks (None: no such locks).
        self.locked: frozenset[str] | None = None
        self._locked_on: tuple[int, ...] = ()
        # SET TRANSACTION: (isolation level, access mode) for the next transaction.
        self._next: tuple[str | None, bool | None] = (None, None)
        # Whether the current database is sharded, for a catalog snapshot (in_charge).
        self._sharded_db: tuple[object, str | None, bool] = (None, None, False)
        # False while a multi-statement packet's statement runs that is not its last: its
        # answer is written through the executor (its end then says more results follow).
        self._relay_ok = True
        # The last layout's column-definition renaming (logical_names).
        self._names: tuple[Layout, LogicalNames] | None = None
        self._link_columns: tuple[object, str | None, Callable[[bytes], bytes] | None] | None = None
        # The renamings of the physical databases of layouts (columns_for: the fast path's),
        # by id() of the layout (each entry holds its layout: the id is not reused meanwhile).
        self._columns_for: dict[int, tuple[Layout, dict[str, Callable[[bytes], bytes]]]] = {}
        # The client's character set's codec for (session state, its version, handshake
        # collation) (_codec).
        self._codec_for: tuple[object, int, int, str | None] = (None, -1, -1, None)
        # Prepared statements on sharded or broadcast tables, by the client's id.
        self.statements: dict[int, ShardedStatement] = {}
        # Where the client's command now ran besides the session's own connection, so far
        # (None: nowhere yet): HeldConnections.ran_on (begin_command, _acquire).
        self._acquired: int | None = None
        # What ROW_COUNT() and FOUND_ROWS() answer after the client's last statement on
        # partitions (_acquire), which no one connection knows when it ran on several: its
        # (ROW_COUNT(), FOUND_ROWS() -- None: not known); None: neither known (last_statement).
        self._counts: tuple[int, int | None] | None = None
        self._found_before: int | None = None  # (_route: FOUND_ROWS() before the statement)
        # The last command left FOUND_ROWS(): where it ran knows its ROW_COUNT() (a partition's
        # connection, or the proxy's ``_counts``), ``_found`` / ``_found_on`` FOUND_ROWS().
        self._kept = False
        # ROW_COUNT() of a statement the proxy answered without a partition's (COMMIT with
        # nothing to commit, BEGIN) or after statements of its own there (DDL): answered
        # while it runs, _own_count for the next command (begin_command).
        self.answered: int | None = None
        self._own_count: int | None = None
        # The session's FOUND_ROWS() as the last scatter SELECT left it, kept while only
        # statements on several partitions that leave it (writes) ran since; None: not known.
        self._found: int | None = None
        # The command just run left FOUND_ROWS() as it was (a relayed SET, UPDATE, ... ; a
        # refusal; a statement the proxy answers): ``_found`` holds through it (begin_command;
        # the fast path reads it too).
        self.found_left = False
        # Where the session's FOUND_ROWS() is: 0, physical database 0's connection's own; k,
        # partition k's connection's (its SELECT, then statements that leave it); -1, the
        # proxy's count (``_found``; None: not known).
        self._found_on = 0
        # The command was refused before it ran anywhere (so the one before it, ``_failed``:
        # ROW_COUNT() -1 after it, as after any failed statement on MariaDB).
        self._refused = False
        self._failed = False
        # The physical database of each connection a physical statement is prepared on.
        self._partition_of: weakref.WeakKeyDictionary[BackendConnection, int] = (
            weakref.WeakKeyDictionary()
        )

    async def close(self) -> None:
        """The session ends or starts anew (COM_CHANGE_USER, COM_RESET_CONNECTION, another
        database): an open transaction is rolled back on every branch, as MariaDB does."""
        tx = self.tx
        if tx is not None:
            for conn in tx.branches.values():
                if conn.relaying:
                    # An answer still on its way: closed, and the shard rolls its branch back.
                    conn.broken = True
                    conn.close()
            try:
                await asyncio.wait_for(self._end_all(tx), _CLOSE_SECONDS)
            except (TimeoutError, BackendError, ConnectionLost, OSError):
                log.warning("XA %s: rolling back at the session's end failed", tx.gtrid)
            self._forget(tx)
        self._unlocked()  # (the connections' close ends their locks)
        self.forget_statements()
        self._link_columns = None  # (COM_CHANGE_USER: its errors name the new account)
        await self.source.close()

    # -- the one entry ----------------------------------------------------------------------

    async def execute(self, plan: Sharded) -> None:
        started = time.perf_counter()
        self._scatter = 0
        self._digest = plan.digest or ""
        try:
            await self._execute(plan)
        finally:
            if plan.digest:
                seconds = time.perf_counter() - started
                self.session.ctx.digest.record(
                    self.session.current_db, plan.digest, seconds, 0, self._scatter
                )

    def _ran(self, route: str, physical: int, *, metrics: bool = True) -> None:
        """The statement runs as ``route`` with ``physical`` physical statements: counted in
        the metrics (unless ``metrics`` is False) and, for a scatter, in its digest entry."""
        if metrics:
            self.session.ctx.metrics.sharded(route, physical)
        if route in ("scatter", "merged"):
            self._scatter = max(self._scatter, physical)

    async def _execute(self, plan: Sharded) -> None:
        decision: Decision | None = plan.decision
        with self._failures_answered():
            if isinstance(decision, NeedsNextval):
                decision = await self._with_nextvals(plan, decision)
                if decision is None:
                    return
            if isinstance(decision, NeedsSequence):
                routed = await self._with_sequence(plan, decision)
                if routed is None:
                    return
                decision = routed
            if isinstance(decision, NeedsStatistics):
                decision = await self._with_statistics(plan)
            if not isinstance(decision, (Route, TransactionControl)):
                # (DDL and the rest reach physical database 0 too, or answer locally)
                self.session.fast.area = None
            if isinstance(decision, LocalRows) and decision.probe is not None:
                await self._probed(plan.layout, decision, decision.probe)
            elif isinstance(decision, LocalRows):
                if decision.sequence is not None:
                    decision = await self._counted(plan.layout, decision, decision.sequence)
                elif decision.counter_of is not None:
                    found = await self._shard_counter(plan.layout, decision, decision.counter_of)
                    if found is None:
                        return
                    decision = found
                if decision.columns:
                    self.replies.result_set(
                        list(decision.columns), [list(r) for r in decision.rows], decision.numeric
                    )
                else:
                    # (CREATE TABLE IF NOT EXISTS of a table there is: MariaDB's note 1050)
                    self.session.notes = list(decision.notes)
                    self.replies.ok(len(decision.notes))
            elif isinstance(decision, Route):
                tx = self.tx
                watched = self._watch_deadlocks() if tx is not None else None
                try:
                    if decision.merge is not None:
                        await self._merged(plan, decision)
                    else:
                        await self._route(decision)
                finally:
                    if watched is not None:
                        self.replies = watched[0]
                if watched is not None and _DEADLOCK in watched[1] and self.tx is tx:
                    assert tx is not None
                    await self._abort(tx)  # a deadlock in a scatter or merged read
            elif isinstance(decision, CreateShardedTable):
                await self._create(plan.layout, decision)
            elif isinstance(decision, FanOut):
                await self._fan_out(plan.layout, decision)
            elif isinstance(decision, Maintenance):
                await self._maintenance(plan.layout, decision)
            elif isinstance(decision, RenamedRows):
                await self._renamed_rows(plan.layout, decision)
            elif isinstance(decision, TableStatus):
                await self._table_status(plan.layout, decision)
            elif isinstance(decision, FieldListing):
                await self._field_list(plan.layout, decision)
            elif isinstance(decision, SequenceDdl):
                await self._sequence_ddl(plan.layout, decision)
            elif isinstance(decision, TransactionControl):
                await self._control(plan.text, decision)
            elif isinstance(decision, TableLocks):
                await self._table_locks(plan.layout, decision)

    @contextlib.contextmanager
    def _failures_answered(self) -> Iterator[None]:
        """A statement's failure as the client's error, the session going on: refused (a
        SqlError), a partition unreachable, a statement of the proxy's own refused by the
        shard (a catalog-definition read), or a connection lost under the proxy's own
        statements (nothing sent to the client yet; the next statement reconnects what is
        broken)."""
        session = self.session
        try:
            yield
        except BackendUnavailable as exc:
            log.warning("connection %d: %s", session.connection_id, exc)
            self.replies.error(exc.error)
        except SqlError as error:
            if self._acquired is None:
                self.refused_here()  # (decided before any partition ran it)
            self.replies.error(error)
        except BackendQueryError as exc:
            self.replies.error(sql_error_from(exc.errno, exc.sqlstate, exc.message))
        except (BackendError, ConnectionLost) as exc:
            log.warning("connection %d: %s", session.connection_id, exc)
            self.replies.error(lost_error([], exc))

    async def execute_packet(self, plan: ShardedPacket) -> None:
        """A multi-statement packet: each statement in turn; the answers of all but the last
        end with SERVER_MORE_RESULTS_EXISTS, and an error ends the packet."""
        started = time.perf_counter()
        self._scatter = 0
        self._digest = plan.digest
        real = self.replies
        try:
            for index, item in enumerate(plan.statements):
                if index == len(plan.statements) - 1:
                    # Through the executor too: a relay would send the shard's sequence ids,
                    # which are not the packet's after the answers before it.
                    self._relay_ok = False
                    try:
                        await self._execute(item)
                    finally:
                        self._relay_ok = True
                    return
                held = _MoreResults(real, self.session.capabilities)
                self.replies = held.replies()
                self._relay_ok = False
                try:
                    await self._execute(item)
                finally:
                    self.replies = real
                    self._relay_ok = True
                if not held.finish():
                    return
        finally:
            seconds = time.perf_counter() - started
            self.session.ctx.digest.record(
                self.session.current_db, plan.digest, seconds, 0, self._scatter
            )

    async def _decided(self, text: str, *args: Any, **kwargs: Any) -> Decision | None:
        """``decide(text, ...)``; for a text longer than INLINE_ANALYSIS_LIMIT in the session's
        turn of the analysis threads, not on the event loop: a sharded statement's routing
        reads its text whole, values and all (a second of CPU for 16 MB of string escapes)."""
        if len(text) <= INLINE_ANALYSIS_LIMIT:
            return decide(text, *args, **kwargs)
        session = self.session
        return await session.ctx.analysis_pool.run(
            session.tenant(), functools.partial(decide, text, *args, **kwargs)
        )

    async def _with_nextvals(self, plan: Sharded, needs: NeedsNextval) -> Decision | None:
        """Take a value of each ``s.NEXTVAL``; decide again with them in place. A statement
        left with no sharded table (``SELECT s.NEXTVAL``) runs on physical database 0."""
        catalog = self.session.ctx.accounts.catalog
        layout = plan.layout
        values: list[int] = []
        try:
            for name in needs.sequences:
                taken = await asyncio.to_thread(
                    next_values, SEQUENCES, catalog, layout.name, name, 1
                )
                values += taken
        except CatalogUnavailableError as error:
            self.replies.error(error.client_error())
            return None
        except CatalogError as exc:
            raise sql_error(ErrorCode.UNKNOWN_ERROR, f"Sequence: {exc}") from None
        mode, flavor = self.session.link.state.lex_mode, self.session.link.state.flavor
        decision = await self._decided(
            plan.text, layout, mode, flavor, nextvals=values, codec=self._codec()
        )
        if isinstance(decision, NeedsSequence):
            raise not_supported("s.NEXTVAL in an INSERT that takes its shard key from a sequence")
        if decision is None:
            text = _substituted(plan.text, layout, mode, flavor, values)
            first = layout.partitions[0]
            return Route("copy", "", False, True, (Target(0, first.shard, first.name, text),))
        return decision

    async def _with_statistics(self, plan: Sharded) -> Decision | None:
        """information_schema.TABLES / STATISTICS: every partition's statistics of the sharded
        tables' physical tables read first (on the session's connections, in the targets'
        order), summed per logical table and index, then the statement decided again with
        them in its derived tables."""
        layout = plan.layout
        owners: dict[tuple[int, str], LogicalTable] = {}
        for table in layout.tables.values():
            if table.rule.kind == "sharded":
                for database, name in table.physical_tables(layout.count):
                    owners[(database, name.lower())] = table
        first = {t.key: t.physical_names_in(0, layout.count)[0] for t in owners.values()}
        targets = _ordered_all(layout)
        conns = await self._acquire(layout, targets, branch=False)
        sizes: dict[str, list[int]] = {}
        cardinalities: Counter[tuple[str, str, int]] = Counter()
        try:
            for target in targets:
                conn = conns[target.partition]
                tables, indexes = [
                    await conn.query(OWN_STATEMENT + sql) for sql in STATISTICS_QUERIES
                ]
                for row in tables.rows:
                    owner = owners.get((target.partition, _text(row[0]).lower()))
                    if owner is not None:
                        summed = sizes.setdefault(first[owner.key], [0, 0, 0, 0])
                        for at, value in enumerate(row[1:5]):
                            summed[at] += int(value or 0)
                for row in indexes.rows:
                    owner = owners.get((target.partition, _text(row[0]).lower()))
                    if owner is not None and row[3] is not None:
                        key = (first[owner.key], _text(row[1]), int(row[2] or 0))
                        cardinalities[key] += int(row[3])
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return None
        # The tables whose AUTO_INCREMENT is where their GROUP sequence stands, by the name
        # of their row in physical database 0.
        sequenced = {
            t.physical_names_in(0, layout.count)[0]: auto_sequence_name(t.name)
            for t in sequenced_tables(layout)
        }
        positions = await self._sequence_positions(layout, sequenced)
        statistics = Statistics(
            tuple(
                (name, rows, data, index, free)
                for name, (rows, data, index, free) in sorted(sizes.items())
            ),
            tuple((*key, n) for key, n in sorted(cardinalities.items())),
            tuple(sorted(positions.items())),
        )
        state = self.session.link.state
        return await self._decided(
            plan.text,
            layout,
            state.lex_mode,
            state.flavor,
            codec=self._codec(),
            statistics=statistics,
        )

    async def _sequence_positions(
        self, layout: Layout, sequences: Mapping[str, str]
    ) -> dict[str, int]:
        """Where each sequence stands in the catalog (``sequences``: a name -> its sequence),
        those the catalog still has; the catalog unreadable: its error (no counter guessed)."""
        catalog = self.session.ctx.accounts.catalog
        try:
            return await asyncio.to_thread(_sequence_positions, catalog, layout, sequences)
        except CatalogUnavailableError as error:
            raise error.client_error() from None

    async def _counted(self, layout: Layout, shown: LocalRows, sequence: str) -> LocalRows:
        """SHOW CREATE TABLE of a table whose AUTO_INCREMENT column takes its values from
        GROUP sequence ``sequence``: its definition with the sequence's place in the catalog
        as its counter (past every value any node handed out: a dump restored goes on after
        its rows). The catalog unreadable: its error (no counter guessed)."""
        position = (await self._sequence_positions(layout, {"": sequence})).get("")
        if position is None:  # (dropped meanwhile: the definition as stored)
            return shown
        ((name, definition),) = shown.rows
        assert definition is not None
        return replace(shown, rows=((name, with_counter(definition, position)),))

    async def _shard_counter(
        self, layout: Layout, shown: LocalRows, table: str
    ) -> LocalRows | None:
        """SHOW CREATE TABLE of single table ``table``, which has an AUTO_INCREMENT column:
        its definition with the counter its table on physical database 0 has (MariaDB's own,
        which a dump restored goes on from); None when that connection failed (answered)."""
        first = layout.partitions[0]
        sql = f"SHOW CREATE TABLE {quote_name(table)}"
        conns = await self._acquire(
            layout, (Target(0, first.shard, first.name, sql),), branch=False
        )
        try:
            found = await conns[0].query(OWN_STATEMENT + sql)
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return None
        ((name, definition),) = shown.rows
        assert definition is not None
        counter = shown_counter(_text(found.rows[0][1])) if found.rows else 1
        return replace(shown, rows=((name, with_counter(definition, counter)),))

    async def _sequence_ddl(self, layout: Layout, decision: SequenceDdl) -> None:
        session = self.session
        catalog = session.ctx.accounts.catalog
        assert session.account is not None
        actor = Actor(session.account, session.client_ip, session.current_db).audit_name
        statement = decision.statement
        try:
            if isinstance(statement, CreateSequence):
                await asyncio.to_thread(
                    catalog.create_sequence,
                    layout.name,
                    statement.name,
                    statement.start_with,
                    actor=actor,
                    client=session.client_ip,
                )
            elif isinstance(statement, AlterSequence):
                await asyncio.to_thread(
                    catalog.alter_sequence,
                    layout.name,
                    statement.name,
                    statement.start_with,
                    actor=actor,
                    client=session.client_ip,
                )
            else:
                await asyncio.to_thread(
                    catalog.drop_sequence,
                    layout.name,
                    statement.name,
                    actor=actor,
                    client=session.client_ip,
                )
                SEQUENCES.forget(layout.name, statement.name)
        except SequenceExistsError:
            raise sql_error(
                ErrorCode.TABLE_EXISTS, f"Sequence '{statement.name}' already exists"
            ) from None
        except UnknownSequenceError:
            raise sql_error(
                ErrorCode.BAD_TABLE, f"Unknown sequence '{layout.name}.{statement.name}'"
            ) from None
        except CatalogUnavailableError as error:
            raise error.client_error() from None
        self.replies.ok()

    async def _with_sequence(self, plan: Sharded, needs: NeedsSequence) -> Route | None:
        catalog = self.session.ctx.accounts.catalog
        layout = plan.layout
        try:
            values = await asyncio.to_thread(
                next_values, SEQUENCES, catalog, layout.name, needs.sequence, needs.count
            )
        except CatalogUnavailableError as error:
            self.replies.error(error.client_error())
            return None
        except CatalogError as exc:
            raise sql_error(ErrorCode.UNKNOWN_ERROR, f"Sequence {needs.sequence}: {exc}") from None
        mode, flavor = self.session.link.state.lex_mode, self.session.link.state.flavor
        decision = await self._decided(plan.text, layout, mode, flavor, values, codec=self._codec())
        assert isinstance(decision, Route)
        return decision

    # -- connections ------------------------------------------------------------------------

    async def _acquire(
        self, layout: Layout, targets: Sequence[Target], branch: bool = True
    ) -> dict[int, BackendConnection]:
        """The targets' connections; inside a transaction (``branch``), each one a branch of
        it (the client's statements; not the proxy's own reads, nor DDL)."""
        partitions = [layout.partitions[t.partition] for t in targets]
        one = targets[0].partition if len(targets) == 1 else -1
        self._counts = None  # (known once it ran: _concatenate, _merged_rows, _write)
        held = self.source.held
        held.ran_on = one if self._acquired is None or self._acquired == one else -1
        self._acquired = held.ran_on
        conns = await self.source.acquire(partitions)
        if branch and self.in_charge():
            order = sorted(conns, key=lambda p: targets_order(targets, p))
            await self._branches({p: conns[p] for p in order})
        return conns

    def begin_command(self) -> int:
        """A client command starts: where the last one ran (``HeldConnections.ran_on``)."""
        held = self.source.held
        ran, held.ran_on = held.ran_on, 0
        self._acquired = None
        self._own_count, self.answered = self.answered, None
        if self.found_left:
            # (it left FOUND_ROWS() as it was: whoever knew it still does)
            self._kept = True
        elif ran >= 0:
            # (it ran on one connection, which may have run a SELECT: that one knows)
            self._found = None
            self._found_on = ran
            self._kept = False
        else:
            self._found_on = -1
            self._kept = False
        self.found_left = False
        self._failed, self._refused = self._refused and ran == 0, False
        return ran

    def refused_here(self) -> None:
        """The command was refused before it ran on any partition: it leaves FOUND_ROWS()
        as it was, and ROW_COUNT() is -1 after it."""
        self.found_left = True
        self._refused = True

    def left_found_rows(self) -> None:
        """The command left FOUND_ROWS() as it was (a statement that reads no rows, a
        refusal), wherever it ran."""
        self.found_left = True

    def found_elsewhere(self) -> bool:
        """Whether FOUND_ROWS() is known to be what the proxy counted, not physical database
        0's (a scatter SELECT's, through statements that leave it), or ROW_COUNT() is the
        proxy's (-1 after its refusal)."""
        return self._found_on != 0 or self._failed

    async def last_statement(
        self, ran: int, identity: IdentityValues, asks_found: bool = True
    ) -> IdentityValues | SqlError:
        """``identity`` answering ROW_COUNT() and FOUND_ROWS() (``asks_found``: asked too) about
        the session's last statement, which ran (``ran``, from begin_command) on another
        connection than the session's own, which would answer about its own last one: asked
        of the connection that ran it; when several did (each knows its own part only), what
        the proxy answered the client for it (``_counts``). 1235 when that is not known."""
        if ran == 0 or (ran > 0 and self._kept and asks_found):
            found = self._found
            if asks_found and self._found_on > 0:
                on = await self._found_rows_on(self._found_on)
                if isinstance(on, SqlError):
                    return on
                found = on
            elif asks_found and self._found_on < 0 and found is None:
                return not_supported(
                    "FOUND_ROWS() after a SELECT the proxy ran on several physical databases or"
                    " tables (each knows only its own part)"
                )
            if ran > 0:
                # (a statement on another partition that left FOUND_ROWS(): its ROW_COUNT())
                count = await self._row_count_on(ran)
                if isinstance(count, SqlError):
                    return count
                return replace(identity, found_rows=found, row_count=count)
            return replace(
                identity, found_rows=found, row_count=-1 if self._failed else self._own_count
            )
        if ran < 0:
            counts = self._counts
            if counts is not None and (counts[1] is not None or not asks_found):
                return replace(identity, row_count=counts[0], found_rows=counts[1])
            if counts is not None and self._kept and self._found_on >= 0:
                # (it left FOUND_ROWS(): a SELECT's on one connection before it, which
                # knows it -- physical database 0's answers for itself)
                kept = await self._found_rows_on(self._found_on) if self._found_on else None
                if isinstance(kept, SqlError):
                    return kept
                return replace(identity, row_count=counts[0], found_rows=kept)
            return not_supported(
                ("FOUND_ROWS()" if counts is not None else "ROW_COUNT() or FOUND_ROWS()")
                + " after a statement the proxy ran on several physical databases or tables"
                " (each knows only its own part)"
            )
        conn = self.source.held.conns.get(ran) if ran > 0 else None
        if conn is None or conn.broken or conn.is_closing():
            return not_supported(
                "ROW_COUNT() or FOUND_ROWS() after a statement whose connection is gone"
            )
        try:
            result = await conn.query(f"{OWN_STATEMENT}SELECT FOUND_ROWS(), ROW_COUNT()")
        except BackendQueryError as exc:
            return SqlError(exc.errno, exc.sqlstate, exc.message)
        found, count = (int(v or 0) for v in result.rows[0])
        return replace(identity, found_rows=found, row_count=count)

    async def _row_count_on(self, partition: int) -> int | SqlError:
        """ROW_COUNT() of partition ``partition``'s connection (its statement was the
        session's last); 1235 when it is gone."""
        return await self._count_on(partition, "ROW_COUNT()", "a statement")

    async def _found_rows_on(self, partition: int) -> int | SqlError:
        """FOUND_ROWS() of partition ``partition``'s connection (its SELECT was the session's
        last); 1235 when it is gone."""
        return await self._count_on(partition, "FOUND_ROWS()", "a SELECT")

    async def _count_on(self, partition: int, call: str, what: str) -> int | SqlError:
        conn = self.source.held.conns.get(partition)
        if conn is None or conn.broken or conn.is_closing():
            return not_supported(f"{call} after {what} whose connection is gone")
        try:
            result = await conn.query(f"{OWN_STATEMENT}SELECT {call}")
        except BackendQueryError as exc:
            return SqlError(exc.errno, exc.sqlstate, exc.message)
        return int(result.rows[0][0] or 0)

    def _lost(self, conns: Mapping[int, BackendConnection], exc: Exception, replied: bool) -> None:
        """A partition's connection failed under a statement: 2013 (the session ends when part
        of the answer was already sent, or the session's own connection was lost with state)."""
        session = self.session
        broken = [index for index, conn in conns.items() if conn.broken or conn.is_closing()]
        # (said where, as the client knows the topology: never a physical database's name)
        cause = _lost_where(conns, exc)
        if not broken:
            # Not known which one failed: none of the statement's connections is trusted.
            broken = list(conns)
        for index in broken:
            conns[index].broken = True
        self.source.release(conns, broken)
        tx = self.tx
        # A branch of the transaction went with it: the session ends (its end rolls back the
        # other branches), as with a transaction lost on the session's own connection.
        in_transaction = tx is not None and any(index in tx.branches for index in broken)
        if 0 in broken:
            reasons = session.link.bound_reasons()
            session.link.drop()
            session.prepared.clear()
            self.forget_statements()
            if reasons or replied or in_transaction:
                raise SessionLost(lost_error(reasons or ["an open transaction"], cause))
        elif self.locked is not None and any(index in self._locked_on for index in broken):
            raise SessionLost(lost_error(["table locks"], cause))  # (the next would run unlocked)
        elif replied or in_transaction:
            raise SessionLost(lost_error(["an open transaction"] if in_transaction else [], cause))
        self.replies.error(lost_error([], cause))

    # -- routed statements -------------------------------------------------------------------

    async def _route(self, decision: Route) -> None:
        session = self.session
        layout = _layout_of(session)
        targets = decision.targets
        if self.locked is not None:
            self._check_locked(layout, decision)
            targets = await self._unaliased(layout, targets)
            decision = replace(decision, targets=targets)
        # (FOUND_ROWS() as the statement before left it, for an answer of the proxy's own)
        self._found_before = self._found
        if decision.rows_back and not self._relay_ok:
            # (its rows are relayed from its one partition; in a packet of several statements
            # the proxy answers each itself, reading a write's answer as an OK)
            raise not_supported(
                f"a write answering rows (RETURNING) on table {decision.table} in a packet of"
                " several statements on a sharded database"
            )
        conns = await self._acquire(layout, targets)
        self._ran(decision.kind, len(targets))
        replied = False
        try:
            if (
                len(targets) == 1
                and not decision.sequence_values
                and decision.returning is None
                and self._relay_ok
            ):
                conn = conns[targets[0].partition]
                conn.send(b"\x03" + _wire(targets[0].sql))
                replied = True
                # (a read's column definitions, any statement's error, in logical names)
                scanner = await self._relay_logical(conn, targets[0], layout)
                self.refused_by_shard(conn, targets[0].partition, scanner, self._digest)
                await self.after_statement(scanner)
            elif decision.reads_rows and not decision.write:
                self._sent = False
                await self._scatter_read(conns, targets, layout)
            else:
                await self._write(conns, targets, decision)
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, replied or self._sent)
            return
        self._answered_on(conns, targets)

    def _answered_on(
        self, conns: Mapping[int, BackendConnection], targets: Sequence[Target]
    ) -> None:
        """A statement of the client's ran on ``targets`` (it names their tables: each shard
        started a new diagnostics area for it): the session's area is physical database 0's
        connection's when that is one of them, else the last target's (``FastPath.area``:
        SHOW WARNINGS answers from it). An error the executor answered itself is raised on
        physical database 0's afterwards (``Session._settle_diagnostics``)."""
        area = None
        if targets and all(t.partition != 0 for t in targets):
            area = conns.get(targets[-1].partition)
        self.session.fast.area = area

    # -- LOCK TABLES --------------------------------------------------------------------------

    async def _table_locks(self, layout: Layout, decision: TableLocks) -> None:
        """LOCK TABLES: the physical tables' locks taken on every physical database's
        connection in the acquisition order (the same for every session: two sessions locking
        the same tables cannot deadlock), physical database 0's being the session's own
        (bound while locked). As on MariaDB, the open transaction is committed and the
        session's locks released first, and a LOCK TABLES that fails leaves none. UNLOCK
        TABLES: on each connection holding locks, physical database 0's answering."""
        link = self.session.link
        if decision.unlock:
            await self._unlock_partitions()
            await self._on_link("UNLOCK TABLES")
            link.binds.discard(BIND_TABLE_LOCK)
            return
        if self.tx is not None and self.locked is None and not await self.commit_implicitly():
            return
        await self._unlock_partitions()
        conns = await self._acquire(layout, decision.targets, branch=False)
        self._locked_on = tuple(t.partition for t in decision.targets)
        if isinstance(self.source, SessionPartitions):
            self.source.locked = True
        link.binds.add(BIND_TABLE_LOCK)
        failed: bytes | None = None
        try:
            for target in decision.targets:
                conn = conns[target.partition]
                packet = _track(conn, await conn.command(b"\x03" + _wire(target.sql)))
                if packet[:1] == b"\xff":
                    failed = self.logical_names(layout).error(packet, target.database.encode())
                    break
        except (BackendError, ConnectionLost) as exc:
            # The locks taken before it released, physical database 0's too: its connection
            # unbound with them would go back to the pool holding them (another session's).
            await self._unlock_partitions()
            await self._unlock_link()
            self._lost(conns, exc, False)
            return
        if failed is not None:
            # MariaDB released the session's locks before failing: so do the others.
            await self._unlock_partitions()
            await self._unlock_link()
            self.replies.write(failed)
            return
        self.locked = decision.tables
        self.replies.ok()

    async def _unlock_partitions(self) -> None:
        """UNLOCK TABLES on each connection besides the session's own that holds locks."""
        held, self._locked_on = self._locked_on, ()
        self._unlocked()
        layout = _layout_of(self.session)
        others = [layout.partitions[p] for p in held if p != 0]
        if not others:
            return
        try:
            conns = await self.source.acquire(others)
        except (BackendError, BackendUnavailable, ConnectionLost):
            # (not reached: closed, the connections still held end their locks)
            await self.source.close()
            return
        for partition, conn in conns.items():
            try:
                await _own_ok(conn, "UNLOCK TABLES")
            except (BackendQueryError, BackendError, ConnectionLost):
                conn.broken = True  # (closed: its locks end with it)
                self.source.release({partition: conn}, [partition])

    async def _unlock_link(self) -> None:
        """UNLOCK TABLES on the session's own connection, its answer dropped; the table lock's
        bind released only once it succeeded (else the connection stays the session's, never
        given back to the pool with locks)."""
        try:
            await self._on_link("UNLOCK TABLES", answer=False)
        except (BackendError, BackendQueryError, BackendUnavailable, ConnectionLost):
            return
        self.session.link.binds.discard(BIND_TABLE_LOCK)

    def _unlocked(self) -> None:
        self.locked = None
        if isinstance(self.source, SessionPartitions):
            self.source.locked = False

    def _check_locked(self, layout: Layout, decision: Route) -> None:
        """Under LOCK TABLES, a statement on a sharded or broadcast table not locked is 1100
        (MariaDB's answer on each partition; on one connection not locked it would run); a
        write with autocommit off is 1235 (it would stay in one partition's own transaction,
        which the client's COMMIT, run where single tables live, would not end)."""
        assert self.locked is not None
        if decision.write and _autocommit_off(self.session.link.state.variables):
            raise _xa_under_locks("a write in a transaction (autocommit=0)")
        for key in sorted(decision.tables or ()):
            table = layout.tables.get(key)
            if table is not None and table.rule.kind != "single" and key not in self.locked:
                raise SqlError(
                    _TABLE_NOT_LOCKED,
                    "HY000",
                    f"Table '{table.name}' was not locked with LOCK TABLES",
                )

    def refused_by_shard(
        self, conn: BackendConnection, partition: int, scanner: ResponseScanner, digest: str
    ) -> None:
        """``conn``, physical database ``partition``'s, answered a statement the proxy allowed
        (``digest``): when the shard refused it on its grants (a classifier miss, or a mirror
        changed behind the proxy's back), counted and the mirror suspected, and the connection
        not used again unless a transaction or table locks hold it (a new one is opened once
        the mirror is verified again)."""
        if not scanner.error or scanner.errno not in SHARD_REFUSALS:
            return
        session = self.session
        session.ctx.shard_refused(scanner.errno, session.current_db, digest, conn.target)
        if partition == 0:
            session.link.retire()  # (kept when something session-bound is on it)
        elif self.tx is None and self.locked is None:
            self.source.release({}, [partition])

    async def _relay_logical(
        self,
        conn: BackendConnection,
        target: Target,
        layout: Layout,
        statement_id: int | None = None,
    ) -> ResponseScanner:
        """Relay the answer of one statement sent to ``target`` with its column definitions
        (and error) naming the logical database and tables where they named the physical ones
        (the rows as they come)."""
        columns = self.logical_names(layout).rewrite(target.database)
        if may_show_definers(target.sql):
            # (a view's definer: its creator's account, not its mirror)
            return await self.session.relay_definers(conn, columns, statement_id)
        return await conn.relay(self.session.client, ResponseKind.QUERY, columns)

    def link_columns(
        self, snapshot: CatalogSnapshot | None = None
    ) -> Callable[[bytes], bytes] | None:
        """The renaming of the column definitions of what the session relays on its own
        connection when its database is sharded (single tables, on physical database 0);
        None when it is not. (``snapshot``: the current one, when the caller has it.)"""
        session = self.session
        if snapshot is None:
            snapshot = session.ctx.snapshot()
        database = session.current_db
        cached = self._link_columns
        if cached is not None and cached[0] is snapshot and cached[1] == database:
            return cached[2]
        layout = None if database is None else sharded_layout(snapshot, database)
        rewrite = None
        if layout is not None:
            rewrite = self.logical_names(layout).rewrite(layout.partitions[0].name)
        self._link_columns = (snapshot, database, rewrite)
        return rewrite

    def columns_for(self, layout: Layout, database: str) -> Callable[[bytes], bytes]:
        """``logical_names(layout).rewrite(database)``, remembered for the ``layout`` object
        (the fast path's, once per statement: each plan of a snapshot has a layout of its
        own, the same object for as long as the plan is used; a new snapshot's plans have new
        layouts, whose renamings are made anew)."""
        entry = self._columns_for.get(id(layout))
        if entry is not None and entry[0] is layout:
            found = entry[1].get(database)
            if found is not None:
                return found
        else:
            if len(self._columns_for) >= _LAYOUTS_KEPT:
                self._columns_for.clear()
            entry = self._columns_for[id(layout)] = (layout, {})
        found = entry[1][database] = self.logical_names(layout).rewrite(database)
        return found

    def client_error(self, error: SqlError) -> SqlError:
        """An error the executor answers, as the client may see it: a shard's text naming
        the backend account (a mirror) names the client's, and one naming a physical
        database of the current (sharded) database names the logical one -- whichever path
        built it (an XA branch's statement, a transaction step, a fan-out)."""
        message = error.message
        text = self._client_text(message.encode("utf-8", "surrogateescape"))
        if text is None:
            return error
        return replace(error, message=text.decode("utf-8", "surrogateescape"))

    def client_message(self, message: str) -> str:
        """A shard's note or error text as :meth:`client_error` names it."""
        text = self._client_text(message.encode("utf-8", "surrogateescape"))
        return message if text is None else text.decode("utf-8", "surrogateescape")

    def client_err_packet(self, payload: bytes) -> bytes:
        """An ERR packet a shard answered, relayed by the executor (a scatter's, a merge's,
        a write's): its text as :meth:`client_error` makes it."""
        at = err_message_at(payload)
        text = self._client_text(payload[at:])
        return payload if text is None else payload[:at] + text

    def _client_text(self, text: bytes) -> bytes | None:
        """A shard's error text named as the client may see it; None: as it is."""
        session = self.session
        database = session.current_db
        if b"'sg" not in text and (database is None or f"{database}_".encode() not in text):
            return None
        original = text
        if session.account is not None:
            text = client_account_named(text, session.account.user, session.client_ip)
        layout = None if database is None else sharded_layout(session.ctx.snapshot(), database)
        if layout is not None:
            names = self.logical_names(layout)
            for partition in layout.partitions:
                physical = partition.name.encode()
                if physical in text:
                    text = _renamed_message(text, physical, names)
        return None if text == original else text

    def logical_names(self, layout: Layout) -> LogicalNames:
        """The renaming of ``layout``'s column definitions (kept while the layout is, or one
        of the same tables and partitions: each plan of a snapshot has a Layout object of its
        own, and a session alternating between statements must keep the renames it
        remembered)."""
        cached = self._names
        account = self.session.account
        named = None if account is None else (account.user, self.session.client_ip)
        if cached is not None and cached[1].account != named:
            # Another account (COM_CHANGE_USER): no renaming of the previous one's is kept.
            cached = None
            self._columns_for.clear()
            self._link_columns = None
        if cached is None or (
            cached[0] is not layout
            and not (
                cached[0].tables is layout.tables
                and cached[0].partitions is layout.partitions
                and cached[0].name == layout.name
            )
        ):
            renames = LogicalNames(layout.name.encode(), physical_table_names(layout), named)
            cached = self._names = (layout, renames)
        return cached[1]

    async def merge_readers(
        self, layout: Layout, targets: Sequence[Target], why: str | None
    ) -> tuple[dict[int, BackendConnection], list[BackendConnection]]:
        """The connections a merge reads ``targets`` on: (the acquired ones by physical
        database, and per target the one to send its statement on). Each physical table is
        one merge input and all are read at once, so a physical database with several of them
        (TBPARTITION BY) gives its first target the acquired connection and the others spare
        ones (``PartitionSource.spares``) -- except inside a transaction, whose branch is that
        one connection: then every target of the database reads on it, one after another
        (``merge_streams``), as under LOCK TABLES (the locks are that connection's). Counts the
        statement in the metrics."""
        per_db = Counter(t.partition for t in targets)
        conns = await self._acquire(layout, targets)
        spares = {
            p: (
                [conns[p]] * (n - 1)
                if self.in_charge() or self.locked is not None
                else await self.source.spares(layout.partitions[p], n - 1)
            )
            for p, n in per_db.items()
            if n > 1
        }
        self._ran("merged", len(targets))
        return conns, _readers(targets, conns, spares)

    async def _merged(self, plan: Sharded, decision: Route) -> None:
        """A scatter SELECT that needs a merge: the merge engine rewrites it (proxy/merge),
        routing puts the physical names into its rewrite, every physical database runs it at
        once, and the merged result streams to the client."""
        merge_plan = plan_select(plan.text)
        if isinstance(merge_plan, Refusal):
            raise SqlError(merge_plan.errno, merge_plan.sqlstate, merge_plan.message)
        state = self.session.link.state
        rerouted = await self._decided(
            merge_plan.sql, plan.layout, state.lex_mode, state.flavor, codec=self._codec()
        )
        if not isinstance(rerouted, Route) or rerouted.merge is None:
            raise not_supported(f"merging {decision.merge} across partitions of this statement")
        targets = rerouted.targets
        if self.locked is not None:
            self._check_locked(plan.layout, rerouted)
            targets = await self._unaliased(plan.layout, targets)
        conns, readers = await self.merge_readers(plan.layout, targets, decision.merge)
        self._sent = False
        try:
            streams = merge_streams(readers, [b"\x03" + _wire(t.sql) for t in targets])
            await self._merged_rows(merge_plan, streams, readers, plan.layout, plan.text)
        except (BackendError, ConnectionLost) as exc:
            for conn in readers:
                conn.broken = True
            self._lost(conns, exc, self._sent)
            return
        self._answered_on(conns, targets)

    async def _union_notes(self, readers: Sequence[BackendConnection], warned: int) -> None:
        """:meth:`_notes_of` kept as the session's notes (physical database 0's area emptied
        for them, as after any notes of the proxy's)."""
        notes = await self._notes_of(readers, warned)
        if notes is not None:
            self.session.notes = notes
            self.session.fast.area = None

    async def _notes_of(
        self, readers: Sequence[BackendConnection], warned: int
    ) -> list[tuple[str, int, str]] | None:
        """A statement on several partitions succeeded with ``warned`` conditions in all: the
        diagnostics area MariaDB would show for it holds every partition's (in the targets'
        order), not only the session's own connection's or the last one's. Read from each
        connection (SHOW WARNINGS: its area stays), for the proxy to answer SHOW WARNINGS /
        COUNT(*) and @@warning_count / @@error_count from. None when a connection ran more
        than one of the targets (its area holds its last statement's only) or there are more
        than max_error_count (MariaDB counts them all but keeps the first): the areas stay as
        they are, the last partition's showing."""
        if len(set(readers)) != len(readers):
            return None
        limit = _max_error_count(self.session.link.state.variables)
        if limit is None or warned > limit:
            return None
        notes: list[tuple[str, int, str]] = []
        for conn in readers:
            try:
                shown = await conn.query(OWN_STATEMENT + "SHOW WARNINGS")
            except (BackendQueryError, BackendError, ConnectionLost):
                # (the answer was sent: a connection lost now is found by the next statement)
                return None
            notes += [
                (
                    (level or b"").decode("utf-8", "replace"),
                    int(code or 0),
                    (message or b"").decode("utf-8", "surrogateescape"),
                )
                for level, code, message in (row[:3] for row in shown.rows)
            ]
        return notes if len(notes) == warned else None

    async def _merged_rows(
        self,
        merge_plan: MergePlan,
        streams: Sequence[AsyncIterator[bytes]],
        readers: Sequence[BackendConnection],
        layout: Layout,
        text: str,
        binary: bool = False,
    ) -> None:
        """The merged result of ``streams`` written to the client as it comes; then, when it
        ended without an error, what FOUND_ROWS() answers after it (``_counts``): as MariaDB
        counts for ``text``, the rows sent -- and the rows LIMIT's offset skipped before
        them, which are known only when some were sent (all, then: the offset's)."""
        self._counts = (-1, None)
        self._found = None
        client = self.session.client
        head = -1
        total = 0
        last = b""
        async for batch in merge_batches(
            merge_plan,
            streams,
            capabilities=self.session.capabilities,
            binary=binary,
            schema=layout.name.encode(),
            tables=physical_table_names(layout),
        ):
            self._emit_many(batch)
            if head < 0:
                head = len(batch)
            total += len(batch)
            if batch:
                last = batch[-1]
            if client.write_paused:
                await client.drain()
        if head < 0 or last[:1] != b"\xfe" or len(last) >= 0xFFFFFF:
            return  # (an error ended it)
        warned = _end_warnings(last, self.session.capabilities)
        if warned:
            await self._union_notes(readers, warned)
        sent = total - head - 1
        offset = merge_plan.offset
        if "SQL_CALC_FOUND_ROWS" in text.upper() or (offset and not sent):
            return  # (each partition counted its own; the rows the offset skipped: unknown)
        self._found = sent + offset if sent else 0
        self._counts = (-1, self._found)

    async def _scatter_read(
        self,
        conns: Mapping[int, BackendConnection],
        targets: Sequence[Target],
        layout: Layout,
        packets: Sequence[bytes] = (),
    ) -> None:
        """Concatenate the targets' result sets as they stream (``_sent``: anything reached
        the client); statements needing a merge go to :meth:`_merged` instead.

        The physical databases work in parallel: the first statement of each is sent at once,
        the next one on a connection when the previous answer was read (one statement in
        flight per connection). An answer waiting its turn stays with the shard (the
        connection stops reading, TCP holds the rest); answers not read when the scatter ends
        early (an error) are read and dropped before the connections are used again."""
        # (a failure: ROW_COUNT() -1, as MariaDB's; FOUND_ROWS() not known -- MariaDB's
        # counts the rows sent before an error in its own order, or none for a table missing)
        self._counts = (-1, None)
        self._found = None
        following: dict[int, int] = {}  # target -> the next target on its connection
        last_on: dict[int, int] = {}
        for index, target in enumerate(targets):
            if target.partition in last_on:
                following[last_on[target.partition]] = index
            last_on[target.partition] = index
        in_flight: set[int] = set()

        def send(index: int, hold: bool) -> None:
            conn = conns[targets[index].partition]
            conn.send(packets[index] if packets else b"\x03" + _wire(targets[index].sql))
            in_flight.add(index)
            if hold:
                conn.pause_reading()

        firsts = sorted(
            {min(i for i, t in enumerate(targets) if t.partition == p) for p in last_on}
        )
        for index in firsts:
            send(index, hold=index != 0)
        try:
            names = self.logical_names(layout)
            await self._concatenate(
                conns, targets, names, in_flight, following, send, bool(packets)
            )
        except BaseException:
            # A connection failed (or the task was cancelled): those with an answer still
            # coming are not reused.
            for index in in_flight:
                conns[targets[index].partition].broken = True
            raise
        pending = sorted(in_flight)
        in_flight.clear()
        for done, index in enumerate(pending):
            conn = conns[targets[index].partition]
            try:
                conn.resume_reading()
                await _discard(conn)
            except BaseException:
                for later in pending[done:]:
                    conns[targets[later].partition].broken = True
                raise

    async def _concatenate(
        self,
        conns: Mapping[int, BackendConnection],
        targets: Sequence[Target],
        names: LogicalNames,
        in_flight: set[int],
        following: Mapping[int, int],
        send: Callable[[int, bool], None],
        binary: bool = False,
    ) -> None:
        session = self.session
        client = session.client
        columns: int | None = None
        # A copy on physical database 0 that may show a view's definer: its creator's
        # account in the rows (proxy.session.definers; the other path of such a copy).
        renamer: RowRenamer | None = None
        definers = len(targets) == 1 and may_show_definers(targets[0].sql)
        ok_affected = 0
        rows = 0  # (sent: FOUND_ROWS() after it)
        warned = 0  # (the conditions the targets' answers counted)
        last_end: bytes | None = None
        for index, target in enumerate(targets):
            conn = conns[target.partition]
            caps = conn.capabilities
            conn.resume_reading()
            _, first = await _read(conn)
            if first[:1] in (b"\xff", b"\x00"):
                in_flight.discard(index)
            if first[:1] == b"\xff":
                first = names.error(first, target.database.encode())
                err = parse_err(first, caps)
                if columns is None:
                    self.replies.error(sql_error_from(err.errno, err.sqlstate, err.message))
                    return
                self._emit(first)  # an error in place of the next row, as MariaDB sends
                return
            if first[:1] == b"\x00":
                ok_affected += parse_ok(first, caps).affected_rows
                last_end = first
                if index in following:
                    send(following[index], False)
                continue
            count_, width = read_lenenc_int(first, 0)
            header = [first]
            defs = count_ or 0
            if caps & _CACHE_METADATA and len(first) > width and first[width] == 0:
                defs = 0  # the client has them (a re-executed prepared statement)
            for _ in range(defs):
                header.append((await _read(conn))[1])
            if not caps & _DEPRECATE_EOF:
                header.append((await _read(conn))[1])
            if columns is None:
                columns = count_ or 0
                rewrite = names.rewrite(target.database)
                if definers and len(header) > defs:
                    parsed = [ColumnDefinition.parse(p) for p in header[1 : 1 + defs]]
                    renamer = row_renamer(parsed, binary, session.definers())
                self._emit(first)
                for payload in header[1 : 1 + defs]:
                    self._emit(rewrite(payload))
                for payload in header[1 + defs :]:
                    self._emit(payload)
            elif columns != count_:
                await _discard_rows(conn)
                in_flight.discard(index)
                self._emit(
                    _err_packet(
                        session.capabilities,
                        sql_error(
                            ErrorCode.UNKNOWN_ERROR,
                            f"{_where(target.partition, target.shard)} answered {count_} columns,"
                            f" not {columns}",
                        ),
                    )
                )
                return
            while True:
                _, packet = await _read(conn)
                if packet[:1] == b"\xfe" and len(packet) < 0xFFFFFF:
                    last_end = packet
                    warned += _end_warnings(packet, caps)
                    break
                if packet[:1] == b"\xff":
                    in_flight.discard(index)
                    self._emit(packet)
                    return
                self._emit(packet if renamer is None else renamer.row(packet))
                rows += 1
                if client.write_paused:
                    # Backpressure: the shard waits (TCP) while the client catches up, so
                    # nothing piles up in the proxy.
                    conn.pause_reading()
                    try:
                        await client.drain()
                    finally:
                        conn.resume_reading()
            in_flight.discard(index)
            if index in following:
                send(following[index], False)
        if columns is None and len(targets) == 1 and last_end is not None:
            self._emit(last_end)  # one statement's OK, as it is (insert id, warnings, info)
            return
        if columns is None:
            self._counts = None  # (no rows: SELECT ... INTO, whose ROW_COUNT() is not -1)
            self._emit(
                build_ok(
                    capabilities=session.capabilities,
                    affected_rows=ok_affected,
                    status=self.replies.status(),
                )
            )
            return
        assert last_end is not None
        if len(targets) > 1 and warned:
            # (the statement's conditions: every partition's, as the area after it holds)
            last_end = _with_warnings(last_end, conns[targets[-1].partition].capabilities, warned)
        self._emit(last_end)
        if len(targets) > 1:
            # (no LIMIT: merged; SQL_CALC_FOUND_ROWS without one counts the rows sent too)
            self._found = rows
            self._counts = (-1, rows)
            if warned:
                await self._union_notes([conns[t.partition] for t in targets], warned)

    async def _renamed_rows(self, layout: Layout, decision: RenamedRows) -> None:
        """A SHOW about tables on physical database 0, its rows made logical (RenamedRows):
        read whole (a few rows per table), renamed, then answered with the shard's column
        definitions (renamed as every answer's are) and its end."""
        target = decision.target
        conns = await self._acquire(layout, (target, *decision.others), branch=False)
        cardinalities: Counter[tuple[bytes | None, bytes | None]] = Counter()
        try:
            answer = await self._whole(layout, conns[target.partition], target)
            if answer is None:
                return
            width = len(answer[0]) - 1 - (0 if conns[0].capabilities & _DEPRECATE_EOF else 1)
            for other in decision.others:
                more = await self._whole(layout, conns[other.partition], other)
                if more is None:
                    return
                for packet in more[1]:
                    values = text_row_values(packet, width)
                    counted = _number(values[decision.summed])
                    cardinalities[(values[2], values[3])] += counted or 0
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return
        head, rows, end = answer
        for payload in head:
            self._emit(payload)
        for packet in rows:
            if decision.others:
                values = text_row_values(packet, width)
                counted = _number(values[decision.summed])
                if counted is not None:
                    total = counted + cardinalities[(values[2], values[3])]
                    values[decision.summed] = str(total).encode()
                    packet = build_text_row(values)
            packet = rename_row(packet, decision.column, decision.renames)
            for column in decision.texts:
                packet = rename_in_text(packet, column, decision.renames)
            self._emit(packet)
        self._emit(end)

    async def _probed(self, layout: Layout, decision: LocalRows, probe: str) -> None:
        """The proxy's rows under the column definitions physical database 0 gives ``probe``
        (its answer has no rows), named ``decision.columns``: what one MariaDB sends."""
        first = layout.partitions[0]
        target = Target(0, first.shard, first.name, probe)
        conns = await self._acquire(layout, (target,), branch=False)
        rows = decision.rows
        try:
            answer = await self._whole(layout, conns[0], target)
            if answer is not None and decision.views is not None:
                views = await self._whole(
                    layout, conns[0], Target(0, first.shard, first.name, VIEWS_PROBE)
                )
                if views is None:
                    return
                rows = _with_views(decision, views[1])
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return
        if answer is None:
            return
        head, _, end = answer
        for index, name in enumerate(decision.columns, start=1):
            if index < len(head):
                with contextlib.suppress(ProtocolError, ValueError, IndexError):
                    column = ColumnDefinition.parse(head[index])
                    head[index] = replace(column, name=name.encode()).build()
        for payload in head:
            self._emit(payload)
        for row in rows:
            self._emit(build_text_row(row))
        self._emit(end)

    async def _whole(
        self, layout: Layout, conn: BackendConnection, target: Target
    ) -> tuple[list[bytes], list[bytes], bytes] | None:
        """``target``'s result set read whole: (its head -- column count, definitions renamed,
        the EOF after them --, its rows, its end); None when the shard answered otherwise
        (that answer was given, an error renamed)."""
        caps = conn.capabilities
        conn.send(b"\x03" + _wire(target.sql))
        _, first = await _read(conn)
        if first[:1] == b"\xff":
            first = self.logical_names(layout).error(first, target.database.encode())
            err = parse_err(first, caps)
            self.replies.error(sql_error_from(err.errno, err.sqlstate, err.message))
            return None
        if first[:1] == b"\x00":
            self.replies.write(first)
            return None
        count_, _ = read_lenenc_int(first, 0)
        rewrite = self.logical_names(layout).rewrite(target.database)
        head = [first]
        for _ in range(count_ or 0):
            head.append(rewrite((await _read(conn))[1]))
        if not caps & _DEPRECATE_EOF:
            head.append((await _read(conn))[1])
        rows: list[bytes] = []
        while True:
            _, packet = await _read(conn)
            if packet[:1] in (b"\xfe", b"\xff") and len(packet) < 0xFFFFFF:
                return head, rows, packet
            rows.append(packet)

    async def _table_status(self, layout: Layout, decision: TableStatus) -> None:
        """SHOW TABLE STATUS: every physical database's, one row per logical table -- its
        physical tables' rows, data and index lengths and free space summed, the average row
        length computed again, the earliest creation and latest update and check times, the
        highest AUTO_INCREMENT (a table with a GROUP sequence: where it stands, read from the
        catalog); everything else physical database 0's (TableStatus)."""
        targets = decision.targets
        conns = await self._acquire(layout, targets, branch=False)
        answers: dict[int, tuple[list[bytes], list[bytes], bytes]] = {}
        try:
            for target in targets:
                answer = await self._whole(layout, conns[target.partition], target)
                if answer is None:
                    return
                answers[target.partition] = answer
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return
        head, _, end = answers[0]
        if end[:1] == b"\xff":
            for payload in head:
                self._emit(payload)
            self._emit(end)
            return
        width = len(head) - 1 - (0 if conns[0].capabilities & _DEPRECATE_EOF else 1)
        merged: dict[str, list[bytes | None]] = {}
        for partition in sorted(answers):
            for packet in answers[partition][1]:
                values = text_row_values(packet, width)
                name = (values[0] or b"").decode("utf-8", "surrogateescape")
                logical = decision.owners.get((partition, name))
                if logical is None:
                    if partition == 0:
                        merged.setdefault(name, values)
                    continue
                values[0] = logical.encode("utf-8", "surrogateescape")
                found = merged.get(logical)
                if found is None:
                    merged[logical] = values
                else:
                    _add_status(found, values)
        shown = shows_database(decision.like) if decision.like is not None else None
        if width > _AUTO_INCREMENT_STATUS:
            # A table whose AUTO_INCREMENT values come from its GROUP sequence: where that
            # stands (as SHOW CREATE TABLE shows), not its physical tables' counters.
            sequenced = {table.key: table for table in sequenced_tables(layout)}
            counted = {
                name: auto_sequence_name(table.name)
                for name in merged
                if (table := sequenced.get(name.lower())) is not None
                and (shown is None or shown(name))
            }
            if counted:
                positions = await self._sequence_positions(layout, counted)
                for name, position in positions.items():
                    merged[name][_AUTO_INCREMENT_STATUS] = str(position).encode()
        for payload in head:
            self._emit(payload)
        for name in sorted(merged):
            if shown is not None and not shown(name):
                continue
            values = merged[name]
            rows, data = _number(values[4]), _number(values[6])
            if rows is not None and data is not None and width > 5:
                values[5] = str(data // rows if rows else 0).encode()
            self._emit(build_text_row(values))
        self._emit(end)

    async def _field_list(self, layout: Layout, decision: FieldListing) -> None:
        """COM_FIELD_LIST of a logical table: its physical table's, the definitions naming
        the logical database and table."""
        target = decision.target
        conns = await self._acquire(layout, (target,), branch=False)
        conn = conns[target.partition]
        names = self.logical_names(layout)
        physical = target.database.encode()
        answer: list[bytes] = []
        try:
            conn.send(b"\x04" + _wire(target.sql) + b"\x00")
            while True:
                _, packet = await _read(conn)
                if packet[:1] == b"\xff":
                    err = parse_err(names.error(packet, physical), conn.capabilities)
                    self.replies.error(sql_error_from(err.errno, err.sqlstate, err.message))
                    return
                if packet[:1] == b"\xfe" and len(packet) < 9:
                    answer.append(packet)
                    break
                answer.append(names.field(packet, physical))
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return
        for payload in answer:
            self._emit(payload)

    def _emit(self, payload: bytes) -> None:
        self._sent = True
        self.replies.write(payload)

    def _emit_many(self, payloads: list[bytes]) -> None:
        if not payloads:
            return
        self._sent = True
        last = payloads[-1]
        if last and last[0] == 0xFF:  # a shard's error ends the merge (no row starts so)
            payloads = [*payloads[:-1], self.client_err_packet(last)]
        write_many = self.replies.write_many
        if write_many is not None:
            write_many(payloads)
            return
        write = self.replies.write
        for payload in payloads:
            write(payload)

    async def _write(
        self,
        conns: Mapping[int, BackendConnection],
        targets: Sequence[Target],
        decision: Route,
        packets: Sequence[bytes] = (),
    ) -> None:
        """Writes: one statement answered directly, several in one XA transaction
        (``packets``: a prepared statement's executions, one per target)."""
        session = self.session

        def command(index: int) -> bytes:
            return packets[index] if packets else b"\x03" + _wire(targets[index].sql)

        if len(targets) == 1:
            conn = conns[targets[0].partition]
            packet = _track(conn, await conn.command(command(0)))
            tx = self.tx
            if packet[:1] == b"\xff" and tx is not None:
                err = parse_err(packet, conns[targets[0].partition].capabilities)
                if err.errno == _DEADLOCK:
                    await self._abort(tx)
            await self._remember_insert_id(decision)
            self._answer_write([packet], conns[targets[0].partition], decision)
            return
        # (a failure: ROW_COUNT() -1; FOUND_ROWS() as the statement before left it)
        self._counts = (-1, self._found)
        if self.tx is not None:
            await self._write_in_transaction(conns, targets, decision, command)
            return
        if self.locked is not None:
            raise _xa_under_locks(
                "a write to several partitions",
                "; a dump restored into a sharded database: made with mariadb-dump"
                " --skip-add-locks",
            )
        gtrid = f"{XID_PREFIX}{_NODE}-{session.connection_id}-{next(_XIDS)}"
        xid = quote_string(gtrid)
        branches = sorted({t.partition for t in targets}, key=lambda p: targets_order(targets, p))
        started: list[int] = []
        answers: list[bytes] = []
        failure: SqlError | None = None
        notes: list[tuple[str, int, str]] | None = None

        def step(verb: str) -> Callable[[int], str]:
            return lambda partition: f"{OWN_STATEMENT}XA {verb} {xid}, '{partition}'"

        try:
            # Each XA step on every branch at once (separate connections, independent).
            started, failed = await _on_each(conns, branches, step("START"))
            _raise_first(failed, branches)
            # The statements of every branch at once too (a branch's own in order).
            sent = await _commands_by_branch(conns, targets, command)
            for index, target in enumerate(targets):
                packet = sent[index]
                if packet[:1] == b"\xff":
                    err = parse_err(packet, conns[target.partition].capabilities)
                    failure = sql_error_from(err.errno, err.sqlstate, err.message)
                    break
                if packet[:1] != b"\x00":
                    conns[target.partition].broken = True
                    raise BackendError("a result set where a write's OK was expected")
                answers.append(packet)
            if failure is None:
                notes = await self._write_notes(conns, targets, answers)
            _, failed = await _on_each(conns, started, step("END"))
            _raise_first(failed, started)
            if failure is None and len(started) == 1:
                # One branch (the tables of one physical database): committed in one phase,
                # nothing for the catalog to decide or for a recovery to find prepared.
                one_phase = step("COMMIT")
                _, failed = await _on_each(conns, started, lambda p: one_phase(p) + " ONE PHASE")
                _raise_first(failed, started)
                await self._remember_insert_id(decision)
                self._answer_write(answers, conns[targets[0].partition], decision, notes)
                return
            if failure is None:
                _, failed = await _on_each(conns, started, step("PREPARE"))
                _raise_first(failed, started)
        except BackendQueryError as exc:
            failure = sql_error_from(exc.errno, exc.sqlstate, exc.message)
        except (BackendError, ConnectionLost):
            # A branch's connection lost (its branch rolled back by the shard): the others,
            # not yet prepared, rolled back too -- left ACTIVE, they held their row locks
            # on the connections the session kept, for as long as it lived.
            await _roll_back_alive(conns, branches, step)
            raise
        if failure is None:
            _crash_point("after-prepare")
            outcome = await self._decide(gtrid)
            if outcome is None:
                return  # unknown: the branches stay prepared for recovery (error sent)
            if outcome == "abort":
                failure = sql_error(
                    ErrorCode.UNKNOWN_ERROR,
                    f"XA transaction {gtrid} was rolled back by another node's recovery",
                )
        if failure is not None:
            # (failures here: the branch is gone or was never prepared -- rolled back anyway)
            await _roll_back_alive(conns, started, step)
            self.replies.error(failure)
            return
        _crash_point("after-decision")
        not_committed: list[str] = []
        _, failed = await _on_each(conns, started, step("COMMIT"))
        for partition in started:
            refused = failed.get(partition)
            # (XAER_NOTA: committed by a recovering node, as decided)
            if refused is not None and refused.errno != _XAER_NOTA:
                where = _where(partition, conns[partition].target.shard)
                not_committed.append(f"{where}: {refused.errno} {refused.message}")
        if not_committed:
            raise sql_error(
                ErrorCode.UNKNOWN_ERROR,
                f"XA transaction {gtrid} decided to commit but not yet committed on: "
                + "; ".join(not_committed)
                + " (the next proxy to start commits them)",
            )
        # The decision is no longer needed once every branch committed: forgotten in the
        # background (a stale outcome row is harmless), not on the client's time.
        in_background(_forget_xa(session.ctx.accounts.catalog, gtrid))
        await self._remember_insert_id(decision)
        self._answer_write(answers, conns[targets[0].partition], decision, notes)

    async def _decide(self, gtrid: str) -> str | None:
        """Record "commit" for ``gtrid`` before any branch commits; returns the outcome that
        holds ("abort": a recovering node got there first), or None when the catalog cannot
        say (an error is sent; the prepared branches wait for the next recovery)."""
        catalog = self.session.ctx.accounts.catalog
        for attempt in range(2):
            try:
                return await asyncio.to_thread(
                    catalog.decide_xa, gtrid, "commit" if attempt == 0 else "abort"
                )
            except CatalogError as exc:
                log.warning("XA %s: the catalog could not record its outcome: %s", gtrid, exc)
        self.replies.error(
            sql_error(
                ErrorCode.UNKNOWN_ERROR,
                f"XA transaction {gtrid}: its outcome could not be recorded in the catalog;"
                " the next proxy to start commits or rolls back its prepared branches",
            )
        )
        return None

    async def _remember_insert_id(self, decision: Route) -> None:
        """After an INSERT took GROUP sequence values: ``LAST_INSERT_ID()`` on the session's
        own connection (physical database 0) answers the first, as the OK packet does."""
        if not decision.sequence_values:
            return
        conn = self.session.link.live()
        if conn is None:
            return
        try:
            await conn.query(f"{OWN_STATEMENT}SELECT LAST_INSERT_ID({decision.sequence_values[0]})")
        except BackendQueryError:
            pass

    async def _write_notes(
        self,
        conns: Mapping[int, BackendConnection],
        targets: Sequence[Target],
        answers: Sequence[bytes],
    ) -> list[tuple[str, int, str]] | None:
        """The conditions of a write's statements on several partitions (:meth:`_notes_of`),
        read before anything else runs on their connections; None: none, or not known."""
        counts = [
            parse_ok(packet, conns[target.partition].capabilities).warnings
            for target, packet in zip(targets, answers, strict=False)
        ]
        warned = sum(counts)
        if not warned or len(answers) != len(targets):
            return None
        notes = await self._notes_of([conns[t.partition] for t in targets], warned)
        if notes is None:
            return None
        groups = []
        at = 0
        for many in counts:
            groups.append(notes[at : at + many])
            at += many
        return statement_notes_once(groups)

    def _answer_write(
        self,
        packets: Sequence[bytes],
        conn: BackendConnection,
        decision: Route,
        notes: list[tuple[str, int, str]] | None = None,
    ) -> None:
        """The write's OK (``notes``: the conditions of its statements on several
        partitions, the session's notes from now: the diagnostics area MariaDB's would be)."""
        session = self.session
        if notes is not None and decision.kind != "broadcast":
            session.notes = notes
            session.fast.area = None
        if packets and packets[0][:1] == b"\xff":
            self.replies.write(packets[0])
            return
        if decision.returning is not None:
            self._answer_returning(decision.returning)
            return
        if decision.kind == "broadcast":
            # Every physical database's copy answered the same write: the table's count is
            # one copy's, as one MariaDB holding the table answers (not the sum of the copies).
            packets = packets[:1]
        affected = warnings = 0
        insert_id = 0
        oks = [parse_ok(packet, conn.capabilities) for packet in packets]
        for ok in oks:
            affected += ok.affected_rows
            warnings += ok.warnings
            insert_id = insert_id or ok.last_insert_id
        if notes is not None and decision.kind != "broadcast":
            warnings = len(notes)  # (the statement's own conditions counted once)
        # ROW_COUNT() after it is what the client was told (a write leaves FOUND_ROWS()).
        self._counts = (affected, self._found)
        if decision.sequence_values:
            insert_id = decision.sequence_values[0]
        self.replies.write(
            build_ok(
                capabilities=session.capabilities,
                affected_rows=affected,
                last_insert_id=insert_id,
                status=self.replies.status(),
                warnings=warnings,
                info=_merged_info(oks, warnings),
            )
        )

    def _answer_returning(self, returning: Returning) -> None:
        """INSERT ... RETURNING of the AUTO_INCREMENT column: its rows, one per row of the
        statement in its order, with the column definitions MariaDB gives the column."""
        session = self.session
        # ROW_COUNT() after it is -1, as after any statement answering rows, whatever the
        # partitions' connections (which ran it without the clause) would answer; FOUND_ROWS()
        # left as the statement before left it.
        self._counts = (-1, self._found_before)
        self.source.held.ran_on = -1
        key_type = returning.key_type
        type_code, width = _INTEGER_COLUMNS[key_type.name]
        flags = returning.flags | (_UNSIGNED_FLAG if key_type.unsigned else 0)
        if key_type.unsigned and key_type.name != "bigint":
            width -= 1  # (no sign)
        if returning.width is not None:
            width = returning.width
        if returning.zerofill:
            flags |= _ZEROFILL_FLAG | _UNSIGNED_FLAG
        schema = session.current_db or ""
        definitions = [
            build_column_definition(
                name=label,
                type_code=type_code,
                charset=_BINARY_CHARSET,
                length=width,
                flags=flags,
                schema=schema,
                table=returning.table,
                org_table=returning.table,
                org_name=returning.column,
                capabilities=session.capabilities,
            )
            for label in returning.labels
        ]
        rows = [
            [str(value).zfill(width) if returning.zerofill else str(value)] * len(returning.labels)
            for value in returning.values
        ]
        for payload in build_text_resultset(
            columns=[(label, type_code) for label in returning.labels],
            rows=rows,
            capabilities=session.capabilities,
            status=self.replies.status(),
            definitions=definitions,
        ):
            self.replies.write(payload)

    # -- the client's transactions ------------------------------------------------------------

    def in_charge(self) -> bool:
        """Whether the session's statements on this sharded database belong to a transaction
        the proxy runs: one is open, or autocommit is off (every statement opens one)."""
        if self.tx is not None:
            return True
        if self.locked is not None:
            return False  # (no XA under LOCK TABLES: MariaDB's own transactions, reads only)
        session = self.session
        # (_autocommit_off, inline: once per statement)
        if session.link.state.variables.get("autocommit", "1") not in _AUTOCOMMIT_OFF:
            return False
        return self.database_sharded()

    def database_sharded(self) -> bool:
        """Whether the session's current database is a sharded one."""
        session = self.session
        snapshot, database = session.ctx.snapshot(), session.current_db
        seen_snapshot, seen_database, sharded = self._sharded_db
        if seen_snapshot is not snapshot or seen_database != database:
            found = None if database is None else snapshot.database(database)
            sharded = found is not None and found.sharded
            self._sharded_db = (snapshot, database, sharded)
        return sharded

    def status_flags(self) -> int:
        """What the open transaction adds to the session's status flags (the proxy's own
        answers, and before a branch is on physical database 0)."""
        tx = self.tx
        if tx is None:
            return 0
        return _IN_TRANSACTION | (_READ_ONLY if tx.read_only else 0)

    def _open(self, explicit: bool, read_only: bool | None = None) -> ClientTransaction:
        session = self.session
        gtrid = f"{XID_PREFIX}{_NODE}-{session.connection_id}-{next(_XIDS)}"
        isolation, access = self._next
        self._next = (None, None)
        tx = ClientTransaction(gtrid, explicit, access if read_only is None else read_only)
        tx.isolation = isolation
        self.tx = tx
        if isinstance(self.source, SessionPartitions):
            self.source.in_transaction = True
        return tx

    def _forget(self, tx: ClientTransaction) -> None:
        if self.tx is tx:
            self.tx = None
        if isinstance(self.source, SessionPartitions):
            self.source.in_transaction = False
        self.session.link.binds.discard(_BRANCH_BIND)

    async def _branches(self, conns: Mapping[int, BackendConnection]) -> None:
        """Make each connection a branch of the transaction (``XA START``, once per physical
        database, when the transaction first reaches it). Raises SqlError with the shard's
        error when a branch cannot start."""
        if self.locked is not None:
            raise _xa_under_locks("a transaction")
        tx = self.tx or self._open(explicit=False)
        xid = quote_string(tx.gtrid)
        for partition, conn in conns.items():
            held = tx.branches.get(partition)
            if held is conn:
                continue
            if held is not None:
                # Its connection was lost (and the shard rolled the branch back).
                await self._abort(tx)
                where = _where(partition, held.target.shard)
                raise SessionLost(lost_error(["an open transaction"], f"{where} reconnected"))
            try:
                if tx.isolation is not None:
                    await _own_ok(conn, f"SET TRANSACTION ISOLATION LEVEL {tx.isolation}")
                if tx.read_only is not None:
                    access = "ONLY" if tx.read_only else "WRITE"
                    await _own_ok(conn, f"SET TRANSACTION READ {access}")
                await _own_ok(conn, f"XA START {xid}, '{partition}'")
            except BackendQueryError as exc:
                raise sql_error_from(exc.errno, exc.sqlstate, exc.message) from None
            tx.branches[partition] = conn
            if partition == 0:
                self.session.link.binds.add(_BRANCH_BIND)
            try:
                for name in tx.savepoints:  # (nothing done here yet: all undone by each)
                    await _own_ok(conn, f"SAVEPOINT {quote_name(name)}")
            except BackendQueryError as exc:
                # Without them, a ROLLBACK TO would not undo this branch's work.
                await self._abort(tx)
                raise _rolled_back(exc) from None

    async def before_relay(self, transactional: bool, text: str) -> bool:
        """Before the session relays a statement to physical database 0 while the proxy runs
        the transaction (:meth:`in_charge`): a statement MariaDB commits before (DDL, LOCK
        TABLES, ...) commits the transaction first; other work (``transactional``) runs in its
        branch there. False: not to be run (the error was sent)."""
        state = self.session.link.state
        if text and commits_implicitly(text, state.lex_mode, state.flavor):
            return await self.commit_implicitly()
        if not transactional and text and reads_tables(text, state.lex_mode, state.flavor):
            transactional = _autocommit_off(state.variables) or self.tx is not None
        if not transactional:
            # SET autocommit = 1 from 0 commits the open transaction, as on MariaDB.
            try:
                turned_on = text and autocommit_assignment(text, state.lex_mode, state.flavor)
            except SqlError as error:
                self.replies.error(error)
                return False
            if turned_on and _autocommit_off(state.variables):
                return await self.commit_implicitly()
            return True
        link = self.session.link
        try:
            conn = await link.connection(self.replies.lease)
            await self._branches({0: conn})
        except BackendUnavailable as exc:
            self.replies.error(exc.error)
            return False
        except SqlError as error:
            self.replies.error(error)
            return False
        except (BackendError, ConnectionLost) as exc:
            # Lost under XA START: as a statement's loss (the session ends if anything went).
            reasons = link.bound_reasons()
            link.drop()
            tx = self.tx
            if reasons or (tx is not None and tx.branches):
                raise SessionLost(lost_error(reasons or ["an open transaction"], exc)) from None
            self.replies.error(lost_error([], exc))
            return False
        return True

    def _watch_deadlocks(self) -> tuple[Replies, list[int]]:
        """Note the error numbers the statement sends the client (a scatter's or a merge's
        errors come from any branch); the replies to put back, and the numbers."""
        original = self.replies
        seen: list[int] = []

        def write(payload: bytes) -> None:
            if payload[:1] == b"\xff" and len(payload) >= 3:
                seen.append(int.from_bytes(payload[1:3], "little"))
            original.write(payload)

        def error(err: SqlError) -> None:
            seen.append(err.errno)
            original.error(err)

        self.replies = replace(original, write=write, error=error, write_many=None)
        return original, seen

    async def after_statement(self, scanner: ResponseScanner | None) -> None:
        """After a statement inside the transaction: a deadlock (1213) rolled its branch back,
        so the whole transaction is rolled back, as MariaDB's would be."""
        tx = self.tx
        if tx is not None and scanner is not None and scanner.errno == _DEADLOCK:
            await self._abort(tx)
        elif (
            tx is not None
            and not tx.explicit
            and not tx.branches
            and not _autocommit_off(self.session.link.state.variables)
        ):
            self._forget(tx)  # autocommit back on before the transaction did anything

    async def commit_implicitly(self) -> bool:
        """Commit the open transaction before a statement MariaDB commits it before. False:
        the commit failed (the error was sent)."""
        tx = self.tx
        if tx is None:
            return True
        if not tx.branches:
            self._forget(tx)
            return True
        return await self._finish(tx, commit=True) is not None

    async def _control(self, text: str, control: TransactionControl) -> None:
        """BEGIN / START TRANSACTION, COMMIT, ROLLBACK, SET TRANSACTION, SAVEPOINT."""
        verb = control.verb
        tx = self.tx
        if verb == "savepoint":
            if not self.in_charge():
                await self._on_link(text)  # no transaction: the shard answers as it would
                return
            await self._savepoint(tx or self._open(explicit=False), control)
            self.replies.ok()
            return
        if verb == "characteristics":
            if tx is not None and (tx.explicit or tx.branches):
                raise SqlError(
                    _CANT_CHANGE_TX,
                    "25001",
                    "Transaction characteristics can't be changed while a transaction is in"
                    " progress",
                )
            isolation, access = self._next
            self._next = (
                control.isolation or isolation,
                access if control.read_only is None else control.read_only,
            )
            self.replies.ok()  # for the transaction's branches, when it opens
            return
        if verb == "begin":
            # MariaDB commits an open transaction first, and releases the table locks.
            if tx is not None and not await self.commit_implicitly():
                return
            if self.locked is not None:
                await self._unlock_partitions()
                await self._unlock_link()
            self._open(explicit=True, read_only=control.read_only)
            self.answered = 0
            self.replies.ok()  # the branches start where the transaction first goes
            return
        commit = verb == "commit"
        if tx is None or not tx.branches:
            if tx is not None:
                self._forget(tx)
            link = self.session.link.live()
            if link is not None and link.status & _IN_TRANSACTION:
                await self._on_link(text)  # a transaction of the shard's own: its answer
                return
            if control.chain:
                chained = self._open(explicit=True, read_only=tx.read_only if tx else None)
                chained.isolation = tx.isolation if tx else None
            self.answered = 0
            self.replies.ok()  # nothing to commit or roll back anywhere
            return
        answer = await self._finish(tx, commit=commit)
        if answer is None:
            return
        if control.chain:
            chained = self._open(explicit=True, read_only=tx.read_only)
            chained.isolation = tx.isolation
        self._answer_end(answer, tx)

    async def _savepoint(self, tx: ClientTransaction, control: TransactionControl) -> None:
        """SAVEPOINT, ROLLBACK TO SAVEPOINT or RELEASE SAVEPOINT in the transaction the proxy
        runs: on each of its branches, the list of savepoints kept as MariaDB keeps it (a
        name set again moves to the end; ROLLBACK TO drops the later ones, RELEASE that one
        and the later ones)."""
        name = control.name
        if name.casefold() == _STATEMENT_SAVEPOINT:
            raise not_supported(f"a savepoint named {name} (the proxy's own) on a sharded database")
        at = tx.savepoint_at(name)
        if control.savepoint == "set":
            statement = f"SAVEPOINT {quote_name(name)}"
        elif at is None:
            raise SqlError(_SP_DOES_NOT_EXIST, "42000", f"SAVEPOINT {name} does not exist")
        elif control.savepoint == "rollback":
            statement = f"ROLLBACK TO SAVEPOINT {quote_name(name)}"
        else:
            statement = f"RELEASE SAVEPOINT {quote_name(name)}"
        for done, conn in enumerate(tx.branches.values()):
            try:
                await _own_ok(conn, statement)
            except BackendQueryError as exc:
                if not done:
                    raise sql_error_from(exc.errno, exc.sqlstate, exc.message) from None
                # Done on some branches only: they would disagree from here on.
                await self._abort(tx)
                raise _rolled_back(exc) from None
        if control.savepoint == "set":
            if at is not None:
                del tx.savepoints[at]
            tx.savepoints.append(name)
        elif control.savepoint == "rollback":
            assert at is not None
            del tx.savepoints[at + 1 :]
        else:
            del tx.savepoints[at:]

    def _answer_end(self, answer: bytes, tx: ClientTransaction) -> None:
        """The shard's answer to the last XA COMMIT / ROLLBACK, with the session's status."""
        conn = next(iter(tx.branches.values()))
        ok = parse_ok(answer, conn.capabilities)
        self.replies.write(
            build_ok(
                capabilities=self.session.capabilities,
                affected_rows=ok.affected_rows,
                status=self.replies.status(),
                warnings=ok.warnings,
            )
        )

    async def _on_link(self, text: str, answer: bool = True) -> None:
        """Run the client's statement on the session's own connection (physical database 0)
        and pass the shard's answer on (with the transaction's status); ``answer`` False: the
        proxy's own statement, its answer dropped."""
        link = self.session.link
        conn = await link.connection(self.replies.lease)
        if not answer:
            await _own(conn, text)
            return
        packet = _track(conn, await conn.command(b"\x03" + _wire(text)))
        if packet[:1] == b"\xff":
            self.replies.write(packet)
            return
        ok = parse_ok(packet, conn.capabilities)
        self.replies.write(
            build_ok(
                capabilities=self.session.capabilities,
                affected_rows=ok.affected_rows,
                status=self.replies.status(),
                warnings=ok.warnings,
            )
        )

    async def _end_all(self, tx: ClientTransaction) -> bytes | None:
        """``XA END`` and ``XA ROLLBACK`` on every branch, each step on all of them at once (a
        branch a deadlock marked rollback-only refuses XA END); the last branch's answer. A
        connection lost under it raises once the others are rolled back."""
        xid = quote_string(tx.gtrid)
        live = [p for p, c in tx.branches.items() if not (c.broken or c.is_closing())]
        # (gone ones: the shard rolled their branches back)
        ended = await _own_each(tx.branches, live, lambda p: f"XA END {xid}, '{p}'")
        lost = [r for r in ended.values() if isinstance(r, BaseException)]
        left = [p for p in live if not isinstance(ended[p], BaseException)]
        rolled = await _own_each(tx.branches, left, lambda p: f"XA ROLLBACK {xid}, '{p}'")
        lost += [r for r in rolled.values() if isinstance(r, BaseException)]
        if lost:
            raise lost[0]
        answer: bytes | None = None
        for partition in left:
            packet = rolled[partition]
            assert isinstance(packet, bytes)
            if packet[:1] != b"\xff":
                answer = packet
        return answer

    async def _abort(self, tx: ClientTransaction) -> None:
        """Roll the whole transaction back (a branch's deadlock, a lost branch)."""
        try:
            await self._end_all(tx)
        except (BackendError, ConnectionLost) as exc:
            log.warning("XA %s: rolling back failed: %s", tx.gtrid, exc)
        finally:
            self._forget(tx)

    async def _finish(self, tx: ClientTransaction, commit: bool) -> bytes | None:
        """Commit (one branch: in one phase; several: two phases with the decision recorded
        in the catalog first) or roll back every branch. The shard's answer to the last
        ``XA COMMIT`` / ``XA ROLLBACK``, or None (the error was sent; the transaction is over
        either way)."""
        self._forget(tx)
        if not commit:
            try:
                ended = await self._end_all(tx)
            except (BackendError, ConnectionLost) as exc:
                where = _lost_where(tx.branches, exc)
                self.replies.error(lost_error(["an open transaction"], where))
                return None
            return ended or build_ok(capabilities=self.session.capabilities)
        xid = quote_string(tx.gtrid)
        branches = list(tx.branches.items())
        conns = dict(branches)
        order = list(conns)
        failure: SqlError | None = None
        try:
            # Each XA step on every branch at once (separate connections, independent), as a
            # multi-partition write outside a transaction runs them.
            _steps_ok(await _own_each(conns, order, lambda p: f"XA END {xid}, '{p}'"), order, conns)
            if len(branches) == 1:
                partition, conn = branches[0]
                packet = await _own(conn, f"XA COMMIT {xid}, '{partition}' ONE PHASE")
                if packet[:1] == b"\xff":
                    self.replies.write(packet)  # the shard rolled it back
                    return None
                return packet
            prepared = await _own_each(conns, order, lambda p: f"XA PREPARE {xid}, '{p}'")
            _steps_ok(prepared, order, conns)
        except BackendQueryError as exc:
            failure = sql_error_from(exc.errno, exc.sqlstate, exc.message)
        except (BackendError, ConnectionLost) as exc:
            failure = lost_error([], _lost_where(conns, exc))
        if failure is None:
            _crash_point("after-prepare")
            outcome = await self._decide(tx.gtrid)
            if outcome is None:
                # Unknown: the branches stay prepared for recovery (error sent), left by their
                # connections (a prepared branch outlives its connection on the shard).
                self._leave_prepared(conns)
                return None
            if outcome == "abort":
                failure = sql_error(
                    ErrorCode.UNKNOWN_ERROR,
                    f"XA transaction {tx.gtrid} was rolled back by another node's recovery",
                )
        if failure is not None:
            try:
                await self._end_all(tx)
            except (BackendError, ConnectionLost) as exc:
                log.warning("XA %s: rolling back failed: %s", tx.gtrid, exc)
            self.replies.error(failure)
            return None
        _crash_point("after-decision")
        await _pause_point("after-decision")
        not_committed: list[str] = []
        answer: bytes | None = None
        left: dict[int, BackendConnection] = {}
        committed = await _own_each(conns, order, lambda p: f"XA COMMIT {xid}, '{p}'")
        for partition in order:
            where = _where(partition, conns[partition].target.shard)
            result = committed[partition]
            if isinstance(result, (BackendError, ConnectionLost)):
                not_committed.append(f"{where}: {result}")
                continue
            if isinstance(result, BaseException):
                raise result
            if result[:1] == b"\xff":
                conn = conns[partition]
                err = parse_err(result, conn.capabilities)
                if err.errno != _XAER_NOTA:  # else committed by a recovering node, as decided
                    not_committed.append(f"{where}: {err.errno} {err.message}")
                    left[partition] = conn
                continue
            answer = result
        if not_committed:
            self._leave_prepared(left)
            self.replies.error(
                sql_error(
                    ErrorCode.UNKNOWN_ERROR,
                    f"XA transaction {tx.gtrid} decided to commit but not yet committed on: "
                    + "; ".join(not_committed)
                    + " (the next proxy to start commits them)",
                )
            )
            return None
        try:
            await asyncio.to_thread(self.session.ctx.accounts.catalog.forget_xa, tx.gtrid)
        except CatalogError:
            pass  # a stale outcome row is harmless
        return answer or build_ok(capabilities=self.session.capabilities)

    def _leave_prepared(self, branches: Mapping[int, BackendConnection]) -> None:
        """Close the connections of branches left prepared (for the next proxy's recovery):
        a connection holding one could start no other transaction."""
        for partition, conn in branches.items():
            if partition == 0:
                self.session.link.drop()
            else:
                self.source.release({partition: conn}, [partition])

    async def _write_in_transaction(
        self,
        conns: Mapping[int, BackendConnection],
        targets: Sequence[Target],
        decision: Route,
        command: Callable[[int], bytes],
    ) -> None:
        """A write of several statements inside the transaction (``command``: the packet of
        each target's statement, text or a prepared statement's execution): in its branches,
        all or nothing as one statement is (a savepoint on each branch, rolled back to when
        one fails; a deadlock rolls the whole transaction back)."""
        partitions = list(dict.fromkeys(t.partition for t in targets))
        answers: list[bytes] = []
        for partition in partitions:
            await _own_ok(conns[partition], f"SAVEPOINT {_STATEMENT_SAVEPOINT}")
        failed: bytes | None = None
        for index, target in enumerate(targets):
            conn = conns[target.partition]
            packet = _track(conn, await conn.command(command(index)))
            if packet[:1] == b"\xff":
                failed = packet
                break
            if packet[:1] != b"\x00":
                conn.broken = True
                raise BackendError("a result set where a write's OK was expected")
            answers.append(packet)
        if failed is not None:
            err = parse_err(failed, conns[targets[0].partition].capabilities)
            tx = self.tx
            if err.errno == _DEADLOCK and tx is not None:
                await self._abort(tx)
            else:
                for partition in partitions:
                    try:
                        await _own_ok(
                            conns[partition], f"ROLLBACK TO SAVEPOINT {_STATEMENT_SAVEPOINT}"
                        )
                    except BackendQueryError:
                        pass
            self.replies.error(sql_error_from(err.errno, err.sqlstate, err.message))
            return
        notes = await self._write_notes(conns, targets, answers)
        await self._remember_insert_id(decision)
        self._answer_write(answers, conns[targets[0].partition], decision, notes)

    # -- prepared statements ------------------------------------------------------------------

    def owns(self, statement_id: int) -> bool:
        return statement_id in self.statements

    async def prepare(self, plan: Sharded, statement: Statement, payload: bytes) -> None:
        """COM_STMT_PREPARE of a statement on sharded or broadcast tables: prepared on
        physical database 0 (its first physical tables) for the answer's parameter count and
        column definitions, which reach the client with an id of the session's own."""
        session = self.session
        state = session.link.state
        # DATABASE() and information_schema made logical once: executions route this text.
        text = logical_text(plan.text, plan.layout, state.lex_mode, state.flavor) or plan.text
        try:
            target = copy_target(text, plan.layout, state.lex_mode, state.flavor)
            conns = await self._acquire(plan.layout, [target])
        except BackendUnavailable as exc:
            self.replies.error(exc.error)
            return
        except SqlError as error:
            self.replies.error(error)
            return
        conn = conns[target.partition]
        try:
            conn.send(b"\x16" + _wire(target.sql))
            payloads = await conn.collect(ResponseKind.PREPARE, _PREPARE_LIMIT)
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return
        first = payloads[0]
        if first[:1] != b"\x00":
            for answer in payloads:
                self.replies.write(answer)
            return
        ok = parse_stmt_prepare_ok(first)
        client_id = self._new_id(ok.statement_id)
        params = ok.num_params
        prepared = ShardedStatement(client_id, text, params, None)
        self.refresh(prepared, plan.layout)
        physical = prepared.physical.setdefault(target.sql, PhysicalStatement())
        physical.on[conn] = ok.statement_id
        self._partition_of[conn] = target.partition
        self.statements[client_id] = prepared
        lexing = prepared_lexing(payload[1:], (*self._lexing(), self._codec()))
        session.prepared[client_id] = Prepared(statement, plan.digest or "", lexing)
        payloads[0] = first[:1] + client_id.to_bytes(4, "little") + first[5:]
        names = self.logical_names(plan.layout)
        database = target.database.encode()
        for at in range(1, len(payloads)):
            answer = payloads[at]
            if not (answer[:1] == b"\xfe" and len(answer) < 9):  # parameters and columns
                payloads[at] = names.column(answer, database)
        for answer in payloads:
            self.replies.write(answer)

    def _new_id(self, backend_id: int) -> int:
        """A statement id no statement of the session has (the shard's when free)."""
        session = self.session
        taken = set(session.prepared) | set(self.statements) | set(session.link.statements.by_id)
        if backend_id not in taken:
            return backend_id
        candidate = max(taken) + 1
        while candidate in taken or candidate > 0xFFFFFFFF:
            candidate = 1 if candidate > 0xFFFFFFFF else candidate + 1
        return candidate

    async def statement_command(
        self, decided: Plan, command: StatementCommand, payload: bytes
    ) -> None:
        """COM_STMT_EXECUTE / FETCH / RESET / CLOSE / SEND_LONG_DATA of one of
        :attr:`statements` (``decided``: the execution's authorization, made again)."""
        statement = self.statements[command.statement_id]
        code = command.code
        if code == COM_STMT_CLOSE:
            self.session.prepared.pop(statement.client_id, None)
            self._close(self.statements.pop(statement.client_id))
            return
        if code == COM_STMT_SEND_LONG_DATA:
            statement.failed = not_supported(
                "COM_STMT_SEND_LONG_DATA on a sharded database's sharded or broadcast tables"
            )
            return
        if code == COM_STMT_RESET:
            statement.failed = None
            await self._reset(statement)
            self.replies.ok()
            return
        if isinstance(decided, Deny):
            self.replies.error(decided.error)
            return
        if code == COM_STMT_FETCH:
            self.replies.error(
                SqlError(
                    1421, "HY000", f"The statement ({statement.client_id}) has no open cursor."
                )
            )
            return
        if statement.failed is not None:
            error, statement.failed = statement.failed, None
            self.replies.error(error)
            return
        session = self.session
        if isinstance(decided, Sharded):
            layout, digest = decided.layout, decided.digest
        else:  # its tables are single ones now: physical database 0 runs it
            layout, digest = _layout_of(session), None
        started = time.perf_counter()
        self._scatter = 0
        self._digest = digest or ""
        try:
            with self._failures_answered():
                await self._execute_prepared(statement, layout, payload)
        finally:
            if digest:
                seconds = time.perf_counter() - started
                session.ctx.digest.record(session.current_db, digest, seconds, 0, self._scatter)

    def parameters(self, statement: ShardedStatement, payload: bytes) -> ExecuteParams:
        """The execution's parameters (1210 for a packet that does not hold them)."""
        try:
            found = parse_execute(payload, statement.params, statement.types)
        except ProtocolError:
            raise SqlError(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute") from None
        if found.sent_types:
            _new_types(statement, b"".join(found.types))
        if found.flags & _CURSOR_FLAGS:
            raise not_supported("cursors on a sharded database's sharded or broadcast tables")
        return found

    async def _unaliased(self, layout: Layout, targets: Sequence[Target]) -> tuple[Target, ...]:
        """:func:`_unaliased` (under LOCK TABLES), which lower-cases and lexes each target's
        text: in the session's turn of the analysis threads when one is longer than
        INLINE_ANALYSIS_LIMIT, not on the event loop."""
        mode, flavor = self._lexing()
        if all(len(target.sql) <= INLINE_ANALYSIS_LIMIT for target in targets):
            return _unaliased(layout, targets, mode, flavor)
        session = self.session
        return await session.ctx.analysis_pool.run(
            session.tenant(), _unaliased, layout, targets, mode, flavor
        )

    def _lexing(self) -> tuple[LexMode, ServerFlavor | None]:
        """How the session's statements are lexed (its sql_mode's, its server's)."""
        state = self.session.link.state
        return state.lex_mode, state.flavor

    def _codec(self) -> str | None:
        """The Python codec of the client's character set now (``character_set_client``):
        string keys and parameters are read in it; None: one the proxy cannot read."""
        session = self.session
        state, charset = session.link.state, session.charset
        seen = self._codec_for
        # (every change of the session's variables bumps its version; a reset makes a new one)
        if seen[0] is state and seen[1] == state.version and seen[2] == charset:
            return seen[3]
        codec = client_codec(state, charset)
        self._codec_for = (state, state.version, charset, codec)
        return codec

    def values(self, found: ExecuteParams) -> list[ParamValue]:
        encoding = self._codec()
        return [
            decode_param(t, v, encoding) for t, v in zip(found.types, found.values, strict=True)
        ]

    def keyed(
        self, statement: ShardedStatement, layout: Layout, values: Sequence[ParamValue]
    ) -> Route | None:
        """The route of an execution whose key values alone fix one partition (the
        statement's KeySlots), without routing its text again; None: routed in full."""
        target = self.keyed_target(statement, layout, values)
        slots = statement.slots
        if slots is None or target is None:
            return None
        reads = slots.verb == "SELECT"
        return Route("routed", slots.table.name, not reads, reads, (target,))

    def keyed_target(
        self, statement: ShardedStatement, layout: Layout, values: Sequence[ParamValue]
    ) -> Target | None:
        """:meth:`keyed`'s one target."""
        self.refresh(statement, layout)
        slots = statement.slots
        if slots is None:
            return None
        rule = slots.table.rule
        key = rule.db_key
        assert key is not None
        found: Placement | None = None
        for index, literal in slots.sources:
            try:
                value = shard_key(key.type, values[index] if index >= 0 else literal, "compare")
                placement = place(rule, layout.count, value, value)
            except (NotPlaceable, PlacementError):
                return None
            if found is not None and placement != found:
                return None
            found = placement
        if found is None:
            return None
        return self._placed(statement, layout, found)

    def refresh(
        self, statement: ShardedStatement, layout: Layout, snapshot: CatalogSnapshot | None = None
    ) -> None:
        """The statement's KeySlots and targets follow the catalog (a table dropped and
        created again with another rule is routed by the new one). (``snapshot``: the current
        one, when the caller has it.)"""
        session = self.session
        if snapshot is None:
            snapshot = session.ctx.snapshot()
        state, charset = session.link.state, session.charset
        placed_for = statement.placed_for
        if (
            placed_for is not None
            and placed_for[0] is snapshot
            and placed_for[1] is state
            and placed_for[2] == state.version
            and placed_for[3] == charset
        ):
            return  # (the codec depends on nothing else)
        codec = self._codec()
        seen = (snapshot, state, state.version, charset, codec)
        if placed_for is not None and placed_for[0] is snapshot and placed_for[4] == codec:
            statement.placed_for = seen  # the same snapshot and codec: the same targets
            return
        statement.placed.clear()
        statement.hashed.clear()
        statement.fast.clear()
        statement.placed_for = seen
        slots = key_slots(statement.text, layout, state.lex_mode, state.flavor, codec)
        statement.slots = slots
        statement.integer = None
        if slots is not None and statement.params == 1 and slots.sources == ((0, None),):
            statement.integer = integer_hash(slots.table.rule, layout.count)

    def _placed(self, statement: ShardedStatement, layout: Layout, found: Placement) -> Target:
        """The statement's target for a placement of its table (for the snapshot
        `refresh` read)."""
        target = statement.placed.get(found)
        if target is None:
            state = self.session.link.state
            target = placed_targets(statement.text, layout, [found], state.lex_mode, state.flavor)[
                0
            ]
            statement.placed[found] = target
        return target

    async def _execute_prepared(
        self, statement: ShardedStatement, layout: Layout, payload: bytes
    ) -> None:
        session = self.session
        found = self.parameters(statement, payload)
        values = self.values(found)
        state = session.link.state
        mode, flavor = state.lex_mode, state.flavor
        decision: Decision | None = self.keyed(statement, layout, values)
        if decision is None:
            decision = await self._decided(
                statement.text, layout, mode, flavor, params=values, codec=self._codec()
            )
        if isinstance(decision, NeedsSequence):
            catalog = session.ctx.accounts.catalog
            try:
                taken = await asyncio.to_thread(
                    next_values, SEQUENCES, catalog, layout.name, decision.sequence, decision.count
                )
            except CatalogUnavailableError as error:
                raise error.client_error() from None
            except CatalogError as exc:
                raise sql_error(
                    ErrorCode.UNKNOWN_ERROR, f"Sequence {decision.sequence}: {exc}"
                ) from None
            decision = await self._decided(
                statement.text, layout, mode, flavor, taken, params=values, codec=self._codec()
            )
        if decision is None:
            first = layout.partitions[0]
            decision = Route(
                "copy", "", False, True, (Target(0, first.shard, first.name, statement.text),)
            )
        if not isinstance(decision, Route):
            raise not_supported("this prepared statement on a sharded database")
        if decision.returning is not None:
            raise not_supported(
                f"INSERT ... RETURNING into table {decision.returning.table} as a prepared"
                " statement on a sharded database (send it as text)"
            )
        if self.locked is not None:
            self._check_locked(layout, decision)
            decision = replace(decision, targets=await self._unaliased(layout, decision.targets))
        if decision.merge is not None:
            await self._merged_prepared(statement, layout, decision, found, values, payload)
            return
        targets = decision.targets
        self._ran(decision.kind, len(targets), metrics=False)
        conns = await self._acquire(layout, targets)
        replied = False
        try:
            packets = []
            for index, target in enumerate(targets):
                used = decision.params[index] if decision.params else None
                packet = await self._execution(
                    statement, conns[target.partition], target, found, payload, used
                )
                if packet is None:
                    return
                packets.append(packet)
            if len(targets) == 1 and not decision.sequence_values and self._relay_ok:
                conn = conns[targets[0].partition]
                conn.send(packets[0])
                replied = True
                if decision.reads_rows and not decision.write:
                    scanner = await self._relay_logical(
                        conn, targets[0], layout, statement.client_id
                    )
                else:
                    scanner = await conn.relay(session.client, ResponseKind.QUERY)
                self.refused_by_shard(conn, targets[0].partition, scanner, self._digest)
            elif decision.reads_rows and not decision.write:
                self._sent = False
                await self._scatter_read(conns, targets, layout, packets)
            else:
                await self._write(conns, targets, decision, packets)
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, replied or self._sent)
            return
        self._answered_on(conns, targets)
        if len(statement.physical) > _PHYSICAL_LIMIT:
            self._trim(statement, {t.sql for t in targets})

    def _trim(self, statement: ShardedStatement, keep: set[str]) -> None:
        """Close the physical statements of ``statement`` but ``keep``'s: a multi-row INSERT
        makes one per way its rows fall, which the shard must not keep without bound
        (``max_prepared_stmt_count``)."""
        statement.fast.clear()
        for text in [t for t in statement.physical if t not in keep]:
            self._close_physical(statement.physical.pop(text))

    async def _execution(
        self,
        statement: ShardedStatement,
        conn: BackendConnection,
        target: Target,
        found: ExecuteParams,
        payload: bytes,
        used: tuple[int, ...] | None,
    ) -> bytes | None:
        """The COM_STMT_EXECUTE of ``target``'s physical statement on ``conn`` (prepared
        there first when it is not; None: the shard refused, its error was the answer):
        the client's packet with the physical statement's id, or, for a statement holding
        some of the parameters (``used``), those."""
        physical = statement.physical.setdefault(target.sql, PhysicalStatement())
        backend_id = physical.on.get(conn)
        if backend_id is None:
            conn.send(b"\x16" + _wire(target.sql))
            answer = await conn.collect(ResponseKind.PREPARE, _PREPARE_LIMIT)
            if answer[0][:1] != b"\x00":
                self.replies.write(answer[0])
                return None
            ok = parse_stmt_prepare_ok(answer[0])
            expected = statement.params if used is None else len(used)
            if ok.num_params != expected:
                conn.send(b"\x19" + ok.statement_id.to_bytes(4, "little"))
                raise sql_error(
                    ErrorCode.UNKNOWN_ERROR,
                    f"{_where(target.partition, target.shard)} prepared {ok.num_params}"
                    " parameters, not"
                    f" {expected}",
                )
            backend_id = ok.statement_id
            physical.on[conn] = backend_id
            self._partition_of[conn] = target.partition
        if used is not None:
            return build_execute(
                backend_id,
                found.flags,
                found.iteration,
                [found.types[i] for i in used],
                [found.values[i] for i in used],
            )
        packet = with_id(payload, backend_id)
        if statement.params:
            if not found.sent_types and conn not in physical.typed:
                assert statement.types is not None
                flag_at, _ = execute_types(packet, statement.params)
                packet = with_types(packet, flag_at, statement.types)
            physical.typed.add(conn)
        return packet

    async def _merged_prepared(
        self,
        statement: ShardedStatement,
        layout: Layout,
        decision: Route,
        found: ExecuteParams,
        values: Sequence[ParamValue],
        payload: bytes,
    ) -> None:
        """A scatter SELECT that needs a merge, prepared: the merge engine's per-partition
        statement holds the client's parameters in the same places (else 1235), each
        partition executes it, binary rows are merged."""
        merge_plan = plan_select(statement.text)
        if isinstance(merge_plan, Refusal):
            raise SqlError(merge_plan.errno, merge_plan.sqlstate, merge_plan.message)
        state = self.session.link.state
        mode, flavor = state.lex_mode, state.flavor
        if _param_clauses(statement.text, mode, flavor) != _param_clauses(
            merge_plan.sql, mode, flavor
        ) or any(
            c not in ("SELECT", "FROM", "WHERE")
            for c in _param_clauses(statement.text, mode, flavor)
        ):
            raise not_supported(
                f"parameters outside SELECT, FROM and WHERE when merging {decision.merge}"
                " across partitions"
            )
        rerouted = await self._decided(
            merge_plan.sql, layout, mode, flavor, params=values, codec=self._codec()
        )
        if not isinstance(rerouted, Route) or rerouted.merge is None:
            raise not_supported(f"merging {decision.merge} across partitions of this statement")
        targets = rerouted.targets
        if self.locked is not None:
            targets = await self._unaliased(layout, targets)
        conns, readers = await self.merge_readers(layout, targets, decision.merge)
        self._sent = False
        try:
            packets = []
            for target, conn in zip(targets, readers, strict=True):
                packet = await self._execution(statement, conn, target, found, payload, None)
                if packet is None:
                    return
                packets.append(packet)
            streams = merge_streams(readers, packets)
            await self._merged_rows(
                merge_plan, streams, readers, layout, statement.text, binary=True
            )
        except (BackendError, ConnectionLost) as exc:
            for conn in readers:
                conn.broken = True
            self._lost(conns, exc, self._sent)
            return
        self._answered_on(conns, targets)

    def fast_general(
        self,
        statement: ShardedStatement,
        plan: Sharded,
        packet: bytes,
        snapshot: CatalogSnapshot,
    ) -> tuple[BackendConnection, int, bytes, Callable[[bytes], bytes]] | None:
        """The fast path of an execution (no await: ``FastPath.routed_execute``, which has
        checked that no transaction of the proxy's is in charge and refreshed the statement's
        targets) that its :class:`FastRoute` does not serve: a statement routed by its key
        alone to one partition whose connection is ready and has the physical statement
        prepared; its key values read from the packet, placed, the target's connection and
        physical statement looked up; the statement's :class:`FastRoute` for the global
        table made when an integer key placed it. ``packet``: the client's
        COM_STMT_EXECUTE, frame header first (sequence 0). Returns (connection, its physical
        database, the frame to write there, the renaming of the answer's column
        definitions), or None: the command loop carries the execution out."""
        payload = packet[4:]
        slots = statement.slots
        if slots is None or statement.failed is not None:
            return None
        target: Target | None = None
        integer = statement.integer
        sent: bytes | None
        g: int | None = None
        if integer is not None:
            # One integer parameter, HASH of an integer key: arithmetic, no decoding.
            one = peek_integer(payload, statement.types)
            if one is not None:
                value, sent = one
                g = integer.table(value)
                if g is not None:
                    target = statement.hashed.get(g)
                    if target is None:
                        placement = Placement(g // integer.per_db, g)
                        target = self._placed(statement, plan.layout, placement)
                        statement.hashed[g] = target
        if target is None:
            encoding = self._codec()
            wanted = slots.wanted
            peeked = peek_params(payload, statement.params, statement.types, wanted, encoding)
            if peeked is None:
                return None
            values, sent = peeked
            target = self.keyed_target(statement, plan.layout, values)
            if target is None:
                return None
        partition = target.partition
        conn = self.session.fast.serving(partition, snapshot)
        if conn is None:
            return None
        physical = statement.physical.get(target.sql)
        backend_id = None if physical is None else physical.on.get(conn)
        if physical is None or backend_id is None:
            return None
        if sent is not None and sent != statement.types:
            _new_types(statement, sent)
        columns = self.columns_for(plan.layout, target.database)
        if g is not None:
            # A rewrite object of the route's own: the connection finds the answer's head it
            # rewrote by it (BackendConnection._known_head), statement by statement.
            columns = functools.partial(columns)
            statement.fast[g] = FastRoute(
                target,
                physical,
                conn,
                backend_id.to_bytes(4, "little"),
                backend_id == statement.client_id,
                # (set below when this execution is the one that sends them)
                bool(statement.params) and conn in physical.typed,
                plan.layout,
                columns,
            )
        if statement.params and conn not in physical.typed:
            if sent is None:  # the connection has not had the types the execution relies on
                if statement.types is None:
                    return None
                with_ids = with_id(payload, backend_id)
                flag_at, _ = execute_types(with_ids, statement.params)
                physical.typed.add(conn)
                if g is not None:
                    statement.fast[g].typed = True
                return (
                    conn,
                    partition,
                    frame(0, with_types(with_ids, flag_at, statement.types)),
                    columns,
                )
            physical.typed.add(conn)
            if g is not None:
                statement.fast[g].typed = True
        # The client's frame with the partition's statement id (the same length).
        if int.from_bytes(packet[5:9], "little") != backend_id:
            packet = packet[:5] + backend_id.to_bytes(4, "little") + packet[9:]
        return conn, partition, packet, columns

    def learn_text(
        self, sql: str, key: str, spans: tuple[int, ...], snapshot: CatalogSnapshot
    ) -> TextRoute | object | None:
        """The shape of ``sql``, a text statement whose fast key is ``key`` (``spans``: where
        its literals are), for ``FastPath.text_target`` to remember: a :class:`TextRoute`
        (routed by one literal: made from the first statement of the shape
        :func:`~proxy.shard.statements.decide` routed to the target the shape gives it),
        None (the shape's statements go the long way), or ``UNLEARNT`` when this statement
        cannot tell (not analysed yet, or a key that is not placeable)."""
        session = self.session
        database = session.current_db
        state = session.link.state
        shared_key = (key, database, state.lex_mode, state.flavor)
        shared = _SHARED_SHAPES.get(shared_key)
        if shared is not None and shared[0] is snapshot:
            found = shared[1]  # another session learned it (for this snapshot)
        else:
            hit = cached_shape(sql, database)
            if hit is None:
                return UNLEARNT
            digest, statement = hit
            layout = sharded_layout(snapshot, database)
            found = None
            if layout is not None:
                shape, settled = shaped(sql, spans, layout, state.lex_mode, state.flavor)
                if shape is None and not settled:
                    return UNLEARNT
                if shape is not None:
                    names = LogicalNames(layout.name.encode(), physical_table_names(layout))
                    found = TextRoute(shape, statement, digest, layout, names, shape.integer)
            if len(_SHARED_SHAPES) >= _SHARED_SHAPES_KEPT:
                _SHARED_SHAPES.clear()
            _SHARED_SHAPES[shared_key] = (snapshot, found)
        return found

    def fast_failed(self, conn: BackendConnection, partition: int) -> None:
        """A fast execution's partition connection failed (not the session's own)."""
        conn.broken = True
        self.source.release({partition: conn}, [partition])

    def _close(self, statement: ShardedStatement) -> None:
        """COM_STMT_CLOSE of every physical statement (no answer): on the session's own
        connection as any closed statement, on a partition's held connection at once."""
        statement.fast.clear()
        for physical in statement.physical.values():
            self._close_physical(physical)

    def _close_physical(self, physical: PhysicalStatement) -> None:
        link = self.session.link
        for conn, backend_id in list(physical.on.items()):
            if conn.broken or conn.is_closing():
                continue
            if self._partition_of.get(conn, 0) == 0:
                link.send_close(conn, backend_id)
            elif not conn.relaying:
                conn.send(b"\x19" + backend_id.to_bytes(4, "little"))
        physical.on.clear()

    async def _reset(self, statement: ShardedStatement) -> None:
        """COM_STMT_RESET of every physical statement on a connection the session has now."""
        live = self.session.link.live()
        for physical in statement.physical.values():
            for conn, backend_id in list(physical.on.items()):
                if conn.broken or conn.is_closing() or conn.relaying:
                    continue
                if self._partition_of.get(conn, 0) == 0 and conn is not live:
                    continue
                try:
                    await conn.command(b"\x1a" + backend_id.to_bytes(4, "little"))
                except BackendError:
                    conn.broken = True

    def forget_statements(self) -> None:
        """The session's prepared statements are gone (COM_RESET_CONNECTION, its connection
        lost, COM_CHANGE_USER): closed on the partitions' connections."""
        for statement in self.statements.values():
            self._close(statement)
        self.statements.clear()

    # -- DDL ----------------------------------------------------------------------------------

    async def _run_all(
        self, layout: Layout, targets: Sequence[Target]
    ) -> tuple[list[Target], list[_Failure]]:
        """Run each target's statement; which succeeded, which failed (and why)."""
        if not await self.commit_implicitly():
            raise _Replied
        conns = await self._acquire(layout, targets, branch=False)
        done: list[Target] = []
        failed: list[_Failure] = []
        try:
            for target in targets:
                try:
                    await _run(conns[target.partition], target.sql)
                    done.append(target)
                except BackendQueryError as exc:
                    failed.append(_Failure(target, exc.errno, exc.sqlstate, exc.message))
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            raise _Replied from None
        return done, failed

    async def _create(self, layout: Layout, decision: CreateShardedTable) -> None:
        session = self.session
        try:
            done, failed = await self._run_all(layout, decision.targets)
        except _Replied:
            return
        table = decision.table
        if failed:
            await self._undo_create(layout, table.name, done)
            named = _physical_renames(layout, [table])
            self.replies.error(
                _fan_out_error(
                    f"CREATE TABLE {table.name}",
                    done,
                    failed,
                    layout.name,
                    named,
                    _topology_numbers(layout, [table]),
                )
            )
            return
        # Stored (SHOW CREATE TABLE's) as the shard normalized it, as after an ALTER TABLE:
        # what a dump recreates is MariaDB's definition, not the client's spelling.
        shown = await self._shard_definition(layout, table)
        if shown is not None:
            table = replace(table, definition=shown)
        catalog = session.ctx.accounts.catalog
        before = session.ctx.mirrors.snapshot()
        assert session.account is not None
        actor = Actor(session.account, session.client_ip, session.current_db).audit_name
        try:
            await asyncio.to_thread(
                catalog.create_table,
                layout.name,
                table,
                auto_sequence_start=decision.auto_sequence_start,
                actor=actor,
                client=session.client_ip,
            )
        except CatalogUnavailableError as error:
            await self._undo_create(layout, table.name, done)
            self.replies.error(error.client_error())
            return
        except CatalogError as exc:
            await self._undo_create(layout, table.name, done)
            self.replies.error(sql_error(ErrorCode.TABLE_EXISTS, str(exc)))
            return
        # Table grants on the logical table now cover its physical tables on the mirrors.
        await session.ctx.mirrors.catalog_changed(before)
        self._counts = (0, self._found)  # (DDL: ROW_COUNT() 0, FOUND_ROWS() left)
        self.answered = 0
        self.replies.ok()

    async def _undo_create(self, layout: Layout, name: str, done: Sequence[Target]) -> None:
        """Drop the physical tables a failed CREATE TABLE made (best effort)."""
        for target in done:
            physical = re.search(r"`((?:[^`]|``)*)`", target.sql)
            if physical is None:
                continue
            drop = f"{OWN_STATEMENT}DROP TABLE IF EXISTS `{physical.group(1)}`"
            try:
                conns = await self._acquire(layout, [target], branch=False)
                await _run(conns[target.partition], drop)
            except (BackendError, BackendQueryError, BackendUnavailable, ConnectionLost):
                log.warning(
                    "could not drop %s.%s after a failed CREATE TABLE", target.database, name
                )

    async def _fan_out(self, layout: Layout, decision: FanOut) -> None:
        session = self.session
        try:
            done, failed = await self._run_all(layout, decision.targets)
        except _Replied:
            return
        what = f"{decision.verb} {', '.join(decision.tables)}"
        catalog = session.ctx.accounts.catalog
        assert session.account is not None
        actor = Actor(session.account, session.client_ip, session.current_db).audit_name
        if failed:
            named = _physical_renames(layout, layout.tables.values())
            numbered = _topology_numbers(layout, layout.tables.values())
            self.replies.error(_fan_out_error(what, done, failed, layout.name, named, numbered))
            return
        before = session.ctx.mirrors.snapshot()
        try:
            for old, new in decision.renames:
                await asyncio.to_thread(
                    catalog.rename_table,
                    layout.name,
                    old,
                    new,
                    actor=actor,
                    client=session.client_ip,
                )
            for name in decision.forgets:
                await asyncio.to_thread(
                    catalog.drop_table, layout.name, name, actor=actor, client=session.client_ip
                )
                SEQUENCES.forget(layout.name, auto_sequence_name(name))
            if decision.redefines is not None:
                definition = await self._definition(layout, decision.redefines)
                altered = layout.tables.get(decision.redefines.lower())
                if definition is not None and altered is not None:
                    # (an AUTO_INCREMENT column added: its values from a sequence, as
                    # CREATE TABLE makes one, past the rows the physical counter numbered)
                    start = altered_sequence_start(altered, definition)
                    if altered.rule.kind != "single":
                        # Physical database 0's counter is no logical table's (its values
                        # come from the GROUP sequence): the one CREATE showed, if any.
                        definition = _logical_counter(definition, altered.definition)
                    await asyncio.to_thread(
                        catalog.set_table_definition,
                        layout.name,
                        decision.redefines,
                        definition,
                        auto_sequence_start=start,
                        actor=actor,
                        client=session.client_ip,
                    )
                    if decision.auto_increment is not None and start is not None:
                        # (AUTO_INCREMENT = n: as MariaDB moves the counter, the sequence)
                        await asyncio.to_thread(
                            catalog.move_sequence,
                            layout.name,
                            auto_sequence_name(altered.name),
                            max(decision.auto_increment, 1),
                            actor=actor,
                            client=session.client_ip,
                        )
        except CatalogUnavailableError as error:
            self.replies.error(error.client_error())
            return
        except CatalogError as exc:
            self.replies.error(sql_error(ErrorCode.UNKNOWN_ERROR, str(exc)))
            return
        if decision.forgets or decision.renames:
            await session.ctx.mirrors.catalog_changed(before)
        self._counts = (0, self._found)  # (DDL: ROW_COUNT() 0, FOUND_ROWS() left)
        self.answered = 0
        self.replies.ok()

    async def _maintenance(self, layout: Layout, decision: Maintenance) -> None:
        """ANALYZE / CHECK / CHECKSUM / OPTIMIZE / REPAIR TABLE: the statement on each physical
        table, their rows combined per logical table (``maintenance_rows``) with the column
        definitions MariaDB gave them; CHECK also compares the physical definitions (names
        and the AUTO_INCREMENT counter aside), naming each partition that differs or is
        missing. All but CHECKSUM commit the open transaction first, as MariaDB does."""
        if decision.verb != "CHECKSUM" and not await self.commit_implicitly():
            return
        everything = [t for _, t in decision.targets] + [t for _, t in decision.definitions]
        conns = await self._acquire(layout, everything, branch=False)
        answers: list[list[list[str | None]]] = []
        columns: list[bytes] = []
        definitions: dict[int, list[tuple[Target, str | None, str]]] = {}
        try:
            for _, target in decision.targets:
                try:
                    result = await conns[target.partition].query(target.sql)
                except BackendQueryError as exc:
                    self.replies.error(
                        self.client_error(SqlError(exc.errno, exc.sqlstate, exc.message))
                    )
                    return
                columns = columns or result.definitions
                answers.append(
                    [
                        [None if v is None else self.client_message(_text(v)) for v in row]
                        for row in result.rows
                    ]
                )
            for index, target in decision.definitions:
                physical = target.sql.removeprefix("SHOW CREATE TABLE ")
                try:
                    result = await conns[target.partition].query(OWN_STATEMENT + target.sql)
                    text: str | None = _text(result.rows[0][1])
                except BackendQueryError as exc:
                    text = None
                    physical = f"{physical}: {exc.message}"
                definitions.setdefault(index, []).append((target, text, physical))
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return
        problems: dict[int, list[str]] = {}
        for index, found in definitions.items():
            reference: str | None = None
            for target, text, physical in found:
                if text is None:
                    problems.setdefault(index, []).append(f"{target.database}.{physical}")
                    continue
                normal = _normal_definition(text)
                if reference is None:
                    reference = normal
                elif normal != reference:
                    problems.setdefault(index, []).append(
                        f"{target.database}.{physical.strip('`')} differs"
                    )
        rows = maintenance_rows(decision, layout.name, answers, problems)
        self._counts = (-1, self._found)  # (rows answered: ROW_COUNT() -1, FOUND_ROWS() left)
        for payload in build_text_resultset(
            columns=[(f"column {i}", 0) for i in range(len(columns))],
            rows=[[None if v is None else _wire(v) for v in row] for row in rows],
            capabilities=self.session.capabilities,
            status=self.replies.status(),
            definitions=columns,
        ):
            self.replies.write(payload)

    async def _definition(self, layout: Layout, name: str) -> str | None:
        """After ALTER TABLE: :meth:`_shard_definition` of the table named ``name``."""
        table = layout.tables.get(name.lower())
        if table is None:
            return None
        return await self._shard_definition(layout, table)

    async def _shard_definition(self, layout: Layout, table: LogicalTable) -> str | None:
        """The shard's definition of ``table``'s first physical table, under the logical
        name, with the DRDS clause (what SHOW CREATE TABLE shows); None if it cannot be
        read."""
        database, physical = table.physical_tables(layout.count)[0]
        target = Target(database, layout.partitions[database].shard, "", "")
        try:
            conns = await self._acquire(layout, [target], branch=False)
            result = await conns[database].query(
                f"{OWN_STATEMENT}SHOW CREATE TABLE `{physical.replace('`', '``')}`"
            )
        except (BackendError, BackendQueryError, BackendUnavailable, ConnectionLost):
            return None
        # (in the session's character_set_results: a latin1 client's COMMENT 'caf\xe9')
        codec = results_codec(self.session.link.state, self.session.charset) or "utf-8"
        try:
            text = decode_text(result.rows[0][1] or b"", codec)
        except UnicodeDecodeError:
            return None
        text = text.replace(f"`{physical}`", f"`{table.name}`", 1)
        clause = table.rule.drds_clause()
        return f"{text} {clause}" if clause else text


# SHOW TABLE STATUS's Auto_increment column.
_AUTO_INCREMENT_STATUS = 10


def _sequence_positions(
    catalog: Catalog, layout: Layout, sequences: Mapping[str, str]
) -> dict[str, int]:
    """Where each table's sequence stands (``sequences``: table -> its sequence), those the
    catalog still has. Blocking."""
    found = {}
    for name, sequence in sequences.items():
        position = catalog.sequence_position(layout.name, sequence)
        if position is not None:
            found[name] = position
    return found


def _substituted(
    text: str, layout: Layout, mode: LexMode, flavor: ServerFlavor | None, values: Sequence[int]
) -> str:
    """``text`` with each ``s.NEXTVAL`` replaced by its value."""
    found = nextval_references(lex(text, mode, flavor)[0], lambda n: n.lower() in layout.sequences)
    out = []
    at = 0
    for reference, value in zip(found, values, strict=True):
        out.append(text[at : reference.start])
        out.append(str(value))
        at = reference.end
    out.append(text[at:])
    return "".join(out)


# A definition's AUTO_INCREMENT table option, as MariaDB's SHOW CREATE TABLE writes it: after
# the closing parenthesis of the columns, at the start of the table options (never inside a
# column's or the table's COMMENT, which come later or earlier).
def _logical_counter(shown: str, before: str) -> str:
    """A sharded or broadcast table's definition read from its first physical table after an
    ALTER TABLE (``shown``), with the AUTO_INCREMENT option of its definition ``before`` (what
    SHOW CREATE TABLE showed: the CREATE TABLE's ``AUTO_INCREMENT = n``, where its sequence
    starts) in place of the physical table's counter, which is one partition's rows' and
    means nothing for the logical table (a definition showing none stays as it is)."""
    if shown_counter(shown) == 1:  # (none shown)
        return shown
    return with_counter(shown, shown_counter(before))


def _normal_definition(text: str) -> str:
    """A physical table's definition without its name and AUTO_INCREMENT counter."""
    text = re.sub(r"^CREATE TABLE `(?:[^`]|``)*`", "CREATE TABLE", text)
    return re.sub(r" AUTO_INCREMENT=\d+", "", text)


async def _pause_point(name: str) -> None:
    """A fault point for the tests: with SHARDGATE_TEST_XA_CRASH=pause-<name>, the commit
    waits there a few seconds (a test breaks a branch's connection meanwhile)."""
    if f"pause-{name}" == _CRASH_AT:
        log.warning("SHARDGATE_TEST_XA_CRASH=%s: pausing", _CRASH_AT)
        await asyncio.sleep(_PAUSE_SECONDS)


def _crash_point(name: str) -> None:
    if name == _CRASH_AT:
        log.warning("SHARDGATE_TEST_XA_CRASH=%s: killing this process", name)
        os.kill(os.getpid(), signal.SIGKILL)


class _Replied(Exception):
    """The error was already sent."""


def targets_order(targets: Sequence[Target], partition: int) -> int:
    return next(i for i, t in enumerate(targets) if t.partition == partition)


def _readers(
    targets: Sequence[Target],
    conns: Mapping[int, BackendConnection],
    spares: Mapping[int, Sequence[BackendConnection]],
) -> list[BackendConnection]:
    """Per target, its connection: a physical database's first target gets the acquired one,
    its next targets its spares in order."""
    used: Counter[int] = Counter()
    out = []
    for target in targets:
        n = used[target.partition]
        used[target.partition] += 1
        out.append(conns[target.partition] if n == 0 else spares[target.partition][n - 1])
    return out


# What a merge inside a transaction may hold of a split table's answers that share the
# branch's connection (beyond it: 1235, nothing held).
SHARED_CONNECTION_BUFFER = 64 * 1024 * 1024


def merge_streams(
    readers: Sequence[BackendConnection], packets: Sequence[bytes]
) -> list[AsyncIterator[bytes]]:
    """Per reader, the answer to its packet, for ``merge_results``. Readers that are distinct
    connections get their packet at once (the partitions work in parallel); several targets
    on one connection (a transaction's branch holding a split table's physical tables) are
    sent one after another (:class:`_SharedConnection`)."""
    shared: dict[int, _SharedConnection] = {}
    counts = Counter(id(conn) for conn in readers)
    streams: list[AsyncIterator[bytes]] = []
    for conn, packet in zip(readers, packets, strict=True):
        if counts[id(conn)] == 1:
            conn.send(packet)
            streams.append(
                result_payloads(conn, capabilities=conn.capabilities, max_packet=MAX_BACKEND_PACKET)
            )
            continue
        chain = shared.setdefault(id(conn), _SharedConnection(conn))
        streams.append(chain.add(packet))
    return streams


class _SharedConnection:
    """Several statements' answers on one connection, read by a merge that wants them all at
    once: a statement is sent when the merge first needs its answer, after the answer before
    it is read to its end -- what the merge has not taken of that one is held (bounded by
    SHARED_CONNECTION_BUFFER; past it the rest is read and dropped, and that answer ends in
    1235 when the merge reaches the gap). The merge reads one answer at a time (it awaits one
    partition's row at a time), so the connection is never read by two at once."""

    def __init__(self, conn: BackendConnection) -> None:
        self._conn = conn
        self._packets: list[bytes] = []
        self._current = -1  # the statement whose answer is being read from the connection
        self._live: AsyncIterator[bytes] | None = None
        self._held: dict[int, deque[bytes]] = {}
        self._dropped: set[int] = set()
        self._bytes = 0

    def add(self, packet: bytes) -> AsyncIterator[bytes]:
        self._packets.append(packet)
        return self._answer(len(self._packets) - 1)

    async def _send(self, index: int) -> None:
        """Make statement ``index`` the one read from the connection: the answers before it
        are read to their ends first (held, or dropped past the bound)."""
        while self._current < index:
            if self._live is not None:
                held = self._held.setdefault(self._current, deque())
                async for payload in self._live:
                    if self._current in self._dropped:
                        continue
                    if self._bytes + len(payload) > SHARED_CONNECTION_BUFFER:
                        self._dropped.add(self._current)
                        self._bytes -= sum(len(p) for p in held)
                        held.clear()
                        continue
                    self._bytes += len(payload)
                    held.append(payload)
            self._current += 1
            conn = self._conn
            conn.send(self._packets[self._current])
            self._live = result_payloads(
                conn, capabilities=conn.capabilities, max_packet=MAX_BACKEND_PACKET
            )

    async def _answer(self, index: int) -> AsyncIterator[bytes]:
        if self._current < index:
            await self._send(index)
        while True:
            if index < self._current:  # read on by a later statement: what was held
                held = self._held.pop(index, deque())
                while held:
                    payload = held.popleft()
                    self._bytes -= len(payload)
                    yield payload
                if index in self._dropped:
                    raise MergeError(
                        "a merge over the physical tables of a table split by TBPARTITION BY"
                        " inside a transaction holding more than"
                        f" {SHARED_CONNECTION_BUFFER >> 20} MiB of one of them"
                    )
                return
            assert self._live is not None
            try:
                payload = await anext(self._live)
            except StopAsyncIteration:
                return
            yield payload


def _with_views(
    decision: LocalRows, packets: Sequence[bytes]
) -> tuple[tuple[str | None, ...], ...]:
    """SHOW [FULL] TABLES' rows with physical database 0's views (``packets``: the rows
    VIEWS_PROBE read, name and Table_type) that ``decision.views`` lists, in name order."""
    listed = decision.views
    assert listed is not None
    rows = list(decision.rows)
    full = len(decision.columns) > 1
    for packet in packets:
        name, kind = (_text(value) for value in text_row_values(packet, 2))
        if listed(name, kind):
            rows.append((name, kind) if full else (name,))
    return tuple(sorted(rows, key=lambda row: (row[0] or "").lower()))


_INFO = re.compile(rb"(Rows matched|Records): (\d+)  (Changed|Duplicates): (\d+)  Warnings: \d+")


def _merged_info(oks: Sequence[OkPacket], warnings: int) -> bytes:
    """The info text of the OK of one statement run as several (one per partition), as
    MariaDB words it for the statement: an UPDATE's "Rows matched: m  Changed: c  Warnings:
    w", a multi-row INSERT's or REPLACE's "Records: r  Duplicates: d  Warnings: w", the
    parts' counts added up (a part of one row of an INSERT, which has no info, counts one
    record). Empty (no info) when a part's is neither or is not known."""
    found = [_INFO.fullmatch(ok.info) if ok.info else None for ok in oks]
    kinds = {match.group(1) for match in found if match is not None}
    if len(kinds) != 1:
        return b""
    kind = kinds.pop()
    first = second = 0
    for ok, match in zip(oks, found, strict=True):
        if match is not None:
            first += int(match.group(2))
            second += int(match.group(4))
        elif kind == b"Records" and not ok.info and ok.affected_rows == 1:
            first += 1  # (one row inserted: no duplicate)
        else:
            return b""
    words = (b"Changed", b"Duplicates")[kind == b"Records"]
    return b"%s: %d  %s: %d  Warnings: %d" % (kind, first, words, second, warnings)


# Conditions MariaDB raises once per statement, before its rows: an INSERT leaving out a
# column without a default (without strict mode: 1364 "Field 'c' doesn't have a default value").
_STATEMENT_CONDITIONS = frozenset({1364})


def statement_notes_once(
    groups: Sequence[list[tuple[str, int, str]]],
) -> list[tuple[str, int, str]]:
    """The conditions of one statement run as several (a multi-row INSERT split per
    partition; ``groups``: each part's, in order) as MariaDB raises them for the one
    statement: those it raises once per statement (:data:`_STATEMENT_CONDITIONS`, at the
    head of each part's area, the same for every part since each names the same columns)
    kept from the first part only; the rows' own conditions from every part."""
    if len(groups) < 2:
        return [note for group in groups for note in group]
    first = groups[0]
    head = 0
    while head < len(first) and first[head][1] in _STATEMENT_CONDITIONS:
        head += 1
    once = first[:head]
    notes = list(first)
    for group in groups[1:]:
        if group[:head] == once:
            group = group[head:]
        notes += group
    return notes


def _end_warnings(packet: bytes, capabilities: int) -> int:
    """The warnings an answer's end counts (an EOF packet, or an OK with header 0xFE)."""
    if capabilities & _DEPRECATE_EOF:
        return parse_ok(packet, capabilities).warnings
    return parse_eof(packet)[0]


def _with_warnings(packet: bytes, capabilities: int, warnings: int) -> bytes:
    """An answer's end (EOF, or an OK with header 0xFE and one-byte affected rows and insert
    id, as a result set's is) counting ``warnings`` (at most 65535); another as it is."""
    count = min(warnings, 0xFFFF).to_bytes(2, "little")
    if not capabilities & _DEPRECATE_EOF:
        return packet[:1] + count + packet[3:] if len(packet) >= 5 else packet
    if len(packet) >= 7 and packet[1] < 0xFB and packet[2] < 0xFB:
        return packet[:5] + count + packet[7:]
    return packet


def _max_error_count(variables: Mapping[str, str]) -> int | None:
    """The session's max_error_count (MariaDB's default 64 when not set; None: not a number
    the proxy reads)."""
    value = variables.get("max_error_count", "64").strip("'")
    return int(value) if value.isdigit() else None


def _value_at(packet: bytes, column: int) -> int:
    """Where column ``column``'s value starts in a text-protocol row."""
    pos = 0
    for _ in range(column):
        if packet[pos] == 0xFB:
            pos += 1
            continue
        length, after = read_lenenc_int(packet, pos)  # (after: where the value starts)
        pos = after + (length or 0)
    return pos


def row_value(packet: bytes, column: int) -> bytes | None:
    """Column ``column``'s value in a text-protocol row (None: NULL)."""
    pos = _value_at(packet, column)
    if packet[pos] == 0xFB:
        return None
    length, after = read_lenenc_int(packet, pos)
    return packet[after : after + (length or 0)]


def rename_row(packet: bytes, column: int, renames: Mapping[str, str]) -> bytes:
    """A text-protocol row whose column ``column`` names a physical table: renamed to its
    logical table (``renames``), else as it is."""
    value = row_value(packet, column)
    if value is None:
        return packet
    logical = renames.get(value.decode("utf-8", "surrogateescape"))
    if logical is None:
        return packet
    pos = _value_at(packet, column)
    _, after = read_lenenc_int(packet, pos)
    new = logical.encode("utf-8", "surrogateescape")
    return packet[:pos] + lenenc_int(len(new)) + new + packet[after + len(value) :]


def rename_in_text(packet: bytes, column: int, renames: Mapping[str, str]) -> bytes:
    """A text-protocol row whose column ``column`` holds a statement: the backquoted names of
    ``renames`` in it renamed."""
    value = row_value(packet, column)
    if value is None:
        return packet
    new = value
    for old, logical in renames.items():
        new = new.replace(
            b"`" + old.encode("utf-8", "surrogateescape") + b"`",
            b"`" + logical.encode("utf-8", "surrogateescape") + b"`",
        )
    if new == value:
        return packet
    pos = _value_at(packet, column)
    _, after = read_lenenc_int(packet, pos)
    return packet[:pos] + lenenc_int(len(new)) + new + packet[after + len(value) :]


# SHOW TABLE STATUS's columns (MariaDB 10.11) merged over physical tables: summed, lowest,
# highest (Avg_row_length, 5, is computed again).
_STATUS_SUMS = (4, 6, 8, 9)  # Rows, Data_length, Index_length, Data_free
_STATUS_LEAST = (11,)  # Create_time
_STATUS_MOST = (10, 12, 13)  # Auto_increment, Update_time, Check_time


def _number(value: bytes | None) -> int | None:
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _add_status(into: list[bytes | None], values: list[bytes | None]) -> None:
    """One more physical table's SHOW TABLE STATUS row merged into its logical table's."""
    for column in _STATUS_SUMS:
        if column < len(into):
            a, b = _number(into[column]), _number(values[column])
            if a is not None and b is not None:
                into[column] = str(a + b).encode()
    for column, pick in [(c, min) for c in _STATUS_LEAST] + [(c, max) for c in _STATUS_MOST]:
        if column < len(into) and values[column] is not None:
            current = into[column]
            if current is None:
                into[column] = values[column]
            else:
                a_int, b_int = _number(current), _number(values[column])
                if a_int is not None and b_int is not None:
                    into[column] = str(pick(a_int, b_int)).encode()
                else:  # (times: 'YYYY-MM-DD hh:mm:ss' compare as text)
                    value = values[column]
                    assert value is not None
                    into[column] = pick(current, value)


def physical_table_names(layout: Layout) -> dict[bytes, bytes]:
    """The physical names of the tables split by TBPARTITION BY -> their logical names (the
    merged result's column definitions name the logical table, as one MariaDB would)."""
    out: dict[bytes, bytes] = {}
    for table in layout.tables.values():
        if table.rule.split_tables:
            for _, name in table.physical_tables(layout.count):
                out[name.encode()] = table.name.encode()
    return out


def _renamed_message(message: bytes, physical: bytes, names: LogicalNames) -> bytes:
    """An error text naming physical database ``physical`` or a split table's physical
    table (quoted or qualified), with their logical names."""
    found = [re.escape(physical), *(re.escape(name) for name in names.tables)]
    pattern = re.compile(rb"(?<![\w$])(" + b"|".join(found) + rb")(?=['`.])")
    return pattern.sub(
        lambda m: names.schema if m.group(1) == physical else names.tables[m.group(1)], message
    )


@dataclass(frozen=True)
class LogicalNames:
    """How a partition's column definitions name what a client sees of a sharded database:
    the logical database where they name the partition's physical database, the logical
    table where they name a physical table of a table split by TBPARTITION BY (the others'
    physical tables carry the logical name already)."""

    schema: bytes
    tables: Mapping[bytes, bytes]
    # The session's account as its errors name it (user, client IP): where a shard's error
    # names the backend account (a mirror), the client's own (None: left as it is).
    account: tuple[str, str] | None = None
    # The rewrites made (an answer's definitions repeat byte for byte), bounded; per
    # physical database its rewrite.
    _done: dict[tuple[bytes, bytes], bytes] = field(default_factory=dict, compare=False)
    _rewrites: dict[str, Callable[[bytes], bytes]] = field(default_factory=dict, compare=False)

    def rewrite(self, database: str) -> Callable[[bytes], bytes]:
        """The renaming of physical database ``database``'s column definitions."""
        found = self._rewrites.get(database)
        if found is not None:
            return found
        physical = database.encode()
        done = self._done

        def column(payload: bytes) -> bytes:
            key = (physical, payload)
            out = done.get(key)
            if out is None:
                out = self.column(payload, physical)
                if len(done) >= _RENAMES_KEPT:
                    done.clear()
                done[key] = out
            return out

        self._rewrites[database] = column
        return column

    def field(self, payload: bytes, physical: bytes) -> bytes:
        """A COM_FIELD_LIST column definition (a column definition and the column's default
        after it) renamed as :meth:`column` renames one; everything after the names kept."""
        try:
            pos = 0
            fields: list[bytes] = []
            for _ in range(4):
                value, pos = read_lenenc_str(payload, pos)
                fields.append(value or b"")
        except (ProtocolError, ValueError, IndexError):
            return payload
        catalog, schema, table, org_table = fields
        schema = self.schema if schema == physical else schema
        table = self.tables.get(table, table)
        org_table = self.tables.get(org_table, org_table)
        head = b"".join(lenenc_str(f) for f in (catalog, schema, table, org_table))
        return head + payload[pos:]

    def error(self, payload: bytes, physical: bytes) -> bytes:
        """An ERR packet of physical database ``physical`` whose message names it (``Table
        'sales_0000.t' doesn't exist``) or a split table's physical table, renamed; the
        payload itself otherwise."""
        at = err_message_at(payload)
        message = original = payload[at:]
        account = self.account
        if account is not None:
            message = client_account_named(message, *account)
        if physical not in message and not any(name in message for name in self.tables):
            return payload if message is original else payload[:at] + message
        return payload[:at] + _renamed_message(message, physical, self)

    def column(self, payload: bytes, physical: bytes) -> bytes:
        """A column definition of physical database ``physical``'s answer, renamed; the
        payload itself when nothing changes (every other field stays byte for byte). An ERR
        packet's message is renamed (:meth:`error`)."""
        if payload[:1] == b"\xff":
            return self.error(payload, physical)
        try:
            column = ColumnDefinition.parse(payload)
        except (ProtocolError, ValueError, IndexError, TypeError):
            return payload  # not a column definition the proxy reads: as it is
        tables = self.tables
        if column.schema == b"" and column.org_table == b"":
            # A privilege table of information_schema: the account's grants (proxy.plan.grants)
            granted = grant_column(column)
            if granted is not None:
                return granted
        if (
            column.schema == b""
            and column.table
            and column.org_table in (column.table, b"")
            and derived_column(column.table, column.name)
        ):
            # A column of an information_schema table made logical (proxy.shard.metadata):
            # the definition the table's own column has.
            flags = column.flags | (_NO_DEFAULT if column.flags & _NOT_NULL else 0)
            length = column.length
            type_code = column.type_code
            if statistic_column(column.table, column.org_name or column.name):
                flags, length = (flags & ~_BINARY) | _NO_DEFAULT, _BIGINT_LENGTH
            text = text_column_length(column.table, column.org_name or column.name, column.charset)
            if text is not None:
                flags, length, type_code = _NOT_NULL | _BLOB | _NO_DEFAULT, text, _TEXT_TYPE
            return replace(
                column,
                schema=b"information_schema",
                org_table=column.table,
                org_name=column.org_name or column.name,
                flags=flags,
                decimals=0,
                length=length,
                type_code=type_code,
            ).build()
        schema = self.schema if column.schema == physical else column.schema
        table = tables.get(column.table, column.table)
        org_table = tables.get(column.org_table, column.org_table)
        if schema is column.schema and table is column.table and org_table is column.org_table:
            return payload
        return replace(column, schema=schema, table=table, org_table=org_table).build()


def _layout_of(session: Session) -> Layout:
    layout = sharded_layout(session.ctx.snapshot(), session.current_db)
    assert layout is not None
    return layout


async def _read(conn: BackendConnection) -> tuple[int, bytes]:
    return await conn.read(MAX_BACKEND_PACKET)


async def _run(conn: BackendConnection, sql: str) -> None:
    await conn.query(sql)


async def _on_each(
    conns: Mapping[int, BackendConnection], partitions: Sequence[int], sql: Callable[[int], str]
) -> tuple[list[int], dict[int, BackendQueryError]]:
    """``sql(partition)`` on each partition's connection at once: the partitions it succeeded
    on (in the order given) and the shard's error on each it failed on. A lost connection
    raises, as the statement run on its own would."""
    results = await asyncio.gather(
        *(_run(conns[partition], sql(partition)) for partition in partitions),
        return_exceptions=True,
    )
    done: list[int] = []
    failed: dict[int, BackendQueryError] = {}
    lost: BaseException | None = None
    for partition, result in zip(partitions, results, strict=True):
        if isinstance(result, BackendQueryError):
            failed[partition] = result
        elif isinstance(result, BaseException):
            lost = lost or result
        else:
            done.append(partition)
    if lost is not None:
        raise lost
    return done, failed


async def _own_each(
    conns: Mapping[int, BackendConnection], partitions: Sequence[int], sql: Callable[[int], str]
) -> dict[int, bytes | BaseException]:
    """:func:`_own` on each partition's connection at once: each one's answer (an OK or ERR
    packet, its status tracked), or the exception that lost it."""
    results = await asyncio.gather(
        *(_own(conns[partition], sql(partition)) for partition in partitions),
        return_exceptions=True,
    )
    return dict(zip(partitions, results, strict=True))


async def _roll_back_alive(
    conns: Mapping[int, BackendConnection],
    partitions: Sequence[int],
    step: Callable[[str], Callable[[int], str]],
) -> None:
    """XA END and XA ROLLBACK of a write's branches on ``partitions`` whose connections are
    still there, each whatever the others answer (an error: the branch was never started or
    is gone -- rolled back anyway); a connection lost now is marked broken (its branch goes
    with it)."""
    alive = [p for p in partitions if not conns[p].broken and not conns[p].is_closing()]
    for verb in ("END", "ROLLBACK"):
        sql = step(verb)
        results = await asyncio.gather(
            *(_run(conns[p], sql(p)) for p in alive), return_exceptions=True
        )
        lost = {
            p
            for p, result in zip(alive, results, strict=True)
            if isinstance(result, BaseException) and not isinstance(result, BackendQueryError)
        }
        for partition in lost:
            conns[partition].broken = True
        alive = [p for p in alive if p not in lost]


def _steps_ok(
    answers: Mapping[int, bytes | BaseException],
    order: Sequence[int],
    conns: Mapping[int, BackendConnection],
) -> None:
    """An XA step's answers from :func:`_own_each`: the first lost connection raised, else the
    shard's first error (in ``order``) as BackendQueryError, else nothing."""
    for partition in order:
        answer = answers[partition]
        if isinstance(answer, BaseException):
            raise answer
    for partition in order:
        answer = answers[partition]
        assert isinstance(answer, bytes)
        if answer[:1] == b"\xff":
            err = parse_err(answer, conns[partition].capabilities)
            raise BackendQueryError(err.errno, err.sqlstate, err.message)
        if answer[:1] != b"\x00":
            conns[partition].broken = True
            where = _where(partition, conns[partition].target.shard)
            raise BackendError(f"an answer other than OK to an XA step on {where}")


async def _commands_by_branch(
    conns: Mapping[int, BackendConnection],
    targets: Sequence[Target],
    command: Callable[[int], bytes],
) -> dict[int, bytes]:
    """Each target's ``command(index)`` answer, by index: the partitions' connections at once,
    a partition's targets one after the other, up to its first answer that is not an OK (the
    rest of that partition is not sent, as when targets ran one after the other: the caller
    stops at the first such answer in target order). A lost connection raises (the first in
    target order), once every partition is done."""
    by_partition: dict[int, list[int]] = {}
    for index, target in enumerate(targets):
        by_partition.setdefault(target.partition, []).append(index)
    answers: dict[int, bytes] = {}

    async def run(indexes: list[int]) -> None:
        for index in indexes:
            packet = await conns[targets[index].partition].command(command(index))
            answers[index] = packet
            if packet[:1] != b"\x00":
                return

    results = await asyncio.gather(
        *(run(indexes) for indexes in by_partition.values()), return_exceptions=True
    )
    lost = {
        partition: result
        for partition, result in zip(by_partition, results, strict=True)
        if isinstance(result, BaseException)
    }
    for index in range(len(targets)):
        if index not in answers:
            raise lost[targets[index].partition]
        if answers[index][:1] != b"\x00":
            break  # (the caller stops here)
    return answers


def _raise_first(failed: Mapping[int, BackendQueryError], order: Sequence[int]) -> None:
    """The shard's error of the first partition (in ``order``) a step failed on."""
    for partition in order:
        if partition in failed:
            raise failed[partition]


# Work nobody waits for (a committed XA transaction's decision forgotten, a KILL QUERY for a
# client that left): held until done, the event loop keeping only weak references to tasks.
_BACKGROUND: set[asyncio.Task[None]] = set()


def in_background(work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` as a task nobody awaits, kept alive until it is done."""
    task = asyncio.get_running_loop().create_task(work)
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)


async def _forget_xa(catalog: Catalog, gtrid: str) -> None:
    try:
        await asyncio.to_thread(catalog.forget_xa, gtrid)
    except CatalogError:
        pass  # a stale outcome row is harmless


def _wire(sql: str) -> bytes:
    """A statement's text in the client's bytes: the proxy reads them as UTF-8, a byte that
    is no part of a UTF-8 character kept as a surrogate (``surrogateescape``: a latin1
    client's E9), which gives it back (strict UTF-8 would fail on it)."""
    return sql.encode("utf-8", "surrogateescape")


async def _own(conn: BackendConnection, sql: str) -> bytes:
    """One of the proxy's own statements with a one-packet answer (transaction control): the
    answer, whose status flags the connection now has."""
    if conn.broken or conn.is_closing():
        raise BackendError(f"lost connection to shard '{conn.target.shard}' before {sql}")
    return _track(conn, await conn.command(b"\x03" + (OWN_STATEMENT + sql).encode()))


async def _apply(conn: BackendConnection, physical: PhysicalDatabase, wanted: list[str]) -> None:
    """The session's settings (``BackendLink.state.statements()``) run on a partition's
    connection; BackendUnavailable, the connection closed, if the shard refuses them."""
    try:
        for statement in wanted:
            await conn.query(statement)
    except (BackendError, BackendQueryError) as exc:
        conn.broken = True
        conn.close()
        raise BackendUnavailable(
            sql_error(
                ErrorCode.SERVER_GONE,
                f"Backend unavailable for {_where(physical.index, physical.shard)}: the session's"
                f" settings could not be applied: {exc}",
            )
        ) from None


def _track(conn: BackendConnection, packet: bytes) -> bytes:
    """An OK's status flags are the connection's now (a relay tracks them itself)."""
    if packet[:1] == b"\x00":
        conn.status = parse_ok(packet, conn.capabilities).status
    return packet


def _text(value: bytes | None) -> str:
    """A shard's answer read as the proxy reads client text (``_wire`` gives its bytes back)."""
    return (value or b"").decode("utf-8", "surrogateescape")


def _ordered_all(layout: Layout) -> tuple[Target, ...]:
    """One target per physical database (no statement), in the acquisition order."""
    ordered = sorted(layout.partitions, key=lambda p: (p.shard, p.index))
    return tuple(Target(p.index, p.shard, p.name, "") for p in ordered)


def _unaliased(
    layout: Layout,
    targets: Sequence[Target],
    mode: LexMode | None = None,
    flavor: ServerFlavor | None = None,
) -> tuple[Target, ...]:
    """Under LOCK TABLES: a split table's physical table without the logical name routing
    gives it as an alias (```t_03` AS `t```) -- LOCK TABLES locked the physical names (a
    physical database holding several of them could not lock each under the one alias).
    Read as tokens (in the session's lexing ``mode``): the same text in a string literal is
    the client's data, left as written."""
    owner = {
        n.lower(): t.key
        for t in layout.tables.values()
        if t.rule.split_tables
        for _, n in t.physical_tables(layout.count)
    }
    if not owner:
        return tuple(targets)
    out = []
    for target in targets:
        if not any(name in target.sql.lower() for name in owner):
            out.append(target)
            continue
        cuts: list[tuple[int, int]] = []
        for statement in lex(target.sql, mode or LexMode(), flavor):
            tokens = statement.tokens
            for at in range(len(tokens) - 2):
                name, word, alias = tokens[at], tokens[at + 1], tokens[at + 2]
                if (
                    name.kind is TokenKind.IDENT
                    and owner.get(name.value.lower()) is not None
                    and word.kind is TokenKind.WORD
                    and word.value.upper() == "AS"
                    and alias.kind is TokenKind.IDENT
                    and alias.value.lower() == owner[name.value.lower()]
                ):
                    cuts.append((name.pos + len(name.raw), alias.pos + len(alias.raw)))
        sql = target.sql
        for begin, finish in reversed(cuts):
            sql = sql[:begin] + sql[finish:]
        out.append(replace(target, sql=sql))
    return tuple(out)


def _xa_under_locks(what: str, advice: str = "") -> SqlError:
    """1235 for what needs an XA transaction while LOCK TABLES holds tables (MariaDB refuses
    XA START then: 1400 XAER_OUTSIDE)."""
    return not_supported(
        f"{what} on a sharded database under LOCK TABLES (an XA transaction cannot start while"
        f" tables are locked: UNLOCK TABLES first{advice})"
    )


def _rolled_back(exc: BackendQueryError) -> SqlError:
    """A shard's error that made the proxy roll the client's transaction back on every
    partition (a savepoint that could not be set or used alike on all of its branches)."""
    return sql_error_from(
        exc.errno,
        exc.sqlstate,
        f"{exc.message} (the transaction was rolled back on every partition)",
    )


async def _own_ok(conn: BackendConnection, sql: str) -> None:
    """:func:`_own`, its error raised as BackendQueryError."""
    packet = await _own(conn, sql)
    if packet[:1] == b"\xff":
        err = parse_err(packet, conn.capabilities)
        raise BackendQueryError(err.errno, err.sqlstate, err.message)
    if packet[:1] != b"\x00":
        conn.broken = True
        raise BackendError(f"an answer other than OK to {sql}")


async def _discard(conn: BackendConnection) -> None:
    """Read and drop one whole answer (a result set, an OK or an error)."""
    _, first = await _read(conn)
    if first[:1] in (b"\xff", b"\x00"):
        return
    count_, _ = read_lenenc_int(first, 0)
    for _ in range(count_ or 0):
        await _read(conn)
    if not conn.capabilities & _DEPRECATE_EOF:
        await _read(conn)
    await _discard_rows(conn)


async def _discard_rows(conn: BackendConnection) -> None:
    """Read and drop the rows of a result set up to its end."""
    while True:
        _, packet = await _read(conn)
        if packet[:1] == b"\xff" or (packet[:1] == b"\xfe" and len(packet) < 0xFFFFFF):
            return


def _err_packet(capabilities: int, error: SqlError) -> bytes:
    return build_err(
        errno=error.errno,
        sqlstate=error.sqlstate,
        message=error.message,
        capabilities=capabilities,
    )


def sql_error_from(errno: int, sqlstate: str, message: str) -> SqlError:
    """A shard's error, passed on as it is."""
    return SqlError(errno, sqlstate, message)


def _physical_renames(layout: Layout, tables: Iterable[LogicalTable]) -> dict[str, str]:
    """The physical names of ``tables`` split by TBPARTITION BY: their logical names."""
    return {
        name: table.name
        for table in tables
        if table.rule.split_tables
        for _, name in table.physical_tables(layout.count)
    }


def _logical_failure(failure: _Failure, database: str, renames: Mapping[str, str]) -> _Failure:
    """A shard's error text with the physical database's and tables' names made logical."""
    message = failure.message
    physical = failure.target.database
    if physical:
        for quote in ("'", "`"):
            message = message.replace(f"{quote}{physical}{quote}", f"{quote}{database}{quote}")
        message = message.replace(f"{physical}.", f"{database}.")
    for name, logical in renames.items():
        if name in message:
            for quote in ("'", "`", "."):
                closing = "'" if quote == "." else quote
                message = message.replace(f"{quote}{name}{closing}", f"{quote}{logical}{closing}")
    return replace(failure, message=message)


def _fan_out_error(
    what: str,
    done: Sequence[Target],
    failed: Sequence[_Failure],
    database: str = "",
    renames: Mapping[str, str] | None = None,
    numbered: Mapping[tuple[int, str], str] | None = None,
) -> SqlError:
    """One failure everywhere (alike once named logically: ``database``, and ``renames`` for
    the split tables' physical names): the shard's error itself, as MariaDB would give it for
    the logical table (``Table 't' was locked with a READ lock``, not each physical table's).
    Some partitions failed: the first failure's error number, naming where each failed as the
    client knows the topology -- the partition (SHOW NODE's ID) and its shard, and for a table
    split by TBPARTITION BY its physical table's number (SHOW TOPOLOGY's ID) -- never a
    physical database's or table's name, and how many succeeded."""
    if database:
        failed = [_logical_failure(f, database, renames or {}) for f in failed]
    first = failed[0]
    if not done and len({(f.errno, f.message) for f in failed}) == 1:
        return sql_error_from(first.errno, first.sqlstate, first.message)
    listed = "; ".join(
        f"{_failed_where(f.target, numbered or {})}: {f.errno} {f.message}" for f in failed
    )
    total = len(done) + len(failed)
    return sql_error_from(
        first.errno,
        first.sqlstate,
        f"{what} failed on {len(failed)} of {total} physical tables ({listed}); applied on"
        f" the other {len(done)}",
    )


def _topology_numbers(layout: Layout, tables: Iterable[LogicalTable]) -> dict[tuple[int, str], str]:
    """(physical database, physical table name in lower case) of each of ``tables`` split by
    TBPARTITION BY: ``t #i``, its number in SHOW TOPOLOGY FROM t."""
    return {
        (db, name.lower()): f"{table.name} #{index}"
        for table in tables
        if table.rule.split_tables
        for index, (db, name) in enumerate(table.physical_tables(layout.count))
    }


def _lost_where(conns: Mapping[int, BackendConnection], exc: object) -> str:
    """``exc``, a connection lost, said with where: the partitions (and shards) whose
    connections broke, when that is known."""
    gone = [
        _where(p, conn.target.shard)
        for p, conn in conns.items()
        if conn.broken or conn.is_closing()
    ]
    return f"{', '.join(gone)}: {exc}" if gone else str(exc)


def _where(partition: int, shard: str) -> str:
    """A physical database as the client knows the topology: its partition (SHOW NODE's ID)
    and its shard, never its physical name."""
    return f"partition {partition} on shard {shard}"


def _failed_where(target: Target, numbered: Mapping[tuple[int, str], str]) -> str:
    """Where a fanned-out DDL statement failed, in the client's terms: ``partition 3 on shard
    s1``, with the split table's ``t #7`` before it."""
    where = _where(target.partition, target.shard)
    for quoted, bare in _NAMES.findall(target.sql):
        name = (quoted.replace("``", "`") if quoted else bare).lower()
        table = numbered.get((target.partition, name))
        if table is not None:
            return f"{table} in {where}"
    return where


_NAMES = re.compile(r"`((?:[^`]|``)*)`|(\w+)")


_PREPARE_LIMIT = 16 * 1024 * 1024
# Physical statements a prepared statement keeps prepared (beyond: closed but the last used).
_PHYSICAL_LIMIT = 64
_CURSOR_FLAGS = 0x07
_CLAUSES = frozenset({"SELECT", "FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "UNION"})


def _param_clauses(text: str, mode: LexMode, flavor: ServerFlavor | None) -> list[str]:
    """The top-level clause each parameter marker of ``text`` is in, in order."""
    statements = lex(text, mode, flavor)
    out: list[str] = []
    depth = 0
    clause = ""
    for statement in statements:
        for token in statement.tokens:
            if token.kind is TokenKind.OP and token.value == "(":
                depth += 1
            elif token.kind is TokenKind.OP and token.value == ")":
                depth -= 1
            elif token.kind is TokenKind.PARAM:
                out.append(clause)
            elif depth == 0 and token.kind is TokenKind.WORD:
                word = token.value.upper()
                if word in _CLAUSES:
                    clause = word
    return out
