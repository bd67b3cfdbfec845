"""The benchmark's environment: one throwaway MariaDB shard, HAProxy in TCP mode in front of it,
and shardgate (a subprocess, like HAProxy) with a non-administrator account holding table-level
grants, so every statement really goes through the privilege check.

Everything listens on 127.0.0.1 only and every process is stopped by :meth:`Stack.close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from auth.catalog import Catalog
from auth.model import CreateAccount, SetPrivileges, UserHost
from auth.privileges import Priv
from auth.urls import sqlite_path
from proxy.backend.mirror import mirror_password, mirror_user
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint, find_mariadb_client, free_port
from proxy.manage.provision import create_database
from proxy.ops.config import Config, load_config
from tests.catalog_fill import bulk_insert

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
DATABASE = "sbtest"
SHARD = "s0"
ADMIN_PASSWORD = "Bench#Admin1"
RO_PASSWORD = "Bench#ReadOnly1"
BENCH_USER = "benchuser"
BENCH_PASSWORD = "Bench#User1"
STREAM_TABLE = "stream1m"
Log = Callable[[str], None]

# The small catalog has exactly this many accounts (sbtest, sbtest_RO, benchuser + fillers).
SMALL_CATALOG_ACCOUNTS = 10


class BenchSetupError(RuntimeError):
    """The environment could not be set up; the message says what to do."""


def missing_tools() -> list[str]:
    """What is not installed, each with the command that installs it."""
    problems = []
    if shutil.which("sysbench") is None:
        problems.append("sysbench is missing: apt-get install -y sysbench")
    if _find("haproxy") is None:
        problems.append("haproxy is missing: apt-get install -y haproxy")
    if _find("mariadbd") is None or _find("mariadb") is None:
        problems.append(
            "MariaDB is missing: apt-get install -y --no-install-recommends "
            "mariadb-server mariadb-client (or run bash .ci/setup)"
        )
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        problems.append(f"matplotlib is missing: {sys.executable} -m pip install matplotlib")
    return problems


def _find(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in ("/usr/sbin", "/usr/bin", "/usr/local/sbin"):
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def tool_versions() -> dict[str, str]:
    def first_line(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return "?"
        return (
            (out.stdout or out.stderr).strip().splitlines()[0]
            if (out.stdout or out.stderr)
            else "?"
        )

    return {
        "sysbench": first_line(["sysbench", "--version"]),
        "haproxy": first_line([_find("haproxy") or "haproxy", "-v"]),
        "mariadbd": first_line([_find("mariadbd") or "mariadbd", "--version"]),
        "python": sys.version.split()[0],
    }


@dataclass(frozen=True)
class Endpoint:
    """Where a client connects and as whom."""

    name: str
    host: str
    port: int
    user: str
    password: str
    database: str = DATABASE


# --- /proc helpers --------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (shardgate with workers is a supervisor and N children)."""
    tree = [pid]
    for member in tree:
        try:
            children = Path(f"/proc/{member}/task/{member}/children").read_text().split()
        except OSError:
            continue
        tree += [int(child) for child in children]
    return tree


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` and its descendants in KiB (VmRSS, /proc/PID/status)."""
    total = 0
    for member in _process_tree(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in lines if line.startswith("VmRSS:")), 0)
    if not total:
        raise RuntimeError(f"no VmRSS for pid {pid}")
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its live descendants (all threads) so far."""
    total = 0
    for member in _process_tree(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / _CLK_TCK


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs of the machine have spent busy so far (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_for_greeting(port: int, timeout: float, proc: subprocess.Popen[bytes] | None) -> None:
    """Wait until ``HOST:port`` answers with a MySQL greeting (protocol 10)."""
    deadline = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise BenchSetupError(f"process exited with code {proc.returncode} during start-up")
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                header = s.recv(5)
                if len(header) == 5 and header[4] == 0x0A:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise BenchSetupError(f"nothing answered on {HOST}:{port} within {timeout:.0f}s")
        time.sleep(0.05)


@dataclass
class Managed:
    """A child process with its log file."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait, SIGKILL if needed; returns the exit code."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                self.proc.wait(10)
        self.log_file.close()
        return self.proc.returncode


def _spawn(
    name: str, cmd: list[str], log_path: Path, cwd: Path, env: dict[str, str] | None = None
) -> Managed:
    log_file = log_path.open("ab")
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C of the harness is handled by the harness
    )
    return Managed(name, proc, log_path, log_file)


CODE_PACKAGES = ("proxy", "auth")


def code_digest(root: Path) -> str:
    """A short digest of the proxy's Python sources under ``root`` (proxy/ and auth/)."""
    h = hashlib.sha256()
    for package in CODE_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            h.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


def snapshot_code(dest: Path) -> Path:
    """Copy proxy/ and auth/ as they are now, so one run measures one version of the code
    (other people may be editing the work tree meanwhile)."""
    dest.mkdir(parents=True, exist_ok=True)
    for package in CODE_PACKAGES:
        shutil.copytree(
            ROOT / package, dest / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return dest


def proxy_hot_path(code_dir: Path | None) -> str:
    """What ``proxy.server.hot_path()`` says for the code the proxy runs (compiled or pure)."""
    env = dict(os.environ)
    if code_dir is not None:
        env["PYTHONPATH"] = str(code_dir)
    try:
        res = subprocess.run(
            [sys.executable, "-c", "from proxy.server import hot_path; print(hot_path())"],
            capture_output=True,
            text=True,
            env=env,
            cwd=code_dir or ROOT,
            timeout=60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "?"
    return res.stdout.strip() or "?"


def shardgate_command(config_path: Path, log_level: str, code_dir: Path | None) -> list[str]:
    """``shardgate --config FILE serve``: from the code snapshot (``python -m
    proxy.manage.cli``, the shardgate entry point), else the installed script."""
    script = Path(sys.executable).with_name("shardgate")
    if code_dir is None and script.exists():
        base = [str(script)]
    else:
        base = [sys.executable, "-m", "proxy.manage.cli"]
    return [*base, "--config", str(config_path), "--log-level", log_level, "serve"]


class Stack:
    """MariaDB + HAProxy + shardgate on loopback, for one benchmark run."""

    def __init__(
        self,
        workdir: Path,
        *,
        tables: int,
        table_size: int,
        stream_rows: int,
        proxy_log_level: str,
        haproxy_threads: int | None,
        snapshot: bool = True,
        proxy_workers: int | str = 1,
    ) -> None:
        self.proxy_workers = proxy_workers
        self.workdir = workdir
        self.tables = tables
        self.table_size = table_size
        self.stream_rows = stream_rows
        self.proxy_log_level = proxy_log_level
        self.haproxy_threads = haproxy_threads
        self.shard = LocalMariaDB(workdir / "shard")
        self.shard_endpoint: ShardEndpoint | None = None
        self.config_path = workdir / "shardgate.toml"
        self.config: Config | None = None
        self.proxy_port = free_port()
        self.haproxy_port = free_port()
        self.proxy: Managed | None = None
        self.haproxy: Managed | None = None
        # The bench account's mirror on the shard (proxy.backend.mirror): the MariaDB account
        # the proxy's sessions of benchuser log in as; direct and HAProxy use it too.
        self.backend_user = ""
        self.backend_password = ""
        self.proxy_start_seconds: list[float] = []
        # Run the proxy from a copy of proxy/ and auth/ taken at start() (see snapshot_code).
        self.code_dir: Path | None = workdir / "code" if snapshot else None
        # The digest of the code each proxy start ran.
        self.proxy_code: list[str] = []
        # Which hot path that code runs (compiled or pure Python; proxy.server.hot_path).
        self.hot_path = "?"

    # -- endpoints ---------------------------------------------------------------------------

    @property
    def shard_port(self) -> int:
        assert self.shard_endpoint is not None
        return self.shard_endpoint.port

    @property
    def mariadb_pid(self) -> int:
        pid = self.shard.pid
        assert pid is not None
        return pid

    def endpoints(self) -> dict[str, Endpoint]:
        """direct and haproxy log in as the bench account's mirror (the MariaDB account
        shardgate's sessions of that account use, with the same table-level grants), so the
        shard does the same work in all three cases; shardgate as the bench account itself."""
        user = self.backend_user
        return {
            "direct": Endpoint("direct", HOST, self.shard_port, user, self.backend_password),
            "haproxy": Endpoint("haproxy", HOST, self.haproxy_port, user, self.backend_password),
            "shardgate": Endpoint("shardgate", HOST, self.proxy_port, BENCH_USER, BENCH_PASSWORD),
        }

    def pids(self) -> dict[str, int]:
        out = {"mariadbd": self.mariadb_pid}
        if self.proxy is not None and self.proxy.alive():
            out["shardgate"] = self.proxy.pid
        if self.haproxy is not None and self.haproxy.alive():
            out["haproxy"] = self.haproxy.pid
        return out

    # -- set-up ------------------------------------------------------------------------------

    def start(self, log: Log) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.code_dir is not None:
            snapshot_code(self.code_dir)
            log(f"proxy code snapshot {code_digest(self.code_dir)} in {self.code_dir}")
        log("starting a throwaway MariaDB shard")
        self.shard_endpoint = self.shard.start(timeout=120)
        self._write_config()
        self.config = load_config(self.config_path)
        catalog = Catalog.open(self.config.catalog.url, self.config.base_dir)
        try:
            log("creating logical database sbtest on s0")
            asyncio.run(
                create_database(self.config, catalog, DATABASE, SHARD, ADMIN_PASSWORD, RO_PASSWORD)
            )
            log(f"sysbench prepare: {self.tables} tables x {self.table_size} rows")
            self._sysbench_prepare()
            if self.stream_rows:
                log(f"filling {STREAM_TABLE} with {self.stream_rows:,} rows")
                self._fill_stream_table()
            account_id = self._create_bench_account(catalog)
        finally:
            catalog.close()
        secret = self.config.catalog_secret()
        self.backend_user = mirror_user(secret, account_id, DATABASE)
        self.backend_password = mirror_password(secret, SHARD, self.backend_user)
        self.start_proxy(log)
        self._wait_for_mirror(log)
        self.start_haproxy(log)

    def _wait_for_mirror(self, log: Log, timeout: float = 60.0) -> None:
        """Until the bench account's mirror exists on the shard (the proxy creates it when it
        starts, and a first session through the proxy waits for it): one query through the
        proxy, then a login as the mirror directly."""
        log(f"waiting for the bench account's mirror {self.backend_user} on the shard")
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            ok_proxy, last = self._client_query(self.proxy_port, BENCH_USER, BENCH_PASSWORD)
            if ok_proxy:
                ok_direct, last = self._client_query(
                    self.shard_port, self.backend_user, self.backend_password
                )
                if ok_direct:
                    return
            time.sleep(0.5)
        raise BenchSetupError(f"the bench account's mirror did not appear: {last}")

    def _client_query(self, port: int, user: str, password: str) -> tuple[bool, str]:
        """``SELECT c FROM sbtest1 WHERE id = 1`` with the mariadb client: (worked, stderr)."""
        env = {k: v for k, v in os.environ.items() if k not in ("MYSQL_PWD", "MYSQL_HOST")}
        env["MYSQL_PWD"] = password
        cmd = [
            str(find_mariadb_client()),
            "--no-defaults",
            "--protocol=TCP",
            f"--host={HOST}",
            f"--port={port}",
            f"--user={user}",
            "--skip-ssl",
            "--batch",
            f"--database={DATABASE}",
            "-e",
            "SELECT c FROM sbtest1 WHERE id = 1",
        ]
        try:
            res = subprocess.run(
                cmd, capture_output=True, text=True, env=env, timeout=30, check=False
            )
        except subprocess.TimeoutExpired:
            return False, "timed out"
        return res.returncode == 0, res.stderr.strip()

    def _write_config(self) -> None:
        assert self.shard_endpoint is not None
        shard = self.shard_endpoint
        self.config_path.write_text(
            "\n".join(
                [
                    "[server]",
                    f'host = "{HOST}"',
                    f"port = {self.proxy_port}",
                    'auth_plugin = "mysql_native_password"',
                    "handshake_timeout = 10.0",
                    "drain_timeout = 5.0",
                    f"workers = {_toml_workers(self.proxy_workers)}",
                    "[catalog]",
                    'url = "sqlite:///catalog.db"',
                    'secret_file = "shardgate.secret"',
                    "[[shards]]",
                    f'name = "{SHARD}"',
                    f'host = "{shard.host}"',
                    f"port = {shard.port}",
                    f'user = "{shard.user}"',
                    f'password = "{shard.password}"',
                    "",
                ]
            )
        )

    def root_env(self) -> dict[str, str]:
        assert self.shard_endpoint is not None
        env = {k: v for k, v in os.environ.items() if k not in ("MYSQL_PWD", "MYSQL_HOST")}
        env["MYSQL_PWD"] = self.shard_endpoint.password
        return env

    def _sysbench_prepare(self) -> None:
        assert self.shard_endpoint is not None
        cmd = [
            "sysbench",
            "oltp_read_only",
            "--db-driver=mysql",
            f"--mysql-host={HOST}",
            f"--mysql-port={self.shard_port}",
            f"--mysql-user={self.shard_endpoint.user}",
            f"--mysql-password={self.shard_endpoint.password}",
            f"--mysql-db={DATABASE}",
            "--mysql-ssl=off",
            f"--tables={self.tables}",
            f"--table-size={self.table_size}",
            "prepare",
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if res.returncode != 0:
            raise BenchSetupError(f"sysbench prepare failed:\n{res.stdout[-2000:]}{res.stderr}")

    def _root_client(self) -> list[str]:
        return [
            str(find_mariadb_client()),
            "--no-defaults",
            "--protocol=TCP",
            f"--host={HOST}",
            f"--port={self.shard_port}",
            "--user=root",
            "--skip-ssl",
            "--batch",
            "--skip-column-names",
        ]

    @contextlib.contextmanager
    def mariadb_root_session(self) -> Iterator[subprocess.Popen[str]]:
        """One mariadb command-line client as root on the shard, kept open: write statements
        (each ending in ``;`` and a newline) to its stdin, read their rows from its stdout (it
        flushes after each statement). Closed, and waited for, on leaving."""
        proc = subprocess.Popen(
            [*self._root_client(), "--unbuffered"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=self.root_env(),
        )
        try:
            yield proc
        finally:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def mariadb_root(self, sql: str, timeout: float = 600) -> str:
        """Run SQL on the shard as root with the mariadb command-line client."""
        cmd = self._root_client()
        res = subprocess.run(
            cmd,
            input=sql,
            capture_output=True,
            text=True,
            env=self.root_env(),
            timeout=timeout,
            check=False,
        )
        if res.returncode != 0:
            raise BenchSetupError(f"mariadb client failed: {res.stderr.strip()}")
        return res.stdout

    def _fill_stream_table(self) -> None:
        self.mariadb_root(
            f"""
            CREATE TABLE {DATABASE}.{STREAM_TABLE} (
                id INT NOT NULL PRIMARY KEY, k INT NOT NULL, c CHAR(64) NOT NULL
            ) ENGINE=InnoDB;
            SET SESSION max_recursive_iterations = {self.stream_rows + 10};
            INSERT INTO {DATABASE}.{STREAM_TABLE}
              WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s
                                      WHERE n < {self.stream_rows})
              SELECT n, (n * 7919) % 100000, CONCAT(MD5(n), MD5(n + 1)) FROM s;
            """
        )

    def _create_bench_account(self, catalog: Catalog) -> int:
        """Create benchuser (and the fillers); returns benchuser's account id."""
        bench = UserHost(BENCH_USER, "%")
        tables = [f"sbtest{i}" for i in range(1, self.tables + 1)]
        if self.stream_rows:
            tables.append(STREAM_TABLE)
        changes: list[CreateAccount | SetPrivileges] = [
            CreateAccount(BENCH_USER, "%", BENCH_PASSWORD, DATABASE)
        ]
        changes += [SetPrivileges(bench, DATABASE, table, Priv.SELECT) for table in tables]
        # Fill up to SMALL_CATALOG_ACCOUNTS accounts (the two built-ins are already there).
        for i in range(SMALL_CATALOG_ACCOUNTS - 3):
            filler = UserHost(f"filler{i + 1}", "%")
            changes.append(CreateAccount(filler.user, "%", f"Filler#pass{i + 1}", DATABASE))
            changes.append(SetPrivileges(filler, DATABASE, "sbtest1", Priv.SELECT))
        catalog.apply(changes, actor="operator", client="", action="bench set-up")
        snapshot = catalog.snapshot()
        assert len(snapshot) == SMALL_CATALOG_ACCOUNTS
        account = snapshot.find_account(BENCH_USER, "%")
        assert account is not None
        return account.id

    # -- processes ---------------------------------------------------------------------------

    def start_proxy(self, log: Log) -> None:
        log(f"starting shardgate on {HOST}:{self.proxy_port}")
        env = None
        if self.code_dir is not None:
            env = dict(os.environ)
            env["PYTHONPATH"] = str(self.code_dir)
        self.proxy_code.append(code_digest(self.code_dir or ROOT))
        started = time.monotonic()
        self.proxy = _spawn(
            "shardgate",
            shardgate_command(self.config_path, self.proxy_log_level, self.code_dir),
            self.workdir / "shardgate.log",
            self.code_dir or ROOT,
            env,
        )
        try:
            wait_for_greeting(self.proxy_port, 600, self.proxy.proc)
        except BenchSetupError as exc:
            raise BenchSetupError(
                f"shardgate did not start: {exc}; see {self.proxy.log_path}:\n"
                + _tail(self.proxy.log_path)
            ) from None
        self.proxy_start_seconds.append(time.monotonic() - started)
        self.hot_path = proxy_hot_path(self.code_dir)
        log(f"shardgate's hot path: {self.hot_path}")

    def stop_proxy(self) -> int | None:
        if self.proxy is None:
            return None
        code = self.proxy.stop()
        self.proxy = None
        return code

    def start_haproxy(self, log: Log) -> None:
        haproxy = _find("haproxy")
        assert haproxy is not None
        cfg = self.workdir / "haproxy.cfg"
        threads = f"    nbthread {self.haproxy_threads}\n" if self.haproxy_threads else ""
        cfg.write_text(
            "global\n"
            "    maxconn 9000\n"
            f"{threads}"
            "defaults\n"
            "    mode tcp\n"
            "    timeout connect 5s\n"
            "    timeout client 30m\n"
            "    timeout server 30m\n"
            "listen mysql\n"
            f"    bind {HOST}:{self.haproxy_port}\n"
            f"    server s0 {HOST}:{self.shard_port}\n"
        )
        check = subprocess.run(
            [haproxy, "-c", "-f", str(cfg)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if check.returncode != 0:
            raise BenchSetupError(f"haproxy config check failed: {check.stdout}{check.stderr}")
        log(f"starting HAProxy (TCP mode) on {HOST}:{self.haproxy_port}")
        self.haproxy = _spawn(
            "haproxy", [haproxy, "-db", "-f", str(cfg)], self.workdir / "haproxy.log", ROOT
        )
        try:
            wait_for_greeting(self.haproxy_port, 30, self.haproxy.proc)
        except BenchSetupError as exc:
            raise BenchSetupError(
                f"haproxy did not start: {exc}\n{_tail(self.haproxy.log_path)}"
            ) from None

    def close(self) -> None:
        for managed in (self.haproxy, self.proxy):
            if managed is not None:
                with contextlib.suppress(Exception):
                    managed.stop()
        self.haproxy = None
        self.proxy = None
        with contextlib.suppress(Exception):
            self.shard.stop(timeout=30)

    # -- the big catalog ---------------------------------------------------------------------

    def fill_big_catalog(self, accounts: int, table_grants: int, databases: int) -> None:
        """Add ``accounts`` accounts and ``table_grants`` table grants straight into the SQLite
        file, the way tests/unit/test_catalog.py's scale test does (the proxy must be stopped:
        it reloads everything when it starts)."""
        assert self.config is not None
        with Catalog.open(self.config.catalog.url, self.config.base_dir) as catalog:
            for k in range(databases):
                catalog.create_database(f"db{k}", SHARD, f"db{k}", f"sg_db{k}", "", "")
        bulk_insert(
            sqlite_path(self.config.catalog.url, self.config.base_dir),
            accounts,
            table_grants,
            databases,
        )


def _toml_workers(workers: int | str) -> str:
    """``[server] workers`` as TOML: a number, or the string "auto"."""
    return f'"{workers}"' if isinstance(workers, str) else str(workers)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
