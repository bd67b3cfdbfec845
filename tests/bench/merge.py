"""Benchmark of the cross-partition merge (issue 16): a scatter ORDER BY, streamed.

    .venv/bin/python -m tests.bench.merge --rows 1000000

Starts a throwaway MariaDB, loads ``--rows`` rows into each of two partition databases and
the same ``2 x rows`` into one plain database, then reads ``SELECT ... ORDER BY`` in full:
directly from the plain table, and from the two partitions through ``plan_select`` +
``merge_batches`` (in this process, on one event loop, as the proxy's sharded executor does;
it writes each batch to the client at once). Prints the wall and CPU time of both and the
proxy process's resident memory before and at its peak during the merge: memory stays flat
however many rows stream through. Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from pathlib import Path

import pymysql

from proxy.backend.connection import BackendConnection, BackendTarget
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint
from proxy.merge import MergePlan, merge_batches, plan_select, result_payloads
from proxy.merge.partition import ResultPayloads

QUERY = "SELECT id, name, amount, created FROM t ORDER BY name, id"


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() // 1024


def _load(endpoint: ShardEndpoint, rows: int, skewed: bool) -> None:
    conn = pymysql.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        password=endpoint.password,
        autocommit=True,
    )
    table = (
        "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40) COLLATE utf8mb4_general_ci, "
        "amount DECIMAL(12,2), created DATETIME, KEY (name, id))"
    )
    with conn.cursor() as cur:
        for db, start, step in (("mb_all", 1, 1), ("mb_p0", 1, 2), ("mb_p1", 2, 2)):
            count = 2 * rows if db == "mb_all" else rows
            cur.execute(f"DROP DATABASE IF EXISTS {db}")
            cur.execute(f"CREATE DATABASE {db}")
            cur.execute(f"USE {db}")
            cur.execute(table)
            # skewed: every name of partition 0 sorts before those of partition 1, which the
            # merge then holds back (TCP) while it sends all of partition 0.
            # (odd ids are partition 0's)
            prefix = "IF(id MOD 2, 'a-', 'b-')" if skewed else "'name-'"
            cur.execute(
                f"INSERT INTO t SELECT id, CONCAT({prefix}, MD5(id MOD 50000)), (id MOD 997) / 7, "
                "'2024-01-01' + INTERVAL (id MOD 100000) MINUTE FROM "
                f"(SELECT {start} + (seq - 1) * {step} AS id FROM seq_1_to_{count}) s"
            )
    conn.close()


def _answer(conn: BackendConnection, sql: str) -> ResultPayloads:
    """The statement sent, its answer read as the proxy's sharded executor reads it."""
    conn.send(b"\x03" + sql.encode())
    return result_payloads(conn, capabilities=conn.capabilities, max_packet=1 << 24)


async def _run(endpoint: ShardEndpoint) -> None:
    def target(db: str) -> BackendTarget:
        return BackendTarget("bench", endpoint.host, endpoint.port, endpoint.user,
                             endpoint.password, db)  # fmt: skip

    plain = await BackendConnection.connect(target("mb_all"), charset=45)
    parts = [await BackendConnection.connect(target(f"mb_p{i}"), charset=45) for i in (0, 1)]
    plan = plan_select(QUERY)
    assert isinstance(plan, MergePlan), plan

    t0, c0 = time.perf_counter(), time.process_time()
    direct = 0
    async for _ in _answer(plain, QUERY):
        direct += 1
    t_direct, c_direct = time.perf_counter() - t0, time.process_time() - c0

    base = peak = _rss_kib()
    t0, c0 = time.perf_counter(), time.process_time()
    merged = 0
    sampled = 0
    merge = merge_batches(
        plan, [_answer(c, plan.sql) for c in parts], capabilities=plain.capabilities
    )
    async for batch in merge:
        merged += len(batch)
        if merged - sampled >= 20000:
            sampled = merged
            peak = max(peak, _rss_kib())
    t_merged, c_merged = time.perf_counter() - t0, time.process_time() - c0
    peak = max(peak, _rss_kib())
    assert merged == direct, (merged, direct)
    print(f"packets: {direct}")
    # CPU time of this process: what the reading costs the proxy, far less noisy than the wall
    # time on a machine shared with other work.
    micros = 1e6 / direct
    print(
        f"direct from one MariaDB: {t_direct:.2f} s"
        f" (CPU {c_direct:.2f} s, {c_direct * micros:.2f} µs per row)"
    )
    print(
        f"merged from 2 partitions: {t_merged:.2f} s ({t_merged / t_direct:.2f}x)"
        f" (CPU {c_merged:.2f} s, {c_merged / c_direct:.2f}x, {c_merged * micros:.2f} µs per row)"
    )
    print(f"proxy RSS: {base} KiB before, {peak} KiB peak (+{peak - base} KiB)")
    for c in (plain, *parts):
        await c.quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per partition")
    parser.add_argument(
        "--skewed", action="store_true", help="partition 0's rows all sort before partition 1's"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="merge-bench-") as tmp:
        server = LocalMariaDB(Path(tmp) / "db")
        endpoint = server.start()
        try:
            t0 = time.perf_counter()
            _load(endpoint, args.rows, args.skewed)
            print(
                f"loaded 3 x {args.rows} rows in {time.perf_counter() - t0:.1f} s", file=sys.stderr
            )
            asyncio.run(_run(endpoint))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
