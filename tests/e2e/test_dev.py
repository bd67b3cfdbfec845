"""`shardgate dev` as a person runs it: start, connect with what it printed, stop cleanly; one
per state directory; the same passwords from run to run; the dashboard; one-line errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pymysql
import pytest
from click.testing import CliRunner

import proxy.dev.localshard as localshard
from proxy.dev.localshard import free_port
from proxy.manage.cli import main


def _shardgate() -> str:
    return str(Path(sys.executable).with_name("shardgate"))


def _start(state_dir: Path, port: int, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [_shardgate(), "dev", "--state-dir", str(state_dir), "--port", str(port), *extra],
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


def _passwords(output: str) -> dict[str, str]:
    found = dict(re.findall(r"-u (\S+) -p'([^']*)'", output))
    assert set(found) == {"demo", "demo_RO", "shop", "sales"}, output
    return found


def _connect_from(output: str) -> pymysql.connections.Connection:
    match = re.search(r"connect:\s+mariadb -h (\S+) -P (\d+) -u (\S+) -p'([^']*)' (\S+)", output)
    assert match, output
    host, port, user, password, database = match.groups()
    return pymysql.connect(
        host=host, port=int(port), user=user, password=password, database=database
    )


def _sharded_demo(output: str) -> tuple[int, int]:
    """Through the printed sharded-demo command: the number of customers, and how many
    physical tables ``orders`` has (its DRDS topology)."""
    match = re.search(r"sharded:\s+mariadb -h (\S+) -P (\d+) -u (\S+) -p'([^']*)' (\S+)", output)
    assert match, output
    host, port, user, password, database = match.groups()
    with (
        pymysql.connect(
            host=host,
            port=int(port),
            user=user,
            password=password,
            database=database,
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT COUNT(*) FROM customers")
        (customers,) = cur.fetchone()
        cur.execute("SELECT c.country, COUNT(*) FROM cities c GROUP BY c.country")
        assert len(cur.fetchall()) == 4
        cur.execute("SELECT name FROM customers WHERE id = 3")
        assert cur.fetchone() == ("Edsger",)
        cur.execute("SELECT value FROM settings WHERE name = 'currency'")  # a single table
        assert cur.fetchone() == ("EUR",)
        # Merged over orders' 8 physical tables, inside PyMySQL's autocommit=0 transaction.
        cur.execute("SELECT customer_id, SUM(total) FROM orders GROUP BY 1 ORDER BY 2 DESC")
        assert cur.fetchone() == (2, Decimal("330.00"))
        cur.execute("SHOW TOPOLOGY FROM orders")
        return customers, len(cur.fetchall())


def _stop(proc: subprocess.Popen[str]) -> str:
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    return out


def test_dev_starts_serves_and_stops_then_reuses_state(tmp_path: Path) -> None:
    state_dir = tmp_path / "dev"
    port, admin_port = free_port(), free_port()
    proc, output = _start(state_dir, port, "--admin", "--admin-port", str(admin_port))
    try:
        with _connect_from(output) as conn, conn.cursor() as cur:
            cur.execute("SELECT name FROM employees ORDER BY id LIMIT 1")
            assert cur.fetchone() == ("Ada Lovelace",)
            cur.execute("CREATE TABLE IF NOT EXISTS kept (v INT)")
            cur.execute("INSERT INTO kept VALUES (42)")
            conn.commit()
        # The sharded demo: over both shards, 4 physical databases, orders split in 2 each.
        assert _sharded_demo(output) == (8, 8)
        # --admin: the dashboard, at the URL printed.
        url = f"http://127.0.0.1:{admin_port}/"
        assert f"  dashboard: {url} (sign in as demo" in output
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200
        # A second dev on the same state is refused, saying where the first one runs.
        second = subprocess.run(
            [_shardgate(), "dev", "--state-dir", str(state_dir), "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 1
        assert second.stderr.splitlines() == [
            f"Error: shardgate dev is already running on {state_dir} (pid {proc.pid}, proxy on "
            f"127.0.0.1:{port}): stop it first (Ctrl-C in its terminal), or use another "
            "--state-dir"
        ]
    finally:
        tail = _stop(proc)
    assert "shardgate dev stopped." in tail
    # The passwords appear where they are printed for the person, in no log line.
    first = _passwords(output)
    for line in (output + tail).splitlines():
        if any(password in line for password in first.values()):
            assert line.startswith(("  connect:", "  read-only:", "  shop:", "  sharded:")), line
    # The state is private: its directory, the catalog (password hashes), the secret and the
    # kept passwords.
    assert state_dir.stat().st_mode & 0o777 == 0o700
    for name in (
        "catalog.db",
        "catalog.db-wal",
        "catalog.db-shm",
        "shardgate.secret",
        "dev-passwords.json",
        "dev.lock",
    ):
        path = state_dir / name
        assert not path.exists() or path.stat().st_mode & 0o777 == 0o600, name
    assert (state_dir / "catalog.db").exists() and (state_dir / "dev-passwords.json").exists()
    # Both shard servers are gone.
    for shard in ("s0", "s1"):
        pid_file = state_dir / shard / "mysqld.pid"
        assert not pid_file.exists() or not _alive(int(pid_file.read_text().strip() or 0))

    # A second run reuses the state (data survives) and the same passwords.
    proc, output2 = _start(state_dir, free_port())
    try:
        assert _passwords(output2) == first
        assert "dashboard:" not in output2
        with _connect_from(output2) as conn, conn.cursor() as cur:
            cur.execute("SELECT v FROM kept")
            assert cur.fetchone() == (42,)
        assert _sharded_demo(output2) == (8, 8)  # kept, not loaded twice
    finally:
        _stop(proc)


def _error_lines(result: object) -> list[str]:
    from click.testing import Result

    assert isinstance(result, Result)
    assert result.exit_code == 1, result.output
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_dev_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The port is taken: said before any shard starts.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            main, ["dev", "--state-dir", str(tmp_path / "a"), "--port", str(port)]
        )
        assert _error_lines(result) == [
            f"Error: cannot listen on 127.0.0.1:{port} (Address already in use): stop what "
            "uses it, or choose another port with --port"
        ]
        admin = ["--admin", "--admin-port", str(port)]
        result = CliRunner().invoke(
            main, ["dev", "--state-dir", str(tmp_path / "a"), "--port", str(free_port()), *admin]
        )
        assert _error_lines(result)[0].endswith("choose another port with --admin-port")
    assert not (tmp_path / "a" / "s0").exists()
    # No MariaDB binaries.
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(localshard, "_EXTRA_BIN_DIRS", ())
    result = CliRunner().invoke(
        main, ["dev", "--state-dir", str(tmp_path / "b"), "--port", str(free_port())]
    )
    [line] = _error_lines(result)
    assert line.startswith("Error: mariadbd not found in $PATH") and "apt-get install" in line


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
