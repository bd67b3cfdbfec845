"""Several worker processes on one port (``[server] workers = N``), so more cores are used.

``shardgate serve`` with ``workers > 1`` becomes a small supervisor: it starts N copies of
itself (``serve --worker I/N``), each a complete proxy listening on the same address with
``SO_REUSEPORT`` (the kernel spreads new connections over them), forwards SIGTERM/SIGINT (drain)
and SIGHUP (reload) to all of them, and restarts a worker that dies. Nothing on the hot path is
shared: each worker has its own event loop, sessions, caches and catalog snapshot (polled from
the shared catalog, as separate nodes do).

What the workers share goes through a private runtime directory: every second each worker
writes its metrics exposition and its query digest there; worker 0, which alone runs the admin
listener, serves ``/metrics`` as the union of all workers' samples (each labelled
``worker="I"``), and ``SHOW QUERY_DIGEST`` on any worker merges every worker's digest. A
session's ``SHOW PROCESSLIST`` and ``KILL`` reach the sessions of its own worker only.
Connection ids stay unique across workers (worker I of N hands out ids congruent to I mod N).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from proxy.ops.digest import DigestEntry

log = logging.getLogger("shardgate.workers")

RUNTIME_ENV = "SHARDGATE_WORKER_DIR"
PUBLISH_SECONDS = 1.0
RESTART_DELAY = 1.0
# Beyond drain_timeout, how long a stopping worker may take before it is killed: the grace of
# statements interrupted at drain_timeout, then writing out queued login records.
STOP_MARGIN = 20.0


@dataclass(frozen=True)
class WorkerSlot:
    """This process's place among the workers."""

    index: int
    count: int
    runtime_dir: Path

    @classmethod
    def parse(cls, text: str, runtime_dir: Path) -> WorkerSlot:
        """``"I/N"`` as given to ``serve --worker``."""
        index_text, _, count_text = text.partition("/")
        index, count = int(index_text), int(count_text)
        if not 0 <= index < count:
            raise ValueError(f"worker {text}: the index must be in 0..{count - 1}")
        return cls(index, count, runtime_dir)

    def connection_id(self, sequence: int) -> int:
        """The ``sequence``-th connection id of this worker (1-based), unique across workers."""
        return (sequence - 1) * self.count + self.index + 1

    def _path(self, index: int, kind: str) -> Path:
        return self.runtime_dir / f"worker-{index}.{kind}"

    def publish(self, metrics_text: str, digest: dict[tuple[str | None, str], DigestEntry]) -> None:
        """Write this worker's metrics and digest for the others (atomically, by rename)."""
        _write_atomically(self._path(self.index, "prom"), labelled(metrics_text, self.index))
        rows = [
            [
                db,
                text,
                e.count,
                e.total,
                e.min,
                e.max,
                e.rows,
                e.first_seen,
                e.last_seen,
                e.scatters,
                e.partitions,
            ]
            for (db, text), e in digest.items()
        ]
        _write_atomically(self._path(self.index, "digest.json"), json.dumps(rows))

    def peer_metrics(self) -> list[str]:
        """The other workers' last published expositions."""
        texts = []
        for index in range(self.count):
            if index == self.index:
                continue
            with contextlib.suppress(OSError):
                texts.append(self._path(index, "prom").read_text())
        return texts

    def merged_metrics(self, own: str) -> str:
        """This worker's exposition ``own`` with the others' last published ones, every
        sample labelled with its worker (what worker 0 serves on ``/metrics``)."""
        return merge_expositions([labelled(own, self.index), *self.peer_metrics()])

    def peer_digests(self) -> list[dict[tuple[str | None, str], DigestEntry]]:
        """The other workers' last published digests."""
        digests = []
        for index in range(self.count):
            if index == self.index:
                continue
            try:
                rows = json.loads(self._path(index, "digest.json").read_text())
            except (OSError, ValueError):
                continue
            digests.append({(row[0], row[1]): DigestEntry(*row[2:]) for row in rows})
        return digests


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def labelled(text: str, worker: int) -> str:
    """The exposition with ``worker="N"`` added to every sample."""
    label = f'worker="{worker}"'
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            out.append(line)
            continue
        name, sep, rest = line.partition("{")
        if sep:
            comma = "" if rest.startswith("}") else ","
            out.append(f"{name}{{{label}{comma}{rest}")
        else:
            metric, _, value = line.partition(" ")
            out.append(f"{metric}{{{label}}} {value}")
    return "\n".join(out) + "\n"


def merge_expositions(texts: list[str]) -> str:
    """One exposition from several: each family's HELP/TYPE once, then all its samples."""
    families: dict[str, list[str]] = {}
    heads: dict[str, list[str]] = {}
    for text in texts:
        current = ""
        for line in text.splitlines():
            if line.startswith("# HELP ") or line.startswith("# TYPE "):
                current = line.split(" ", 3)[2]
                head = heads.setdefault(current, [])
                if len(head) < 2 and line not in head:
                    head.append(line)
                families.setdefault(current, [])
            elif line and not line.startswith("#"):
                families.setdefault(current, []).append(line)
    out = []
    for name, samples in families.items():
        out += heads.get(name, [])
        out += samples
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------
# The supervisor


def run_supervisor(config_path: Path, count: int, log_level: str | None, drain: float) -> int:
    """Start ``count`` workers and keep them running until SIGTERM/SIGINT; the exit status."""
    runtime_dir = Path(tempfile.mkdtemp(prefix="shardgate-workers-"))
    env = {**os.environ, RUNTIME_ENV: str(runtime_dir)}

    def spawn(index: int) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "proxy.manage.cli", "--config", str(config_path)]
        if log_level:
            argv += ["--log-level", log_level]
        argv += ["serve", "--worker", f"{index}/{count}"]
        return subprocess.Popen(argv, env=env)

    workers = [spawn(index) for index in range(count)]
    started = [time.monotonic()] * count
    quick_deaths = 0
    stopping = False

    def forward(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if signum in (signal.SIGTERM, signal.SIGINT):
            stopping = True
            signum = signal.SIGTERM
        for worker in workers:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    log.info("shardgate supervisor: %d workers (pids %s)", count, [w.pid for w in workers])
    status = 0
    try:
        while not stopping:
            time.sleep(0.2)
            for index, worker in enumerate(workers):
                code = worker.poll()
                if code is None or stopping:
                    continue
                # A worker that keeps dying right after start (port taken, bad config)
                # will not get better: stop them all rather than loop.
                quick_deaths = quick_deaths + 1 if time.monotonic() - started[index] < 5 else 0
                if quick_deaths >= 3:
                    log.error("workers keep exiting at start (last: %s); giving up", code)
                    forward(signal.SIGTERM, None)
                    status = 1
                    break
                log.error("worker %d exited with %s; restarting it", index, code)
                time.sleep(RESTART_DELAY)
                workers[index] = spawn(index)
                started[index] = time.monotonic()
        # Each worker drains as a single process does (proxy/server.py).
        deadline = time.monotonic() + drain + STOP_MARGIN
        for worker in workers:
            try:
                worker.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
    finally:
        for path in runtime_dir.iterdir():
            path.unlink(missing_ok=True)
        runtime_dir.rmdir()
    return status
