"""Two throwaway MariaDB shards and a shardgate proxy in front of them, for running drivers'
own test suites against the proxy (``run_pymysql_suite.py``, ``run_mysql2_suite.py``; not part
of CI, which cannot reach the drivers' repositories).

``python -m tests.drivers.stack DIR`` keeps a stack running until Ctrl-C and prints how to
connect (for trying a driver by hand). Each database of ``DATABASES`` is created on its own
shard with its administrator ``<db>`` (password ``PASSWORD``).
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
    base: Path, databases: tuple[str, ...] = ("test1", "test2"), extra: str = ""
) -> Iterator[Stack]:
    """Shards (one per database) and a proxy (``extra``: lines for its [server] table)."""
    base.mkdir(parents=True, exist_ok=True)
    servers = [LocalMariaDB(base / f"shard{i}") for i in range(len(databases))]
    proxy = None
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            endpoints = list(pool.map(lambda s: s.start(), servers))
        placement = [(name, f"s{i}") for i, name in enumerate(databases)]
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
    base = Path(sys.argv[1] if len(sys.argv) > 1 else ".shardgate/drivers")
    with running_stack(base.resolve()) as stack:
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
