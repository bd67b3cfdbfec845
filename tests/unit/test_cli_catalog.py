"""``shardgate catalog migrate`` and the schema check of ``serve``, on both catalog stores."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pymysql
import pytest
from click.testing import CliRunner, Result

from auth.catalog import Catalog, CatalogSecretError
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
    assert result.stdout == (
        f"Catalog schema migrated from version 0 to {SCHEMA_VERSION}.\n"
        "Catalog secret recorded (a verifier, not the secret): every node sharing this catalog "
        f"needs the secret of {tmp_path / 'shardgate.secret'} (catalog.secret_file).\n"
    )
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
    assert result.stdout.startswith(
        f"Catalog schema migrated from version 0 to {SCHEMA_VERSION}.\nCatalog secret recorded"
    )
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


# --- the catalog secret: every node sharing a catalog needs the one it was set up with ---


def _node_config(directory: Path, url: str, secret_env: str) -> Path:
    base, _, query = url.partition("?")
    directory.mkdir(exist_ok=True)
    path = directory / "shardgate.toml"
    path.write_text(
        f'[catalog]\nurl = "{base}"\npassword_env = "{query.split("=", 1)[1]}"\n'
        f'secret_env = "{secret_env}"\n'
    )
    return path


def test_a_node_with_another_catalog_secret_refuses_to_start(
    tmp_path: Path, mysql_catalog_url: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = mysql_catalog_url(migrate=False)
    monkeypatch.setenv("SG_SECRET_ONE", "first-secret-0123456789")
    monkeypatch.setenv("SG_SECRET_TWO", "other-secret-0123456789")
    one = _node_config(tmp_path / "one", url, "SG_SECRET_ONE")
    two = _node_config(tmp_path / "two", url, "SG_SECRET_TWO")
    # Setting the catalog up records (a verifier of) the secret of the node that did it.
    result = _run(one, "catalog", "migrate")
    assert result.exit_code == 0, result.output
    assert "Catalog secret recorded" in result.stdout and "SG_SECRET_ONE" in result.stdout
    # A node with another secret: serve and every command refuse, with one line saying what
    # to do, before anything starts; the secret itself is never shown.
    expected = (
        "Error: this node's catalog secret is not the one the catalog was set up with: every "
        "node sharing a catalog needs the same secret (copy it from a node that serves this "
        "catalog); this node reads it from the environment variable SG_SECRET_TWO "
        "(catalog.secret_env)"
    )
    for args in (("users", "list", "--database", "easydb"), ("database", "list"), ("serve",)):
        result = _run(two, *args)
        assert _error_lines(result) == [expected], args
        assert "secret-0123456789" not in result.output
    # catalog migrate migrates (the schema is the same for every secret), then refuses.
    result = _run(two, "catalog", "migrate")
    assert result.exit_code == 1
    assert result.stdout == f"Catalog schema is up to date (version {SCHEMA_VERSION}).\n"
    assert result.stderr.strip() == expected
    # The node with the right secret gets past the check (to the unknown database).
    result = _run(one, "users", "list", "--database", "easydb")
    assert _error_lines(result) == ['Error: Unknown database "easydb".']


def test_the_first_node_to_serve_records_the_secret(tmp_path: Path) -> None:
    """A SQLite catalog needs no migrate: the first `serve` records the secret's verifier."""
    config = _config(tmp_path, "sqlite:///catalog.db")
    assert _run(config, "users", "list", "--database", "easydb").exit_code == 1
    with Catalog.open("sqlite:///catalog.db", tmp_path) as catalog:
        assert not catalog.check_secret(b"anything", claim=False)  # nothing recorded yet
    (tmp_path / "blocker").write_text("a file where the log directory would be")
    (tmp_path / "shardgate.toml").write_text(
        '[catalog]\nurl = "sqlite:///catalog.db"\n[log]\nfile = "blocker/sg.log"\n'
    )
    # serve records the verifier, then stops at the log file (before binding anything).
    assert "log.file" in _error_lines(_run(config, "serve"))[0]
    with Catalog.open("sqlite:///catalog.db", tmp_path) as catalog:
        with pytest.raises(CatalogSecretError):
            catalog.check_secret(b"anything", claim=False)
        secret = (tmp_path / "shardgate.secret").read_text().strip().encode()
        assert not catalog.check_secret(secret, claim=False)
