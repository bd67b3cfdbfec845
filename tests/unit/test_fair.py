"""FairPool: one analysis at a time per tenant, tenants side by side, turns kept in order and
held until the thread is done even when its caller is cancelled."""

from __future__ import annotations

import asyncio
import threading

from proxy.session.fair import FairPool


def test_one_at_a_time_per_key_and_keys_side_by_side() -> None:
    async def main() -> None:
        pool = FairPool(4)
        gate = threading.Event()
        running: dict[str, int] = {"a": 0, "b": 0}
        most: dict[str, int] = {"a": 0, "b": 0}
        order: list[str] = []
        lock = threading.Lock()

        def job(key: str, name: str, wait: bool) -> str:
            with lock:
                running[key] += 1
                most[key] = max(most[key], running[key])
            if wait:
                gate.wait(10)
            with lock:
                running[key] -= 1
                order.append(name)
            return name

        a_jobs = [asyncio.ensure_future(pool.run("a", job, "a", f"a{i}", True)) for i in range(3)]
        while pool.waiting("a") < 3:
            await asyncio.sleep(0.001)
        # "a" holds one thread, blocked; "b" gets another at once.
        assert await pool.run("b", job, "b", "b0", False) == "b0"
        assert order == ["b0"]
        gate.set()
        assert await asyncio.gather(*a_jobs) == ["a0", "a1", "a2"]
        assert order == ["b0", "a0", "a1", "a2"]  # in their turn's order
        assert most == {"a": 1, "b": 1}
        assert pool.waiting("a") == 0 and pool.waiting("b") == 0
        pool.shutdown()

    asyncio.run(main())


def test_a_cancelled_caller_keeps_its_turn_until_the_thread_is_done() -> None:
    async def main() -> None:
        pool = FairPool(4)
        gate = threading.Event()
        started = threading.Event()
        overlapping: list[bool] = []

        def slow() -> int:
            started.set()
            gate.wait(10)
            return 1

        def quick() -> int:
            overlapping.append(not gate.is_set())
            return 2

        first = asyncio.ensure_future(pool.run("a", slow))
        while not started.is_set():
            await asyncio.sleep(0.001)
        first.cancel()
        second = asyncio.ensure_future(pool.run("a", quick))
        await asyncio.sleep(0.05)
        assert not second.done()  # the cancelled caller's thread still runs: "a" waits
        gate.set()
        assert await second == 2
        assert overlapping == [False]
        assert first.cancelled()
        assert pool.waiting("a") == 0
        pool.shutdown()

    asyncio.run(main())
