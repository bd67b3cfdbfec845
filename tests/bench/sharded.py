"""Benchmark of a sharded database (issue 15): sysbench ``oltp_point_select`` and
``bulk_insert`` through shardgate on a database sharded by ``DBPARTITION BY HASH(id)`` over two
shards, side by side with an unsharded database through the same proxy.

    .venv/bin/python -m tests.bench.sharded            # 3 rounds x 4 s, 1 and 4 threads
    .venv/bin/python -m tests.bench.sharded --quick    # 1 round x 2 s, 4 threads

Starts two throwaway MariaDB shards (``s0``, ``s1``) and shardgate (a subprocess, from a
snapshot of ``proxy/`` and ``auth/`` as ``tests.bench.run`` does), creates the logical
database ``sbtest`` on ``s0`` and the sharded ``sbshard`` over ``s0`` and ``s1`` (2 physical
databases, one per shard), and creates and loads the sysbench tables through the proxy (the
sharded ones with ``DBPARTITION BY HASH(id)``, their multi-row INSERTs split per partition).
Then sysbench runs against both databases back to back, in an order that alternates per
round, with server-side prepared statements (``--db-ps-mode=auto``, the issue's fast path:
each execution routed from its parameter) and with text queries. It prints, per workload and
thread count, the median queries per second of each and their ratio (the target: sharded at
least 0.9x unsharded), and the proxy's CPU microseconds per query. ``bulk_insert`` (the
routed multi-row INSERT workload: each thread sends INSERTs of many rows into its own table,
split per partition by the proxy, atomic across them with XA) runs on fresh tables each time
(databases ``sbbulk`` and ``sbbulkshard``) and is counted in rows per second. Not a timed
test.

``--callgrind`` runs the proxy under ``valgrind --tool=callgrind`` instead and prints the
proxy's user-space instructions per query of each point-select workload, unsharded and
sharded (``tests.bench.instructions``' method: a fixed ``--events`` run with instrumentation
on, minus the idle process's background rate, the lower of two idle windows): a measure
other load on the machine does not move; ``--keep-callgrind DIR`` keeps its files. ``--tree
PATH`` runs another checkout's proxy (its ``proxy/`` and ``auth/``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pymysql

from auth.catalog import Catalog
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint, free_port
from proxy.manage.provision import create_database, create_sharded_database
from proxy.ops.config import load_config
from tests.bench.ab import snapshot_tree
from tests.bench.instructions import (
    IDLE_SECONDS,
    WARM_UP_EVENTS,
    callgrind_control,
    dumped,
    sysbench_events,
)
from tests.bench.stack import (
    HOST,
    ROOT,
    Endpoint,
    Managed,
    code_digest,
    shardgate_command,
    snapshot_code,
    wait_for_greeting,
)
from tests.bench.workloads import WORKLOADS, RunResult, Workload, run_sysbench

UNSHARDED = "sbtest"
SHARDED = "sbshard"
BULK_UNSHARDED = "sbbulk"
BULK_SHARDED = "sbbulkshard"
BULK = Workload(
    "bulk", "bulk_insert (multi-row INSERTs split per partition)", "bulk_insert", "disable"
)
BULK_TABLE = (
    "CREATE TABLE sbtest{n} (id INTEGER NOT NULL, k INTEGER DEFAULT '0' NOT NULL, PRIMARY KEY (id))"
)
PASSWORD = "Bench#Shard1"
RO_PASSWORD = "Bench#ShardRO1"
TABLE = (
    "CREATE TABLE sbtest{n} (id INTEGER NOT NULL, k INTEGER DEFAULT '0' NOT NULL,"
    " c CHAR(120) DEFAULT '' NOT NULL, pad CHAR(60) DEFAULT '' NOT NULL, PRIMARY KEY (id),"
    " KEY k_{n} (k))"
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _config(path: Path, port: int, shards: list[ShardEndpoint]) -> None:
    lines = [
        "[server]",
        f'host = "{HOST}"',
        f"port = {port}",
        'auth_plugin = "mysql_native_password"',
        "handshake_timeout = 10.0",
        "drain_timeout = 5.0",
        "workers = 1",
        "[catalog]",
        'url = "sqlite:///catalog.db"',
        'secret_file = "shardgate.secret"',
    ]
    for index, shard in enumerate(shards):
        lines += [
            "[[shards]]",
            f'name = "s{index}"',
            f'host = "{shard.host}"',
            f"port = {shard.port}",
            f'user = "{shard.user}"',
            f'password = "{shard.password}"',
        ]
    path.write_text("\n".join(lines) + "\n")


def _random_text(rng: random.Random, groups: int) -> str:
    return "-".join("".join(rng.choices(string.digits, k=11)) for _ in range(groups))


def _load(port: int, database: str, tables: int, size: int, sharded: bool) -> None:
    """The sysbench tables, created and filled through the proxy."""
    conn = pymysql.connect(
        host=HOST, port=port, user=database, password=PASSWORD, database=database, autocommit=True
    )
    rng = random.Random(1)
    try:
        with conn.cursor() as cur:
            for n in range(1, tables + 1):
                clause = " DBPARTITION BY HASH(id)" if sharded else ""
                cur.execute(TABLE.format(n=n) + clause)
                rows = [
                    (i, rng.randint(1, size), _random_text(rng, 10), _random_text(rng, 5))
                    for i in range(1, size + 1)
                ]
                for start in range(0, size, 1000):
                    cur.executemany(
                        f"INSERT INTO sbtest{n} (id, k, c, pad) VALUES (%s, %s, %s, %s)",
                        rows[start : start + 1000],
                    )
    finally:
        conn.close()


def _bulk_tables(port: int, database: str, threads: int, sharded: bool) -> None:
    """Fresh ``bulk_insert`` tables (one per thread; its ids start at 1 in every run), made
    through the proxy."""
    conn = pymysql.connect(
        host=HOST, port=port, user=database, password=PASSWORD, database=database, autocommit=True
    )
    try:
        with conn.cursor() as cur:
            for n in range(1, threads + 1):
                cur.execute(f"DROP TABLE IF EXISTS sbtest{n}")
                cur.execute(
                    BULK_TABLE.format(n=n) + (" DBPARTITION BY HASH(id)" if sharded else "")
                )
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s runs, 4 threads")
    parser.add_argument("--rounds", type=int, help="rounds (default 3; quick 1)")
    parser.add_argument("--seconds", type=float, help="seconds per run (default 4; quick 2)")
    parser.add_argument("--threads", help="thread counts (default 1,4; quick 4)")
    parser.add_argument("--tables", type=int, default=4)
    parser.add_argument("--table-size", type=int, default=10000)
    parser.add_argument("--live-code", action="store_true", help="run the work tree's code")
    parser.add_argument("--cprofile", help="write the proxy's cProfile statistics to this file")
    parser.add_argument(
        "--workloads",
        default="ps_ps,ps_text,bulk",
        help="ps_ps (prepared), ps_text (text), bulk (bulk_insert)",
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="instructions per query under callgrind (point selects only; needs valgrind)",
    )
    parser.add_argument("--events", type=int, default=5000, help="per --callgrind run")
    parser.add_argument(
        "--one-shard",
        action="store_true",
        help="put both physical databases of the sharded database on s0 (one MariaDB server "
        "for both databases: the proxy's difference alone, without a second server's cost)",
    )
    parser.add_argument("--tree", help="run this checkout's proxy/ and auth/")
    parser.add_argument(
        "--keep-callgrind", help="copy the callgrind files here (for callgrind_annotate)"
    )
    args = parser.parse_args(argv)
    if args.callgrind and (args.cprofile or args.live_code):
        parser.error("--callgrind runs a snapshot, without cProfile")
    rounds = args.rounds or (1 if args.quick else 3)
    seconds = args.seconds or (2.0 if args.quick else 4.0)
    threads = [int(t) for t in (args.threads or ("4" if args.quick else "1,4")).split(",")]
    workloads = [w for w in (*WORKLOADS, BULK) if w.key in args.workloads.split(",")]
    if args.callgrind:
        workloads = [w for w in workloads if w is not BULK]
    with tempfile.TemporaryDirectory(prefix="sharded-bench-") as tmp:
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
            shards = ["s0"] if args.one_shard else ["s0", "s1"]
            try:
                for plain, split in ((UNSHARDED, SHARDED), (BULK_UNSHARDED, BULK_SHARDED)):
                    asyncio.run(
                        create_database(config, catalog, plain, "s0", PASSWORD, RO_PASSWORD)
                    )
                    asyncio.run(
                        create_sharded_database(
                            config, catalog, split, shards, 2, PASSWORD, RO_PASSWORD
                        )
                    )
            finally:
                catalog.close()
            code_dir = None if args.live_code else snapshot_code(work / "code")
            if args.tree:
                code_dir = snapshot_tree(Path(args.tree).resolve(), work / "tree")
            env = dict(os.environ)
            if code_dir is not None:
                env["PYTHONPATH"] = str(code_dir)
            log(f"starting shardgate ({code_digest(code_dir or ROOT)}) on {HOST}:{port}")
            log_path = work / "shardgate.log"
            log_file = log_path.open("ab")
            command = shardgate_command(config_path, "WARNING", code_dir)
            out_dir = work / "callgrind"
            if args.callgrind:
                out_dir.mkdir()
                command = [
                    "valgrind",
                    "--tool=callgrind",
                    "--instr-atstart=no",
                    f"--callgrind-out-file={out_dir}/cg-proxy.%p",
                    *command,
                ]
            if args.cprofile:
                at = command.index("--config")
                command = [sys.executable, "-m", "cProfile", "-o", str(Path(args.cprofile))]
                command += [
                    "-m",
                    "proxy.manage.cli",
                    *shardgate_command(config_path, "WARNING", code_dir)[at:],
                ]
            proc = subprocess.Popen(
                command,
                cwd=code_dir or ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            proxy = Managed("shardgate", proc, log_path, log_file)
            wait_for_greeting(port, 600, proc)
            for database, sharded in ((UNSHARDED, False), (SHARDED, True)):
                log(f"loading {args.tables} x {args.table_size} rows into {database}")
                _load(port, database, args.tables, args.table_size, sharded)

            # role -> endpoint, per workload (bulk_insert has databases of its own)
            def endpoints_of(workload: Workload) -> dict[str, Endpoint]:
                plain, split = (
                    (BULK_UNSHARDED, BULK_SHARDED) if workload is BULK else (UNSHARDED, SHARDED)
                )
                return {
                    role: Endpoint(name, HOST, port, name, PASSWORD, name)
                    for role, name in (("unsharded", plain), ("sharded", split))
                }

            if args.callgrind:
                print(_instructions(proxy.pid, out_dir, endpoints_of, workloads, threads, args))
                if args.keep_callgrind:
                    keep = Path(args.keep_callgrind)
                    keep.mkdir(parents=True, exist_ok=True)
                    for path in out_dir.iterdir():
                        shutil.copy(path, keep / path.name)
                return 0
            # The shards' CPU too (what a second server costs; "others" is then the rest of
            # the machine, outside the benchmark).
            pids = {"shardgate": proxy.pid}
            for index, server in enumerate(servers):
                if server.pid is not None:
                    pids[f"mariadb{index}"] = server.pid
            results: dict[tuple[str, int, str], list[RunResult]] = {}
            for workload in workloads:  # warm-up
                for role, endpoint in endpoints_of(workload).items():
                    if workload is BULK:
                        _bulk_tables(port, endpoint.database, 4, role == "sharded")
                    run_sysbench(
                        workload,
                        endpoint,
                        threads=4,
                        seconds=1,
                        tables=args.tables,
                        table_size=args.table_size,
                        pids={},
                    )
            for round_no in range(rounds):
                roles = ["unsharded", "sharded"]
                order = roles if round_no % 2 == 0 else list(reversed(roles))
                for workload in workloads:
                    targets = endpoints_of(workload)
                    for count in threads:
                        for name in order:
                            if workload is BULK:
                                sharded = name == "sharded"
                                _bulk_tables(port, targets[name].database, count, sharded)
                            run = run_sysbench(
                                workload,
                                targets[name],
                                threads=count,
                                seconds=seconds,
                                tables=args.tables,
                                table_size=args.table_size,
                                pids=pids,
                            )
                            if not run.ok or run.errors:
                                log(f"{workload.key} {count} {name}: {run.error or run.errors}")
                            results.setdefault((workload.key, count, name), []).append(run)
                            log(
                                f"round {round_no + 1} {workload.key} x{count} {name}: "
                                f"{_rate(workload, run):,.0f} {_unit(workload)}, proxy"
                                f" {run.cpu.get('shardgate', 0):.2f} cores,"
                                f" others {run.cpu.get('others', 0):.2f}"
                            )
            print(_table(results, workloads, threads))
        finally:
            if proxy is not None:
                proxy.stop()
            for server in servers:
                server.stop()
    return 0


def _instructions(
    pid: int,
    out_dir: Path,
    endpoints_of: Callable[[Workload], dict[str, Endpoint]],
    workloads: list[Workload],
    threads: list[int],
    args: argparse.Namespace,
) -> str:
    """The proxy's user-space instructions per query, per workload, thread count and
    database (a table in the form of ``_table``'s)."""
    # The lower of two idle windows: one may catch a catalog poll or a pool sweep (a
    # background of 2.6M/s instead of 0.8M/s moved a 4,000-event run's figures by ~7k).
    rates = []
    for window in ("idle", "idle2"):
        callgrind_control(pid, "-i", "on")
        time.sleep(IDLE_SECONDS)
        callgrind_control(pid, "-i", "off")
        rates.append(dumped(out_dir, "proxy", pid, window) / IDLE_SECONDS)
    background = min(rates)
    lines = [
        f"user-space instructions per query ({args.events} events; background"
        f" {background / 1e6:.2f}M per second subtracted)",
        "",
        "| workload | threads | unsharded | sharded | sharded/unsharded |",
        "|---|---|---|---|---|",
    ]
    for workload in workloads:
        for count in threads:
            found: dict[str, float] = {}
            for role, endpoint in endpoints_of(workload).items():
                sysbench_events(
                    workload, endpoint, count, WARM_UP_EVENTS, args.tables, args.table_size
                )
                callgrind_control(pid, "-z")
                callgrind_control(pid, "-i", "on")
                seconds = sysbench_events(
                    workload, endpoint, count, args.events, args.tables, args.table_size
                )
                callgrind_control(pid, "-i", "off")
                label = f"{workload.key}-{count}-{role}"
                total = dumped(out_dir, "proxy", pid, label)
                found[role] = (total - background * seconds) / args.events
                log(f"{label}: {found[role] / 1000:.1f}k instructions per query")
            plain, split = found["unsharded"], found["sharded"]
            lines.append(
                f"| {workload.key} | {count} | {plain / 1000:.1f}k | {split / 1000:.1f}k |"
                f" {split / plain:.2f} |"
            )
    return "\n".join(lines)


def _table(
    results: dict[tuple[str, int, str], list[RunResult]],
    workloads: list[Workload],
    threads: list[int],
) -> str:
    lines = [
        "| workload | threads | unsharded | sharded | sharded/unsharded |"
        " proxy µs per query (row) unsharded | sharded |"
        " MariaDB µs per query (row) unsharded | sharded | others (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for workload in workloads:
        key = workload.key
        for count in threads:
            plain = [r for r in results.get((key, count, "unsharded"), []) if r.ok]
            split = [r for r in results.get((key, count, "sharded"), []) if r.ok]
            if not plain or not split:
                lines.append(f"| {key} | {count} | failed | | | | | | | |")
                continue
            q_plain = statistics.median(_rate(workload, r) for r in plain)
            q_split = statistics.median(_rate(workload, r) for r in split)
            us_plain = statistics.median(_us(workload, r) for r in plain)
            us_split = statistics.median(_us(workload, r) for r in split)
            db_plain = statistics.median(_us(workload, r, "mariadb") for r in plain)
            db_split = statistics.median(_us(workload, r, "mariadb") for r in split)
            others = statistics.median(r.cpu.get("others", 0.0) for r in plain + split)
            unit = _unit(workload)
            lines.append(
                f"| {key} | {count} | {q_plain:,.0f} {unit} | {q_split:,.0f} {unit} | "
                f"{q_split / q_plain:.2f} | {_micro(us_plain)} | {_micro(us_split)} | "
                f"{_micro(db_plain)} | {_micro(db_split)} | {others:.2f} |"
            )
    return "\n".join(lines)


def _micro(us: float) -> str:
    """Microseconds as printed: a tenth where they are few (a bulk_insert row's)."""
    return f"{us:.1f}" if us < 10 else f"{us:.0f}"


def _rate(workload: Workload, run: RunResult) -> float:
    """Queries per second; rows per second for bulk_insert (sysbench's events)."""
    return run.tps if workload is BULK else run.qps


def _unit(workload: Workload) -> str:
    return "rows/s" if workload is BULK else "q/s"


def _us(workload: Workload, run: RunResult, process: str = "shardgate") -> float:
    """The CPU microseconds per query (per row for bulk_insert) of the processes whose
    names start with ``process``: the proxy's, or both MariaDB servers' ("mariadb")."""
    rate = _rate(workload, run)
    cpu = sum(cores for name, cores in run.cpu.items() if name.startswith(process))
    return cpu / rate * 1e6 if rate else 0.0


if __name__ == "__main__":
    sys.exit(main())
