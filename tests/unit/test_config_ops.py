"""Configuration of the operations features: ``[metrics]`` (and ``[log]``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.ops.config import ConfigError, parse_config

BASE = Path("/etc/shardgate")


def test_metrics_defaults_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_config({}, BASE).metrics.enabled is False
    config = parse_config({"metrics": {"enabled": True, "token_env": "SG_METRICS_TOKEN"}}, BASE)
    assert config.metrics.enabled is True
    monkeypatch.delenv("SG_METRICS_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="SG_METRICS_TOKEN is not set"):
        config.metrics.token()
    monkeypatch.setenv("SG_METRICS_TOKEN", "t0ken")
    assert config.metrics.token() == "t0ken"
    assert parse_config({"metrics": {"enabled": True}}, BASE).metrics.token() is None


@pytest.mark.parametrize(
    "data, message",
    [
        ({"metrics": {"enable": True}}, "unknown key in [metrics]: enable"),
        ({"metrics": {"enabled": "yes"}}, "metrics.enabled: expected bool, got str"),
        ({"metrics": {"token_env": ""}}, "metrics.token_env: must not be empty"),
        ({"metrics": []}, "metrics: expected a table"),
    ],
)
def test_bad_ops_configs_are_refused_with_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, BASE)
    assert message in str(info.value)


def test_shard_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "s0_password"
    secret.write_text("Sh@rd pw\n")
    shard = {"name": "s0", "host": "db", "port": 3306, "user": "root"}
    config = parse_config({"shards": [{**shard, "password_file": "s0_password"}]}, tmp_path)
    assert config.shards[0].password == "Sh@rd pw"
    assert "Sh@rd" not in repr(config)
    with pytest.raises(ConfigError, match=r"shards\[0\].password_file: No such file"):
        parse_config({"shards": [{**shard, "password_file": "missing"}]}, tmp_path)
    with pytest.raises(ConfigError, match="not both"):
        parse_config({"shards": [{**shard, "password_file": "x", "password": "y"}]}, tmp_path)
