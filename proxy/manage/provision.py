"""Creating and dropping a logical database: the physical databases on the shards, the catalog
entry with the protected built-in accounts, and the built-ins' mirrored accounts on the shards.

An unsharded database (``--shard s0``) is one physical database ``NAME``. A sharded one
(``--shards s0,s1 [--db-partitions D]``) is D physical databases ``NAME_0000`` ... laid
contiguously over its shards (``auth.model.partition_layout``, ``sharding.md``); each gets the
same protections (the mirrors of every account holding anything in the database).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from auth.catalog import RO_SUFFIX, Catalog, CatalogError
from auth.model import Database, PhysicalDatabase, partition_layout
from proxy.backend.connection import (
    BackendConnection,
    BackendError,
    BackendQueryError,
    backend_user,
    quote_name,
    quote_string,
    shard_admin,
    usage_target,
)
from proxy.backend.mirror import MirrorError, MirrorManager, mirror_suffix
from proxy.ops.config import Config, ShardConfig

# After dropping a database with sessions open, wait this long (a few catalog polls) before
# ending their shard connections: each session's node has seen the change by then, so the
# session's next statement ends it with "it was dropped" rather than a lost connection.
NODES_NOTICE_SECONDS = 0.6
# DROP DATABASE waits at most this long for a metadata lock on one of its tables.
DROP_LOCK_WAIT = 10

# Logical database names: they become physical database names on the shard.
_DATABASE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
# Physical databases per shard a sharded database gets unless told (sharding.md).
DEFAULT_PARTITIONS_PER_SHARD = 4
# The most physical databases one sharded database may have.
MAX_PARTITIONS = 1024


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


async def _prepare_shard(
    admin: BackendConnection, config: Config, shard: ShardConfig, physical: Sequence[str]
) -> None:
    """On one shard: check it compares names as shardgate does, create the physical
    databases (if missing) and the shard's usage account."""
    case = await admin.query("SELECT @@lower_case_table_names")
    if case.rows and case.rows[0][0] == b"0":
        raise ProvisionError(
            f"shard '{shard.name}' runs with lower_case_table_names=0: shardgate compares "
            "table names case-insensitively, so every shard needs lower_case_table_names=1"
        )
    for name in physical:
        await admin.query(f"CREATE DATABASE IF NOT EXISTS `{name}`")
    # The shard's usage account: no privileges at all (see backend.usage_target).
    usage = usage_target(shard, config.catalog_secret())
    usage_password = quote_string(usage.password)
    await admin.query(
        f"CREATE USER IF NOT EXISTS '{usage.user}'@'%' IDENTIFIED BY {usage_password}"
    )
    await admin.query(f"ALTER USER '{usage.user}'@'%' IDENTIFIED BY {usage_password}")


async def provision_physical(config: Config, partitions: Sequence[PhysicalDatabase]) -> None:
    """Create the physical databases on their shards (and each shard's usage account), one
    shard after another. Idempotent: after a failure, running it again finishes the job.

    No account with privileges on the databases is made here: sessions reach them only
    through mirrored accounts (``proxy.backend.mirror``), created once the catalog has the
    accounts."""
    by_shard: dict[str, list[str]] = {}
    for physical in partitions:
        by_shard.setdefault(physical.shard, []).append(physical.name)
    for shard_name, names in by_shard.items():
        shard = config.shard(shard_name)
        admin = await shard_admin(shard)
        try:
            await _prepare_shard(admin, config, shard, names)
        finally:
            await admin.quit()


async def provision_database(config: Config, name: str, shard_name: str) -> str:
    """Create an unsharded database's physical database (``NAME``) and the shard's usage
    account; returns the physical name."""
    validate_database_name(name)
    await provision_physical(config, [PhysicalDatabase(0, name, config.shard(shard_name).name)])
    return name


async def create_database(
    config: Config,
    catalog: Catalog,
    name: str,
    shard_name: str,
    admin_password: str,
    ro_password: str,
) -> Database:
    """Provision an unsharded database, register it with its built-in accounts, and create
    their mirrors (a failure there is logged: the first session of each creates its own)."""
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


def sharded_layout(
    config: Config, name: str, shards: Sequence[str], count: int | None = None
) -> tuple[PhysicalDatabase, ...]:
    """The physical databases of sharded database ``name`` over ``shards`` (configured ones):
    ``count`` (default: 4 per shard), a multiple of the number of shards."""
    validate_database_name(name)
    for shard in shards:
        config.shard(shard)
    wanted = DEFAULT_PARTITIONS_PER_SHARD * len(shards) if count is None else count
    if wanted > MAX_PARTITIONS:
        raise ProvisionError(f"at most {MAX_PARTITIONS} physical databases per database")
    try:
        return partition_layout(name, shards, wanted)
    except ValueError as error:
        raise ProvisionError(str(error)) from None


async def create_sharded_database(
    config: Config,
    catalog: Catalog,
    name: str,
    shards: Sequence[str],
    count: int | None,
    admin_password: str,
    ro_password: str,
) -> Database:
    """Provision a sharded database's physical databases on their shards, register it (its
    topology with it) and its built-in accounts, and create their mirrors on every physical
    database."""
    partitions = sharded_layout(config, name, shards, count)
    catalog.refresh()
    if catalog.snapshot().database(name) is not None:
        raise ProvisionError(f"database {name!r} already exists")
    await provision_physical(config, partitions)
    first = partitions[0]
    database = catalog.create_database(
        name,
        shard=first.shard,
        physical_name=first.name,
        backend_user=backend_user(name),
        admin_password=admin_password,
        ro_password=ro_password,
        partitions=partitions,
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


@dataclass(frozen=True)
class DroppedDatabase:
    """What ``drop_database`` did."""

    name: str
    shard: str
    physical_name: str
    shard_accounts: tuple[str, ...]  # the mirrors (and any sg_<db>) dropped on the shard
    sessions: int  # sessions the nodes reported open in it (ended: --force)


def describe_sessions(per_node: Mapping[str, int]) -> str:
    """``3 (node-a:3307 2, node-b:3307 1)``, or ``0``."""
    total = sum(per_node.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{n} {c}" for n, c in sorted(per_node.items())) + ")"


def open_sessions(catalog: Catalog, database: Database) -> dict[str, int]:
    """The sessions the nodes report open in ``database``, per node."""
    return catalog.open_sessions().get(database.key, {})


async def drop_database(
    config: Config, catalog: Catalog, name: str, *, force: bool
) -> DroppedDatabase:
    """Drop a logical database everywhere: from the catalog (its built-in accounts, the
    accounts it owns, every grant on it; every node sees it within a second and ends the
    sessions in it at their next statement), then on its shard its mirrored accounts and any
    leftover ``sg_<db>`` (their connections ended first), then the physical database.

    Refused (ProvisionError) while the nodes report sessions open in it, unless ``force``.
    The shard must be reachable before anything changes; if it fails after the catalog
    change, the error says what is left on the shard."""
    await asyncio.to_thread(catalog.refresh)
    database = catalog.snapshot().database(name)
    if database is None:
        raise ProvisionError(f"unknown database {name!r}")
    if database.sharded:
        raise ProvisionError(
            f"database {database.name!r} is sharded: dropping a sharded database is not "
            "supported yet (drop its physical databases on their shards by hand)"
        )
    sessions = await asyncio.to_thread(open_sessions, catalog, database)
    if sessions and not force:
        raise ProvisionError(
            f"database {database.name!r} has {describe_sessions(sessions)} session(s) open: "
            "end them first, or use --force to end them"
        )
    shard = config.shard(database.shard)
    admin = await shard_admin(shard, config.server.backend_connect_timeout)
    try:
        before = catalog.snapshot()
        await asyncio.to_thread(catalog.drop_database, database.name)
        try:
            if sessions:
                await asyncio.sleep(NODES_NOTICE_SECONDS)
            mirrors = MirrorManager(lambda: config, catalog)
            dropped = await mirrors.retire_database(database)
            # The accounts it owned lose their mirrors on other databases too.
            await mirrors.catalog_changed(before)
            await admin.query(f"SET SESSION lock_wait_timeout = {DROP_LOCK_WAIT}")
            await admin.query(f"DROP DATABASE IF EXISTS {quote_name(database.physical_name)}")
        except (BackendError, BackendQueryError, MirrorError, CatalogError) as exc:
            raise ProvisionError(
                f"database {database.name!r} is dropped from the catalog, but cleaning shard "
                f"{database.shard!r} failed ({exc}): drop its physical database "
                f"`{database.physical_name}` and its accounts named sgm_*"
                f"{mirror_suffix(config.catalog_secret(), database.physical_name)} there by hand"
            ) from None
    finally:
        await admin.quit()
    return DroppedDatabase(
        database.name,
        database.shard,
        database.physical_name,
        tuple(dropped),
        sum(sessions.values()),
    )


def topology_summary(database: Database) -> str:
    """Where a database lives, for listings (``database list``'s shard column): ``s0`` for an
    unsharded database, ``s0 (easydb_0000-easydb_0003), s1 (easydb_0004-easydb_0007)`` for a
    sharded one (its contiguous ranges of physical databases per shard)."""
    if not database.sharded:
        return database.shard
    ranges: dict[str, list[str]] = {}
    for physical in database.physical_databases:
        ranges.setdefault(physical.shard, []).append(physical.name)
    return ", ".join(
        f"{shard} ({names[0]})" if len(names) == 1 else f"{shard} ({names[0]}-{names[-1]})"
        for shard, names in ranges.items()
    )
