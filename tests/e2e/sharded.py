"""A sharded logical database for end-to-end tests: made over the shards ``s0`` and ``s1``
with the proxy's own provisioning (as ``shardgate database create NAME --shards s0,s1
--db-partitions D`` does), seen by the running proxy, dropped afterwards with its physical
databases; a physical database reached directly on its shard (a statement run there, its
connections killed); and what the crash-recovery tests share: a database for proxies run as
separate processes, the shards' prepared XA branches, and a proxy started to recover them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from auth.catalog import Catalog
from proxy.dev.localshard import ShardEndpoint, free_port
from proxy.manage.provision import create_database, create_sharded_database
from proxy.ops.config import load_config
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv, write_config
from tests.e2e.served import serve, stop


def shard_of(index: int, partitions: int, shards: int = 2) -> int:
    """The shard (index into ``ProxyEnv.shards``) holding physical database ``index``."""
    return index * shards // partitions


@contextmanager
def sharded_database(
    env: ProxyEnv, name: str, password: str, partitions: int = 4, setup: Sequence[str] = ()
) -> Iterator[ProxyEnv]:
    """Sharded database ``name`` (its administrator: the account ``name``, ``password``),
    once the running proxy sees it; ``setup`` (its tables, rows, accounts) run through the
    proxy as its administrator first, in order. Dropped afterwards."""
    with env.catalog() as catalog:
        asyncio.run(
            create_sharded_database(
                env.config, catalog, name, ["s0", "s1"], partitions, password, password
            )
        )
    try:
        _served(env, name, password, setup)
        yield env
    finally:
        with env.catalog() as catalog:
            catalog.drop_database(name)
        drop_physical(env.shards, name, partitions)


@contextmanager
def plain_database(
    env: ProxyEnv, name: str, password: str, setup: Sequence[str] = ()
) -> Iterator[ProxyEnv]:
    """Database ``name`` on ``s0`` (not sharded; its administrator: the account ``name``,
    ``password``), as ``sharded_database`` makes its sharded one. Dropped afterwards."""
    with env.catalog() as catalog:
        asyncio.run(create_database(env.config, catalog, name, "s0", password, password + "r"))
    try:
        _served(env, name, password, setup)
        yield env
    finally:
        with env.catalog() as catalog:
            catalog.drop_database(name)
        admin = connect_admin(env.shards[0])
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name}")
        finally:
            admin.close()


def _served(env: ProxyEnv, name: str, password: str, setup: Sequence[str]) -> None:
    """Once the running proxy sees database ``name``: ``setup`` run through it as the
    database's administrator, in order."""
    deadline = time.monotonic() + 10
    while env.server.ctx.catalog.snapshot().database(name) is None:
        assert time.monotonic() < deadline, "the proxy never saw the new database"
        time.sleep(0.1)
    if setup:
        conn = env.connect(name, password, database=name)
        try:
            with conn.cursor() as cur:
                for statement in setup:
                    cur.execute(statement)
        finally:
            conn.close()


@contextmanager
def plain_twin(env: ProxyEnv, name: str, statements: Sequence[str]) -> Iterator[None]:
    """A plain database ``name`` on the first shard holding what ``statements`` (tables and
    rows, run in it in order as the shard's administrator) make: what one MariaDB answers,
    for a sharded database of the same name to be compared with. Dropped afterwards."""
    admin = connect_admin(env.shards[0])
    try:
        with admin.cursor() as plain:
            plain.execute(f"DROP DATABASE IF EXISTS {name}")
            plain.execute(f"CREATE DATABASE {name}")
            plain.execute(f"USE {name}")
            for statement in statements:
                plain.execute(statement)
    finally:
        admin.close()
    try:
        yield
    finally:
        admin = connect_admin(env.shards[0])
        try:
            with admin.cursor() as plain:
                plain.execute(f"DROP DATABASE IF EXISTS {name}")
        finally:
            admin.close()


def physical(
    env: ProxyEnv, name: str, index: int, sql: str, partitions: int = 4
) -> list[tuple[Any, ...]]:
    """Run ``sql`` on sharded database ``name``'s physical database ``index`` directly on its
    shard, as the shard's administrator (autocommit): the rows it answered."""
    admin = connect_admin(env.shards[shard_of(index, partitions)], database=f"{name}_{index:04d}")
    try:
        with admin.cursor() as cur:
            cur.execute(sql)
            return [tuple(row) for row in cur.fetchall()]
    finally:
        admin.close()


def kill_connections(
    shards: list[ShardEndpoint], name: str, index: int, partitions: int = 4
) -> None:
    """Kill every connection to sharded database ``name``'s physical database ``index`` on
    its shard (the proxy's connections to that partition), as the shard's administrator."""
    admin = connect_admin(shards[shard_of(index, partitions)])
    try:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT id FROM information_schema.processlist WHERE db = %s",
                (f"{name}_{index:04d}",),
            )
            for (thread,) in cur.fetchall():
                cur.execute(f"KILL {int(thread)}")
    finally:
        admin.close()


def drop_physical(shards: list[ShardEndpoint], name: str, partitions: int = 4) -> None:
    """Drop sharded database ``name``'s physical databases on their shards."""
    for index in range(partitions):
        admin = connect_admin(shards[shard_of(index, partitions)])
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name}_{index:04d}")
        finally:
            admin.close()


@contextmanager
def separate_database(
    shards: list[ShardEndpoint], tmp_path: Path, name: str, password: str
) -> Iterator[tuple[Path, int]]:
    """A configuration for proxies run as processes (``tests.e2e.served``) and sharded
    database ``name`` (4 physical databases over ``s0`` and ``s1``) in its own catalog, which
    only those processes open: (the configuration's path, the port). Dropped afterwards."""
    port = free_port()
    config_path = tmp_path / "shardgate.toml"
    write_config(config_path, shards, port)
    config = load_config(config_path)
    with Catalog.open(config.catalog.url, config.base_dir) as catalog:
        asyncio.run(
            create_sharded_database(config, catalog, name, ["s0", "s1"], 4, password, password)
        )
    try:
        yield config_path, port
    finally:
        drop_physical(shards, name)


def xa_prepared(shards: list[ShardEndpoint]) -> list[str]:
    """The proxy's XA branches prepared on the shards (their gtrids)."""
    found = []
    for endpoint in shards:
        admin = connect_admin(endpoint)
        try:
            with admin.cursor() as cur:
                cur.execute("XA RECOVER")
                found += [row[3].decode() for row in cur.fetchall()]
        finally:
            admin.close()
    return [xid for xid in found if xid.startswith("shardgate-")]


@contextmanager
def recovering_proxy(
    config_path: Path, port: int, shards: list[ShardEndpoint], monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """A proxy started without the crash fault point, once it has recovered every prepared
    branch (recovery runs in the background of its start); stopped afterwards."""
    monkeypatch.delenv("SHARDGATE_TEST_XA_CRASH")
    recovering = serve(config_path, port)
    try:
        deadline = time.monotonic() + 30
        while xa_prepared(shards):
            assert time.monotonic() < deadline, "the prepared branches were not recovered"
            time.sleep(0.1)
        yield
    finally:
        stop(recovering)
