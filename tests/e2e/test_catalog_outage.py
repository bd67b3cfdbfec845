"""Two `shardgate serve` nodes on a MySQL catalog that goes away: killed, frozen (SIGSTOP), its
tables locked by another client.

Throughout: account statements fail within ``[catalog] timeout`` with 1105 saying nothing was
changed, the client connection stays open, logins and the data path go on from the last
snapshot, each node logs one line when the catalog goes and one when it is back, and its
refresh-failure metric moves. Afterwards both nodes recover by themselves: account statements
work again and changes reach the other node; the catalog holds nothing half-applied. The CLI
and the dashboard fail fast too.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pymysql
import pytest

from auth.catalog import Catalog
from proxy.dev.localshard import LocalMariaDB, ShardEndpoint, free_port
from tests.conftest import connect_admin
from tests.e2e.served import wait_for_port
from tests.metrics_text import parse_exposition

TIMEOUT = 2.0  # [catalog] timeout of both nodes
SLACK = 3.0  # what a failing statement may take beyond it (client, proxy, shard; a loaded machine)
ADMIN_PW = "Outage#admin1"
RO_PW = "Outage#ro1234"
PASSWORD_ENV = "SHARDGATE_OUTAGE_CATALOG_PASSWORD"
CATALOG_DB = "sgcat_outage"
DOWN = "account changes fail until it is back"  # the poller's line when the catalog goes
BACK = "catalog available again"  # ... and when it is back
TABLES = (
    "counters", "logical_databases", "accounts", "db_grants", "table_grants", "change_log",
    "audit", "revoked_sessions", "schema_version",
)  # fmt: skip


def _bin() -> str:
    return str(Path(sys.executable).with_name("shardgate"))


@dataclass
class Node:
    port: int
    admin_port: int
    config: Path
    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def read_output(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def metric(self, name: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.admin_port}/metrics", timeout=10).text
        return parse_exposition(text).get((name, ()), 0.0)

    def connect(self, user: str, password: str, database: str | None = None) -> Any:
        return pymysql.connect(
            host="127.0.0.1", port=self.port, user=user, password=password, database=database,
            autocommit=True, connect_timeout=10, read_timeout=30,
        )  # fmt: skip


@dataclass
class Cluster:
    catalog_server: LocalMariaDB
    url: str
    base: Path
    nodes: list[Node]

    def admin(self, node: int, index: int = 0) -> Any:
        return self.nodes[node].connect(f"outdb{index}", ADMIN_PW, f"outdb{index}")

    def catalog_conn(self) -> Any:
        return connect_admin(self.catalog_server.endpoint, CATALOG_DB)


def _config(path: Path, url: str, port: int, admin_port: int, shards: list[ShardEndpoint]) -> None:
    lines = [
        "[server]", 'host = "127.0.0.1"', f"port = {port}", "login_throttle_failures = 0",
        "[catalog]", f'url = "{url}"', f'password_env = "{PASSWORD_ENV}"',
        'secret_file = "shared.secret"', f"timeout = {TIMEOUT}",
        "[admin]", "enabled = true", f"port = {admin_port}", "[metrics]", "enabled = true",
    ]  # fmt: skip
    for index, shard in enumerate(shards):
        lines += [
            "[[shards]]", f'name = "s{index}"', f'host = "{shard.host}"', f"port = {shard.port}",
            f'user = "{shard.user}"', f'password = "{shard.password}"',
        ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")


def _cli(config: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_bin(), "--config", str(config), *args],
        input=stdin, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cluster(
    shards: list[ShardEndpoint], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    base = tmp_path_factory.mktemp("outage")
    # The catalog's own server, at a fixed port so that a restart comes back where it was.
    server = LocalMariaDB(base / "catalogdb", port=free_port())
    endpoint = server.start()
    os.environ[PASSWORD_ENV] = password = secrets.token_urlsafe(18)
    admin = connect_admin(endpoint)
    with admin.cursor() as cur:
        cur.execute("CREATE USER 'sgout'@'127.0.0.1' IDENTIFIED BY %s", (password,))
        cur.execute(f"CREATE DATABASE {CATALOG_DB}")
        cur.execute(f"GRANT ALL PRIVILEGES ON {CATALOG_DB}.* TO 'sgout'@'127.0.0.1'")
    admin.close()
    url = f"mysql://sgout@127.0.0.1:{endpoint.port}/{CATALOG_DB}"
    configs = [base / "node_a.toml", base / "node_b.toml"]
    ports = [(free_port(), free_port()) for _ in configs]
    for config, (port, admin_port) in zip(configs, ports, strict=True):
        _config(config, url, port, admin_port, shards)
    assert _cli(configs[0], "catalog", "migrate").returncode == 0
    for index in (0, 1):
        created = _cli(
            configs[0], "database", "create", f"outdb{index}", "--shard", f"s{index}",
            "--admin-password-stdin", "--ro-password-stdin", stdin=f"{ADMIN_PW}\n{RO_PW}\n",
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    nodes = []
    try:
        for config, (port, admin_port) in zip(configs, ports, strict=True):
            proc = subprocess.Popen(
                [_bin(), "--config", str(config), "serve"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            )  # fmt: skip
            node = Node(port, admin_port, config, proc)
            threading.Thread(target=node.read_output, daemon=True).start()
            nodes.append(node)
        for node in nodes:
            wait_for_port(node.port, node.proc)
            wait_for_port(node.admin_port, node.proc)
        env = Cluster(server, url, base, nodes)
        for index in (0, 1):
            with env.admin(0, index) as conn, conn.cursor() as cur:
                cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
                cur.execute("INSERT INTO t VALUES (1), (2)")
        yield env
    finally:
        server.thaw()
        for node in nodes:
            node.proc.send_signal(signal.SIGTERM)
        for node in nodes:
            node.proc.wait(60)
        server.stop()
    for node in nodes:
        assert node.proc.returncode == 0, "".join(node.lines)
        assert "Traceback" not in "".join(node.lines), "".join(node.lines)


def _fails(conn: Any, sql: str) -> tuple[int, str, float]:
    """(errno, message, seconds) of a statement that must fail."""
    started = time.monotonic()
    with pytest.raises(pymysql.err.MySQLError) as info, conn.cursor() as cur:
        cur.execute(sql)
    return int(info.value.args[0]), str(info.value.args[1]), time.monotonic() - started


def _until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _works(conn_factory: Callable[[], Any], sql: str) -> bool:
    try:
        with conn_factory() as conn, conn.cursor() as cur:
            cur.execute(sql)
    except pymysql.err.MySQLError:
        return False
    return True


def _login_ok(node: Node, user: str, password: str, database: str | None = None) -> bool:
    try:
        node.connect(user, password, database).close()
    except pymysql.err.OperationalError:
        return False
    return True


def _counts(node: Node, text: str, expected: int) -> Callable[[], bool]:
    return lambda: node.count(text) == expected


def _failed_more(node: Node, than: float) -> Callable[[], bool]:
    return lambda: node.metric("shardgate_catalog_refresh_failures_total") > than


def _outage(
    cluster: Cluster, name: str, start: Callable[[], None], end: Callable[[], None]
) -> None:
    """The same checks for every kind of outage (``name`` keeps the accounts apart)."""
    nodes = cluster.nodes
    down_before = [node.count(DOWN) for node in nodes]
    back_before = [node.count(BACK) for node in nodes]
    failures_before = [node.metric("shardgate_catalog_refresh_failures_total") for node in nodes]
    with cluster.admin(0) as conn, conn.cursor() as cur:
        cur.execute(f"CREATE USER {name}old@'%' IDENTIFIED BY 'Before#pw1'")
        cur.execute(f"GRANT SELECT ON outdb0.* TO {name}old@'%'")
    # The grant too (a login without a database would see the account alone arrive first).
    _until(
        lambda: _login_ok(nodes[1], f"{name}old", "Before#pw1", "outdb0"),
        15,
        "the account never arrived",
    )
    a, b = cluster.admin(0), cluster.admin(1, 1)
    start()
    try:
        # Account statements: 1105, nothing changed, within the timeout; the connection stays.
        statements = [
            (a, f"CREATE USER {name}x@'%' IDENTIFIED BY 'Never#pw1', {name}y@'%' IDENTIFIED BY"
                " 'Never#pw2'"),
            (a, f"GRANT INSERT ON outdb0.t TO {name}old@'%'"),
            (b, f"CREATE USER {name}z@'%' IDENTIFIED BY 'Never#pw3'"),
            (a, f"SET PASSWORD FOR {name}old@'%' = 'Never#pw4'"),
        ]  # fmt: skip
        for conn, sql in statements:
            errno, message, took = _fails(conn, sql)
            assert errno == 1105 and "nothing was changed" in message, message
            assert took < TIMEOUT + SLACK, f"{sql}: {took:.2f} s"
        for conn in (a, b):
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM t")
                assert cur.fetchone() == (2,)
        # Reads answer from the last snapshot.
        with a.cursor() as cur:
            cur.execute(f"SHOW GRANTS FOR {name}old@'%'")
            assert any("SELECT" in row[0] for row in cur.fetchall())
        # Logins and the data path on both nodes go on.
        for node in nodes:
            with node.connect(f"{name}old", "Before#pw1", "outdb0") as conn, conn.cursor() as cur:
                cur.execute("SELECT id FROM t ORDER BY id")
                assert cur.fetchall() == ((1,), (2,))
        # One line per node for the outage, and the metric moves.
        for node, count in zip(nodes, down_before, strict=True):
            _until(_counts(node, DOWN, count + 1), TIMEOUT * 3, "no line when it went")
        for node, failures in zip(nodes, failures_before, strict=True):
            _until(_failed_more(node, failures), TIMEOUT * 3, "the failure metric did not move")
        time.sleep(TIMEOUT)  # more failed polls: still one line
        assert [node.count(DOWN) for node in nodes] == [c + 1 for c in down_before]
    finally:
        end()
    # Both nodes recover by themselves: statements work again and changes propagate.
    create = f"CREATE USER {name}new@'%' IDENTIFIED BY 'After#pw1'"
    _until(lambda: _works(lambda: cluster.admin(0), create), 20, "no account statement on A")
    with cluster.admin(1) as conn, conn.cursor() as cur:
        cur.execute(f"GRANT SELECT ON outdb0.* TO {name}new@'%'")
    _until(lambda: _login_ok(nodes[1], f"{name}new", "After#pw1"), 15, "no propagation to B")
    _until(lambda: _login_ok(nodes[0], f"{name}new", "After#pw1"), 15, "no propagation to A")
    for node, count in zip(nodes, back_before, strict=True):
        _until(_counts(node, BACK, count + 1), 60, "no line when it came back")
    for conn in (a, b):  # the sessions opened before the outage are still there
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
        conn.close()
    # Nothing half-applied.
    with Catalog.open(cluster.url + f"?password_env={PASSWORD_ENV}", cluster.base) as catalog:
        snapshot = catalog.snapshot()
        for never in ("x", "y", "z"):
            assert snapshot.find_account(f"{name}{never}", "%") is None
        old = snapshot.find_account(f"{name}old", "%")
        assert old is not None
        assert snapshot.privileges(old.id, "outdb0", "t") == snapshot.privileges(old.id, "outdb0")
        versions = [record.catalog_version for record in catalog.audit()]
        assert versions == sorted(set(versions)), "one audit row per version"
    assert _login_ok(nodes[0], f"{name}old", "Before#pw1")  # the password never changed


def test_catalog_killed(cluster: Cluster) -> None:
    server = cluster.catalog_server

    def restart() -> None:
        server.start()

    _outage(cluster, "kill", server.kill, restart)


def test_catalog_frozen(cluster: Cluster) -> None:
    server = cluster.catalog_server

    def freeze() -> None:
        server.freeze()
        # The CLI fails fast too, with a clear error.
        started = time.monotonic()
        listed = _cli(cluster.nodes[0].config, "users", "list", "--database", "outdb0")
        assert listed.returncode != 0
        assert "timed out" in listed.stderr and "Traceback" not in listed.stderr, listed.stderr
        assert time.monotonic() - started < TIMEOUT + 5  # the process starts in ~1 s

    _outage(cluster, "frz", freeze, server.thaw)


def test_catalog_tables_locked(cluster: Cluster) -> None:
    locker = cluster.catalog_conn()

    def lock() -> None:
        with locker.cursor() as cur:
            cur.execute("LOCK TABLES " + ", ".join(f"{t} WRITE" for t in TABLES))

    def unlock() -> None:
        with locker.cursor() as cur:
            cur.execute("UNLOCK TABLES")
        locker.close()

    _outage(cluster, "lck", lock, unlock)


def test_dashboard_answers_503_while_the_catalog_is_away(cluster: Cluster) -> None:
    node = cluster.nodes[0]
    http = httpx.Client(base_url=f"http://127.0.0.1:{node.admin_port}", timeout=30)
    csrf = http.get("/api/session").json()["csrf_token"]
    signed = http.post(
        "/api/login",
        json={"username": "outdb0", "password": ADMIN_PW},
        headers={"X-CSRF-Token": csrf},
    )
    assert signed.status_code == 200, signed.text
    csrf = signed.json()["csrf_token"]
    server = cluster.catalog_server
    server.kill()
    try:
        started = time.monotonic()
        created = http.post(
            "/api/databases/outdb0/users",
            json={"username": "dashx", "password": "Dash#pass1"},
            headers={"X-CSRF-Token": csrf},
        )
        assert time.monotonic() - started < TIMEOUT + SLACK
        assert created.status_code == 503, created.text
        assert "unavailable" in created.json()["error"]
    finally:
        server.start()
        http.close()
    create = "CREATE USER dashok@'%' IDENTIFIED BY 'Dash#ok12'"
    _until(lambda: _works(lambda: cluster.admin(0), create), 20, "the node did not recover")
