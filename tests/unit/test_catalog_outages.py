"""A catalog that cannot be used: every request gives up within the catalog's timeout, the
errors say what a client may conclude, and requests queued behind a failing one share its
failure instead of waiting out the same outage again. Real SQLite files and a real MariaDB
catalog, held by another connection."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from auth.catalog import (
    Catalog,
    CatalogError,
    CatalogOutcomeUnknownError,
    CatalogUnavailableError,
)
from tests.conftest import connect_admin

URL = "sqlite:///catalog.db"


def test_the_errors_clients_get() -> None:
    unavailable = CatalogUnavailableError("catalog unavailable: (2003) refused").client_error()
    assert (unavailable.errno, unavailable.sqlstate) == (1105, "HY000")
    assert "nothing was changed" in unavailable.message
    assert "2003" not in unavailable.message  # the operator's detail stays in the log
    unknown = CatalogOutcomeUnknownError("lost after COMMIT").client_error()
    assert (unknown.errno, unknown.sqlstate) == (1180, "HY000")
    assert "may or may not have been applied" in unknown.message


def _timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        call()
    except CatalogError as error:
        return error, time.monotonic() - started
    return None, time.monotonic() - started


def test_a_sqlite_catalog_held_by_another_writer_fails_within_the_timeout(
    tmp_path: Path,
) -> None:
    with Catalog.open(URL, tmp_path, timeout=0.5) as catalog:
        catalog.create_database("easydb", "s0", "easydb", "sg_easydb", "Admin#pw1", "Ro#pw12")
        holder = sqlite3.connect(tmp_path / "catalog.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            error, took = _timed(
                lambda: catalog.create_account("lily", "%", "Lily#pw12", "easydb", "op", "")
            )
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert isinstance(error, CatalogUnavailableError), error
        assert 0.4 < took < 2.0
        assert catalog.snapshot().find_account("lily", "%") is None
        # Released: the same request works.
        catalog.create_account("lily", "%", "Lily#pw12", "easydb", "op", "")


@contextmanager
def _locked(endpoint: Any, database: str, tables: str) -> Iterator[None]:
    """``LOCK TABLES ... WRITE`` held by another client of the catalog server."""
    conn = connect_admin(endpoint, database)
    try:
        with conn.cursor() as cur:
            cur.execute(f"LOCK TABLES {tables}")
        yield
        with conn.cursor() as cur:
            cur.execute("UNLOCK TABLES")
    finally:
        conn.close()


def test_a_locked_mysql_catalog_fails_within_the_timeout_and_changes_nothing(
    mysql_catalog_url: Callable[..., str], catalog_server: Any
) -> None:
    url = mysql_catalog_url()
    database = url.split("/")[-1].split("?")[0]
    with Catalog.open(url, Path("/"), timeout=1.0) as catalog:
        catalog.create_database("easydb", "s0", "easydb", "sg_easydb", "Admin#pw1", "Ro#pw12")
        with _locked(catalog_server.endpoint, database, "accounts WRITE, counters WRITE"):
            error, took = _timed(
                lambda: catalog.create_account("lily", "%", "Lily#pw12", "easydb", "op", "")
            )
            assert isinstance(error, CatalogUnavailableError), error
            assert 0.9 < took < 2.5, took  # not innodb's 50 s, nor a day of lock_wait_timeout
            error, took = _timed(catalog.refresh)
            assert isinstance(error, CatalogUnavailableError) and took < 2.5
        catalog.refresh()
        assert catalog.snapshot().find_account("lily", "%") is None
        catalog.create_account("lily", "%", "Lily#pw12", "easydb", "op", "")
        assert [r.action for r in catalog.audit()][-1] == "CREATE ACCOUNT 'lily'@'%'"


def test_requests_queued_behind_a_failing_one_fail_with_it(
    mysql_catalog_url: Callable[..., str], catalog_server: Any
) -> None:
    url = mysql_catalog_url()
    database = url.split("/")[-1].split("?")[0]
    with Catalog.open(url, Path("/"), timeout=1.0) as catalog:
        results: list[tuple[BaseException | None, float]] = []
        with _locked(catalog_server.endpoint, database, "counters WRITE"):
            started = time.monotonic()
            threads = [
                threading.Thread(target=lambda: results.append(_timed(catalog.refresh)))
                for _ in range(4)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
            took = time.monotonic() - started
        assert len(results) == 4
        assert all(isinstance(error, CatalogUnavailableError) for error, _ in results), results
        # One wait for the lock, shared: four in a row would take four timeouts.
        assert took < 2.0, took
        assert catalog.refresh() is False  # and the next request, after the outage, works
