"""Two throwaway MariaDB shards and a shardgate proxy in front of them, for running drivers'
own test suites against the proxy (``run_pymysql_suite.py``, ``run_mysql2_suite.py``; not part
of CI, which cannot reach the drivers' repositories).

``python -m tests.drivers.stack [--sharded] DIR`` keeps a stack running until Ctrl-C and
prints how to connect (for trying a driver by hand). Each database is created on its own shard
with its administrator ``<db>`` (password ``PASSWORD``); with ``sharded`` (``--sharded``), as a
sharded database over both shards instead (``shardgate database create <db> --shards s0,s1``:
8 physical databases, 4 per shard; a table created without DBPARTITION is a single table in
physical database 0, and every statement goes through the sharded executor).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from proxy.dev.localshard import LocalMariaDB, ShardEndpoint
from tests.e2e.conftest import start_proxy

HOST = "127.0.0.1"
PASSWORD = "Driver#Suite1"
RO_PASSWORD = "Driver#ReadOnly1"


@dataclass(frozen=True)
class Stack:
    host: str
    port: int
    shards: list[ShardEndpoint]


@contextlib.contextmanager
def running_stack(
    base: Path,
    databases: tuple[str, ...] = ("test1", "test2"),
    extra: str = "",
    sharded: bool = False,
) -> Iterator[Stack]:
    """Shards (one per database, at least two) and a proxy (``extra``: lines for its [server]
    table); ``sharded``: each database sharded over every shard."""
    base.mkdir(parents=True, exist_ok=True)
    servers = [LocalMariaDB(base / f"shard{i}") for i in range(max(2, len(databases)))]
    proxy = None
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            endpoints = list(pool.map(lambda s: s.start(), servers))
        every = ",".join(f"s{i}" for i in range(len(servers)))
        placement = [(name, every if sharded else f"s{i}") for i, name in enumerate(databases)]
        (base / "proxy").mkdir(exist_ok=True)
        proxy = start_proxy(base / "proxy", endpoints, extra, placement, PASSWORD, RO_PASSWORD)
        assert proxy.server is not None
        yield Stack(HOST, proxy.server.port, endpoints)
    finally:
        if proxy is not None:
            try:
                proxy.stop()
            except TimeoutError:  # sessions a suite left hanging: the process exit ends them
                print("the proxy did not stop in time", file=sys.stderr)
        for server in servers:
            server.stop()


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg != "--sharded"]
    base = Path(args[0] if args else ".shardgate/drivers")
    with running_stack(base.resolve(), sharded="--sharded" in sys.argv[1:]) as stack:
        print(
            json.dumps(
                {
                    "host": stack.host,
                    "port": stack.port,
                    "password": PASSWORD,
                    "shards": [s.__dict__ for s in stack.shards],
                }
            ),
            flush=True,
        )
        try:
            import time

            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
