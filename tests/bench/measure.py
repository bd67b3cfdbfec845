"""The measurements that are not sysbench: logins per second, memory per idle connection,
streaming a large result, and a py-spy profile of the proxy."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from proxy.dev.localshard import find_mariadb_client
from tests.bench.stack import ROOT, STREAM_TABLE, Endpoint, cpu_seconds, fd_count, rss_kib
from tests.bench.wireclient import Target, WireClient, WireError

# --- logins per second -------------------------------------------------------------------


@dataclass
class LoginResult:
    per_second: list[float] = field(default_factory=list)
    failures: int = 0
    error: str = ""
    server_cpu: list[float] = field(default_factory=list)  # cores used by the measured server

    @property
    def median(self) -> float:
        return statistics.median(self.per_second) if self.per_second else 0.0


LOGIN_SCRIPT = Path(__file__).resolve().with_name("logins.lua")
_LOGINS = re.compile(r"^\s*transactions:\s+\d+\s+\(([\d.]+) per sec")


def login_round(
    endpoint: Endpoint, seconds: float, threads: int, server_pid: int, into: LoginResult
) -> None:
    """One sysbench run of logins.lua (connect, authenticate, COM_QUIT in a loop) against
    ``endpoint`` with ``threads`` client threads; the server's CPU is sampled around it."""
    cmd = [
        "sysbench",
        str(LOGIN_SCRIPT),
        "--db-driver=mysql",
        f"--mysql-host={endpoint.host}",
        f"--mysql-port={endpoint.port}",
        f"--mysql-user={endpoint.user}",
        f"--mysql-password={endpoint.password}",
        f"--mysql-db={endpoint.database}",
        "--mysql-ssl=off",
        f"--threads={threads}",
        f"--time={max(1, round(seconds))}",
        "run",
    ]
    cpu_before = cpu_seconds(server_pid)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired:
        into.error = into.error or "sysbench (logins) timed out"
        return
    wall = time.monotonic() - started
    into.server_cpu.append((cpu_seconds(server_pid) - cpu_before) / wall)
    rate = next(
        (float(m.group(1)) for ln in proc.stdout.splitlines() if (m := _LOGINS.match(ln))), None
    )
    if proc.returncode != 0 or rate is None:
        fatal = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "FATAL" in ln]
        into.failures += 1
        into.error = into.error or ("; ".join(fatal[:3]) or proc.stderr.strip()[-300:])
        return
    into.per_second.append(rate)


# --- memory per idle connection ----------------------------------------------------------


@dataclass
class IdleResult:
    connections: int = 0
    failures: int = 0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    fds_before: int = 0
    fds_after: int = 0
    used_connections: int = 0
    rss_after_used_kib: int = 0
    rss_after_close_kib: int = 0
    open_seconds: float = 0.0
    error: str = ""

    @property
    def per_idle_bytes(self) -> float:
        if not self.connections:
            return 0.0
        return (self.rss_after_kib - self.rss_before_kib) * 1024 / self.connections

    @property
    def per_used_bytes(self) -> float:
        """Extra memory once a connection has run a statement (its backend connection)."""
        if not self.used_connections:
            return 0.0
        return (self.rss_after_used_kib - self.rss_after_kib) * 1024 / self.used_connections


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (children inherit it)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def _open_many(
    target: Target, count: int, batch: int, clients: list[WireClient]
) -> tuple[int, str]:
    failures = 0
    error = ""
    sem = asyncio.Semaphore(batch)

    async def one() -> None:
        nonlocal failures, error
        async with sem:
            try:
                clients.append(await WireClient.connect(target, timeout=30))
            except (OSError, WireError, TimeoutError) as exc:
                failures += 1
                error = error or f"{exc.__class__.__name__}: {exc}"

    await asyncio.gather(*(one() for _ in range(count)))
    return failures, error


async def _idle(
    endpoint: Endpoint, pid: int, count: int, used: int, used_sql: str, settle: float
) -> IdleResult:
    target = Target(
        endpoint.host, endpoint.port, endpoint.user, endpoint.password, endpoint.database
    )
    result = IdleResult()
    # Warm up: the first logins import and allocate what every later session shares.
    warm: list[WireClient] = []
    await _open_many(target, 50, 50, warm)
    for client in warm[:10]:
        await client.query(used_sql)
    for client in warm:
        await client.quit()
    await asyncio.sleep(settle)
    result.rss_before_kib = rss_kib(pid)
    result.fds_before = fd_count(pid)
    clients: list[WireClient] = []
    started = time.monotonic()
    try:
        result.failures, result.error = await _open_many(target, count, 100, clients)
        result.open_seconds = time.monotonic() - started
        result.connections = len(clients)
        await asyncio.sleep(settle)
        result.rss_after_kib = rss_kib(pid)
        result.fds_after = fd_count(pid)
        if used:
            for client in clients[:used]:
                await client.query(used_sql)
            result.used_connections = min(used, len(clients))
            await asyncio.sleep(settle)
            result.rss_after_used_kib = rss_kib(pid)
    finally:
        await asyncio.gather(*(c.quit() for c in clients), return_exceptions=True)
    await asyncio.sleep(settle)
    result.rss_after_close_kib = rss_kib(pid)
    return result


def measure_idle(
    endpoint: Endpoint, pid: int, count: int, used: int, used_sql: str, timeout: float = 300
) -> IdleResult:
    """Open ``count`` logged-in idle connections from this process; the proxy's RSS before and
    after. Then ``used`` of them run one statement (which opens their backend connection)."""
    gc.collect()
    return asyncio.run(
        asyncio.wait_for(_idle(endpoint, pid, count, used, used_sql, settle=2.0), timeout)
    )


# --- streaming a large result -------------------------------------------------------------


@dataclass
class StreamRun:
    seconds: float
    rows: int
    bytes: int
    ok: bool
    error: str = ""
    rss_samples: list[tuple[float, int]] = field(default_factory=list)  # (t, KiB)


@dataclass
class StreamResult:
    runs: list[StreamRun] = field(default_factory=list)

    @property
    def good(self) -> list[StreamRun]:
        return [r for r in self.runs if r.ok]

    @property
    def median_seconds(self) -> float:
        good = self.good
        return statistics.median(r.seconds for r in good) if good else 0.0


class _RssSampler:
    def __init__(self, pid: int, interval: float) -> None:
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError, RuntimeError):
                self.samples.append((time.monotonic() - self._t0, rss_kib(self.pid)))
            self._stop.wait(self.interval)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def stream_once(
    endpoint: Endpoint, rows: int, rss_pid: int | None, timeout: float = 600
) -> StreamRun:
    """SELECT every row of the stream table with the mariadb client in --quick (unbuffered)
    mode, output counted and dropped; optionally sample ``rss_pid``'s RSS meanwhile."""
    env = {k: v for k, v in os.environ.items() if k not in ("MYSQL_PWD", "MYSQL_HOST")}
    env["MYSQL_PWD"] = endpoint.password
    cmd = [
        str(find_mariadb_client()),
        "--no-defaults",
        "--protocol=TCP",
        f"--host={endpoint.host}",
        f"--port={endpoint.port}",
        f"--user={endpoint.user}",
        f"--database={endpoint.database}",
        "--skip-ssl",
        "--quick",
        "--batch",
        "--skip-column-names",
        f"--execute=SELECT id, k, c FROM {STREAM_TABLE}",
    ]
    sampler = _RssSampler(rss_pid, 0.02) if rss_pid is not None else None
    lines = 0
    total = 0
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        if sampler is not None:
            stack.enter_context(sampler)
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        assert proc.stdout is not None and proc.stderr is not None
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            while chunk := proc.stdout.read(1 << 20):
                total += len(chunk)
                lines += chunk.count(b"\n")
            err = proc.stderr.read().decode(errors="replace")
            proc.wait()
        finally:
            killer.cancel()
            proc.stdout.close()
            proc.stderr.close()
    seconds = time.monotonic() - started
    ok = proc.returncode == 0 and lines == rows
    error = "" if ok else f"exit {proc.returncode}, {lines} rows: {err.strip()[-300:]}"
    return StreamRun(
        seconds, lines, total, ok, error, sampler.samples if sampler is not None else []
    )


# --- profile ------------------------------------------------------------------------------


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    if found.exists():
        return str(found)
    return shutil.which("py-spy")


def _strip_line(frame: str) -> str:
    """'handler (proxy/session/session.py:123)' -> 'handler (proxy/session/session.py)'."""
    if frame.endswith(")") and " (" in frame:
        name, _, where = frame[:-1].rpartition(" (")
        path = where.rsplit(":", 1)[0]
        for marker in ("/site-packages/", "/work/main/", str(ROOT) + "/"):
            if marker in path:
                path = path.split(marker, 1)[1]
        return f"{name} ({path})"
    return frame


# Frames whose self time is C code under uvloop: the transport's send() (write_raw calls
# transport.write, which sends at once), and the event loop itself (recv, epoll, callbacks).
_IO_FRAMES = (
    "PacketConnection.write_raw ",
    "ClientConnection.write_raw ",
    "StreamWriter.write ",
    "Runner.run ",
)


def summarize_raw(raw: str, rate: int, seconds: float, top: int = 25) -> str:
    """Self and inclusive time per function from py-spy's collapsed-stack (raw) output."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_file: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_strip_line(f) for f in stack.split(";")]
        # The first frame is the thread ("process 123:..." / "thread (0x..)"): skip it.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_time[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
        leaf_file = frames[-1].rpartition(" (")[2].rstrip(")")
        by_file[leaf_file] += count
    if not total:
        return "py-spy collected no samples\n"
    expected = rate * seconds
    out = [
        f"samples: {total} at {rate} Hz over {seconds:.0f} s "
        f"(the proxy's Python thread(s) were busy ~{100 * total / expected:.0f}% of the time;",
        "idle time in the event loop's epoll wait is not sampled)",
        "",
        f"top {top} by SELF time (the function itself was running):",
    ]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    io = sum(n for name, n in self_time.items() if name.startswith(_IO_FRAMES))
    out += [
        "",
        f"{100 * io / total:.0f}% of the samples sit in {' / '.join(_IO_FRAMES)}: with uvloop "
        "these frames stand for C code",
        "(the send()/recv() syscalls, which on loopback also run the peer's TCP receive path and "
        "wake-up,",
        "epoll, and time the proxy waited for a CPU after being preempted; py-spy samples wall "
        "time).",
        f"top {top} by SELF time among the other {total - io} samples (the interpreter's work):",
    ]
    out += [
        f"  {100 * n / (total - io):5.1f}%  {name}"
        for name, n in self_time.most_common()
        if not name.startswith(_IO_FRAMES)
    ][:top]
    out += ["", f"top {top} by INCLUSIVE time (the function was on the stack):"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "self time by source file:"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in by_file.most_common(15)]
    return "\n".join(out) + "\n"


def start_py_spy(pid: int, seconds: float, rate: int, raw_path: Path) -> subprocess.Popen[bytes]:
    spy = py_spy()
    assert spy is not None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--output",
            str(raw_path),
            "--duration",
            str(max(1, round(seconds))),
            "--rate",
            str(rate),
            "--nonblocking",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


# --- idle clients under load (the connection pool) ------------------------------------------


@dataclass
class IdleLoadResult:
    """Thousands of idle clients (each has run one statement) while sysbench runs: the load's
    throughput, the proxy's memory per idle client, and the shard's connections."""

    idle_clients: int = 0
    failures: int = 0
    error: str = ""
    per_idle_bytes: float = 0.0
    qps_loaded: float = 0.0
    # The same run just before the idle clients were opened, and the proxy's CPU per query.
    qps_alone: float = 0.0
    us_per_query_loaded: float = 0.0
    us_per_query_alone: float = 0.0
    shard_connections_max: int = 0
    pool_size: int = 0


class IdleClients:
    """``count`` logged-in clients held open from a thread of their own, each having run
    ``sql`` once (its session then has a pooled connection's worth of state, and no
    connection)."""

    def __init__(self, endpoint: Endpoint, count: int, sql: str) -> None:
        self._target = Target(
            endpoint.host, endpoint.port, endpoint.user, endpoint.password, endpoint.database
        )
        self._count = count
        self._sql = sql
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.opened = 0
        self.failures = 0
        self.error = ""
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        clients: list[WireClient] = []
        try:
            self.failures, self.error = await _open_many(self._target, self._count, 100, clients)
            for client in clients:
                try:
                    await client.query(self._sql)
                except (OSError, WireError) as exc:
                    self.failures += 1
                    self.error = self.error or f"{exc.__class__.__name__}: {exc}"
            self.opened = len(clients)
        finally:
            self._ready.set()
        await self._stop.wait()
        await asyncio.gather(*(c.quit() for c in clients), return_exceptions=True)

    def open(self, timeout: float = 300) -> None:
        self._thread.start()
        self._ready.wait(timeout)

    def close(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
