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
    os.chmod(tmp_path / "pw", 0o600)
    base = url.partition("?")[0]
    path = tmp_path / "shardgate.toml"
    path.write_text(f'[catalog]\nurl = "{base}"\npassword_file = "pw"\n')
    result = _run(path, "users", "list", "--database", "easydb")
    assert result.exit_code == 1
    assert "cannot connect to mysql://" in result.stderr and "Access denied" in result.stderr
    assert "Wrong#Password1" not in result.output


# --- files at rest: refused with one line naming the chmod, before anything starts ---


def _error_lines(result: Result) -> list[str]:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_serve_and_the_cli_refuse_a_catalog_file_open_to_others(tmp_path: Path) -> None:
    config = _config(tmp_path, "sqlite:///catalog.db")
    assert _run(config, "catalog", "migrate").exit_code == 0
    db = tmp_path / "catalog.db"
    os.chmod(db, 0o644)
    expected = (
        f"Error: cannot open the catalog {db}: {db} is open to group or others (mode 0644); "
        f"run `chmod 600 {db}`"
    )
    for args in (("serve",), ("users", "list", "--database", "easydb"), ("catalog", "migrate")):
        assert _error_lines(_run(config, *args)) == [expected], args
    os.chmod(db, 0o600)
    assert _run(config, "users", "list", "--database", "easydb").exit_code == 1  # unknown db


def test_serve_refuses_a_secret_file_open_to_others(tmp_path: Path) -> None:
    config = _config(tmp_path, "sqlite:///catalog.db")
    secret = tmp_path / "shardgate.secret"
    secret.write_text("0123456789abcdef\n")
    os.chmod(secret, 0o604)
    assert _error_lines(_run(config, "serve")) == [
        f"Error: config: catalog.secret_file: {secret} is open to group or others (mode 0604); "
        f"run `chmod 600 {secret}`"
    ]


def test_a_catalog_password_file_open_to_others_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("Some#Password1\n")
    os.chmod(tmp_path / "pw", 0o640)
    path = tmp_path / "shardgate.toml"
    path.write_text('[catalog]\nurl = "mysql://cat@127.0.0.1:1/cat"\npassword_file = "pw"\n')
    pw = tmp_path / "pw"
    for args in (("serve",), ("users", "list", "--database", "easydb")):
        assert _error_lines(_run(path, *args)) == [
            f"Error: cannot open the catalog: catalog password file: {pw} is open to group or "
            f"others (mode 0640); run `chmod 600 {pw}`"
        ]


def test_dev_refuses_an_exposed_state_before_starting_shards(tmp_path: Path) -> None:
    state = tmp_path / "dev"
    state.mkdir()
    (state / "shardgate.toml").write_text('[catalog]\nurl = "sqlite:///catalog.db"\n')
    Catalog.open("sqlite:///catalog.db", state).close()
    db = state / "catalog.db"
    os.chmod(db, 0o644)
    result = CliRunner().invoke(main, ["dev", "--state-dir", str(state), "--port", "1"])
    assert _error_lines(result) == [
        f"Error: cannot open the catalog {db}: {db} is open to group or others (mode 0644); "
        f"run `chmod 600 {db}`"
    ]
    assert not (state / "s0").exists()  # no shard was started
