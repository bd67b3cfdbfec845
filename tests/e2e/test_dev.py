"""`shardgate dev` as a person runs it: start, connect with what it printed, stop cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pymysql

from proxy.dev.localshard import free_port


def _shardgate() -> str:
    return str(Path(sys.executable).with_name("shardgate"))


def _start(state_dir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [_shardgate(), "dev", "--state-dir", str(state_dir), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            return proc, "".join(lines)
    proc.kill()
    raise AssertionError("shardgate dev did not start:\n" + "".join(lines))


def _connect_from(output: str) -> pymysql.connections.Connection:
    match = re.search(r"connect:\s+mariadb -h (\S+) -P (\d+) -u (\S+) -p'([^']*)' (\S+)", output)
    assert match, output
    host, port, user, password, database = match.groups()
    return pymysql.connect(
        host=host, port=int(port), user=user, password=password, database=database
    )


def _stop(proc: subprocess.Popen[str]) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def test_dev_starts_serves_and_stops_then_reuses_state(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev"
    proc, output = _start(state_dir, free_port())
    try:
        with _connect_from(output) as conn, conn.cursor() as cur:
            cur.execute("SELECT name FROM employees ORDER BY id LIMIT 1")
            assert cur.fetchone() == ("Ada Lovelace",)
            cur.execute("CREATE TABLE IF NOT EXISTS kept (v INT)")
            cur.execute("INSERT INTO kept VALUES (42)")
            conn.commit()
    finally:
        tail = _stop(proc)
    assert "shardgate dev stopped." in tail
    # The state is private: its directory, the catalog (password hashes) and the secret.
    assert state_dir.stat().st_mode & 0o777 == 0o700
    for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm", "shardgate.secret"):
        path = state_dir / name
        assert not path.exists() or path.stat().st_mode & 0o777 == 0o600, name
    assert (state_dir / "catalog.db").exists()
    # Both shard servers are gone.
    for shard in ("s0", "s1"):
        pid_file = state_dir / shard / "mysqld.pid"
        assert not pid_file.exists() or not _alive(int(pid_file.read_text().strip() or 0))

    # A second run reuses the state (data survives) with a freshly printed password.
    proc, output2 = _start(state_dir, free_port())
    try:
        with _connect_from(output2) as conn, conn.cursor() as cur:
            cur.execute("SELECT v FROM kept")
            assert cur.fetchone() == (42,)
    finally:
        _stop(proc)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
