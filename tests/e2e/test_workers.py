"""Several worker processes on one port: `shardgate serve` with [server] workers = 2."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pymysql

from proxy.dev.localshard import ShardEndpoint, free_port
from tests.e2e.conftest import write_config
from tests.e2e.served import create_database, serve, stop, wait_for_port
from tests.metrics_text import parse_exposition

ADMIN = "Workers#adm1"
RO = "Workers#ro12"


def _connect(port: int) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=port, user="wdb", password=ADMIN, database="wdb",
        autocommit=True, connect_timeout=10, read_timeout=30,
    )  # fmt: skip


def test_two_workers_share_the_port_the_metrics_and_the_digest(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    port, admin_port = free_port(), free_port()
    config = tmp_path / "shardgate.toml"
    write_config(config, shards, port, "workers = 2\n")
    config.write_text(
        config.read_text() + f"[admin]\nport = {admin_port}\n[metrics]\nenabled = true\n"
    )
    create_database(config, "wdb", "s0", ADMIN, RO)
    proc = serve(config, port)
    try:
        with _connect(port) as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS w_t (id INT PRIMARY KEY)")
            cur.execute("REPLACE INTO w_t VALUES (1)")
        # The kernel spreads connections over both workers; ids are unique across them
        # (worker I of N hands out ids = I + 1 mod N). The second worker may start listening
        # a little later than the first (a loaded machine): connect until both have served.
        ids: list[int] = []
        deadline = time.monotonic() + 30
        while len(ids) < 24 or {i % 2 for i in ids} != {0, 1}:
            assert time.monotonic() < deadline, f"one worker served every connection: {ids}"
            with _connect(port) as conn, conn.cursor() as cur:
                ids.append(conn.thread_id())  # the id in the proxy's greeting
                cur.execute("SELECT id FROM w_t WHERE id = 1")
                assert cur.fetchone() == (1,)
        assert len(set(ids)) == len(ids)

        # Each worker publishes every second: scrape until both workers' logins are all in.
        logins: dict[tuple[tuple[str, str], ...], float] = {}
        deadline = time.monotonic() + 15
        while sum(logins.values()) != len(ids) + 1 and time.monotonic() < deadline:
            time.sleep(0.5)
            scrape = httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=10)
            assert scrape.status_code == 200
            samples = parse_exposition(scrape.text)
            logins = {
                labels: value
                for (name, labels), value in samples.items()
                if name == "shardgate_logins_total" and ("result", "ok") in labels
            }
        workers = {dict(labels)["worker"] for labels in logins}
        assert workers == {"0", "1"}
        assert sum(logins.values()) == len(ids) + 1  # the loop's connections and the setup's

        with _connect(port) as conn, conn.cursor() as cur:
            cur.execute("SHOW QUERY_DIGEST")
            digest = {row[1]: int(row[2]) for row in cur.fetchall()}
        assert digest["SELECT id FROM w_t WHERE id = ?"] == len(ids)  # both workers' statements

        # A worker that dies is replaced; the port keeps serving.
        worker_pids = [int(p) for p in os.popen(f"pgrep -P {proc.pid}").read().split()]
        assert len(worker_pids) == 2
        os.kill(worker_pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = [int(p) for p in os.popen(f"pgrep -P {proc.pid}").read().split()]
            if len(now) == 2 and worker_pids[0] not in now:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the killed worker was not restarted")
        wait_for_port(port)
        for _ in range(6):
            with _connect(port) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert not [p for p in os.popen(f"pgrep -P {proc.pid}").read().split()]
