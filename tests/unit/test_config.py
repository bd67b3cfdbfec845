"""Configuration: every key validated, unknown keys refused with the offending key's name."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from proxy.ops.config import ConfigError, load_config, parse_config

BASE = Path("/etc/shardgate")
SHARD = {"name": "s0", "host": "127.0.0.1", "port": 3306, "user": "root", "password": "pw"}


def test_example_config_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARD_S0_PASSWORD", "from-env")
    example = Path(__file__).parents[2] / "conf" / "shardgate.example.toml"
    config = load_config(example)
    assert config.server.port == 3307
    assert config.shards[0].password == "from-env"
    assert config.catalog.url == "sqlite:////var/lib/shardgate/catalog.db"
    assert config.admin.enabled is False


def test_catalog_timeout() -> None:
    shards = {"shards": [SHARD]}
    assert parse_config(shards, BASE).catalog.timeout == 5.0
    assert parse_config({**shards, "catalog": {"timeout": 2}}, BASE).catalog.timeout == 2.0
    assert parse_config({**shards, "catalog": {"timeout": 0.5}}, BASE).catalog.timeout == 0.5


def test_workers_auto_is_one_per_usable_cpu() -> None:
    shards = {"shards": [SHARD]}
    auto = parse_config({**shards, "server": {"workers": "auto", "port": 3307}}, BASE)
    assert auto.server.workers == len(os.sched_getaffinity(0))
    assert (
        parse_config({**shards, "server": {"workers": 3, "port": 3307}}, BASE).server.workers == 3
    )


def test_relative_paths_resolve_against_the_config_file() -> None:
    config = parse_config(
        {"catalog": {"url": "sqlite:///cat.db", "secret_file": "secret"}, "shards": [SHARD]},
        BASE,
    )
    assert config.catalog.secret_file == BASE / "secret"


@pytest.mark.parametrize(
    "data, message",
    [
        ({"srever": {}}, "unknown key in top level: srever"),
        ({"server": {"prot": 1}}, "unknown key in [server]: prot"),
        ({"server": {"port": "3307"}}, "server.port: expected int, got str"),
        ({"server": {"port": True}}, "server.port: expected int, got a boolean"),
        ({"server": {"port": 70000}}, "server.port: 70000 is not a TCP port"),
        ({"server": {"auth_plugin": "dialog"}}, "server.auth_plugin: must be"),
        ({"server": {"policy": "lax"}}, "server.policy: must be polardbx or managed"),
        ({"server": {"tls_cert": "a.pem"}}, "must be given together"),
        ({"server": {"require_tls": True}}, "require_tls needs"),
        ({"server": {"workers": 0}}, "server.workers: must be between 1 and 256"),
        ({"server": {"workers": "many"}}, 'server.workers: expected an int or "auto"'),
        ({"server": {"workers": 2, "port": 0}}, "several workers need a fixed server.port"),
        ({"server": {"idle_timeout": -1}}, "server.idle_timeout: must not be negative"),
        ({"server": {"max_connections": -5}}, "server.max_connections: must not be negative"),
        ({"server": {"query_timeout": "1s"}}, "server.query_timeout: expected"),
        ({"catalog": {"url": "postgres://x"}}, "catalog.url: expected sqlite:///"),
        (
            {"catalog": {"url": "mysql://cat:Pw#secret1@db/cat"}},
            "catalog.url: the catalog URL must not contain a password",
        ),
        ({"catalog": {"url": "mysql://cat@db/cat?password=x"}}, "no query parameters"),
        ({"catalog": {"url": "mysql://db/cat"}}, "catalog.url: catalog URL: name the user"),
        (
            {"catalog": {"url": "mysql://c@db/cat", "password_env": "A", "password_file": "f"}},
            "password_env or password_file, not both",
        ),
        ({"catalog": {"password_env": "A"}}, "only for a mysql:// catalog URL"),
        ({"catalog": {"url": "mysql://c@db/cat", "password_env": 1}}, "expected str"),
        ({"catalog": {"uri": "x"}}, "unknown key in [catalog]: uri"),
        ({"catalog": {"timeout": 0}}, "catalog.timeout: must be a positive number of seconds"),
        ({"catalog": {"timeout": -2.5}}, "catalog.timeout: must be a positive"),
        ({"catalog": {"timeout": float("inf")}}, "catalog.timeout: must be a positive"),
        ({"catalog": {"timeout": "5s"}}, "catalog.timeout: expected int or float, got str"),
        ({"catalog": {"timeout": True}}, "catalog.timeout: expected int or float, got a boolean"),
        ({"shards": [{"name": "s0"}]}, "shards[0].host: missing"),
        ({"shards": [{**SHARD, "pasword": "x"}]}, "unknown key in [shards[0]]: pasword"),
        ({"shards": [{**SHARD, "password_env": "X"}]}, "give password or password_env"),
        ({"shards": [SHARD, SHARD]}, "duplicate name s0"),
        ({"shards": [{**SHARD, "port": 0}]}, "shards[0].port: 0 is not a TCP port"),
    ],
)
def test_bad_configs_are_refused_with_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, BASE)
    assert message in str(info.value)


def test_password_env_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_VAR_X", raising=False)
    shard = {k: v for k, v in SHARD.items() if k != "password"}
    with pytest.raises(ConfigError, match="NO_SUCH_VAR_X is not set"):
        parse_config({"shards": [{**shard, "password_env": "NO_SUCH_VAR_X"}]}, BASE)


def test_unknown_shard_names_known_ones() -> None:
    config = parse_config({"shards": [SHARD]}, BASE)
    with pytest.raises(ConfigError, match="unknown shard 'nope' \\(configured: s0\\)"):
        config.shard("nope")


def test_toml_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[server\nport = 1\n")
    with pytest.raises(ConfigError, match=str(path)):
        load_config(path)


def test_secret_file_created_private(tmp_path: Path) -> None:
    config = parse_config({"catalog": {"secret_file": "s/secret"}, "shards": [SHARD]}, tmp_path)
    first = config.catalog_secret()
    assert (tmp_path / "s" / "secret").stat().st_mode & 0o777 == 0o600
    assert config.catalog_secret() == first


def test_secret_file_in_new_directories_is_private(tmp_path: Path) -> None:
    config = parse_config({"catalog": {"secret_file": "a/b/secret"}, "shards": [SHARD]}, tmp_path)
    config.catalog_secret()
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "a" / "b").stat().st_mode & 0o777 == 0o700


def test_secret_file_open_to_others_is_refused(tmp_path: Path) -> None:
    config = parse_config({"catalog": {"secret_file": "secret"}, "shards": [SHARD]}, tmp_path)
    first = config.catalog_secret()
    path = tmp_path / "secret"
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError) as refused:
        config.catalog_secret()
    assert str(refused.value) == (
        f"catalog.secret_file: {path} is open to group or others (mode 0640); "
        f"run `chmod 600 {path}`"
    )
    os.chmod(path, 0o600)
    assert config.catalog_secret() == first


def test_mysql_catalog_url_carries_the_password_source_never_the_password() -> None:
    config = parse_config(
        {"catalog": {"url": "mysql://cat@db.internal:3306/shardgate", "password_env": "CAT_PW"}},
        BASE,
    )
    assert config.catalog.url == "mysql://cat@db.internal:3306/shardgate?password_env=CAT_PW"
    assert config.catalog.password_env == "CAT_PW"
    config = parse_config(
        {"catalog": {"url": "mysql://cat@db/shardgate", "password_file": "catalog.pw"}}, BASE
    )
    assert config.catalog.password_file == BASE / "catalog.pw"
    assert (
        config.catalog.url
        == "mysql://cat@db/shardgate?password_file=%2Fetc%2Fshardgate%2Fcatalog.pw"
    )


def test_a_refused_catalog_url_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"catalog": {"url": "mysql://cat:Hunter#2pw@db/cat"}}, BASE)
    assert "Hunter" not in str(info.value)


def test_account_protection_keys(tmp_path: Path) -> None:
    default = parse_config({}, tmp_path).server
    assert (default.login_max_failures, default.login_lock_seconds) == (0, 300.0)
    assert default.max_user_connections == 0
    server = parse_config(
        {
            "server": {
                "login_max_failures": 5,
                "login_lock_seconds": 60,
                "max_user_connections": 10,
            }
        },
        tmp_path,
    ).server
    assert (server.login_max_failures, server.login_lock_seconds) == (5, 60.0)
    assert server.max_user_connections == 10
    for key, value, message in (
        ("login_max_failures", -1, "server.login_max_failures: must not be negative"),
        ("max_user_connections", -2, "server.max_user_connections: must not be negative"),
        ("login_lock_seconds", 0, "server.login_lock_seconds: must be positive"),
        ("login_max_failures", True, "server.login_max_failures: expected int, got a boolean"),
        ("max_user_connections", 1.5, "server.max_user_connections: expected int, got float"),
        ("login_lock_seconds", "5m", "server.login_lock_seconds: expected int or float, got str"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config({"server": {key: value}}, tmp_path)
    with pytest.raises(ConfigError, match="unknown key in \\[server\\]: login_lock_time"):
        parse_config({"server": {"login_lock_time": 5}}, tmp_path)


def test_login_throttle_keys(tmp_path: Path) -> None:
    default = parse_config({}, tmp_path).server
    assert (
        default.login_throttle_failures,
        default.login_throttle_window,
        default.login_throttle_delay,
        default.login_throttle_max_delay,
    ) == (5, 300.0, 1.0, 10.0)
    server = parse_config(
        {
            "server": {
                "login_throttle_failures": 0,
                "login_throttle_window": 60,
                "login_throttle_delay": 0.5,
                "login_throttle_max_delay": 0.5,
            }
        },
        tmp_path,
    ).server
    assert (
        server.login_throttle_failures,
        server.login_throttle_window,
        server.login_throttle_delay,
        server.login_throttle_max_delay,
    ) == (0, 60.0, 0.5, 0.5)
    for settings, message in (
        ({"login_throttle_failures": -1}, "server.login_throttle_failures: must not be negative"),
        (
            {"login_throttle_failures": 2.0},
            "server.login_throttle_failures: expected int, got float",
        ),
        ({"login_throttle_window": 0}, "server.login_throttle_window: must be positive"),
        ({"login_throttle_delay": -1.0}, "server.login_throttle_delay: must be positive"),
        ({"login_throttle_delay": float("nan")}, "server.login_throttle_delay: must be positive"),
        (
            {"login_throttle_delay": 2.0, "login_throttle_max_delay": 1.0},
            "server.login_throttle_max_delay: must be finite and not below login_throttle_delay",
        ),
        (
            {"login_throttle_max_delay": float("inf")},
            "server.login_throttle_max_delay: must be finite and not below login_throttle_delay",
        ),
        ({"login_throttle_window": "1m"}, "expected int or float, got str"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config({"server": settings}, tmp_path)
    with pytest.raises(ConfigError, match="unknown key in \\[server\\]: login_throttle"):
        parse_config({"server": {"login_throttle": 5}}, tmp_path)
