"""Creating a logical database: the physical database and its dedicated backend account on the
shard, then the catalog entry with the protected built-in accounts."""

from __future__ import annotations

import re

from auth.catalog import Catalog
from auth.model import Database
from proxy.backend.connection import (
    BackendConnection,
    BackendTarget,
    backend_password,
    backend_user,
    quote_string,
    usage_target,
)
from proxy.ops.config import Config, ShardConfig

# Logical database names: they become physical database and account names on the shard.
_DATABASE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")

# The backend account gets what the eight proxy privileges need on its own database, plus
# what ordinary sessions use (temporary tables, LOCK TABLES, views). Nothing global, and no
# routines, triggers or events: they would run with this account's rights.
BACKEND_GRANTS = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, "
    "CREATE TEMPORARY TABLES, LOCK TABLES, CREATE VIEW, SHOW VIEW, REFERENCES"
)


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


async def shard_admin(shard: ShardConfig, timeout: float = 10.0) -> BackendConnection:
    return await BackendConnection.connect(
        BackendTarget(
            shard=shard.name,
            host=shard.host,
            port=shard.port,
            user=shard.user,
            password=shard.password,
            database=None,
        ),
        timeout=timeout,
    )


async def provision_database(config: Config, name: str, shard_name: str) -> tuple[str, str]:
    """Create the physical database and backend account; returns (physical name, user)."""
    validate_database_name(name)
    shard = config.shard(shard_name)
    physical = name
    user = backend_user(name)
    password = backend_password(config.catalog_secret(), shard.name, physical)
    admin = await shard_admin(shard)
    try:
        case = await admin.query("SELECT @@lower_case_table_names")
        if case.rows and case.rows[0][0] == b"0":
            raise ProvisionError(
                f"shard '{shard.name}' runs with lower_case_table_names=0: shardgate compares "
                "table names case-insensitively, so every shard needs lower_case_table_names=1"
            )
        await admin.query(f"CREATE DATABASE IF NOT EXISTS `{physical}`")
        await admin.query(
            f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY {quote_string(password)}"
        )
        # Re-assert the password in case the account survived from an earlier attempt.
        await admin.query(f"ALTER USER '{user}'@'%' IDENTIFIED BY {quote_string(password)}")
        await admin.query(f"GRANT {BACKEND_GRANTS} ON `{physical}`.* TO '{user}'@'%'")
        # The shard's usage account: no privileges at all (see backend.usage_target).
        usage = usage_target(shard, config.catalog_secret())
        usage_password = quote_string(usage.password)
        await admin.query(
            f"CREATE USER IF NOT EXISTS '{usage.user}'@'%' IDENTIFIED BY {usage_password}"
        )
        await admin.query(f"ALTER USER '{usage.user}'@'%' IDENTIFIED BY {usage_password}")
    finally:
        await admin.quit()
    return physical, user


async def create_database(
    config: Config,
    catalog: Catalog,
    name: str,
    shard_name: str,
    admin_password: str,
    ro_password: str,
) -> Database:
    catalog.refresh()
    if catalog.snapshot().database(name) is not None:
        raise ProvisionError(f"database {name!r} already exists")
    physical, user = await provision_database(config, name, shard_name)
    return catalog.create_database(
        name,
        shard=shard_name,
        physical_name=physical,
        backend_user=user,
        admin_password=admin_password,
        ro_password=ro_password,
    )
