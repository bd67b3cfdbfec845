"""A/B runs of two versions of the proxy on one stack, interleaved, for deciding a change.

    .venv/bin/python -m tests.bench.ab --a /path/to/treeA --b /path/to/treeB \\
        [--rounds 5] [--seconds 4] [--threads 4] [--workloads ps_ps,ps_text] [--workers 1]

(``--c``/``--workers-c`` add a third variant, e.g. the same tree with other ``[server] workers``.)
Both trees are snapshotted (their proxy/ and auth/, with any compiled extension in them) and
run as two shardgate processes on one catalog and one MariaDB shard, next to HAProxy. Each
round runs every workload against HAProxy, A and B back to back, in an order that rotates per
round, so drift on a shared machine hits all three alike; the output is the median q/s of each
and the median of the per-round ratios (x HAProxy, B/A). Results go to stdout only (nothing is
written into tests/bench).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from proxy.dev.localshard import free_port
from tests.bench.run import _workers
from tests.bench.stack import (
    BENCH_PASSWORD,
    BENCH_USER,
    CODE_PACKAGES,
    HOST,
    Endpoint,
    Managed,
    Stack,
    _spawn,
    _toml_workers,
    shardgate_command,
    wait_for_greeting,
)
from tests.bench.workloads import WORKLOADS, run_sysbench


def log(message: str) -> None:
    print(f"[ab {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def snapshot_tree(tree: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for package in CODE_PACKAGES:
        shutil.copytree(
            tree / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return dest


def start_variant(
    stack: Stack,
    name: str,
    code: Path,
    workers: int | str,
    prefix: tuple[str, ...] = (),
    greeting_timeout: float = 120,
) -> tuple[Managed, int]:
    """Another shardgate process on the stack's catalog and shard, from ``code`` (``prefix``:
    a command it runs under, e.g. valgrind; it then needs longer to greet)."""
    port = free_port()
    text = stack.config_path.read_text()
    text = text.replace(f"port = {stack.proxy_port}\n", f"port = {port}\n", 1)
    text = text.replace(
        f"workers = {_toml_workers(stack.proxy_workers)}\n",
        f"workers = {_toml_workers(workers)}\n",
        1,
    )
    config = stack.workdir / f"shardgate-{name}.toml"
    config.write_text(text)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(code)
    proc = _spawn(
        f"shardgate-{name}",
        [*prefix, *shardgate_command(config, "INFO", code)],
        stack.workdir / f"shardgate-{name}.log",
        code,
        env,
    )
    wait_for_greeting(port, greeting_timeout, proc.proc)
    return proc, port


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.ab")
    p.add_argument("--a", type=Path, required=True, help="tree of version A (has proxy/, auth/)")
    p.add_argument("--b", type=Path, required=True, help="tree of version B")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--threads", default="4")
    p.add_argument("--workloads", default="ps_ps,ps_text")
    p.add_argument(
        "--workers", type=_workers, default=1, help='[server] workers of A and B (or "auto")'
    )
    p.add_argument(
        "--workers-b", type=_workers, default=None, help="B's workers (default: --workers)"
    )
    p.add_argument("--c", type=Path, default=None, help="a third tree C (default: B's)")
    p.add_argument(
        "--workers-c", type=_workers, default=None, help="run a variant C with these workers"
    )
    args = p.parse_args(argv)
    threads = [int(t) for t in args.threads.split(",")]
    keys = args.workloads.split(",")
    workloads = [w for w in WORKLOADS if w.key in keys]
    workdir = Path(tempfile.mkdtemp(prefix="shardgate-ab-"))
    stack = Stack(
        workdir,
        tables=4,
        table_size=10_000,
        stream_rows=0,
        proxy_log_level="INFO",
        haproxy_threads=None,
        snapshot=True,
        proxy_workers=args.workers,
    )
    variants: dict[str, Managed] = {}
    try:
        stack.start(log)
        assert stack.haproxy is not None
        endpoints: dict[str, Endpoint] = {"haproxy": stack.endpoints()["haproxy"]}
        workers_b = args.workers if args.workers_b is None else args.workers_b
        plan: list[tuple[str, Path, int | str]] = [
            ("A", args.a, args.workers),
            ("B", args.b, workers_b),
        ]
        if args.c is not None or args.workers_c is not None:
            workers_c = args.workers if args.workers_c is None else args.workers_c
            plan.append(("C", args.c or args.b, workers_c))
        for name, tree, workers in plan:
            code = snapshot_tree(tree.resolve(), workdir / f"code-{name}")
            proc, port = start_variant(stack, name, code, workers)
            variants[name] = proc
            endpoints[name] = Endpoint(name, HOST, port, BENCH_USER, BENCH_PASSWORD)
        # The stack's own proxy only created the mirror; it stays idle.
        pids = {"haproxy": stack.haproxy.pid, **{n: m.pid for n, m in variants.items()}}
        for wl in workloads:  # warm-up
            for target in endpoints:
                run_sysbench(
                    wl,
                    endpoints[target],
                    threads=8,
                    seconds=1,
                    tables=4,
                    table_size=10_000,
                    pids={},
                )
        targets = list(endpoints)
        qps: dict[tuple[str, int, str], list[float]] = {}
        # The proxy's CPU microseconds per query: what a query costs it, robust to other load.
        usq: dict[tuple[str, int, str], list[float]] = {}
        for round_no in range(args.rounds):
            shift = round_no % len(targets)
            order = targets[shift:] + targets[:shift]
            for wl in workloads:
                for t in threads:
                    line = []
                    for target in order:
                        run = run_sysbench(
                            wl,
                            endpoints[target],
                            threads=t,
                            seconds=args.seconds,
                            tables=4,
                            table_size=10_000,
                            pids=pids,
                        )
                        value = run.qps if run.ok else float("nan")
                        qps.setdefault((wl.key, t, target), []).append(value)
                        cpu = run.cpu.get(target, 0.0)
                        if run.ok and run.qps:
                            usq.setdefault((wl.key, t, target), []).append(cpu / run.qps * 1e6)
                        line.append(f"{target} {value:,.0f} (cpu {cpu:.2f})")
                    log(f"round {round_no + 1} {wl.key} {t} thr: " + ", ".join(line))
        names = list(variants)
        print(f"\nrounds {args.rounds} x {args.seconds:.0f} s")
        for name, tree, workers in plan:
            print(f"{name} = {tree} (workers {workers})")
        print("(q/s and CPU us/query: medians of the rounds; ratios: medians of per-round ratios)")
        for wl in workloads:
            for t in threads:
                h = qps[(wl.key, t, "haproxy")]
                cells = [f"HAProxy {statistics.median(h):,.0f} q/s"]
                for name in names:
                    mine = qps[(wl.key, t, name)]
                    ratio = statistics.median(x / y for x, y in zip(mine, h, strict=True))
                    cells.append(f"{name} {statistics.median(mine):,.0f} q/s {ratio:.3f}xH")
                for name in names[1:]:
                    mine, base = qps[(wl.key, t, name)], qps[(wl.key, t, "A")]
                    ratio = statistics.median(x / y for x, y in zip(mine, base, strict=True))
                    cells.append(f"{name}/A {ratio:.3f}")
                cpu_text = " ".join(
                    f"{x} {statistics.median(usq.get((wl.key, t, x), [0.0])):.1f}"
                    for x in ("haproxy", *names)
                )
                print(f"{wl.key} {t} thr: " + ", ".join(cells) + f"; CPU us/q: {cpu_text}")
    finally:
        for managed in variants.values():
            managed.stop()
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
