"""shardgate's benchmark: one command, everything on this machine, loopback only.

    .venv/bin/python -m tests.bench.run            # full default run, ~10 minutes
    .venv/bin/python -m tests.bench.run --quick    # ~2 minutes
    .venv/bin/python -m tests.bench.run --big-catalog

It starts a throwaway MariaDB shard, HAProxy (TCP mode) and shardgate (a subprocess, with a
non-administrator account holding table-level grants), runs the same sysbench workloads against
all three, measures logins per second, memory per idle connection and the streaming of a large
result, and writes tests/bench/results.md, results.png and results.json. See README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from proxy.ops.config import ShardConfig
from tests.bench import measure
from tests.bench.report import TARGETS, BigCatalog, Results, others_load, write_all
from tests.bench.stack import (
    ROOT,
    BenchSetupError,
    Stack,
    cpu_seconds,
    machine_busy_seconds,
    missing_tools,
    rss_kib,
    tool_versions,
)
from tests.bench.workloads import WORKLOADS, Cell, run_sysbench

OUT_DIR = Path(__file__).resolve().parent
_T0 = time.monotonic()


def log(message: str) -> None:
    elapsed = time.monotonic() - _T0
    print(
        f"[bench {int(elapsed) // 60:02d}:{int(elapsed) % 60:02d}] {message}",
        file=sys.stderr,
        flush=True,
    )


def _workers(value: str) -> int | str:
    """``--proxy-workers``: a number, or ``auto`` (written into the config as is)."""
    return value if value == "auto" else int(value)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.run",
        description="Benchmark shardgate against MariaDB direct and HAProxy (TCP mode).",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="1 round of 2 s runs and shorter side measurements (~2 minutes)",
    )
    p.add_argument("--rounds", type=int, help="rounds of every sysbench run (default 3; quick 1)")
    p.add_argument("--seconds", type=float, help="seconds per sysbench run (default 4; quick 2)")
    p.add_argument("--threads", default="1,4,8", help="sysbench thread counts (default 1,4,8)")
    p.add_argument(
        "--workloads",
        default=",".join(w.key for w in WORKLOADS),
        help="comma-separated subset of: " + ", ".join(w.key for w in WORKLOADS),
    )
    p.add_argument("--tables", type=int, default=4)
    p.add_argument("--table-size", type=int, default=10_000)
    p.add_argument(
        "--stream-rows",
        type=int,
        default=1_000_000,
        help="rows of the streamed result (0 skips the streaming measurement)",
    )
    p.add_argument(
        "--idle-connections",
        type=int,
        default=5000,
        help="idle connections for the memory measurement (0 skips it)",
    )
    p.add_argument(
        "--used-connections",
        type=int,
        default=1000,
        help="of those, how many then run one SELECT (opening a backend connection)",
    )
    p.add_argument("--login-seconds", type=float, help="seconds per login round (default 3)")
    p.add_argument("--login-threads", type=int, default=8, help="sysbench threads for logins")
    p.add_argument("--skip-logins", action="store_true")
    p.add_argument(
        "--profile",
        dest="profile",
        action="store_true",
        default=None,
        help="py-spy the proxy under point_select at 8 threads (default: on when "
        "py-spy is installed)",
    )
    p.add_argument("--no-profile", dest="profile", action="store_false")
    p.add_argument("--profile-seconds", type=float, help="seconds per profile (default 10)")
    p.add_argument(
        "--big-catalog",
        action="store_true",
        help="afterwards fill the catalog with 100,000 accounts and 1,000,000 table "
        "grants and rerun point_select at 8 threads",
    )
    p.add_argument("--big-accounts", type=int, default=100_000)
    p.add_argument("--big-grants", type=int, default=1_000_000)
    p.add_argument(
        "--proxy-log-level",
        default="INFO",
        help="shardgate's --log-level (default INFO, as `shardgate serve` runs)",
    )
    p.add_argument(
        "--proxy-workers",
        type=_workers,
        default=1,
        help='shardgate [server] workers: worker processes on the port, or "auto" (one per '
        "CPU; default 1)",
    )
    p.add_argument(
        "--haproxy-threads",
        type=int,
        default=None,
        help="HAProxy nbthread (default: HAProxy's own, one per CPU)",
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        default=OUT_DIR,
        help="where results.md/.png/.json and profile.txt go (default tests/bench)",
    )
    p.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="scratch directory (default: a new temporary one)",
    )
    p.add_argument("--keep", action="store_true", help="keep the scratch directory")
    p.add_argument(
        "--live-code",
        action="store_true",
        help="run the installed shardgate on the live work tree instead of a snapshot of proxy/ "
        "and auth/ taken at the start (the snapshot keeps one run on one version of the code)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before the run and each round, wait up to this many seconds for other processes "
        "to use less than 0.25 cores (default 60; 0 = do not wait)",
    )
    args = p.parse_args(argv)
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.seconds = args.seconds or (2.0 if quick else 4.0)
    args.login_seconds = args.login_seconds or (2.0 if quick else 3.0)
    args.profile_seconds = args.profile_seconds or (5.0 if quick else 10.0)
    args.threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    keys = [k.strip() for k in str(args.workloads).split(",") if k.strip()]
    unknown = [k for k in keys if k not in {w.key for w in WORKLOADS}]
    if unknown:
        p.error(f"unknown workload(s): {', '.join(unknown)}")
    args.workloads = [w for w in WORKLOADS if w.key in keys]
    if args.profile is None:
        args.profile = measure.py_spy() is not None
    return args


def machine_meta(args: argparse.Namespace, argv: list[str]) -> dict[str, object]:
    cpu_model = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "proxy", "auth"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        commit = head.stdout.strip() + (
            " + uncommitted changes in proxy/ or auth/" if dirty.stdout.strip() else ""
        )
    versions = tool_versions()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m tests.bench.run" + (" " + shlex.join(argv) if argv else ""),
        "commit": commit,
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": f"Linux {platform.release()}",
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "settings": (
            f"{args.rounds} round(s) x {args.seconds:.0f} s per sysbench run, "
            f"{args.tables} tables x {args.table_size:,} rows, threads "
            f"{','.join(map(str, args.threads))}, shardgate log level {args.proxy_log_level}, "
            f"HAProxy nbthread {args.haproxy_threads or 'default'}"
        ),
        "load_before": _loadavg(),
        "login_threads": args.login_threads,
    }


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def wait_quiet(limit: float, our_pids: list[int]) -> float:
    """Wait (up to ``limit`` s) until processes other than ours use < 0.25 cores; returns the
    last measured load of the others."""
    deadline = time.monotonic() + limit
    announced = False
    while True:
        busy = machine_busy_seconds()
        ours = sum(_cpu_or_zero(pid) for pid in our_pids)
        time.sleep(1.0)
        others = machine_busy_seconds() - busy - (sum(_cpu_or_zero(p) for p in our_pids) - ours)
        if others < 0.25 or time.monotonic() >= deadline:
            if announced:
                log(f"other processes now use {others:.2f} cores; going on")
            return others
        if not announced:
            log(f"other processes use {others:.2f} cores; waiting up to {limit:.0f} s for quiet")
            announced = True


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return 0.0


def run_matrix(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    endpoints = stack.endpoints()
    total = args.rounds * len(args.workloads) * len(args.threads) * len(TARGETS)
    done = 0
    for round_no in range(args.rounds):
        if args.wait_quiet:
            wait_quiet(args.wait_quiet, list(stack.pids().values()))
        # Rotate the order of the targets every round so drift hits all three alike.
        order = TARGETS[round_no % 3 :] + TARGETS[: round_no % 3]
        for wl in args.workloads:
            for threads in args.threads:
                for target in order:
                    cell = results.matrix.setdefault((wl.key, threads, target), Cell())
                    run = run_sysbench(
                        wl,
                        endpoints[target],
                        threads=threads,
                        seconds=args.seconds,
                        tables=args.tables,
                        table_size=args.table_size,
                        pids=stack.pids(),
                    )
                    cell.runs.append(run)
                    done += 1
                    status = (
                        f"{run.qps:,.0f} q/s p50 {run.p50_ms:.3f} ms"
                        if run.ok
                        else f"FAILED {run.error[:150]}"
                    )
                    log(
                        f"[{done}/{total}] round {round_no + 1} {wl.key} {threads} thr "
                        f"{target}: {status}"
                    )
                    _check_alive(stack)


def _check_alive(stack: Stack) -> None:
    if stack.proxy is not None and not stack.proxy.alive():
        raise BenchSetupError(
            f"shardgate exited (code {stack.proxy.proc.returncode}); see {stack.proxy.log_path}"
        )


def warm_up(stack: Stack, args: argparse.Namespace) -> None:
    log("warm-up (buffer pool, proxies)")
    endpoints = stack.endpoints()
    for target in TARGETS:
        for wl in (WORKLOADS[0], WORKLOADS[1]):
            run_sysbench(
                wl,
                endpoints[target],
                threads=8,
                seconds=1,
                tables=args.tables,
                table_size=args.table_size,
                pids={},
            )


def run_logins(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    endpoints = stack.endpoints()
    pids = {"direct": stack.mariadb_pid}
    assert stack.haproxy is not None and stack.proxy is not None
    pids["haproxy"] = stack.haproxy.pid
    pids["shardgate"] = stack.proxy.pid
    for round_no in range(args.rounds):
        order = TARGETS[round_no % 3 :] + TARGETS[: round_no % 3]
        for target in order:
            result = results.logins.setdefault(target, measure.LoginResult())
            measure.login_round(
                endpoints[target], args.login_seconds, args.login_threads, pids[target], result
            )
            last = f"{result.per_second[-1]:,.0f}/s" if result.per_second else result.error
            log(f"logins round {round_no + 1} {target}: {last}")
            # Let the TIME_WAIT sockets of the previous target age a little.
            time.sleep(2)


def run_idle(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    assert stack.proxy is not None
    log(f"memory per idle connection: opening {args.idle_connections:,} connections")
    results.idle = measure.measure_idle(
        stack.endpoints()["shardgate"],
        stack.proxy.pid,
        args.idle_connections,
        min(args.used_connections, args.idle_connections),
        "SELECT c FROM sbtest1 WHERE id = 1",
    )
    idle = results.idle
    log(
        f"idle: {idle.connections:,} connections, {idle.per_idle_bytes / 1024:.1f} KiB each "
        f"({idle.failures} failed {idle.error})"
    )


IDLE_UNDER_LOAD = 2_000


def run_idle_load(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    """2,000 idle clients (each ran one statement) held open while sysbench's point select
    runs through the proxy: the load's throughput and the proxy's CPU per query against the
    same run just before the clients were opened (the same minute on this shared machine, not
    the matrix's run minutes earlier), the proxy's memory per idle client, and the most backend
    connections the shard had (the pool bounds them)."""
    assert stack.proxy is not None
    count = min(IDLE_UNDER_LOAD, args.idle_connections)
    log(f"idle clients under load: opening {count:,} clients, then point selects")
    endpoint = stack.endpoints()["shardgate"]
    workload = next(w for w in args.workloads if w.key == "ps_text")
    pids = {"shardgate": stack.proxy.pid}

    def point_selects() -> tuple[float, float]:
        """One ps_text run at 4 threads: q/s and the proxy's CPU microseconds per query."""
        run = run_sysbench(
            workload,
            endpoint,
            threads=4,
            seconds=max(args.seconds, 4.0),
            tables=args.tables,
            table_size=args.table_size,
            pids=pids,
        )
        if not run.ok or not run.qps:
            result.error = result.error or run.error[:200]
            return 0.0, 0.0
        return run.qps, run.cpu.get("shardgate", 0.0) / run.qps * 1e6

    result = measure.IdleLoadResult(pool_size=ShardConfig.pool_size)
    result.qps_alone, result.us_per_query_alone = point_selects()
    gc.collect()
    before = rss_kib(stack.proxy.pid)
    idle = measure.IdleClients(endpoint, count, "SELECT c FROM sbtest1 WHERE id = 1")
    counting = threading.Event()
    peak = [0]

    def count_shard_connections() -> None:
        # One client process polls (a process started per poll cost the machine's two cores
        # more than the proxy's idle clients did, and was counted against the proxy).
        sql = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER LIKE 'sgm\\_%';\n"
        with contextlib.suppress(OSError, ValueError), stack.mariadb_root_session() as client:
            assert client.stdin is not None and client.stdout is not None
            while not counting.is_set():
                client.stdin.write(sql)
                client.stdin.flush()
                line = client.stdout.readline()
                if not line:
                    return
                peak[0] = max(peak[0], int(line.strip() or 0))
                time.sleep(0.2)

    counter = threading.Thread(target=count_shard_connections, daemon=True)
    try:
        idle.open()
        time.sleep(2.0)
        result.idle_clients = idle.opened
        result.failures, result.error = idle.failures, idle.error
        if idle.opened:
            result.per_idle_bytes = (rss_kib(stack.proxy.pid) - before) * 1024 / idle.opened
        counter.start()
        result.qps_loaded, result.us_per_query_loaded = point_selects()
    finally:
        counting.set()
        if counter.is_alive():
            counter.join(15)
        idle.close()
    result.shard_connections_max = peak[0]
    results.idle_load = result
    log(
        f"idle under load: {result.idle_clients:,} clients, {result.per_idle_bytes / 1024:.1f} "
        f"KiB each, {result.qps_loaded:,.0f} q/s ({result.qps_alone:,.0f} just before without "
        f"them; CPU {result.us_per_query_loaded:.0f} vs {result.us_per_query_alone:.0f} us/query), "
        f"shard connections at most "
        f"{result.shard_connections_max} (pool size {result.pool_size})"
    )


def run_stream(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    endpoints = stack.endpoints()
    assert stack.proxy is not None
    rounds = max(1, min(args.rounds, 3))
    results.stream_rows = args.stream_rows
    for round_no in range(rounds):
        for target in TARGETS:
            rss_pid = stack.proxy.pid if target == "shardgate" else None
            run = measure.stream_once(endpoints[target], args.stream_rows, rss_pid)
            results.stream.setdefault(target, measure.StreamResult()).runs.append(run)
            log(
                f"stream round {round_no + 1} {target}: {run.seconds:.2f} s, {run.rows:,} rows"
                + ("" if run.ok else f" FAILED {run.error}")
            )


def run_profile(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    assert stack.proxy is not None
    endpoints = stack.endpoints()
    rate = 250
    sections = []
    # The target workload (point_select, both protocols), and read_only text for comparison.
    for wl in (w for w in WORKLOADS if w.key in ("ps_ps", "ps_text", "ro_text")):
        raw_path = stack.workdir / f"profile-{wl.key}.txt"
        log(f"py-spy: {wl.key} at 8 threads for {args.profile_seconds:.0f} s")
        spy = measure.start_py_spy(stack.proxy.pid, args.profile_seconds, rate, raw_path)
        time.sleep(0.5)
        run = run_sysbench(
            wl,
            endpoints["shardgate"],
            threads=8,
            seconds=args.profile_seconds + 1,
            tables=args.tables,
            table_size=args.table_size,
            pids=stack.pids(),
        )
        try:
            out, _ = spy.communicate(timeout=args.profile_seconds + 60)
        except subprocess.TimeoutExpired:
            spy.kill()
            out, _ = spy.communicate()
        if spy.returncode != 0 or not raw_path.exists():
            message = out.decode(errors="replace").strip()[-500:]
            sections.append(f"== {wl.label}: py-spy failed (exit {spy.returncode}) ==\n{message}\n")
            continue
        summary = measure.summarize_raw(raw_path.read_text(), rate, args.profile_seconds)
        qps = f"{run.qps:,.0f} q/s under the profiler" if run.ok else f"sysbench: {run.error}"
        sections.append(f"== {wl.label}, 8 threads ({qps}) ==\n{summary}")
    header = (
        "py-spy record --format raw --nonblocking --rate 250 on the shardgate process while "
        "sysbench ran\noltp_point_select at 8 threads against it (tests/bench/run.py "
        "--profile). Summarized by\ntests/bench/measure.py:summarize_raw. "
        f"Date: {results.meta.get('date')}.\n\n"
    )
    text = header + "\n".join(sections)
    path = args.out_dir / "profile.txt"
    path.write_text(text)
    results.profile_summary = "\n".join(sections)
    results.profile_path = str(path)


def run_big_catalog(stack: Stack, args: argparse.Namespace, results: Results) -> None:
    big = BigCatalog(accounts=args.big_accounts, table_grants=args.big_grants)
    results.big = big
    assert stack.proxy is not None
    # The baseline with 10 accounts is measured here too, right before, on a fresh process
    # like the large catalog's, so the two differ in the catalog only.
    big.rss_small_kib = _fresh_proxy_rss(stack)
    _catalog_rounds(stack, args, big.small_cells, "10 accounts")
    log("large catalog: stopping shardgate")
    stack.stop_proxy()
    log(
        f"large catalog: writing {args.big_accounts:,} accounts and {args.big_grants:,} "
        "table grants"
    )
    started = time.monotonic()
    stack.fill_big_catalog(args.big_accounts, args.big_grants, databases=10)
    big.fill_seconds = time.monotonic() - started
    stack.start_proxy(log)
    big.start_seconds = stack.proxy_start_seconds[-1]
    time.sleep(1)
    assert stack.proxy is not None
    big.rss_big_kib = rss_kib(stack.proxy.pid)
    log(
        f"large catalog: proxy answered after {big.start_seconds:.1f} s, RSS "
        f"{big.rss_big_kib / 1024:,.0f} MiB"
    )
    _catalog_rounds(stack, args, big.cells, "large catalog")


def _catalog_rounds(
    stack: Stack, args: argparse.Namespace, cells: dict[tuple[str, str], Cell], what: str
) -> None:
    """point_select (prepared and text) at 8 threads against HAProxy and shardgate."""
    endpoints = stack.endpoints()
    workloads = [w for w in WORKLOADS if w.key in ("ps_ps", "ps_text")]
    for wl in workloads:  # warm-up of the fresh proxy process
        run_sysbench(
            wl,
            endpoints["shardgate"],
            threads=8,
            seconds=1,
            tables=args.tables,
            table_size=args.table_size,
            pids={},
        )
    for round_no in range(args.rounds):
        if args.wait_quiet:
            wait_quiet(args.wait_quiet, list(stack.pids().values()))
        order = ("haproxy", "shardgate") if round_no % 2 == 0 else ("shardgate", "haproxy")
        for wl in workloads:
            for target in order:
                run = run_sysbench(
                    wl,
                    endpoints[target],
                    threads=8,
                    seconds=args.seconds,
                    tables=args.tables,
                    table_size=args.table_size,
                    pids=stack.pids(),
                )
                cells.setdefault((wl.key, target), Cell()).runs.append(run)
                status = f"{run.qps:,.0f} q/s" if run.ok else f"FAILED {run.error[:150]}"
                log(f"{what} round {round_no + 1} {wl.key} 8 thr {target}: {status}")


def _fresh_proxy_rss(stack: Stack) -> int:
    """The RSS of a freshly restarted proxy with the current (small) catalog."""
    stack.stop_proxy()
    stack.start_proxy(log)
    time.sleep(1)
    assert stack.proxy is not None
    return rss_kib(stack.proxy.pid)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    problems = missing_tools()
    if problems:
        for problem in problems:
            print(f"tests/bench: {problem}", file=sys.stderr)
        return 2
    if args.profile and measure.py_spy() is None:
        print(
            f"tests/bench: py-spy is missing: {sys.executable} -m pip install py-spy "
            "(or pass --no-profile)",
            file=sys.stderr,
        )
        return 2
    # Before anything is spawned: children (the proxy, HAProxy) inherit the limit.
    limit = measure.raise_fd_limit(max(4 * args.idle_connections, 4096) + 1024)
    if args.idle_connections and limit < args.idle_connections + 1024:
        print(
            f"tests/bench: the file descriptor limit ({limit}) is too low for "
            f"{args.idle_connections} idle connections; raise `ulimit -n` or pass "
            "--idle-connections",
            file=sys.stderr,
        )
        return 2

    args.out_dir.mkdir(parents=True, exist_ok=True)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="shardgate-bench-"))
    results = Results(
        meta=machine_meta(args, argv), threads=args.threads, workloads=list(args.workloads)
    )
    stack = Stack(
        workdir,
        tables=args.tables,
        table_size=args.table_size,
        stream_rows=args.stream_rows,
        proxy_log_level=args.proxy_log_level,
        haproxy_threads=args.haproxy_threads,
        snapshot=not args.live_code,
        proxy_workers=args.proxy_workers,
    )
    log(f"scratch directory {workdir}")
    if args.wait_quiet:
        wait_quiet(args.wait_quiet, [])
    exit_code = 0
    try:
        stack.start(log)
        warm_up(stack, args)
        run_matrix(stack, args, results)
        if not args.skip_logins:
            run_logins(stack, args, results)
        # Streaming before the idle connections: memory the 5,000 sessions freed stays in the
        # process and could hide a growing buffer.
        if args.stream_rows:
            run_stream(stack, args, results)
        if args.idle_connections:
            # Under load first: the memory a 5,000-connection run frees stays in the process.
            run_idle_load(stack, args, results)
            run_idle(stack, args, results)
        if args.profile:
            run_profile(stack, args, results)
        if args.big_catalog:
            run_big_catalog(stack, args, results)
    except (BenchSetupError, OSError) as exc:
        log(f"ERROR: {exc}")
        results.notes.append(f"the run stopped early: {exc}")
        exit_code = 1
    except KeyboardInterrupt:
        log("interrupted")
        results.notes.append("the run was interrupted")
        exit_code = 130
    finally:
        log("stopping HAProxy, shardgate and MariaDB")
        stack.close()
        results.meta["load_after"] = _loadavg()
        versions = list(dict.fromkeys(stack.proxy_code))
        results.meta["proxy_code"] = (
            ", ".join(versions)
            + (
                " (snapshot of proxy/ and auth/ taken at the start)"
                if not args.live_code
                else " (live work tree)"
            )
            + f"; hot path: {stack.hot_path}"
        )
        if len(versions) > 1:
            results.notes.append(
                "the proxy's source changed during the run (--live-code): its restarts ran "
                f"different code ({', '.join(versions)}); sections are not comparable."
            )
        others = others_load(results)
        if others > 0.15:
            results.notes.append(
                f"processes outside the benchmark used a median {others:.2f} cores during the "
                "sysbench runs (column *others*): absolute numbers are disturbed; the ratios were "
                "measured interleaved and suffer less."
            )
        results.meta["wall_minutes"] = (time.monotonic() - _T0) / 60
        if results.matrix or results.logins:
            for path in write_all(results, args.out_dir):
                log(f"wrote {path}")
        if args.keep or exit_code:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return exit_code


if __name__ == "__main__":
    raise SystemExit(main())
