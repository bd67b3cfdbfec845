"""Client authentication plugins as small state machines.

Each plugin is a generator: it yields the packets to send to the client (with whether a reply
is expected), receives the client's replies, and returns the final verdict. The crypto lives in
``auth.passwords`` as pure functions; the session owns all I/O.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Protocol

from auth.model import Account
from auth.passwords import (
    rsa_decrypt_password,
    sha2_digest,
    verify_caching_sha2_fast,
    verify_native,
    verify_password,
)
from proxy.wire.packets import build_auth_more_data

NATIVE = "mysql_native_password"
CACHING_SHA2 = "caching_sha2_password"
SUPPORTED_PLUGINS = (NATIVE, CACHING_SHA2)

FAST_AUTH_SUCCESS = 0x03
PERFORM_FULL_AUTHENTICATION = 0x04
REQUEST_PUBLIC_KEY = 0x02


@dataclass(frozen=True, slots=True)
class Send:
    """A packet for the client; ``reply`` says whether the plugin waits for an answer."""

    payload: bytes
    reply: bool


# A plugin run: yields Send, is sent the client's reply (or b"" when none was awaited),
# returns True when the password is proven.
PluginRun = Generator[Send, bytes, bool]


class Sha2Cache:
    """The caching_sha2 fast-path cache: SHA256(SHA256(password)) per account, in memory only.

    Keyed by account id and stored password hash, so a password change invalidates the entry.
    An account with a retained (secondary) password has an entry per password.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], bytes] = {}

    def get(self, account: Account) -> bytes | None:
        """The primary password's cached digest."""
        return self._entries.get((account.id, account.password_hash))

    def digests(self, account: Account) -> tuple[list[bytes], bool]:
        """The cached digests of the account's passwords, and whether every one is cached."""
        found = []
        for stored in _password_hashes(account):
            digest = self._entries.get((account.id, stored))
            if digest is not None:
                found.append(digest)
        return found, len(found) == len(_password_hashes(account))

    def put(self, account: Account, password: str, stored: str | None = None) -> None:
        """Cache ``password``, which matched ``stored`` (default: the primary's hash)."""
        key = (account.id, account.password_hash if stored is None else stored)
        self._entries[key] = sha2_digest(password)


def _password_hashes(account: Account) -> tuple[str, ...]:
    """The slow hashes a login may match: the primary, then a retained secondary."""
    if account.retained_password_hash is not None:
        return (account.password_hash, account.retained_password_hash)
    return (account.password_hash,)


class Keys(Protocol):
    """The server's RSA key pair for caching_sha2 full authentication without TLS."""

    @property
    def private_pem(self) -> bytes: ...
    @property
    def public_pem(self) -> bytes: ...


@dataclass
class AuthContext:
    scramble: bytes
    tls: bool
    keys: Keys
    sha2_cache: Sha2Cache = field(default_factory=Sha2Cache)


def run_plugin(plugin: str, account: Account, first_response: bytes, ctx: AuthContext) -> PluginRun:
    if plugin == NATIVE:
        return native_password(account, first_response, ctx)
    if plugin == CACHING_SHA2:
        return caching_sha2_password(account, first_response, ctx)
    raise ValueError(plugin)


def native_password(account: Account, response: bytes, ctx: AuthContext) -> PluginRun:
    # Either password while a retained one exists (SET PASSWORD ... RETAIN CURRENT PASSWORD).
    if verify_native(account.native_hash, ctx.scramble[:20], response):
        return True
    retained = account.retained_native_hash
    return retained is not None and verify_native(retained, ctx.scramble[:20], response)
    yield  # pragma: no cover - makes this a generator


def caching_sha2_password(account: Account, response: bytes, ctx: AuthContext) -> PluginRun:
    if not account.password_hash or response in (b"", b"\x00"):
        # Only an account without a password accepts an empty scramble.
        return not account.password_hash and response in (b"", b"\x00")
    digests, all_cached = ctx.sha2_cache.digests(account)
    if any(verify_caching_sha2_fast(d, ctx.scramble[:20], response) for d in digests):
        yield Send(build_auth_more_data(bytes([FAST_AUTH_SUCCESS])), reply=False)
        return True
    if digests and all_cached:
        return False
    # Nothing cached for some password the client may be using: full authentication.
    reply = yield Send(build_auth_more_data(bytes([PERFORM_FULL_AUTHENTICATION])), reply=True)
    if ctx.tls:
        password = reply.rstrip(b"\x00").decode("utf-8", "replace")
    else:
        if reply != bytes([REQUEST_PUBLIC_KEY]):
            # A cleartext password over an insecure channel is never accepted.
            return False
        encrypted = yield Send(build_auth_more_data(ctx.keys.public_pem), reply=True)
        try:
            password = rsa_decrypt_password(ctx.keys.private_pem, encrypted, ctx.scramble[:20])
        except ValueError:
            return False
    for stored in _password_hashes(account):
        if verify_password(stored, password):
            ctx.sha2_cache.put(account, password, stored)
            return True
    return False
