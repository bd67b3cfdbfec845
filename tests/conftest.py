"""Shared pytest fixtures."""

from __future__ import annotations

# ---------------------------------------------------------------------------
# Local MariaDB shards (proxy/dev/localshard.py)
#
#   shard_servers  session  list[LocalMariaDB]: two throwaway servers in a temp dir
#   shards         session  list[ShardEndpoint]: their admin endpoints (127.0.0.1)
#   shard_admin    function factory: shard_admin(endpoint, database=None, **kw)
#                           -> PyMySQL connection as the admin; closed at teardown
#
# Do not kill()/stop() the session servers in a test; start your own
# LocalMariaDB(tmp_path / "x") for fault tests.
# ---------------------------------------------------------------------------
import itertools
import os
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any

import pymysql
import pytest
from pymysql.connections import Connection

from proxy.dev.localshard import LocalMariaDB, ShardEndpoint

# Subprocesses the tests start (the ``shardgate`` console script, ``python -m ...``) import this
# checkout's code, not whatever tree the virtualenv's editable install points at (a second
# git worktree shares one .venv).
_ROOT = str(Path(__file__).resolve().parents[1])
os.environ["PYTHONPATH"] = os.pathsep.join(
    [_ROOT, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != _ROOT]]
)

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


# ---------------------------------------------------------------------------
# A MySQL/MariaDB catalog (auth/mysql_store.py)
#
#   catalog_server     session  LocalMariaDB: one throwaway server for catalog databases
#   mysql_catalog_url  function factory: mysql_catalog_url() -> a migrated, empty catalog
#                               database of its own, as "mysql://...?password_env=..."
# ---------------------------------------------------------------------------

CATALOG_PASSWORD_ENV = "SHARDGATE_TEST_CATALOG_PASSWORD"
CATALOG_USER = "sgcatalog"
_catalog_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def catalog_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMariaDB]:
    import os
    import secrets

    server = LocalMariaDB(tmp_path_factory.mktemp("catalogdb") / "mariadb")
    endpoint = server.start()
    password = secrets.token_urlsafe(18)
    os.environ[CATALOG_PASSWORD_ENV] = password
    conn = connect_admin(endpoint)
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE USER IF NOT EXISTS '{CATALOG_USER}'@'127.0.0.1' IDENTIFIED BY %s",
                (password,),
            )
            cur.execute(f"GRANT ALL PRIVILEGES ON `sgcat\\_%`.* TO '{CATALOG_USER}'@'127.0.0.1'")
        yield server
    finally:
        conn.close()
        server.stop()


@pytest.fixture
def mysql_catalog_url(catalog_server: LocalMariaDB) -> Iterator[Callable[..., str]]:
    """Each call: a new catalog database on the catalog server, migrated unless told not to."""
    from auth.catalog import Catalog

    endpoint = catalog_server.endpoint
    made: list[str] = []

    def factory(migrate: bool = True) -> str:
        name = f"sgcat_{next(_catalog_numbers)}"
        conn = connect_admin(endpoint)
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
                cur.execute(f"CREATE DATABASE `{name}`")
        finally:
            conn.close()
        made.append(name)
        url = (
            f"mysql://{CATALOG_USER}@{endpoint.host}:{endpoint.port}/{name}"
            f"?password_env={CATALOG_PASSWORD_ENV}"
        )
        if migrate:
            Catalog.migrate(url, Path("/"))
        return url

    yield factory
    conn = connect_admin(endpoint)
    try:
        with conn.cursor() as cur:
            for name in made:
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def python_lines(module: ModuleType, run: Callable[[], object]) -> int:
    """How many Python lines of ``module`` ``run()`` runs (``sys.settrace``): the work a test
    counts where time would be noise (the lexer's slicing: lines a slice, not a character)."""
    count = 0

    def trace(frame: FrameType, event: str, _arg: Any) -> Any:
        nonlocal count
        if frame.f_code.co_filename != module.__file__:
            return None
        if event == "line":
            count += 1
        return trace

    sys.settrace(trace)
    try:
        run()
    finally:
        sys.settrace(None)
    return count
