"""What a SIGHUP reload may change live, and what it refuses (proxy.server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from proxy.ops.config import Config, parse_config
from proxy.server import _describe_changes, _fixed_changes

BASE = Path("/etc/shardgate")
S0 = {"name": "s0", "host": "10.0.0.1", "port": 3306, "user": "root", "password": "pw"}
S1 = {**S0, "name": "s1", "host": "10.0.0.2"}


def _config(**sections: Any) -> Config:
    data: dict[str, Any] = {"shards": [S0]}
    data.update(sections)
    return parse_config(data, BASE)


def test_live_changes_are_accepted_and_described() -> None:
    old = _config()
    new = _config(
        shards=[{**S0, "port": 3307}, S1],
        server={"handshake_timeout": 3.0, "auth_plugin": "caching_sha2_password"},
        log={"format": "json"},
    )
    assert _fixed_changes(old, new) == []
    assert _describe_changes(old, new) == (
        "shard 's1' added; shard 's0' changed; "
        "changed server.auth_plugin, server.handshake_timeout, [log]"
    )
    assert _describe_changes(old, old) == "no changes"


def test_fixed_changes_are_named() -> None:
    old = _config(shards=[S0, S1])
    new = _config(
        server={"port": 4000, "policy": "managed"},
        catalog={"url": "sqlite:///other.db"},
        admin={"enabled": True},
        metrics={"enabled": True},
    )
    assert _fixed_changes(old, new) == [
        "server.port",
        "server.policy",
        "[catalog]",
        "[admin]",
        "metrics.enabled",
        "shard 's1' removed",
    ]
