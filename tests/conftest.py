"""Shared pytest fixtures."""

from __future__ import annotations

# ---------------------------------------------------------------------------
# Local MariaDB shards (proxy/localshard.py)
#
#   shard_servers  session  list[LocalMariaDB]: two throwaway servers in a temp dir
#   shards         session  list[ShardEndpoint]: their admin endpoints (127.0.0.1)
#   shard_admin    function factory: shard_admin(endpoint, database=None, **kw)
#                           -> PyMySQL connection as the admin; closed at teardown
#
# Do not kill()/stop() the session servers in a test; start your own
# LocalMariaDB(tmp_path / "x") for fault tests.
# ---------------------------------------------------------------------------
import asyncio
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pymysql
import pytest
import uvloop
from pymysql.connections import Connection

from proxy.localshard import LocalMariaDB, ShardEndpoint

SHARD_COUNT = 2


@pytest.fixture(scope="session")
def shard_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LocalMariaDB]]:
    base = tmp_path_factory.mktemp("shards")
    servers = [LocalMariaDB(base / f"shard{i}") for i in range(SHARD_COUNT)]
    try:
        with ThreadPoolExecutor(SHARD_COUNT) as pool:
            list(pool.map(lambda s: s.start(), servers))
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture(scope="session")
def shards(shard_servers: list[LocalMariaDB]) -> list[ShardEndpoint]:
    return [server.endpoint for server in shard_servers]


def connect_admin(
    endpoint: ShardEndpoint, database: str | None = None, **kwargs: Any
) -> Connection:
    """A PyMySQL connection to ``endpoint`` as its admin account (autocommit on)."""
    kwargs.setdefault("autocommit", True)
    kwargs.setdefault("connect_timeout", 10)
    return pymysql.connect(
        host=endpoint.host,
        port=endpoint.port,
        user=endpoint.user,
        password=endpoint.password,
        database=database,
        **kwargs,
    )


@pytest.fixture
def shard_admin() -> Iterator[Callable[..., Connection]]:
    opened: list[Connection] = []

    def factory(endpoint: ShardEndpoint, database: str | None = None, **kwargs: Any) -> Connection:
        conn = connect_admin(endpoint, database, **kwargs)
        opened.append(conn)
        return conn

    yield factory
    for conn in opened:
        if conn.open:
            conn.close()


# ---------------------------------------------------------------------------
# (other fixtures below)
# ---------------------------------------------------------------------------


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The in-process proxies run on uvloop, as `shardgate serve` does (its transports are
    not asyncio's classes, and its flow control differs: test what ships)."""
    return {"uvloop": uvloop.new_event_loop}
