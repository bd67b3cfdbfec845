"""Multi-shard (XA) transactions: the identifiers, and the recovery of prepared branches.

A write to several physical databases, and a client's transaction on a sharded database that
wrote to several, runs as one XA transaction (``proxy.session.sharded``):
one branch per physical database, ``XA PREPARE`` on every branch, then the outcome recorded in
the catalog (``Catalog.decide_xa``, decided once), then ``XA COMMIT`` on every branch. A node
that dies between PREPARE and COMMIT leaves prepared branches on the shards; they hold their
locks until someone finishes them. :func:`recover_prepared` does, when a proxy starts: every
prepared branch of a shardgate transaction (``XA RECOVER`` on each shard, as its administrator)
is committed if the catalog says "commit", and otherwise rolled back after recording "abort" --
so the node that prepared it, if still alive, can no longer decide to commit it (its own
``decide_xa`` then returns "abort" and it rolls back), and no transaction is ever committed on
one shard and rolled back on another.
"""

from __future__ import annotations

import asyncio
import logging

from auth.catalog import Catalog, CatalogError
from proxy.backend.connection import (
    BackendConnection,
    BackendError,
    BackendQueryError,
    quote_string,
    shard_admin,
)
from proxy.ops.config import Config

log = logging.getLogger("shardgate.xa")

# Every shardgate XA transaction's global id starts with this.
XID_PREFIX = "shardgate-"


def branch_xid(gtrid: str, partition: int) -> str:
    """The ``'gtrid', 'bqual'`` of one branch (its physical database's index)."""
    return f"{quote_string(gtrid)}, '{partition}'"


async def recover_prepared(config: Config, catalog: Catalog) -> dict[str, str]:
    """Finish every prepared branch of a shardgate XA transaction on the configured shards;
    returns {gtrid: outcome} of those finished. A shard that cannot be reached is logged and
    skipped (its branches wait for the next start)."""
    finished: dict[str, str] = {}
    for shard in config.shards:
        try:
            admin = await shard_admin(shard, timeout=config.server.backend_connect_timeout)
        except BackendError as exc:
            log.warning("XA recovery: shard %s unreachable: %s", shard.name, exc)
            continue
        try:
            await _recover_on(admin, shard.name, catalog, finished)
        except (BackendError, BackendQueryError) as exc:
            log.warning("XA recovery on shard %s stopped: %s", shard.name, exc)
        finally:
            await admin.quit()
    for gtrid in finished:
        try:
            await asyncio.to_thread(catalog.forget_xa, gtrid)
        except CatalogError:
            pass  # a stale outcome row is harmless
    return finished


async def _recover_on(
    admin: BackendConnection, shard: str, catalog: Catalog, finished: dict[str, str]
) -> None:
    result = await admin.query("XA RECOVER")
    for row in result.rows:
        format_id, gtrid_length, _bqual_length, data = row
        if format_id is None or gtrid_length is None or data is None:
            continue
        cut = int(gtrid_length)
        gtrid = data[:cut].decode("utf-8", "replace")
        bqual = data[cut:].decode("utf-8", "replace")
        if not gtrid.startswith(XID_PREFIX):
            continue  # not ours
        try:
            outcome = await asyncio.to_thread(catalog.decide_xa, gtrid, "abort")
        except CatalogError as exc:
            log.warning("XA recovery: no outcome for %s (catalog: %s); left prepared", gtrid, exc)
            continue
        xid = f"{quote_string(gtrid)}, {quote_string(bqual)}"
        verb = "COMMIT" if outcome == "commit" else "ROLLBACK"
        await admin.query(f"XA {verb} {xid}")
        log.warning(
            "XA recovery: %s branch %s of %s on shard %s", verb.lower(), bqual, gtrid, shard
        )
        finished[gtrid] = outcome
