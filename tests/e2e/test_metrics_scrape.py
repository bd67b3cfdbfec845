"""``GET /metrics`` scraped from a running proxy on the real MariaDB shards, parsed strictly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pymysql
import pytest
from prometheus_client.parser import text_string_to_metric_families

from auth.catalog import Catalog
from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.manage.provision import create_database
from proxy.ops.config import load_config
from proxy.server import ProxyServer
from tests.e2e.conftest import ProxyThread, write_config
from tests.metrics_text import Samples, parse_exposition

PASSWORD = "Metrics#pass1"
TOKEN = "scrape-token-0123456789"


@pytest.fixture(scope="module")
def metrics_db(shards: list[ShardEndpoint], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A config directory whose catalog holds database ``metricsdb`` on shard s0."""
    base = tmp_path_factory.mktemp("metrics")
    write_config(base / "shardgate.toml", shards, free_port())
    config = load_config(base / "shardgate.toml")
    catalog = Catalog.open(config.catalog.url, config.base_dir)
    asyncio.run(create_database(config, catalog, "metricsdb", "s0", PASSWORD, "MetricsRO#1"))
    catalog.close()
    return base


def _start(base: Path, sections: str) -> tuple[ProxyThread, ProxyServer]:
    path = base / "shardgate.toml"
    text = path.read_text().split("[admin]")[0]
    path.write_text(text + sections)
    runner = ProxyThread(load_config(path))
    return runner, runner.start()


@pytest.fixture
def metrics_only(metrics_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    monkeypatch.setenv("SG_TEST_METRICS_TOKEN", TOKEN)
    runner, server = _start(
        metrics_db,
        "[admin]\nenabled = false\nport = 0\n"
        '[metrics]\nenabled = true\ntoken_env = "SG_TEST_METRICS_TOKEN"\n',
    )
    try:
        yield server
    finally:
        runner.stop()


def _scrape(server: ProxyServer, token: str | None = TOKEN) -> httpx.Response:
    assert server.admin is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{server.admin.url}/metrics", headers=headers, timeout=10)


def _samples(server: ProxyServer, token: str | None = TOKEN) -> Samples:
    response = _scrape(server, token)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    # Both an independent parser and the strict one accept it.
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert "shardgate_statement_duration_seconds" in names
    return parse_exposition(response.text)


def test_metrics_only_listener_with_a_bearer_token(metrics_only: ProxyServer) -> None:
    server = metrics_only
    assert server.admin is not None
    assert _scrape(server, None).status_code == 401
    assert _scrape(server, "wrong-token").status_code == 401
    assert httpx.post(f"{server.admin.url}/metrics", timeout=10).status_code == 405
    # No dashboard on this listener.
    assert httpx.get(f"{server.admin.url}/api/session", timeout=10).status_code == 404
    assert httpx.get(f"{server.admin.url}/", timeout=10).status_code == 404

    before = _samples(server)
    conn = pymysql.connect(
        host="127.0.0.1", port=server.port, user="metricsdb", password=PASSWORD,
        database="metricsdb", connect_timeout=10,
    )  # fmt: skip
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.execute("CREATE TABLE IF NOT EXISTS m_t (id INT PRIMARY KEY)")
        for _ in range(3):
            cur.execute("SELECT id FROM m_t WHERE id = 1")  # the fast path after the first
        with pytest.raises(pymysql.err.NotSupportedError) as denied:
            cur.execute("CALL p()")
        assert denied.value.args[0] == 1235
    during = _samples(server)
    query = ("shardgate_statements_total", (("kind", "query"),))
    assert during[query] - before.get(query, 0) == 5  # SELECT 1, CREATE, 3 SELECTs
    refused = ("shardgate_denials_total", (("code", "1235"),))
    assert during[refused] - before.get(refused, 0) == 1
    relayed = ("shardgate_statement_duration_seconds_count", (("shard", "s0"),))
    assert during[relayed] - before.get(relayed, 0) >= 5  # SET autocommit, SELECT 1, ...
    logins = ("shardgate_logins_total", (("result", "ok"),))
    assert during[logins] - before.get(logins, 0) == 1
    assert during[("shardgate_connections_active", ())] == 1
    with pytest.raises(pymysql.err.OperationalError) as bad_login:
        pymysql.connect(
            host="127.0.0.1", port=server.port, user="metricsdb", password="wrong",
            connect_timeout=10,
        )  # fmt: skip
    assert bad_login.value.args[0] == 1045
    conn.close()
    failed = ("shardgate_logins_total", (("result", "failed"),))
    assert _samples(server)[failed] - before.get(failed, 0) == 1

    deadline = time.monotonic() + 10
    after = _samples(server)
    while after[("shardgate_connections_active", ())] != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
        after = _samples(server)
    assert after[("shardgate_connections_active", ())] == 0
    total = ("shardgate_connections_total", ())
    assert after[total] - before[total] == 2
    assert after[("shardgate_catalog_version", ())] >= 1
    assert after[("shardgate_catalog_refresh_failures_total", ())] == 0
    assert after[("shardgate_config_reloads_total", (("result", "failed"),))] == 0
    assert after[("process_open_fds", ())] > 0
    # The exposition never carries an account name or a password.
    text = _scrape(server).text
    assert PASSWORD not in text and "metricsdb" not in text and TOKEN not in text


def test_metrics_beside_the_dashboard_without_token(metrics_db: Path) -> None:
    runner, server = _start(
        metrics_db, "[admin]\nenabled = true\nport = 0\n[metrics]\nenabled = true\n"
    )
    try:
        samples = _samples(server, None)
        assert ("shardgate_logins_total", (("result", "ok"),)) in samples
        assert server.admin is not None
        assert httpx.get(f"{server.admin.url}/api/session", timeout=10).status_code == 200
    finally:
        runner.stop()


def test_no_metrics_unless_enabled(metrics_db: Path) -> None:
    runner, server = _start(metrics_db, "[admin]\nenabled = true\nport = 0\n")
    try:
        assert server.admin is not None
        assert httpx.get(f"{server.admin.url}/metrics", timeout=10).status_code == 404
    finally:
        runner.stop()
