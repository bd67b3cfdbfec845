"""Backend connection pools: many client sessions over few shard connections.

One :class:`ShardPool` per shard holds every backend connection this process has open to it,
grouped by :class:`PoolKey` -- the backend account (a mirrored account is one account's on one
physical database, so only that account's sessions in that database share its connections),
the database selected, and the capabilities and character set negotiated at login (only
connections of one key are interchangeable). Two limits apply: ``pool_size`` connections per
backend account and database (whatever their capabilities), and ``max_connections`` per shard
(split between the worker processes), so that no tenant can use up the shard's own
``max_connections``.

A session leases a connection for a command and gives it back when nothing session-bound is on
it (``proxy.session.link`` decides). A connection given back stays tagged with its last owner
(*affinity*): the owner takes it back synchronously if nobody took it meanwhile, which is the
common case and costs nothing. While no session waits, a connection given back is only *parked*:
marked on the connection (its owner, the time), not entered in the idle lists -- the owner's
next statement takes it back with one attribute test instead of the lists' bookkeeping. Every
decision that looks at idle connections (a grant that cannot open a new one, the waiters, the
idle sweep, the figures, closing) first enters the parked ones, oldest first, so what they
decide is what they would have decided had each give-back been entered at once. When another
session of the same key needs it, the grant goes in this order, decided synchronously so that no
two grants race:

1. the owner's own connection, idle (``reclaim``);
2. a new connection, while the account is under ``pool_size`` and the shard under its maximum;
3. an idle connection of the same key: the session's own, else one nobody will take back
   (its session ended or moved to another login), else another session's, least recently
   used -- its last owner first saves what its next statement could still ask about
   (``Owner.surrender``: LAST_INSERT_ID(), FOUND_ROWS(), warnings...: a query, the cost of a
   hand-off), then the new owner applies its session state;
4. an idle connection is closed to make room: of the same account (other capabilities) when
   the account is at ``pool_size``, else, with the shard at its maximum, of any account;
5. otherwise the session waits, in FIFO order, at most ``wait_timeout`` seconds, and then gets
   MySQL's 1040 naming the shard and the limit -- the session goes on; other tenants do not see
   the shard's own 1040.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, cast

from auth.errors import ErrorCode, SqlError, sql_error
from proxy.backend.connection import BackendConnection, BackendError

log = logging.getLogger("shardgate.pool")


class PoolKey(NamedTuple):
    """Which connections are interchangeable: same shard, account, database and login.

    (A tuple: hashed in C, where a frozen dataclass's ``__hash__`` is a Python call -- the
    pool looks keys up on every statement.)"""

    shard: str
    host: str
    port: int
    user: str
    database: str | None
    capabilities: int
    charset: int

    @property
    def account(self) -> tuple[str, str, int, str, str | None]:
        """The backend account and database: ``pool_size`` counts its connections whatever
        capabilities and character set they were made with."""
        return (self.shard, self.host, self.port, self.user, self.database)


@dataclass(frozen=True, slots=True)
class PoolLimits:
    """A shard's pool settings (``[[shards]]`` ``pool_size``, ``max_connections``,
    ``pool_wait_timeout``, ``idle_lifetime``), ``max_connections`` already this process's
    share."""

    pool_size: int = 16
    max_connections: int = 100
    wait_timeout: float = 5.0
    idle_lifetime: float = 300.0


class Owner(Protocol):
    """A session's side of a connection it gave back (``proxy.session.link.BackendLink``)."""

    def taken(self) -> None:
        """Another session was granted the connection: ``surrender`` follows (or ``kept``)."""
        ...

    def kept(self, conn: BackendConnection) -> None:
        """The grant was abandoned before ``surrender``: ``conn`` is idle and the owner's."""
        ...

    async def surrender(self, conn: BackendConnection) -> None:
        """Another session takes ``conn``: save what the owner's next statement may ask
        about, by queries on ``conn``. Raises BackendError if the connection fails."""
        ...


class PoolExhausted(Exception):
    """No backend connection became available in time: MySQL's 1040, with the limit."""

    def __init__(self, error: SqlError) -> None:
        super().__init__(error.message)
        self.error = error


Connect = Callable[[], Awaitable[BackendConnection]]


@dataclass(slots=True)
class _Grant:
    conn: BackendConnection | None  # an idle connection taken; None: a slot to connect in
    previous: Owner | None  # the taken (or evicted) connection's last owner: surrenders first
    victim: BackendConnection | None = None  # an idle connection to close before connecting


@dataclass(slots=True)
class _Waiter:
    key: PoolKey
    owner: Owner
    future: asyncio.Future[_Grant]


class ShardPool:
    """Every backend connection of one shard in this process (see the module docstring)."""

    def __init__(self, shard: str, limits: PoolLimits) -> None:
        self.shard = shard
        self.limits = limits
        self.total = 0  # open connections plus connections being opened
        self._per_account: dict[tuple[str, str, int, str, str | None], int] = {}
        self._key_of: dict[BackendConnection, PoolKey] = {}
        # Idle connections: per key, and across keys (oldest first: dicts keep insertion
        # order, and a connection given back is inserted again), with their last owner.
        self._idle: dict[PoolKey, dict[BackendConnection, None]] = {}
        self._idle_all: dict[BackendConnection, PoolKey] = {}
        self._owner: dict[BackendConnection, Owner] = {}
        self._idle_since: dict[BackendConnection, float] = {}
        self._waiters: deque[_Waiter] = deque()
        self._retiring: set[asyncio.Task[None]] = set()  # idle connections past their lifetime
        # A connection may be parked (False: none is; set by every lazy give-back).
        self._any_parked = False
        # Counters for the metrics.
        self.waits = 0
        self.timeouts = 0
        self.evictions = 0
        self.handoffs = 0  # idle connections granted to a session other than their last

    # -- figures ----------------------------------------------------------------------------

    def figures(self) -> dict[str, int]:
        parked = sum(1 for conn in self._key_of if conn.parked_by is not None)
        return {
            "open": self.total,
            "idle": len(self._idle_all) + parked,
            "waiting": len(self._waiters),
        }

    def events(self) -> dict[str, int]:
        return {
            "wait": self.waits,
            "timeout": self.timeouts,
            "handoff": self.handoffs,
            "eviction": self.evictions,
        }

    # -- leasing ----------------------------------------------------------------------------

    def reclaim(self, conn: BackendConnection, owner: Owner) -> bool:
        """Take back ``conn``, which ``owner`` gave back, if it is still idle and alive."""
        # (the hot path: once per statement of every session)
        if conn.parked_by is owner:
            conn.parked_by = None
            if conn.broken:
                self._forget(conn)
                self._dispatch()
                return False
            return True
        if self._owner.get(conn) is not owner:
            return False
        key = self._idle_all.pop(conn, None)
        if key is None:
            return False
        idle = self._idle[key]
        del idle[conn]
        if not idle:
            del self._idle[key]
        self._idle_since.pop(conn, None)
        if conn.broken:
            self._forget(conn)
            self._dispatch()
            return False
        return True

    async def acquire(
        self, key: PoolKey, owner: Owner, connect: Connect
    ) -> tuple[BackendConnection, bool]:
        """A connection of ``key`` for ``owner`` and whether it is new (``connect`` made it).
        Raises PoolExhausted after ``wait_timeout``, BackendError if connecting fails."""
        while True:
            grant = self._grant(key, owner)
            if grant is None:
                grant = await self._wait(key, owner)
            if grant.conn is None:
                # Shielded: a session that stops waiting (KILL, its client gone) must not free
                # the slot while its connection may still be opening (or a victim closing) on
                # the shard; the slot is freed once that is over.
                opening = asyncio.ensure_future(self._open(grant, connect))
                try:
                    conn = await asyncio.shield(opening)
                except asyncio.CancelledError:
                    opening.add_done_callback(functools.partial(self._opened_late, key))
                    raise
                except BaseException:
                    self._release_slot(key)
                    raise
                self._key_of[conn] = key
                return conn, True
            conn = grant.conn
            if grant.previous is None or grant.previous is owner:
                return conn, False
            try:
                await grant.previous.surrender(conn)
            except BackendError:
                conn.broken = True
            except BaseException:
                self.discard(conn)
                raise
            if not conn.broken:
                return conn, False
            self.discard(conn)

    async def _open(self, grant: _Grant, connect: Connect) -> BackendConnection:
        if grant.victim is not None:
            await self._evict(grant.victim, grant.previous)
        return await connect()

    def _opened_late(self, key: PoolKey, opening: asyncio.Future[BackendConnection]) -> None:
        """A connection opened for a session that stopped waiting: closed, and its slot
        freed once the shard has ended it."""
        if opening.cancelled() or opening.exception() is not None:
            self._release_slot(key)
            return
        conn = opening.result()
        self._key_of[conn] = key
        self.discard(conn)

    async def _evict(self, victim: BackendConnection, previous: Owner | None) -> None:
        """Close an idle connection of another key (its slot is already this grant's), its
        last owner having saved what it needs from it first."""
        try:
            if previous is not None:
                await previous.surrender(victim)
        except BackendError:
            pass
        finally:
            await victim.retired()

    def release(self, conn: BackendConnection, owner: Owner) -> None:
        """``owner`` gives ``conn`` back; nothing session-bound is on it."""
        key = self._key_of.get(conn)
        if key is None:  # not this pool's (a reload moved the shard): just close it
            conn.retire()
            return
        if conn.broken:
            self.discard(conn)
            return
        if not self._waiters:
            # Parked (see the module docstring): entered among the idle ones when needed.
            conn.parked_by = owner
            conn.parked_at = time.monotonic()
            self._any_parked = True
            return
        self._idle_in(conn, key, owner, time.monotonic())
        self._dispatch()

    def _idle_in(self, conn: BackendConnection, key: PoolKey, owner: Owner, since: float) -> None:
        """Enter ``conn`` among the idle connections (the newest), ``owner``'s."""
        self._owner[conn] = owner
        self._idle_since[conn] = since
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = {}
        idle[conn] = None
        self._idle_all[conn] = key

    def _unpark(self) -> None:
        """Enter the parked connections among the idle ones, in the order they were given
        back (the idle ones keep their order: oldest first)."""
        if not self._any_parked:
            return
        self._any_parked = False
        parked = [conn for conn in self._key_of if conn.parked_by is not None]
        if not parked:
            return
        parked.sort(key=_parked_at)
        newest = max(self._idle_since.values(), default=-1.0)
        for conn in parked:
            owner, conn.parked_by = conn.parked_by, None
            self._idle_in(conn, self._key_of[conn], cast(Owner, owner), conn.parked_at)
        if parked[0].parked_at < newest:  # given back before some of the idle ones
            since = self._idle_since
            self._idle_all = dict(
                sorted(self._idle_all.items(), key=lambda kv: since.get(kv[0], 0.0))
            )
            for key, idle in self._idle.items():
                self._idle[key] = dict.fromkeys(sorted(idle, key=lambda c: since.get(c, 0.0)))

    def is_idle(self, conn: BackendConnection) -> bool:
        return conn in self._idle_all or conn.parked_by is not None

    def disown(self, conn: BackendConnection, owner: Owner) -> None:
        """``owner`` is gone: ``conn`` (idle) no longer needs to surrender anything."""
        if conn.parked_by is not None:
            self._unpark()
        if self._owner.get(conn) is owner:
            del self._owner[conn]

    def discard(self, conn: BackendConnection) -> None:
        """``conn`` is closed or must be (broken, session state that cannot be handed on).
        Its slot is free once the shard has ended its session (``BackendConnection.retire``),
        so the shard never counts more than ``max_connections`` of this pool's."""
        conn.parked_by = None
        if conn in self._idle_all:
            self._unidle(conn)
        self._owner.pop(conn, None)
        if conn not in self._key_of:
            conn.retire()
            return
        conn.retire(functools.partial(self._gone, conn))

    def _gone(self, conn: BackendConnection) -> None:
        if self._forget(conn):
            self._dispatch()

    def sweep(self, now: float) -> None:
        """Close connections idle longer than ``idle_lifetime`` and those the shard closed."""
        limit = now - self.limits.idle_lifetime
        if self._any_parked and any(
            conn.parked_by is not None and (conn.broken or conn.parked_at < limit)
            for conn in self._key_of
        ):
            self._unpark()
        stale = [
            conn
            for conn in self._idle_all
            if conn.broken or self._idle_since.get(conn, now) < limit
        ]
        for conn in stale:
            owner = self._owner.get(conn)
            if owner is None or conn.broken:
                self.discard(conn)
                continue
            # Its last owner may still ask about its last statement (LAST_INSERT_ID(),
            # warnings...): saved first, as when another session takes it. Counted until
            # the shard has closed it.
            self._unidle(conn)
            del self._owner[conn]
            owner.taken()
            task = asyncio.get_running_loop().create_task(self._retire_from(conn, owner))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire_from(self, conn: BackendConnection, owner: Owner) -> None:
        try:
            await owner.surrender(conn)
        except BackendError:
            pass
        finally:
            self.discard(conn)

    def close(self) -> None:
        """Close every idle connection (leased ones close with their sessions)."""
        self._unpark()
        for conn in list(self._idle_all):
            self.discard(conn)

    # -- the grant, decided synchronously -------------------------------------------------

    def _grant(self, key: PoolKey, owner: Owner) -> _Grant | None:
        limits = self.limits
        account = key.account
        count = self._per_account.get(account, 0)
        if count < limits.pool_size and self.total < limits.max_connections:
            self._take_slot(key)
            return _Grant(None, None)
        self._unpark()
        idle = self._idle.get(key)
        while idle:
            conn = self._pick(idle, owner)
            previous = self._owner.pop(conn, None)
            self._unidle(conn)
            if conn.broken:
                self._forget(conn)
                continue
            if previous is not None and previous is not owner:
                self.handoffs += 1
                previous.taken()
            return _Grant(conn, previous)
        # Make room by closing the oldest idle connection: of the same account (made with other
        # capabilities or character set) when the account is at pool_size, else of any.
        victim = next(
            (
                conn
                for conn, other in self._idle_all.items()
                if count < limits.pool_size or other.account == account
            ),
            None,
        )
        if victim is None:
            return None
        self.evictions += 1
        previous = self._owner.pop(victim, None)
        self._unidle(victim)
        self._forget(victim)
        self._take_slot(key)
        if victim.broken:
            return _Grant(None, None)
        if previous is not None:
            previous.taken()
        return _Grant(None, previous, victim)

    def _pick(self, idle: dict[BackendConnection, None], owner: Owner) -> BackendConnection:
        """Which idle connection of a key a grant takes: ``owner``'s own, else one nobody
        will take back (its session ended or moved on: no hand-off, no diagnostics query),
        else the least recently used -- another session's, which it will miss."""
        owners = self._owner
        oldest = None
        for conn in idle:
            previous = owners.get(conn)
            if previous is None or previous is owner:
                return conn
            if oldest is None:
                oldest = conn
        assert oldest is not None
        return oldest

    async def _wait(self, key: PoolKey, owner: Owner) -> _Grant:
        future: asyncio.Future[_Grant] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(key, owner, future)
        self._waiters.append(waiter)
        self.waits += 1
        started = time.monotonic()
        try:
            done, _ = await asyncio.wait((future,), timeout=self.limits.wait_timeout)
        except BaseException:
            self._abandon(waiter)
            raise
        if done:
            return future.result()
        self._abandon(waiter)
        self.timeouts += 1
        raise PoolExhausted(
            sql_error(
                ErrorCode.CON_COUNT,
                f"Too many connections: shard '{self.shard}' has all its "
                f"{self.limits.max_connections} backend connections of this proxy process "
                f"(or the {self.limits.pool_size} of this account and database) busy; "
                f"waited {time.monotonic() - started:.1f} s",
            )
        )

    def _abandon(self, waiter: _Waiter) -> None:
        """The waiter stopped waiting (timeout, cancelled): give back what it was granted."""
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)
        future = waiter.future
        if future.done() and not future.cancelled():
            grant = future.result()
            if grant.victim is not None:
                grant.victim.retire()
                if grant.previous is not None:
                    grant.previous.kept(grant.victim)
            if grant.conn is None:
                self._release_slot(waiter.key)
            elif grant.previous is not None:
                self.release(grant.conn, grant.previous)  # back, still its owner's
                if grant.previous is not waiter.owner:
                    grant.previous.kept(grant.conn)
            else:
                self.discard(grant.conn)
        else:
            future.cancel()

    def _dispatch(self) -> None:
        """Grant what can be granted to the waiters, oldest first."""
        if not self._waiters:
            return
        self._unpark()
        for waiter in list(self._waiters):
            if waiter.future.done():
                continue
            if self.total >= self.limits.max_connections and not self._idle_all:
                return  # nothing anyone could be given
            grant = self._grant(waiter.key, waiter.owner)
            if grant is not None:
                self._waiters.remove(waiter)
                waiter.future.set_result(grant)

    # -- bookkeeping ----------------------------------------------------------------------

    def _take_slot(self, key: PoolKey) -> None:
        self.total += 1
        account = key.account
        self._per_account[account] = self._per_account.get(account, 0) + 1

    def _release_slot(self, key: PoolKey) -> None:
        self._count_down(key)
        self._dispatch()

    def _count_down(self, key: PoolKey) -> None:
        self.total -= 1
        account = key.account
        left = self._per_account.get(account, 1) - 1
        if left:
            self._per_account[account] = left
        else:
            self._per_account.pop(account, None)

    def _unidle(self, conn: BackendConnection) -> None:
        key = self._idle_all.pop(conn)
        idle = self._idle[key]
        del idle[conn]
        if not idle:
            del self._idle[key]
        self._idle_since.pop(conn, None)

    def _forget(self, conn: BackendConnection) -> bool:
        """Stop counting ``conn``; whether it was counted."""
        self._owner.pop(conn, None)
        key = self._key_of.pop(conn, None)
        if key is None:
            return False
        self._count_down(key)
        return True


def _parked_at(conn: BackendConnection) -> float:
    return conn.parked_at


class Pools:
    """The pools of every configured shard (``limits`` gives a shard's current settings)."""

    def __init__(self, limits: Callable[[str], PoolLimits]) -> None:
        self._limits = limits
        self._pools: dict[str, ShardPool] = {}

    def shard(self, name: str) -> ShardPool:
        pool = self._pools.get(name)
        if pool is None:
            pool = self._pools[name] = ShardPool(name, self._limits(name))
        return pool

    def all(self) -> list[ShardPool]:
        return list(self._pools.values())

    def reconfigure(self) -> None:
        """A reload changed the settings: new limits apply to the next grants."""
        for name, pool in self._pools.items():
            pool.limits = self._limits(name)
            pool._dispatch()

    def sweep(self) -> None:
        now = time.monotonic()
        for pool in self._pools.values():
            pool.sweep(now)

    def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
