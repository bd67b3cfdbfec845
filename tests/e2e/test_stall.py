"""No tenant can stall another (issue #11, item 7).

A real ``shardgate serve`` process; one tenant's client (a process of its own) sends 50 MB bulk
INSERTs, a 40 MB IN list, single 16 MB tokens (a string literal, a hexadecimal number),
statements whose analysis is slow (a 200 KB expression of a new shape every time) and
pathological LIKE patterns, while another tenant's client measures ``SELECT 1``: its
99th-percentile latency stays under 50 ms. Bounded: a few seconds of load.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from proxy.dev.localshard import ShardEndpoint, free_port
from tests.e2e.conftest import write_config
from tests.e2e.served import create_database, serve, stop

LOAD_SECONDS = 8.0
P99_LIMIT = 0.050

HOSTILE = textwrap.dedent(
    """
    import sys, time, pymysql
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    conn = pymysql.connect(host="127.0.0.1", port=port, user="noisy", password="Noisy#pw1",
                           database="noisy", autocommit=True, read_timeout=120,
                           max_allowed_packet=64 * 1024 * 1024)
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bulk (id INT, v VARCHAR(16))")
        cur.execute("CREATE TABLE IF NOT EXISTS big (id INT, v LONGBLOB)")
    rows = ",".join(f"({i},'abcdefgh')" for i in range(3_700_000))
    bulk = "INSERT INTO bulk VALUES " + rows  # ~50 MB
    in_list = "SELECT COUNT(*) FROM bulk WHERE id IN (" + ",".join(map(str, range(5_000_000))) + ")"
    like = "SHOW DATABASES LIKE '" + "%" * 500_000 + "!'"
    # single tokens of 16 MB: a string literal and a hexadecimal number
    big_string = "INSERT INTO big VALUES (1, '" + "a" * (16 << 20) + "')"
    big_hex = "INSERT INTO big VALUES (2, 0x" + "ab" * (8 << 20) + ")"
    done = 0
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
        for sql in (big_string, big_hex, bulk, like, in_list,
                    "SELECT " + "+".join(["%d" % n] * 40_000)):
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    cur.fetchall()
            except pymysql.err.MySQLError:
                conn = pymysql.connect(host="127.0.0.1", port=port, user="noisy",
                                       password="Noisy#pw1", database="noisy", autocommit=True,
                                       read_timeout=120, max_allowed_packet=64 * 1024 * 1024)
            done += 1
            if time.monotonic() >= deadline:
                break
    print(done)
    """
)


@pytest.fixture
def served(shards: list[ShardEndpoint], tmp_path: Path) -> Iterator[int]:
    port = free_port()
    config = tmp_path / "shardgate.toml"
    write_config(config, shards, port)
    create_database(config, "noisy", "s0", "Noisy#pw1", "NoisyRO#1")
    create_database(config, "calm", "s1", "Calm#pw1", "CalmRO#1")
    proc = serve(config, port)
    try:
        yield port
    finally:
        stop(proc)


def test_one_tenant_cannot_stall_another(served: int, tmp_path: Path) -> None:
    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE)
    calm = pymysql.connect(
        host="127.0.0.1",
        port=served,
        user="calm",
        password="Calm#pw1",
        database="calm",
        autocommit=True,
    )
    with calm.cursor() as cur:  # warm: the calm session's backend connection and cache entry
        cur.execute("SELECT 1")
    hostile = subprocess.Popen(
        [sys.executable, str(script), str(served), str(LOAD_SECONDS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    latencies: list[float] = []
    try:
        time.sleep(1.0)  # let the hostile client build its statements and start sending
        deadline = time.monotonic() + LOAD_SECONDS - 1.5
        with calm.cursor() as cur:
            while time.monotonic() < deadline:
                started = time.perf_counter()
                cur.execute("SELECT 1")
                assert cur.fetchall() == ((1,),)
                latencies.append(time.perf_counter() - started)
                time.sleep(0.002)
    finally:
        out, err = hostile.communicate(timeout=180)
        calm.close()
    assert hostile.returncode == 0, err
    assert int(out.strip()) >= 4, "the hostile client did not get its load through"
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    assert len(latencies) > 200
    print(
        f"SELECT 1 under load: p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms, "
        f"median {latencies[len(latencies) // 2] * 1000:.2f} ms over {len(latencies)}; "
        f"{out.strip()} hostile statements"
    )
    assert p99 < P99_LIMIT, (
        f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms, "
        f"median {latencies[len(latencies) // 2] * 1000:.2f} ms over {len(latencies)}"
    )
