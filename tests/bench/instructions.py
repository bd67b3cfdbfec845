"""User-space instructions per query of versions of the proxy, under callgrind: the measure of
CPU per query that other load on a shared machine does not move (CPU time from /proc moves by
±15-30 % between minutes there).

    .venv/bin/python -m tests.bench.instructions --tree A=/path/to/treeA --tree B=/path/to/treeB \\
        [--events 5000] [--threads 4] [--workloads ps_ps,ps_text] [--keep DIR]

Each tree's proxy (its proxy/ and auth/, compiled extensions included) runs under
``valgrind --tool=callgrind --instr-atstart=no`` on one stack (one catalog, one MariaDB shard).
For each, first its background rate (catalog polls, the watchdog) with nothing to do for 10 s,
then per workload: a warm-up, then instrumentation on (``callgrind_control -i on``) for a
``sysbench --events=N`` run, off, and the count dumped. The output is the instructions per
query with the background's rate times the run's duration subtracted. The kernel's share of
the syscalls is not counted (it is the same for every version of the proxy). Needs valgrind.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.ab import log, snapshot_tree, start_variant
from tests.bench.stack import BENCH_PASSWORD, BENCH_USER, HOST, Endpoint, Managed, Stack
from tests.bench.workloads import WORKLOADS, Workload, sysbench_command

IDLE_SECONDS = 10.0
WARM_UP_EVENTS = 300


def callgrind_control(pid: int, *args: str) -> None:
    """``callgrind_control ARGS PID``."""
    subprocess.run(
        ["callgrind_control", *args, str(pid)], capture_output=True, timeout=120, check=False
    )


def dumped(out_dir: Path, name: str, pid: int, label: str) -> int:
    """Dump the counts since the last dump; the instructions counted (the dump's totals)."""
    callgrind_control(pid, f"--dump={label}")
    for _ in range(60):
        for path in out_dir.glob(f"cg-{name}.{pid}.*"):
            text = path.read_text(errors="replace")
            if f"Trigger: dump {label}\n" in text:
                for line in text.splitlines():
                    if line.startswith("totals:"):
                        return int(line.split()[1])
        time.sleep(0.5)
    raise RuntimeError(f"callgrind did not dump {label} for {name}")


def sysbench_events(
    workload: Workload,
    endpoint: Endpoint,
    threads: int,
    events: int,
    tables: int = 4,
    table_size: int = 10_000,
) -> float:
    """A sysbench run of ``events`` events; its wall time."""
    cmd = sysbench_command(
        workload, endpoint, threads=threads, seconds=1, tables=tables, table_size=table_size
    )
    cmd = [c for c in cmd if not c.startswith("--time=")]
    cmd[-1:-1] = ["--time=0", f"--events={events}"]
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"sysbench failed: {result.stderr[-500:]}")
    return time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.instructions")
    p.add_argument("--tree", action="append", required=True, help="NAME=PATH (repeatable)")
    p.add_argument("--events", type=int, default=5000)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--workloads", default="ps_ps,ps_text")
    p.add_argument(
        "--keep",
        type=Path,
        help="copy the callgrind files (one dump per workload and tree) into this directory,"
        " for callgrind_annotate",
    )
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is missing: apt-get install -y valgrind")
    trees = dict(item.split("=", 1) for item in args.tree)
    keys = args.workloads.split(",")
    workloads = [w for w in WORKLOADS if w.key in keys]
    workdir = Path(tempfile.mkdtemp(prefix="shardgate-instr-"))
    out_dir = workdir / "callgrind"
    out_dir.mkdir()
    stack = Stack(
        workdir,
        tables=4,
        table_size=10_000,
        stream_rows=0,
        proxy_log_level="INFO",
        haproxy_threads=None,
        snapshot=True,
        proxy_workers=1,
    )
    variants: dict[str, tuple[Managed, int]] = {}
    try:
        stack.start(log)
        for name, tree in trees.items():
            code = snapshot_tree(Path(tree).resolve(), workdir / f"code-{name}")
            prefix = (
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={out_dir}/cg-{name}.%p",
            )
            variants[name] = start_variant(stack, name, code, 1, prefix, greeting_timeout=900)
            log(f"{name} is up under callgrind")
        background: dict[str, float] = {}
        for name, (proc, _) in variants.items():
            callgrind_control(proc.pid, "-i", "on")
            time.sleep(IDLE_SECONDS)
            callgrind_control(proc.pid, "-i", "off")
            background[name] = dumped(out_dir, name, proc.pid, "idle") / IDLE_SECONDS
        per_query: dict[tuple[str, str], float] = {}
        for workload in workloads:
            for name, (proc, port) in variants.items():
                endpoint = Endpoint(name, HOST, port, BENCH_USER, BENCH_PASSWORD)
                sysbench_events(workload, endpoint, args.threads, WARM_UP_EVENTS)
                callgrind_control(proc.pid, "-z")
                callgrind_control(proc.pid, "-i", "on")
                seconds = sysbench_events(workload, endpoint, args.threads, args.events)
                callgrind_control(proc.pid, "-i", "off")
                total = dumped(out_dir, name, proc.pid, workload.key)
                value = (total - background[name] * seconds) / args.events
                per_query[(workload.key, name)] = value
                log(f"{workload.key} {name}: {value / 1000:.1f}k instructions per query")
        print(f"\nuser-space instructions per query ({args.events} events, {args.threads} threads)")
        for name, tree in trees.items():
            print(f"{name} = {tree} (background {background[name] / 1e6:.2f}M per second)")
        for workload in workloads:
            cells = ", ".join(
                f"{name} {per_query[(workload.key, name)] / 1000:.1f}k" for name in trees
            )
            print(f"{workload.key}: {cells}")
    finally:
        for proc, _ in variants.values():
            proc.stop(60)
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for path in out_dir.glob("cg-*"):
                shutil.copy2(path, args.keep / path.name)
        stack.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
