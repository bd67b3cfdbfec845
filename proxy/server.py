"""The asyncio server: accepts connections, owns shared state, drains on SIGTERM.

**Draining** (``stop``, on SIGTERM): the listener closes at once; a session waiting for a
command with nothing open on its backend connection (no transaction, nothing bound) ends at
once with 1053 ``Server shutdown in progress``; any other session goes on -- its statements
answered as usual -- until it has nothing open (a COMMIT or ROLLBACK is answered, then the
session ends with 1053 before its next command), for at most ``drain_timeout`` seconds. Then
the rest are cut: one waiting for a command ends with 1053 at once (what it had open is rolled
back by the shard when the backend connection closes); one running a statement has it
interrupted on its shard (``KILL QUERY``), the shard's answer (1317, or the statement's result
if it finished first) is relayed, and the session ends with 1053. Whatever has not ended
``DRAIN_GRACE`` seconds later is closed without a word. 1053 is sent as the answer to the
client's next command (sequence id 1) and the connection closed behind it: a client reads it
when it next sends a command, which PyMySQL and mysql-connector report as error 1053.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import itertools
import logging
import signal
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from auth.accounts import AccountManager
from auth.bookkeeping import LoginBookkeeping
from auth.catalog import Catalog, CatalogError, CatalogSnapshot
from auth.errors import ErrorCode, sql_error
from auth.model import Account
from auth.passwords import generate_rsa_keypair
from auth.policy import profile_by_name
from proxy import PURE_ENV, PURE_PYTHON, hot_path_modules
from proxy.backend.connection import BackendConnection, BackendTarget
from proxy.backend.mirror import MirrorManager, shard_refused
from proxy.backend.pool import Owner, PoolKey, PoolLimits, Pools, ShardPool
from proxy.backend.xa import recover_prepared
from proxy.ops.config import Config, ConfigError, load_config
from proxy.ops.digest import DigestEntry, QueryDigest
from proxy.ops.logs import bind_connection, configure_logging
from proxy.ops.metrics import Metrics
from proxy.ops.workers import PUBLISH_SECONDS, WorkerSlot
from proxy.session.authn import Sha2Cache
from proxy.session.fair import FairPool
from proxy.session.login import CatalogRefresher, LoginGuard
from proxy.session.session import Session
from proxy.shard.rows import ROWS_MISSING
from proxy.sql.analyze import FAST_BASE_MISSING
from proxy.wire.packets import Capability, ProtocolError, build_err, parse_handshake_v10
from proxy.wire.stream import (
    COMPILED_MISSING,
    ClientConnection,
    ConnectionLost,
    PacketConnection,
    PacketTooLarge,
    as_protocol,
    open_connection,
)

log = logging.getLogger("shardgate.server")


def hot_path() -> str:
    """Which packet framing, response scanner and statement-shape key run -- the compiled ones
    (Cython, built by .ci/setup) or the pure-Python reference, and why -- and which of the
    relay's modules run compiled (proxy/__init__.py)."""
    if PURE_PYTHON:
        return f"pure Python ({PURE_ENV} is set: no compiled module is loaded)"
    compiled, skipped = hot_path_modules()
    modules = f"; modules compiled: {', '.join(compiled)}" if compiled else ""
    if skipped:
        modules += "; as Python: " + ", ".join(f"{name} ({why})" for name, why in skipped.items())
    missing = [reason for reason in (COMPILED_MISSING, FAST_BASE_MISSING, ROWS_MISSING) if reason]
    if not missing:
        return (
            "compiled (Cython extensions proxy.wire._cscan, proxy.sql._cfastkey,"
            " proxy.shard._crows)" + modules
        )
    return (
        f"pure Python (compiled extension not loaded: {'; '.join(missing)}; "
        "build it with .ci/setup or `python setup.py build_ext --inplace`)" + modules
    )


CATALOG_POLL_SECONDS = 0.25
BOOKKEEPING_CLOSE_SECONDS = 5.0
WATCH_SECONDS = 1.0
# Threads for statement analysis: as many tenants analyse side by side (fair.py).
ANALYSIS_THREADS = 8
# After drain_timeout: how long interrupted statements get to answer before the rest is closed.
DRAIN_GRACE = 5.0
# Each node tells the catalog its open sessions per database (``shardgate database list`` and
# ``drop`` read them): checked this often, written when they changed and at least this often
# (a report older than auth.catalog.NODE_REPORT_FRESH no longer counts); a write waits at most
# REPORT_WRITE_WAIT for another writer of a SQLite catalog.
SESSION_REPORT_SECONDS = 2.0
SESSION_REPORT_REFRESH = 10.0
REPORT_WRITE_WAIT = 0.25


@dataclass(frozen=True)
class RsaKeys:
    private_pem: bytes
    public_pem: bytes


class ServerContext:
    """Everything sessions share: configuration, the catalog, keys and the session table."""

    def __init__(self, config: Config, catalog: Catalog, worker: WorkerSlot | None = None) -> None:
        self.config = config
        self.worker = worker
        self.catalog = catalog
        self.accounts = AccountManager(catalog, profile_by_name(config.server.policy))
        # Failed / successful logins (MySQL port and dashboard) and dashboard sign-outs go to
        # the catalog through this queue, so a busy or unreachable catalog neither loses them
        # nor holds the client (auth/bookkeeping.py). One queue: one order for both doors.
        self.bookkeeping = LoginBookkeeping(catalog)
        self.secret = config.catalog_secret()
        self.sessions: dict[int, Session] = {}
        self.digest = QueryDigest()
        self.sha2_cache = Sha2Cache()
        # The decoy account, per-address throttle and crypto pool of logins (session/login.py).
        self.login_guard = LoginGuard()
        # The catalog re-read a failed login waits for (session/login.py).
        self.catalog_refresher = CatalogRefresher(catalog)
        private_pem, public_pem = generate_rsa_keypair()
        self.rsa_keys = RsaKeys(private_pem, public_pem)
        self.ssl_context = _ssl_context(config)
        self._ids = itertools.count(1)
        self.draining = False
        self.server_version = config.server.server_version or FALLBACK_SERVER_VERSION
        # The first shard's capabilities (``_backend_greeting``), as offered to clients.
        self.shard_capabilities = 0
        # Prometheus metrics (proxy/ops/metrics.py lists the calls sessions make).
        self.metrics = Metrics(
            catalog_version=lambda: self.catalog.snapshot().version,
            catalog_outcomes_unknown=lambda: self.catalog.outcomes_unknown,
        )
        # Statements too long to analyse on the event loop, or not analysed before (a sqlglot
        # parse), are analysed here, apart from everyone's catalog calls (the default
        # executor): one analysis at a time per tenant, tenants side by side (fair.py), so one
        # tenant's huge statements queue behind each other, not in front of other tenants'.
        self.analysis_pool = FairPool(ANALYSIS_THREADS)
        # The mirrored backend accounts sessions connect as (proxy/backend/mirror.py).
        self.mirrors = MirrorManager(lambda: self.config, catalog, self.metrics)
        # The backend connection pools, one per shard (proxy/backend/pool.py).
        self.pools = Pools(self.pool_limits)

    def pool_limits(self, shard_name: str) -> PoolLimits:
        """A shard's pool settings, its max_connections shared between the workers."""
        try:
            shard = self.config.shard(shard_name)
        except ConfigError:  # removed by a reload: its connections just drain away
            return PoolLimits()
        workers = self.config.server.workers
        most = max(1, shard.max_connections // workers)
        return PoolLimits(
            pool_size=min(shard.pool_size, most),
            max_connections=most,
            wait_timeout=shard.pool_wait_timeout,
            idle_lifetime=shard.idle_lifetime,
        )

    def next_connection_id(self) -> int:
        sequence = next(self._ids)
        return sequence if self.worker is None else self.worker.connection_id(sequence)

    def snapshot(self) -> CatalogSnapshot:
        return self.catalog.snapshot()

    def session_counts(self) -> dict[str, int]:
        """Logged-in sessions per current database (catalog lookup keys)."""
        return dict(
            Counter(
                session.current_db.lower()
                for session in self.sessions.values()
                if session.account is not None and session.current_db is not None
            )
        )

    def peer_digests(self) -> list[dict[tuple[str | None, str], DigestEntry]]:
        return [] if self.worker is None else self.worker.peer_digests()

    async def backend_lease(
        self,
        owner: Owner,
        account: Account,
        database: str | None,
        capabilities: int,
        charset: int,
    ) -> tuple[BackendConnection, bool, ShardPool]:
        """A backend connection from the pool for a session of ``account`` in ``database``:
        logged in as the account's mirror there, verified for the newest catalog
        (proxy/backend/mirror.py), or, in no database, as the shard's privilege-less usage
        account. A pooled connection whose grants are older than the snapshot's follows them
        first (or is closed). Returns the connection, whether it is new, and its pool. Raises
        BackendError, PoolExhausted."""
        selects = database is not None
        while True:
            snapshot = self.snapshot()
            target = await self.mirrors.target_for(snapshot, account, database, selects)
            pool = self.pools.shard(target.shard)
            key = PoolKey(
                target.shard,
                target.host,
                target.port,
                target.user,
                target.database,
                capabilities,
                charset,
            )

            connect = functools.partial(
                self.mirrors.connect, snapshot, account, database, selects, capabilities, charset
            )
            conn, fresh = await pool.acquire(key, owner, connect)
            if not fresh and conn.target != target:
                await self.mirrors.follow(conn, snapshot, account, database)
                if conn.broken or conn.target != target:
                    pool.discard(conn)
                    continue
            return conn, fresh, pool

    async def follow_grants(
        self, conn: BackendConnection, account: Account, database: str | None
    ) -> None:
        """The catalog moved while ``conn`` (a session's, idle) is open: make it hold what the
        newest snapshot says (``MirrorManager.follow``)."""
        await self.mirrors.follow(conn, self.snapshot(), account, database)

    def shard_refused(
        self, errno: int, database: str | None, digest: str, target: BackendTarget
    ) -> None:
        """The shard refused a statement the proxy allowed: a classifier miss, or a mirror
        changed behind the proxy's back (verified again before its next use)."""
        shard_refused(self.metrics, errno, database, digest)
        self.mirrors.suspect(target)


FALLBACK_SERVER_VERSION = "5.5.5-10.11.0-MariaDB-shardgate"


def _forget(tasks: dict[str, asyncio.Task[None]], name: str, _: object) -> None:
    tasks.pop(name, None)


async def _greets(host: str, port: int, timeout: float) -> bool:
    """Whether a MySQL server at host:port sends its greeting within ``timeout``."""
    conn: PacketConnection | None = None
    try:
        async with asyncio.timeout(timeout):
            conn = await open_connection(PacketConnection, host, port)
            await conn.read(1 << 16)
        return True
    except (OSError, TimeoutError, ConnectionLost, PacketTooLarge):
        return False
    finally:
        if conn is not None:
            conn.close()


async def _backend_greeting(config: Config) -> tuple[str, int]:
    """The first reachable shard's greeting: its version, which the proxy presents as its own,
    and its capabilities, which decide what the proxy offers clients beyond its own (session
    tracking, MariaDB's extended type information and metadata caching: shards are assumed to
    be of one kind). No shard reachable: the fallback version, and none of those."""
    for shard in config.shards:
        try:
            conn = await asyncio.wait_for(
                open_connection(PacketConnection, shard.host, shard.port), 3
            )
        except (OSError, TimeoutError):
            continue
        try:
            _, greeting = await asyncio.wait_for(conn.read(1 << 16), 3)
            handshake = parse_handshake_v10(greeting)
            return f"{handshake.server_version}-shardgate", handshake.capabilities
        except (ConnectionLost, ProtocolError, TimeoutError, PacketTooLarge):
            continue
        finally:
            conn.close()
    return FALLBACK_SERVER_VERSION, 0


def _ssl_context(config: Config) -> ssl.SSLContext | None:
    server = config.server
    if server.tls_cert is None or server.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.tls_cert, server.tls_key)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class AdminListener(Protocol):
    """The admin HTTP listener (dashboard, ``/metrics``) a proxy process runs beside its MySQL
    port, started and stopped with it (``proxy.manage.admin.server.AdminServer``). Whoever
    composes the process (``shardgate serve``, ``shardgate dev``, the tests) hands its factory
    (``proxy.manage.admin.listener.admin_listener``) to ``ProxyServer``, so the server does not
    depend on the management layer."""

    @property
    def url(self) -> str: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def set_metrics_token(self, token: str | None) -> None:
        """``[metrics] token_env`` changed on reload."""
        ...


# The admin listener for a server's context (None: neither [admin] nor [metrics] is on).
AdminFactory = Callable[[ServerContext], AdminListener | None]


class ProxyServer:
    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        config_path: Path | None = None,
        *,
        manage_logging: bool = False,
        log_level_override: str | None = None,
        worker: WorkerSlot | None = None,
        admin: AdminFactory | None = None,
    ) -> None:
        """``config_path``: the file SIGHUP re-reads (``reload()``); ``manage_logging``: this
        process's logging follows ``[log]`` on reload (``shardgate serve``), with
        ``log_level_override`` (``--log-level``) winning over ``[log] level``; ``worker``:
        this process is one of several on the same port (proxy/ops/workers.py); ``admin``:
        builds the admin HTTP listener (``proxy.manage.admin.listener.admin_listener``)."""
        self.ctx = ServerContext(config, catalog, worker)
        self.config_path = config_path
        self.manage_logging = manage_logging
        self.log_level_override = log_level_override
        self._reload_lock = asyncio.Lock()
        self._reloads: set[asyncio.Task[bool]] = set()
        self._server: asyncio.Server | None = None
        self._xa_recovery: asyncio.Task[dict[str, str]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._admin_factory = admin
        self.admin: AdminListener | None = None
        # Session reports to the catalog, on a thread of their own (its own SQLite wait).
        self._report_pool = ThreadPoolExecutor(1, thread_name_prefix="shardgate-report")
        self.node = ""  # this node's name in the catalog's session reports: host:port[/wN]

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        # A long analysis in a worker thread holds the interpreter lock in turns: hand it back
        # to the event loop every millisecond (the default is five), so other tenants' relays
        # wait at most that long for it.
        sys.setswitchinterval(0.001)
        server = self.ctx.config.server
        version, self.ctx.shard_capabilities = await _backend_greeting(self.ctx.config)
        self.ctx.server_version = server.server_version or version
        worker = self.ctx.worker
        if worker is not None:
            self.ctx.metrics.serve_merged(worker.merged_metrics)
        # With several workers, worker 0 alone runs the admin listener.
        if self._admin_factory is not None and (worker is None or worker.index == 0):
            self.admin = self._admin_factory(self.ctx)
            if self.admin is not None:
                await self.admin.start()
        # Prepared branches of multi-shard transactions a dead node left (backend/xa.py), in
        # the background: a shard that does not answer must not hold the listener back.
        if worker is None or worker.index == 0:
            self._xa_recovery = asyncio.create_task(
                recover_prepared(self.ctx.config, self.ctx.catalog)
            )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            as_protocol(lambda: ClientConnection(self._accept)),
            server.host,
            server.port,
            backlog=1024,
            reuse_port=worker is not None,
        )
        self.node = f"{socket.gethostname()}:{self.port}" + (
            "" if worker is None else f"/w{worker.index}"
        )
        self._poller = asyncio.create_task(self._poll_catalog())
        self._reporter = asyncio.create_task(self._report_sessions())
        # Mirrors: reconciled now and every RECONCILE_SECONDS, in the background (a session
        # whose mirror is not verified yet syncs it on demand).
        self._reconciler = asyncio.create_task(self.ctx.mirrors.run())
        # Everything allocated so far (the catalog snapshot: with 100,000 accounts, millions of
        # objects) lives as long as the process: keep it out of the garbage collector's
        # generations, which the hot path's short-lived objects would otherwise make it walk.
        gc.freeze()
        if worker is not None:
            self._publisher = asyncio.create_task(self._publish(worker))
        self._watchdog = asyncio.create_task(self._watch())
        log.info("shardgate listening on %s:%d", server.host, self.port)
        log.info("hot path: %s", hot_path())

    def _accept(self, client: ClientConnection) -> None:
        """A client connected (called from connection_made): start its session."""
        # TCP_NODELAY is on already: asyncio and uvloop set it on every TCP transport.
        limit = self.ctx.config.server.max_connections
        if limit and len(self._tasks) >= limit:
            # MySQL answers with this error instead of its greeting.
            error = sql_error(ErrorCode.CON_COUNT, "Too many connections")
            client.write(
                0,
                build_err(
                    errno=error.errno,
                    sqlstate=error.sqlstate,
                    message=error.message,
                    capabilities=Capability.PROTOCOL_41,
                ),
            )
            client.close()
            self.ctx.metrics.denied(error.errno)
            return
        session = Session(self.ctx, client, self.ctx.next_connection_id())
        task = asyncio.get_running_loop().create_task(self._serve(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, session: Session) -> None:
        # The task's own context: log records of this session carry its id and address.
        bind_connection(session.connection_id, session.client_ip)
        self.ctx.metrics.connection_opened()
        try:
            await session.run()
        finally:
            client = session.client
            self.ctx.metrics.connection_closed(client.bytes_received, client.bytes_sent)

    async def _watch(self) -> None:
        """Once a second: idle clients, statements over the time limit, stalled shards."""
        probing: dict[str, asyncio.Task[None]] = {}
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            self.ctx.digest.tick()
            self.ctx.pools.sweep()
            for pool in self.ctx.pools.all():
                self.ctx.metrics.pool(pool.shard, pool.figures(), pool.events())
            settings = self.ctx.config.server
            now = time.monotonic()
            waiting: dict[str, list[tuple[Session, BackendConnection]]] = {}
            for session in list(self.ctx.sessions.values()):
                activity = session.activity
                if activity.command == "Sleep":
                    idle_limit = session.idle_limit(settings.idle_timeout)
                    if idle_limit and now - activity.since > idle_limit:
                        session.disconnect_idle()
                    continue
                if (
                    settings.query_timeout
                    and now - activity.since > settings.query_timeout
                    and session.cancelled_at != activity.since
                ):
                    session.cancelled_at = activity.since
                    task = asyncio.create_task(session.cancel_query())
                    self._background.add(task)
                    task.add_done_callback(self._background.discard)
                if settings.shard_check_after:
                    for conn in session.waited_on(now, settings.shard_check_after):
                        waiting.setdefault(conn.target.shard, []).append((session, conn))
            for shard, conns in waiting.items():
                if shard not in probing:
                    task = asyncio.create_task(self._check_shard(shard, conns))
                    probing[shard] = task
                    task.add_done_callback(functools.partial(_forget, probing, shard))

    async def _check_shard(
        self, name: str, waited: list[tuple[Session, BackendConnection]]
    ) -> None:
        """Statements have waited on this shard for long: is the shard answering at all? If
        not, their connections to it are given up (the statements fail with the reason)."""
        config = self.ctx.config
        timeout = config.server.backend_connect_timeout
        try:
            shard = config.shard(name)
        except ConfigError:  # removed by a reload meanwhile
            return
        if await _greets(shard.host, shard.port, timeout):
            return
        log.warning("shard '%s' did not greet a health check within %g s", name, timeout)
        for session, conn in waited:
            # (the link's connection only while its answer is still awaited)
            if conn is not session.link.conn or conn.waiting_since:
                conn.stall(f"shard '{name}' is not answering (health check failed)")

    async def _publish(self, worker: WorkerSlot) -> None:
        """Share this worker's metrics and digest with worker 0 and the others."""
        while True:
            try:
                worker.publish(self.ctx.metrics.render_own(), self.ctx.digest.entries)
            except OSError:
                log.exception("worker %d: publishing metrics failed", worker.index)
            await asyncio.sleep(PUBLISH_SECONDS)

    async def _poll_catalog(self) -> None:
        """Changes made by another process (the CLI, another node) reach open sessions.

        Each poll waits at most ``[catalog] timeout`` (the store's bound). A failed poll is
        counted (``shardgate_catalog_refresh_failures_total``) and the proxy goes on with the
        last good snapshot; the log gets one line when the catalog becomes unavailable and one
        when it is back, not one per poll."""
        seen = self.ctx.snapshot()
        down_since: float | None = None
        failed_polls = 0
        while True:
            await asyncio.sleep(CATALOG_POLL_SECONDS)
            try:
                await asyncio.to_thread(self.ctx.catalog.refresh)
            except Exception as exc:  # keep serving on the last good snapshot
                self.ctx.metrics.catalog_refresh_failures.inc()
                failed_polls += 1
                if down_since is None:
                    down_since = time.monotonic()
                    if not isinstance(exc, CatalogError):
                        log.exception("catalog refresh failed")  # a bug: its traceback, once
                    log.warning(
                        "%s; logins and sessions go on with catalog version %d, account "
                        "changes fail until it is back",
                        exc.message if isinstance(exc, CatalogError) else exc,
                        self.ctx.snapshot().version,
                    )
                continue
            if down_since is not None:
                log.warning(
                    "catalog available again after %.1f s (%d failed polls)",
                    time.monotonic() - down_since,
                    failed_polls,
                )
                down_since, failed_polls = None, 0
            # Every version change since the last poll (whoever refreshed): the mirrors of the
            # accounts that changed follow, in the background.
            if self.ctx.snapshot().version != seen.version:
                self.ctx.mirrors.catalog_moved(seen)
                seen = self.ctx.snapshot()

    async def _report(self, counts: dict[str, int]) -> bool:
        """Write this node's session report; False (logged) if the catalog is not free now."""
        try:
            await asyncio.get_running_loop().run_in_executor(
                self._report_pool, self.ctx.catalog.publish_sessions, self.node, counts
            )
        except CatalogError as exc:
            log.info("session report not written (retried later): %s", exc)
            return False
        return True

    async def _report_sessions(self) -> None:
        """Keep this node's report of its open sessions per database current in the catalog."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(
            self._report_pool, self.ctx.catalog.limit_thread_write_wait, REPORT_WRITE_WAIT
        )
        last: dict[str, int] | None = None
        written = 0.0
        while True:
            counts = self.ctx.session_counts()
            now = time.monotonic()
            if (counts != last or now - written >= SESSION_REPORT_REFRESH) and await self._report(
                counts
            ):
                last, written = counts, now
            await asyncio.sleep(SESSION_REPORT_SECONDS)

    async def serve_until_stopped(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self._stopping.set)
        with contextlib.suppress(NotImplementedError, RuntimeError):  # SIGHUP: reload()
            loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        await self._stopping.wait()
        await self.stop()

    def request_stop(self) -> None:
        self._stopping.set()

    async def _drain(self) -> None:
        self.ctx.draining = True
        held = 0
        for session in list(self.ctx.sessions.values()):
            session.drain()
            held += not session.killed
        if not self._tasks:
            return
        timeout = self.ctx.config.server.drain_timeout
        log.info(
            "draining: %d sessions have a transaction or a statement open (waiting up to %g s)",
            held,
            timeout,
        )
        _, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
        if not pending:
            return
        log.warning("drain_timeout passed: cutting %d connections", len(pending))
        interrupts = [asyncio.create_task(s.cut_off()) for s in list(self.ctx.sessions.values())]
        _, pending = await asyncio.wait(pending, timeout=DRAIN_GRACE)
        for task in [*pending, *interrupts]:
            task.cancel()
        if pending:
            log.warning("closing %d connections that did not end in time", len(pending))
            await asyncio.wait(pending, timeout=2)

    # --- SIGHUP: configuration reload ---------------------------------------------------------

    def _on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload())
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    async def reload(self) -> bool:
        """Re-read the configuration file and apply what can change while serving.

        Live: shards added, a shard's host/port/user/password (new backend connections use
        them), the client TLS certificate and key (re-read even at the same paths; new
        handshakes use them, open sessions keep theirs), ``require_tls``, ``auth_plugin``,
        timeouts and packet limits, ``[log]``, ``[metrics] token_env``. Refused as a whole
        (logged as an error; the running configuration stays): an invalid file, and any
        change to the listen address, ``policy``, ``server_version``, ``[catalog]``,
        ``[admin]``, ``[metrics] enabled``, or a shard's removal or renaming -- these need a
        restart. Returns whether the new configuration was applied.
        """
        async with self._reload_lock:
            try:
                applied = await self._reload()
            except Exception:  # never let a reload take the proxy down
                log.exception("configuration reload failed; keeping the running configuration")
                applied = False
            metrics = self.ctx.metrics
            if applied:
                metrics.config_reloads_ok.inc()
                metrics.config_reload_time.set(time.time())
            else:
                metrics.config_reloads_failed.inc()
            return applied

    async def _reload(self) -> bool:
        if self.config_path is None:
            log.error("SIGHUP: this proxy was started without a configuration file to re-read")
            return False
        old = self.ctx.config
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            log.error("configuration reload refused: %s; keeping the running configuration", exc)
            return False
        fixed = _fixed_changes(old, new)
        if fixed:
            log.error(
                "configuration reload refused: %s cannot change while serving (restart to "
                "apply); keeping the running configuration",
                ", ".join(fixed),
            )
            return False
        try:
            ssl_context = await asyncio.to_thread(_ssl_context, new)
            token = new.metrics.token()
        except (OSError, ssl.SSLError, ConfigError) as exc:
            log.error("configuration reload refused: %s; keeping the running configuration", exc)
            return False
        if self.manage_logging and new.log != old.log:
            try:
                configure_logging(new.log, self.log_level_override)
            except (OSError, ValueError) as exc:
                log.error(
                    "configuration reload refused: log: %s; keeping the running configuration",
                    exc,
                )
                return False
        # One assignment each, with no await in between: a handshake sees the old pair or
        # the new pair. Sessions already open keep their TLS state and backend connections.
        self.ctx.config = new
        self.ctx.ssl_context = ssl_context
        self.ctx.pools.reconfigure()
        if self.admin is not None:
            self.admin.set_metrics_token(token)
        log.info(
            "configuration reloaded from %s: %s", self.config_path, _describe_changes(old, new)
        )
        return True

    async def stop(self) -> None:
        """Drain (the module docstring): stop accepting, end idle sessions at once, let the
        ones with something open finish it within drain_timeout, then cut the rest."""
        if self.admin is not None:
            await self.admin.stop()
        if self._server is not None:
            self._server.close()
        # The catalog poller, the mirrors and the watchdog go on while sessions drain: a
        # REVOKE still reaches them, query_timeout still holds.
        await self._drain()
        self.ctx.pools.close()
        self._poller.cancel()
        self._reporter.cancel()
        self._reconciler.cancel()
        await self.ctx.mirrors.stop()
        if self.ctx.worker is not None:
            self._publisher.cancel()
        self._watchdog.cancel()
        if self._xa_recovery is not None:
            self._xa_recovery.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        # Login records still queued for a busy catalog: a last try (bounded).
        await asyncio.to_thread(self.ctx.bookkeeping.close, BOOKKEEPING_CLOSE_SECONDS)
        await self._report({})  # this node has no sessions any more
        self._report_pool.shutdown(wait=False)
        self.ctx.analysis_pool.shutdown()
        log.info("shardgate stopped")


# What cannot change while serving: (section, key) pairs compared between old and new.
_FIXED_SERVER_KEYS = ("host", "port", "policy", "server_version")


def _fixed_changes(old: Config, new: Config) -> list[str]:
    changed = [
        f"server.{key}"
        for key in _FIXED_SERVER_KEYS
        if getattr(old.server, key) != getattr(new.server, key)
    ]
    if old.catalog != new.catalog:
        changed.append("[catalog]")
    if old.admin != new.admin:
        changed.append("[admin]")
    if old.metrics.enabled != new.metrics.enabled:
        changed.append("metrics.enabled")
    kept = {shard.name for shard in new.shards}
    changed += [f"shard {s.name!r} removed" for s in old.shards if s.name not in kept]
    return changed


def _describe_changes(old: Config, new: Config) -> str:
    before = {shard.name: shard for shard in old.shards}
    notes = [f"shard {s.name!r} added" for s in new.shards if s.name not in before]
    notes += [
        f"shard {s.name!r} changed" for s in new.shards if s.name in before and before[s.name] != s
    ]
    if new.server.tls_cert is not None:
        notes.append("TLS certificate loaded")
    elif old.server.tls_cert is not None:
        notes.append("TLS turned off")
    other = [
        f"server.{key}"
        for key in (
            "auth_plugin",
            "require_tls",
            "handshake_timeout",
            "max_handshake_packet",
            "max_packet",
            "backend_connect_timeout",
            "drain_timeout",
        )
        if getattr(old.server, key) != getattr(new.server, key)
    ]
    if old.log != new.log:
        other.append("[log]")
    if old.metrics != new.metrics:
        other.append("metrics.token_env")
    if other:
        notes.append("changed " + ", ".join(other))
    return "; ".join(notes) or "no changes"


def run_server(
    config: Config,
    config_path: Path | None = None,
    log_level_override: str | None = None,
    worker: WorkerSlot | None = None,
    admin: AdminFactory | None = None,
) -> None:
    """Run the proxy in the foreground until SIGTERM/SIGINT; used by ``shardgate serve``.
    SIGHUP re-reads ``config_path`` (``ProxyServer.reload``)."""
    catalog = Catalog.open(config.catalog.url, config.base_dir, timeout=config.catalog.timeout)

    async def main() -> None:
        server = ProxyServer(
            config,
            catalog,
            config_path,
            manage_logging=True,
            log_level_override=log_level_override,
            worker=worker,
            admin=admin,
        )
        await server.start()
        await server.serve_until_stopped()

    run_loop(main())


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` to completion on uvloop (asyncio's own loop where uvloop is missing)."""
    try:
        import uvloop

        uvloop.run(main)
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(main)
