"""`shardgate` as a subprocess: the real command line, for logging and SIGHUP tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def shardgate_bin() -> str:
    return str(Path(sys.executable).with_name("shardgate"))


def create_database(config: Path, name: str, shard: str, admin_pw: str, ro_pw: str) -> None:
    created = subprocess.run(
        [shardgate_bin(), "--config", str(config), "database", "create", name, "--shard", shard,
         "--admin-password-stdin", "--ro-password-stdin"],
        input=f"{admin_pw}\n{ro_pw}\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr


def wait_for_port(port: int, proc: subprocess.Popen[str] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"shardgate exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on port {port}")


def serve(
    config: Path, port: int, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """``shardgate --config FILE [args] serve`` (in ``env``), once its port accepts
    connections."""
    proc = subprocess.Popen(
        [shardgate_bin(), "--config", str(config), *args, "serve"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        wait_for_port(port, proc)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=10)
        raise
    return proc


def stop(proc: subprocess.Popen[str]) -> str:
    """SIGTERM, wait; its combined output."""
    if proc.poll() is None:
        proc.terminate()
    out, _ = proc.communicate(timeout=60)
    return out
