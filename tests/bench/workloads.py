"""sysbench runs: command lines, output parsing, and the CPU the servers used meanwhile."""

from __future__ import annotations

import re
import resource
import statistics
import subprocess
import time
from dataclasses import dataclass, field

from tests.bench.stack import Endpoint, cpu_seconds, machine_busy_seconds


@dataclass(frozen=True)
class Workload:
    key: str  # short id used in tables and file names
    label: str
    script: str  # sysbench's bundled Lua test
    ps_mode: str  # sysbench --db-ps-mode: auto = server-side prepared statements

    @property
    def per_event(self) -> str:
        return "query" if self.script == "oltp_point_select" else "transaction"


WORKLOADS: tuple[Workload, ...] = (
    Workload("ps_ps", "oltp_point_select, prepared (ps-mode=auto)", "oltp_point_select", "auto"),
    Workload(
        "ps_text", "oltp_point_select, text (ps-mode=disable)", "oltp_point_select", "disable"
    ),
    Workload("ro_ps", "oltp_read_only, prepared (ps-mode=auto)", "oltp_read_only", "auto"),
    Workload("ro_text", "oltp_read_only, text (ps-mode=disable)", "oltp_read_only", "disable"),
)


@dataclass
class RunResult:
    """One sysbench run."""

    ok: bool
    qps: float = 0.0
    tps: float = 0.0
    p50_ms: float = 0.0  # per event (a query for point_select, a transaction for read_only)
    p95_ms: float = 0.0
    avg_ms: float = 0.0
    errors: int = 0
    reconnects: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # process -> cores used (1.0 = one core)
    error: str = ""


@dataclass
class Cell:
    """The rounds of one (workload, threads, target), and their medians."""

    runs: list[RunResult] = field(default_factory=list)

    @property
    def good(self) -> list[RunResult]:
        return [r for r in self.runs if r.ok]

    @property
    def ok(self) -> bool:
        return bool(self.runs) and len(self.good) == len(self.runs)

    @property
    def error(self) -> str:
        return next((r.error for r in self.runs if not r.ok), "")

    def median(self, attr: str) -> float:
        values = [getattr(r, attr) for r in self.good]
        return statistics.median(values) if values else 0.0

    def median_cpu(self, process: str) -> float:
        values = [r.cpu[process] for r in self.good if process in r.cpu]
        return statistics.median(values) if values else 0.0

    def spread(self, attr: str) -> float:
        """(max - min) / median over the rounds: how noisy the measurement was."""
        values = [getattr(r, attr) for r in self.good]
        med = statistics.median(values) if values else 0.0
        return (max(values) - min(values)) / med if len(values) > 1 and med else 0.0


_QUERIES = re.compile(r"^\s*queries:\s+\d+\s+\(([\d.]+) per sec")
_TRANSACTIONS = re.compile(r"^\s*transactions:\s+\d+\s+\(([\d.]+) per sec")
_ERRORS = re.compile(r"^\s*ignored errors:\s+(\d+)")
_RECONNECTS = re.compile(r"^\s*reconnects:\s+(\d+)")
_AVG = re.compile(r"^\s*avg:\s+([\d.]+)")
_P95 = re.compile(r"^\s*95th percentile:\s+([\d.]+)")
_BUCKET = re.compile(r"^\s*(\d+\.\d+)\s+\|[* ]*?\s(\d+)\s*$")


def percentile_from_histogram(buckets: list[tuple[float, int]], pct: float) -> float:
    """The smallest bucket value at or above which ``pct`` percent of the events lie."""
    total = sum(count for _, count in buckets)
    if not total:
        return 0.0
    need = total * pct / 100.0
    seen = 0
    for value, count in sorted(buckets):
        seen += count
        if seen >= need:
            return value
    return sorted(buckets)[-1][0]


def parse_output(text: str) -> RunResult:
    result = RunResult(ok=True)
    buckets: list[tuple[float, int]] = []
    found_queries = False
    for line in text.splitlines():
        if m := _QUERIES.match(line):
            result.qps = float(m.group(1))
            found_queries = True
        elif m := _TRANSACTIONS.match(line):
            result.tps = float(m.group(1))
        elif m := _ERRORS.match(line):
            result.errors = int(m.group(1))
        elif m := _RECONNECTS.match(line):
            result.reconnects = int(m.group(1))
        elif m := _AVG.match(line):
            result.avg_ms = float(m.group(1))
        elif m := _P95.match(line):
            result.p95_ms = float(m.group(1))
        elif m := _BUCKET.match(line):
            buckets.append((float(m.group(1)), int(m.group(2))))
    if not found_queries:
        return RunResult(ok=False, error="no statistics in sysbench output")
    if buckets:
        result.p50_ms = percentile_from_histogram(buckets, 50)
        result.p95_ms = percentile_from_histogram(buckets, 95)
    return result


def sysbench_command(
    workload: Workload,
    endpoint: Endpoint,
    *,
    threads: int,
    seconds: float,
    tables: int,
    table_size: int,
) -> list[str]:
    return [
        "sysbench",
        workload.script,
        "--db-driver=mysql",
        f"--mysql-host={endpoint.host}",
        f"--mysql-port={endpoint.port}",
        f"--mysql-user={endpoint.user}",
        f"--mysql-password={endpoint.password}",
        f"--mysql-db={endpoint.database}",
        "--mysql-ssl=off",
        f"--db-ps-mode={workload.ps_mode}",
        f"--tables={tables}",
        f"--table-size={table_size}",
        f"--threads={threads}",
        f"--time={max(1, round(seconds))}",
        "--report-interval=0",
        "--histogram=on",
        "--percentile=95",
        "run",
    ]


def run_sysbench(
    workload: Workload,
    endpoint: Endpoint,
    *,
    threads: int,
    seconds: float,
    tables: int,
    table_size: int,
    pids: dict[str, int],
) -> RunResult:
    """One bounded sysbench run; CPU of the given processes is sampled around it."""
    cmd = sysbench_command(
        workload, endpoint, threads=threads, seconds=seconds, tables=tables, table_size=table_size
    )
    before = {name: _cpu(pid) for name, pid in pids.items()}
    children_before = _children_cpu()
    busy_before = machine_busy_seconds()
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired:
        return RunResult(ok=False, error=f"sysbench did not finish within {seconds + 60:.0f}s")
    wall = time.monotonic() - started
    cpu = {
        name: (_cpu(pid) - before[name]) / wall
        for name, pid in pids.items()
        if before[name] >= 0 and _cpu(pid) >= 0
    }
    cpu["sysbench"] = (_children_cpu() - children_before) / wall
    # Whatever else ran on the machine meanwhile (other users' jobs): the noise indicator.
    machine = (machine_busy_seconds() - busy_before) / wall
    if pids:
        cpu["others"] = max(0.0, machine - sum(cpu.values()))
    if proc.returncode != 0:
        fatal = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "FATAL" in ln]
        detail = "; ".join(dict.fromkeys(fatal[:4])) or (proc.stderr or proc.stdout)[-300:]
        return RunResult(ok=False, error=f"sysbench exit {proc.returncode}: {detail}", cpu=cpu)
    result = parse_output(proc.stdout)
    result.cpu = cpu
    return result


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return -1.0
