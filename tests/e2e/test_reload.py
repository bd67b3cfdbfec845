"""SIGHUP on a real `shardgate serve`: the configuration is re-read without dropping sessions.

One proxy process, started with shard s0 and a TLS certificate: a rotated certificate is
served to new TLS connections while an open session keeps working; a shard added to the file
takes a new database; an invalid file, or one changing what cannot change live, is refused
and the proxy keeps serving on the running configuration.
"""

from __future__ import annotations

import hashlib
import shutil
import signal
import ssl
import time
from pathlib import Path
from typing import Any

import httpx
import pymysql

from proxy.dev.localshard import ShardEndpoint, free_port
from tests.e2e.conftest import self_signed_cert, write_config
from tests.e2e.served import create_database, serve, stop
from tests.metrics_text import parse_exposition

ADMIN_PW = "Hup#admin1"


def _write(config: Path, shards: list[ShardEndpoint], port: int, cert: Path, admin: int) -> None:
    write_config(
        config, shards, port, f'tls_cert = "{cert}"\ntls_key = "{cert.with_suffix(".key")}"\n'
    )
    config.write_text(config.read_text() + f"[admin]\nport = {admin}\n[metrics]\nenabled = true\n")


def _connect(port: int, user: str = "hupdb", password: str = ADMIN_PW, **kw: Any) -> Any:
    return pymysql.connect(
        host="127.0.0.1", port=port, user=user, password=password, database=user,
        autocommit=True, connect_timeout=10,
        ssl={"check_hostname": False, "verify_mode": ssl.CERT_NONE}, **kw,
    )  # fmt: skip


def _fingerprint(conn: Any) -> str:
    der = conn._sock.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest()


def _cert_fingerprint(pem: Path) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.read_text())).hexdigest()


def _reloads(admin_port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=10).text
    samples = parse_exposition(text)
    return {
        result: samples[("shardgate_config_reloads_total", (("result", result),))]
        for result in ("ok", "failed")
    }


def _hup_and_wait(proc: Any, admin_port: int, result: str) -> None:
    before = _reloads(admin_port)[result]
    proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while _reloads(admin_port)[result] == before:
        assert time.monotonic() < deadline, f"no {result} reload counted"
        time.sleep(0.05)


def test_sighup_rotates_tls_adds_a_shard_and_refuses_bad_files(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    port, admin_port = free_port(), free_port()
    config = tmp_path / "shardgate.toml"
    cert, _ = self_signed_cert(tmp_path, "server")
    first = _cert_fingerprint(cert)
    _write(config, shards[:1], port, cert, admin_port)
    create_database(config, "hupdb", "s0", ADMIN_PW, "HupRO#pw1")
    proc = serve(config, port)
    try:
        session = _connect(port)
        assert _fingerprint(session) == first
        with session.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY)")
            cur.execute("REPLACE INTO t VALUES (1)")

        # Rotate the certificate in place and add shard s1 in the same reload.
        rotated = tmp_path / "rotated"
        rotated.mkdir()
        new_cert, new_key = self_signed_cert(rotated, "server")
        second = _cert_fingerprint(new_cert)
        assert second != first
        shutil.copy(new_key, cert.with_suffix(".key"))
        shutil.copy(new_cert, cert)
        _write(config, shards, port, cert, admin_port)
        _hup_and_wait(proc, admin_port, "ok")

        fresh = _connect(port)
        assert _fingerprint(fresh) == second
        fresh.close()
        # The session opened before the reload is untouched: same TLS state, still serving.
        assert _fingerprint(session) == first
        with session.cursor() as cur:
            cur.execute("SELECT id FROM t")
            assert cur.fetchall() == ((1,),)

        # The new shard takes a database, reachable through the running proxy.
        create_database(config, "hupnew", "s1", "HupNew#pw1", "HupNewRO#1")
        deadline = time.monotonic() + 10
        while True:
            try:
                other = _connect(port, "hupnew", "HupNew#pw1")
                break
            except pymysql.err.OperationalError:  # the catalog poll has not seen it yet
                assert time.monotonic() < deadline
                time.sleep(0.1)
        with other.cursor() as cur:
            cur.execute("CREATE TABLE n (id INT)")
            cur.execute("INSERT INTO n VALUES (7)")
            cur.execute("SELECT id, DATABASE() FROM n")
            assert cur.fetchall() == ((7, "hupnew"),)
        other.close()

        # An invalid file, then one that moves the listen port: both refused, still serving.
        good = config.read_text()
        config.write_text(good + "[server\n")
        _hup_and_wait(proc, admin_port, "failed")
        config.write_text(good.replace(f"port = {port}", f"port = {free_port()}", 1))
        _hup_and_wait(proc, admin_port, "failed")
        config.write_text(good)
        check = _connect(port)
        assert _fingerprint(check) == second
        check.close()
        with session.cursor() as cur:
            cur.execute("SELECT 1")
        session.close()
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert "configuration reloaded from" in out and "shard 's1' added" in out
    assert "configuration reload refused: " in out
    assert "server.port cannot change while serving" in out
    assert ADMIN_PW not in out and "HupNew#pw1" not in out
