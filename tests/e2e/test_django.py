"""Django's own test runner through the proxy: ``manage.py test --keepdb`` of a small app
(tests/djangoapp) with Django's MySQL backend on PyMySQL, as a logical database's
administrator, with the test database being the logical database itself.

Django creates the test database first; tenants cannot create databases, and the proxy answers
``CREATE DATABASE`` of the session's own database with MySQL's 1007, which ``--keepdb`` takes
as "keep the one there is". Then come the migrations, transactions and savepoints
(``TestCase``), and the flush of a ``TransactionTestCase``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ProxyEnv
from tests.e2e.tools import TOOL_TIMEOUT, new_database

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "tests" / "djangoapp" / "manage.py"
ADMIN_PASSWORD = "Django#adm1"


def manage(proxy: ProxyEnv, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SHARDGATE_DJANGO_HOST": proxy.host,
        "SHARDGATE_DJANGO_PORT": str(proxy.port),
        "SHARDGATE_DJANGO_USER": database,
        "SHARDGATE_DJANGO_PASSWORD": ADMIN_PASSWORD,
        "SHARDGATE_DJANGO_DATABASE": database,
    }
    return subprocess.run(
        [sys.executable, str(MANAGE), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT,
        check=False,
    )


def test_manage_py_test_keepdb_passes_through_the_proxy(proxy: ProxyEnv) -> None:
    database = new_database(proxy, "django", ADMIN_PASSWORD)
    for run in ("first", "again"):  # the second run finds the tables and migrations there
        done = manage(proxy, database, "test", "tests.djangoapp.shelf", "--keepdb", "--noinput")
        assert done.returncode == 0, (run, done.stdout, done.stderr)
        assert "Ran 3 tests" in done.stderr and "\nOK\n" in done.stderr, (run, done.stderr)
        assert "Using existing test database for alias 'default'" in done.stderr
        assert "Preserving test database for alias 'default'" in done.stderr
    with proxy.connect(user=database, password=ADMIN_PASSWORD, database=database) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT app, name FROM django_migrations")
            assert cur.fetchall() == (("shelf", "0001_initial"),)
            cur.execute("SELECT COUNT(*) FROM shelf_book")  # TestCase rolled back, flush emptied
            assert cur.fetchall() == ((0,),)
