"""Helpers for tests that run tools against the proxy as a tenant does: a fresh logical database
made with the operator's CLI, and the MariaDB command-line tools; and a statement's refusal."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from typing import Any

import pymysql
import pytest
from click.testing import CliRunner

from proxy.manage.cli import main
from tests.e2e.conftest import ProxyEnv

TOOL_TIMEOUT = 120


def new_database(proxy: ProxyEnv, prefix: str, admin_password: str, shard: str = "s0") -> str:
    """A logical database of its own (``shardgate database create``), once the proxy knows it
    (it polls the catalog) and its administrator can log in."""
    name = prefix + uuid.uuid4().hex[:8]
    result = CliRunner().invoke(
        main,
        [
            "--config",
            str(proxy.config_path),
            *("database", "create", name, "--shard", shard, "--admin-password-stdin"),
        ],
        input=f"{admin_password}\n",
    )
    assert result.exit_code == 0, result.output
    deadline = time.monotonic() + 10
    while True:
        try:
            proxy.connect(user=name, password=admin_password, database=name).close()
            return name
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run_tool(
    proxy: ProxyEnv, tool: str, user: str, password: str, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``tool`` (``mariadb``, ``mariadb-dump``) against the proxy as ``user``; the password in
    the environment, not on the command line."""
    return subprocess.run(
        [tool, "-h", proxy.host, "-P", str(proxy.port), "-u", user, *args],
        input=stdin,
        capture_output=True,
        timeout=TOOL_TIMEOUT,
        env={**os.environ, "MYSQL_PWD": password},
        check=False,
    )


def error_of(cur: Any, sql: str) -> tuple[int, str]:
    """The error ``sql`` is refused with on cursor ``cur``: (its number, its message)."""
    with pytest.raises(pymysql.err.MySQLError) as failed:
        cur.execute(sql)
    return failed.value.args[0], failed.value.args[1]
