"""The store a catalog URL names, opened: the one place that picks a concrete store.

``auth.catalog`` opens its store here and works on the ``auth.store.CatalogStore`` interface
alone; the URL grammar is ``auth.urls``.
"""

from __future__ import annotations

from pathlib import Path

from auth.sqlite_store import SqliteCatalogStore
from auth.store import CatalogStore, StoreError
from auth.urls import is_mysql_url, sqlite_path


def open_store(url: str, base_dir: Path, timeout: float) -> CatalogStore:
    """The store ``url`` names (a relative SQLite path is under ``base_dir``), connected but
    not checked or migrated; each of its requests waits at most ``timeout`` seconds (MySQL:
    connecting, each read and write, the server's lock waits; SQLite: another writer's lock).
    StoreError, its text saying which catalog, if it cannot be."""
    if is_mysql_url(url):
        # PyMySQL is imported only by a process whose catalog is on MySQL.
        from auth.mysql_store import MysqlCatalogStore

        try:
            return MysqlCatalogStore.open(url, timeout=timeout)
        except StoreError as error:
            raise StoreError(f"cannot open the catalog: {error}") from error
    path = sqlite_path(url, base_dir)
    try:
        return SqliteCatalogStore.open(path, busy_timeout=timeout)
    except StoreError as error:
        raise StoreError(f"cannot open the catalog {path}: {error}") from error
