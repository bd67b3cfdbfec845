"""A scatter ORDER BY end to end (issue 16): a real client reading 2 x N merged rows through the
proxy against the same client reading the 2 x N rows from one MariaDB.

    .venv/bin/python -m tests.bench.merge_e2e --rows 1000000 [--rounds 3]

Starts two throwaway MariaDB shards and shardgate (a snapshot of the code, as the other
benchmarks run it), creates the sharded database ``mergedb`` (D = 2: one physical database on
each shard) with ``t ... DBPARTITION BY HASH(id)`` through the proxy, loads ``--rows`` rows
straight into each physical table (odd ids on one, even on the other) and the same 2 x N rows
into a plain table on the first shard, then times ``mariadb --quick --batch`` reading
``SELECT id, name, amount, created FROM t ORDER BY name, id`` in full to /dev/null: directly
from the plain table and through the proxy from the sharded one (the proxy merges the two
partitions' sorted streams), alternating, ``--rounds`` times. Prints the wall times, their
ratio, the proxy's CPU time and its resident memory before and at its peak during the
merge. Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pymysql

from auth.catalog import Catalog
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint, free_port
from proxy.manage.provision import create_sharded_database
from proxy.ops.config import load_config
from tests.bench.sharded import _config
from tests.bench.stack import (
    HOST,
    Managed,
    cpu_seconds,
    rss_kib,
    shardgate_command,
    snapshot_code,
    wait_for_greeting,
)

QUERY = "SELECT id, name, amount, created FROM t ORDER BY name, id"
DATABASE = "mergedb"
PASSWORD = "Bench#Merge1"
TABLE = (
    "CREATE TABLE t (id INT PRIMARY KEY, name VARCHAR(40) COLLATE utf8mb4_general_ci, "
    "amount DECIMAL(12,2), created DATETIME, KEY (name, id))"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _fill(endpoint: ShardEndpoint, database: str, start: int, step: int, count: int) -> None:
    """``count`` rows with ids ``start``, ``start + step``, ... into ``database``.t (made
    first when ``create``), as tests/bench/merge.py loads them."""
    conn = pymysql.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        password=endpoint.password,
        database=database,
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO t SELECT id, CONCAT('name-', MD5(id MOD 50000)), (id MOD 997) / 7,"
                " '2024-01-01' + INTERVAL (id MOD 100000) MINUTE FROM"
                f" (SELECT {start} + (seq - 1) * {step} AS id FROM seq_1_to_{count}) s"
            )
    finally:
        conn.close()


def _sample_rss(pid: int, stop: threading.Event, peaks: list[int]) -> None:
    """Add ``pid``'s resident memory to ``peaks`` five times a second until ``stop``."""
    while not stop.wait(0.2):
        peaks.append(rss_kib(pid))


def _read(args: list[str]) -> float:
    """Seconds the ``mariadb`` client takes to read the query's whole answer."""
    started = time.perf_counter()
    done = subprocess.run(
        ["mariadb", "--quick", "--batch", "--skip-column-names", *args, "-e", QUERY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode(errors="replace"))
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per partition")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="merge-e2e-") as tmp:
        work = Path(tmp)
        servers = [LocalMariaDB(work / f"shard{i}") for i in (0, 1)]
        proxy: Managed | None = None
        try:
            log("starting two throwaway MariaDB shards")
            endpoints = [server.start(timeout=120) for server in servers]
            port = free_port()
            config_path = work / "shardgate.toml"
            _config(config_path, port, endpoints)
            config = load_config(config_path)
            catalog = Catalog.open(config.catalog.url, config.base_dir)
            try:
                asyncio.run(
                    create_sharded_database(
                        config, catalog, DATABASE, ["s0", "s1"], 2, PASSWORD, PASSWORD
                    )
                )
            finally:
                catalog.close()
            code_dir = snapshot_code(work / "code")
            log_path = work / "shardgate.log"
            log_file = log_path.open("ab")
            proc = subprocess.Popen(
                shardgate_command(config_path, "WARNING", code_dir),
                cwd=code_dir,
                env={"PYTHONPATH": str(code_dir), "PATH": "/usr/bin:/bin"},
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            proxy = Managed("shardgate", proc, log_path, log_file)
            wait_for_greeting(port, 600, proc)
            client = pymysql.connect(
                host=HOST, port=port, user=DATABASE, password=PASSWORD, database=DATABASE
            )
            with client.cursor() as cur:
                cur.execute(TABLE + " DBPARTITION BY HASH(id)")
            client.close()
            admin = pymysql.connect(
                host=endpoints[0].host,
                port=endpoints[0].port,
                user=endpoints[0].user,
                password=endpoints[0].password,
                autocommit=True,
            )
            with admin.cursor() as cur:
                cur.execute("CREATE DATABASE mb_all")
                cur.execute(f"CREATE TABLE mb_all.{TABLE.removeprefix('CREATE TABLE ')}")
            admin.close()
            log(f"loading 2 x {args.rows} rows into the partitions and one plain table")
            t0 = time.perf_counter()
            # HASH(id) over D = 2: even ids on physical database 0 (s0), odd on 1 (s1).
            _fill(endpoints[0], f"{DATABASE}_0000", 2, 2, args.rows)
            _fill(endpoints[1], f"{DATABASE}_0001", 1, 2, args.rows)
            _fill(endpoints[0], "mb_all", 1, 1, 2 * args.rows)
            log(f"loaded in {time.perf_counter() - t0:.1f} s")
            s0 = endpoints[0]
            direct = [
                "-h",
                s0.host,
                "-P",
                str(s0.port),
                "-u",
                s0.user,
                f"-p{s0.password}",
                "mb_all",
            ]
            proxied = ["-h", HOST, "-P", str(port), "-u", DATABASE, f"-p{PASSWORD}", DATABASE]
            _read(proxied)  # warm-up: the shape's plan, the partitions' connections
            _read(direct)
            walls: dict[str, list[float]] = {"direct": [], "proxy": []}
            cpus: list[float] = []
            base = peak = rss_kib(proc.pid)
            for round_no in range(args.rounds):
                order = ["direct", "proxy"] if round_no % 2 == 0 else ["proxy", "direct"]
                for name in order:
                    if name == "direct":
                        walls[name].append(_read(direct))
                        continue
                    stop = threading.Event()
                    peaks = [peak]
                    sampler = threading.Thread(target=_sample_rss, args=(proc.pid, stop, peaks))
                    sampler.start()
                    cpu0 = cpu_seconds(proc.pid)
                    try:
                        walls[name].append(_read(proxied))
                    finally:
                        stop.set()
                        sampler.join()
                    cpus.append(cpu_seconds(proc.pid) - cpu0)
                    peak = max(peaks)
                log(
                    f"round {round_no + 1}: direct {walls['direct'][-1]:.2f} s,"
                    f" proxy {walls['proxy'][-1]:.2f} s (proxy CPU {cpus[-1]:.2f} s)"
                )
            d, p = statistics.median(walls["direct"]), statistics.median(walls["proxy"])
            rows = 2 * args.rows
            print(f"rows: {rows:,} ({args.rounds} rounds, medians)")
            print(f"mariadb client, directly from one MariaDB: {d:.2f} s")
            print(
                f"mariadb client, through the proxy (merged from 2 partitions): {p:.2f} s"
                f" ({p / d:.2f}x); proxy CPU {statistics.median(cpus):.2f} s"
                f" ({statistics.median(cpus) * 1e6 / rows:.2f} µs per row)"
            )
            print(f"proxy RSS: {base} KiB before, {peak} KiB peak (+{peak - base} KiB)")
        finally:
            if proxy is not None:
                proxy.stop()
            for server in servers:
                server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
