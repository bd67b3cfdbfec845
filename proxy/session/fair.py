"""Analysis threads shared fairly between tenants.

Statements too long to analyse on the event loop, or whose shape was never parsed, are analysed
in threads. With one first-come-first-served queue, a tenant sending big statements from many
connections would queue every other tenant's first statement of a new shape behind all of its
own. Here each tenant (key) has at most one analysis running at a time, its others waiting in
its own FIFO turn, while different tenants' analyses run side by side in their own threads and
share the interpreter by its switch interval: another tenant's analysis starts at once and
advances at its share of the CPU, however many statements one tenant has in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# Statements up to this many bytes are analysed on the event loop when their analysis is cached
# (no sqlglot parse); longer ones, and every cache miss, are analysed in a worker thread -- and
# longer ones are planned and routed there too (their routing reads them whole).
INLINE_ANALYSIS_LIMIT = 16 * 1024


class FairPool:
    """``await run(key, fn, *args)``: ``fn(*args)`` in a thread, one at a time per ``key``."""

    def __init__(self, threads: int, name: str = "shardgate-analysis") -> None:
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=name)
        # key -> (its turn, how many analyses of it are running or waiting)
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}

    def waiting(self, key: str) -> int:
        """Analyses of ``key`` running or waiting for their turn."""
        entry = self._turns.get(key)
        return 0 if entry is None else entry[1]

    async def run(self, key: str, fn: Callable[..., T], *args: object) -> T:
        lock, users = self._turns.get(key) or (asyncio.Lock(), 0)
        self._turns[key] = (lock, users + 1)
        try:
            await lock.acquire()  # asyncio.Lock wakes its waiters in order
        except BaseException:
            self._leave(key, release=False)
            raise
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        try:
            result = await asyncio.shield(future)
        except asyncio.CancelledError:
            if future.done():
                self._leave(key, release=True)
            else:
                # The caller is gone, the thread is not: the tenant's turn lasts until it is
                # done (else disconnecting mid-analysis would run analyses side by side).
                future.add_done_callback(lambda done: self._finished(key, done))
            raise
        except BaseException:
            self._leave(key, release=True)
            raise
        self._leave(key, release=True)
        return result

    def _finished(self, key: str, future: asyncio.Future[T]) -> None:
        if not future.cancelled():
            future.exception()  # retrieved: nobody waits for it any more
        self._leave(key, release=True)

    def _leave(self, key: str, release: bool) -> None:
        lock, users = self._turns[key]
        if release:
            lock.release()
        if users == 1:
            del self._turns[key]
        else:
            self._turns[key] = (lock, users - 1)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
