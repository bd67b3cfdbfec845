"""``shardgate catalog migrate`` and the schema check of ``serve``, on both catalog stores."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pymysql
from click.testing import CliRunner, Result

from auth.catalog import Catalog
from auth.sqlite_store import SCHEMA_VERSION
from proxy.manage.cli import main
from tests.conftest import CATALOG_PASSWORD_ENV


def _config(directory: Path, url: str) -> Path:
    base, _, query = url.partition("?")
    lines = ["[catalog]", f'url = "{base}"']
    if query:
        lines.append(f'password_env = "{query.split("=", 1)[1]}"')
    path = directory / "shardgate.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args])


def test_migrate_sets_up_and_upgrades_a_sqlite_catalog(tmp_path: Path) -> None:
    config = _config(tmp_path, "sqlite:///data/catalog.db")
    result = _run(config, "catalog", "migrate")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Catalog schema migrated from version 0 to {SCHEMA_VERSION}.\n"
    result = _run(config, "catalog", "migrate")
    assert result.stdout == f"Catalog schema is up to date (version {SCHEMA_VERSION}).\n"


def test_mysql_catalog_serve_refuses_until_migrated(
    tmp_path: Path, mysql_catalog_url: Callable[..., str]
) -> None:
    url = mysql_catalog_url(migrate=False)
    assert CATALOG_PASSWORD_ENV in url
    config = _config(tmp_path, url)
    # serve checks the catalog before it binds anything, and says what to do.
    result = _run(config, "serve")
    assert result.exit_code == 1
    assert "catalog migrate" in result.stderr and "version 0" in result.stderr
    result = _run(config, "users", "list", "--database", "easydb")
    assert result.exit_code == 1 and "catalog migrate" in result.stderr
    result = _run(config, "catalog", "migrate")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"Catalog schema migrated from version 0 to {SCHEMA_VERSION}.\n"
    with Catalog.open(url, tmp_path) as catalog:
        assert catalog.snapshot().version == 0
    result = _run(config, "catalog", "migrate")
    assert result.stdout == f"Catalog schema is up to date (version {SCHEMA_VERSION}).\n"


def test_serve_refuses_a_newer_schema(
    tmp_path: Path, mysql_catalog_url: Callable[..., str]
) -> None:
    url = mysql_catalog_url()
    base, _, _ = url.partition("?")
    user_host, database = base[len("mysql://") :].split("/")
    user, host_port = user_host.split("@")
    host, port = host_port.split(":")
    conn = pymysql.connect(
        host=host,
        port=int(port),
        user=user,
        password=os.environ[CATALOG_PASSWORD_ENV],
        database=database,
        autocommit=True,
    )
    with conn.cursor() as cur:
        cur.execute("UPDATE schema_version SET version = version + 1")
    conn.close()
    result = _run(_config(tmp_path, url), "serve")
    assert result.exit_code == 1 and "newer than this shardgate" in result.stderr
    result = _run(_config(tmp_path, url), "catalog", "migrate")
    assert result.exit_code == 1 and "newer" in result.stderr


def test_a_wrong_catalog_password_is_a_clear_error_without_the_password(
    tmp_path: Path, mysql_catalog_url: Callable[..., str]
) -> None:
    url = mysql_catalog_url()
    (tmp_path / "pw").write_text("Wrong#Password1\n")
    base = url.partition("?")[0]
    path = tmp_path / "shardgate.toml"
    path.write_text(f'[catalog]\nurl = "{base}"\npassword_file = "pw"\n')
    result = _run(path, "users", "list", "--database", "easydb")
    assert result.exit_code == 1
    assert "cannot connect to mysql://" in result.stderr and "Access denied" in result.stderr
    assert "Wrong#Password1" not in result.output
