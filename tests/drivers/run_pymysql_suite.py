"""Run PyMySQL's own test suite, unmodified, against shardgate (not part of CI).

Usage::

    git clone <PyMySQL's repository> /tmp/pymysql && git -C /tmp/pymysql checkout v1.1.2
    .venv/bin/python -m tests.drivers.run_pymysql_suite [--sharded] /tmp/pymysql [pytest args...]

It starts two throwaway MariaDB shards and a proxy (``tests.drivers.stack``) with the databases
``test1`` and ``test2`` (their administrators ``test1`` / ``test2``), writes the suite's
``pymysql/tests/databases.json`` pointing at the proxy, runs ``pytest pymysql/tests`` in the
checkout (its own ``pymysql`` package first on the path), prints pytest's summary and, per test
that did not pass, whether it is one of the exclusions by design (``BY_DESIGN``, with the
reason) or a real difference from MariaDB. Exit status: 0 when every failure is by design.

``--sharded``: ``test1`` and ``test2`` are sharded databases over both shards (the suite's
tables, created without DBPARTITION, are single tables on physical database 0, served through
the sharded executor), and ``BY_DESIGN_SHARDED`` adds what a sharded database refuses. Last
runs (v1.1.2): plain 152 passed, 12 failed (all by design), 13 skipped, 1 xfailed; sharded
151 passed, 13 failed (all by design: the 12 and test_ok_and_next), 13 skipped, 1 xfailed.
The full output is kept in ``$TMPDIR/pymysql-suite.log``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.drivers.stack import PASSWORD, running_stack

# Tests that need what the proxy refuses by design, with the reason (README, "Driver suites").
BY_DESIGN: dict[str, str] = {
    "test_load_local.py::": "LOAD DATA LOCAL INFILE is refused (the proxy never relays files)",
    "test_issues.py::TestOldIssues::test_issue_6": "reads the `mysql` schema (refused: 1044)",
    "test_connection.py::TestAuthentication::test_plugin": (
        "reads `mysql.user` (the `mysql` schema is refused: 1044)"
    ),
    "test_connection.py::TestConnection::test_select_db": (
        "select_db of the other database: its account `test1` may use `test1` only (1044)"
    ),
    "test_issues.py::TestNewIssues::test_issue_36": (
        "connection 0 KILLs connection 1, a session of another database's account: no account "
        "is a super user, and another tenant's session is answered as unknown (1094)"
    ),
    "test_issues.py::TestGitHubIssues::test_issue_95": "stored procedures are refused",
    "test_nextset.py::TestNextset::test_nextset_error": (
        "a multi-statement packet with a statement the proxy cannot classify is refused whole"
    ),
    "test_MySQLdb_capabilities.py::test_MySQLdb::test_stored_procedures": (
        "stored procedures are refused"
    ),
    "test_MySQLdb_dbapi20.py::test_MySQLdb::test_nextset": "stored procedures are refused",
}


# With --sharded, also these: what a sharded database refuses by design (sharding.md).
BY_DESIGN_SHARDED: dict[str, str] = {
    "test_nextset.py::TestNextset::test_ok_and_next": (
        "COMMIT in a multi-statement packet: BEGIN, COMMIT, ROLLBACK and SET TRANSACTION in a "
        "packet are refused on a sharded database (1235; README, 'Sharded databases')"
    ),
}


def by_design(test_id: str, sharded: bool = False) -> str | None:
    for prefix, reason in (BY_DESIGN | BY_DESIGN_SHARDED if sharded else BY_DESIGN).items():
        if prefix in test_id:
            return reason
    return None


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    sharded = "--sharded" in sys.argv[1:2]
    args = sys.argv[2:] if sharded else sys.argv[1:]
    if not args:
        print(__doc__)
        return 2
    checkout = Path(args[0]).resolve()
    extra_args = args[1:]
    tests_dir = checkout / "pymysql" / "tests"
    if not tests_dir.is_dir():
        print(f"{tests_dir} not found: check out PyMySQL v1.1.2 there first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="pymysql-suite-") as base:
        with running_stack(Path(base), extra="drain_timeout = 1.0", sharded=sharded) as stack:
            common = {"host": stack.host, "port": stack.port, "password": PASSWORD}
            databases = [
                {**common, "user": "test1", "database": "test1", "use_unicode": True},
                {**common, "user": "test2", "database": "test2"},
            ]
            (tests_dir / "databases.json").write_text(json.dumps(databases, indent=1))
            env = {**os.environ, "PYTHONPATH": str(checkout)}
            command = [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-o",
                "addopts=",
                "-rfE",
                "--timeout=120",
                "--continue-on-collection-errors",
                "pymysql/tests",
                *extra_args,
            ]
            run = subprocess.run(
                command, cwd=checkout, env=env, capture_output=True, text=True, check=False
            )
    output = run.stdout + run.stderr
    (Path(tempfile.gettempdir()) / "pymysql-suite.log").write_text(output)
    failed = sorted(set(re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M)))
    summary = [line for line in output.splitlines() if re.match(r"=+ .*(passed|failed)", line)]
    print(summary[-1] if summary else output[-3000:])
    real = []
    for test_id in failed:
        reason = by_design(test_id, sharded)
        print(
            f"  {'by design' if reason else 'DIFFERENCE'}: {test_id}"
            + (f" -- {reason}" if reason else "")
        )
        if reason is None:
            real.append(test_id)
    if real:
        print(f"{len(real)} failure(s) not by design; full output follows\n")
        print(output[-20000:])
    return 1 if real else 0


if __name__ == "__main__":
    sys.exit(main())
