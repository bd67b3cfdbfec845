"""A sharded logical database for end-to-end tests: made over the shards ``s0`` and ``s1``
with the proxy's own provisioning (as ``shardgate database create NAME --shards s0,s1
--db-partitions D`` does), seen by the running proxy, dropped afterwards with its physical
databases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager

from proxy.manage.provision import create_sharded_database
from tests.conftest import connect_admin
from tests.e2e.conftest import ProxyEnv


def shard_of(index: int, partitions: int, shards: int = 2) -> int:
    """The shard (index into ``ProxyEnv.shards``) holding physical database ``index``."""
    return index * shards // partitions


@contextmanager
def sharded_database(
    env: ProxyEnv, name: str, password: str, partitions: int = 4
) -> Iterator[ProxyEnv]:
    with env.catalog() as catalog:
        asyncio.run(
            create_sharded_database(
                env.config, catalog, name, ["s0", "s1"], partitions, password, password
            )
        )
    deadline = time.monotonic() + 10
    while env.server.ctx.catalog.snapshot().database(name) is None:
        assert time.monotonic() < deadline, "the proxy never saw the new database"
        time.sleep(0.1)
    try:
        yield env
    finally:
        with env.catalog() as catalog:
            catalog.drop_database(name)
        for index in range(partitions):
            admin = connect_admin(env.shards[shard_of(index, partitions)])
            try:
                with admin.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS {name}_{index:04d}")
            finally:
                admin.close()
