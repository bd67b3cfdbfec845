"""Run node-mysql2's own test suite (unit and integration, unmodified) against shardgate (not part
of CI).

Usage::

    git clone <node-mysql2's repository> /tmp/mysql2 && git -C /tmp/mysql2 checkout v3.23.4
    (cd /tmp/mysql2 && npm ci)
    .venv/bin/python -m tests.drivers.run_mysql2_suite [--sharded] /tmp/mysql2 [poku args...]

It starts two throwaway MariaDB shards and a proxy (``tests.drivers.stack``) with the databases
``mysql2test`` (administrator ``mysql2test``; ``test`` is a reserved name) and ``mysql2other``,
points the suite at it the way its CI does (``MYSQL_HOST``, ``MYSQL_PORT``, ``MYSQL_USER``,
``MYSQL_PASSWORD``, ``MYSQL_DATABASE``, ``CI``), and runs
``npx poku`` in the checkout. The suite's "global" tests need ``SET GLOBAL`` and skip
themselves for an account without SUPER, as every proxy account is. Prints poku's summary
and the failed files, each marked by design (``BY_DESIGN``, with the reason) or a difference
from MariaDB. Exit status: 0 when every failure is by design.

``--sharded``: ``mysql2test`` and ``mysql2other`` are sharded databases over both shards (the
suite's tables, created without DBPARTITION, are single tables on physical database 0, served
through the sharded executor), and ``BY_DESIGN_SHARDED`` adds what a sharded database refuses.
Last runs (v3.23.4, 2026-12-05), plain and sharded alike: 210 files passed, 2 failed (both by
design), 2 skipped. (test-select-ssl, which prepares ``SHOW STATUS LIKE 'Ssl_cipher'``,
failed with 1235 before the statements the proxy answers itself could be prepared.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.drivers.stack import PASSWORD, running_stack

# Test files that need what the proxy refuses by design, with the reason.
BY_DESIGN: dict[str, str] = {
    "test-binary-multiple-results": "creates and CALLs a stored procedure (refused)",
    "test-#433": (
        "names that are not ASCII (Cyrillic table and column names) from a KOI8R client are "
        "refused, 1235: the proxy reads statements as UTF-8 (README, 'Drivers')"
    ),
}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


# With --sharded, also these: what a sharded database refuses by design (sharding.md).
BY_DESIGN_SHARDED: dict[str, str] = {}


def by_design(name: str, sharded: bool = False) -> str | None:
    for prefix, reason in (BY_DESIGN | BY_DESIGN_SHARDED if sharded else BY_DESIGN).items():
        if prefix in name:
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
    if not (checkout / "node_modules" / ".bin" / "poku").exists():
        print(f"run `npm ci` in {checkout} first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mysql2-suite-") as base:
        databases = ("mysql2test", "mysql2other")
        with running_stack(Path(base), databases, "drain_timeout = 1.0", sharded) as stack:
            env = {
                **os.environ,
                "CI": "true",
                "MYSQL_HOST": stack.host,
                "MYSQL_PORT": str(stack.port),
                "MYSQL_USER": "mysql2test",
                "MYSQL_PASSWORD": PASSWORD,
                "MYSQL_DATABASE": "mysql2test",
            }
            run = subprocess.run(
                ["npx", "poku", *args[1:]],
                cwd=checkout,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=3600,
            )
    output = _ANSI.sub("", run.stdout + run.stderr)
    (Path(tempfile.gettempdir()) / "mysql2-suite.log").write_text(output)
    failed = sorted(set(re.findall(r"FAIL\s+(\S+\.test\.mts)", output)))
    summary = [line for line in output.splitlines() if re.search(r"PASS \u203a|Files \u203a", line)]
    print("\n".join(summary[-2:]))
    real = []
    for name in failed:
        reason = by_design(name, sharded)
        print(
            f"  {'by design' if reason else 'DIFFERENCE'}: {name}"
            + (f" -- {reason}" if reason else "")
        )
        if reason is None:
            real.append(name)
    print(f"(full output: {Path(tempfile.gettempdir()) / 'mysql2-suite.log'})")
    return 1 if real else 0


if __name__ == "__main__":
    sys.exit(main())
