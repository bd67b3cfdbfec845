"""The relay's compiled modules (setup.py's COMPILED_MODULES, Cython) and their pure-Python
reference (``SHARDGATE_PURE_PYTHON=1``) behave alike, through real clients and real MariaDB.

Each mode runs in its own process: ``shardgate serve`` for one scenario of point selects, text
and prepared (the fast path), errors, NULLs, a large row, writes and a refusal, whose answers
must be the same both ways; and the fast path's e2e tests (tests/e2e/test_digest_fastpath.py)
under pytest. Where the extensions are not built, both modes run the .py files and still agree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import mysql.connector
import pytest

from proxy.dev.localshard import ShardEndpoint, free_port
from tests.e2e.conftest import write_config
from tests.e2e.served import create_database, serve, stop

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PW = "Modes#admin1"
RO_PW = "Modes#ro1"
MODES = {"compiled": "0", "pure": "1"}


def built_modules() -> list[str]:
    """The modules compiled here (proxy/compiled.txt, setup.py)."""
    manifest = ROOT / "proxy" / "compiled.txt"
    text = manifest.read_text() if manifest.exists() else ""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def cscan_built() -> bool:
    """The Cython twin of the response scanner is built here."""
    return any((ROOT / "proxy" / "wire").glob("_cscan.*.so"))


def mode_env(mode: str) -> dict[str, str]:
    return {**os.environ, "SHARDGATE_PURE_PYTHON": MODES[mode]}


def answer(cur: Any, sql: str, params: tuple[object, ...] | None = None) -> object:
    """What the client sees: the rows and column names, or the error's number and message."""
    try:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else None
        names = [d[0] for d in cur.description] if cur.description else None
        return ("ok", names, rows, cur.rowcount)
    except mysql.connector.Error as exc:
        return ("error", exc.errno, exc.msg)


def scenario(port: int) -> list[object]:
    """Point selects (text and prepared, hit and miss, repeated so the fast path serves
    them), errors, NULLs, a 200 KB row, writes and a refused statement; every answer."""
    seen: list[object] = []
    conn = mysql.connector.connect(
        host="127.0.0.1", port=port, user="modesdb", password=ADMIN_PW, database="modesdb",
        use_pure=True, autocommit=True,
    )  # fmt: skip
    try:
        text = conn.cursor()
        seen.append(answer(text, "CREATE TABLE t (id INT PRIMARY KEY, v MEDIUMTEXT)"))
        seen.append(
            answer(text, "INSERT INTO t VALUES (1, 'one'), (2, NULL), (3, REPEAT('x', 200000))")
        )
        for _ in range(3):
            for key in (1, 2, 3, 4):
                seen.append(answer(text, f"SELECT id, v FROM t WHERE id = {key}"))
            seen.append(answer(text, "SELECT nope FROM t WHERE id = 1"))
            seen.append(answer(text, "SELECT id FROM t ORDER BY id"))
        seen.append(answer(text, "UPDATE t SET v = 'uno' WHERE id = 1"))
        seen.append(answer(text, "SELECT * FROM mysql.user"))
        prepared = conn.cursor(prepared=True)
        for _ in range(3):
            for key in (1, 2, 3, 4):
                seen.append(answer(prepared, "SELECT id, v FROM t WHERE id = %s", (key,)))
            seen.append(answer(prepared, "SELECT id FROM t WHERE id > %s", (1,)))
        seen.append(answer(prepared, "INSERT INTO t VALUES (%s, %s)", (1, "dup")))
        seen.append(answer(text, "DROP TABLE t"))
    finally:
        conn.close()
    return seen


def test_a_relay_scenario_answers_alike_compiled_and_pure(
    shards: list[ShardEndpoint], tmp_path: Path
) -> None:
    port = free_port()
    config = tmp_path / "shardgate.toml"
    write_config(config, shards, port)
    create_database(config, "modesdb", "s0", ADMIN_PW, RO_PW)
    answers: dict[str, list[object]] = {}
    for mode in MODES:
        proc = serve(config, port, env=mode_env(mode))
        try:
            answers[mode] = scenario(port)
        finally:
            out = stop(proc)
        assert proc.returncode == 0, out
        hot_path = next(line for line in out.splitlines() if "hot path:" in line)
        if mode == "pure":
            assert "pure Python (SHARDGATE_PURE_PYTHON is set" in hot_path, hot_path
        else:
            twins = "compiled (" if cscan_built() else "pure Python ("
            assert f"hot path: {twins}" in hot_path, hot_path
            for name in built_modules():
                assert name in hot_path.split("modules compiled: ")[1], hot_path
            assert "as Python:" not in hot_path, hot_path
    assert answers["compiled"] == answers["pure"]
    assert ("error", 1054, "Unknown column 'nope' in 'SELECT'") in answers["pure"]
    assert any(a[0] == "ok" and a[2] == [(3, "x" * 200000)] for a in answers["pure"])  # type: ignore[index]


@pytest.mark.parametrize("mode", list(MODES))
def test_the_fast_path_tests_pass_in_each_mode(mode: str) -> None:
    """tests/e2e/test_digest_fastpath.py in a pytest of its own, with the mode's modules
    (checked first in a process of the mode: which of them are the extensions)."""
    if mode == "pure":
        check = (
            "import proxy.session.session as s, proxy.wire.stream as w, proxy.wire.scanner as p\n"
            "import proxy.session.fast as f\n"
            "assert s.__file__.endswith('.py') and w.__file__.endswith('.py')\n"
            "assert f.__file__.endswith('.py')\n"
            "assert w.ResponseScanner is p.ResponseScanner\n"
        )
    else:
        as_python = "proxy.session.session" not in built_modules()
        fast_as_python = "proxy.session.fast" not in built_modules()
        check = (
            "import proxy.session.session as s, proxy.wire.stream as w, proxy.session.fast as f\n"
            f"assert s.__file__.endswith('.py') == {as_python}\n"
            f"assert f.__file__.endswith('.py') == {fast_as_python}\n"
            f"assert (w.COMPILED_MISSING is None) == {cscan_built()}\n"
        )
    loaded = subprocess.run(
        [sys.executable, "-c", check], cwd=ROOT, env=mode_env(mode),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
         "tests/e2e/test_digest_fastpath.py"],
        cwd=ROOT, env=mode_env(mode), capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert " passed" in result.stdout
