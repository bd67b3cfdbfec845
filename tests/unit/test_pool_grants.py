"""The pool's grant decisions (proxy/backend/pool.py), on connection objects that never
connected: which connection a session gets, when it waits, and that no slot leaks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

import pytest

from proxy.backend.connection import BackendConnection, BackendTarget
from proxy.backend.pool import Connect, PoolExhausted, PoolKey, PoolLimits, ShardPool


def _key(user: str) -> PoolKey:
    return PoolKey("s0", "127.0.0.1", 3306, user, "db", 0, 45)


class _Owner:
    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[str] = []

    def taken(self) -> None:
        self.events.append("taken")

    def kept(self, conn: BackendConnection) -> None:
        self.events.append("kept")

    async def surrender(self, conn: BackendConnection) -> None:
        self.events.append("surrender")


def _connector(made: list[BackendConnection], user: str) -> Connect:
    async def connect() -> BackendConnection:
        conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, user, "", "db"))
        made.append(conn)
        return conn

    return connect


def _run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_the_grant_order_reclaim_connect_hand_off_evict_wait() -> None:
    async def scenario() -> None:
        pool = ShardPool("s0", PoolLimits(pool_size=2, max_connections=3, wait_timeout=0.2))
        made: list[BackendConnection] = []
        a, b, c, d = (_Owner(n) for n in "abcd")
        connect_u = _connector(made, "u")
        # Under pool_size: new connections.
        ca, fresh = await pool.acquire(_key("u"), a, connect_u)
        assert fresh and pool.total == 1
        cb, fresh = await pool.acquire(_key("u"), b, connect_u)
        assert fresh and pool.total == 2
        # Given back: the owner takes its own back synchronously.
        pool.release(ca, a)
        assert pool.reclaim(ca, a) and not pool.reclaim(ca, a)
        pool.release(ca, a)
        assert not pool.reclaim(ca, b)  # not b's
        # The key is at pool_size: c gets a's idle connection, a surrenders first.
        cc, fresh = await pool.acquire(_key("u"), c, connect_u)
        assert cc is ca and not fresh
        assert a.events == ["taken", "surrender"] and pool.handoffs == 1
        assert not pool.reclaim(ca, a)
        # Another key: the shard has room for one more.
        connect_v = _connector(made, "v")
        cd, fresh = await pool.acquire(_key("v"), d, connect_v)
        assert fresh and pool.total == 3
        # Shard full, nothing idle: a waits, and gets 1040 after wait_timeout.
        with pytest.raises(PoolExhausted) as caught:
            await pool.acquire(_key("v"), a, connect_v)
        assert caught.value.error.errno == 1040 and "shard 's0'" in caught.value.error.message
        assert pool.timeouts == 1 and pool.figures()["waiting"] == 0
        # Shard full, an idle connection of another key: it is evicted (its owner saving its
        # values first) and a new one made in its place.
        pool.release(cb, b)
        ce, fresh = await pool.acquire(_key("v"), a, connect_v)
        assert fresh and cb.broken and pool.evictions == 1 and pool.total == 3
        assert b.events == ["taken", "surrender"]
        # A waiter is granted what is given back, in FIFO order.
        waiter = asyncio.ensure_future(pool.acquire(_key("u"), b, connect_u))
        await asyncio.sleep(0)
        assert pool.figures()["waiting"] == 1
        pool.release(cc, c)
        got, fresh = await waiter
        assert got is cc and not fresh and c.events == ["taken", "surrender"]
        # Broken connections are forgotten, their slots free again.
        for conn, owner in ((got, b), (cd, d), (ce, a)):
            conn.broken = True
            pool.release(conn, owner)
        assert pool.total == 0 and pool.figures() == {"open": 0, "idle": 0, "waiting": 0}

    _run(scenario())


def test_a_waiter_that_gives_up_gives_its_grant_back() -> None:
    async def scenario() -> None:
        pool = ShardPool("s0", PoolLimits(pool_size=1, max_connections=1, wait_timeout=5))
        made: list[BackendConnection] = []
        a, b = _Owner("a"), _Owner("b")
        connect = _connector(made, "u")
        conn, _ = await pool.acquire(_key("u"), a, connect)
        waiter = asyncio.ensure_future(pool.acquire(_key("u"), b, connect))
        await asyncio.sleep(0)
        pool.release(conn, a)  # granted to b synchronously ...
        waiter.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert a.events == ["taken", "kept"]
        assert pool.reclaim(conn, a)  # back with its owner, nothing lost
        pool.discard(conn)
        assert pool.total == 0

    _run(scenario())


def test_idle_connections_past_their_lifetime_are_closed() -> None:
    async def scenario() -> None:
        pool = ShardPool("s0", PoolLimits(idle_lifetime=10))
        a = _Owner("a")
        conn, _ = await pool.acquire(_key("u"), a, _connector([], "u"))
        pool.release(conn, a)
        pool.sweep(time.monotonic() + 5)
        assert pool.total == 1
        pool.sweep(time.monotonic() + 11)
        # Its last owner saves what its next statement may ask about first.
        assert a.events == ["taken"] and pool.total == 1
        for _ in range(3):
            await asyncio.sleep(0)
        assert a.events == ["taken", "surrender"]
        assert pool.total == 0 and conn.broken

    _run(scenario())


def test_a_session_that_stops_waiting_while_its_connection_opens_keeps_the_slot_counted() -> None:
    """KILL (or the client gone) while the session's new connection is being opened: the slot
    stays counted until the connection is open and closed again, so the shard never has more
    than max_connections of the pool's."""

    async def scenario() -> None:
        pool = ShardPool("s0", PoolLimits(pool_size=1, max_connections=1, wait_timeout=5))
        opened = asyncio.Event()
        made: list[BackendConnection] = []

        async def slow_connect() -> BackendConnection:
            await opened.wait()
            conn = BackendConnection(BackendTarget("s0", "127.0.0.1", 3306, "u", "", "db"))
            made.append(conn)
            return conn

        a, b = _Owner("a"), _Owner("b")
        leasing = asyncio.ensure_future(pool.acquire(_key("u"), a, slow_connect))
        await asyncio.sleep(0)
        leasing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leasing
        assert pool.total == 1  # still opening on the shard
        waiter = asyncio.ensure_future(pool.acquire(_key("u"), b, _connector(made, "u")))
        await asyncio.sleep(0)
        assert not waiter.done() and pool.figures()["waiting"] == 1
        opened.set()  # the connection opens, and is closed at once: b gets the slot
        conn, fresh = await waiter
        assert fresh and made[0].broken and conn is made[1] and pool.total == 1

    _run(scenario())


def test_a_connection_given_back_while_nobody_waits_is_parked_yet_seen_by_every_decision() -> None:
    """Given back with no session waiting, a connection is only marked (parked): its owner
    takes it back with one test, and the grants, the figures, the statement closes and
    closing the pool see it as the idle connection it is, oldest first."""

    async def scenario() -> None:
        pool = ShardPool("s0", PoolLimits(pool_size=2, max_connections=2, wait_timeout=0.2))
        made: list[BackendConnection] = []
        a, b, c = _Owner("a"), _Owner("b"), _Owner("c")
        connect = _connector(made, "u")
        ca, _ = await pool.acquire(_key("u"), a, connect)
        cb, _ = await pool.acquire(_key("u"), b, connect)
        pool.release(ca, a)
        assert ca.parked_by is a and pool.is_idle(ca) and not pool.is_idle(cb)
        assert pool.figures() == {"open": 2, "idle": 1, "waiting": 0}
        assert not pool.reclaim(ca, b) and pool.reclaim(ca, a) and ca.parked_by is None
        assert pool.figures()["idle"] == 0
        # Both given back, a's first: at pool_size, c is granted the older one, its owner
        # saving its values first; b's stays b's.
        pool.release(ca, a)
        pool.release(cb, b)
        got, fresh = await pool.acquire(_key("u"), c, connect)
        assert got is ca and not fresh and a.events == ["taken", "surrender"] and not b.events
        assert not pool.reclaim(ca, a) and pool.reclaim(cb, b)
        # Given back while a session waits: entered at once and granted to the waiter.
        waiter = asyncio.ensure_future(pool.acquire(_key("u"), a, connect))
        await asyncio.sleep(0)
        assert pool.figures()["waiting"] == 1
        pool.release(cb, b)
        assert cb.parked_by is None
        got, fresh = await waiter
        assert got is cb and b.events == ["taken", "surrender"]
        # Closing the pool closes the parked ones too.
        pool.release(ca, c)
        pool.release(cb, a)
        pool.close()
        assert ca.broken and cb.broken and pool.total == 0

    _run(scenario())


def test_a_grant_at_pool_size_takes_an_idle_connection_nobody_will_take_back_first() -> None:
    """At pool_size, an idle connection whose session ended (disowned) or the granted
    session's own is taken before another live session's, even an older one: that session
    keeps its connection, and nothing is handed off (no diagnostics query)."""

    async def scenario() -> None:
        pool = ShardPool("s0", PoolLimits(pool_size=3, max_connections=3, wait_timeout=0.2))
        made: list[BackendConnection] = []
        a, b, c, d = (_Owner(n) for n in "abcd")
        connect = _connector(made, "u")
        ca, _ = await pool.acquire(_key("u"), a, connect)
        cb, _ = await pool.acquire(_key("u"), b, connect)
        cc, _ = await pool.acquire(_key("u"), c, connect)
        pool.release(ca, a)  # a's, the oldest idle one
        pool.release(cb, b)
        pool.disown(cb, b)  # b's session ended
        got, fresh = await pool.acquire(_key("u"), d, connect)
        assert got is cb and not fresh and pool.handoffs == 0 and not a.events
        assert pool.reclaim(ca, a)  # a finds its own
        # A session granted from the lists while its own connection is idle gets its own.
        pool.release(ca, a)
        pool.release(cc, c)
        got, fresh = await pool.acquire(_key("u"), c, connect)
        assert got is cc and pool.handoffs == 0 and not a.events and not c.events
        # Only another live session's remains: handed off, oldest first.
        pool.release(got, c)
        pool.release(cb, d)
        got, fresh = await pool.acquire(_key("u"), b, connect)
        assert got is ca and pool.handoffs == 1 and a.events == ["taken", "surrender"]
        pool.close()

    _run(scenario())
