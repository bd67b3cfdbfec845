"""`shardgate database list` and `database drop` against two running proxy nodes that share one
catalog, and the real shards: the sessions each node reports, the refusal while sessions are
open, --force ending them with a clear error, and what is left on the shard (nothing)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest
from click.testing import CliRunner, Result

from auth.catalog import Catalog
from proxy.backend.mirror import mirror_suffix
from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.manage.cli import main
from proxy.manage.provision import create_database
from proxy.ops.config import Config, load_config
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyThread, start_proxy

ADMIN_PASSWORD = "Admin#pass1"
RO_PASSWORD = "ReadOnly#1"


@dataclass
class Cluster:
    config_path: Path
    config: Config
    nodes: list[ProxyThread]
    shards: list[ShardEndpoint]

    def connect(self, node: int, user: str, database: str | None) -> Any:
        server = self.nodes[node].server
        assert server is not None
        return pymysql.connect(
            host="127.0.0.1",
            port=server.port,
            user=user,
            password=ADMIN_PASSWORD,
            database=database,
            autocommit=True,
            connect_timeout=10,
            read_timeout=30,
        )

    def cli(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(main, ["--config", str(self.config_path), *args], input=input)


@pytest.fixture
def cluster(shards: list[ShardEndpoint], tmp_path: Path) -> Iterator[Cluster]:
    one = tmp_path / "one"
    one.mkdir()
    first = start_proxy(
        one, shards, "", [("opsdb", "s0"), ("keepdb", "s1")], ADMIN_PASSWORD, RO_PASSWORD
    )
    # A second node: its own port, the same catalog file and the same catalog secret.
    two = tmp_path / "two"
    two.mkdir()
    text = (one / "shardgate.toml").read_text()
    port = first.config.server.port
    text = text.replace(f"port = {port}\n", f"port = {free_port()}\n", 1).replace(
        'url = "sqlite:///catalog.db"',
        f'url = "sqlite:///{one / "catalog.db"}"\nsecret_file = "{one / "shardgate.secret"}"',
    )
    (two / "shardgate.toml").write_text(text)
    second = ProxyThread(load_config(two / "shardgate.toml"))
    second.start()
    try:
        yield Cluster(one / "shardgate.toml", first.config, [first, second], shards)
    finally:
        for node in (first, second):
            node.stop()
        for name in ("opsdb", "keepdb", "subdb"):
            with connect_admin(shards[0]) as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            with connect_admin(shards[1]) as conn, conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")


def _listed(cluster: Cluster) -> dict[str, dict[str, Any]]:
    result = cluster.cli("database", "list", "--format", "json")
    assert result.exit_code == 0, result.output
    return {row["name"]: row for row in json.loads(result.stdout)}


def _until(check: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _error_of(conn: Any, sql: str) -> tuple[int, str]:
    with pytest.raises(pymysql.err.MySQLError) as info:
        with conn.cursor() as cur:
            cur.execute(sql)
    code, message = info.value.args
    return code, message


def test_list_then_drop_with_sessions_open_on_two_nodes(cluster: Cluster) -> None:
    names = sorted(node.server.node for node in cluster.nodes if node.server is not None)
    on_one = cluster.connect(0, "opsdb", "opsdb")
    on_two = cluster.connect(1, "opsdb", "opsdb")
    keep = cluster.connect(0, "keepdb", "keepdb")
    with on_one.cursor() as cur:
        cur.execute("CREATE TABLE t (id INT PRIMARY KEY)")
        cur.execute("INSERT INTO t VALUES (1)")

    # Each node reports its sessions; the list shows them per node.
    _until(lambda: _listed(cluster)["opsdb"]["sessions"] == 2)
    listed = _listed(cluster)
    assert listed["opsdb"]["shards"] == ["s0"] and listed["keepdb"]["shards"] == ["s1"]
    assert listed["opsdb"]["sessions_per_node"] == {names[0]: 1, names[1]: 1}
    assert listed["opsdb"]["created"] is not None
    table = cluster.cli("database", "list")
    assert table.exit_code == 0, table.output
    lines = table.stdout.splitlines()
    assert "NAME" in lines[1] and "SESSIONS (PER NODE)" in lines[1]
    [row] = [line for line in lines if "| opsdb " in line]
    assert f"2 ({names[0]} 1, {names[1]} 1)" in row and "| s0 " in row

    # Refused while sessions are open (before any question), and when the name typed differs.
    refused = cluster.cli("database", "drop", "opsdb", "--yes")
    assert refused.exit_code == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (
        f"Error: database 'opsdb' has 2 ({names[0]} 1, {names[1]} 1) session(s) open: end "
        "them first, or use --force to end them"
    )
    mistyped = cluster.cli("database", "drop", "opsdb", "--force", input="opsdbb\n")
    assert mistyped.exit_code == 1
    assert "Error: the name typed does not match; nothing was dropped" in mistyped.stderr
    with on_one.cursor() as cur:
        cur.execute("SELECT id FROM t")
        assert cur.fetchall() == ((1,),)

    dropped = cluster.cli("database", "drop", "opsdb", "--force", input="opsdb\n")
    assert dropped.exit_code == 0, dropped.output
    assert dropped.stdout.startswith("Database 'opsdb' dropped from shard 's0' (")
    assert dropped.stdout.endswith("; 2 session(s) ended).\n")
    # Every node saw it within a second: the sessions' next statement ends them, clearly.
    gone = (1049, "Unknown database 'opsdb': it was dropped, and this session has ended")
    assert _error_of(on_one, "SELECT id FROM t") == gone
    assert _error_of(on_two, "SELECT 1") == gone
    with pytest.raises(pymysql.err.MySQLError):
        on_one.ping(reconnect=False)
    with keep.cursor() as cur:  # the other database is untouched
        cur.execute("SELECT 1")
    with pytest.raises(pymysql.err.OperationalError) as login:
        cluster.connect(1, "opsdb", None)
    assert login.value.args[0] == 1045

    # Nothing is left on the shard: the physical database, the mirrors, any sg_opsdb.
    suffix = mirror_suffix(cluster.config.catalog_secret(), "opsdb")
    with connect_admin(cluster.shards[0]) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'opsdb'")
        assert cur.fetchall() == ()
        cur.execute(
            "SELECT User FROM mysql.user WHERE User LIKE %s OR User = 'sg_opsdb'",
            (f"sgm\\_%{suffix}",),
        )
        assert cur.fetchall() == ()
    assert set(_listed(cluster)) == {"keepdb"}
    assert cluster.cli("database", "drop", "opsdb", "--yes").stderr.strip() == (
        "Error: unknown database 'opsdb'"
    )
    for conn in (on_one, on_two, keep):
        conn.close()


def test_the_console_script_lists_and_drops(cluster: Cluster) -> None:
    with Catalog.open(cluster.config.catalog.url, cluster.config.base_dir) as catalog:
        asyncio.run(
            create_database(cluster.config, catalog, "subdb", "s0", ADMIN_PASSWORD, RO_PASSWORD)
        )
    shardgate = str(Path(sys.executable).with_name("shardgate"))
    base = [shardgate, "--config", str(cluster.config_path), "database"]
    listed = subprocess.run(
        [*base, "list", "--format", "json"], capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert sorted(row["name"] for row in json.loads(listed.stdout)) == ["keepdb", "opsdb", "subdb"]
    dropped = subprocess.run(
        [*base, "drop", "subdb", "--yes"], capture_output=True, text=True, timeout=60
    )
    assert dropped.returncode == 0, dropped.stderr
    assert dropped.stdout.startswith("Database 'subdb' dropped from shard 's0' (")
    with connect_admin(cluster.shards[0]) as conn, conn.cursor() as cur:
        cur.execute("SHOW DATABASES LIKE 'subdb'")
        assert cur.fetchall() == ()
