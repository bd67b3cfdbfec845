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
  decision is not yet recorded in the catalog, so a proxy that dies between PREPARE and COMMIT
  leaves prepared branches for the operator (``XA RECOVER``) rather than for the next proxy.
* **Transactions.** Inside a transaction the client opened (on physical database 0), statements
  whose targets are all physical database 0 run in it; others are refused with 1235 rather than
  run outside it.
* **DDL** fans out to every physical table, in order, and reports each partition that failed;
  CREATE TABLE records the logical table in the catalog only once every physical table exists
  (and drops the ones it made when another failed).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING, Any, Protocol

from auth.accounts import Actor
from auth.catalog import (
    CatalogError,
    CatalogUnavailableError,
    SequenceExistsError,
    UnknownSequenceError,
)
from auth.errors import ErrorCode, SqlError, not_supported, sql_error
from auth.model import PhysicalDatabase
from proxy.backend.connection import (
    MAX_BACKEND_PACKET,
    BackendConnection,
    BackendError,
    BackendQueryError,
    quote_string,
)
from proxy.backend.xa import XID_PREFIX
from proxy.merge import Refusal, merge_results, plan_select, result_payloads
from proxy.plan.plan import Sharded, sharded_layout
from proxy.session.link import OWN_STATEMENT, BackendUnavailable, SessionLost, lost_error
from proxy.shard.ddl import AlterSequence, CreateSequence, nextval_references
from proxy.shard.route import Layout, NeedsSequence, Route, Target
from proxy.shard.sequences import SequenceAllocator, next_values
from proxy.shard.statements import (
    CheckTables,
    CreateShardedTable,
    Decision,
    FanOut,
    LocalRows,
    NeedsNextval,
    SequenceDdl,
    decide,
)
from proxy.sql.lexer import LexMode, ServerFlavor, lex
from proxy.wire.packets import (
    Capability,
    ServerStatus,
    build_err,
    build_ok,
    parse_err,
    parse_ok,
    read_lenenc_int,
)
from proxy.wire.stream import ConnectionLost, ResponseKind

if TYPE_CHECKING:
    from auth.model import Account
    from proxy.session.host import SessionHost
    from proxy.session.link import BackendLink, Lease
    from proxy.wire.stream import ClientConnection


class Session(Protocol):
    """What the executor reads of its session (proxy/session/session.py)."""

    @property
    def ctx(self) -> SessionHost[Any]: ...
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


@dataclass(frozen=True)
class Replies:
    """How the executor answers the client, through the session (its sequence numbers and
    status flags): the session's own methods."""

    error: Callable[[SqlError], None]
    ok: Callable[[], None]
    write: Callable[[bytes], None]
    result_set: Callable[[list[str], list[list[str | None]], frozenset[str]], None]
    status: Callable[[], int]
    lease: Lease  # the session's connection to physical database 0, from the pool


log = logging.getLogger("shardgate.sharded")

# GROUP sequence values this process holds (ranges reserved in the catalog).
SEQUENCES = SequenceAllocator()
_XIDS = count(1)
# This process in XA transaction ids (unique across nodes and restarts).
_NODE = os.urandom(4).hex()
_XAER_NOTA = 1397
# A fault point for the crash-recovery tests: the process kills itself (SIGKILL) there.
_CRASH_AT = os.environ.get("SHARDGATE_TEST_XA_CRASH", "")
_IN_TRANSACTION = int(ServerStatus.IN_TRANS)
_AUTOCOMMIT = int(ServerStatus.AUTOCOMMIT)
_DEPRECATE_EOF = int(Capability.DEPRECATE_EOF)


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


class SessionPartitions:
    """A :class:`PartitionSource` holding one connection per physical database for the
    session's lifetime (physical database 0: the session's link connection)."""

    def __init__(self, session: Session, lease: Lease) -> None:
        self._session = session
        self._lease = lease
        self._held: dict[int, BackendConnection] = {}
        self._applied: dict[int, list[str]] = {}  # the session state each connection got
        self._snapshot: object = None
        # More connections per physical database, for merges over split tables (``spares``).
        self._spares: dict[int, list[BackendConnection]] = {}
        self._spare_applied: dict[int, list[str]] = {}  # by id() of the connection

    async def acquire(self, partitions: Sequence[PhysicalDatabase]) -> dict[int, BackendConnection]:
        session = self._session
        snapshot = session.ctx.snapshot()
        if snapshot is not self._snapshot:
            # New grants or tables: reconnect (the mirrors follow the newest catalog).
            await self.close()
            self._snapshot = snapshot
        wanted = session.link.state.statements()
        conns: dict[int, BackendConnection] = {}
        for physical in partitions:
            if physical.index in conns:
                continue
            if physical.index == 0:
                conn0 = await session.link.connection(self._lease)
                conns[0] = conn0
                continue
            conn = self._held.get(physical.index)
            if conn is not None and (conn.broken or conn.is_closing()):
                self._held.pop(physical.index, None)
                conn = None
            if conn is None:
                assert session.account is not None and session.current_db is not None
                try:
                    conn = await session.ctx.mirrors.connect(
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
                            f"Backend unavailable for partition {physical.name}: {exc}",
                        )
                    ) from None
                self._held[physical.index] = conn
                self._applied[physical.index] = []
            if self._applied.get(physical.index) != wanted:
                try:
                    for statement in wanted:
                        await conn.query(statement)
                except (BackendError, BackendQueryError) as exc:
                    self.release({physical.index: conn}, [physical.index])
                    raise BackendUnavailable(
                        sql_error(
                            ErrorCode.SERVER_GONE,
                            f"Backend unavailable for partition {physical.name}: the session's"
                            f" settings could not be applied: {exc}",
                        )
                    ) from None
                self._applied[physical.index] = list(wanted)
            conns[physical.index] = conn
        return conns

    def release(self, conns: Mapping[int, BackendConnection], broken: Sequence[int] = ()) -> None:
        for index in broken:
            if index == 0:
                continue  # the link's own connection: the session handles its loss
            conn = self._held.pop(index, None)
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
            assert session.account is not None and session.current_db is not None
            try:
                conn = await session.ctx.mirrors.connect(
                    session.ctx.snapshot(),  # acquire() just followed it (closing spares)
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
                        f"Backend unavailable for partition {physical.name}: {exc}",
                    )
                ) from None
            self._spare_applied[id(conn)] = []
            kept.append(conn)
        self._spares[physical.index] = kept
        for conn in kept[:count]:
            if self._spare_applied.get(id(conn)) != wanted:
                try:
                    for statement in wanted:
                        await conn.query(statement)
                except (BackendError, BackendQueryError) as exc:
                    conn.broken = True
                    conn.close()
                    raise BackendUnavailable(
                        sql_error(
                            ErrorCode.SERVER_GONE,
                            f"Backend unavailable for partition {physical.name}: the session's"
                            f" settings could not be applied: {exc}",
                        )
                    ) from None
                self._spare_applied[id(conn)] = list(wanted)
        return kept[:count]

    async def close(self) -> None:
        held, self._held = self._held, {}
        self._applied.clear()
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


@dataclass
class _Failure:
    target: Target
    errno: int
    sqlstate: str
    message: str


class ShardedExecutor:
    """Carries out :class:`Sharded` plans for one session."""

    def __init__(
        self, session: Session, replies: Replies, source: PartitionSource | None = None
    ) -> None:
        self.session = session
        self.replies = replies
        self.source: PartitionSource = source or SessionPartitions(session, replies.lease)
        self._sent = False  # a scatter read has written to the client

    async def close(self) -> None:
        await self.source.close()

    # -- the one entry ----------------------------------------------------------------------

    async def execute(self, plan: Sharded) -> None:
        started = time.perf_counter()
        try:
            await self._execute(plan)
        finally:
            if plan.digest:
                seconds = time.perf_counter() - started
                self.session.ctx.digest.record(self.session.current_db, plan.digest, seconds, 0)

    async def _execute(self, plan: Sharded) -> None:
        session = self.session
        decision: Decision | None = plan.decision
        try:
            if isinstance(decision, NeedsNextval):
                decision = await self._with_nextvals(plan, decision)
                if decision is None:
                    return
            if isinstance(decision, NeedsSequence):
                routed = await self._with_sequence(plan, decision)
                if routed is None:
                    return
                decision = routed
            if isinstance(decision, LocalRows):
                if decision.columns:
                    self.replies.result_set(
                        list(decision.columns), [list(r) for r in decision.rows], decision.numeric
                    )
                else:
                    self.replies.ok()
            elif isinstance(decision, Route):
                if decision.merge is not None:
                    await self._merged(plan, decision)
                else:
                    await self._route(decision)
            elif isinstance(decision, CreateShardedTable):
                await self._create(plan.layout, decision)
            elif isinstance(decision, FanOut):
                await self._fan_out(plan.layout, decision)
            elif isinstance(decision, CheckTables):
                await self._check(plan.layout, decision)
            elif isinstance(decision, SequenceDdl):
                await self._sequence_ddl(plan.layout, decision)
        except BackendUnavailable as exc:
            log.warning("connection %d: %s", session.connection_id, exc)
            self.replies.error(exc.error)
        except SqlError as error:
            self.replies.error(error)
        except BackendQueryError as exc:
            # A statement of the proxy's own the shard refused (a catalog-definition read).
            self.replies.error(sql_error_from(exc.errno, exc.sqlstate, exc.message))
        except (BackendError, ConnectionLost) as exc:
            # Lost under one of the proxy's own statements (nothing sent to the client yet);
            # the next statement reconnects what is broken.
            log.warning("connection %d: %s", session.connection_id, exc)
            self.replies.error(lost_error([], exc))

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
        decision = decide(plan.text, layout, mode, flavor, nextvals=values)
        if isinstance(decision, NeedsSequence):
            raise not_supported("s.NEXTVAL in an INSERT that takes its shard key from a sequence")
        if decision is None:
            text = _substituted(plan.text, layout, mode, flavor, values)
            first = layout.partitions[0]
            return Route("copy", "", False, True, (Target(0, first.shard, first.name, text),))
        return decision

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
        decision = decide(plan.text, layout, mode, flavor, values)
        assert isinstance(decision, Route)
        return decision

    # -- connections ------------------------------------------------------------------------

    def _in_transaction(self) -> bool:
        """A transaction open on the session's own connection, or autocommit off (then every
        statement opens one): the session's connection is kept while it is, else the status
        its last statement left tells."""
        link = self.session.link
        status = link.conn.status if link.conn is not None else link.last_status
        if link.state.variables.get("autocommit", "1") in ("0", "'OFF'", "'0'"):
            return True
        return bool(status & _IN_TRANSACTION) or not status & _AUTOCOMMIT

    async def _acquire(
        self, layout: Layout, targets: Sequence[Target]
    ) -> dict[int, BackendConnection]:
        partitions = [layout.partitions[t.partition] for t in targets]
        return await self.source.acquire(partitions)

    def _lost(self, conns: Mapping[int, BackendConnection], exc: Exception, replied: bool) -> None:
        """A partition's connection failed under a statement: 2013 (the session ends when part
        of the answer was already sent, or the session's own connection was lost with state)."""
        session = self.session
        broken = [index for index, conn in conns.items() if conn.broken or conn.is_closing()]
        if not broken:
            # Not known which one failed: none of the statement's connections is trusted.
            broken = list(conns)
        for index in broken:
            conns[index].broken = True
        self.source.release(conns, broken)
        if 0 in broken:
            reasons = session.link.bound_reasons()
            session.link.drop()
            session.prepared.clear()
            if reasons or replied:
                raise SessionLost(lost_error(reasons, exc))
        elif replied:
            raise SessionLost(lost_error([], exc))
        self.replies.error(lost_error([], exc))

    # -- routed statements -------------------------------------------------------------------

    async def _route(self, decision: Route) -> None:
        session = self.session
        layout = _layout_of(session)
        targets = decision.targets
        if self._in_transaction() and any(t.partition != 0 for t in targets):
            raise not_supported(
                f"statements on partitions of table {decision.table} other than the first"
                " inside a transaction or with autocommit=0 (a transaction across partitions)"
            )
        conns = await self._acquire(layout, targets)
        session.ctx.metrics.sharded(decision.kind, len(targets))
        replied = False
        try:
            if len(targets) == 1 and not decision.sequence_values:
                conn = conns[targets[0].partition]
                conn.send(b"\x03" + targets[0].sql.encode())
                replied = True
                await conn.relay(session.client, ResponseKind.QUERY)
            elif decision.reads_rows and not decision.write:
                self._sent = False
                await self._scatter_read(conns, targets)
            else:
                await self._write(conns, targets, decision)
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, replied or self._sent)

    async def merge_readers(
        self, layout: Layout, targets: Sequence[Target], why: str | None
    ) -> tuple[dict[int, BackendConnection], list[BackendConnection]]:
        """The connections a merge reads ``targets`` on: (the acquired ones by physical
        database, and per target the one to send its statement on). Each physical table is
        one merge input and all are read at once, so a physical database with several of them
        (TBPARTITION BY) gives its first target the acquired connection and the others spare
        ones (``PartitionSource.spares``); inside a transaction that is 1235 (the spares are
        outside it). Counts the statement in the metrics."""
        per_db = Counter(t.partition for t in targets)
        if self._in_transaction() and max(per_db.values()) > 1:
            raise not_supported(
                f"{why} across the physical tables of a table split by TBPARTITION BY inside a"
                " transaction"
            )
        conns = await self._acquire(layout, targets)
        spares = {
            p: await self.source.spares(layout.partitions[p], n - 1)
            for p, n in per_db.items()
            if n > 1
        }
        self.session.ctx.metrics.sharded("merged", len(targets))
        return conns, _readers(targets, conns, spares)

    async def _merged(self, plan: Sharded, decision: Route) -> None:
        """A scatter SELECT that needs a merge: the merge engine rewrites it (proxy/merge),
        routing puts the physical names into its rewrite, every physical database runs it at
        once, and the merged result streams to the client."""
        merge_plan = plan_select(plan.text)
        if isinstance(merge_plan, Refusal):
            raise SqlError(merge_plan.errno, merge_plan.sqlstate, merge_plan.message)
        state = self.session.link.state
        rerouted = decide(merge_plan.sql, plan.layout, state.lex_mode, state.flavor)
        if not isinstance(rerouted, Route) or rerouted.merge is None:
            raise not_supported(f"merging {decision.merge} across partitions of this statement")
        targets = rerouted.targets
        if self._in_transaction() and any(t.partition != 0 for t in targets):
            raise not_supported(
                f"statements on partitions of table {decision.table} other than the first"
                " inside a transaction or with autocommit=0 (a transaction across partitions)"
            )
        conns, readers = await self.merge_readers(plan.layout, targets, decision.merge)
        self._sent = False
        client = self.session.client
        try:
            streams = []
            for target, conn in zip(targets, readers, strict=True):
                conn.send(b"\x03" + target.sql.encode())
                streams.append(
                    result_payloads(
                        conn, capabilities=conn.capabilities, max_packet=MAX_BACKEND_PACKET
                    )
                )
            async for payload in merge_results(
                merge_plan,
                streams,
                capabilities=self.session.capabilities,
                schema=plan.layout.name.encode(),
                tables=physical_table_names(plan.layout),
            ):
                self._emit(payload)
                if client.write_paused:
                    await client.drain()
        except (BackendError, ConnectionLost) as exc:
            for conn in readers:
                conn.broken = True
            self._lost(conns, exc, self._sent)

    async def _scatter_read(
        self, conns: Mapping[int, BackendConnection], targets: Sequence[Target]
    ) -> None:
        """Concatenate the targets' result sets as they stream (``_sent``: anything reached
        the client); statements needing a merge go to :meth:`_merged` instead.

        The physical databases work in parallel: the first statement of each is sent at once,
        the next one on a connection when the previous answer was read (one statement in
        flight per connection). An answer waiting its turn stays with the shard (the
        connection stops reading, TCP holds the rest); answers not read when the scatter ends
        early (an error) are read and dropped before the connections are used again."""
        following: dict[int, int] = {}  # target -> the next target on its connection
        last_on: dict[int, int] = {}
        for index, target in enumerate(targets):
            if target.partition in last_on:
                following[last_on[target.partition]] = index
            last_on[target.partition] = index
        in_flight: set[int] = set()

        def send(index: int, hold: bool) -> None:
            conn = conns[targets[index].partition]
            conn.send(b"\x03" + targets[index].sql.encode())
            in_flight.add(index)
            if hold:
                conn.pause_reading()

        firsts = sorted(
            {min(i for i, t in enumerate(targets) if t.partition == p) for p in last_on}
        )
        for index in firsts:
            send(index, hold=index != 0)
        try:
            await self._concatenate(conns, targets, in_flight, following, send)
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
        in_flight: set[int],
        following: Mapping[int, int],
        send: Callable[[int, bool], None],
    ) -> None:
        session = self.session
        client = session.client
        columns: int | None = None
        ok_affected = 0
        last_end: bytes | None = None
        for index, target in enumerate(targets):
            conn = conns[target.partition]
            caps = conn.capabilities
            conn.resume_reading()
            _, first = await _read(conn)
            if first[:1] in (b"\xff", b"\x00"):
                in_flight.discard(index)
            if first[:1] == b"\xff":
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
            count_, _ = read_lenenc_int(first, 0)
            header = [first]
            for _ in range(count_ or 0):
                header.append((await _read(conn))[1])
            if not caps & _DEPRECATE_EOF:
                header.append((await _read(conn))[1])
            if columns is None:
                columns = count_ or 0
                for payload in header:
                    self._emit(payload)
            elif columns != count_:
                await _discard_rows(conn)
                in_flight.discard(index)
                self._emit(
                    _err_packet(
                        session.capabilities,
                        sql_error(
                            ErrorCode.UNKNOWN_ERROR,
                            f"partition {target.database} answered {count_} columns, not {columns}",
                        ),
                    )
                )
                return
            while True:
                _, packet = await _read(conn)
                if packet[:1] == b"\xfe" and len(packet) < 0xFFFFFF:
                    last_end = packet
                    break
                if packet[:1] == b"\xff":
                    in_flight.discard(index)
                    self._emit(packet)
                    return
                self._emit(packet)
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
        if columns is None:
            self._emit(
                build_ok(
                    capabilities=session.capabilities,
                    affected_rows=ok_affected,
                    status=self.replies.status(),
                )
            )
            return
        assert last_end is not None
        self._emit(last_end)

    def _emit(self, payload: bytes) -> None:
        self._sent = True
        self.replies.write(payload)

    async def _write(
        self, conns: Mapping[int, BackendConnection], targets: Sequence[Target], decision: Route
    ) -> None:
        """Writes: one statement answered directly, several in one XA transaction."""
        session = self.session
        if len(targets) == 1:
            packet = await conns[targets[0].partition].command(b"\x03" + targets[0].sql.encode())
            await self._remember_insert_id(decision)
            self._answer_write([packet], conns[targets[0].partition], decision)
            return
        gtrid = f"{XID_PREFIX}{_NODE}-{session.connection_id}-{next(_XIDS)}"
        xid = quote_string(gtrid)
        branches = sorted({t.partition for t in targets}, key=lambda p: targets_order(targets, p))
        started: list[int] = []
        answers: list[bytes] = []
        failure: SqlError | None = None
        try:
            for partition in branches:
                await _run(conns[partition], f"{OWN_STATEMENT}XA START {xid}, '{partition}'")
                started.append(partition)
            for target in targets:
                packet = await conns[target.partition].command(b"\x03" + target.sql.encode())
                if packet[:1] == b"\xff":
                    err = parse_err(packet, conns[target.partition].capabilities)
                    failure = sql_error_from(err.errno, err.sqlstate, err.message)
                    break
                if packet[:1] != b"\x00":
                    conns[target.partition].broken = True
                    raise BackendError("a result set where a write's OK was expected")
                answers.append(packet)
            for partition in started:
                await _run(conns[partition], f"{OWN_STATEMENT}XA END {xid}, '{partition}'")
            if failure is None:
                for partition in started:
                    await _run(conns[partition], f"{OWN_STATEMENT}XA PREPARE {xid}, '{partition}'")
        except BackendQueryError as exc:
            failure = sql_error_from(exc.errno, exc.sqlstate, exc.message)
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
            for partition in started:
                try:
                    await _run(conns[partition], f"{OWN_STATEMENT}XA END {xid}, '{partition}'")
                except BackendQueryError:
                    pass
                try:
                    await _run(conns[partition], f"{OWN_STATEMENT}XA ROLLBACK {xid}, '{partition}'")
                except BackendQueryError:
                    pass
            self.replies.error(failure)
            return
        _crash_point("after-decision")
        not_committed: list[str] = []
        for partition in started:
            try:
                await _run(conns[partition], f"{OWN_STATEMENT}XA COMMIT {xid}, '{partition}'")
            except BackendQueryError as exc:
                if exc.errno == _XAER_NOTA:
                    continue  # committed by a recovering node, as decided
                not_committed.append(f"{_layout_of(session).partitions[partition].name}: {exc}")
        if not_committed:
            raise sql_error(
                ErrorCode.UNKNOWN_ERROR,
                f"XA transaction {gtrid} decided to commit but not yet committed on: "
                + "; ".join(not_committed)
                + " (the next proxy to start commits them)",
            )
        catalog = session.ctx.accounts.catalog
        try:
            await asyncio.to_thread(catalog.forget_xa, gtrid)
        except CatalogError:
            pass  # a stale outcome row is harmless
        await self._remember_insert_id(decision)
        self._answer_write(answers, conns[targets[0].partition], decision)

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

    def _answer_write(
        self, packets: Sequence[bytes], conn: BackendConnection, decision: Route
    ) -> None:
        session = self.session
        if packets and packets[0][:1] == b"\xff":
            self.replies.write(packets[0])
            return
        affected = warnings = 0
        insert_id = 0
        for packet in packets:
            ok = parse_ok(packet, conn.capabilities)
            affected += ok.affected_rows
            warnings += ok.warnings
            insert_id = insert_id or ok.last_insert_id
        if decision.sequence_values:
            insert_id = decision.sequence_values[0]
        self.replies.write(
            build_ok(
                capabilities=session.capabilities,
                affected_rows=affected,
                last_insert_id=insert_id,
                status=self.replies.status(),
                warnings=warnings,
            )
        )

    # -- DDL ----------------------------------------------------------------------------------

    async def _run_all(
        self, layout: Layout, targets: Sequence[Target]
    ) -> tuple[list[Target], list[_Failure]]:
        """Run each target's statement; which succeeded, which failed (and why)."""
        if self._in_transaction():
            raise not_supported("DDL on a sharded database inside a transaction")
        conns = await self._acquire(layout, targets)
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
            self.replies.error(_fan_out_error(f"CREATE TABLE {table.name}", done, failed))
            return
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
        self.replies.ok()

    async def _undo_create(self, layout: Layout, name: str, done: Sequence[Target]) -> None:
        """Drop the physical tables a failed CREATE TABLE made (best effort)."""
        for target in done:
            physical = re.search(r"`((?:[^`]|``)*)`", target.sql)
            if physical is None:
                continue
            drop = f"{OWN_STATEMENT}DROP TABLE IF EXISTS `{physical.group(1)}`"
            try:
                conns = await self._acquire(layout, [target])
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
            self.replies.error(_fan_out_error(what, done, failed))
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
            if decision.redefines is not None:
                definition = await self._definition(layout, decision.redefines)
                if definition is not None:
                    await asyncio.to_thread(
                        catalog.set_table_definition,
                        layout.name,
                        decision.redefines,
                        definition,
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
        self.replies.ok()

    async def _check(self, layout: Layout, decision: CheckTables) -> None:
        """CHECK TABLE: each physical table's definition against the first one's (names and
        the AUTO_INCREMENT counter aside); a row per table, and one per partition that
        differs or is missing."""
        targets = [target for _, target in decision.targets]
        conns = await self._acquire(layout, targets)
        definitions: dict[str, list[tuple[Target, str | None, str]]] = {}
        try:
            for name, target in decision.targets:
                physical = target.sql.removeprefix("SHOW CREATE TABLE ")
                try:
                    result = await conns[target.partition].query(OWN_STATEMENT + target.sql)
                    text: str | None = (result.rows[0][1] or b"").decode()
                except BackendQueryError as exc:
                    text = None
                    physical = f"{physical}: {exc.message}"
                definitions.setdefault(name, []).append((target, text, physical))
        except (BackendError, ConnectionLost) as exc:
            self._lost(conns, exc, False)
            return
        rows: list[list[str | None]] = []
        for name in decision.tables:
            found = definitions.get(name, [])
            shown = f"{layout.name}.{name}"
            reference: str | None = None
            problems = []
            for target, text, physical in found:
                if text is None:
                    problems.append(f"{target.database}.{physical}")
                    continue
                normal = _normal_definition(text)
                if reference is None:
                    reference = normal
                elif normal != reference:
                    problems.append(f"{target.database}.{physical.strip('`')} differs")
            if not problems:
                rows.append([shown, "check", "status", "OK"])
            for problem in problems:
                rows.append([shown, "check", "error", f"Partition {problem}"])
        self.replies.result_set(["Table", "Op", "Msg_type", "Msg_text"], rows, frozenset())

    async def _definition(self, layout: Layout, name: str) -> str | None:
        """After ALTER TABLE: the shard's definition of the first physical table, under the
        logical name, with the DRDS clause (what SHOW CREATE TABLE shows)."""
        table = layout.tables.get(name.lower())
        if table is None:
            return None
        database, physical = table.physical_tables(layout.count)[0]
        target = Target(database, layout.partitions[database].shard, "", "")
        conns = await self._acquire(layout, [target])
        try:
            result = await conns[database].query(
                f"{OWN_STATEMENT}SHOW CREATE TABLE `{physical.replace('`', '``')}`"
            )
        except BackendQueryError:
            return None
        text = (result.rows[0][1] or b"").decode()
        text = text.replace(f"`{physical}`", f"`{table.name}`", 1)
        clause = table.rule.drds_clause()
        return f"{text} {clause}" if clause else text


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


def _normal_definition(text: str) -> str:
    """A physical table's definition without its name and AUTO_INCREMENT counter."""
    text = re.sub(r"^CREATE TABLE `(?:[^`]|``)*`", "CREATE TABLE", text)
    return re.sub(r" AUTO_INCREMENT=\d+", "", text)


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


def physical_table_names(layout: Layout) -> dict[bytes, bytes]:
    """The physical names of the tables split by TBPARTITION BY -> their logical names (the
    merged result's column definitions name the logical table, as one MariaDB would)."""
    out: dict[bytes, bytes] = {}
    for table in layout.tables.values():
        if table.rule.split_tables:
            for _, name in table.physical_tables(layout.count):
                out[name.encode()] = table.name.encode()
    return out


def _layout_of(session: Session) -> Layout:
    layout = sharded_layout(session.ctx.snapshot(), session.current_db)
    assert layout is not None
    return layout


async def _read(conn: BackendConnection) -> tuple[int, bytes]:
    return await conn.read(MAX_BACKEND_PACKET)


async def _run(conn: BackendConnection, sql: str) -> None:
    await conn.query(sql)


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


def _fan_out_error(what: str, done: Sequence[Target], failed: Sequence[_Failure]) -> SqlError:
    """One failure everywhere: the shard's error itself. Some partitions failed: the first
    failure's error number, naming every partition that failed and how many succeeded."""
    first = failed[0]
    if not done and len({(f.errno, f.message) for f in failed}) == 1:
        return sql_error_from(first.errno, first.sqlstate, first.message)
    listed = "; ".join(f"{f.target.database}: {f.errno} {f.message}" for f in failed)
    total = len(done) + len(failed)
    return sql_error_from(
        first.errno,
        first.sqlstate,
        f"{what} failed on {len(failed)} of {total} physical tables ({listed}); applied on"
        f" the other {len(done)}",
    )
