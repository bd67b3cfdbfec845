"""Logging in: one path for a connection's first login and for COM_CHANGE_USER.

The first login is the greeting, an optional SSLRequest and TLS, the handshake response, then
authentication; COM_CHANGE_USER re-authenticates on a logged-in connection with a fresh
scramble. Both then go through the same steps: the per-address throttle, the plugin exchange,
the lock check and lockout bookkeeping, the login database, ``max_user_connections``, the
admission into the session table, the OK, and one audit record and login metric.

A login that fails against the node's snapshot -- unknown user or wrong password alike --
re-reads the catalog once (``CatalogRefresher``: one read at a time per process, shared by the
failures waiting for it) and, if the catalog moved, is decided again on the new snapshot from the
same client answers (``Exchange``), without another packet. So an account created or changed a
moment ago by the CLI or another node logs in at once, not after the next poll; and since both
kinds of failure pay the same re-read, and the re-decision runs the same code and crypto for an
unknown user (the decoy) as for a known one, the time still tells nothing.

Before a login succeeds, everyone is treated the same. The plugin exchange is decided from the
client's request and the server's configuration alone (``choose_plugin``), never from whether
the account exists or has a cached digest; an unknown user (or an address no account matches)
is checked against a decoy account with random hashes through the same plugin code, so the
same crypto runs, and gets the same 1045. The exceptions are README's "Account protections": a
locked account (3955) and an account at its connection limit (1226), told only to a client
whose address matches the account and that named it. Slow crypto (PBKDF2, RSA) runs in a
bounded pool of threads, never on the event loop.

``handshake`` and ``change_user`` take what they need of the server as ``LoginServices`` and of
the session as ``Seat`` (``ServerContext`` and ``Session`` provide them). A login that fails
has already answered the client when ``LoginRefused`` is raised; the connection must close.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from auth.bookkeeping import LoginBookkeeping
from auth.catalog import Catalog, CatalogError, CatalogSnapshot, LoginLock
from auth.errors import (
    ErrorCode,
    SqlError,
    access_denied,
    account_blocked,
    packet_too_large,
    sql_error,
    user_limit_reached,
)
from auth.hosts import choose_account
from auth.model import Account
from auth.passwords import hash_password
from proxy.backend.connection import RELAYED_CAPABILITIES, offered_capabilities
from proxy.ops.config import Config, ServerConfig
from proxy.ops.logs import audit_login, bind_account
from proxy.ops.metrics import Metrics
from proxy.plan.authorize import Caller, default_database, resolve_database
from proxy.session.authn import (
    CACHING_SHA2,
    NATIVE,
    SUPPORTED_PLUGINS,
    AuthContext,
    Keys,
    Sha2Cache,
    SlowCheck,
    run_plugin,
)
from proxy.sql.charsets import UTF8MB4_GENERAL_CI, client_collation
from proxy.wire.packets import (
    Capability,
    ProtocolError,
    ServerStatus,
    build_auth_switch_request,
    build_err,
    build_handshake_v10,
    build_ok,
    is_ssl_request,
    parse_change_user,
    parse_handshake_response,
)
from proxy.wire.stream import ClientConnection, ConnectionLost, PacketTooLarge

log = logging.getLogger("shardgate.session")

# What the proxy advertises (less what the shards do not offer: ``offered_capabilities``).
# Compression, LOCAL INFILE, DEPRECATE_EOF, query attributes and MariaDB's progress reports and
# bulk execution are deliberately absent: the proxy does not relay them faithfully.
SERVER_CAPABILITIES = RELAYED_CAPABILITIES | Capability.IGNORE_SPACE | Capability.CONNECT_ATTRS

_STATUS_AUTOCOMMIT = int(ServerStatus.AUTOCOMMIT)
_BAD_HANDSHAKE = sql_error(ErrorCode.HANDSHAKE, "Bad handshake")

# Slow login checks (PBKDF2, RSA) running at once; more wait their turn.
CRYPTO_THREADS = max(1, min(4, os.cpu_count() or 1))
# Client addresses the throttle remembers; beyond, the one whose last failure is oldest goes.
MAX_THROTTLED_ADDRESSES = 65536


# -- what a login needs ------------------------------------------------------------------------


class Seated(Protocol):
    """A session in the session table, as the connection limit sees it."""

    @property
    def account(self) -> Account | None: ...


class LoginServices(Protocol):
    """What logging in needs of the server (``ServerContext`` provides it)."""

    @property
    def config(self) -> Config: ...
    @property
    def catalog(self) -> Catalog: ...
    def snapshot(self) -> CatalogSnapshot: ...
    @property
    def catalog_refresher(self) -> CatalogRefresher:
        """The catalog re-read a failed login waits for."""
        ...

    @property
    def sha2_cache(self) -> Sha2Cache: ...
    @property
    def rsa_keys(self) -> Keys: ...
    @property
    def metrics(self) -> Metrics: ...
    @property
    def ssl_context(self) -> ssl.SSLContext | None: ...
    @property
    def server_version(self) -> str: ...
    @property
    def shard_capabilities(self) -> int:
        """The shards' greeting capabilities (what the proxy may offer beyond its own)."""
        ...

    @property
    def sessions(self) -> Mapping[int, Seated]: ...
    @property
    def login_guard(self) -> LoginGuard: ...
    @property
    def bookkeeping(self) -> LoginBookkeeping:
        """Failed-login counting and locks, queued when the catalog is busy."""
        ...


@dataclass(frozen=True, slots=True)
class LoginResult:
    """An accepted login, for the session to take on."""

    account: Account
    user: str  # the user name as the client spelled it
    database: str | None  # the current database to start with
    capabilities: int  # negotiated with the client
    charset: int
    tls: bool


class Seat(Protocol):
    """The connection a login is for (``Session`` provides it). ``capabilities``, ``charset``
    and ``tls`` are what the connection has so far (COM_CHANGE_USER keeps them)."""

    @property
    def client(self) -> ClientConnection: ...
    @property
    def client_ip(self) -> str: ...
    @property
    def connection_id(self) -> int: ...
    @property
    def capabilities(self) -> int: ...
    @property
    def charset(self) -> int: ...
    @property
    def tls(self) -> bool: ...

    def admit(self, login: LoginResult) -> None:
        """Take on the login and enter the session table. Called after the connection limit
        was checked with no await in between (so concurrent logins of one account cannot both
        pass the check), before the OK is sent."""


class LoginRefused(Exception):
    """The login failed and the client has been told (if there was anything to tell): close
    the connection."""


class _Refusal(Exception):
    """Ends a login attempt with ``error`` (None: nothing can be sent, e.g. a failed TLS
    handshake). ``guess``: a password was tried and not proven (1045, 3955), which the
    per-address throttle counts."""

    def __init__(self, error: SqlError | None, reason: str, *, guess: bool = False) -> None:
        super().__init__(reason)
        self.error = error
        self.guess = guess


# -- the two entry points ----------------------------------------------------------------------


async def handshake(services: LoginServices, seat: Seat) -> None:
    """A new connection's login; ``seat.admit`` receives the result. Raises LoginRefused,
    TimeoutError (``handshake_timeout``, extended by any throttle delay) or ConnectionLost."""
    async with asyncio.timeout(services.config.server.handshake_timeout) as deadline:
        login = _Login(services, seat, deadline, seq=0, capabilities=0, tls=False)
        await login.conclude(login.first())


async def change_user(services: LoginServices, seat: Seat, payload: bytes, seq: int) -> None:
    """COM_CHANGE_USER (``payload`` with its command byte; ``seq`` the sequence number of the
    reply): authenticate again, as ``handshake`` does. The caller has already dropped the
    session's identity; on failure the connection closes."""
    async with asyncio.timeout(services.config.server.handshake_timeout) as deadline:
        login = _Login(services, seat, deadline, seq, seat.capabilities, seat.tls)
        await login.conclude(login.change(payload, seat.charset))


def choose_plugin(requested: str, server_plugin: str, tls: bool) -> tuple[str, bool]:
    """The plugin a login is checked with, and whether the client must be asked to switch to
    it -- from the request and the configuration only, never from the account or its cache.

    An unsupported plugin is switched to the server's. caching_sha2 needs full authentication
    whenever its cache cannot prove the scramble (nothing cached, or a wrong password), which
    without TLS takes the RSA key exchange; a server proposing mysql_native_password does not
    count on that, so without TLS it always switches caching_sha2 clients to native.
    """
    if requested not in SUPPORTED_PLUGINS:
        return server_plugin, True
    if requested == CACHING_SHA2 and server_plugin == NATIVE and not tls:
        return NATIVE, True
    return requested, False


def make_scramble() -> bytes:
    """20 random bytes, none of them NUL (some clients treat the scramble as a C string)."""
    return bytes((b % 94) + 33 for b in os.urandom(20))


# -- what logins share -------------------------------------------------------------------------


def decoy_account() -> Account:
    """The account an unknown user is checked against: random hashes of no password anyone
    knows, with the work factor real accounts get, never locked, and never admitted."""
    return Account(
        id=-1,
        user="",
        host="%",
        native_hash=secrets.token_bytes(20),
        password_hash=hash_password(secrets.token_urlsafe(32)),
        owner_db=None,
        builtin=None,
        created_seq=-1,
    )


def address_key(ip: str) -> str:
    """What the throttle counts by: the address; for IPv6 its /64, which one host often has."""
    if ":" not in ip:
        return ip
    try:
        return str(ipaddress.IPv6Network((ip.split("%", 1)[0], 64), strict=False))
    except ValueError:
        return ip


class AddressThrottle:
    """Failed logins per client address, to slow password guessing the way MySQL's
    connection_control plugin does, without ever locking an account.

    An address's count grows by one per failed login and is forgotten once
    ``login_throttle_window`` seconds pass without a failure from it. While the count is at
    least ``login_throttle_failures``, every attempt from that address -- whatever the user
    name, and whether or not the password is right, so that the wait tells nothing -- is first
    delayed by ``login_throttle_delay`` for each failure beyond that number, at most
    ``login_throttle_max_delay``. Other addresses are never affected. A successful login does
    not reset the count: otherwise anyone holding one working account could clear its
    address's count between guesses at others. At most ``capacity`` addresses are kept; the
    one whose last failure is oldest is dropped first.
    """

    def __init__(self, capacity: int = MAX_THROTTLED_ADDRESSES) -> None:
        self._capacity = capacity
        # key -> (failures, monotonic time of the last one); oldest last failure first.
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def delay(self, ip: str, now: float, server: ServerConfig) -> float:
        """Seconds an attempt from ``ip`` at monotonic time ``now`` waits first (0: none)."""
        threshold = server.login_throttle_failures
        if not threshold:
            return 0.0
        self._expire(now, server.login_throttle_window)
        failures, _ = self._failures.get(address_key(ip), (0, now))
        if failures < threshold:
            return 0.0
        return min(
            server.login_throttle_max_delay,
            server.login_throttle_delay * (failures - threshold + 1),
        )

    def failed(self, ip: str, now: float, server: ServerConfig) -> None:
        """Count a failed login from ``ip``."""
        if not server.login_throttle_failures:
            return
        self._expire(now, server.login_throttle_window)
        key = address_key(ip)
        failures, _ = self._failures.pop(key, (0, now))
        self._failures[key] = (failures + 1, now)
        if len(self._failures) > self._capacity:
            self._failures.popitem(last=False)

    def _expire(self, now: float, window: float) -> None:
        failures = self._failures
        while failures:
            key, (_, last) = next(iter(failures.items()))
            if now - last <= window:
                return
            del failures[key]


class LoginGuard:
    """What the logins of one process share besides the catalog: the decoy account, the
    per-address throttle, and the bounded pool that runs slow crypto."""

    def __init__(self, crypto_threads: int = CRYPTO_THREADS) -> None:
        self.decoy = decoy_account()
        self.throttle = AddressThrottle()
        self._crypto = asyncio.Semaphore(crypto_threads)

    async def offload(self, check: SlowCheck) -> bool:
        """Run a slow check (PBKDF2, RSA decryption) in a worker thread, a bounded number at
        once, so the event loop goes on serving every other connection meanwhile."""
        async with self._crypto:
            return await asyncio.to_thread(check)


class CatalogRefresher:
    """Catalog re-reads for failed logins: one at a time per process. A caller of ``fresh()``
    gets a snapshot read after it asked: a read already under way when it asks does not count
    (it may have started before the change the caller hopes to see), so it waits for the next
    one, which every caller arriving meanwhile shares. A flood of failed logins thus costs the
    catalog at most one version check at a time (on top of the throttle per address)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._asked = 0  # tickets handed out
        self._served = 0  # every ticket up to this one has had its read
        self._worker: asyncio.Task[None] | None = None
        self._changed: asyncio.Condition | None = None

    async def fresh(self) -> CatalogSnapshot:
        """The catalog's snapshot, refreshed after this call began (the last good one if the
        catalog cannot be read now)."""
        if self._changed is None:
            self._changed = asyncio.Condition()
        self._asked += 1
        ticket = self._asked
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work(self._changed))
        async with self._changed:
            await self._changed.wait_for(lambda: self._served >= ticket)
        return self._catalog.snapshot()

    async def _work(self, changed: asyncio.Condition) -> None:
        while self._served < self._asked:
            covered = self._asked  # every ticket handed out before this read starts
            try:
                await asyncio.to_thread(self._catalog.refresh)
            except Exception as exc:  # a busy or unreachable catalog: the last snapshot
                log.warning("catalog re-read for a failed login failed: %s", exc)
            self._served = covered
            async with changed:
                changed.notify_all()


@dataclass(slots=True)
class Exchange:
    """What a plugin sent and the client answered, in order: enough to run the plugin again
    against another account without asking the client anything (``_Login.replay``)."""

    sent: list[bytes] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)


def _login_account(snapshot: CatalogSnapshot, user: str, ip: str, decoy: Account) -> Account | None:
    """``snapshot.login_account(user, ip)`` at the same cost for a name no account has: the
    decoy (host '%') stands in as its one candidate, so the lookup's time does not tell."""
    chosen = choose_account(snapshot.accounts_named(user) or (decoy,), ip)
    return None if chosen is decoy else chosen


async def _catalog_login_call(
    call: Callable[..., LoginLock | None], *args: Any
) -> LoginLock | None:
    """The one way login bookkeeping reaches the catalog: off the event loop. An unreachable
    catalog does not stop logins (nodes keep serving on their snapshot); it is logged."""
    try:
        return await asyncio.to_thread(call, *args)
    except CatalogError as error:
        log.warning("login bookkeeping failed: %s", error)
        return None


# -- one attempt -------------------------------------------------------------------------------


class _Login:
    """One login attempt on one connection: its packets, deadline, steps and outcome."""

    def __init__(
        self,
        services: LoginServices,
        seat: Seat,
        deadline: asyncio.Timeout,
        seq: int,
        capabilities: int,
        tls: bool,
    ) -> None:
        self.services = services
        self.seat = seat
        self.client = seat.client
        self.ip = seat.client_ip
        self.deadline = deadline
        self.seq = seq
        self.capabilities = capabilities
        self.tls = tls
        self.user = ""  # the user name being tried, for the audit log

    # Packets.

    async def read(self) -> bytes:
        seq, payload = await self.client.read(self.services.config.server.max_handshake_packet)
        self.seq = (seq + 1) & 0xFF
        return payload

    async def send(self, payload: bytes) -> None:
        self.seq = self.client.write(self.seq, payload)
        await self.client.drain()

    def send_error_quietly(self, error: SqlError) -> None:
        packet = build_err(
            errno=error.errno,
            sqlstate=error.sqlstate,
            message=error.message,
            capabilities=self.capabilities or Capability.PROTOCOL_41,
        )
        try:
            self.client.write(self.seq, packet)
        except Exception:  # the client may already be gone
            pass

    # The outcome: the one place a login is recorded.

    async def conclude(self, attempt: Coroutine[Any, Any, LoginResult]) -> None:
        try:
            result = await attempt
            await self.send(build_ok(capabilities=self.capabilities, status=_STATUS_AUTOCOMMIT))
        except _Refusal as refusal:
            self.failed(refusal)
            if refusal.error is not None:
                self.send_error_quietly(refusal.error)
            raise LoginRefused(str(refusal)) from None
        except ProtocolError as exc:
            self.send_error_quietly(_BAD_HANDSHAKE)
            raise LoginRefused(f"bad handshake: {exc}") from None
        except PacketTooLarge as exc:
            self.seq = exc.next_seq
            self.send_error_quietly(packet_too_large())
            raise LoginRefused("login packet too large") from None
        metrics = self.services.metrics
        metrics.logins_ok.inc()
        account = f"{result.user}@'{result.account.host}'"
        bind_account(account)
        audit_login(True, account, self.ip)

    def failed(self, refusal: _Refusal) -> None:
        services = self.services
        services.metrics.logins_failed.inc()
        if refusal.error is not None:
            services.metrics.denied(refusal.error.errno)
        if refusal.guess:
            services.login_guard.throttle.failed(self.ip, time.monotonic(), services.config.server)
        audit_login(False, repr(self.user), self.ip, str(refusal))

    # The steps.

    async def first(self) -> LoginResult:
        services = self.services
        server = services.config.server
        ssl_context = services.ssl_context  # one read: a reload may replace it meanwhile
        offered = offered_capabilities(SERVER_CAPABILITIES, services.shard_capabilities)
        if ssl_context is not None:
            offered |= Capability.SSL
        scramble = make_scramble()
        await self.send(
            build_handshake_v10(
                connection_id=self.seat.connection_id,
                server_version=services.server_version,
                scramble=scramble,
                capabilities=offered,
                charset=UTF8MB4_GENERAL_CI,
                status=_STATUS_AUTOCOMMIT,
                auth_plugin=server.auth_plugin,
            )
        )
        payload = await self.read()
        if is_ssl_request(payload):
            if ssl_context is None:
                raise _Refusal(_BAD_HANDSHAKE, "SSL not offered")
            await self.start_tls(ssl_context)
            payload = await self.read()
        response = parse_handshake_response(payload)
        self.capabilities = response.capabilities & offered
        self.user = response.username
        charset = client_collation(response.charset)
        if isinstance(charset, SqlError):
            raise _Refusal(charset, "unsupported character set")
        if server.require_tls and not self.tls:
            raise _Refusal(
                sql_error(
                    ErrorCode.SECURE_TRANSPORT_REQUIRED,
                    "Connections using insecure transport are prohibited while "
                    "--require_secure_transport=ON.",
                ),
                "TLS required",
            )
        database = response.database if self.capabilities & Capability.CONNECT_WITH_DB else None
        account = await self.authenticate(
            response.username,
            response.auth_response,
            response.auth_plugin or server.auth_plugin,
            scramble,
        )
        return self.admit(account, database, charset)

    async def start_tls(self, context: ssl.SSLContext) -> None:
        try:
            await self.client.start_tls(context)
        except (ssl.SSLError, OSError, ConnectionLost) as exc:
            raise _Refusal(None, f"TLS handshake failed: {exc}") from None
        self.tls = True

    async def change(self, payload: bytes, charset: int) -> LoginResult:
        request = parse_change_user(payload, self.capabilities)
        if request.charset is not None:
            asked = client_collation(request.charset)
            if isinstance(asked, SqlError):
                raise _Refusal(asked, "unsupported character set")
            charset = asked
        # The response in the packet answers the greeting's scramble: always ask again, with
        # a fresh one, so an old answer cannot be replayed.
        account = await self.authenticate(
            request.username, None, request.auth_plugin or NATIVE, make_scramble()
        )
        return self.admit(account, request.database, charset)

    async def authenticate(
        self, user: str, response: bytes | None, requested: str, scramble: bytes
    ) -> Account:
        """The account the client proves it may use; else 1045, or 3955 for a locked account
        the client's address matches. ``response``: the client's answer to ``scramble`` with
        ``requested``, or None if it has not answered it yet (it is then asked to)."""
        services = self.services
        server = services.config.server
        guard = services.login_guard
        self.user = user
        await self.throttle()
        plugin, switch = choose_plugin(requested, server.auth_plugin, self.tls)
        if switch or response is None:
            await self.send(build_auth_switch_request(plugin, scramble))
            response = await self.read()
        context = AuthContext(
            scramble=scramble,
            tls=self.tls,
            keys=services.rsa_keys,
            decoy=guard.decoy,
            sha2_cache=services.sha2_cache,
        )
        exchange = Exchange()
        snapshot = services.snapshot()
        found, proven = await self.check(snapshot, user, plugin, response, context, exchange)
        if found is None or not proven:
            # Every failure, whatever its kind, re-reads the catalog once; if the catalog
            # moved (the account was just created, or its password just changed), the same
            # answers are checked again on the new snapshot.
            fresh = await services.catalog_refresher.fresh()
            if fresh.version != snapshot.version:
                found, proven = await self.check(
                    fresh, user, plugin, response, context, exchange, replay=True
                )
        if found is None or not proven:
            await self.count_failure(found)
            raise _Refusal(
                access_denied(user, self.ip, response not in (b"", b"\x00")),
                "no account for this user and address" if found is None else "wrong password",
                guess=True,
            )
        if found.failed_logins or found.locked_until is not None:
            # Only then: a normal login writes nothing to the catalog.
            lock = await _catalog_login_call(
                services.bookkeeping.login_succeeded, found.id, server.login_lock_seconds
            )
            if lock is not None:
                raise self.blocked(found, lock.locked_until)
        return found

    async def check(
        self,
        snapshot: CatalogSnapshot,
        user: str,
        plugin: str,
        response: bytes,
        context: AuthContext,
        exchange: Exchange,
        *,
        replay: bool = False,
    ) -> tuple[Account | None, bool]:
        """The account ``snapshot`` has for the client (None: none; the decoy is checked in its
        place) and whether the client proved its password -- by talking to the client,
        recording the ``exchange``, or (``replay``) from the recorded one."""
        found = _login_account(snapshot, user, self.ip, self.services.login_guard.decoy)
        account = self.services.login_guard.decoy if found is None else found
        # A locked account is refused before its password is even looked at (so a lock also
        # stops guessing), whatever the password.
        if account.locked_at(time.time()):
            assert account.locked_until is not None
            raise self.blocked(account, account.locked_until)
        if replay:
            proven = await self.replay(plugin, account, response, context, exchange)
        else:
            proven = await self.run_plugin(plugin, account, response, context, exchange)
        return found, proven

    async def throttle(self) -> None:
        """Wait first if the client's address failed too often lately (``AddressThrottle``);
        the wait does not count against the handshake timeout."""
        services = self.services
        delay = services.login_guard.throttle.delay(
            self.ip, time.monotonic(), services.config.server
        )
        if delay <= 0:
            return
        services.metrics.logins_throttled.inc()
        when = self.deadline.when()
        if when is not None:
            self.deadline.reschedule(when + delay)
        await asyncio.sleep(delay)

    async def run_plugin(
        self,
        plugin: str,
        account: Account,
        response: bytes,
        context: AuthContext,
        exchange: Exchange,
    ) -> bool:
        run = run_plugin(plugin, account, response, context)
        try:
            step = next(run)
            while True:
                await self.send(step.payload)
                reply = await self.read() if step.reply else b""
                exchange.sent.append(step.payload)
                exchange.replies.append(reply)
                step = run.send(reply)
        except StopIteration as done:
            verdict: bool | SlowCheck = done.value
        return await self.verdict(verdict)

    async def replay(
        self,
        plugin: str,
        account: Account,
        response: bytes,
        context: AuthContext,
        exchange: Exchange,
    ) -> bool:
        """The plugin run against ``account`` on the recorded ``exchange``, nothing sent: not
        proven if it would say something else to the client than it did (it would need
        another answer)."""
        run = run_plugin(plugin, account, response, context)
        try:
            step = next(run)
            for sent, reply in zip(exchange.sent, exchange.replies, strict=True):
                if step.payload != sent:
                    return False
                step = run.send(reply)
            return False  # it asks for more than the client was asked
        except StopIteration as done:
            verdict: bool | SlowCheck = done.value
        return await self.verdict(verdict)

    async def verdict(self, verdict: bool | SlowCheck) -> bool:
        if isinstance(verdict, bool):
            return verdict
        return await self.services.login_guard.offload(verdict)

    async def count_failure(self, account: Account | None) -> None:
        """A wrong password from an address the account matches: the only failure that counts
        towards a lock (an unknown user or address, None, locks nothing). 3955 if locked now."""
        server = self.services.config.server
        if account is None or not server.login_max_failures:
            return
        lock = await _catalog_login_call(
            self.services.bookkeeping.record_login_failure,
            account.id,
            server.login_max_failures,
            server.login_lock_seconds,
            self.ip,
        )
        if lock is not None:
            raise self.blocked(account, lock.locked_until)

    def blocked(self, account: Account, locked_until: float) -> _Refusal:
        # MySQL 8's 3955 rather than 1045: it tells the account's real user why the right
        # password fails and what to ask for, and drivers know the number. It reveals that the
        # account exists only to a client whose address matches it and that named it, and only
        # after that client (or someone like it) made it fail N times -- which the audit log
        # records. Used for every refusal of a locked account, on login and COM_CHANGE_USER.
        server = self.services.config.server
        return _Refusal(
            account_blocked(
                self.user,
                self.ip,
                server.login_lock_seconds,
                locked_until - time.time(),
                server.login_max_failures or account.failed_logins,
            ),
            f"account {account.name} is locked after failed logins",
            guess=True,
        )

    def admit(self, account: Account, requested: str | None, charset: int) -> LoginResult:
        """The login database, the connection limit, then the seat's admission -- with no await
        in between, so concurrent logins of one account cannot all pass the limit."""
        result = LoginResult(
            account,
            self.user,
            self.login_database(account, requested),
            self.capabilities,
            charset,
            self.tls,
        )
        self.check_user_limit(account)
        self.seat.admit(result)
        return result

    def login_database(self, account: Account, requested: str | None) -> str | None:
        """As named (1044 before 1049), else the only usable one."""
        snapshot = self.services.snapshot()
        if not requested:
            return default_database(snapshot, account)
        resolved = resolve_database(snapshot, Caller(account, self.ip, None), requested)
        if isinstance(resolved, SqlError):
            raise _Refusal(resolved, resolved.message)
        return resolved

    def check_user_limit(self, account: Account) -> None:
        """1226 if the account already has its max_user_connections sessions on this node."""
        limit = account.max_user_connections or self.services.config.server.max_user_connections
        if not limit:
            return
        me = self.seat.connection_id
        open_now = sum(
            1
            for connection_id, other in self.services.sessions.items()
            if connection_id != me and other.account is not None and other.account.id == account.id
        )
        if open_now >= limit:
            raise _Refusal(
                user_limit_reached(self.user, limit),
                f"{account.name} has {open_now} connections (max_user_connections {limit})",
            )
