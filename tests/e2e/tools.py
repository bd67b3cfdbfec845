"""Helpers for tests that run tools against the proxy as a tenant does: a fresh logical database
made with the operator's CLI, and the MariaDB command-line tools; and a statement's refusal."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from click.testing import CliRunner

from proxy.manage.cli import main
from tests.conftest import connect_admin
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


def run_sql(conn: Any, *statements: str) -> None:
    """Each statement on ``conn`` (a PyMySQL connection), in order."""
    with conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


@contextlib.contextmanager
def twin_account(
    proxy: ProxyEnv, user: str, password: str, table: str, secret: str, rows: str
) -> Iterator[ProxyEnv]:
    """``user`` may read easydb's ``table`` (created holding ``rows``, an INSERT's VALUES), in
    the catalog (through the proxy) and as a real account on the shard -- the same statements
    sent to both compare the proxy's answers with MariaDB's -- and not ``secret`` (created
    empty)."""
    grant = f"GRANT SELECT ON easydb.{table} TO {{}} IDENTIFIED BY '{password}'"
    with proxy.connect() as admin:
        run_sql(
            admin,
            f"CREATE TABLE IF NOT EXISTS {table} (a INT)",
            f"CREATE TABLE IF NOT EXISTS {secret} (a INT)",
            f"DELETE FROM {table}",
            f"INSERT INTO {table} VALUES {rows}",
            f"DROP USER IF EXISTS {user}",
            grant.format(user),
        )
    shard = connect_admin(proxy.shards[0])
    try:
        run_sql(shard, f"DROP USER IF EXISTS '{user}'@'%'", grant.format(f"'{user}'@'%'"))
        yield proxy
    finally:
        run_sql(shard, f"DROP USER IF EXISTS '{user}'@'%'")
        shard.close()
        with proxy.connect() as admin:
            run_sql(admin, f"DROP USER IF EXISTS {user}", f"DROP TABLE IF EXISTS {table}, {secret}")
