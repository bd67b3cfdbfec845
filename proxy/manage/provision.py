"""Creating a logical database: the physical database on the shard, the catalog entry with the
protected built-in accounts, and the built-ins' mirrored accounts on the shard."""

from __future__ import annotations

import re

from auth.catalog import RO_SUFFIX, Catalog
from auth.model import Database
from proxy.backend.connection import backend_user, quote_string, shard_admin, usage_target
from proxy.backend.mirror import MirrorManager
from proxy.ops.config import Config

# Logical database names: they become physical database names on the shard.
_DATABASE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")


class ProvisionError(Exception):
    """The database could not be created; the message says why (never a password)."""


def validate_database_name(name: str) -> None:
    if not _DATABASE_NAME.match(name):
        raise ProvisionError(
            f"invalid database name {name!r}: 1-48 characters, a letter first, then letters, "
            "digits or _"
        )
    if name.lower() in {"information_schema", "mysql", "performance_schema", "sys", "test"}:
        raise ProvisionError(f"database name {name!r} is reserved")


async def provision_database(config: Config, name: str, shard_name: str) -> str:
    """Create the physical database and the shard's usage account; returns the physical name.

    No account with privileges on the database is made here: sessions reach it only through
    mirrored accounts (``proxy.backend.mirror``), created once the catalog has the accounts."""
    validate_database_name(name)
    shard = config.shard(shard_name)
    physical = name
    admin = await shard_admin(shard)
    try:
        case = await admin.query("SELECT @@lower_case_table_names")
        if case.rows and case.rows[0][0] == b"0":
            raise ProvisionError(
                f"shard '{shard.name}' runs with lower_case_table_names=0: shardgate compares "
                "table names case-insensitively, so every shard needs lower_case_table_names=1"
            )
        await admin.query(f"CREATE DATABASE IF NOT EXISTS `{physical}`")
        # The shard's usage account: no privileges at all (see backend.usage_target).
        usage = usage_target(shard, config.catalog_secret())
        usage_password = quote_string(usage.password)
        await admin.query(
            f"CREATE USER IF NOT EXISTS '{usage.user}'@'%' IDENTIFIED BY {usage_password}"
        )
        await admin.query(f"ALTER USER '{usage.user}'@'%' IDENTIFIED BY {usage_password}")
    finally:
        await admin.quit()
    return physical


async def create_database(
    config: Config,
    catalog: Catalog,
    name: str,
    shard_name: str,
    admin_password: str,
    ro_password: str,
) -> Database:
    """Provision the database, register it with its built-in accounts, and create their
    mirrors (a failure there is logged: the first session of each creates its own)."""
    catalog.refresh()
    if catalog.snapshot().database(name) is not None:
        raise ProvisionError(f"database {name!r} already exists")
    physical = await provision_database(config, name, shard_name)
    database = catalog.create_database(
        name,
        shard=shard_name,
        physical_name=physical,
        backend_user=backend_user(name),
        admin_password=admin_password,
        ro_password=ro_password,
    )
    await MirrorManager(lambda: config, catalog).sync(builtin_ids(catalog, database))
    return database


def builtin_ids(catalog: Catalog, database: Database) -> list[int]:
    """The ids of the database's built-in accounts (``<db>`` and ``<db>_RO``)."""
    snapshot = catalog.snapshot()
    found = (
        snapshot.find_account(database.name, "%"),
        snapshot.find_account(database.name + RO_SUFFIX, "%"),
    )
    return [account.id for account in found if account is not None]
