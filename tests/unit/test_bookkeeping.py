"""auth.bookkeeping.LoginBookkeeping: login records reach the catalog in order even when it is
busy (a SQLite file held by another connection's ``BEGIN EXCLUSIVE``) or briefly unreachable
(a MySQL catalog whose server is killed and restarted), without holding the caller."""

from __future__ import annotations

import functools
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import auth.catalog as catalog_module
from auth.bookkeeping import LoginBookkeeping
from auth.catalog import Catalog
from auth.model import Account
from auth.passwords import hash_password
from proxy.dev.localshard import LocalMariaDB, free_port
from tests.conftest import connect_admin

URL = "sqlite:///catalog.db"
LOCK_SECONDS = 300.0


@pytest.fixture(autouse=True)
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        catalog_module, "hash_password", functools.partial(hash_password, iterations=1)
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog.open(URL, tmp_path) as opened:
        opened.create_database("easydb", "s0", "easydb", "sg_easydb", "Admin#pw1", "Ro#pw12")
        yield opened


def _admin(catalog: Catalog) -> Account:
    catalog.refresh()
    account = catalog.snapshot().find_account("easydb", "%")
    assert account is not None
    return account


def _stored(url: str, base: Path) -> Account:
    """The account as stored now (a fresh full load: later failures of a count move no
    version, so a running catalog's snapshot shows the count only when it left zero)."""
    with Catalog.open(url, base) as fresh:
        return _admin(fresh)


@pytest.fixture
def held(tmp_path: Path, catalog: Catalog) -> Iterator[sqlite3.Connection]:
    """Another connection holding the catalog file's write lock (as a long CLI write or a
    backup would), released by COMMIT in the test or at the end."""
    other = sqlite3.connect(tmp_path / "catalog.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("COMMIT")
        other.close()


def test_records_are_written_at_once_when_the_catalog_is_free(catalog: Catalog) -> None:
    queue = LoginBookkeeping(catalog)
    account = _admin(catalog)
    try:
        assert queue.record_login_failure(account.id, 3, LOCK_SECONDS, "10.0.0.1") is None
        assert _admin(catalog).failed_logins == 1
        assert queue.record_login_failure(account.id, 3, LOCK_SECONDS, "10.0.0.1") is None
        lock = queue.record_login_failure(account.id, 3, LOCK_SECONDS, "10.0.0.1")
        assert lock is not None and lock.lock_seconds == LOCK_SECONDS  # known to the caller
        assert _admin(catalog).locked_at(time.time())
        # While locked, a right password is told the lock (the catalog's answer, unchanged).
        assert queue.login_succeeded(account.id, LOCK_SECONDS) == lock
        assert queue.pending == 0
        # Counting off: nothing is queued at all.
        assert queue.record_login_failure(account.id, 0, LOCK_SECONDS, "10.0.0.1") is None
        assert queue.pending == 0
    finally:
        queue.close()


def test_a_locked_sqlite_catalog_delays_records_but_loses_none(
    tmp_path: Path,
    catalog: Catalog,
    held: sqlite3.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="shardgate.catalog")
    queue = LoginBookkeeping(catalog, wait=0.2)
    account = _admin(catalog)
    try:
        started = time.monotonic()
        for _ in range(2):
            assert queue.record_login_failure(account.id, 5, LOCK_SECONDS, "10.0.0.1") is None
        assert queue.login_succeeded(account.id, LOCK_SECONDS) is None
        for _ in range(4):
            assert queue.record_login_failure(account.id, 5, LOCK_SECONDS, "10.0.0.2") is None
        # Seven records, none of which held its caller for longer than the wait.
        assert time.monotonic() - started < 7 * 0.2 + 1.0
        assert queue.pending == 7
        time.sleep(0.5)  # the worker keeps trying; the file stays locked
        assert queue.pending == 7
        assert catalog.snapshot().find_account("easydb", "%") == account  # nothing written
        held.execute("COMMIT")
        assert queue.flush(10)
        # In order: two failures, a reset, then four failures (not six, not a lock).
        after = _stored(URL, tmp_path)
        assert (after.failed_logins, after.locked_until) == (4, None)
        # The fifth locks, and the caller learns it at once again.
        lock = queue.record_login_failure(account.id, 5, LOCK_SECONDS, "10.0.0.2")
        assert lock is not None
    finally:
        queue.close()
    messages = [record.getMessage() for record in caplog.records]
    assert any("login records queued, retrying in order" in m for m in messages)
    assert any("queued login records written" in m for m in messages)


def test_a_queued_failure_counts_as_of_when_it_happened(
    catalog: Catalog, held: sqlite3.Connection
) -> None:
    queue = LoginBookkeeping(catalog, wait=0.05)
    account = _admin(catalog)
    try:
        happened = time.time()
        assert queue.record_login_failure(account.id, 1, LOCK_SECONDS, "10.0.0.1") is None
        time.sleep(1.0)
        held.execute("COMMIT")
        assert queue.flush(10)
        locked_until = _admin(catalog).locked_until
        assert locked_until is not None
        assert happened <= locked_until - LOCK_SECONDS < happened + 0.5  # not the write time
        audit = catalog.audit()
        assert audit[-1].action == "LOCK ACCOUNT 'easydb'@'%'"  # the lock's audit row too
    finally:
        queue.close()


def test_session_revocations_queue_like_logins(catalog: Catalog, held: sqlite3.Connection) -> None:
    queue = LoginBookkeeping(catalog, wait=0.05)
    try:
        queue.revoke_session("f" * 64, time.time() + 60)
        assert queue.pending == 1
        assert not catalog.session_revoked("f" * 64)  # reads work while the file is locked
        held.execute("COMMIT")
        assert queue.flush(10)
        assert catalog.session_revoked("f" * 64)
    finally:
        queue.close()


def test_the_queue_is_bounded(tmp_path: Path, catalog: Catalog, held: sqlite3.Connection) -> None:
    queue = LoginBookkeeping(catalog, wait=0.0, max_pending=3)
    account = _admin(catalog)
    try:
        for _ in range(5):
            queue.record_login_failure(account.id, 10, LOCK_SECONDS, "10.0.0.1")
        assert (queue.pending, queue.dropped) == (3, 2)
        held.execute("COMMIT")
        assert queue.flush(10)
        assert _stored(URL, tmp_path).failed_logins == 3
    finally:
        queue.close()


def test_close_gives_up_on_a_catalog_that_stays_locked(
    catalog: Catalog, held: sqlite3.Connection
) -> None:
    queue = LoginBookkeeping(catalog, wait=0.0)
    account = _admin(catalog)
    queue.record_login_failure(account.id, 10, LOCK_SECONDS, "10.0.0.1")
    started = time.monotonic()
    assert queue.close(timeout=0.5) == 1
    assert time.monotonic() - started < 3
    # Closed: later records are refused (and logged), not queued.
    assert queue.record_login_failure(account.id, 10, LOCK_SECONDS, "10.0.0.1") is None
    assert queue.pending == 0


def test_a_mysql_catalog_killed_and_restarted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = LocalMariaDB(tmp_path / "mariadb", port=free_port())
    endpoint = server.start()
    try:
        password = secrets.token_urlsafe(18)
        monkeypatch.setenv("SG_TEST_BOOKKEEPING_PW", password)
        conn = connect_admin(endpoint)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE sgcat_bk")
            cur.execute("CREATE USER 'sgbk'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            cur.execute("GRANT ALL PRIVILEGES ON sgcat_bk.* TO 'sgbk'@'127.0.0.1'")
        conn.close()
        url = (
            f"mysql://sgbk@{endpoint.host}:{endpoint.port}/sgcat_bk"
            "?password_env=SG_TEST_BOOKKEEPING_PW"
        )
        Catalog.migrate(url, tmp_path)
        with Catalog.open(url, tmp_path) as catalog:
            catalog.create_database("easydb", "s0", "easydb", "sg_easydb", "Admin#pw1", "")
            account = _admin(catalog)
            queue = LoginBookkeeping(catalog, wait=0.2, max_backoff=0.5)
            try:
                assert queue.record_login_failure(account.id, 5, LOCK_SECONDS, "10.0.0.1") is None
                assert queue.pending == 0
                server.kill()
                started = time.monotonic()
                for _ in range(3):
                    assert (
                        queue.record_login_failure(account.id, 5, LOCK_SECONDS, "10.0.0.1") is None
                    )
                revoked = "e" * 64
                queue.revoke_session(revoked, time.time() + 60)
                assert time.monotonic() - started < 4 * 0.2 + 1.0
                assert queue.pending == 4
                server.start()
                assert queue.flush(30)
                assert _stored(url, tmp_path).failed_logins == 4
                assert catalog.session_revoked(revoked)
            finally:
                queue.close()
    finally:
        server.stop()
        os.environ.pop("SG_TEST_BOOKKEEPING_PW", None)
