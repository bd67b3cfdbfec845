"""Throwaway local MariaDB servers ("shards") for ``shardgate dev`` and the tests.

A :class:`LocalMariaDB` owns one *base directory*.  Everything the server writes
lives inside it::

    <base>/data/          the MariaDB datadir (created by mariadb-install-db)
    <base>/mysqld.sock    the unix socket (see _socket_path for very long paths)
    <base>/mysqld.pid     the pid file
    <base>/error.log      the server error log (also receives the server's stdout/stderr)
    <base>/install.log    output of mariadb-install-db
    <base>/state.json     {"port", "root_password", "accounts_ready"}; mode 0600

The server binds 127.0.0.1 only.  After the first start the anonymous accounts
are dropped and every ``root`` account (``localhost``, ``127.0.0.1``, ``::1``,
``<hostname>`` and ``%``) gets the admin password and ALL PRIVILEGES WITH GRANT
OPTION, so :attr:`LocalMariaDB.endpoint` works over TCP from 127.0.0.1.

Account set-up and readiness checks use the ``mariadb`` command-line client
(Debian package ``mariadb-client``) over the unix socket / TCP; no Python
MySQL driver is needed at run time.

The API is synchronous (it spawns processes and polls); call it through
``asyncio.to_thread`` from async code.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import hashlib
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = [
    "LocalMariaDB",
    "LocalMariaDBError",
    "MariaDBNotInstalledError",
    "ShardEndpoint",
    "find_mariadb_binaries",
    "find_mariadb_client",
    "free_port",
]

log = logging.getLogger(__name__)

ADMIN_USER = "root"
LOCAL_HOST = "127.0.0.1"

# Searched after $PATH (a non-root $PATH on Debian lacks /usr/sbin).
_EXTRA_BIN_DIRS: tuple[Path, ...] = (Path("/usr/sbin"), Path("/usr/bin"))
_SYSTEM_DATADIR = Path("/var/lib/mysql")
_STATE_FILE = "state.json"
_SOCKET_MAX = 100  # sun_path is 108 bytes on Linux; keep a margin

# Small-footprint server settings.  Shared by mariadb-install-db (which passes
# unknown options on to its bootstrap mariadbd) and the real server.
_SERVER_TUNING: tuple[str, ...] = (
    "--innodb-buffer-pool-size=32M",
    "--innodb-log-file-size=16M",
    "--innodb-log-buffer-size=8M",
    # Commit writes the redo log to the OS on every commit: survives SIGKILL of
    # the server (kill()), only an OS crash could lose the last second.
    "--innodb-flush-log-at-trx-commit=2",
    "--key-buffer-size=8M",
    "--aria-pagecache-buffer-size=8M",
    "--performance-schema=OFF",
    "--skip-log-bin",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
    # shardgate compares database and table names case-insensitively (PolarDB-X semantics);
    # the shard must too, or a grant on t would not cover the distinct table T.
    "--lower-case-table-names=1",
)
_SERVER_ONLY: tuple[str, ...] = (
    "--max-connections=2000",
    "--table-open-cache=400",
    "--max-connect-errors=1000000",  # readiness probes must never get 127.0.0.1 blocked
    "--loose-feedback=OFF",
)


class LocalMariaDBError(RuntimeError):
    """A local MariaDB server could not be initialised, started or set up."""


class MariaDBNotInstalledError(LocalMariaDBError):
    """The MariaDB server or client binaries are not installed."""


@dataclass(frozen=True)
class ShardEndpoint:
    host: str
    port: int
    user: str
    password: str


def _find_binary(names: tuple[str, ...]) -> Path | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return Path(found)
    for directory in _EXTRA_BIN_DIRS:
        for name in names:
            candidate = directory / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return candidate
    return None


def find_mariadb_binaries() -> tuple[Path, Path]:
    """Return ``(mariadbd, mariadb-install-db)``; search $PATH, /usr/sbin, /usr/bin."""
    server = _find_binary(("mariadbd",))
    install = _find_binary(("mariadb-install-db", "mysql_install_db"))
    if server is None or install is None:
        missing = "mariadbd" if server is None else "mariadb-install-db"
        raise MariaDBNotInstalledError(
            f"{missing} not found in $PATH, /usr/sbin or /usr/bin. Install the MariaDB "
            "server binaries, e.g. on Debian: apt-get install --no-install-recommends "
            "mariadb-server mariadb-client"
        )
    return server, install


def find_mariadb_client() -> Path:
    """Return the ``mariadb`` command-line client (Debian package mariadb-client)."""
    client = _find_binary(("mariadb", "mysql"))
    if client is None:
        raise MariaDBNotInstalledError(
            "the mariadb command-line client was not found in $PATH, /usr/sbin or /usr/bin. "
            "Install it, e.g. on Debian: apt-get install --no-install-recommends mariadb-client"
        )
    return client


def free_port(host: str = LOCAL_HOST) -> int:
    """A TCP port that is free on ``host`` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _port_is_free(port: int, host: str = LOCAL_HOST) -> bool:
    """True when nothing listens on ``host:port`` (TIME_WAIT leftovers are fine:
    mariadbd binds with SO_REUSEADDR too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _sql_str(value: str) -> str:
    """A MariaDB single-quoted string literal (default sql_mode: backslash escapes)."""
    out = value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
    return "'" + out.replace("\n", "\\n").replace("\r", "\\r").replace("\x1a", "\\Z") + "'"


def _account(user: str, host: str) -> str:
    return f"{_sql_str(user)}@{_sql_str(host)}"


def _mysql_greeting(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when ``host:port`` answers with a MySQL handshake (not an error packet)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            header = b""
            while len(header) < 5:
                chunk = s.recv(5 - len(header))
                if not chunk:
                    return False
                header += chunk
    except OSError:
        return False
    return header[4] == 0x0A  # protocol version 10; 0xFF would be an error packet


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # "pid (comm) state ..." - a zombie is as good as dead
    return stat.rsplit(")", 1)[-1].split()[0:1] != ["Z"]


def _tail(path: Path, start: int = 0, lines: int = 25) -> str:
    try:
        with path.open("rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return ""
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


_live: weakref.WeakSet[LocalMariaDB] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop(timeout=10)


class LocalMariaDB:
    """One throwaway MariaDB server whose files all live under ``datadir``.

    ``datadir`` is the base directory (the MariaDB datadir proper is
    ``datadir/data``).  It is created if missing and initialised on the first
    :meth:`start`; later starts reuse it (same data, same password and, when
    ``port`` is None and the old port is still free, the same port).

    ``root_password`` None means: reuse the persisted one, or generate one on
    first initialisation.  An explicit password that differs from the
    persisted one is applied to the admin accounts at the next start.
    """

    def __init__(
        self, datadir: Path, port: int | None = None, *, root_password: str | None = None
    ) -> None:
        self.base_dir = Path(datadir).absolute()
        self._check_base_dir()
        self._requested_port = port
        self._requested_password = root_password
        self._state: dict[str, Any] = self._load_state()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_fh: IO[bytes] | None = None
        self._endpoint: ShardEndpoint | None = None

    # ------------------------------------------------------------------ paths

    @property
    def data_path(self) -> Path:
        return self.base_dir / "data"

    @property
    def socket_path(self) -> Path:
        sock = self.base_dir / "mysqld.sock"
        if len(os.fsencode(sock)) <= _SOCKET_MAX:
            return sock
        # Too long for AF_UNIX: fall back to a short, per-base-dir name in /tmp.
        digest = hashlib.sha256(os.fsencode(self.base_dir)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"shardgate-{digest}.sock"

    @property
    def pid_path(self) -> Path:
        return self.base_dir / "mysqld.pid"

    @property
    def error_log(self) -> Path:
        return self.base_dir / "error.log"

    @property
    def install_log(self) -> Path:
        return self.base_dir / "install.log"

    @property
    def state_path(self) -> Path:
        return self.base_dir / _STATE_FILE

    # ------------------------------------------------------------- properties

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    @property
    def port(self) -> int | None:
        """The port of the running server, else the persisted one (if any)."""
        if self._endpoint is not None:
            return self._endpoint.port
        port = self._state.get("port")
        return port if isinstance(port, int) else None

    @property
    def root_password(self) -> str | None:
        if self._requested_password is not None:
            return self._requested_password
        pw = self._state.get("root_password")
        return pw if isinstance(pw, str) else None

    @property
    def endpoint(self) -> ShardEndpoint:
        """The admin endpoint of the running server (raises if it is not running)."""
        if self._endpoint is None or not self.running:
            raise LocalMariaDBError(f"local MariaDB in {self.base_dir} is not running")
        return self._endpoint

    def __repr__(self) -> str:
        state = f"pid={self.pid} port={self.port}" if self.running else "stopped"
        return f"<LocalMariaDB {self.base_dir} {state}>"

    def __enter__(self) -> LocalMariaDB:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ state

    def _check_base_dir(self) -> None:
        resolved = self.base_dir.resolve()
        if resolved == _SYSTEM_DATADIR or _SYSTEM_DATADIR in resolved.parents:
            raise LocalMariaDBError(
                f"refusing to use {resolved}: that is the system MariaDB's data directory"
            )

    def _load_state(self) -> dict[str, Any]:
        try:
            raw = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise LocalMariaDBError(f"unreadable state file {self.state_path}: {e}") from e
        return raw if isinstance(raw, dict) else {}

    def _save_state(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_name(_STATE_FILE + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self._state, f, indent=2, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.state_path)

    def _initialised(self) -> bool:
        return (self.data_path / "mysql").is_dir()

    # ---------------------------------------------------------------- control

    def start(self, timeout: float = 60) -> ShardEndpoint:
        """Initialise if needed, start mariadbd, wait for TCP logins; return the admin endpoint."""
        if self.running:
            return self.endpoint
        deadline = time.monotonic() + timeout
        mariadbd, install_db = find_mariadb_binaries()
        client = find_mariadb_client()
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale_server(deadline)

        if not self._initialised():
            self._initialise(install_db)
        if "root_password" not in self._state:
            self._state["root_password"] = self._requested_password or secrets.token_urlsafe(24)
            self._save_state()

        attempts = 3 if self._requested_port is None else 1
        for attempt in range(1, attempts + 1):
            port = self._choose_port()
            if not _port_is_free(port):
                raise self._failure(f"port {port} on {LOCAL_HOST} is already in use", None)
            log_offset = self._launch(mariadbd, port)
            try:
                self._wait_ready(port, log_offset, deadline)
            except _PortInUse:
                self._reap()
                if attempt == attempts:
                    raise self._failure(f"port {port} is already in use", log_offset) from None
                log.info("port %d was taken meanwhile; retrying with another port", port)
                self._state.pop("port", None)
                continue
            except BaseException:
                self.kill()
                raise
            break

        try:
            self._ensure_accounts(client, port, log_offset, deadline)
        except BaseException:
            self.kill()
            raise
        return self.endpoint

    def stop(self, timeout: float = 30) -> None:
        """Clean shutdown (SIGTERM and wait); SIGKILL if it takes longer than ``timeout``."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning(
                    "MariaDB in %s did not stop within %ss; killing it", self.base_dir, timeout
                )
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server (for fault tests); the next start() recovers."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait()
        self._reap()

    def freeze(self, timeout: float = 10) -> None:
        """SIGSTOP the server (for fault tests: its sockets stay open, nothing answers) and
        wait until every one of its threads is stopped -- a signal reaches a busy process's
        threads a moment after kill() returns, and until then it may still serve a request."""
        pid = self.pid
        if pid is None:
            raise LocalMariaDBError("the server is not running")
        os.kill(pid, signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        tasks = Path(f"/proc/{pid}/task")
        while time.monotonic() < deadline:
            states = []
            for task in tasks.iterdir():
                with contextlib.suppress(OSError, IndexError):
                    states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
            if states and all(state in ("T", "t") for state in states):
                return
            time.sleep(0.01)
        raise LocalMariaDBError(f"MariaDB (pid {pid}) did not stop within {timeout}s")

    def thaw(self) -> None:
        """SIGCONT a server freeze() stopped."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    # -------------------------------------------------------------- internals

    def _reap(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        self._endpoint = None
        if self._log_fh is not None:
            self._log_fh.close()
            self._log_fh = None
        _live.discard(self)

    def _tmp_dir(self) -> Path:
        # Private temporary files: servers sharing /tmp can collide on temp-table names.
        path = self.base_dir / "tmp"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _server_user_args(self) -> list[str]:
        # mariadbd refuses to run as root unless told to.
        return ["--user=root"] if os.geteuid() == 0 else []

    def _initialise(self, install_db: Path) -> None:
        if self.data_path.exists() and any(self.data_path.iterdir()):
            if not self.state_path.exists():
                raise LocalMariaDBError(
                    f"{self.data_path} is not empty but holds no MariaDB system tables; "
                    "refusing to touch it"
                )
            log.warning("removing half-initialised datadir %s", self.data_path)
            shutil.rmtree(self.data_path)
        self._state["accounts_ready"] = False
        self._state.pop("root_password", None)
        if self._requested_password is not None:
            self._state["root_password"] = self._requested_password
        self._save_state()
        cmd = [
            str(install_db),
            "--no-defaults",
            f"--datadir={self.data_path}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            f"--tmpdir={self._tmp_dir()}",
            *self._server_user_args(),
            *_SERVER_TUNING,
        ]
        log.info("initialising MariaDB datadir %s", self.data_path)
        with self.install_log.open("wb") as out:
            rc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
            ).returncode
        if rc != 0 or not self._initialised():
            raise LocalMariaDBError(
                f"mariadb-install-db failed (exit {rc}) for {self.data_path}; "
                f"see {self.install_log}:\n{_tail(self.install_log)}"
            )

    def _choose_port(self) -> int:
        if self._requested_port is not None:
            return self._requested_port
        old = self._state.get("port")
        if isinstance(old, int) and 0 < old < 65536 and _port_is_free(old):
            return old
        return free_port()

    def _launch(self, mariadbd: Path, port: int) -> int:
        """Spawn mariadbd; return the error log offset where this run's output starts."""
        sock = self.socket_path
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()
        cmd = [
            str(mariadbd),
            "--no-defaults",
            f"--datadir={self.data_path}",
            f"--socket={sock}",
            f"--pid-file={self.pid_path}",
            f"--log-error={self.error_log}",
            f"--port={port}",
            f"--bind-address={LOCAL_HOST}",
            f"--tmpdir={self._tmp_dir()}",
            *self._server_user_args(),
            *_SERVER_TUNING,
            *_SERVER_ONLY,
        ]
        self._log_fh = self.error_log.open("ab")
        offset = self._log_fh.tell()
        log.info("starting MariaDB in %s on %s:%d", self.base_dir, LOCAL_HOST, port)
        self._proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal must not hit the server
        )
        _live.add(self)
        self._state["port"] = port
        self._save_state()
        return offset

    def _failure(self, what: str, log_offset: int | None) -> LocalMariaDBError:
        tail = "" if log_offset is None else _tail(self.error_log, log_offset)
        return LocalMariaDBError(
            f"local MariaDB in {self.base_dir}: {what}; error log: {self.error_log}"
            + (f"\n--- last lines of {self.error_log} ---\n{tail}" if tail else "")
        )

    def _wait_ready(self, port: int, log_offset: int, deadline: float) -> None:
        proc = self._proc
        assert proc is not None
        while True:
            rc = proc.poll()
            if rc is not None:
                tail = _tail(self.error_log, log_offset, lines=200)
                if "Address already in use" in tail or f"errno: {errno.EADDRINUSE}" in tail:
                    raise _PortInUse()
                raise self._failure(f"mariadbd exited with code {rc} during startup", log_offset)
            # The socket check makes sure the greeting came from our server.
            if self.socket_path.exists() and _mysql_greeting(LOCAL_HOST, port):
                return
            if time.monotonic() > deadline:
                raise self._failure(
                    f"mariadbd did not accept connections on port {port} in time", log_offset
                )
            time.sleep(0.05)

    def _client(
        self,
        client: Path,
        sql: str,
        *,
        password: str,
        tcp_port: int | None = None,
        timeout: float = 30,
    ) -> subprocess.CompletedProcess[str]:
        if tcp_port is None:
            conn = ["--protocol=SOCKET", f"--socket={self.socket_path}"]
        else:
            conn = ["--protocol=TCP", f"--host={LOCAL_HOST}", f"--port={tcp_port}"]
        env = {k: v for k, v in os.environ.items() if k not in ("MYSQL_PWD", "MYSQL_HOST")}
        if password:
            env["MYSQL_PWD"] = password  # keeps the password out of argv
        cmd = [
            str(client),
            "--no-defaults",
            *conn,
            f"--user={ADMIN_USER}",
            "--connect-timeout=5",
            "--batch",
            "--skip-column-names",
        ]
        try:
            return subprocess.run(
                cmd,
                input=sql,
                capture_output=True,
                text=True,
                env=env,
                timeout=max(timeout, 1.0),
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(cmd, 1, "", f"client timed out: {e}")

    def _ensure_accounts(self, client: Path, port: int, log_offset: int, deadline: float) -> None:
        target = self._requested_password or str(self._state["root_password"])
        stored = str(self._state["root_password"])

        def tcp_login_ok() -> subprocess.CompletedProcess[str]:
            return self._client(
                client,
                "SELECT CURRENT_USER();",
                password=target,
                tcp_port=port,
                timeout=deadline - time.monotonic(),
            )

        if self._state.get("accounts_ready") and target == stored:
            check = tcp_login_ok()
            if check.returncode == 0:
                self._endpoint = ShardEndpoint(LOCAL_HOST, port, ADMIN_USER, target)
                return
            log.warning(
                "admin login to %s failed (%s); redoing account set-up",
                self.base_dir,
                check.stderr.strip(),
            )

        # Log in over the socket: right after install root@localhost has no password.
        candidates = list(dict.fromkeys([stored, target, ""]))
        last_err = ""
        for pw in candidates:
            res = self._client(
                client, "SELECT 1;", password=pw, timeout=deadline - time.monotonic()
            )
            if res.returncode == 0:
                self._setup_accounts(client, pw, target, log_offset, deadline)
                break
            last_err = res.stderr.strip()
        else:
            raise self._failure(
                f"cannot log in as {ADMIN_USER} over the socket to set up accounts: {last_err}",
                log_offset,
            )

        self._state["root_password"] = target
        self._state["accounts_ready"] = True
        self._save_state()
        check = tcp_login_ok()
        if check.returncode != 0:
            raise self._failure(
                f"admin login over TCP failed after set-up: {check.stderr.strip()}", log_offset
            )
        self._endpoint = ShardEndpoint(LOCAL_HOST, port, ADMIN_USER, target)

    def _setup_accounts(
        self, client: Path, login_pw: str, target: str, log_offset: int, deadline: float
    ) -> None:
        listing = self._client(
            client,
            "SELECT CONCAT(HEX(User), ' ', HEX(Host)) FROM mysql.user "
            f"WHERE User = '' OR User = {_sql_str(ADMIN_USER)};",
            password=login_pw,
            timeout=deadline - time.monotonic(),
        )
        if listing.returncode != 0:
            raise self._failure(f"listing accounts failed: {listing.stderr.strip()}", log_offset)
        anonymous: list[str] = []
        admins = {LOCAL_HOST, "%", "localhost"}
        for line in listing.stdout.splitlines():
            parts = line.split(" ")
            user = bytes.fromhex(parts[0]).decode() if parts[0] else ""
            host = bytes.fromhex(parts[1]).decode() if len(parts) > 1 and parts[1] else ""
            if user == "":
                anonymous.append(host)
            else:
                admins.add(host)
        anonymous.extend(["localhost", socket.gethostname()])

        pw = _sql_str(target)
        stmts = [f"DROP USER IF EXISTS {_account('', h)};" for h in dict.fromkeys(anonymous)]
        for host in sorted(admins):
            acct = _account(ADMIN_USER, host)
            stmts += [
                f"CREATE USER IF NOT EXISTS {acct} IDENTIFIED BY {pw};",
                f"ALTER USER {acct} IDENTIFIED BY {pw};",
                f"GRANT ALL PRIVILEGES ON *.* TO {acct} WITH GRANT OPTION;",
                f"GRANT PROXY ON ''@'%' TO {acct} WITH GRANT OPTION;",
            ]
        stmts.append("FLUSH PRIVILEGES;")
        res = self._client(
            client, "\n".join(stmts), password=login_pw, timeout=deadline - time.monotonic()
        )
        if res.returncode != 0:
            raise self._failure(f"account set-up failed: {res.stderr.strip()}", log_offset)
        log.info("set up admin accounts in %s", self.base_dir)

    def _stop_stale_server(self, deadline: float) -> None:
        """Stop a server left running on this datadir by an earlier, crashed process."""
        try:
            pid = int(self.pid_path.read_text().strip())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return
        ours = f"--datadir={self.data_path}".encode()
        if not cmdline or b"mariadbd" not in os.path.basename(cmdline[0]) or ours not in cmdline:
            return
        if not _pid_alive(pid):
            return
        log.warning("stopping stale MariaDB (pid %d) left running in %s", pid, self.base_dir)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        soft = min(deadline, time.monotonic() + 30)
        while _pid_alive(pid) and time.monotonic() < soft:
            time.sleep(0.1)
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)


class _PortInUse(Exception):
    pass
