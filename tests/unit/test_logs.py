"""proxy.ops.logs: JSON and text lines with connection context, audit lines, redaction."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.ops.config import ConfigError, LogConfig, parse_config
from proxy.ops.logs import (
    audit_login,
    bind_account,
    bind_connection,
    configure_logging,
    connection_logger,
    redact,
    remove_logging,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "CREATE USER 'u'@'%' IDENTIFIED BY 'S3cret#x'",
            "CREATE USER 'u'@'%' IDENTIFIED BY '***'",
        ),
        (
            'create user u identified with mysql_native_password by "S3cret" , v',
            "create user u identified with mysql_native_password by '***' , v",
        ),
        ("GRANT ... IDENTIFIED BY PASSWORD '*ABCDEF'", "GRANT ... IDENTIFIED BY PASSWORD '***'"),
        ("SET PASSWORD FOR 'u'@'%' = 'it''s \\' x'", "SET PASSWORD FOR 'u'@'%' = '***'"),
        ("set password = PASSWORD('pw1') -- hi", "set password = PASSWORD('***') -- hi"),
        ("SELECT PASSWORD( 'pw2' ), 1", "SELECT PASSWORD( '***' ), 1"),
        ("IDENTIFIED BY 'unterminated secret\nnext line", "IDENTIFIED BY '***'\nnext line"),
        ("SELECT 'IDENTIFIED' FROM t", "SELECT 'IDENTIFIED' FROM t"),
        ("no quotes at all", "no quotes at all"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    level = logging.getLogger().level
    path = tmp_path / "logs" / "shardgate.log"
    configure_logging(LogConfig(format="json", level="DEBUG", file=path))
    try:
        yield path
    finally:
        remove_logging()
        logging.getLogger().setLevel(level)


def _lines(path: Path) -> list[dict[str, object]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return [line for line in lines if str(line["logger"]).startswith("shardgate.")]


def test_json_lines_carry_the_connection_context(log_file: Path) -> None:
    log = logging.getLogger("shardgate.test")

    async def connection(conn_id: int) -> None:
        bind_connection(conn_id, f"10.0.0.{conn_id}")
        log.info("greeting sent")
        await asyncio.sleep(0)
        bind_account(f"user{conn_id}@'%'")
        audit_login(True, f"user{conn_id}", f"10.0.0.{conn_id}")

    async def both() -> None:
        await asyncio.gather(connection(1), connection(2))

    asyncio.run(both())
    log.warning("outside any connection: %s", "CREATE USER a IDENTIFIED BY 'Leak#1'")
    try:
        raise RuntimeError("SET PASSWORD = 'Leak#2'")
    except RuntimeError:
        log.exception("failed")
    lines = _lines(log_file)
    assert [line["message"] for line in lines[:2]] == ["greeting sent", "greeting sent"]
    for line in lines:
        assert set(line) >= {"ts", "level", "logger", "message"}
        assert str(line["ts"]).endswith("Z")
    greet = {line["conn_id"]: line for line in lines if line["message"] == "greeting sent"}
    assert greet[1]["client"] == "10.0.0.1" and "account" not in greet[1]
    audits = [line for line in lines if line["logger"] == "shardgate.audit"]
    assert {(a["conn_id"], a["account"], a["event"], a["result"]) for a in audits} == {
        (1, "user1@'%'", "login", "ok"),
        (2, "user2@'%'", "login", "ok"),
    }
    outside = lines[-2]
    assert outside["level"] == "WARNING" and "conn_id" not in outside
    assert outside["message"] == "outside any connection: CREATE USER a IDENTIFIED BY '***'"
    assert "RuntimeError" in str(lines[-1]["exc"])
    text = log_file.read_text()
    assert "Leak#1" not in text and "Leak#2" not in text


def test_connection_logger_without_context_variables(log_file: Path) -> None:
    log = connection_logger("shardgate.session", 9, "192.0.2.1")
    log.info("hello")
    log.bind_account("app@'%'")
    log.info("after login")
    audit_login(False, "app", "192.0.2.1", "wrong password")
    lines = _lines(log_file)
    assert (lines[0]["conn_id"], lines[0]["client"], lines[0].get("account")) == (
        9,
        "192.0.2.1",
        None,
    )
    assert lines[1]["account"] == "app@'%'"
    assert lines[2]["level"] == "WARNING" and lines[2]["result"] == "failed"
    assert lines[2]["message"] == "login failed: app from 192.0.2.1 (wrong password)"


def test_text_format_and_level(tmp_path: Path) -> None:
    level = logging.getLogger().level
    path = tmp_path / "text.log"
    configure_logging(LogConfig(format="text", level="WARNING", file=path))
    try:
        log = logging.getLogger("shardgate.test")
        log.info("not written")
        connection_logger("shardgate.test", 3, "127.0.0.1").warning("pw %s", "PASSWORD('x1')")
        # Reconfiguring replaces the handler: one line per record, not two.
        configure_logging(LogConfig(format="text", level="INFO", file=path), "ERROR")
        log.warning("not written either")
        log.error("written once")
    finally:
        remove_logging()
        logging.getLogger().setLevel(level)
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("WARNING shardgate.test: pw PASSWORD('***') [conn=3 client=127.0.0.1]")
    assert lines[1].endswith("ERROR shardgate.test: written once")


def test_log_file_and_its_directory_are_private_also_after_rotation(tmp_path: Path) -> None:
    level = logging.getLogger().level
    old_umask = os.umask(0o022)
    path = tmp_path / "logs" / "deep" / "shardgate.log"
    configure_logging(LogConfig(format="text", level="INFO", file=path))
    try:
        logging.getLogger("shardgate.test").warning("first")
        assert path.stat().st_mode & 0o777 == 0o600
        assert (tmp_path / "logs").stat().st_mode & 0o777 == 0o700
        assert (tmp_path / "logs" / "deep").stat().st_mode & 0o777 == 0o700
        # logrotate moves the file away: the handler's new file is private too.
        path.rename(path.with_name("shardgate.log.1"))
        logging.getLogger("shardgate.test").warning("second")
        assert path.stat().st_mode & 0o777 == 0o600
        assert "second" in path.read_text() and "first" not in path.read_text()
    finally:
        os.umask(old_umask)
        remove_logging()
        logging.getLogger().setLevel(level)


def test_log_config() -> None:
    base = Path("/etc/shardgate")
    config = parse_config({"log": {"format": "json", "level": "debug", "file": "x.log"}}, base)
    assert config.log == LogConfig(format="json", level="DEBUG", file=base / "x.log")
    assert parse_config({}, base).log == LogConfig()
    for data, message in (
        ({"log": {"format": "xml"}}, "log.format: must be text or json"),
        ({"log": {"level": "LOUD"}}, "log.level: must be one of"),
        ({"log": {"file": 3}}, "log.file: expected str, got int"),
        ({"log": {"fiel": "x"}}, "unknown key in [log]: fiel"),
    ):
        with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_config(data, base)
