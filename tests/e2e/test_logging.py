"""`shardgate serve` with JSON logs to a file: every line parses, carries the connection's
fields, and no password ever reaches the log, whatever the clients send."""

from __future__ import annotations

import json
from pathlib import Path

import pymysql
import pytest

from proxy.dev.localshard import ShardEndpoint, free_port
from tests.e2e.conftest import write_config
from tests.e2e.served import create_database, serve, stop

ADMIN_PW = "LogAdmin#pw1"
SECRETS = ("LogAdmin#pw1", "LogRO#pw1", "Create#pw123", "Reset#pw456", "Guess#pw789", "Bad#pw000")


def test_json_log_file_never_holds_a_password(shards: list[ShardEndpoint], tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "shardgate.toml"
    log_file = tmp_path / "log" / "shardgate.jsonl"
    write_config(config, shards, port)
    config.write_text(
        config.read_text() + f'[log]\nformat = "json"\nlevel = "DEBUG"\nfile = "{log_file}"\n'
    )
    create_database(config, "logdb", "s0", ADMIN_PW, "LogRO#pw1")
    proc = serve(config, port)
    try:
        conn = pymysql.connect(
            host="127.0.0.1", port=port, user="logdb", password=ADMIN_PW, database="logdb",
            autocommit=True, connect_timeout=10,
        )  # fmt: skip
        with conn.cursor() as cur:
            cur.execute("CREATE USER 'logu'@'%' IDENTIFIED BY 'Create#pw123'")
            cur.execute("SET PASSWORD FOR 'logu'@'%' = 'Reset#pw456'")
            with pytest.raises(pymysql.err.MySQLError):
                cur.execute("CREATE USER 'logv'@'%' IDENTIFIED BY 'Bad#pw000' garbage")
            with pytest.raises(pymysql.err.MySQLError):
                cur.execute("SELECT PASSWORD('Bad#pw000') FROM mysql.user")
        with pytest.raises(pymysql.err.OperationalError) as refused:
            pymysql.connect(
                host="127.0.0.1", port=port, user="logu", password="Guess#pw789",
                connect_timeout=10,
            )  # fmt: skip
        assert refused.value.args[0] == 1045
        pymysql.connect(
            host="127.0.0.1", port=port, user="logu", password="Reset#pw456", connect_timeout=10
        ).close()
        conn.close()
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert out == ""  # everything went to the file
    text = log_file.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    for line in lines:
        assert {"ts", "level", "logger", "message"} <= set(line), line
    messages = [str(line["message"]) for line in lines]
    assert any(m.startswith("shardgate listening on 127.0.0.1:") for m in messages)
    logins = [line for line in lines if str(line["message"]).startswith("login ok")]
    assert len(logins) == 2
    for login in logins:
        assert login["client"] == "127.0.0.1" and isinstance(login["conn_id"], int)
        assert login["logger"] == "shardgate.audit" and str(login["account"]).endswith("@'%'")
    assert len({login["conn_id"] for login in logins}) == 2
    changes = [line for line in lines if line.get("event") == "account_change"]
    assert [str(c["message"]).split(": ", 1)[1][:22] for c in changes] == [
        "CREATE USER 'logu'@'%'",
        "SET PASSWORD FOR 'logu",
    ]
    assert all(c["logger"] == "shardgate.audit" and c["conn_id"] for c in changes)
    for secret in SECRETS:
        assert secret not in text
